// Package nodetest runs clusters of Thorstream nodes inside one test process: every node is
// assembled by reactor/node as cmd/thorstream assembles it, listens on loopback, and keeps its
// data in its own directory, and the peer messages between nodes pass a fault layer that can
// drop, delay and partition them.
package nodetest

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/thorstream/thorstream/cluster"
	"github.com/thorstream/thorstream/groups"
	"github.com/thorstream/thorstream/log/vfs"
	"github.com/thorstream/thorstream/reactor/node"
)

// Options configures a Cluster. Zero values take fast test timings.
type Options struct {
	Nodes int // default 3
	// Raft and liveness timing; defaults: 20 ms ticks, elections after 10 ticks, heartbeats
	// every 100 ms, fenced after 800 ms.
	TickInterval      time.Duration
	ElectionTicks     int
	HeartbeatInterval time.Duration
	SessionTimeout    time.Duration
	SnapshotEntries   uint64
	// Broker tunes every node's broker options (NodeID, DataDir and endpoints are set per node).
	Broker func(*cluster.Options)
	// Verbose logs every node to the test log.
	Verbose bool
	// Later are nodes Start leaves stopped (StartNode starts them).
	Later []int32
	// ClusterSecret is every node's node.Config ClusterSecret (empty: peers known by address).
	ClusterSecret string
	// CrashFS keeps every node's broker data (its partition logs and their metadata:
	// cluster.Options.FS) on a vfs.CrashFS of its own, whose power CrashNode cuts; the
	// controller's raft files stay on disk.
	CrashFS bool
	// CrashSeed chooses, at each CrashNode, how much of what the node wrote since its last sync
	// survives on its CrashFS (a prefix of the writes, the last one possibly torn); 0: every
	// unsynced write is lost.
	CrashSeed uint64
}

// Cluster is N nodes in this process.
type Cluster struct {
	t      testing.TB
	opts   Options
	dirs   []string
	addrs  []string       // binary protocol, by node id
	kafka  []string       // Kafka protocol, by node id
	fs     []*vfs.CrashFS // by node id, with Options.CrashFS
	Faults *Faults

	mu      sync.Mutex
	nodes   []*node.Node // nil while stopped
	crashes uint64       // CrashNode calls, for the power losses' seeds
}

// Start starts a cluster and registers its stop with t.Cleanup.
func Start(t testing.TB, o Options) *Cluster {
	t.Helper()
	if o.Nodes <= 0 {
		o.Nodes = 3
	}
	if o.TickInterval <= 0 {
		o.TickInterval = 20 * time.Millisecond
	}
	if o.ElectionTicks <= 0 {
		o.ElectionTicks = 10
	}
	if o.HeartbeatInterval <= 0 {
		o.HeartbeatInterval = 100 * time.Millisecond
	}
	if o.SessionTimeout <= 0 {
		o.SessionTimeout = 800 * time.Millisecond
	}
	c := &Cluster{t: t, opts: o, Faults: newFaults(), nodes: make([]*node.Node, o.Nodes)}
	base := t.TempDir()
	ports := freePorts(t, 2*o.Nodes)
	for i := range o.Nodes {
		c.dirs = append(c.dirs, filepath.Join(base, "node-"+strconv.Itoa(i)))
		c.addrs = append(c.addrs, ports[2*i])
		c.kafka = append(c.kafka, ports[2*i+1])
		if o.CrashFS {
			c.fs = append(c.fs, vfs.NewCrashFS())
		}
	}
	t.Cleanup(c.StopAll)
	for i := range int32(o.Nodes) {
		if !slices.Contains(o.Later, i) {
			c.StartNode(i)
		}
	}
	return c
}

