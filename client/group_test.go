package client

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/thorstream/thorstream/client/internal/fakebroker"
	"github.com/thorstream/thorstream/codec/errcode"
	"github.com/thorstream/thorstream/codec/proto"
	"github.com/thorstream/thorstream/groups"
)

// groupsMinSession is the fake coordinator's configuration with a minimum session timeout.
func groupsMinSession(d time.Duration) groups.Config { return groups.Config{MinSessionTimeout: d} }

// groupConsumer is a consumer of a group in a test, with what its callbacks saw.
type groupConsumer struct {
	*Consumer
	mu       sync.Mutex
	assigned [][]TopicPartition
	revoked  [][]TopicPartition
}

func newGroupConsumer(t *testing.T, cl *Client, opts ConsumerOptions, topics ...string) *groupConsumer {
	t.Helper()
	gc := &groupConsumer{}
	opts.OnAssign = func(tps []TopicPartition) {
		gc.mu.Lock()
		gc.assigned = append(gc.assigned, tps)
		gc.mu.Unlock()
	}
	revoke := opts.OnRevoke
	opts.OnRevoke = func(tps []TopicPartition) {
		gc.mu.Lock()
		gc.revoked = append(gc.revoked, tps)
		gc.mu.Unlock()
		if revoke != nil {
			revoke(tps)
		}
	}
	gc.Consumer = NewConsumer(cl, opts)
	gc.Subscribe(topics...)
	t.Cleanup(func() { gc.Close() })
	return gc
}

func (gc *groupConsumer) callbacks() (assigned, revoked int) {
	gc.mu.Lock()
	defer gc.mu.Unlock()
	return len(gc.assigned), len(gc.revoked)
}

// pollUntil polls the consumers in turn, a short Poll each, until cond holds (or the test's
// deadline). Records go to got by partition.
func pollUntil(t *testing.T, ctx context.Context, got map[TopicPartition][]int64, cond func() bool, cs ...*groupConsumer) {
	t.Helper()
	for !cond() {
		if ctx.Err() != nil {
			t.Fatal("condition not reached before the deadline")
		}
		for _, c := range cs {
			pctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
			recs, err := c.Poll(pctx)
			cancel()
			if err != nil && !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("Poll: %v", err)
			}
			for _, r := range recs {
				tp := TopicPartition{r.Topic, r.Partition}
				if got != nil {
					got[tp] = append(got[tp], r.Offset)
				}
			}
		}
	}
}

// disjointCover reports whether the consumers' assignments split the topic's partitions between
// them, each owned once, each consumer having one.
func disjointCover(partitions int32, cs ...*groupConsumer) bool {
	seen := map[TopicPartition]bool{}
	for _, c := range cs {
		a := c.Assignment()
		if len(a) == 0 {
			return false
		}
		for _, tp := range a {
			if seen[tp] {
				return false
			}
			seen[tp] = true
		}
	}
	return len(seen) == int(partitions)
}

// runner polls a consumer on its own goroutine, as an application does, until stopped, and
// records what it read.
type runner struct {
	gc     *groupConsumer
	cancel context.CancelFunc
	done   chan struct{}
	mu     sync.Mutex
	read   map[TopicPartition][]int64
}

func run(t *testing.T, ctx context.Context, gc *groupConsumer) *runner {
	ctx, cancel := context.WithCancel(ctx)
	r := &runner{gc: gc, cancel: cancel, done: make(chan struct{}), read: map[TopicPartition][]int64{}}
	go func() {
		defer close(r.done)
		for ctx.Err() == nil {
			recs, err := gc.Poll(ctx)
			if errors.Is(err, ErrClosed) {
				return
			}
			if err != nil && ctx.Err() == nil {
				t.Errorf("Poll: %v", err)
				return
			}
			r.mu.Lock()
			for _, rec := range recs {
				tp := TopicPartition{rec.Topic, rec.Partition}
				r.read[tp] = append(r.read[tp], rec.Offset)
			}
			r.mu.Unlock()
		}
	}()
	t.Cleanup(r.stop)
	return r
}

// stop ends the runner's Poll loop and waits for it.
func (r *runner) stop() {
	r.cancel()
	<-r.done
}

