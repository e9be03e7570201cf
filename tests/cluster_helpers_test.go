package tests

// Helpers of the cluster tests: N broker processes on loopback forming one cluster, and views of
// the cluster as each node's Kafka Metadata describes it.

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// clusterNode is one node of a test cluster, a broker child process.
type clusterNode struct {
	*brokerProc
	id        int32
	kafkaAddr string // the Kafka listener: THORSTREAM_ADDR's port + 100
	workDir   string // the process's working directory
}

// testCluster is N nodes started with THORSTREAM_NODE_ID, THORSTREAM_ADDR and
// THORSTREAM_CLUSTER_PEERS.
type testCluster struct {
	t     *testing.T
	nodes []*clusterNode
}

// clusterOptions configure startCluster.
type clusterOptions struct {
	// readme starts the nodes as the README's commands do: no THORSTREAM_DATA_DIR, all of them
	// in one working directory, so each keeps its data in ./data/node-<id> there.
	readme bool
	env    []string // more THORSTREAM_* settings for every node
	// peerAddr, when set, is the address node from lists for node to in its
	// THORSTREAM_CLUSTER_PEERS instead of to's own (addr): a proxy in between, say.
	peerAddr func(from, to int32, addr string) string
}

// clusterPorts returns n ports p, each with p and p+100 free on loopback, all distinct. They
// are drawn below the kernel's ephemeral range, so that the clients' and the peers' outgoing
// connections cannot take a port before the node that owns it listens (or listens again after a
// restart).
func clusterPorts(t *testing.T, n int) []int {
	t.Helper()
	lo, hi := 10000, 32000
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			if eph, err := strconv.Atoi(f[0]); err == nil && eph-100 > lo+1000 {
				hi = eph - 100
			}
		}
	}
	free := func(p int) bool {
		l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
		if err != nil {
			return false
		}
		l.Close()
		return true
	}
	var ports []int
	taken := map[int]bool{}
	for tries := 0; len(ports) < n; tries++ {
		if tries > 10000 {
			t.Fatalf("no %d free port pairs p, p+100 in [%d, %d)", n, lo, hi)
		}
		p := lo + rand.IntN(hi-lo)
		if taken[p] || taken[p+100] || !free(p) || !free(p+100) {
			continue
		}
		taken[p], taken[p+100] = true, true
		ports = append(ports, p)
	}
	return ports
}

// startCluster starts n nodes on loopback (node i listens on 127.0.0.1:port_i for the binary
// protocol and the peers, on port_i+100 for Kafka), waits until each answers and until the
// nodes form the cluster: every node's Metadata lists all n brokers and the same controller.
func startCluster(t *testing.T, n int, o clusterOptions) *testCluster {
	t.Helper()
	ports := clusterPorts(t, n)
	addrs := make([]string, n)
	for i, p := range ports {
		addrs[i] = net.JoinHostPort("127.0.0.1", strconv.Itoa(p))
	}
	c := &testCluster{t: t}
	shared := t.TempDir()
	for i := range n {
		var peers []string
		for j := range n {
			if j != i {
				addr := addrs[j]
				if o.peerAddr != nil {
					addr = o.peerAddr(int32(i), int32(j), addr)
				}
				peers = append(peers, fmt.Sprintf("%d=%s", j, addr))
			}
		}
		node := &clusterNode{
			brokerProc: &brokerProc{t: t, addr: addrs[i]},
			id:         int32(i),
			kafkaAddr:  net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[i]+100)),
		}
		node.env = []string{
			"THORSTREAM_NODE_ID=" + strconv.Itoa(i),
			"THORSTREAM_ADDR=" + addrs[i],
			"THORSTREAM_CLUSTER_PEERS=" + strings.Join(peers, ","),
			"THORSTREAM_HTTP_ADDR=off", // many test brokers share the host
		}
		if o.readme {
			node.workDir = shared
			node.dataDir = filepath.Join(shared, "data", "node-"+strconv.Itoa(i))
		} else {
			node.workDir = t.TempDir()
			node.dataDir = filepath.Join(node.workDir, "data")
			node.env = append(node.env, "THORSTREAM_DATA_DIR="+node.dataDir)
		}
		node.env = append(node.env, o.env...)
		c.nodes = append(c.nodes, node)
	}
	t.Cleanup(func() {
		for _, node := range c.nodes {
			node.kill()
		}
		if t.Failed() {
			for _, node := range c.nodes {
				if node.output != nil {
					t.Logf("node %d output (tail):\n%s", node.id, tailLines(node.output.String(), 60))
				}
			}
		}
	})
	for _, node := range c.nodes {
		node.start()
	}
	c.waitFormed(c.nodes...)
	return c
}

