package raftnode

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.etcd.io/raft/v3/raftpb"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
)

func TestElection(t *testing.T) {
	c := newCluster(t, 3, nil)
	leader := c.waitLeader()
	for _, id := range c.ids {
		n := c.nodes[id]
		if id == leader {
			if n.LeaderSince().IsZero() {
				t.Errorf("leader %d: LeaderSince is zero", id)
			}
		} else if !n.LeaderSince().IsZero() {
			t.Errorf("follower %d: LeaderSince %v, want zero", id, n.LeaderSince())
		}
	}
	// The bootstrap conf changes (1..3) and the leader's empty entry are applied everywhere.
	waitFor(t, 10*time.Second, "every node to apply the bootstrap entries", func() bool {
		for _, n := range c.nodes {
			if n.Applied() < 4 {
				return false
			}
		}
		return true
	})
}

// Proposals from every node, followers included (raft forwards them to the leader), are
// applied once each, in the same order everywhere; each proposer gets its own entry's
// result and index.
func TestProposalsFromEveryNodeSameOrder(t *testing.T) {
	c := newCluster(t, 3, nil)
	c.r.setFaults(0, 0, 2*time.Millisecond) // reorder deliveries a little
	c.waitLeader()
	const perNode = 25
	type ack struct {
		payload string
		result  string
		index   uint64
	}
	var mu sync.Mutex
	var acks []ack
	var wg sync.WaitGroup
	for _, id := range c.ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := range perNode {
				p, res, idx := c.proposeOK(id, fmt.Sprintf("n%d-%d", id, k))
				mu.Lock()
				acks = append(acks, ack{p, string(res), idx})
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	list := c.waitConverged(3 * perNode)
	checkUnique(t, list)
	for _, a := range acks {
		if a.result != "ok:"+a.payload {
			t.Errorf("%s: result %q, want the state machine's %q", a.payload, a.result, "ok:"+a.payload)
		}
		idx, ok := indexOf(list, a.payload)
		if !ok {
			t.Errorf("acknowledged %s is not applied", a.payload)
		} else if idx != a.index {
			t.Errorf("%s: acknowledged at index %d, applied at %d", a.payload, a.index, idx)
		}
	}
	for _, id := range c.ids {
		if !hasPrefix(list, fmt.Sprintf("n%d-", id)) {
			t.Errorf("no proposal of node %d applied", id)
		}
	}
}

// With lost and delayed messages the nodes still apply identical logs.
func TestLossyNetworkSameOrder(t *testing.T) {
	c := newCluster(t, 3, nil)
	c.r.setFaults(0.05, 0, 5*time.Millisecond)
	c.waitLeader()
	var wg sync.WaitGroup
	var mu sync.Mutex
	var acked []string
	for _, id := range c.ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := range 15 {
				p, _, _ := c.proposeOK(id, fmt.Sprintf("n%d-%d", id, k))
				mu.Lock()
				acked = append(acked, p)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	c.r.setFaults(0, 0, 0)
	list := c.waitConverged(len(acked))
	checkUnique(t, list)
	for _, p := range acked {
		if _, ok := indexOf(list, p); !ok {
			t.Errorf("acknowledged %s is not applied", p)
		}
	}
}

func TestLeaderKillNewLeaderProposalsContinue(t *testing.T) {
	c := newCluster(t, 3, nil)
	old := c.waitLeader()
	p0, _, _ := c.proposeOK(old, "before")
	c.stop(old)
	rest := others(c.ids, old)
	leader := c.waitLeader(rest...)
	if leader == old {
		t.Fatalf("stopped node %d still leader", old)
	}
	var ps []string
	for _, id := range rest { // the new leader and the remaining follower
		p, _, _ := c.proposeOK(id, fmt.Sprintf("after-%d", id))
		ps = append(ps, p)
	}
	list := c.waitConverged(3, rest...)
	for _, p := range append(ps, p0) {
		if _, ok := indexOf(list, p); !ok {
			t.Errorf("%s not applied on the survivors", p)
		}
	}
}

// A stopped node restarts from its directory (a fresh state machine restored from its own
// snapshot and log) and catches up with what committed while it was down.
func TestRestartRecoversAndCatchesUp(t *testing.T) {
	c := newCluster(t, 3, func(cfg *Config) { cfg.SnapshotEntries = 20 })
	leader := c.waitLeader()
	for k := range 30 {
		c.proposeOK(leader, fmt.Sprintf("a%d", k))
	}
	follower := others(c.ids, leader)[0]
	c.waitConverged(30)
	c.stop(follower)
	for k := range 30 {
		c.proposeOK(leader, fmt.Sprintf("b%d", k))
	}
	c.start(follower)
	if got := c.sms[follower].restoreCount(); got != 1 {
		t.Errorf("restart restored the state machine %d times from disk, want 1 (it had a snapshot)", got)
	}
	list := c.waitConverged(60)
	checkUnique(t, list)
	p, _, _ := c.proposeOK(follower, "after-restart")
	list = c.waitConverged(61)
	if _, ok := indexOf(list, p); !ok {
		t.Errorf("%s not applied", p)
	}
}

// A follower partitioned away while the leader snapshots and compacts past it catches up
// through a snapshot (MsgSnap) after the partition heals; the disk stays bounded.
func TestPartitionedFollowerCatchesUpViaSnapshot(t *testing.T) {
	c := newCluster(t, 3, func(cfg *Config) {
		cfg.SnapshotEntries = 20
		cfg.CatchUpEntries = 5
	})
	leader := c.waitLeader()
	c.proposeOK(leader, "warmup")
	c.waitConverged(1)
	lagger := others(c.ids, leader)[0]
	c.r.partition([]uint64{lagger})
	before := c.nodes[lagger].Applied()
	majority := others(c.ids, lagger)
	for k := range 120 {
		// Leadership may move inside the majority; propose through any of its nodes.
		c.proposeOK(majority[k%2], fmt.Sprintf("p%d", k))
	}
	if got := c.nodes[lagger].Applied(); got != before {
		t.Fatalf("partitioned node applied %d -> %d while cut off", before, got)
	}
	first, err := c.nodes[c.waitLeader(majority...)].ms.FirstIndex()
	if err != nil || first <= before+1 {
		t.Fatalf("leader log starts at %d (%v); want it compacted past the lagger's %d", first, err, before)
	}
	c.r.heal()
	list := c.waitConverged(121)
	checkUnique(t, list)
	if got := c.sms[lagger].restoreCount(); got < 1 {
		t.Errorf("lagging node restored %d snapshots, want >= 1", got)
	}
	// Disk use is bounded: one write-ahead file per node, well below the 121 entries' worth
	// of records times the snapshots taken.
	for _, id := range c.ids {
		wals, _ := filepath.Glob(filepath.Join(c.dirs[id], "wal-*.log"))
		if len(wals) != 1 {
			t.Errorf("node %d has write-ahead files %v, want exactly one", id, wals)
			continue
		}
		st, err := os.Stat(wals[0])
		if err != nil {
			t.Fatal(err)
		}
		if st.Size() > 16<<10 {
			t.Errorf("node %d write-ahead file is %d bytes, want it trimmed at snapshots", id, st.Size())
		}
		if _, err := os.Stat(filepath.Join(c.dirs[id], snapFile)); err != nil {
			t.Errorf("node %d has no snapshot file: %v", id, err)
		}
	}
}

// A leader cut off into a minority steps down (CheckQuorum); its proposals fail or time
// out and never apply, while the majority elects a new leader and goes on.
func TestMinorityLeaderStepsDown(t *testing.T) {
	c := newCluster(t, 3, nil)
	old := c.waitLeader()
	c.proposeOK(old, "before")
	c.waitConverged(1)
	c.r.partition([]uint64{old})

	ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
	_, _, err := c.nodes[old].Propose(ctx, []byte("lost"))
	cancel()
	if err == nil {
		t.Fatal("a proposal on the partitioned leader succeeded")
	}
	if !errors.Is(err, ErrNoLeader) && !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("proposal on the partitioned leader: %v, want ErrNoLeader or a timeout", err)
	}
	waitFor(t, 10*time.Second, "the partitioned leader to step down", func() bool { return !c.nodes[old].IsLeader() })
	majority := others(c.ids, old)
	leader := c.waitLeader(majority...)
	p, _, _ := c.proposeOK(leader, "majority")

	// Knowing no leader, the cut-off node refuses quickly.
	waitFor(t, 10*time.Second, "the partitioned node to forget the leader", func() bool { return c.nodes[old].Leader() == 0 })
	startAt := time.Now()
	ctx, cancel = context.WithTimeout(context.Background(), 5*time.Second)
	_, _, err = c.nodes[old].Propose(ctx, []byte("refused"))
	cancel()
	if !errors.Is(err, ErrNoLeader) {
		t.Fatalf("proposal without a known leader: %v, want ErrNoLeader", err)
	}
	if d := time.Since(startAt); d > time.Second {
		t.Errorf("ErrNoLeader took %v", d)
	}

	c.r.heal()
	list := c.waitConverged(2)
	if _, ok := indexOf(list, p); !ok {
		t.Errorf("%s not applied", p)
	}
	// The old leader's log had "lost" where the new leader wrote other entries: raft
	// overwrote that suffix, and a restart from its directory must load the overwritten log.
	c.stop(old)
	c.start(old)
	p2, _, _ := c.proposeOK(old, "after-restart")
	list = c.waitConverged(3)
	if _, ok := indexOf(list, p2); !ok {
		t.Errorf("%s not applied", p2)
	}
	for _, e := range list {
		if e.Payload == "lost" || e.Payload == "refused" {
			t.Errorf("proposal %q of the cut-off leader was applied at %d", e.Payload, e.Index)
		}
	}
}

func TestFullClusterRestartKeepsEveryEntry(t *testing.T) {
	c := newCluster(t, 3, func(cfg *Config) { cfg.SnapshotEntries = 20 })
	c.waitLeader()
	for k := range 50 {
		c.proposeOK(c.ids[k%3], fmt.Sprintf("e%d", k))
	}
	want := c.waitConverged(50)
	for _, id := range c.ids {
		c.stop(id)
	}
	for _, id := range c.ids {
		c.start(id)
	}
	c.waitLeader()
	got := c.waitConverged(len(want))
	if !slices.Equal(got, want) {
		t.Fatalf("after a full restart the state is\n%v\nwant\n%v", got, want)
	}
	p, _, _ := c.proposeOK(c.ids[0], "after")
	got = c.waitConverged(len(want) + 1)
	if !slices.Equal(got[:len(want)], want) || got[len(want)].Payload != p {
		t.Fatalf("after the restart and one more proposal: %v", got[len(want):])
	}
}

func TestStopFailsPendingProposalsAndIsIdempotent(t *testing.T) {
	// A long election timeout keeps the cut-off leader in office while the proposal waits.
	c := newCluster(t, 3, func(cfg *Config) { cfg.ElectionTicks = 100 })
	leader := c.waitLeader()
	c.r.partition([]uint64{leader})
	n := c.nodes[leader]
	errc := make(chan error, 1)
	go func() {
		_, _, err := n.Propose(context.Background(), []byte("pending"))
		errc <- err
	}()
	waitFor(t, 5*time.Second, "the proposal to be registered", func() bool {
		n.mu.Lock()
		defer n.mu.Unlock()
		return len(n.waiters) == 1
	})
	c.r.setNode(leader, nil)
	n.Stop()
	select {
	case err := <-errc:
		if !errors.Is(err, ErrStopped) && !errors.Is(err, ErrNoLeader) {
			t.Fatalf("pending proposal: %v, want ErrStopped", err)
		}
		if errors.Is(err, ErrNoLeader) {
			t.Logf("the leader stepped down before the proposal reached raft")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("pending proposal did not return after Stop")
	}
	n.Stop() // second call returns at once
	if _, _, err := n.Propose(context.Background(), []byte("late")); !errors.Is(err, ErrStopped) {
		t.Fatalf("propose after Stop: %v, want ErrStopped", err)
	}
	if n.Err() != nil {
		t.Fatalf("Err after a plain Stop: %v", n.Err())
	}
	n.mu.Lock()
	left := len(n.waiters)
	n.mu.Unlock()
	if left != 0 {
		t.Fatalf("%d waiters left after Stop", left)
	}
	// Step after Stop never blocks, whatever the volume.
	for range 2 * stepQueue {
		n.Step(&raftpb.Message{To: new(n.ID()), Type: raftpb.MsgHeartbeat.Enum()})
	}
	n.ReportUnreachable(2)
	delete(c.nodes, leader)
}

func TestStepDropsForeignAndOverflow(t *testing.T) {
	c := newCluster(t, 1, nil)
	c.waitLeader()
	n := c.nodes[1]
	base := n.droppedMsgs.Load()
	n.Step(&raftpb.Message{To: new(uint64(7)), From: new(uint64(2)), Type: raftpb.MsgHeartbeat.Enum(), Term: new(uint64(99))})
	n.Step(nil)
	if got := n.droppedMsgs.Load() - base; got != 2 {
		t.Fatalf("dropped %d messages, want 2 (wrong To, nil)", got)
	}
	if !n.IsLeader() {
		t.Fatal("a message for another node reached raft")
	}
	// Flooding never blocks: what does not fit the queue is dropped.
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range 4 * stepQueue {
			// A response from a node outside the group: raft filters it.
			n.Step(&raftpb.Message{To: new(uint64(1)), From: new(uint64(2)), Type: raftpb.MsgHeartbeatResp.Enum()})
		}
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Step blocked")
	}
	c.proposeOK(1, "still-works")
}

func TestProposeNoLeaderQuickly(t *testing.T) {
	// One node of three: no quorum, no leader ever.
	r := newRouter()
	defer r.close()
	sm := &testSM{}
	n, err := Start(Config{ID: 1, Peers: []uint64{1, 2, 3}, Dir: t.TempDir(), TickInterval: 10 * time.Millisecond,
		SM: sm, Transport: r.transport(1)})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Stop()
	r.setNode(1, n)
	start := time.Now()
	_, _, err = n.Propose(context.Background(), []byte("x"))
	if !errors.Is(err, ErrNoLeader) {
		t.Fatalf("got %v, want ErrNoLeader", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("ErrNoLeader after %v", d)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, _, err := n.Propose(ctx, []byte("x")); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled ctx: %v", err)
	}
}

func TestConfigErrors(t *testing.T) {
	ok := Config{ID: 1, Peers: []uint64{1}, Dir: t.TempDir(), SM: &testSM{}, Transport: newRouter().transport(1)}
	for name, mut := range map[string]func(*Config){
		"zero id":       func(c *Config) { c.ID = 0 },
		"self not peer": func(c *Config) { c.Peers = []uint64{2, 3} },
		"no dir":        func(c *Config) { c.Dir = "" },
		"no sm":         func(c *Config) { c.SM = nil },
		"ticks":         func(c *Config) { c.ElectionTicks, c.HeartbeatTicks = 2, 2 },
		"duplicate":     func(c *Config) { c.Peers = []uint64{1, 2, 2} },
		"no transport":  func(c *Config) { c.Transport = nil },
	} {
		cfg := ok
		mut(&cfg)
		if _, err := Start(cfg); !errors.Is(err, ErrConfig) {
			t.Errorf("%s: %v, want ErrConfig", name, err)
		}
	}
}

// singleNode runs a one-voter group in dir with an observed logger.
func singleNode(t *testing.T, dir string, sm *testSM) (*Node, *observer.ObservedLogs) {
	t.Helper()
	core, logs := observer.New(zap.InfoLevel)
	n, err := Start(Config{ID: 1, Peers: []uint64{1}, Dir: dir, TickInterval: 10 * time.Millisecond,
		SnapshotEntries: 1000, SM: sm, Transport: newRouter().transport(1), Logger: zap.New(core)})
	if err != nil {
		t.Fatalf("start: %v", err)
	}
	waitFor(t, 10*time.Second, "the single node to lead", n.IsLeader)
	return n, logs
}

func proposeN(t *testing.T, n *Node, prefix string, count int) {
	t.Helper()
	for k := range count {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_, _, err := n.Propose(ctx, fmt.Appendf(nil, "%s%d", prefix, k))
		cancel()
		if err != nil {
			t.Fatalf("propose %s%d: %v", prefix, k, err)
		}
	}
}

func onlyWAL(t *testing.T, dir string) string {
	t.Helper()
	wals, _ := filepath.Glob(filepath.Join(dir, "wal-*.log"))
	if len(wals) != 1 {
		t.Fatalf("write-ahead files %v, want one", wals)
	}
	return wals[0]
}

func TestWALTornTailIsCutAndReported(t *testing.T) {
	for _, tc := range []struct {
		name   string
		damage func(t *testing.T, path string) (cut []byte)
		lossOK bool // the damaged record may be lost
	}{
		{"truncated", func(t *testing.T, path string) []byte {
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.Truncate(path, int64(len(b)-3)); err != nil {
				t.Fatal(err)
			}
			return nil // the rest of the last record, checked against the file below
		}, true},
		{"garbage appended", func(t *testing.T, path string) []byte {
			garbage := []byte("\x17\x00\x00\x00garbage after the last record")
			f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := f.Write(garbage); err != nil {
				t.Fatal(err)
			}
			if err := f.Close(); err != nil {
				t.Fatal(err)
			}
			return garbage
		}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			sm := &testSM{}
			n, _ := singleNode(t, dir, sm)
			proposeN(t, n, "x", 10)
			want := sm.list()
			n.Stop()
			path := onlyWAL(t, dir)
			orig, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			cut := tc.damage(t, path)
			damaged, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}

			sm2 := &testSM{}
			n2, logs := singleNode(t, dir, sm2)
			defer n2.Stop()
			if logs.FilterMessageSnippet("cut the write-ahead log").Len() != 1 {
				t.Errorf("no log line about the cut; logs: %v", logs.All())
			}
			dropped, err := os.ReadFile(path + ".dropped-1")
			if err != nil {
				t.Fatalf("cut bytes not kept: %v", err)
			}
			if cut != nil && string(dropped) != string(cut) {
				t.Errorf("dropped file holds %q, want %q", dropped, cut)
			}
			if cut == nil {
				if len(dropped) == 0 || !strings.HasSuffix(string(damaged), string(dropped)) || len(dropped) >= len(orig) {
					t.Errorf("dropped file (%d bytes) is not the tail of the damaged file (%d bytes)", len(dropped), len(damaged))
				}
			}
			proposeN(t, n2, "y", 1) // applied after everything replayed
			got := sm2.list()
			got = got[:len(got)-1]
			if tc.lossOK {
				if len(got) < len(want)-1 || !slices.Equal(got, want[:len(got)]) {
					t.Fatalf("after the cut: %v\nwant a prefix of %v missing at most one entry", got, want)
				}
			} else if !slices.Equal(got, want) {
				t.Fatalf("after the cut: %v, want %v", got, want)
			}
		})
	}
}