// records returns what the runners read, by partition.
func records(rs ...*runner) map[TopicPartition][]int64 {
	out := map[TopicPartition][]int64{}
	for _, r := range rs {
		r.mu.Lock()
		for tp, offs := range r.read {
			out[tp] = append(out[tp], offs...)
		}
		r.mu.Unlock()
	}
	return out
}

// waitFor polls cond until it holds, failing the test at ctx's deadline.
func waitFor(t *testing.T, ctx context.Context, what string, cond func() bool) {
	t.Helper()
	for !cond() {
		if ctx.Err() != nil {
			t.Fatalf("%s: not reached before the deadline", what)
		}
		time.Sleep(5 * time.Millisecond) // polling interval of a condition with a deadline
	}
}

// TestGroupConsumersShareAndTakeOver: three consumers of one group, each polling on its own
// goroutine, share six partitions, two each (range); when one closes (leaving the group) the
// other two take its partitions over well before its session could have expired, and resume
// every partition at the group's commits.
func TestGroupConsumersShareAndTakeOver(t *testing.T) {
	fc := newCluster(t, fakebroker.Options{})
	mustCreate(t, fc, "t", 6)
	for p := int32(0); p < 6; p++ {
		appendValues(fc, "t", p, "a", "b")
	}
	cl := newClient(t, fc)
	ctx := testContext(t)
	const session = 9 * time.Second // heartbeats every 3 s
	opts := ConsumerOptions{Group: "g", ResetOffset: ResetEarliest, SessionTimeout: session, FetchMaxWait: 50 * time.Millisecond}
	cs := []*groupConsumer{newGroupConsumer(t, cl, opts, "t"), newGroupConsumer(t, cl, opts, "t"), newGroupConsumer(t, cl, opts, "t")}
	rs := []*runner{run(t, ctx, cs[0]), run(t, ctx, cs[1]), run(t, ctx, cs[2])}
	waitFor(t, ctx, "six partitions shared and read", func() bool {
		got := records(rs...)
		for p := int32(0); p < 6; p++ {
			if len(got[TopicPartition{"t", p}]) < 2 {
				return false
			}
		}
		if !disjointCover(6, cs...) || len(cs[0].Assignment()) != 2 || len(cs[1].Assignment()) != 2 {
			return false
		}
		// Each has read its own partitions to the end (records of a partition may have been
		// read by another member in an earlier generation).
		for _, c := range cs {
			for _, tp := range c.Assignment() {
				if c.Position(tp) != 2 {
					return false
				}
			}
		}
		return true
	})
	for _, r := range rs {
		r.stop()
	}
	id0, gen0 := cs[0].Membership()
	id1, gen1 := cs[1].Membership()
	if id0 == "" || id0 == id1 || gen0 != gen1 || gen0 < 1 {
		t.Fatalf("memberships %q/%d and %q/%d", id0, gen0, id1, gen1)
	}
	// Everything read is committed, but one partition of the consumer that will close, which
	// commits only its first record.
	for _, c := range cs {
		if err := c.Commit(ctx); err != nil {
			t.Fatal(err)
		}
	}
	left := cs[2].Assignment()
	if err := cs[2].CommitOffsets(ctx, map[TopicPartition]int64{left[0]: 1}); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := cs[2].Close(); err != nil {
		t.Fatal(err)
	}
	if id, gen := cs[2].Membership(); id != "" || gen != -1 {
		t.Fatalf("closed consumer's membership %q/%d", id, gen)
	}
	rs = []*runner{run(t, ctx, cs[0]), run(t, ctx, cs[1])}
	waitFor(t, ctx, "the closed consumer's partitions taken over", func() bool { return disjointCover(6, cs[0], cs[1]) })
	if d := time.Since(start); d >= session {
		t.Fatalf("takeover took %v: the session timeout, not the LeaveGroup", d)
	}
	for p := int32(0); p < 6; p++ {
		appendValues(fc, "t", p, "c")
	}
	waitFor(t, ctx, "the new records read", func() bool {
		got := records(rs...)
		for p := int32(0); p < 6; p++ {
			if offs := got[TopicPartition{"t", p}]; len(offs) == 0 || offs[len(offs)-1] != 2 {
				return false
			}
		}
		return true
	})
	for tp, offs := range records(rs...) {
		want := "[2]"
		if tp == left[0] {
			want = "[1 2]" // resumed at the commit
		}
		if fmt.Sprint(offs) != want {
			t.Errorf("%v read %v after the takeover, want %s", tp, offs, want)
		}
	}
	if _, gen := cs[0].Membership(); gen <= gen0 {
		t.Errorf("generation %d after the takeover, was %d", gen, gen0)
	}
	if a, r := cs[0].callbacks(); a < 2 || r < 1 {
		t.Errorf("a consumer saw %d assignments and %d revocations", a, r)
	}
}

