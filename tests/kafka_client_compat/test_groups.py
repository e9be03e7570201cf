"""Consumer groups with real clients: kafka-python 2.0.2's KafkaConsumer(group_id=...) and kcat 1.7.1's
balanced consumer (-G, librdkafka 2.0.2), default settings unless a test says otherwise.

The broker runs with its default group.initial.rebalance.delay (3 s), so a new group's first
rebalance waits that long: the deadlines below allow for it.

kcat runs with -u (unbuffered output: each record line arrives as it is printed) and prints a
"% Group G rebalanced (memberid M): assigned: t [0], t [2]" (or "revoked: ...") line on stderr at
each rebalance, which is how the tests follow its assignment.
"""

import re
import signal
import subprocess
import threading
import time

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import NewTopic

from compat_helpers import kcat_bin, wait_until

GROUP_TIMEOUT_S = 60  # a rebalance (3 s initial delay) or catching up, on a loaded machine


def create_topic(bootstrap, topic, partitions):
    a = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        a.create_topics([NewTopic(topic, partitions, 1)])
    finally:
        a.close()


def produce(bootstrap, topic, partitions, per_partition, tag):
    """per_partition records to each partition, keys "<tag>-<partition>-<i>"; returns the keys."""
    p = KafkaProducer(bootstrap_servers=bootstrap)
    keys = []
    try:
        futures = []
        for part in range(partitions):
            for i in range(per_partition):
                k = "%s-%d-%d" % (tag, part, i)
                keys.append(k)
                futures.append(p.send(topic, key=k.encode(), value=b"v-" + k.encode(), partition=part))
        p.flush(timeout=30)
        for f in futures:
            f.get(timeout=30)
    finally:
        p.close(timeout=10)
    return keys


def committed(bootstrap, group):
    """{partition: offset} of the group's commits, read with the admin client (OffsetFetch)."""
    a = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        return {tp.partition: om.offset for tp, om in a.list_consumer_group_offsets(group).items()}
    finally:
        a.close()


def end_offsets(bootstrap, topic, partitions):
    c = KafkaConsumer(bootstrap_servers=bootstrap)
    try:
        ends = c.end_offsets([TopicPartition(topic, p) for p in range(partitions)])
        return {tp.partition: o for tp, o in ends.items()}
    finally:
        c.close()


def describe(bootstrap, group):
    a = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        return a.describe_consumer_groups([group])[0]
    finally:
        a.close()


def poll_keys(consumer, want, timeout=GROUP_TIMEOUT_S):
    """Poll until len(want) records arrived (or the deadline); returns [(partition, offset, key)]."""
    got = []
    deadline = time.monotonic() + timeout
    while len(got) < want and time.monotonic() < deadline:
        for tp, msgs in consumer.poll(timeout_ms=500).items():
            got.extend((tp.partition, m.offset, m.key.decode()) for m in msgs)
    return got


