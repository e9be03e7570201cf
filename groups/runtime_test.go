package groups

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/thorstream/thorstream/codec/batch"
	"github.com/thorstream/thorstream/codec/errcode"
)

// The runtime's tests drive a Coordinator over an in-memory offsets log with the real clock and
// goroutines: each waits for replies with a deadline, never for a fixed time.

const runtimeWait = 20 * time.Second

// memLog is an in-memory OffsetsLog. Appends complete at once (done before Append returns)
// unless held, when the test completes them, in any order it likes.
type memLog struct {
	mu         sync.Mutex
	partitions map[int32][][]byte
	hold       bool
	held       []heldAppend
	failAppend error
	// replayFailures makes the next replays of a partition fail; replayGate, when set, holds
	// every replay until it is closed.
	replayFailures map[int32]int
	replayGate     chan struct{}
	replays        int
}

type heldAppend struct {
	partition int32
	batch     []byte
	done      func(error)
}

func newMemLog() *memLog {
	return &memLog{partitions: map[int32][][]byte{}, replayFailures: map[int32]int{}}
}

func (l *memLog) Append(partition int32, b []byte, done func(error)) {
	l.mu.Lock()
	if err := l.failAppend; err != nil {
		l.mu.Unlock()
		done(err)
		return
	}
	if l.hold {
		l.held = append(l.held, heldAppend{partition, b, done})
		l.mu.Unlock()
		return
	}
	l.partitions[partition] = append(l.partitions[partition], b)
	l.mu.Unlock()
	done(nil)
}

// release completes the held appends in the order of idx (indexes into the held list).
func (l *memLog) release(idx ...int) {
	l.mu.Lock()
	held := l.held
	l.held = nil
	l.hold = false
	for _, i := range idx {
		l.partitions[held[i].partition] = append(l.partitions[held[i].partition], held[i].batch)
	}
	l.mu.Unlock()
	for _, i := range idx {
		held[i].done(nil)
	}
}

func (l *memLog) heldCount() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.held)
}

func (l *memLog) Replay(partition int32, fn func([]byte) error) error {
	l.mu.Lock()
	gate := l.replayGate
	l.replays++
	if l.replayFailures[partition] > 0 {
		l.replayFailures[partition]--
		l.mu.Unlock()
		return errors.New("disk on fire")
	}
	batches := slices.Clone(l.partitions[partition])
	l.mu.Unlock()
	if gate != nil {
		<-gate
	}
	for _, b := range batches {
		if err := fn(b); err != nil {
			return err
		}
	}
	return nil
}

func (l *memLog) put(partition int32, b []byte) {
	l.mu.Lock()
	l.partitions[partition] = append(l.partitions[partition], b)
	l.mu.Unlock()
}

func runtimeConfig() Config {
	cfg := DefaultConfig()
	cfg.InitialRebalanceDelay = 0
	cfg.MinSessionTimeout = 0
	return cfg
}

func startCoordinator(t *testing.T, log OffsetsLog, partitions int32) *Coordinator {
	t.Helper()
	c := NewCoordinator(CoordinatorOptions{Partitions: partitions, Config: runtimeConfig(), Log: log})
	t.Cleanup(c.Close)
	waitFor(t, "the coordinator to load", c.Ready)
	return c
}

// waitFor polls cond until it holds, failing the test after runtimeWait.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(runtimeWait)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond) // polling a condition, with a deadline
	}
}

// await runs call with a reply that delivers to a channel, and waits for it.
func await[T any](t *testing.T, call func(reply func(T))) T {
	t.Helper()
	ch := make(chan T, 1)
	call(func(v T) { ch <- v })
	select {
	case v := <-ch:
		return v
	case <-time.After(runtimeWait):
		t.Fatal("timed out waiting for a reply")
		var zero T
		return zero
	}
}

func commitOne(t *testing.T, c *Coordinator, group, topic string, partition int32, offset int64) errcode.Code {
	t.Helper()
	resp := await(t, func(reply func(CommitResponse)) {
		c.CommitOffsets(CommitRequest{Version: 8, Group: group, Generation: -1, Topics: []CommitTopic{{Topic: topic,
			Partitions: []CommitPartition{{Partition: partition, Offset: offset, LeaderEpoch: -1}}}}}, reply)
	})
	return resp.Topics[0].Partitions[0].ErrorCode
}