// TestGroupAutoCommit: with AutoCommit, a rebalance commits the revoked partitions' positions
// first, so the new owner resumes exactly there, and Close commits too.
func TestGroupAutoCommit(t *testing.T) {
	fc := newCluster(t, fakebroker.Options{})
	mustCreate(t, fc, "t", 2)
	appendValues(fc, "t", 0, "a", "b", "c")
	appendValues(fc, "t", 1, "x", "y")
	cl := newClient(t, fc)
	ctx := testContext(t)
	opts := ConsumerOptions{Group: "g", ResetOffset: ResetEarliest, AutoCommit: true, AutoCommitInterval: time.Hour,
		SessionTimeout: 3 * time.Second, FetchMaxWait: 50 * time.Millisecond}
	c1 := newGroupConsumer(t, cl, opts, "t")
	read := map[TopicPartition][]int64{}
	pollUntil(t, ctx, read, func() bool { return len(read[TopicPartition{"t", 0}]) == 3 && len(read[TopicPartition{"t", 1}]) == 2 }, c1)
	if fc.Committed("g", "t", 0) != -1 {
		t.Fatal("committed before the interval")
	}
	// A second member joins: c1's heartbeat learns of it, c1 commits as it revokes.
	c2 := newGroupConsumer(t, cl, opts, "t")
	pollUntil(t, ctx, nil, func() bool { return disjointCover(2, c1, c2) }, c1, c2)
	if a, b := fc.Committed("g", "t", 0), fc.Committed("g", "t", 1); a != 3 || b != 2 {
		t.Fatalf("committed %d and %d before the rebalance, want 3 and 2", a, b)
	}
	_, revoked := c1.callbacks()
	if revoked != 1 {
		t.Fatalf("c1 revoked %d times", revoked)
	}
	appendValues(fc, "t", 0, "d")
	appendValues(fc, "t", 1, "z")
	more := map[TopicPartition][]int64{}
	pollUntil(t, ctx, more, func() bool { return len(more) == 2 }, c1, c2)
	for tp, offs := range more {
		if offs[0] != 3 && tp.Partition == 0 || offs[0] != 2 && tp.Partition == 1 {
			t.Errorf("%v resumed at %v", tp, offs)
		}
	}
	if err := c1.Close(); err != nil {
		t.Fatal(err)
	}
	if err := c2.Close(); err != nil {
		t.Fatal(err)
	}
	if a, b := fc.Committed("g", "t", 0), fc.Committed("g", "t", 1); a != 4 || b != 3 {
		t.Fatalf("committed %d and %d after Close, want 4 and 3", a, b)
	}
}