func TestCorruptSnapshotFileFailsStart(t *testing.T) {
	dir := t.TempDir()
	sm := &testSM{}
	core, _ := observer.New(zap.InfoLevel)
	n, err := Start(Config{ID: 1, Peers: []uint64{1}, Dir: dir, TickInterval: 10 * time.Millisecond,
		SnapshotEntries: 5, SM: sm, Transport: newRouter().transport(1), Logger: zap.New(core)})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "leader", n.IsLeader)
	proposeN(t, n, "s", 10)
	n.Stop()
	path := filepath.Join(dir, snapFile)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("no snapshot written: %v", err)
	}
	b[len(b)-1] ^= 0xff
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = Start(Config{ID: 1, Peers: []uint64{1}, Dir: dir, SM: &testSM{}, Transport: newRouter().transport(1)})
	if !errors.Is(err, ErrCorrupt) {
		t.Fatalf("start on a corrupt snapshot: %v, want ErrCorrupt", err)
	}
}

// Every goroutine a cluster starts (loops, raft nodes, deliveries) ends with it.
func TestNoGoroutineLeak(t *testing.T) {
	base := runtime.NumGoroutine()
	func() {
		c := newCluster(t, 3, func(cfg *Config) { cfg.SnapshotEntries = 10 })
		c.r.setFaults(0.02, 0, 3*time.Millisecond)
		leader := c.waitLeader()
		for k := range 30 {
			c.proposeOK(c.ids[k%3], fmt.Sprintf("g%d", k))
		}
		c.stop(leader)
		c.waitLeader(others(c.ids, leader)...)
		c.shutdown()
	}()
	waitFor(t, 10*time.Second, "goroutines to end", func() bool { return runtime.NumGoroutine() <= base })
}
