package groups

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/thorstream/thorstream/codec/errcode"
)

// The runtime's hosting: partitions loaded and dropped as this node gains and loses their
// leadership.

// groupIn returns a group id placed in offsets partition p of n.
func groupIn(t *testing.T, p, n int32) string {
	t.Helper()
	for i := range 10000 {
		g := "group-" + string(rune('a'+i%26)) + string(rune('a'+i/26%26)) + string(rune('a'+i/676))
		if partitionFor(g, n) == p {
			return g
		}
	}
	t.Fatalf("no group id found for partition %d", p)
	return ""
}

func unhostedCoordinator(t *testing.T, log OffsetsLog, partitions int32) *Coordinator {
	t.Helper()
	c := NewCoordinator(CoordinatorOptions{Partitions: partitions, Config: runtimeConfig(), Log: log, Unhosted: true})
	t.Cleanup(c.Close)
	return c
}

// TestCoordinatorHostsOnDemand: a coordinator started unhosted answers NOT_COORDINATOR for every
// group and lists nothing; hosting a partition replays it (its committed offsets come back), and
// only its groups are served; dropping it answers NOT_COORDINATOR again.
func TestCoordinatorHostsOnDemand(t *testing.T) {
	log := newMemLog()
	c := unhostedCoordinator(t, log, 3)
	here, elsewhere := groupIn(t, 1, 3), groupIn(t, 2, 3)
	if !c.Ready() || c.Hosted(1) {
		t.Fatal("an unhosted coordinator is not ready, or hosts a partition")
	}
	if code := commitOne(t, c, here, "t", 0, 5); code != errcode.NotCoordinator {
		t.Fatalf("commit with nothing hosted: %v, want NOT_COORDINATOR", code)
	}
	if listed, code := listAll(t, c); code != errcode.None || len(listed) != 0 {
		t.Fatalf("list with nothing hosted: %v %+v", code, listed)
	}

	c.SetHosted(1, true)
	waitFor(t, "partition 1 to load", c.Ready)
	if code := commitOne(t, c, here, "t", 0, 5); code != errcode.None {
		t.Fatalf("commit to a hosted partition: %v", code)
	}
	if code := commitOne(t, c, elsewhere, "t", 0, 5); code != errcode.NotCoordinator {
		t.Fatalf("commit to a partition hosted elsewhere: %v", code)
	}
	if listed, code := listAll(t, c); code != errcode.None || len(listed) != 1 || listed[0].Group != here {
		t.Fatalf("list: %v %+v", code, listed)
	}

	c.SetHosted(1, false)
	if c.Hosted(1) {
		t.Fatal("partition 1 still hosted")
	}
	if code := commitOne(t, c, here, "t", 0, 6); code != errcode.NotCoordinator {
		t.Fatalf("commit after the partition moved: %v, want NOT_COORDINATOR", code)
	}
	d := await(t, func(reply func(DescribedGroup)) { c.Describe(here, reply) })
	if d.ErrorCode != errcode.NotCoordinator {
		t.Fatalf("describe after the partition moved: %+v", d)
	}

	c.SetHosted(1, true)
	waitFor(t, "partition 1 to load again", func() bool {
		resp := await(t, func(reply func(FetchResponse)) {
			c.FetchOffsets(FetchRequest{Version: 8, Group: here, Topics: []FetchTopic{{Topic: "t", Partitions: []int32{0}}}}, reply)
		})
		return resp.ErrorCode == errcode.None
	})
	if got := fetchOne(t, c, here, "t", 0); got != 5 {
		t.Fatalf("after hosting it again: %d, want the commit made before, 5", got)
	}
}