// TestGroupMemberLostAndRejoins: a member whose heartbeats stop reaching the coordinator is
// removed when its session expires; the other member takes everything; when the first is heard
// again it learns it lost its membership (its commit fails, nothing is committed as it
// revokes) and rejoins with a new member id.
func TestGroupMemberLostAndRejoins(t *testing.T) {
	fc := newCluster(t, fakebroker.Options{})
	mustCreate(t, fc, "t", 2)
	cl := newClient(t, fc)
	ctx := testContext(t)
	opts := ConsumerOptions{Group: "g", ResetOffset: ResetEarliest, SessionTimeout: 600 * time.Millisecond, RebalanceTimeout: 5 * time.Second,
		FetchMaxWait: 50 * time.Millisecond, AutoCommit: true, AutoCommitInterval: time.Hour}
	c1 := newGroupConsumer(t, cl, opts, "t")
	c2 := newGroupConsumer(t, cl, opts, "t")
	pollUntil(t, ctx, nil, func() bool { return disjointCover(2, c1, c2) }, c1, c2)
	lostID, lostGen := c1.Membership()

	var mu sync.Mutex
	silenced := true
	fc.Control(func(r *fakebroker.Request) *fakebroker.Action {
		mu.Lock()
		defer mu.Unlock()
		if hb, ok := r.Body.(*proto.HeartbeatRequest); ok && silenced && hb.MemberID == lostID {
			return &fakebroker.Action{Drop: true}
		}
		return nil
	})
	// c2 alone polls: c1's session expires, c2 rebalances onto both partitions.
	pollUntil(t, ctx, nil, func() bool { return len(c2.Assignment()) == 2 }, c2)
	if _, gen := c2.Membership(); gen <= lostGen {
		t.Fatalf("c2 is in generation %d, c1 was removed from %d", gen, lostGen)
	}
	mu.Lock()
	silenced = false
	mu.Unlock()
	// c1 still believes in its generation: its commit is refused.
	err := c1.Commit(ctx)
	if code := errcode.Of(err); code != errcode.UnknownMemberID && code != errcode.IllegalGeneration {
		t.Fatalf("commit of a lost member: %v", err)
	}
	pollUntil(t, ctx, nil, func() bool { return disjointCover(2, c1, c2) }, c1, c2)
	if id, _ := c1.Membership(); id == lostID || id == "" {
		t.Fatalf("c1 rejoined as %q (was %q)", id, lostID)
	}
	if a, b := fc.Committed("g", "t", 0), fc.Committed("g", "t", 1); a != -1 && a != 0 || b != -1 && b != 0 {
		t.Fatalf("commits %d, %d", a, b)
	}
}

// TestGroupJoinErrors: a retriable coordinator error is retried; an error the member cannot fix
// ends the membership, and every Poll reports it.
func TestGroupJoinErrors(t *testing.T) {
	fc := newCluster(t, fakebroker.Options{Groups: groupsMinSession(time.Second)})
	mustCreate(t, fc, "t", 1)
	cl := newClient(t, fc)
	ctx := testContext(t)
	var mu sync.Mutex
	refused := 0
	fc.Control(func(r *fakebroker.Request) *fakebroker.Action {
		mu.Lock()
		defer mu.Unlock()
		if r.Key == proto.KeyJoinGroup && refused < 2 {
			refused++
			return &fakebroker.Action{Error: errcode.NotCoordinator}
		}
		return nil
	})
	c := newGroupConsumer(t, cl, ConsumerOptions{Group: "g", SessionTimeout: 3 * time.Second, FetchMaxWait: 50 * time.Millisecond}, "t")
	pollUntil(t, ctx, nil, func() bool { return len(c.Assignment()) == 1 }, c)
	if refused != 2 {
		t.Fatalf("%d JoinGroups refused", refused)
	}

	bad := NewConsumer(cl, ConsumerOptions{Group: "g2", SessionTimeout: 10 * time.Millisecond})
	defer bad.Close()
	bad.Subscribe("t")
	for i := 0; i < 2; i++ {
		if _, err := bad.Poll(ctx); errcode.Of(err) != errcode.InvalidSessionTimeout {
			t.Fatalf("Poll %d with a session timeout below the broker's minimum: %v", i, err)
		}
	}
}

// TestGroupPollWakesForRebalance: a Poll waiting in a long Fetch returns to rejoin when its
// heartbeat learns of a rebalance, instead of holding the group until the fetch ends.
func TestGroupPollWakesForRebalance(t *testing.T) {
	fc := newCluster(t, fakebroker.Options{})
	mustCreate(t, fc, "t", 2)
	cl := newClient(t, fc)
	ctx := testContext(t)
	const fetchWait = 10 * time.Second
	opts := ConsumerOptions{Group: "g", SessionTimeout: 900 * time.Millisecond, RebalanceTimeout: 20 * time.Second, FetchMaxWait: fetchWait}
	c1 := newGroupConsumer(t, cl, opts, "t")
	r1 := run(t, ctx, c1)
	waitFor(t, ctx, "c1 assigned", func() bool { return len(c1.Assignment()) == 2 })
	// Nothing to read: c1's Poll now waits in a Fetch of up to 10 s.
	c2 := newGroupConsumer(t, cl, opts, "t")
	run(t, ctx, c2)
	wctx, cancel := context.WithTimeout(ctx, fetchWait*6/10)
	defer cancel()
	waitFor(t, wctx, "c2 assigned while c1 waits in a long Fetch", func() bool { return disjointCover(2, c1, c2) })
	r1.stop()
}