func fetchOne(t *testing.T, c *Coordinator, group, topic string, partition int32) int64 {
	t.Helper()
	resp := await(t, func(reply func(FetchResponse)) {
		c.FetchOffsets(FetchRequest{Version: 8, Group: group, Topics: []FetchTopic{{Topic: topic, Partitions: []int32{partition}}}}, reply)
	})
	if resp.ErrorCode != errcode.None || resp.Topics[0].Partitions[0].ErrorCode != errcode.None {
		t.Fatalf("fetch %s %s/%d: %+v", group, topic, partition, resp)
	}
	return resp.Topics[0].Partitions[0].Offset
}

func TestPartitionForIsKafkasFormula(t *testing.T) {
	f := func(group string, hash int32, partitions, want int32) {
		t.Helper()
		if got := javaStringHash(group); got != hash {
			t.Fatalf("javaStringHash(%q) = %d, want %d", group, got, hash)
		}
		if got := partitionFor(group, partitions); got != want {
			t.Fatalf("partitionFor(%q, %d) = %d, want %d", group, partitions, got, want)
		}
	}
	f("", 0, 12, 0)
	f("hello", 99162322, 50, 22)
	f("my-group", -1906497762, 50, 12)                // negative: the absolute value
	f("polygenelubricants", -2147483648, 50, 0)       // Integer.MIN_VALUE: Kafka's Utils.abs gives 0
	f("\U0001F600", 31*0xD83D+0xDE00, 12, 1772899%12) // outside the BMP: two UTF-16 code units
	f("grüße", 98768023, 50, 23)
	f("grüße", 98768023, 1, 0)
	c := NewCoordinator(CoordinatorOptions{Partitions: 12, Log: newMemLog(), Unhosted: true})
	defer c.Close()
	if c.PartitionFor("hello") != 99162322%12 || PartitionOf("hello", 12) != 99162322%12 {
		t.Fatalf("PartitionFor(hello) = %d", c.PartitionFor("hello"))
	}
}

// TestCoordinatorGroupLifecycle joins a member, syncs, heartbeats, commits, fetches and leaves
// through the runtime, then restarts over the same log: the offsets and the group's last
// persisted state come back.
func TestCoordinatorGroupLifecycle(t *testing.T) {
	log := newMemLog()
	c := startCoordinator(t, log, 4)
	join := func(memberID string) JoinResponse {
		return await(t, func(reply func(JoinResponse)) {
			c.Join(JoinRequest{Version: 9, Group: "g", SessionTimeout: 30 * time.Second, RebalanceTimeout: 30 * time.Second,
				MemberID: memberID, ProtocolType: "consumer", Protocols: []Protocol{{Name: "range", Metadata: []byte{0, 1}}},
				ClientID: "client", ClientHost: "/127.0.0.1"}, reply)
		})
	}
	first := join("")
	if first.ErrorCode != errcode.MemberIDRequired || first.MemberID == "" {
		t.Fatalf("first join: %+v", first)
	}
	joined := join(first.MemberID)
	if joined.ErrorCode != errcode.None || joined.Generation != 1 || joined.Leader != first.MemberID || len(joined.Members) != 1 {
		t.Fatalf("join: %+v", joined)
	}
	synced := await(t, func(reply func(SyncResponse)) {
		c.Sync(SyncRequest{Version: 5, Group: "g", Generation: 1, MemberID: first.MemberID,
			Assignments: []SyncAssignment{{MemberID: first.MemberID, Assignment: []byte("mine")}}}, reply)
	})
	if synced.ErrorCode != errcode.None || string(synced.Assignment) != "mine" {
		t.Fatalf("sync: %+v", synced)
	}
	if code := await(t, func(reply func(errcode.Code)) {
		c.Heartbeat(HeartbeatRequest{Version: 4, Group: "g", Generation: 1, MemberID: first.MemberID}, reply)
	}); code != errcode.None {
		t.Fatalf("heartbeat: %v", code)
	}
	commit := await(t, func(reply func(CommitResponse)) {
		c.CommitOffsets(CommitRequest{Version: 8, Group: "g", Generation: 1, MemberID: first.MemberID, Topics: []CommitTopic{{Topic: "t",
			Partitions: []CommitPartition{{Partition: 0, Offset: 42, LeaderEpoch: 3, Metadata: "m"}}}}}, reply)
	})
	if commit.Topics[0].Partitions[0].ErrorCode != errcode.None {
		t.Fatalf("commit: %+v", commit)
	}
	if got := fetchOne(t, c, "g", "t", 0); got != 42 {
		t.Fatalf("fetched %d, want 42", got)
	}
	d := await(t, func(reply func(DescribedGroup)) { c.Describe("g", reply) })
	if d.State != "Stable" || len(d.Members) != 1 || d.Members[0].ClientHost != "/127.0.0.1" || d.Protocol != "range" {
		t.Fatalf("describe: %+v", d)
	}
	c.Close()

	again := startCoordinator(t, log, 4)
	if got := fetchOne(t, again, "g", "t", 0); got != 42 {
		t.Fatalf("after a restart fetched %d, want 42", got)
	}
	d = await(t, func(reply func(DescribedGroup)) { again.Describe("g", reply) })
	if d.State != "Stable" || len(d.Members) != 1 || d.Members[0].MemberID != first.MemberID {
		t.Fatalf("after a restart: %+v", d)
	}
	leave := await(t, func(reply func(LeaveResponse)) {
		again.Leave(LeaveRequest{Version: 5, Group: "g", Members: []LeaveMember{{MemberID: first.MemberID}}}, reply)
	})
	if leave.ErrorCode != errcode.None || len(leave.Members) != 1 || leave.Members[0].ErrorCode != errcode.None {
		t.Fatalf("leave: %+v", leave)
	}
	d = await(t, func(reply func(DescribedGroup)) { again.Describe("g", reply) })
	if d.State != "Empty" {
		t.Fatalf("after leaving: %+v", d)
	}
}

