"""Log compaction read back by real clients: kcat 1.7.1 (librdkafka 2.0.2) and kafka-python 2.0.2.

A compacted topic (cleanup.policy=compact, 1 MiB segments) is written by kcat with keys, several
updates of each key and tombstones (NULL values, kcat -Z), and cleaned by the broker's log
cleaner. Both clients then read it from the beginning: each key's latest value (a tombstone as
NULL / None), at the offset it was written at, offsets increasing with the gaps the cleaner left.

These tests run their own broker (module scope) so that its cleaner looks for dirty logs every
200 ms rather than every 15 s; its output is shown in the assertion message when a check fails.
"""

import hashlib
import os
import signal
import subprocess
import time

import pytest
from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition
from kafka.admin import NewTopic

from compat_helpers import kcat_bin, wait_until
from conftest import STARTUP_DEADLINE_S, STOP_TIMEOUT_S, _broker_bin, free_port, kafka_api_versions_v0

KEYS = 200
UPDATES = 60  # per key, in rounds over every key
DELETED = range(150, 200)  # keys whose last record is a tombstone
KCAT_TIMEOUT_S = 60
CLEAN_DEADLINE_S = 120


class CompactionBroker:
    def __init__(self, bootstrap, proc, log_path, data_dir):
        self.bootstrap = bootstrap
        self.proc = proc
        self.log_path = log_path
        self.data_dir = data_dir

    def output(self, n=60):
        with open(self.log_path, "rb") as f:
            lines = f.read().decode("utf-8", "replace").splitlines()
        return "\n".join(lines[-n:])

    def why(self, msg):
        """msg with the tail of the broker output, for assertion messages."""
        return "%s\n--- broker output (tail, %s) ---\n%s" % (msg, self.log_path, self.output())


@pytest.fixture(scope="module")
def cbroker(tmp_path_factory):
    binary = _broker_bin()
    if not (os.path.isfile(binary) and os.access(binary, os.X_OK)):
        pytest.fail("broker binary %s not found: build it with `go build -o bin/ ./cmd/...` "
                    "or set THORSTREAM_BIN" % binary, pytrace=False)
    workdir = tmp_path_factory.mktemp("thorstream-compaction")
    env = {k: v for k, v in os.environ.items() if not k.startswith("THORSTREAM_")}
    for attempt in range(1, 4):
        data_dir = str(workdir / ("data-%d" % attempt))
        log_path = str(workdir / ("broker-%d.log" % attempt))
        addr_port, kafka_port = free_port(), free_port()
        while kafka_port == addr_port:
            kafka_port = free_port()
        env.update({
            "THORSTREAM_DATA_DIR": data_dir,
            "THORSTREAM_ADDR": "127.0.0.1:%d" % addr_port,
            "THORSTREAM_KAFKA_ADDR": "127.0.0.1:%d" % kafka_port,
            "THORSTREAM_LOG_CLEANER_BACKOFF_MS": "200",
        })
        with open(log_path, "wb") as logf:
            proc = subprocess.Popen([binary], env=env, stdout=logf, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, cwd=str(workdir))
        deadline = time.monotonic() + STARTUP_DEADLINE_S
        last = None
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                kafka_api_versions_v0("127.0.0.1", kafka_port, timeout=1.0)
                break
            except Exception as e:  # noqa: BLE001 - retried until the deadline
                last = e
                time.sleep(0.05)
        else:
            with open(log_path, "rb") as f:
                out = f.read().decode("utf-8", "replace")
            if proc.poll() is not None and "address already in use" in out and attempt < 3:
                continue
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            pytest.fail("compaction broker did not start: %r\n%s" % (last, out), pytrace=False)
        break
    b = CompactionBroker("127.0.0.1:%d" % kafka_port, proc, log_path, data_dir)
    try:
        yield b
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def kcat(b, *args, stdin=None):
    cmd = [kcat_bin(), "-b", b.bootstrap, *args]
    r = subprocess.run(cmd, input=stdin, capture_output=True, timeout=KCAT_TIMEOUT_S)
    assert r.returncode == 0, b.why("%s exited %d\n--- stderr ---\n%s" % (
        " ".join(cmd), r.returncode, r.stderr.decode("utf-8", "replace")[-4000:]))
    return r.stdout.decode("utf-8", "replace")


def partition_dir(b, topic):
    return os.path.join(b.data_dir, "%s-0" % topic)


def cleaner_state(b, topic):
    """(segment bases, first dirty offset or -1, names of files of a pass in progress)."""
    d = partition_dir(b, topic)
    names = os.listdir(d)
    bases = sorted(int(n[:-4]) for n in names if n.endswith(".log") and n[:-4].isdigit())
    cleaned = [n for n in names if n.endswith(".cleaned")]
    first_dirty = -1
    try:
        with open(os.path.join(d, "cleaner-offset-checkpoint")) as f:
            for line in f.read().split("\n")[2:]:
                fields = line.split()
                if len(fields) == 3 and fields[0] == "0":
                    first_dirty = int(fields[1])
    except FileNotFoundError:
        pass
    return bases, first_dirty, cleaned


def value_of(key, version):
    # Hex digits of a hash: compression shrinks them little, so the topic really spans segments.
    digest = "".join(hashlib.sha256(b"%d/%d/%d" % (key, version, i)).hexdigest() for i in range(3))
    return "key-%03d version %d %s" % (key, version, digest[:150])