def test_kafka_python_group_commits_and_resumes(broker, topic):
    bs, group, parts = broker.bootstrap, "kp-" + topic, 3
    create_topic(bs, topic, parts)

    # Default settings: auto commit every 5 s, auto_offset_reset "latest" (a new group starts at
    # the log end, so the records are produced once the consumer knows its positions).
    c1 = KafkaConsumer(topic, bootstrap_servers=bs, group_id=group)
    try:
        wait_until(lambda: c1.poll(timeout_ms=200) is not None and len(c1.assignment()) == parts,
                   GROUP_TIMEOUT_S, what="an assignment of every partition")
        assert c1.assignment() == {TopicPartition(topic, p) for p in range(parts)}
        assert [c1.position(TopicPartition(topic, p)) for p in range(parts)] == [0] * parts

        keys = produce(bs, topic, parts, 10, "first")
        got = poll_keys(c1, len(keys))
        assert sorted(k for _, _, k in got) == sorted(keys), got
        assert sorted((p, o) for p, o, _ in got) == [(p, o) for p in range(parts) for o in range(10)]

        # The periodic auto commit (made from poll) reaches the broker.
        def commits_at_end():
            c1.poll(timeout_ms=200)
            return committed(bs, group) == {p: 10 for p in range(parts)}
        wait_until(commits_at_end, GROUP_TIMEOUT_S, what="auto commits at the log end")

        g = describe(bs, group)
        assert (g.error_code, g.state, g.protocol_type, g.protocol) == (0, "Stable", "consumer", "range"), g
        assert len(g.members) == 1, g
        m = g.members[0]
        assert m.client_id.startswith("kafka-python"), m
        assigned = {(t, p) for t, ps in m.member_assignment.assignment for p in ps}
        assert assigned == {(topic, p) for p in range(parts)}, m.member_assignment
    finally:
        c1.close()  # commits (autocommit) and leaves the group

    wait_until(lambda: describe(bs, group).state == "Empty", GROUP_TIMEOUT_S, what="the group Empty after close")
    assert committed(bs, group) == {p: 10 for p in range(parts)}

    # A restarted consumer resumes where the first stopped: the new records only.
    more = produce(bs, topic, parts, 5, "second")
    c2 = KafkaConsumer(topic, bootstrap_servers=bs, group_id=group)
    try:
        got = poll_keys(c2, len(more))
        assert sorted(k for _, _, k in got) == sorted(more), got
        assert sorted((p, o) for p, o, _ in got) == [(p, o) for p in range(parts) for o in range(10, 15)]
        # Nothing else is delivered: a further poll returns no record.
        assert c2.poll(timeout_ms=1000) == {}
    finally:
        c2.close()
    assert committed(bs, group) == {p: 15 for p in range(parts)}


ASSIGN_RE = re.compile(r"^% Group (\S+) rebalanced \(memberid (\S+)\): (assigned|revoked): ?(.*)$")