// TestCoordinatorSessionTimerFires: the runtime arms the shard's timers, so a member that stops
// heartbeating is removed without any request arriving.
func TestCoordinatorSessionTimerFires(t *testing.T) {
	c := startCoordinator(t, newMemLog(), 1)
	joined := await(t, func(reply func(JoinResponse)) {
		c.Join(JoinRequest{Version: 3, Group: "g", SessionTimeout: 50 * time.Millisecond, RebalanceTimeout: 50 * time.Millisecond,
			ProtocolType: "consumer", Protocols: []Protocol{{Name: "range"}}}, reply)
	})
	if joined.ErrorCode != errcode.None {
		t.Fatalf("join: %+v", joined)
	}
	waitFor(t, "the silent member to be removed", func() bool {
		d := await(t, func(reply func(DescribedGroup)) { c.Describe("g", reply) })
		return d.State == "Empty" && len(d.Members) == 0
	})
}

// TestCoordinatorReportsAppendsInOrder: appends completed out of order reach the shard in append
// order, so the table ends as the log does (the later commit wins).
func TestCoordinatorReportsAppendsInOrder(t *testing.T) {
	log := newMemLog()
	c := startCoordinator(t, log, 1)
	log.mu.Lock()
	log.hold = true
	log.mu.Unlock()
	replies := make(chan errcode.Code, 2)
	for _, offset := range []int64{10, 20} {
		c.CommitOffsets(CommitRequest{Version: 8, Group: "g", Generation: -1, Topics: []CommitTopic{{Topic: "t",
			Partitions: []CommitPartition{{Partition: 0, Offset: offset, LeaderEpoch: -1}}}}},
			func(r CommitResponse) { replies <- r.Topics[0].Partitions[0].ErrorCode })
	}
	waitFor(t, "both appends", func() bool { return log.heldCount() == 2 })
	log.release(1, 0) // the second batch is durable first
	for range 2 {
		select {
		case code := <-replies:
			if code != errcode.None {
				t.Fatalf("commit: %v", code)
			}
		case <-time.After(runtimeWait):
			t.Fatal("timed out waiting for the commits")
		}
	}
	if got := fetchOne(t, c, "g", "t", 0); got != 20 {
		t.Fatalf("fetched %d, want the later commit's 20", got)
	}
}