// TestGroupStaticMember: a static member does not leave on Close, and a consumer with its
// instance id takes its place back without a rebalance.
func TestGroupStaticMember(t *testing.T) {
	fc := newCluster(t, fakebroker.Options{})
	mustCreate(t, fc, "t", 2)
	cl := newClient(t, fc)
	ctx := testContext(t)
	opts := ConsumerOptions{Group: "g", InstanceID: "app-1", SessionTimeout: 6 * time.Second, FetchMaxWait: 50 * time.Millisecond}
	c1 := newGroupConsumer(t, cl, opts, "t")
	other := newGroupConsumer(t, cl, ConsumerOptions{Group: "g", InstanceID: "app-2", SessionTimeout: 6 * time.Second, FetchMaxWait: 50 * time.Millisecond}, "t")
	pollUntil(t, ctx, nil, func() bool { return disjointCover(2, c1, other) }, c1, other)
	_, gen := c1.Membership()
	was := fmt.Sprint(c1.Assignment())
	leaves := fc.Count(proto.KeyLeaveGroup)
	if err := c1.Close(); err != nil {
		t.Fatal(err)
	}
	if n := fc.Count(proto.KeyLeaveGroup); n != leaves {
		t.Fatalf("a static member sent LeaveGroup")
	}
	again := newGroupConsumer(t, cl, opts, "t")
	pollUntil(t, ctx, nil, func() bool { return len(again.Assignment()) > 0 }, again, other)
	if _, g := again.Membership(); g != gen || fmt.Sprint(again.Assignment()) != was {
		t.Fatalf("restarted static member: generation %d (was %d), assignment %v (was %s)", g, gen, again.Assignment(), was)
	}
	if _, g := other.Membership(); g != gen {
		t.Fatalf("the other member moved to generation %d", g)
	}
}

// TestGroupAssignAndSeekIgnored: a member of a group keeps the group's assignment: Assign,
// Unassign and seeks of partitions it was not given do nothing.
func TestGroupAssignAndSeekIgnored(t *testing.T) {
	fc := newCluster(t, fakebroker.Options{})
	mustCreate(t, fc, "t", 1)
	mustCreate(t, fc, "other", 1)
	appendValues(fc, "t", 0, "a", "b", "c")
	cl := newClient(t, fc)
	ctx := testContext(t)
	c := newGroupConsumer(t, cl, ConsumerOptions{Group: "g", ResetOffset: ResetEarliest, SessionTimeout: 3 * time.Second, FetchMaxWait: 50 * time.Millisecond}, "t")
	got := map[TopicPartition][]int64{}
	pollUntil(t, ctx, got, func() bool { return len(got[TopicPartition{"t", 0}]) == 3 }, c)
	c.Assign([]TopicPartition{{"other", 0}})
	c.Seek(TopicPartition{"other", 0}, 0)
	c.SeekToBeginning(TopicPartition{"other", 0})
	c.Unassign(TopicPartition{"t", 0})
	if a := c.Assignment(); len(a) != 1 || a[0] != (TopicPartition{"t", 0}) {
		t.Fatalf("assignment %v", a)
	}
	c.Seek(TopicPartition{"t", 0}, 1)
	if p := c.Position(TopicPartition{"t", 0}); p != 1 {
		t.Fatalf("Position after Seek = %d", p)
	}
	got = map[TopicPartition][]int64{}
	pollUntil(t, ctx, got, func() bool { return len(got[TopicPartition{"t", 0}]) == 2 }, c)
	offs := got[TopicPartition{"t", 0}]
	sort.Slice(offs, func(i, j int) bool { return offs[i] < offs[j] })
	if offs[0] != 1 {
		t.Fatalf("read %v after Seek(1)", offs)
	}
}