@pytest.fixture(scope="module")
def compacted(cbroker):
    """A compacted topic written by kcat and cleaned: (topic, model, end offset), the model being
    each key's last (offset, value or None)."""
    topic = "compaction-clients"
    admin = KafkaAdminClient(bootstrap_servers=cbroker.bootstrap)
    try:
        resp = admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1, topic_configs={
            "cleanup.policy": "compact", "segment.bytes": "1048576", "min.cleanable.dirty.ratio": "0.01"})])
        assert [tuple(e[:2]) for e in resp.topic_errors] == [(topic, 0)]
    finally:
        admin.close()

    # Rounds of updates over every key, then tombstones for the deleted keys, then more updates
    # of the others so that the tombstones' segment rolls and is cleaned. kcat writes the lines in
    # order to the one partition: line i is offset i.
    lines, model = [], {}

    def add(key, value):
        model[key] = (len(lines), value)
        lines.append("key-%03d|%s\n" % (key, value if value is not None else ""))

    for version in range(UPDATES):
        for key in range(KEYS):
            add(key, value_of(key, version))
    for key in DELETED:
        add(key, None)
    version = UPDATES
    while len(lines) < KEYS * UPDATES + len(DELETED) + 8000:  # 8000 updates: about 1.4 MB
        for key in range(DELETED.start):
            add(key, value_of(key, version))
        version += 1
    half = len(lines) // 2  # the first half compressed, the rest not
    kcat(cbroker, "-P", "-t", topic, "-K", "|", "-Z", "-z", "lz4", stdin="".join(lines[:half]).encode())
    kcat(cbroker, "-P", "-t", topic, "-K", "|", "-Z", stdin="".join(lines[half:]).encode())
    end = len(lines)

    def caught_up():
        bases, first_dirty, cleaned = cleaner_state(cbroker, topic)
        return len(bases) >= 2 and not cleaned and first_dirty >= bases[-1] and bases[-1] > model[DELETED[-1]][0]

    try:
        wait_until(caught_up, CLEAN_DEADLINE_S, interval=0.1, what="the cleaner to clean %s" % topic)
    except AssertionError as e:
        raise AssertionError(cbroker.why("%s; state %r" % (e, cleaner_state(cbroker, topic))))
    return topic, model, end


def check_view(b, topic, got, model, end, who):
    """got: [(offset, key, value or None)] as a client read them."""
    offsets = [o for o, _, _ in got]
    assert offsets == sorted(set(offsets)), b.why("%s: offsets not increasing: %r" % (who, offsets[:50]))
    assert offsets and offsets[-1] == end - 1, b.why("%s: last offset %r, want %d" % (who, offsets[-1:], end - 1))
    assert len(got) < end // 4, b.why("%s: read %d of %d records: not compacted" % (who, len(got), end))
    gaps = sum(1 for a, c in zip(offsets, offsets[1:]) if c != a + 1)
    assert gaps > 0, b.why("%s: no gap in the offsets" % who)
    view = {}
    for offset, key, value in got:
        view[key] = (offset, value)
    want = {"key-%03d" % k: v for k, v in model.items()}
    for key, (offset, value) in want.items():
        assert key in view, b.why("%s: key %s missing (want offset %d)" % (who, key, offset))
        assert view[key] == (offset, value), b.why("%s: key %s: read %r, want offset %d value %r" % (
            who, key, view[key], offset, value))
    assert set(view) == set(want), b.why("%s: keys nobody wrote: %r" % (who, set(view) - set(want)))
    # The cleaned part (below the active segment) holds each key once.
    active = cleaner_state(b, topic)[0][-1]
    cleaned_keys = [k for o, k, _ in got if o < active]
    assert len(cleaned_keys) == len(set(cleaned_keys)), b.why("%s: a key twice below offset %d" % (who, active))


def test_kcat_reads_compacted_topic(cbroker, compacted):
    topic, model, end = compacted
    out = kcat(cbroker, "-C", "-t", topic, "-e", "-o", "beginning", "-Z", "-f", "%k=%s\n")
    got_kv = [ln.split("=", 1) for ln in out.splitlines()]
    offsets = [int(ln) for ln in kcat(cbroker, "-C", "-t", topic, "-e", "-o", "beginning", "-f", "%o\n").splitlines()]
    assert len(offsets) == len(got_kv), cbroker.why("kcat read %d offsets and %d records" % (len(offsets), len(got_kv)))
    got = [(o, k, None if v == "NULL" else v) for o, (k, v) in zip(offsets, got_kv)]
    check_view(cbroker, topic, got, model, end, "kcat")
    tombstones = [k for _, k, v in got if v is None]
    assert sorted(tombstones) == ["key-%03d" % k for k in DELETED], cbroker.why("kcat: tombstones %r" % tombstones)


def test_kafka_python_reads_compacted_topic(cbroker, compacted):
    topic, model, end = compacted
    tp = TopicPartition(topic, 0)
    c = KafkaConsumer(bootstrap_servers=cbroker.bootstrap, group_id=None, enable_auto_commit=False,
                      auto_offset_reset="earliest")
    try:
        c.assign([tp])
        c.seek_to_beginning(tp)
        got = []
        deadline = time.monotonic() + 60
        while (not got or got[-1][0] < end - 1) and time.monotonic() < deadline:
            for _tp, msgs in c.poll(timeout_ms=500).items():
                got.extend((m.offset, m.key.decode(), None if m.value is None else m.value.decode()) for m in msgs)
        assert c.end_offsets([tp])[tp] == end
        assert c.beginning_offsets([tp])[tp] == 0
    finally:
        c.close()
    check_view(cbroker, topic, got, model, end, "kafka-python")
    tombstones = [k for _, k, v in got if v is None]
    assert sorted(tombstones) == ["key-%03d" % k for k in DELETED], cbroker.why("kafka-python: tombstones %r" % tombstones)