// StartNode starts (or restarts, on its data directory and ports) node id.
func (c *Cluster) StartNode(id int32) {
	c.t.Helper()
	peers := map[int32]string{}
	for i, a := range c.addrs {
		if int32(i) != id {
			peers[int32(i)] = a
		}
	}
	logger := zap.NewNop()
	if c.opts.Verbose {
		logger = zaptest.NewLogger(c.t).With(zap.Int32("node", id))
	}
	bo := cluster.Options{AutoCreateTopics: true, CleanerDisabled: true}
	if c.opts.Broker != nil {
		c.opts.Broker(&bo)
	}
	if c.opts.CrashFS {
		bo.FS = c.fs[id]
	}
	c.Faults.setDown(id, false)
	gc := groups.DefaultConfig()
	gc.InitialRebalanceDelay = 0
	cfg := node.Config{
		NodeID:            id,
		DataDir:           c.dirs[id],
		Addr:              c.addrs[id],
		KafkaAddr:         c.kafka[id],
		Peers:             peers,
		ClusterSecret:     c.opts.ClusterSecret,
		HeartbeatInterval: c.opts.HeartbeatInterval,
		SessionTimeout:    c.opts.SessionTimeout,
		TickInterval:      c.opts.TickInterval,
		ElectionTicks:     c.opts.ElectionTicks,
		SnapshotEntries:   c.opts.SnapshotEntries,
		Broker:            bo,
		Groups:            gc,
		Logger:            logger,
		WrapSend:          c.Faults.wrap(id),
	}
	var n *node.Node
	var err error
	for attempt := 0; attempt < 50; attempt++ {
		if n, err = node.Start(cfg); err == nil {
			break
		}
		// A restarted node's port may still be held by the closing listener of its last life.
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		c.t.Fatalf("starting node %d: %v", id, err)
	}
	c.mu.Lock()
	c.nodes[id] = n
	c.mu.Unlock()
}

// StopNode stops node id cleanly (its connections close; peers see it gone).
func (c *Cluster) StopNode(id int32) {
	c.mu.Lock()
	n := c.nodes[id]
	c.nodes[id] = nil
	c.mu.Unlock()
	if n == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := n.Stop(ctx); err != nil {
		c.t.Errorf("stopping node %d: %v", id, err)
	}
}

// CrashNode kills node id as a crash (kill -9, then a power cut) would, as closely as one
// process can: no controlled shutdown; its peer messages stop at once, both ways; its CrashFS
// (Options.CrashFS) takes no more writes; its connections close; and once its partitions and
// controller are closed the power goes out, so whatever it had not synced is lost (as
// Options.CrashSeed says). StartNode restarts it on what survived. The other nodes fence it
// after the session timeout.
func (c *Cluster) CrashNode(id int32) { c.crash([]int32{id}) }

// CrashAll crashes every running node at the same instant, as a power cut of the whole cluster
// would: every node stops sending and writing before any of them is closed.
func (c *Cluster) CrashAll() { c.crash(c.Running()) }

func (c *Cluster) crash(ids []int32) {
	type victim struct {
		id   int32
		n    *node.Node
		fs   *vfs.CrashFS
		seed uint64
	}
	var vs []victim
	c.mu.Lock()
	for _, id := range ids {
		if n := c.nodes[id]; n != nil {
			c.nodes[id] = nil
			c.crashes++
			vs = append(vs, victim{id: id, n: n, seed: c.crashes})
		}
	}
	c.mu.Unlock()
	for i := range vs {
		c.Faults.setDown(vs[i].id, true)
		if c.opts.CrashFS {
			vs[i].fs = c.fs[vs[i].id]
			vs[i].fs.CrashAfter(1) // the next write, and every one after, fails and changes nothing
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	for _, v := range vs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Closing fails where it would sync (the disk is gone): expected of a crash.
			if err := v.n.Kill(ctx); err != nil && c.opts.Verbose {
				c.t.Logf("node %d crashed: %v", v.id, err)
			}
			if v.fs != nil {
				var rng *rand.Rand
				if c.opts.CrashSeed != 0 {
					rng = rand.New(rand.NewPCG(c.opts.CrashSeed, v.seed))
				}
				v.fs.PowerLoss(rng)
			}
		}()
	}
	wg.Wait()
}

// CrashFS is node id's broker file system (nil without Options.CrashFS).
func (c *Cluster) CrashFS(id int32) *vfs.CrashFS {
	if !c.opts.CrashFS {
		return nil
	}
	return c.fs[id]
}

// StopAll stops every running node.
func (c *Cluster) StopAll() {
	for i := range c.nodes {
		c.StopNode(int32(i))
	}
}

// Node is node id, nil while stopped.
func (c *Cluster) Node(id int32) *node.Node {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.nodes[id]
}

// Running are the ids of the running nodes.
func (c *Cluster) Running() []int32 {
	c.mu.Lock()
	defer c.mu.Unlock()
	var ids []int32
	for i, n := range c.nodes {
		if n != nil {
			ids = append(ids, int32(i))
		}
	}
	return ids
}