// start starts the node's process (again, after a kill or a stop, on the same addresses and
// data directory) and waits until it answers Ping on its binary listener.
func (n *clusterNode) start() {
	b := n.brokerProc
	b.t.Helper()
	if b.output == nil {
		b.output = &syncBuffer{}
	} else {
		fmt.Fprintf(b.output, "\n---- node %d started again ----\n", n.id)
	}
	b.cmd = exec.Command(filepath.Join(binDir, "thorstream"))
	b.cmd.Dir = n.workDir
	b.cmd.Env = append(cleanEnv(), b.env...)
	b.cmd.Stdout, b.cmd.Stderr = b.output, b.output
	if err := b.cmd.Start(); err != nil {
		b.t.Fatal(err)
	}
	b.exited = make(chan struct{})
	go func(cmd *exec.Cmd, exited chan struct{}) {
		_ = cmd.Wait()
		close(exited)
	}(b.cmd, b.exited)
	b.waitReady()
}

// pid is the node's current process id.
func (n *clusterNode) pid() int { return n.cmd.Process.Pid }

// kill9 sends SIGKILL to the node's process by its pid and waits until it is gone.
func (n *clusterNode) kill9() {
	n.t.Helper()
	if err := syscall.Kill(n.pid(), syscall.SIGKILL); err != nil {
		n.t.Fatalf("kill -9 %d (node %d): %v", n.pid(), n.id, err)
	}
	select {
	case <-n.exited:
	case <-time.After(30 * time.Second):
		n.t.Fatalf("node %d (pid %d) still runs 30 s after SIGKILL", n.id, n.pid())
	}
}

// kafkaAddrs are the Kafka listeners of nodes.
func kafkaAddrs(nodes ...*clusterNode) []string {
	var out []string
	for _, n := range nodes {
		out = append(out, n.kafkaAddr)
	}
	return out
}

// others are the nodes of c except those given.
func (c *testCluster) others(except ...*clusterNode) []*clusterNode {
	var out []*clusterNode
	for _, n := range c.nodes {
		if !slices.Contains(except, n) {
			out = append(out, n)
		}
	}
	return out
}

// node returns the node with id.
func (c *testCluster) node(id int32) *clusterNode {
	c.t.Helper()
	for _, n := range c.nodes {
		if n.id == id {
			return n
		}
	}
	c.t.Fatalf("no node %d in the cluster", id)
	return nil
}

// wantBrokers is what Metadata should list for nodes: each at its Kafka listener.
func wantBrokers(nodes ...*clusterNode) map[int32]string {
	m := map[int32]string{}
	for _, n := range nodes {
		m[n.id] = n.kafkaAddr
	}
	return m
}

// waitFormed waits until the Metadata of each of nodes lists exactly nodes as brokers, at their
// Kafka listeners, and names the same controller, one of them.
func (c *testCluster) waitFormed(nodes ...*clusterNode) int32 {
	c.t.Helper()
	want := wantBrokers(nodes...)
	var controller int32
	clusterWait(c.t, 60*time.Second, fmt.Sprintf("nodes %v to form a cluster", want), func() (bool, string) {
		views, detail := viewsOf(nodes...)
		if views == nil {
			return false, detail
		}
		controller = views[0].controller
		for i, v := range views {
			if !mapsEqual(v.brokers, want) {
				return false, fmt.Sprintf("node %d lists brokers %v", nodes[i].id, v.brokers)
			}
			if v.controller != controller || want[v.controller] == "" {
				return false, fmt.Sprintf("controllers %v", controllers(views))
			}
		}
		return true, ""
	})
	return controller
}

func controllers(views []*clusterView) []int32 {
	var out []int32
	for _, v := range views {
		out = append(out, v.controller)
	}
	return out
}

