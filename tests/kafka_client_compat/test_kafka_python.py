"""kafka-python 2.0.2 (Debian python3-kafka) against the real broker, with default settings.

No api_version is pinned: kafka-python probes the broker (ApiVersions v0 + Metadata v0, pipelined
on one connection) and infers a broker version from the advertised table. With Thorstream's table
(Produce 0-12, Fetch 4-12, ...) it infers 2.4.0 (Produce v8 is present, DescribeAcls v2 is not) and
then uses fixed request versions:
  Produce v7, Fetch v4, ListOffsets v1, Metadata v1 (producer/consumer) and v5 (admin),
  CreateTopics v3, DeleteTopics v3, DescribeConfigs v2 (admin: highest version both know).
"""

import time

import pytest
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import ConfigResource, ConfigResourceType, NewTopic
from kafka.errors import TopicAlreadyExistsError
from kafka.protocol.admin import CreateTopicsRequest, DeleteTopicsRequest, DescribeConfigsRequest
from kafka.protocol.metadata import MetadataRequest

from compat_helpers import CODEC_IDS, wait_until

N = 50
SEND_TIMEOUT_S = 30
CONSUME_TIMEOUT_S = 30


def records(n, tag=""):
    """n records with distinct keys and headers and compressible values (so that every codec really
    compresses: kafka-python sends a batch uncompressed when compression does not make it smaller)."""
    out = []
    for i in range(n):
        key = ("key-%s%d" % (tag, i)).encode()
        value = ("value-%s%d-" % (tag, i)).encode() + b"x" * 200
        headers = [("h-index", str(i).encode()), ("h-empty", b"")]
        out.append((key, value, headers))
    return out


def consume_n(consumer, n, timeout=CONSUME_TIMEOUT_S):
    """Poll until n records arrived (or the deadline passed); returns them in offset order per
    partition as they came."""
    got = []
    deadline = time.monotonic() + timeout
    while len(got) < n and time.monotonic() < deadline:
        for _tp, msgs in consumer.poll(timeout_ms=500).items():
            got.extend(msgs)
    return got


@pytest.fixture
def producer_factory(bootstrap):
    made = []

    def make(**kw):
        p = KafkaProducer(bootstrap_servers=bootstrap, **kw)
        made.append(p)
        return p

    yield make
    for p in made:
        p.close(timeout=10)


@pytest.fixture
def consumer_factory(bootstrap):
    made = []

    def make(*topics, **kw):
        c = KafkaConsumer(*topics, bootstrap_servers=bootstrap, **kw)
        made.append(c)
        return c

    yield make
    for c in made:
        c.close()


@pytest.fixture
def admin(bootstrap):
    a = KafkaAdminClient(bootstrap_servers=bootstrap)
    yield a
    a.close()


def send_all(producer, topic, recs, partition=None, timestamps=None):
    futures = []
    for i, (k, v, h) in enumerate(recs):
        ts = timestamps[i] if timestamps else None
        futures.append(producer.send(topic, key=k, value=v, headers=h, partition=partition, timestamp_ms=ts))
    producer.flush(timeout=SEND_TIMEOUT_S)
    return [f.get(timeout=SEND_TIMEOUT_S) for f in futures]


def test_broker_version_inferred_from_api_versions(producer_factory):
    # Default settings: kafka-python probes the broker. Produce v8 in the table => "2.4.0"; a
    # smaller guess would make it use older Produce/Fetch versions (and refuse zstd below 2.1).
    p = producer_factory()
    assert p.config["api_version"] == (2, 4, 0)


@pytest.mark.parametrize("codec", ["none", "gzip", "snappy", "lz4", "zstd"])
def test_produce_consume_roundtrip(broker, topic, producer_factory, consumer_factory, codec):
    # zstd: kafka-python 2.0.2 asserts api_version >= (2, 1, 0) when the producer is built
    # ("Zstd Requires >= Kafka 2.1.0 Brokers"); with the inferred 2.4.0 it is accepted. It then
    # produces zstd with Produce v7 and consumes with Fetch v4: Apache Kafka would answer that
    # fetch with UNSUPPORTED_COMPRESSION_TYPE (zstd needs Fetch v10+), Thorstream serves the stored
    # batch and kafka-python decodes it, which is what this test asserts.
    p = producer_factory(compression_type=None if codec == "none" else codec)
    assert p.config["api_version"] >= (2, 1, 0)
    recs = records(N)
    metas = send_all(p, topic, recs)
    assert [m.topic for m in metas] == [topic] * N
    assert [m.partition for m in metas] == [0] * N
    assert [m.offset for m in metas] == list(range(N)), "futures must resolve with offsets 0..N-1"

    # The client really used the codec: the broker stores batches as sent.
    batches = broker.stored_batches(topic, 0)
    assert sum(c for _, _, c in batches) == N
    assert {codec_id for _, codec_id, _ in batches} == {CODEC_IDS[codec]}, batches

    c = consumer_factory(topic, auto_offset_reset="earliest")  # no group_id: no coordinator
    got = consume_n(c, N)
    assert [m.offset for m in got] == list(range(N))
    assert [(m.key, m.value, [tuple(h) for h in m.headers]) for m in got] == recs
    assert all(m.topic == topic and m.partition == 0 for m in got)
    assert all(m.timestamp > 0 for m in got)
    # Nothing beyond what was produced.
    extra = c.poll(timeout_ms=200)
    assert not any(extra.values()), extra