// TestCoordinatorUnhostAnswersParked: dropping a partition answers the JoinGroup parked in a
// rebalance NOT_COORDINATOR, and a commit whose append the log completes meanwhile is answered as
// done (it is durable), one the log never answers NOT_COORDINATOR once the wait is over.
func TestCoordinatorUnhostAnswersParked(t *testing.T) {
	log := newMemLog()
	c := unhostedCoordinator(t, log, 1)
	c.unloadWait = 2 * time.Second // ample for the release below, which follows the move at once
	c.SetHosted(0, true)
	waitFor(t, "the partition to load", c.Ready)

	first := await(t, func(reply func(JoinResponse)) {
		c.Join(JoinRequest{Version: 9, Group: "g", SessionTimeout: 30 * time.Second, RebalanceTimeout: 30 * time.Second,
			ProtocolType: "consumer", Protocols: []Protocol{{Name: "range"}}}, reply)
	})
	joined := await(t, func(reply func(JoinResponse)) {
		c.Join(JoinRequest{Version: 9, Group: "g", SessionTimeout: 30 * time.Second, RebalanceTimeout: 30 * time.Second,
			MemberID: first.MemberID, ProtocolType: "consumer", Protocols: []Protocol{{Name: "range"}}}, reply)
	})
	if joined.ErrorCode != errcode.None {
		t.Fatalf("join: %+v", joined)
	}
	// A second member's join is parked: the group waits for the first to rejoin.
	second := await(t, func(reply func(JoinResponse)) {
		c.Join(JoinRequest{Version: 9, Group: "g", SessionTimeout: 30 * time.Second, RebalanceTimeout: 30 * time.Second,
			ProtocolType: "consumer", Protocols: []Protocol{{Name: "range"}}}, reply)
	})
	parked := make(chan JoinResponse, 1)
	c.Join(JoinRequest{Version: 9, Group: "g", SessionTimeout: 30 * time.Second, RebalanceTimeout: 30 * time.Second,
		MemberID: second.MemberID, ProtocolType: "consumer", Protocols: []Protocol{{Name: "range"}}}, func(r JoinResponse) { parked <- r })

	log.mu.Lock()
	log.hold = true
	log.mu.Unlock()
	commits := make(chan errcode.Code, 2)
	for _, offset := range []int64{10, 11} {
		c.CommitOffsets(CommitRequest{Version: 8, Group: "simple", Generation: -1, Topics: []CommitTopic{{Topic: "t",
			Partitions: []CommitPartition{{Partition: int32(offset), Offset: offset, LeaderEpoch: -1}}}}},
			func(r CommitResponse) { commits <- r.Topics[0].Partitions[0].ErrorCode })
	}
	waitFor(t, "both appends", func() bool { return log.heldCount() == 2 })
	select {
	case r := <-parked:
		t.Fatalf("the parked join was answered before the move: %+v", r)
	default:
	}

	c.SetHosted(0, false)
	log.release(0) // the first commit is durable; the second is never answered by the log
	select {
	case r := <-parked:
		if r.ErrorCode != errcode.NotCoordinator || r.MemberID != second.MemberID {
			t.Fatalf("parked join: %+v, want NOT_COORDINATOR", r)
		}
	case <-time.After(runtimeWait):
		t.Fatal("the parked join was not answered")
	}
	want := []errcode.Code{errcode.None, errcode.NotCoordinator}
	for i, w := range want {
		select {
		case code := <-commits:
			if code != w {
				t.Fatalf("commit %d: %v, want %v", i, code, w)
			}
		case <-time.After(runtimeWait):
			t.Fatalf("commit %d was not answered", i)
		}
	}
}

// TestCoordinatorRehostWaitsForPrevious: a partition hosted again replays only once the shard
// that hosted it before has finished, so the new shard sees the earlier shard's last durable
// commit.
func TestCoordinatorRehostWaitsForPrevious(t *testing.T) {
	log := newMemLog()
	c := unhostedCoordinator(t, log, 1)
	c.SetHosted(0, true)
	waitFor(t, "the partition to load", c.Ready)
	log.mu.Lock()
	log.hold = true
	log.mu.Unlock()
	done := make(chan errcode.Code, 1)
	c.CommitOffsets(CommitRequest{Version: 8, Group: "g", Generation: -1, Topics: []CommitTopic{{Topic: "t",
		Partitions: []CommitPartition{{Partition: 0, Offset: 42, LeaderEpoch: -1}}}}},
		func(r CommitResponse) { done <- r.Topics[0].Partitions[0].ErrorCode })
	waitFor(t, "the append", func() bool { return log.heldCount() == 1 })
	c.SetHosted(0, false)
	c.SetHosted(0, true)
	if c.Ready() {
		t.Fatal("ready while the previous shard still waits for its append")
	}
	if code := commitOne(t, c, "g", "t", 1, 1); code != errcode.CoordinatorLoadInProgress {
		t.Fatalf("commit while the previous shard unloads: %v, want COORDINATOR_LOAD_IN_PROGRESS", code)
	}
	log.release(0)
	if code := <-done; code != errcode.None {
		t.Fatalf("the durable commit: %v", code)
	}
	waitFor(t, "the partition to load again", c.Ready)
	if got := fetchOne(t, c, "g", "t", 0); got != 42 {
		t.Fatalf("after hosting again: %d, want 42", got)
	}
}