// TestCoordinatorAppendFailure: a refused append fails the commit with a retriable code and
// leaves the previous offset.
func TestCoordinatorAppendFailure(t *testing.T) {
	log := newMemLog()
	c := startCoordinator(t, log, 1)
	if code := commitOne(t, c, "g", "t", 0, 5); code != errcode.None {
		t.Fatalf("commit: %v", code)
	}
	log.mu.Lock()
	log.failAppend = errcode.New(errcode.RequestTimedOut, "partition writer is busy")
	log.mu.Unlock()
	if code := commitOne(t, c, "g", "t", 0, 6); code != errcode.CoordinatorNotAvailable {
		t.Fatalf("commit with a busy writer: %v, want COORDINATOR_NOT_AVAILABLE", code)
	}
	if got := fetchOne(t, c, "g", "t", 0); got != 5 {
		t.Fatalf("fetched %d, want 5", got)
	}
}

// TestCoordinatorLoading: while a shard replays, its requests are answered
// COORDINATOR_LOAD_IN_PROGRESS at once and Ready is false; a failed replay is tried again.
func TestCoordinatorLoading(t *testing.T) {
	log := newMemLog()
	log.replayFailures[0] = 1
	gate := make(chan struct{})
	log.replayGate = gate
	c := NewCoordinator(CoordinatorOptions{Partitions: 2, Config: runtimeConfig(), Log: log})
	t.Cleanup(c.Close)
	if c.Ready() {
		t.Fatal("ready before replaying")
	}
	for _, group := range []string{"a", "b", "c", "d"} {
		if code := commitOne(t, c, group, "t", 0, 1); code != errcode.CoordinatorLoadInProgress {
			t.Fatalf("commit while loading: %v", code)
		}
		d := await(t, func(reply func(DescribedGroup)) { c.Describe(group, reply) })
		if d.ErrorCode != errcode.CoordinatorLoadInProgress {
			t.Fatalf("describe while loading: %+v", d)
		}
	}
	listed, code := listAll(t, c)
	if code != errcode.CoordinatorLoadInProgress || len(listed) != 0 {
		t.Fatalf("list while loading: %v %+v", code, listed)
	}
	close(gate)
	waitFor(t, "the coordinator to load", c.Ready)
	log.mu.Lock()
	replays := log.replays
	log.mu.Unlock()
	if replays != 3 {
		t.Fatalf("%d replays, want 3 (partition 0 failed once)", replays)
	}
	if code := commitOne(t, c, "a", "t", 0, 1); code != errcode.None {
		t.Fatalf("commit once loaded: %v", code)
	}
}

func listAll(t *testing.T, c *Coordinator) ([]ListedGroup, errcode.Code) {
	t.Helper()
	type listed struct {
		groups []ListedGroup
		code   errcode.Code
	}
	r := await(t, func(reply func(listed)) {
		c.List(nil, func(g []ListedGroup, code errcode.Code) { reply(listed{g, code}) })
	})
	return r.groups, r.code
}

// TestCoordinatorListAndDeleteTopic: List gathers every shard's groups in id order; DeleteTopic
// drops the topic's offsets in every shard.
func TestCoordinatorListAndDeleteTopic(t *testing.T) {
	c := startCoordinator(t, newMemLog(), 5)
	var names []string
	for i := range 20 {
		g := fmt.Sprintf("group-%02d", i)
		names = append(names, g)
		if code := commitOne(t, c, g, "doomed", 0, int64(i)); code != errcode.None {
			t.Fatal(code)
		}
		if code := commitOne(t, c, g, "kept", 1, int64(i)); code != errcode.None {
			t.Fatal(code)
		}
	}
	listed, code := listAll(t, c)
	if code != errcode.None || len(listed) != len(names) {
		t.Fatalf("list: %v, %d groups", code, len(listed))
	}
	shards := map[int32]bool{}
	for i, g := range listed {
		if g.Group != names[i] || g.Type != "classic" {
			t.Fatalf("listed %+v at %d, want %s", g, i, names[i])
		}
		shards[c.PartitionFor(g.Group)] = true
	}
	if len(shards) < 2 {
		t.Fatalf("the groups all live in one shard: the test needs several")
	}
	c.DeleteTopic("doomed")
	for i, g := range names {
		waitFor(t, "the deleted topic's offsets to go", func() bool { return fetchOne(t, c, g, "doomed", 0) == -1 })
		if got := fetchOne(t, c, g, "kept", 1); got != int64(i) {
			t.Fatalf("%s kept/1 = %d, want %d", g, got, i)
		}
	}
}