@pytest.mark.parametrize("acks", [0, 1, "all"])
def test_produce_acks(topic, producer_factory, consumer_factory, acks):
    # acks=0: the broker sends no Produce response; kafka-python resolves the futures with
    # offset -1 at once and the connection must stay usable (no response is waited for).
    p = producer_factory(acks=acks)
    recs = records(10)
    metas = send_all(p, topic, recs)
    if acks == 0:
        assert [m.offset for m in metas] == [-1] * 10
    else:
        assert [m.offset for m in metas] == list(range(10))
    c = consumer_factory(topic, auto_offset_reset="earliest")
    got = consume_n(c, 10)
    assert [(m.offset, m.key, m.value) for m in got] == [(i, k, v) for i, (k, v, _) in enumerate(recs)]


def test_assign_and_seek(topic, producer_factory, consumer_factory):
    p = producer_factory()
    recs = records(20)
    send_all(p, topic, recs)
    tp = TopicPartition(topic, 0)

    c = consumer_factory(auto_offset_reset="earliest")
    c.assign([tp])
    assert c.assignment() == {tp}

    c.seek(tp, 7)
    got = consume_n(c, 13)
    assert [m.offset for m in got] == list(range(7, 20))
    assert [m.key for m in got] == [k for k, _, _ in recs[7:]]
    assert c.position(tp) == 20

    c.seek_to_beginning(tp)
    assert c.position(tp) == 0
    got = consume_n(c, 3)
    assert [m.offset for m in got][:3] == [0, 1, 2]

    c.seek_to_end(tp)
    assert c.position(tp) == 20
    assert not any(c.poll(timeout_ms=200).values())

    # New records after the end are delivered to the assigned consumer (long poll on Fetch v4).
    more = records(5, tag="more-")
    send_all(p, topic, more)
    got = consume_n(c, 5)
    assert [(m.offset, m.key) for m in got] == [(20 + i, k) for i, (k, _, _) in enumerate(more)]


def test_beginning_end_offsets_and_offsets_for_times(topic, producer_factory, consumer_factory):
    p = producer_factory()
    tp = TopicPartition(topic, 0)
    n = 10
    # Explicit CreateTime timestamps, 1 s apart, starting a minute ago.
    base = int(time.time() * 1000) - 60_000
    stamps = [base + 1000 * i for i in range(n)]
    send_all(p, topic, records(n), timestamps=stamps)

    c = consumer_factory()
    assert c.beginning_offsets([tp]) == {tp: 0}
    assert c.end_offsets([tp]) == {tp: n}

    # ListOffsets v1 by timestamp: the first offset whose timestamp is >= the target.
    res = c.offsets_for_times({tp: stamps[4]})
    assert res[tp] is not None and (res[tp].offset, res[tp].timestamp) == (4, stamps[4])
    res = c.offsets_for_times({tp: stamps[4] + 1})
    assert (res[tp].offset, res[tp].timestamp) == (5, stamps[5])
    res = c.offsets_for_times({tp: 0})
    assert (res[tp].offset, res[tp].timestamp) == (0, stamps[0])
    # Later than every record: no offset.
    assert c.offsets_for_times({tp: stamps[-1] + 1}) == {tp: None}

    # The consumer sees the same timestamps.
    c.assign([tp])
    c.seek(tp, 0)
    got = consume_n(c, n)
    assert [m.timestamp for m in got] == stamps


