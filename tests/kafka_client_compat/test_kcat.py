"""kcat 1.7.1 (librdkafka 2.0.2, Debian) against the real broker, with default settings.

Every kcat run carries `-d broker,protocol`: its stderr (shown in assertion messages) then names
each request librdkafka sent with its API version (e.g. "Sent ProduceRequest (v7, ...)") and each
response, which is what is needed to diagnose a failure.
"""

import json
import subprocess
import time

import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from compat_helpers import CODEC_IDS, kcat_bin

KCAT_TIMEOUT_S = 60


def kcat(bootstrap, *args, stdin=None, check=True):
    cmd = [kcat_bin(), "-b", bootstrap, "-d", "broker,protocol", *args]
    try:
        r = subprocess.run(cmd, input=stdin, capture_output=True, timeout=KCAT_TIMEOUT_S)
    except subprocess.TimeoutExpired as e:
        raise AssertionError("%s timed out after %ds\n--- stderr (tail) ---\n%s" % (
            " ".join(cmd), KCAT_TIMEOUT_S, _tail(e.stderr)))
    if check:
        assert r.returncode == 0, "%s exited %d\n--- stdout ---\n%s\n--- stderr (tail) ---\n%s" % (
            " ".join(cmd), r.returncode, r.stdout.decode("utf-8", "replace"), _tail(r.stderr))
    errors = [ln for ln in r.stderr.decode("utf-8", "replace").splitlines()
              if "Delivery failed" in ln or "|ERROR|" in ln or ln.startswith("% ERROR")]
    if check:
        assert not errors, "%s reported errors:\n%s\n--- stderr (tail) ---\n%s" % (
            " ".join(cmd), "\n".join(errors), _tail(r.stderr))
    return r


def _tail(b, n=80):
    if not b:
        return "(empty)"
    if isinstance(b, bytes):
        b = b.decode("utf-8", "replace")
    return "\n".join(b.splitlines()[-n:])


def lines(r):
    return r.stdout.decode("utf-8", "replace").splitlines()


def produce_lines(bootstrap, topic, recs, *extra):
    """kcat -P -K: with one "key:value" line per record."""
    data = "".join("%s:%s\n" % kv for kv in recs).encode()
    kcat(bootstrap, "-P", "-t", topic, "-K:", *extra, stdin=data)


def consume_all(bootstrap, topic, fmt="%k:%s\n", *extra):
    """kcat -C from the beginning until the end of every partition (-e)."""
    r = kcat(bootstrap, "-C", "-t", topic, "-e", "-o", "beginning", "-f", fmt, *extra)
    return lines(r)


def sample(n, tag=""):
    # Compressible values, so that librdkafka really compresses (it sends a batch uncompressed
    # when compression does not make it smaller).
    return [("key-%s%d" % (tag, i), "value-%s%d-%s" % (tag, i, "y" * 200)) for i in range(n)]


def test_metadata_list(broker, topic):
    produce_lines(broker.bootstrap, topic, sample(1))
    r = kcat(broker.bootstrap, "-L")
    out = lines(r)
    assert out[0].startswith("Metadata for all topics (from broker 0: %s/0)" % broker.bootstrap), out
    assert " 1 brokers:" in out
    assert "  broker 0 at %s (controller)" % broker.bootstrap in out
    i = out.index('  topic "%s" with 1 partitions:' % topic)
    assert out[i + 1] == "    partition 0, leader 0, replicas: 0, isrs: 0"

    # One topic only.
    out = lines(kcat(broker.bootstrap, "-L", "-t", topic))
    assert out[0].startswith("Metadata for %s (from broker 0: %s/0)" % (topic, broker.bootstrap)), out
    assert [ln for ln in out if ln.startswith('  topic "')] == ['  topic "%s" with 1 partitions:' % topic]


def test_metadata_list_json(broker, topic):
    produce_lines(broker.bootstrap, topic, sample(1))
    md = json.loads(kcat(broker.bootstrap, "-L", "-J").stdout)
    assert md["originating_broker"] == {"id": 0, "name": "%s/0" % broker.bootstrap}
    assert md["controllerid"] == 0
    assert md["brokers"] == [{"id": 0, "name": broker.bootstrap}]
    topics = {t["topic"]: t for t in md["topics"]}
    assert topic in topics, sorted(topics)
    t = topics[topic]
    assert "error" not in t, t
    assert t["partitions"] == [{"partition": 0, "leader": 0, "replicas": [{"id": 0}], "isrs": [{"id": 0}]}]


@pytest.mark.parametrize("codec", ["none", "gzip", "snappy", "lz4", "zstd"])
def test_produce_consume_codec(broker, topic, codec):
    recs = sample(30)
    produce_lines(broker.bootstrap, topic, recs, "-z", codec)

    # librdkafka really used the codec (the broker stores batches as sent). It only enables
    # gzip/snappy/lz4 when the broker advertises Produce from v0 and FindCoordinator from v0
    # (lz4), and zstd with Produce v7+; otherwise it silently sends uncompressed.
    batches = broker.stored_batches(topic, 0)
    assert sum(c for _, _, c in batches) == len(recs)
    assert {codec_id for _, codec_id, _ in batches} == {CODEC_IDS[codec]}, batches

    assert consume_all(broker.bootstrap, topic) == ["%s:%s" % kv for kv in recs]