// TestCoordinatorSetPartitions: the partition count changes only while nothing is hosted.
func TestCoordinatorSetPartitions(t *testing.T) {
	c := unhostedCoordinator(t, newMemLog(), 12)
	if err := c.SetPartitions(3); err != nil || c.Partitions() != 3 {
		t.Fatalf("SetPartitions(3): %v, %d partitions", err, c.Partitions())
	}
	c.SetHosted(2, true)
	if err := c.SetPartitions(5); !errors.Is(err, ErrHosted) || c.Partitions() != 3 {
		t.Fatalf("SetPartitions while hosting: %v, %d partitions", err, c.Partitions())
	}
	c.SetHosted(7, true) // out of range: ignored
	if c.Hosted(7) {
		t.Fatal("a partition out of range is hosted")
	}
}

// TestCoordinatorHostingChurn: requests racing with a partition hosted and dropped over and over
// are each answered exactly once.
func TestCoordinatorHostingChurn(t *testing.T) {
	c := unhostedCoordinator(t, newMemLog(), 2)
	c.unloadWait = 50 * time.Millisecond
	const senders, each = 4, 200
	var wg sync.WaitGroup
	var mu sync.Mutex
	answers := map[int]int{}
	stop := make(chan struct{})
	go func() {
		for hosted := true; ; hosted = !hosted {
			select {
			case <-stop:
				return
			default:
			}
			c.SetHosted(0, hosted)
			c.SetHosted(1, !hosted)
			time.Sleep(time.Millisecond) // churn pace, not a wait for a condition
		}
	}()
	for s := range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				id := s*each + i
				got := make(chan struct{})
				c.CommitOffsets(CommitRequest{Version: 8, Group: groupIn(t, int32(i%2), 2), Generation: -1, Topics: []CommitTopic{{Topic: "t",
					Partitions: []CommitPartition{{Partition: 0, Offset: int64(i), LeaderEpoch: -1}}}}}, func(r CommitResponse) {
					mu.Lock()
					answers[id]++
					mu.Unlock()
					switch code := r.Topics[0].Partitions[0].ErrorCode; code {
					case errcode.None, errcode.NotCoordinator, errcode.CoordinatorLoadInProgress:
					default:
						t.Errorf("commit: %v", code)
					}
					close(got)
				})
				select {
				case <-got:
				case <-time.After(runtimeWait):
					t.Errorf("request %d was not answered", id)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(stop)
	mu.Lock()
	defer mu.Unlock()
	for id, n := range answers {
		if n != 1 {
			t.Fatalf("request %d answered %d times", id, n)
		}
	}
	if len(answers) != senders*each {
		t.Fatalf("%d of %d requests answered", len(answers), senders*each)
	}
}

// TestCoordinatorRehostChainKeepsOrder: a partition dropped, hosted and dropped again while its
// first shard still waits for an append, then hosted once more: the last shard replays only
// after the first has finished, whatever the ones between did.
func TestCoordinatorRehostChainKeepsOrder(t *testing.T) {
	log := newMemLog()
	c := unhostedCoordinator(t, log, 1)
	c.SetHosted(0, true)
	waitFor(t, "the partition to load", c.Ready)
	log.mu.Lock()
	log.hold = true
	log.mu.Unlock()
	done := make(chan errcode.Code, 1)
	c.CommitOffsets(CommitRequest{Version: 8, Group: "g", Generation: -1, Topics: []CommitTopic{{Topic: "t",
		Partitions: []CommitPartition{{Partition: 0, Offset: 42, LeaderEpoch: -1}}}}},
		func(r CommitResponse) { done <- r.Topics[0].Partitions[0].ErrorCode })
	waitFor(t, "the append", func() bool { return log.heldCount() == 1 })
	c.SetHosted(0, false)
	c.SetHosted(0, true)
	c.SetHosted(0, false) // the second shard ends without loading
	c.SetHosted(0, true)
	if c.Ready() {
		t.Fatal("ready while the first shard still waits for its append")
	}
	log.mu.Lock()
	replays := log.replays
	log.mu.Unlock()
	if replays != 1 {
		t.Fatalf("%d replays before the first shard finished, want 1 (its own)", replays)
	}
	log.release(0)
	if code := <-done; code != errcode.None {
		t.Fatalf("the durable commit: %v", code)
	}
	waitFor(t, "the partition to load again", c.Ready)
	if got := fetchOne(t, c, "g", "t", 0); got != 42 {
		t.Fatalf("after hosting again: %d, want 42", got)
	}
}