// KafkaAddrs are the Kafka listeners of every node, running or not, by node id.
func (c *Cluster) KafkaAddrs() []string { return append([]string(nil), c.kafka...) }

// Addrs are the binary-protocol listeners of every node, by node id.
func (c *Cluster) Addrs() []string { return append([]string(nil), c.addrs...) }

// Controller waits until every running node names the same active controller among the
// running ones, and returns it.
func (c *Cluster) Controller(timeout time.Duration) int32 {
	c.t.Helper()
	var id int32 = -1
	c.Eventually(timeout, "an active controller known to every running node", func() bool {
		id = -1
		for _, i := range c.Running() {
			n := c.Node(i)
			if n == nil {
				return false
			}
			got := n.Broker.ControllerID()
			if got < 0 || (id >= 0 && got != id) {
				return false
			}
			id = got
		}
		return id >= 0 && c.Node(id) != nil
	})
	return id
}

// Eventually polls cond every 10 ms until it holds, failing the test after timeout.
func (c *Cluster) Eventually(timeout time.Duration, what string, cond func() bool) {
	c.t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			c.t.Fatalf("after %s: still waiting for %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Faults decides the fate of every peer message: partitions cut node sets apart, Drop loses a
// share of messages, Delay holds them.
type Faults struct {
	mu      sync.Mutex
	cut     map[[2]int32]bool
	down    map[int32]bool // crashed nodes: nothing leaves or reaches them (Heal keeps it)
	drop    float64
	delay   time.Duration
	rng     *rand.Rand
	Dropped int
}

func newFaults() *Faults {
	return &Faults{cut: map[[2]int32]bool{}, down: map[int32]bool{}, rng: rand.New(rand.NewPCG(1, 2))}
}

// Cut cuts nodes a and b apart, both ways; each still reaches every other node.
func (f *Faults) Cut(a, b int32) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.cut[[2]int32{a, b}] = true
	f.cut[[2]int32{b, a}] = true
}

func (f *Faults) setDown(id int32, down bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if down {
		f.down[id] = true
	} else {
		delete(f.down, id)
	}
}

func (f *Faults) isDown(from, to int32) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.down[from] || f.down[to]
}

// Isolate cuts node id off from every other node, both ways.
func (f *Faults) Isolate(id int32, nodes int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i := range int32(nodes) {
		if i != id {
			f.cut[[2]int32{id, i}] = true
			f.cut[[2]int32{i, id}] = true
		}
	}
}

// Heal removes every partition (Isolate, Cut), drop rate and delay.
func (f *Faults) Heal() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.cut = map[[2]int32]bool{}
	f.drop, f.delay = 0, 0
}

// Set drops a share of messages (0..1) and delays the rest.
func (f *Faults) Set(drop float64, delay time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.drop, f.delay = drop, delay
}

func (f *Faults) wrap(from int32) func(func(int32, uint8, []byte) bool) func(int32, uint8, []byte) bool {
	return func(send func(int32, uint8, []byte) bool) func(int32, uint8, []byte) bool {
		return func(to int32, kind uint8, payload []byte) bool {
			f.mu.Lock()
			lost := f.down[from] || f.down[to] || f.cut[[2]int32{from, to}] || (f.drop > 0 && f.rng.Float64() < f.drop)
			delay := f.delay
			if lost {
				f.Dropped++
			}
			f.mu.Unlock()
			if lost {
				return true // lost on the way: the sender does not know
			}
			if delay > 0 {
				held := append([]byte(nil), payload...)
				time.AfterFunc(delay, func() {
					if !f.isDown(from, to) {
						send(to, kind, held)
					}
				})
				return true
			}
			return send(to, kind, payload)
		}
	}
}

func freePorts(t testing.TB, n int) []string {
	t.Helper()
	var ls []net.Listener
	var addrs []string
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("finding a free port: %v", err)
		}
		ls = append(ls, l)
		addrs = append(addrs, l.Addr().String())
	}
	for _, l := range ls {
		_ = l.Close()
	}
	return addrs
}

// String names the cluster's nodes for failure messages.
func (c *Cluster) String() string {
	return fmt.Sprintf("cluster of %d nodes %v", len(c.addrs), c.addrs)
}