def test_consume_offsets(broker, topic):
    recs = sample(10)
    produce_lines(broker.bootstrap, topic, recs)
    bs = broker.bootstrap
    fmt = "%o:%k"
    # -o -N: N from the end.
    assert consume_all_from(bs, topic, "-3", fmt) == ["%d:%s" % (i, recs[i][0]) for i in (7, 8, 9)]
    # -o N: absolute.
    assert consume_all_from(bs, topic, "6", fmt) == ["%d:%s" % (i, recs[i][0]) for i in range(6, 10)]
    # -o end: nothing.
    assert consume_all_from(bs, topic, "end", fmt) == []
    # -o beginning -c 2: count.
    out = lines(kcat(bs, "-C", "-t", topic, "-o", "beginning", "-c", "2", "-f", fmt + "\n"))
    assert out == ["0:%s" % recs[0][0], "1:%s" % recs[1][0]]
    # -o s@TS: from a timestamp (ListOffsets by time); the first record's timestamp gives offset 0.
    stamps = [int(x) for x in lines(kcat(bs, "-C", "-t", topic, "-e", "-o", "beginning", "-f", "%T\n"))]
    assert len(stamps) == 10
    assert consume_all_from(bs, topic, "s@%d" % stamps[0], "%o") == [str(i) for i in range(10)]


def consume_all_from(bootstrap, topic, offset, fmt):
    return lines(kcat(bootstrap, "-C", "-t", topic, "-e", "-o", offset, "-f", fmt + "\n"))


def test_query_offsets_for_times(broker, topic):
    bs = broker.bootstrap
    # Two separate kcat runs, so the records carry (usually) two different timestamps.
    produce_lines(bs, topic, sample(3, "a"))
    produce_lines(bs, topic, sample(3, "b"))
    stamps = [int(x) for x in lines(kcat(bs, "-C", "-t", topic, "-e", "-o", "beginning", "-f", "%T\n"))]
    assert len(stamps) == 6 and stamps == sorted(stamps), stamps

    def expected(ts):
        # The first offset whose timestamp is >= ts, or -1 (librdkafka prints the broker's -1).
        return next((o for o, s in enumerate(stamps) if s >= ts), -1)

    # Logical offsets: -2 earliest, -1 latest.
    assert lines(kcat(bs, "-Q", "-t", "%s:0:-2" % topic)) == ["%s [0] offset 0" % topic]
    assert lines(kcat(bs, "-Q", "-t", "%s:0:-1" % topic)) == ["%s [0] offset 6" % topic]
    for ts in sorted({stamps[0] - 1, stamps[0], stamps[0] + 1, stamps[3], stamps[3] + 1,
                      stamps[-1], stamps[-1] + 1}):
        out = lines(kcat(bs, "-Q", "-t", "%s:0:%d" % (topic, ts)))
        assert out == ["%s [0] offset %d" % (topic, expected(ts))], (ts, stamps, out)

    # JSON output.
    q = json.loads(kcat(bs, "-Q", "-J", "-t", "%s:0:%d" % (topic, stamps[3])).stdout)
    assert q == {topic: {"topic": topic, "0": {"partition": 0, "offset": expected(stamps[3])}}}


def test_headers_across_clients(broker, topic):
    """kcat -H headers read by kafka-python, and kafka-python headers printed by kcat (%h)."""
    bs = broker.bootstrap
    kcat(bs, "-P", "-t", topic, "-K:", "-H", "h1=v1", "-H", "h2=v2", stdin=b"k0:hello\n")

    p = KafkaProducer(bootstrap_servers=bs)
    try:
        meta = p.send(topic, key=b"k1", value=b"world", headers=[("a", b"1"), ("b", b"2")]).get(timeout=30)
    finally:
        p.close(timeout=10)
    assert meta.offset == 1

    c = KafkaConsumer(bootstrap_servers=bs)
    try:
        tp = TopicPartition(topic, 0)
        c.assign([tp])
        c.seek(tp, 0)
        got = []
        deadline = time.monotonic() + 30
        while len(got) < 2 and time.monotonic() < deadline:
            for msgs in c.poll(timeout_ms=500).values():
                got.extend(msgs)
    finally:
        c.close()
    assert [(m.key, m.value, [tuple(h) for h in m.headers]) for m in got] == [
        (b"k0", b"hello", [("h1", b"v1"), ("h2", b"v2")]),
        (b"k1", b"world", [("a", b"1"), ("b", b"2")]),
    ]

    assert consume_all(bs, topic, "%k:%s:%h\n") == ["k0:hello:h1=v1,h2=v2", "k1:world:a=1,b=2"]


def test_many_messages(broker, topic):
    # 20000 lines: librdkafka fills large batches (and the consumer needs several fetches).
    recs = [("k%d" % i, "v%06d-%s" % (i, "z" * 50)) for i in range(20000)]
    produce_lines(broker.bootstrap, topic, recs, "-z", "snappy")
    assert {codec for _, codec, _ in broker.stored_batches(topic, 0)} == {CODEC_IDS["snappy"]}
    assert consume_all(broker.bootstrap, topic) == ["%s:%s" % kv for kv in recs]