class Kcat:
    """A kcat -G process; its record lines ("partition offset key") and rebalances collected as
    they come."""

    def __init__(self, name, bootstrap, group, topic, *extra):
        self.name = name
        self.cmd = [kcat_bin(), "-b", bootstrap, "-G", group, "-u", "-X", "auto.offset.reset=earliest",
                    "-f", "%p %o %k\\n", *extra, topic]
        self.proc = subprocess.Popen(self.cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
        self.lock = threading.Lock()
        self.records = []      # (partition, offset, key)
        self.stderr = []
        self.assigned = set()  # the partitions of the last rebalance event
        self.events = 0
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
                    self.events += 1
                    parts = {int(p) for p in re.findall(r"\[(\d+)\]", m.group(4))}
                    self.assigned = parts if m.group(3) == "assigned" else set()

    def assignment(self):
        with self.lock:
            return set(self.assigned)

    def consumed(self):
        with self.lock:
            return list(self.records)

    def log(self, n=60):
        with self.lock:
            return "--- %s stderr (tail) ---\n%s" % (self.name, "\n".join(self.stderr[-n:]))

    def stop(self, sig=signal.SIGTERM, timeout=30):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError("%s did not exit within %ds of signal %d\n%s" % (self.name, timeout, sig, self.log()))
        for t in self.threads:
            t.join(timeout=10)
        return self.proc.returncode


def wait_split(a, b, parts):
    """Until a and b hold disjoint, non-empty assignments covering every partition."""
    def split():
        x, y = a.assignment(), b.assignment()
        return x and y and not (x & y) and (x | y) == set(range(parts))
    wait_until(split, GROUP_TIMEOUT_S, what="the partitions split between %s and %s (%s / %s)\n%s\n%s" % (
        a.name, b.name, a.assignment(), b.assignment(), a.log(20), b.log(20)))


def wait_consumed(consumers, keys, what):
    want = set(keys)

    def done():
        have = {k for c in consumers for _, _, k in c.consumed()}
        return want <= have
    try:
        wait_until(done, GROUP_TIMEOUT_S, what=what)
    except AssertionError as e:
        raise AssertionError("%s\n%s" % (e, "\n".join(c.log(30) for c in consumers)))


def test_kcat_group_split_and_takeover_on_exit(broker, topic):
    bs, group, parts = broker.bootstrap, "kcat-" + topic, 4
    create_topic(bs, topic, parts)
    first = produce(bs, topic, parts, 25, "first")
    a = Kcat("kcat-a", bs, group, topic)
    b = Kcat("kcat-b", bs, group, topic)
    try:
        wait_split(a, b, parts)
        wait_consumed([a, b], first, "the first records consumed")
        # Records produced while both are members go to the member that owns their partition.
        second = produce(bs, topic, parts, 25, "second")
        wait_consumed([a, b], second, "the second records consumed")
        owned = {p: c for c in (a, b) for p in c.assignment()}
        for c in (a, b):
            for p, _, k in c.consumed():
                if k.startswith("second-"):
                    assert owned[p] is c, "%s consumed %s of partition %d, owned by %s" % (c.name, k, p, owned[p].name)

        # a exits (SIGTERM: kcat closes its consumer, committing and leaving): b takes every
        # partition over and resumes at a's commits.
        assert a.stop() == 0, a.log()
        wait_until(lambda: b.assignment() == set(range(parts)), GROUP_TIMEOUT_S,
                   what="kcat-b assigned every partition after kcat-a exited\n%s" % b.log())
        third = produce(bs, topic, parts, 25, "third")
        wait_consumed([b], third, "kcat-b consuming the third records")
    finally:
        for c in (a, b):
            c.stop()
    # Exactly once each: a's clean exit committed what it printed, and b started there.
    seen = [(p, o) for c in (a, b) for p, o, _ in c.consumed()]
    assert sorted(seen) == [(p, o) for p in range(parts) for o in range(75)], (
        "records consumed more than once or not at all: %d consumed of %d" % (len(seen), parts * 75))
    ends = end_offsets(bs, topic, parts)
    assert committed(bs, group) == ends


def test_kcat_group_takeover_after_kill(broker, topic):
    """kcat-a is killed (SIGKILL: no commit, no LeaveGroup); the session timeout (6 s here) removes
    it and kcat-b takes its partitions over from a's last commit: no record is lost; records
    a printed after its last commit may come again, from b."""
    bs, group, parts = broker.bootstrap, "kcat-kill-" + topic, 4
    create_topic(bs, topic, parts)
    short = ("-X", "session.timeout.ms=6000", "-X", "heartbeat.interval.ms=1000")
    a = Kcat("kcat-a", bs, group, topic, *short)
    b = Kcat("kcat-b", bs, group, topic, *short)
    try:
        wait_split(a, b, parts)
        first = produce(bs, topic, parts, 25, "first")
        wait_consumed([a, b], first, "the first records consumed")
        a_parts = a.assignment()
        a.stop(signal.SIGKILL)
        wait_until(lambda: b.assignment() == set(range(parts)), GROUP_TIMEOUT_S,
                   what="kcat-b assigned every partition after kcat-a was killed\n%s" % b.log())
        second = produce(bs, topic, parts, 25, "second")
        wait_consumed([b], second, "kcat-b consuming the second records")
    finally:
        for c in (a, b):
            c.stop()
    by_a = {(p, o) for p, o, _ in a.consumed()}
    seen = {}
    for c in (a, b):
        for p, o, _ in c.consumed():
            seen[(p, o)] = seen.get((p, o), 0) + 1
    assert set(seen) == {(p, o) for p in range(parts) for o in range(50)}, "records not consumed"
    for (p, o), n in seen.items():
        if n > 1:
            # Only what a printed from its own partitions, after its last commit, comes again.
            assert n == 2 and (p, o) in by_a and p in a_parts, (p, o, n)
    assert committed(bs, group) == end_offsets(bs, topic, parts)
