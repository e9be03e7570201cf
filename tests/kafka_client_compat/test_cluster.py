"""Real Kafka clients against a three-node cluster of broker processes (the `cluster` fixture):
kafka-python 2.0.2 (admin, producers, a consumer group) and kcat 1.7.1 / librdkafka 2.0.2
(metadata, produce and consume, a balanced consumer group), each client bootstrapped with one node
and sent by the cluster's Metadata to the nodes that lead the partitions or host the group.

Each partition has one replica; a new topic's partitions are led round robin by the three nodes.
A group lives on the node that leads its __consumer_offsets partition. The broker's
group.initial.rebalance.delay (3 s) delays a new group's first rebalance: the deadlines allow it.
"""

import json
import re
import signal
import subprocess
import threading
import time
import uuid

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import NewTopic

from compat_helpers import CODEC_IDS, kcat_bin, wait_until

TIMEOUT_S = 60  # a rebalance, a client's metadata refresh, on a loaded machine


def kcat(bootstrap, *args, stdin=None):
    cmd = [kcat_bin(), "-b", bootstrap, *args]
    try:
        r = subprocess.run(cmd, input=stdin, capture_output=True, timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired as e:
        raise AssertionError("%s timed out after %ds\n--- stderr (tail) ---\n%s" % (
            " ".join(cmd), TIMEOUT_S, _tail(e.stderr)))
    errors = [ln for ln in r.stderr.decode("utf-8", "replace").splitlines()
              if "Delivery failed" in ln or "|ERROR|" in ln or ln.startswith("% ERROR")]
    assert r.returncode == 0 and not errors, "%s exited %d\n--- stdout (tail) ---\n%s\n--- stderr (tail) ---\n%s" % (
        " ".join(cmd), r.returncode, _tail(r.stdout), _tail(r.stderr))
    return r


def _tail(b, n=60):
    if not b:
        return "(empty)"
    if isinstance(b, bytes):
        b = b.decode("utf-8", "replace")
    return "\n".join(b.splitlines()[-n:])


def create_topic(bootstrap, topic, partitions):
    a = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        a.create_topics([NewTopic(topic, partitions, 1)])
    finally:
        a.close()


def leaders(cluster, node, topic, partitions):
    """{partition: leader} of topic as kcat -L -J through node describes it, once every
    partition has a leader."""
    def described():
        md = json.loads(kcat(cluster.bootstrap(node), "-L", "-J", "-t", topic).stdout)
        ts = [t for t in md["topics"] if t["topic"] == topic]
        if len(ts) != 1 or len(ts[0]["partitions"]) != partitions:
            return None
        ls = {p["partition"]: p["leader"] for p in ts[0]["partitions"]}
        return ls if all(l >= 0 for l in ls.values()) else None
    return wait_until(described, TIMEOUT_S, what="the leaders of %s through node %d" % (topic, node))


def end_offsets(bootstrap, topic, partitions):
    c = KafkaConsumer(bootstrap_servers=bootstrap)
    try:
        ends = c.end_offsets([TopicPartition(topic, p) for p in range(partitions)])
        return {tp.partition: o for tp, o in ends.items()}
    finally:
        c.close()


def committed(bootstrap, group):
    a = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        return {tp.partition: om.offset for tp, om in a.list_consumer_group_offsets(group).items()}
    finally:
        a.close()


def test_kcat_metadata_through_each_node(cluster):
    """kcat -L through each node lists the three brokers at their Kafka listeners and names the
    same controller."""
    named = set()
    for n in cluster.nodes:
        out = kcat(n.bootstrap, "-L").stdout.decode()
        assert " 3 brokers:" in out, out
        for m in cluster.nodes:
            assert re.search(r"^\s*broker %d at %s( \(controller\))?$" % (m.node_id, re.escape(m.bootstrap)), out, re.M), out
        ctl = re.findall(r"^\s*broker (\d+) at \S+ \(controller\)$", out, re.M)
        assert len(ctl) == 1, out
        named.add(int(ctl[0]))
    assert len(named) == 1, "the nodes name controllers %r" % named


def test_kafka_python_produce_group_consume_across_nodes(cluster, topic):
    parts, group = 6, "kp-" + topic
    create_topic(cluster.bootstrap(0), topic, parts)
    ls = leaders(cluster, 1, topic, parts)
    per_node = {}
    for l in ls.values():
        per_node[l] = per_node.get(l, 0) + 1
    assert per_node == {0: 2, 1: 2, 2: 2}, ls

    # 5,000 keyed records from two producers, each bootstrapped with another node: acks=1,
    # linger, the default batch size; the second compresses with gzip.
    sent = {}  # key -> (partition, offset)
    for i, extra in enumerate(({}, {"compression_type": "gzip"})):
        p = KafkaProducer(bootstrap_servers=cluster.bootstrap(i), acks=1, linger_ms=20, **extra)
        try:
            futures = []
            for j in range(2500):
                k = "p%d-%d" % (i, j)
                futures.append((k, p.send(topic, key=k.encode(), value=("value of %s " % k).encode() * 4)))
            p.flush(timeout=TIMEOUT_S)
            for k, f in futures:
                md = f.get(timeout=TIMEOUT_S)
                sent[k] = (md.partition, md.offset)
        finally:
            p.close(timeout=10)
    assert len(sent) == 5000
    assert len(set(sent.values())) == 5000, "two records acknowledged at one offset"
    # The gzip producer's batches are stored as it sent them, on the nodes that lead the partitions.
    codecs = set()
    for part, leader in ls.items():
        codecs |= {codec for _, codec, _ in cluster.node_of(leader).stored_batches(topic, part)}
    assert codecs == {CODEC_IDS["none"], CODEC_IDS["gzip"]}, codecs

    # A group consumer bootstrapped with node 2 reads every record once, then commits and closes.
    c1 = KafkaConsumer(topic, bootstrap_servers=cluster.bootstrap(2), group_id=group,
                       auto_offset_reset="earliest")
    got = {}
    try:
        deadline = time.monotonic() + TIMEOUT_S
        while len(got) < len(sent) and time.monotonic() < deadline:
            for tp, msgs in c1.poll(timeout_ms=500).items():
                for m in msgs:
                    k = m.key.decode()
                    assert k not in got, "%s read twice" % k
                    got[k] = (tp.partition, m.offset)
        assert got == sent, "%d of %d records read, %d as acknowledged" % (
            len(got), len(sent), sum(1 for k in got if sent.get(k) == got[k]))
        c1.commit()
    finally:
        c1.close()
    ends = end_offsets(cluster.bootstrap(1), topic, parts)
    assert sum(ends.values()) == 5000, ends
    assert committed(cluster.bootstrap(0), group) == ends

    # A second consumer of the group, bootstrapped with node 0, resumes at the commits: every
    # partition is assigned to it at the log end, and it reads nothing.
    c2 = KafkaConsumer(topic, bootstrap_servers=cluster.bootstrap(0), group_id=group,
                       auto_offset_reset="earliest")
    try:
        records = []

        def assigned_at_end():
            for msgs in c2.poll(timeout_ms=200).values():
                records.extend(msgs)
            return len(c2.assignment()) == parts
        wait_until(assigned_at_end, TIMEOUT_S, what="an assignment of every partition")
        positions = {tp.partition: c2.position(tp) for tp in c2.assignment()}
        assert positions == ends, positions
        for msgs in c2.poll(timeout_ms=1000).values():
            records.extend(msgs)
        assert records == [], "the second consumer read %d records, the first of them %r" % (len(records), records[0])
    finally:
        c2.close()
    assert committed(cluster.bootstrap(1), group) == ends


def test_kcat_produce_consume_through_different_nodes(cluster, topic):
    parts = 6
    create_topic(cluster.bootstrap(1), topic, parts)
    leaders(cluster, 0, topic, parts)
    recs = [("key-%d" % i, "value-%d-%s" % (i, "x" * (i % 50))) for i in range(1000)]
    kcat(cluster.bootstrap(0), "-P", "-t", topic, "-K:", stdin="".join("%s:%s\n" % kv for kv in recs).encode())
    out = kcat(cluster.bootstrap(2), "-C", "-t", topic, "-e", "-o", "beginning", "-f", "%p %o %k:%s\n").stdout
    lines = out.decode().splitlines()
    assert len(lines) == 1000, "%d lines consumed\n%s" % (len(lines), _tail(out))
    read, by_part = [], {}
    for ln in lines:
        p, o, kv = ln.split(" ", 2)
        by_part.setdefault(int(p), []).append(int(o))
        k, v = kv.split(":", 1)
        read.append((k, v))
    assert sorted(read) == sorted(recs)
    for p, offs in by_part.items():
        assert offs == list(range(len(offs))), "partition %d read at offsets %r" % (p, offs[:20])
    assert len(by_part) > 1, "every record went to one partition: %r" % sorted(by_part)


ASSIGN_RE = re.compile(r"^% Group (\S+) rebalanced \(memberid (\S+)\): (assigned|revoked): ?(.*)$")


class KcatMember:
    """A kcat -G process: its record lines ("partition offset key") and its last assignment."""

    def __init__(self, name, bootstrap, group, topic):
        self.name = name
        self.cmd = [kcat_bin(), "-b", bootstrap, "-G", group, "-u", "-X", "auto.offset.reset=earliest",
                    "-f", "%p %o %k\\n", topic]
        self.proc = subprocess.Popen(self.cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
        self.lock = threading.Lock()
        self.records = []
        self.stderr = []
        self.assigned = set()
        self.threads = [threading.Thread(target=self._out, daemon=True), threading.Thread(target=self._err, daemon=True)]
        for t in self.threads:
            t.start()

    def _out(self):
        for line in self.proc.stdout:
            part, off, key = line.decode("utf-8", "replace").rstrip("\n").split(" ", 2)
            with self.lock:
                self.records.append((int(part), int(off), key))

    def _err(self):
        for raw in self.proc.stderr:
            line = raw.decode("utf-8", "replace").rstrip("\n")
            with self.lock:
                self.stderr.append(line)
                m = ASSIGN_RE.match(line)
                if m:
                    ps = {int(p) for p in re.findall(r"\[(\d+)\]", m.group(4))}
                    self.assigned = ps if m.group(3) == "assigned" else set()

    def assignment(self):
        with self.lock:
            return set(self.assigned)

    def consumed(self):
        with self.lock:
            return list(self.records)

    def log(self, n=40):
        with self.lock:
            return "--- %s stderr (tail) ---\n%s" % (self.name, "\n".join(self.stderr[-n:]))

    def stop(self, timeout=30):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError("%s did not exit within %ds of SIGTERM\n%s" % (self.name, timeout, self.log()))
        for t in self.threads:
            t.join(timeout=10)
        return self.proc.returncode


def test_kcat_balanced_group_across_nodes(cluster, topic):
    """Two kcat -G members, each bootstrapped with another node, split the partitions (led by all
    three nodes); each record is consumed once, by the member its partition is assigned to; a
    clean exit commits at the log end."""
    parts, group = 6, "kcat-" + topic + "-" + uuid.uuid4().hex[:6]
    create_topic(cluster.bootstrap(2), topic, parts)
    assert set(leaders(cluster, 2, topic, parts).values()) == {0, 1, 2}
    a = KcatMember("kcat-a", cluster.bootstrap(1), group, topic)
    b = KcatMember("kcat-b", cluster.bootstrap(2), group, topic)
    try:
        def split():
            x, y = a.assignment(), b.assignment()
            return x and y and not (x & y) and (x | y) == set(range(parts))
        try:
            wait_until(split, TIMEOUT_S, what="the partitions split between kcat-a and kcat-b")
        except AssertionError as e:
            raise AssertionError("%s\n%s\n%s" % (e, a.log(), b.log()))
        owner = {p: m for m in (a, b) for p in m.assignment()}

        p = KafkaProducer(bootstrap_servers=cluster.bootstrap(0), acks=1, linger_ms=20)
        keys = set()
        try:
            futures = []
            for i in range(600):
                k = "g-%d" % i
                keys.add(k)
                futures.append(p.send(topic, key=k.encode(), value=b"v"))
            p.flush(timeout=TIMEOUT_S)
            for f in futures:
                f.get(timeout=TIMEOUT_S)
        finally:
            p.close(timeout=10)

        def all_consumed():
            return {k for m in (a, b) for _, _, k in m.consumed()} >= keys
        try:
            wait_until(all_consumed, TIMEOUT_S, what="the records consumed by the group")
        except AssertionError as e:
            raise AssertionError("%s\n%s\n%s" % (e, a.log(), b.log()))
        assert a.assignment() | b.assignment() == set(owner), "the group rebalanced while consuming"
    finally:
        rcs = [m.stop() for m in (a, b)]
    assert rcs == [0, 0], "%r\n%s\n%s" % (rcs, a.log(), b.log())
    seen = {}
    for m in (a, b):
        for part, off, k in m.consumed():
            assert owner[part] is m, "%s consumed %s of partition %d, assigned to %s" % (m.name, k, part, owner[part].name)
            assert (part, off) not in seen, "%d/%d consumed twice" % (part, off)
            seen[(part, off)] = k
    assert sorted(seen.values()) == sorted(keys)
    ends = end_offsets(cluster.bootstrap(1), topic, parts)
    assert sorted(seen) == sorted((pt, o) for pt in range(parts) for o in range(ends[pt]))
    wait_until(lambda: committed(cluster.bootstrap(0), group) == ends, TIMEOUT_S,
               what="the group's commits at the log end")