func mapsEqual[K comparable, V comparable](a, b map[K]V) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// clusterWait polls cond every 20 ms until it holds, failing the test after limit with cond's
// last explanation.
func clusterWait(t *testing.T, limit time.Duration, what string, cond func() (bool, string)) time.Duration {
	t.Helper()
	start := time.Now()
	deadline := start.Add(limit)
	for {
		ok, detail := cond()
		if ok {
			return time.Since(start)
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v: %s", what, limit, detail)
		}
		time.Sleep(20 * time.Millisecond) // polling interval of a condition with a deadline
	}
}

// kafkaRequestTo sends req to the Kafka listener at addr itself (no routing, no retries) within
// limit.
func kafkaRequestTo(addr string, req kmsg.Request, limit time.Duration) (kmsg.Response, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.DialTimeout(limit))
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	c, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	seeds := cl.SeedBrokers()
	if len(seeds) != 1 {
		return nil, errors.New("no seed broker")
	}
	return seeds[0].Request(c, req)
}

// clusterView is one node's Metadata (every topic), at the version the client and the broker
// agree on (12).
type clusterView struct {
	version    int16
	clusterID  string
	controller int32
	brokers    map[int32]string // id -> host:port
	topics     map[string]*topicView
}

type topicView struct {
	id       [16]byte
	internal bool
	code     int16
	parts    []partView // by partition id
}

type partView struct {
	leader   int32
	epoch    int32
	code     int16
	replicas []int32
}

// viewOf asks the node at addr for Metadata of every topic.
func viewOf(addr string) (*clusterView, error) {
	req := kmsg.NewPtrMetadataRequest() // Topics nil: every topic, none created
	resp, err := kafkaRequestTo(addr, req, 5*time.Second)
	if err != nil {
		return nil, err
	}
	m := resp.(*kmsg.MetadataResponse)
	v := &clusterView{version: m.Version, controller: m.ControllerID, brokers: map[int32]string{}, topics: map[string]*topicView{}}
	if m.ClusterID != nil {
		v.clusterID = *m.ClusterID
	}
	for _, b := range m.Brokers {
		v.brokers[b.NodeID] = net.JoinHostPort(b.Host, strconv.Itoa(int(b.Port)))
	}
	for _, t := range m.Topics {
		if t.Topic == nil {
			return nil, fmt.Errorf("a topic without a name in %s's Metadata", addr)
		}
		tv := &topicView{id: t.TopicID, internal: t.IsInternal, code: t.ErrorCode}
		for _, p := range t.Partitions {
			if p.Partition < 0 || int(p.Partition) >= len(t.Partitions) {
				return nil, fmt.Errorf("topic %s: partition %d of %d", *t.Topic, p.Partition, len(t.Partitions))
			}
		}
		tv.parts = make([]partView, len(t.Partitions))
		for _, p := range t.Partitions {
			tv.parts[p.Partition] = partView{leader: p.Leader, epoch: p.LeaderEpoch, code: p.ErrorCode, replicas: p.Replicas}
		}
		v.topics[*t.Topic] = tv
	}
	return v, nil
}

// viewsOf is viewOf of each node, or nil and why not.
func viewsOf(nodes ...*clusterNode) ([]*clusterView, string) {
	var out []*clusterView
	for _, n := range nodes {
		v, err := viewOf(n.kafkaAddr)
		if err != nil {
			return nil, fmt.Sprintf("Metadata from node %d: %v", n.id, err)
		}
		out = append(out, v)
	}
	return out, ""
}

// view is viewOf the node, failing the test on an error.
func (n *clusterNode) view() *clusterView {
	n.t.Helper()
	v, err := viewOf(n.kafkaAddr)
	if err != nil {
		n.t.Fatalf("Metadata from node %d: %v", n.id, err)
	}
	return v
}

// leaderless lists the partitions in v without a leader, "topic/partition".
func (v *clusterView) leaderless() []string {
	var out []string
	for name, t := range v.topics {
		for p, pv := range t.parts {
			if pv.leader < 0 {
				out = append(out, fmt.Sprintf("%s/%d", name, p))
			}
		}
	}
	slices.Sort(out)
	return out
}

// tailLines is the last n lines of s.
func tailLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
