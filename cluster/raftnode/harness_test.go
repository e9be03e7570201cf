package raftnode

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.etcd.io/raft/v3/raftpb"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest"
	"google.golang.org/protobuf/proto"
)

// router is an in-memory network between test nodes. Every message is copied and delivered
// on its own timer goroutine, so Send never blocks; messages can be dropped at random,
// delayed, and cut between partition groups (checked at send and at delivery time).
type router struct {
	mu       sync.Mutex
	nodes    map[uint64]*Node
	group    map[uint64]int // nodes in different groups cannot talk; absent = group 0
	dropRate float64
	minDelay time.Duration
	maxDelay time.Duration
	rnd      *rand.Rand
	closed   bool
	wg       sync.WaitGroup
}

func newRouter() *router {
	return &router{
		nodes: make(map[uint64]*Node),
		group: make(map[uint64]int),
		rnd:   rand.New(rand.NewPCG(1, 2)),
	}
}

type endpoint struct {
	r    *router
	from uint64
}

func (e endpoint) Send(msgs []*raftpb.Message) {
	for _, m := range msgs {
		e.r.route(e.from, m)
	}
}

func (r *router) transport(from uint64) Transport { return endpoint{r: r, from: from} }

func (r *router) setNode(id uint64, n *Node) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if n == nil {
		delete(r.nodes, id)
	} else {
		r.nodes[id] = n
	}
}

// partition puts each listed set in its own group; unlisted nodes stay in group 0.
func (r *router) partition(sets ...[]uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	clear(r.group)
	for i, set := range sets {
		for _, id := range set {
			r.group[id] = i + 1
		}
	}
}

func (r *router) heal() { r.partition() }

func (r *router) setFaults(dropRate float64, minDelay, maxDelay time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.dropRate, r.minDelay, r.maxDelay = dropRate, minDelay, maxDelay
}

func (r *router) route(from uint64, m *raftpb.Message) {
	to := m.GetTo()
	r.mu.Lock()
	if r.closed || r.group[from] != r.group[to] || (r.dropRate > 0 && r.rnd.Float64() < r.dropRate) {
		r.mu.Unlock()
		return
	}
	delay := r.minDelay
	if r.maxDelay > r.minDelay {
		delay += time.Duration(r.rnd.Int64N(int64(r.maxDelay - r.minDelay)))
	}
	r.wg.Add(1)
	r.mu.Unlock()
	cp := proto.Clone(m).(*raftpb.Message) // as if serialised: no memory shared between nodes
	time.AfterFunc(delay, func() {
		defer r.wg.Done()
		r.mu.Lock()
		n := r.nodes[to]
		ok := !r.closed && r.group[from] == r.group[to]
		r.mu.Unlock()
		if ok && n != nil {
			n.Step(cp)
		}
	})
}

// close stops delivering and waits for every delivery goroutine.
func (r *router) close() {
	r.mu.Lock()
	r.closed = true
	r.mu.Unlock()
	r.wg.Wait()
}

// testSM records every applied (index, payload) and restores from JSON snapshots.
type testSM struct {
	mu       sync.Mutex
	ents     []appliedEntry
	restores int
	badOrder string // non-empty: Apply saw an index out of order
}

type appliedEntry struct {
	Index   uint64 `json:"i"`
	Payload string `json:"p"`
}

func (s *testSM) Apply(index uint64, payload []byte) []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	if n := len(s.ents); n > 0 && s.ents[n-1].Index >= index && s.badOrder == "" {
		s.badOrder = fmt.Sprintf("applied %d after %d", index, s.ents[n-1].Index)
	}
	s.ents = append(s.ents, appliedEntry{Index: index, Payload: string(payload)})
	return []byte("ok:" + string(payload))
}

func (s *testSM) Snapshot() ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return json.Marshal(s.ents)
}

func (s *testSM) Restore(index uint64, data []byte) error {
	var ents []appliedEntry
	if err := json.Unmarshal(data, &ents); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if n := len(ents); n > 0 && ents[n-1].Index > index {
		return fmt.Errorf("snapshot at %d holds entry %d", index, ents[n-1].Index)
	}
	s.ents = ents
	s.restores++
	return nil
}

func (s *testSM) list() []appliedEntry {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.ents)
}

func (s *testSM) restoreCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.restores
}

func (s *testSM) orderError() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.badOrder
}

// cluster runs test nodes over a router.
type cluster struct {
	t      *testing.T
	r      *router
	ids    []uint64
	dirs   map[uint64]string
	nodes  map[uint64]*Node
	sms    map[uint64]*testSM
	tweak  func(*Config)
	logger *zap.Logger
}

func newCluster(t *testing.T, size int, tweak func(*Config)) *cluster {
	t.Helper()
	c := &cluster{
		t:      t,
		r:      newRouter(),
		dirs:   make(map[uint64]string),
		nodes:  make(map[uint64]*Node),
		sms:    make(map[uint64]*testSM),
		tweak:  tweak,
		logger: zaptest.NewLogger(t, zaptest.Level(zapcore.InfoLevel)),
	}
	for i := 1; i <= size; i++ {
		id := uint64(i)
		c.ids = append(c.ids, id)
		c.dirs[id] = t.TempDir()
	}
	t.Cleanup(c.shutdown)
	for _, id := range c.ids {
		c.start(id)
	}
	return c
}