def test_metadata_list_topics_and_partitions(broker, topic, admin, producer_factory, consumer_factory):
    admin.create_topics([NewTopic(topic, num_partitions=3, replication_factor=1)])
    p = producer_factory()
    # Producer metadata (Metadata v1 for the topic).
    assert p.partitions_for(topic) == {0, 1, 2}

    for part in range(3):
        metas = send_all(p, topic, records(part + 1, tag="p%d-" % part), partition=part)
        assert [(m.partition, m.offset) for m in metas] == [(part, i) for i in range(part + 1)]

    c = consumer_factory()
    assert topic in c.topics()
    assert c.partitions_for_topic(topic) == {0, 1, 2}
    tps = [TopicPartition(topic, i) for i in range(3)]
    assert c.end_offsets(tps) == {tps[0]: 1, tps[1]: 2, tps[2]: 3}
    assert c.beginning_offsets(tps) == {tp: 0 for tp in tps}

    # Every partition is served in one Fetch.
    c.assign(tps)
    c.seek_to_beginning()
    got = consume_n(c, 6)
    assert sorted((m.partition, m.offset) for m in got) == [(0, 0), (1, 0), (1, 1), (2, 0), (2, 1), (2, 2)]

    # Admin metadata (Metadata v5).
    assert topic in admin.list_topics()
    [desc] = admin.describe_topics([topic])
    assert desc["error_code"] == 0 and desc["topic"] == topic
    assert sorted(pp["partition"] for pp in desc["partitions"]) == [0, 1, 2]
    assert all(pp["leader"] == 0 and pp["replicas"] == [0] and pp["isr"] == [0] for pp in desc["partitions"])
    cluster = admin.describe_cluster()
    # The node advertises its own Kafka listener.
    assert [(b["node_id"], b["host"], b["port"]) for b in cluster["brokers"]] == [(0, broker.host, broker.kafka_port)]
    assert cluster["controller_id"] == 0
    assert cluster["cluster_id"]


def test_unknown_topic_is_not_listed(topic, consumer_factory):
    # Metadata v1 with a null topic list (all topics) must not auto-create anything.
    c = consumer_factory()
    assert c.partitions_for_topic(topic) is None
    assert topic not in c.topics()


def test_admin_api_versions_chosen(admin):
    # kafka-python's admin picks min(its newest, broker max) per key.
    assert admin._matching_api_version(MetadataRequest) == 5
    assert admin._matching_api_version(CreateTopicsRequest) == 3
    assert admin._matching_api_version(DeleteTopicsRequest) == 3
    assert admin._matching_api_version(DescribeConfigsRequest) == 2


def test_admin_create_describe_delete_topic(topic, admin, consumer_factory):
    resp = admin.create_topics([NewTopic(topic, num_partitions=2, replication_factor=1,
                                         topic_configs={"retention.ms": "3600000"})])
    assert [tuple(e[:2]) for e in resp.topic_errors] == [(topic, 0)]
    assert topic in admin.list_topics()

    # Creating it again: TOPIC_ALREADY_EXISTS (36), raised by the admin client.
    with pytest.raises(TopicAlreadyExistsError):
        admin.create_topics([NewTopic(topic, num_partitions=2, replication_factor=1)])

    [cfg] = admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic)])
    [res] = cfg.resources
    error_code, _msg, rtype, rname, entries = res
    assert (error_code, rtype, rname) == (0, ConfigResourceType.TOPIC.value, topic)
    values = {e[0]: e[1] for e in entries}
    assert values.get("retention.ms") == "3600000", values
    assert values.get("cleanup.policy") == "delete", values

    [bcfg] = admin.describe_configs([ConfigResource(ConfigResourceType.BROKER, "0")])
    [bres] = bcfg.resources
    assert (bres[0], bres[2], bres[3]) == (0, ConfigResourceType.BROKER.value, "0")
    assert len(bres[4]) > 0

    c = consumer_factory()
    assert c.partitions_for_topic(topic) == {0, 1}

    resp = admin.delete_topics([topic])
    assert [tuple(e[:2]) for e in resp.topic_error_codes] == [(topic, 0)]
    wait_until(lambda: topic not in admin.list_topics(), 30, what="topic %s to disappear" % topic)


def test_many_records_span_several_fetches(topic, producer_factory, consumer_factory):
    # 3000 records of ~1 KiB: several produce batches (batch.size 16 KiB) and more than one
    # Fetch v4 response (max_partition_fetch_bytes 1 MiB), so fetches continue mid-log.
    p = producer_factory(compression_type="lz4")
    n = 3000
    recs = [(b"k%d" % i, (b"%06d" % i) * 170, []) for i in range(n)]
    metas = send_all(p, topic, recs)
    assert [m.offset for m in metas] == list(range(n))
    c = consumer_factory(topic, auto_offset_reset="earliest")
    got = consume_n(c, n, timeout=60)
    assert len(got) == n
    assert [m.offset for m in got] == list(range(n))
    assert all(m.key == recs[m.offset][0] and m.value == recs[m.offset][1] for m in got)
