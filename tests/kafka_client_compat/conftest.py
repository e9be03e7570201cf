"""Kafka client compatibility suite: shared fixtures.

The suite runs real Kafka clients (kafka-python 2.0.2 and kcat 1.7.1 / librdkafka 2.0.2, both from
Debian) against the real broker binary.

Environment:
  THORSTREAM_BIN              broker binary (default: <repo root>/bin/thorstream; build it with
                              `go build -o bin/ ./cmd/...`)
  THORSTREAM_TEST_LOG_LEVEL   broker log level for the run (default: debug, so that the broker's
                              "closing connection after an unsupported request" lines, which name
                              the API key and version, appear in the failure report)
  THORSTREAM_TEST_FSYNC       broker fsync policy (default: always, the broker's own default)
  KCAT                        kcat binary (default: kcat on PATH)

Every test gets its own topic (the `topic` fixture). When a test fails, the broker output written
while the test ran (and the tail of what came before) is attached to the failure report.

The `cluster` fixture (module scope) starts three broker processes forming one cluster instead
(THORSTREAM_NODE_ID, THORSTREAM_ADDR, THORSTREAM_CLUSTER_PEERS; each node's Kafka listener on its
binary port + 100); a failing test's report then carries each node's output.
"""

import logging
import os
import random
import signal
import socket
import struct
import subprocess
import glob
import time
import uuid
import warnings

import pytest

from compat_helpers import wait_until  # noqa: F401 - re-exported for tests

# Keep kafka-python's DEBUG log (captured by pytest, see pytest.ini) to the requests and responses.
for _noisy in ("kafka.metrics", "kafka.protocol.parser", "kafka.producer.record_accumulator"):
    logging.getLogger(_noisy).setLevel(logging.INFO)

REPO_ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
STARTUP_DEADLINE_S = 60.0
STOP_TIMEOUT_S = 15.0