func (c *cluster) config(id uint64) Config {
	cfg := Config{
		ID:              id,
		Peers:           c.ids,
		Dir:             c.dirs[id],
		TickInterval:    10 * time.Millisecond,
		ElectionTicks:   10,
		HeartbeatTicks:  1,
		SnapshotEntries: 1000,
		SM:              c.sms[id],
		Transport:       c.r.transport(id),
		Logger:          c.logger.Named(fmt.Sprintf("n%d", id)),
	}
	if c.tweak != nil {
		c.tweak(&cfg)
	}
	return cfg
}

// start starts id from its directory with a fresh state machine.
func (c *cluster) start(id uint64) {
	c.t.Helper()
	c.sms[id] = &testSM{}
	n, err := Start(c.config(id))
	if err != nil {
		c.t.Fatalf("start node %d: %v", id, err)
	}
	c.nodes[id] = n
	c.r.setNode(id, n)
}

func (c *cluster) stop(id uint64) {
	if n := c.nodes[id]; n != nil {
		c.r.setNode(id, nil)
		n.Stop()
		delete(c.nodes, id)
	}
}

func (c *cluster) shutdown() {
	for _, id := range c.ids {
		c.stop(id)
	}
	c.r.close()
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(5 * time.Millisecond) // poll interval, not a wait for the condition
	}
}

// waitLeader waits until exactly one of ids is leader and all of ids agree on it.
func (c *cluster) waitLeader(ids ...uint64) uint64 {
	c.t.Helper()
	if len(ids) == 0 {
		ids = c.ids
	}
	var leader uint64
	waitFor(c.t, 15*time.Second, fmt.Sprintf("one leader among %v", ids), func() bool {
		leader = 0
		leaders := 0
		for _, id := range ids {
			if c.nodes[id].IsLeader() {
				leaders++
				leader = id
			}
		}
		if leaders != 1 {
			return false
		}
		for _, id := range ids {
			if c.nodes[id].Leader() != leader {
				return false
			}
		}
		return true
	})
	return leader
}

// proposeOK proposes prefix from node id until one attempt succeeds, each attempt with a
// unique payload (prefix/attempt). It returns the payload that was acknowledged, its result
// and index.
func (c *cluster) proposeOK(id uint64, prefix string) (string, []byte, uint64) {
	c.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for attempt := 0; ; attempt++ {
		payload := fmt.Sprintf("%s/%d", prefix, attempt)
		n := c.nodes[id]
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		res, idx, err := n.Propose(ctx, []byte(payload))
		cancel()
		if err == nil {
			return payload, res, idx
		}
		if !errors.Is(err, ErrNoLeader) && !errors.Is(err, context.DeadlineExceeded) {
			c.t.Fatalf("propose %s on %d: %v", payload, id, err)
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("propose %s on %d: still failing: %v", payload, id, err)
		}
		if errors.Is(err, ErrNoLeader) {
			time.Sleep(10 * time.Millisecond) // back off before retrying
		}
	}
}

// waitConverged waits until the state machines of ids hold identical lists with at least
// min entries, and returns the list.
func (c *cluster) waitConverged(min int, ids ...uint64) []appliedEntry {
	c.t.Helper()
	if len(ids) == 0 {
		ids = c.ids
	}
	var ref []appliedEntry
	waitFor(c.t, 20*time.Second, fmt.Sprintf("state machines of %v to converge with >= %d entries", ids, min), func() bool {
		ref = c.sms[ids[0]].list()
		if len(ref) < min {
			return false
		}
		for _, id := range ids[1:] {
			if !slices.Equal(ref, c.sms[id].list()) {
				return false
			}
		}
		return true
	})
	for _, id := range ids {
		if e := c.sms[id].orderError(); e != "" {
			c.t.Fatalf("node %d: %s", id, e)
		}
	}
	return ref
}

// checkUnique fails if a payload was applied twice.
func checkUnique(t *testing.T, list []appliedEntry) {
	t.Helper()
	seen := make(map[string]uint64, len(list))
	for _, e := range list {
		if prev, dup := seen[e.Payload]; dup {
			t.Fatalf("payload %q applied at %d and %d", e.Payload, prev, e.Index)
		}
		seen[e.Payload] = e.Index
	}
}

func indexOf(list []appliedEntry, payload string) (uint64, bool) {
	for _, e := range list {
		if e.Payload == payload {
			return e.Index, true
		}
	}
	return 0, false
}

func others(ids []uint64, not ...uint64) []uint64 {
	var out []uint64
	for _, id := range ids {
		if !slices.Contains(not, id) {
			out = append(out, id)
		}
	}
	return out
}

func hasPrefix(list []appliedEntry, prefix string) bool {
	for _, e := range list {
		if strings.HasPrefix(e.Payload, prefix) {
			return true
		}
	}
	return false
}