// TestCoordinatorFullQueue: a shard whose queue is full answers COORDINATOR_NOT_AVAILABLE at once
// instead of blocking the caller; Close answers what is still queued.
func TestCoordinatorFullQueue(t *testing.T) {
	c := startCoordinator(t, newMemLog(), 1)
	block := make(chan struct{})
	entered := make(chan struct{})
	// A reply that blocks holds the shard's goroutine (replies must not block: this one does on
	// purpose, to fill the queue behind it).
	c.Describe("g", func(DescribedGroup) {
		close(entered)
		<-block
	})
	<-entered
	codes := make(chan errcode.Code, 2*shardQueueSize)
	for range shardQueueSize + 10 {
		c.Heartbeat(HeartbeatRequest{Group: "g", MemberID: "m"}, func(code errcode.Code) { codes <- code })
	}
	for range 10 {
		select {
		case code := <-codes:
			if code != errcode.CoordinatorNotAvailable {
				t.Fatalf("a request beyond the queue: %v", code)
			}
		case <-time.After(runtimeWait):
			t.Fatal("a request beyond the queue was not answered at once")
		}
	}
	closed := make(chan struct{})
	go func() { c.Close(); close(closed) }()
	close(block)
	<-closed
	answered := 10
	for len(codes) > 0 {
		<-codes
		answered++
	}
	if answered != shardQueueSize+10 {
		t.Fatalf("%d of %d requests answered", answered, shardQueueSize+10)
	}
	if code := commitOne(t, c, "g", "t", 0, 1); code != errcode.CoordinatorNotAvailable {
		t.Fatalf("commit after Close: %v", code)
	}
}

// TestCoordinatorReplaySkipsDamage: a batch with a bad CRC, one that is not a batch and a record
// that does not decode are skipped; everything else loads.
func TestCoordinatorReplaySkipsDamage(t *testing.T) {
	log := newMemLog()
	build := func(records ...Record) []byte {
		var b batch.Builder
		b.Reset()
		for _, r := range records {
			b.Append(r.Key, r.Value, 1000, nil)
		}
		return slices.Clone(b.Finish())
	}
	offset := func(topic string, p int32, o int64) Record {
		k := OffsetKey{Group: "g", Topic: topic, Partition: p}
		return Record{Key: AppendOffsetKey(nil, k), Value: AppendOffsetValue(nil, OffsetValue{Offset: o, LeaderEpoch: -1, ExpireTimestamp: -1})}
	}
	log.put(0, build(offset("t", 0, 1)))
	bad := build(offset("t", 1, 2))
	bad[len(bad)-1] ^= 0xff // the CRC no longer matches
	log.put(0, bad)
	log.put(0, []byte("not a batch at all"))
	log.put(0, build(Record{Key: []byte{0, 1, 0}, Value: []byte{0}}, offset("t", 2, 3)))
	c := startCoordinator(t, log, 1)
	for p, want := range []int64{1, -1, 3} {
		if got := fetchOne(t, c, "g", "t", int32(p)); got != want {
			t.Fatalf("t/%d = %d, want %d", p, got, want)
		}
	}
}

// TestNilCoordinator: a broker without a coordinator answers every request
// COORDINATOR_NOT_AVAILABLE.
func TestNilCoordinator(t *testing.T) {
	var c *Coordinator
	if c.Ready() || c.Partitions() != 0 || c.PartitionFor("g") != 0 {
		t.Fatal("a nil coordinator claims partitions or readiness")
	}
	if code := commitOne(t, c, "g", "t", 0, 1); code != errcode.CoordinatorNotAvailable {
		t.Fatalf("commit: %v", code)
	}
	if _, code := listAll(t, c); code != errcode.CoordinatorNotAvailable {
		t.Fatalf("list: %v", code)
	}
	j := await(t, func(reply func(JoinResponse)) { c.Join(JoinRequest{Group: "g"}, reply) })
	if j.ErrorCode != errcode.CoordinatorNotAvailable || j.Generation != -1 {
		t.Fatalf("join: %+v", j)
	}
	c.DeleteTopic("t")
	c.Close()
}