def free_port():
    """A free loopback TCP port (bind to port 0 and let the kernel choose)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def kafka_api_versions_v0(host, port, timeout=2.0):
    """Send a raw ApiVersions v0 request and return {api_key: (min, max)}.

    Used as the readiness probe: the port must accept the connection *and* answer a Kafka request.
    """
    client_id = b"thorstream-readiness"
    body = struct.pack(">hhih", 18, 0, 424242, len(client_id)) + client_id
    with socket.create_connection((host, port), timeout=timeout) as s:
        s.settimeout(timeout)
        s.sendall(struct.pack(">i", len(body)) + body)

        def recv_exact(n):
            buf = b""
            while len(buf) < n:
                chunk = s.recv(n - len(buf))
                if not chunk:
                    raise ConnectionError("connection closed after %d of %d bytes" % (len(buf), n))
                buf += chunk
            return buf

        (size,) = struct.unpack(">i", recv_exact(4))
        payload = recv_exact(size)
    corr, err, n = struct.unpack(">ihi", payload[:10])
    if corr != 424242:
        raise AssertionError("ApiVersions answered with correlation id %d" % corr)
    if err != 0:
        raise AssertionError("ApiVersions v0 answered error %d" % err)
    table = {}
    off = 10
    for _ in range(n):
        key, lo, hi = struct.unpack(">hhh", payload[off:off + 6])
        table[key] = (lo, hi)
        off += 6
    return table


class Broker:
    def __init__(self, bootstrap, host, kafka_port, proc, log_path, data_dir, api_versions):
        self.bootstrap = bootstrap
        self.host = host
        self.kafka_port = kafka_port
        self.proc = proc
        self.log_path = log_path
        self.data_dir = data_dir
        self.api_versions = api_versions

    def log_size(self):
        try:
            return os.path.getsize(self.log_path)
        except OSError:
            return 0

    def stored_batches(self, topic, partition=0):
        """The record batches stored for topic-partition, read from the segment files.

        The broker stores producer batches byte for byte (docs/STORAGE.md), so the codec bits of
        the attributes tell whether the client really compressed. Returns a list of
        (base_offset, codec, record_count); codec is attributes & 7 (0 none, 1 gzip, 2 snappy,
        3 lz4, 4 zstd).
        """
        out = []
        for path in sorted(glob.glob(os.path.join(self.data_dir, "%s-%d" % (topic, partition), "*.log"))):
            with open(path, "rb") as f:
                data = f.read()
            off = 0
            while off + 61 <= len(data):
                base, length = struct.unpack(">qi", data[off:off + 12])
                if length <= 0 or off + 12 + length > len(data):
                    break  # a batch still being written
                (attrs,) = struct.unpack(">h", data[off + 21:off + 23])
                (count,) = struct.unpack(">i", data[off + 57:off + 61])
                out.append((base, attrs & 7, count))
                off += 12 + length
        return out

    def read_log(self, start=0):
        with open(self.log_path, "rb") as f:
            f.seek(start)
            return f.read().decode("utf-8", "replace")


_BROKER = None  # the running broker, for the failure-report hook


def _broker_bin():
    path = os.environ.get("THORSTREAM_BIN", os.path.join("bin", "thorstream"))
    if not os.path.isabs(path):
        path = os.path.join(REPO_ROOT, path)
    return path


def _start_broker(binary, host, addr_port, kafka_port, data_dir, log_path):
    """Start the broker and poll (deadline STARTUP_DEADLINE_S) until its Kafka port answers
    ApiVersions. Returns (proc, api_versions or None, last error)."""
    env = dict(os.environ)
    for k in list(env):
        if k.startswith("THORSTREAM_") and k != "THORSTREAM_BIN":
            del env[k]
    env.update({
        "THORSTREAM_DATA_DIR": data_dir,
        "THORSTREAM_HTTP_ADDR": "off",
        "THORSTREAM_ADDR": "%s:%d" % (host, addr_port),
        "THORSTREAM_KAFKA_ADDR": "%s:%d" % (host, kafka_port),
        "THORSTREAM_LOG_LEVEL": os.environ.get("THORSTREAM_TEST_LOG_LEVEL", "debug"),
        "THORSTREAM_FSYNC": os.environ.get("THORSTREAM_TEST_FSYNC", "always"),
    })
    with open(log_path, "wb") as logf:
        proc = subprocess.Popen([binary], env=env, stdout=logf, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, cwd=os.path.dirname(log_path))
    deadline = time.monotonic() + STARTUP_DEADLINE_S
    last = None
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return proc, None, "broker exited with status %s" % proc.returncode
        try:
            return proc, kafka_api_versions_v0(host, kafka_port, timeout=1.0), None
        except Exception as e:  # noqa: BLE001 - retried until the deadline
            last = e
            time.sleep(0.05)
    return proc, None, last


@pytest.fixture(scope="session")
def broker(tmp_path_factory):
    global _BROKER
    binary = _broker_bin()
    if not (os.path.isfile(binary) and os.access(binary, os.X_OK)):
        pytest.fail("broker binary %s not found: build it with `go build -o bin/ ./cmd/...` "
                    "or set THORSTREAM_BIN" % binary, pytrace=False)

    workdir = tmp_path_factory.mktemp("thorstream")
    host = "127.0.0.1"
    # The ports are free when chosen but another process may take one before the broker binds it:
    # a start that fails with "address already in use" is retried on new ports.
    for attempt in range(1, 4):
        data_dir = str(workdir / ("data-%d" % attempt))
        log_path = str(workdir / ("broker-%d.log" % attempt))
        addr_port = free_port()
        kafka_port = free_port()
        while kafka_port == addr_port:
            kafka_port = free_port()
        proc, api_versions, last = _start_broker(binary, host, addr_port, kafka_port, data_dir, log_path)
        if api_versions is not None:
            break
        with open(log_path, "rb") as f:
            out = f.read().decode("utf-8", "replace")
        if proc.poll() is not None and "address already in use" in out and attempt < 3:
            continue
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        pytest.fail("broker did not answer ApiVersions on %s:%d within %.0fs: %r\n--- broker output ---\n%s"
                    % (host, kafka_port, STARTUP_DEADLINE_S, last, out), pytrace=False)

    try:
        b = Broker("%s:%d" % (host, kafka_port), host, kafka_port, proc, log_path, data_dir, api_versions)
        _BROKER = b
        yield b
    finally:
        _BROKER = None
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
                warnings.warn("broker did not stop within %.0fs of SIGTERM and was killed; output in %s"
                              % (STOP_TIMEOUT_S, log_path))
            else:
                if proc.returncode != 0:
                    warnings.warn("broker exited with status %d after SIGTERM; output in %s"
                                  % (proc.returncode, log_path))
        else:
            warnings.warn("broker had exited (status %s) before the end of the session; output in %s"
                          % (proc.returncode, log_path))


_CLUSTER_NODES = []  # the nodes of the running cluster, for the failure-report hook
CLUSTER_SIZE = 3


def cluster_ports(n):
    """n ports p, each with p and p + 100 free on loopback, all distinct, drawn below the kernel's
    ephemeral range (so that no client's or peer's outgoing connection takes one first)."""
    lo, hi = 10000, 32000
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            eph = int(f.read().split()[0])
        if eph - 100 > lo + 1000:
            hi = eph - 100
    except (OSError, ValueError, IndexError):
        pass

    def free(p):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind(("127.0.0.1", p))
                return True
            except OSError:
                return False
    ports, taken = [], set()
    for _ in range(10000):
        if len(ports) == n:
            return ports
        p = random.randrange(lo, hi)
        if p in taken or p + 100 in taken or not free(p) or not free(p + 100):
            continue
        taken.update((p, p + 100))
        ports.append(p)
    raise RuntimeError("no %d free port pairs p, p+100 in [%d, %d)" % (n, lo, hi))


def kafka_metadata_brokers(host, port, timeout=2.0):
    """Send a raw Metadata v1 request (no topics) and return ({node_id: "host:port"}, controller_id)."""
    client_id = b"thorstream-readiness"
    body = struct.pack(">hhih", 3, 1, 434343, len(client_id)) + client_id + struct.pack(">i", 0)
    with socket.create_connection((host, port), timeout=timeout) as s:
        s.settimeout(timeout)
        s.sendall(struct.pack(">i", len(body)) + body)
        buf = b""
        while len(buf) < 4 or len(buf) < 4 + struct.unpack(">i", buf[:4])[0]:
            chunk = s.recv(65536)
            if not chunk:
                raise ConnectionError("connection closed after %d bytes" % len(buf))
            buf += chunk
    payload = buf[4:]
    corr, n = struct.unpack(">ii", payload[:8])
    if corr != 434343:
        raise AssertionError("Metadata answered with correlation id %d" % corr)
    off, brokers = 8, {}
    for _ in range(n):
        node_id, hlen = struct.unpack(">ih", payload[off:off + 6])
        off += 6
        h = payload[off:off + hlen].decode()
        off += hlen
        (p, rlen) = struct.unpack(">ih", payload[off:off + 6])
        off += 6 + max(rlen, 0)
        brokers[node_id] = "%s:%d" % (h, p)
    (controller,) = struct.unpack(">i", payload[off:off + 4])
    return brokers, controller


class Cluster:
    """The nodes of a running cluster; nodes[i] is a Broker with node_id i."""

    def __init__(self, nodes):
        self.nodes = nodes

    def bootstrap(self, i):
        return self.nodes[i].bootstrap

    def node_of(self, node_id):
        return next(n for n in self.nodes if n.node_id == node_id)


def _stop_procs(procs, what):
    """SIGTERM every process at once (a cluster's nodes then stop in parallel), then wait."""
    running = [(proc, log_path) for proc, log_path in procs if proc.poll() is None]
    for proc, _ in running:
        proc.send_signal(signal.SIGTERM)
    for proc, log_path in running:
        try:
            proc.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            warnings.warn("%s did not stop within %.0fs of SIGTERM and was killed; output in %s"
                          % (what, STOP_TIMEOUT_S, log_path))
        else:
            if proc.returncode != 0:
                warnings.warn("%s exited with status %d after SIGTERM; output in %s"
                              % (what, proc.returncode, log_path))


def _start_cluster(binary, workdir, attempt):
    """Start CLUSTER_SIZE nodes and wait (STARTUP_DEADLINE_S) until each answers ApiVersions on
    its Kafka port and every node's Metadata lists all the nodes and the same controller.
    Returns (nodes, None) or (procs started, error text)."""
    host = "127.0.0.1"
    ports = cluster_ports(CLUSTER_SIZE)
    procs, nodes = [], []
    for i, port in enumerate(ports):
        peers = ",".join("%d=%s:%d" % (j, host, p) for j, p in enumerate(ports) if j != i)
        data_dir = str(workdir / ("node-%d-%d" % (i, attempt)))
        log_path = str(workdir / ("node-%d-%d.log" % (i, attempt)))
        env = dict(os.environ)
        for k in list(env):
            if k.startswith("THORSTREAM_") and k != "THORSTREAM_BIN":
                del env[k]
        env.update({
            "THORSTREAM_NODE_ID": str(i),
            "THORSTREAM_ADDR": "%s:%d" % (host, port),
            "THORSTREAM_CLUSTER_PEERS": peers,
            "THORSTREAM_DATA_DIR": data_dir,
            "THORSTREAM_HTTP_ADDR": "off",
            "THORSTREAM_LOG_LEVEL": os.environ.get("THORSTREAM_TEST_LOG_LEVEL", "debug"),
            "THORSTREAM_FSYNC": os.environ.get("THORSTREAM_TEST_FSYNC", "always"),
        })
        with open(log_path, "wb") as logf:
            proc = subprocess.Popen([binary], env=env, stdout=logf, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, cwd=str(workdir))
        procs.append((proc, log_path))
        nodes.append(Broker("%s:%d" % (host, port + 100), host, port + 100, proc, log_path, data_dir, None))
        nodes[-1].node_id = i
    want = {n.node_id: n.bootstrap for n in nodes}
    deadline = time.monotonic() + STARTUP_DEADLINE_S
    last = None
    while time.monotonic() < deadline:
        for n in nodes:
            if n.proc.poll() is not None:
                return procs, "node %d exited with status %s:\n%s" % (n.node_id, n.proc.returncode, n.read_log())
        try:
            controllers = set()
            for n in nodes:
                if n.api_versions is None:
                    n.api_versions = kafka_api_versions_v0(host, n.kafka_port, timeout=1.0)
                brokers, controller = kafka_metadata_brokers(host, n.kafka_port)
                if brokers != want:
                    raise AssertionError("node %d lists brokers %r" % (n.node_id, brokers))
                controllers.add(controller)
            if len(controllers) == 1 and controllers <= set(want):
                return nodes, None
            last = "controllers %r" % controllers
        except Exception as e:  # noqa: BLE001 - retried until the deadline
            last = e
        time.sleep(0.05)
    return procs, "no cluster formed within %.0fs: %r" % (STARTUP_DEADLINE_S, last)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """Three nodes of one cluster on loopback, each with a data directory of its own."""
    binary = _broker_bin()
    if not (os.path.isfile(binary) and os.access(binary, os.X_OK)):
        pytest.fail("broker binary %s not found: build it with `go build -o bin/ ./cmd/...` "
                    "or set THORSTREAM_BIN" % binary, pytrace=False)
    workdir = tmp_path_factory.mktemp("thorstream-cluster")
    for attempt in range(1, 4):
        nodes, err = _start_cluster(binary, workdir, attempt)
        if err is None:
            break
        _stop_procs(nodes, "a cluster node")
        if "address already in use" in err and attempt < 3:
            continue
        pytest.fail("cluster did not start: %s" % err, pytrace=False)
    procs = [(n.proc, n.log_path) for n in nodes]
    try:
        _CLUSTER_NODES[:] = nodes
        yield Cluster(nodes)
    finally:
        _CLUSTER_NODES[:] = []
        exited = [n for n in nodes if n.proc.poll() is not None]
        _stop_procs(procs, "a cluster node")
        for n in exited:
            warnings.warn("cluster node %d had exited (status %s) before the end of its tests; output in %s"
                          % (n.node_id, n.proc.returncode, n.log_path))


@pytest.fixture
def bootstrap(broker):
    return broker.bootstrap


@pytest.fixture
def topic(request):
    """A topic name unique to this test (valid Kafka characters only)."""
    base = "".join(c if c.isalnum() or c in "._-" else "-" for c in request.node.name)[:120]
    return "%s-%s" % (base, uuid.uuid4().hex[:8])


@pytest.fixture(autouse=True)
def _broker_log_offset(request):
    """Remember where the broker log was when the test started (for the failure report)."""
    b = _BROKER
    request.node._broker_log_start = b.log_size() if b is not None else 0
    request.node._cluster_log_starts = [(n, n.log_size()) for n in _CLUSTER_NODES]
    yield


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if not rep.failed:
        return
    logs = [(n, start, "thorstream cluster node %d output" % n.node_id)
            for n, start in getattr(item, "_cluster_log_starts", [])]
    if _BROKER is not None and "cluster" not in getattr(item, "fixturenames", ()):
        logs.insert(0, (_BROKER, getattr(item, "_broker_log_start", 0), "thorstream broker output"))
    for b, start, title in logs:
        try:
            during = b.read_log(start)
            before = b.read_log(0)[:start] if start else ""
            tail = "\n".join(before.splitlines()[-40:])
            text = ""
            if tail:
                text += "--- broker output before this test (last 40 lines) ---\n%s\n" % tail
            text += "--- broker output during this test (%s) ---\n%s" % (b.log_path, during or "(none)\n")
            if b.proc.poll() is not None:
                text += "\n*** broker process exited with status %s ***\n" % b.proc.returncode
            rep.sections.append((title, text))
        except Exception as e:  # noqa: BLE001 - never hide the real failure
            rep.sections.append((title, "could not read broker log: %r" % e))


