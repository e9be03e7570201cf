package groups

import (
	"encoding/binary"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/thorstream/thorstream/codec/errcode"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// The shard's tests drive it as its owner will: requests, ticks of a fake clock, and completions
// of a fake Writer that the test triggers. Nothing sleeps; time moves only when a test says so.

var shardEpoch = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// shardWriter records appends; the test completes them.
type shardWriter struct {
	batches []shardBatch // appended, not yet completed, oldest first
}

type shardBatch struct {
	token   uint64
	records []Record
}

func (w *shardWriter) Append(records []Record, token uint64) {
	w.batches = append(w.batches, shardBatch{token, records})
}

// counterRand is a deterministic io.Reader for member ids.
type counterRand struct{ n uint64 }

func (r *counterRand) Read(p []byte) (int, error) {
	for i := range p {
		if i%8 == 0 {
			r.n++
		}
		p[i] = byte(r.n >> (8 * (i % 8)))
	}
	return len(p), nil
}

// shardHarness owns a loaded shard, its writer, the clock and the durable log.
type shardHarness struct {
	t   testing.TB
	s   *Shard
	w   *shardWriter
	now time.Time
	// log is every record made durable, in order: what a restart would replay.
	log []Record
}

func testConfig() Config {
	cfg := DefaultConfig()
	cfg.InitialRebalanceDelay = 0
	cfg.Rand = &counterRand{}
	return cfg
}

func newShardHarness(t testing.TB, cfg Config) *shardHarness {
	h := &shardHarness{t: t, w: &shardWriter{}, now: shardEpoch}
	h.s = NewShard(3, cfg, h.w)
	h.s.Loaded(h.now)
	return h
}

// tick fires the timers due now; advance moves the clock first.
func (h *shardHarness) tick()                   { h.s.Tick(h.now) }
func (h *shardHarness) advance(d time.Duration) { h.now = h.now.Add(d); h.s.Tick(h.now) }

// persistAll makes every appended batch durable, including those the completions append.
func (h *shardHarness) persistAll() {
	for range 1000 {
		if len(h.w.batches) == 0 {
			return
		}
		h.complete(nil)
	}
	h.t.Fatal("appends never stop")
}

// complete reports the oldest batch durable (err nil) or failed.
func (h *shardHarness) complete(err error) []Record {
	h.t.Helper()
	if len(h.w.batches) == 0 {
		h.t.Fatal("no append to complete")
	}
	b := h.w.batches[0]
	h.w.batches = h.w.batches[1:]
	if err == nil {
		h.log = append(h.log, b.records...)
	}
	h.s.Persisted(h.now, b.token, err)
	return b.records
}

// reply captures one callback and checks it is called at most once.
type reply[T any] struct {
	t    testing.TB
	n    int
	resp T
}

func newReply[T any](t testing.TB) *reply[T] { return &reply[T]{t: t} }

func (r *reply[T]) fn(v T) {
	r.n++
	r.resp = v
	if r.n > 1 {
		r.t.Errorf("reply called %d times, the last with %+v", r.n, v)
	}
}

func (r *reply[T]) done() bool { return r.n > 0 }

// get returns the response, failing if there is none yet.
func (r *reply[T]) get() T {
	r.t.Helper()
	if r.n == 0 {
		r.t.Fatalf("no reply yet")
	}
	return r.resp
}

func (r *reply[T]) pending() {
	r.t.Helper()
	if r.n != 0 {
		r.t.Fatalf("unexpected reply %+v", r.resp)
	}
}

// subscription is a consumer protocol subscription of version v to topics.
func subscription(v int16, topics ...string) []byte {
	m := kmsg.ConsumerMemberMetadata{Version: v, Topics: topics, Generation: -1}
	return m.AppendTo(nil)
}

// consumerJoin is a v5 JoinGroup of a consumer supporting the given assignors, all subscribed to
// topic "t".
func consumerJoin(group, memberID string, assignors ...string) JoinRequest {
	if len(assignors) == 0 {
		assignors = []string{"range"}
	}
	r := JoinRequest{
		Version:          5,
		Group:            group,
		SessionTimeout:   10 * time.Second,
		RebalanceTimeout: 30 * time.Second,
		MemberID:         memberID,
		ProtocolType:     "consumer",
		ClientID:         "client",
		ClientHost:       "/127.0.0.1",
	}
	for _, a := range assignors {
		r.Protocols = append(r.Protocols, Protocol{Name: a, Metadata: subscription(0, "t")})
	}
	return r
}

func strp(s string) *string { return &s }

// join sends r and returns its pending reply.
func (h *shardHarness) join(r JoinRequest) *reply[JoinResponse] {
	c := newReply[JoinResponse](h.t)
	h.s.Join(h.now, r, c.fn)
	return c
}

// newMember does the v4+ dance: a join without id gets MEMBER_ID_REQUIRED, the rejoin with the id
// is parked. It returns the id and the parked rejoin.
func (h *shardHarness) newMember(r JoinRequest) (string, *reply[JoinResponse]) {
	h.t.Helper()
	r.MemberID = ""
	first := h.join(r).get()
	if first.ErrorCode != errcode.MemberIDRequired || first.MemberID == "" {
		h.t.Fatalf("first join: %+v, want MEMBER_ID_REQUIRED with an id", first)
	}
	r.MemberID = first.MemberID
	return first.MemberID, h.join(r)
}

func (h *shardHarness) sync(r SyncRequest) *reply[SyncResponse] {
	c := newReply[SyncResponse](h.t)
	h.s.Sync(h.now, r, c.fn)
	return c
}

func (h *shardHarness) heartbeat(group, member string, generation int32) errcode.Code {
	c := newReply[errcode.Code](h.t)
	h.s.Heartbeat(h.now, HeartbeatRequest{Version: 4, Group: group, MemberID: member, Generation: generation}, c.fn)
	return c.get()
}

func (h *shardHarness) leave(r LeaveRequest) *reply[LeaveResponse] {
	c := newReply[LeaveResponse](h.t)
	h.s.Leave(h.now, r, c.fn)
	return c
}

func (h *shardHarness) commit(r CommitRequest) *reply[CommitResponse] {
	c := newReply[CommitResponse](h.t)
	h.s.CommitOffsets(h.now, r, c.fn)
	return c
}

func (h *shardHarness) fetch(r FetchRequest) FetchResponse {
	c := newReply[FetchResponse](h.t)
	h.s.FetchOffsets(h.now, r, c.fn)
	return c.get()
}

func (h *shardHarness) state(group string) string { return h.s.Describe(h.now, group).State }

// stableGroup brings n consumers into a Stable group; the first joiner leads and assigns each
// member its index as assignment. It returns the member ids in join order and the generation.
func (h *shardHarness) stableGroup(group string, n int) ([]string, int32) {
	h.t.Helper()
	var ids []string
	var joins []*reply[JoinResponse]
	for range n {
		id, j := h.newMember(consumerJoin(group, ""))
		ids, joins = append(ids, id), append(joins, j)
	}
	h.tick() // the initial delay (0) ends the join phase
	var gen int32
	for i, j := range joins {
		r := j.get()
		if r.ErrorCode != errcode.None {
			h.t.Fatalf("member %d join: %+v", i, r)
		}
		gen = r.Generation
	}
	if joins[0].get().Leader != ids[0] {
		h.t.Fatalf("leader %q, want %q", joins[0].get().Leader, ids[0])
	}
	syncs := make([]*reply[SyncResponse], n)
	for i := n - 1; i >= 0; i-- {
		r := SyncRequest{Version: 5, Group: group, Generation: gen, MemberID: ids[i]}
		if i == 0 {
			for k, id := range ids {
				r.Assignments = append(r.Assignments, SyncAssignment{MemberID: id, Assignment: []byte{byte(k)}})
			}
		}
		syncs[i] = h.sync(r)
	}
	h.persistAll()
	for i, sc := range syncs {
		if r := sc.get(); r.ErrorCode != errcode.None || len(r.Assignment) != 1 || r.Assignment[0] != byte(i) {
			h.t.Fatalf("member %d sync: %+v", i, r)
		}
	}
	if st := h.state(group); st != "Stable" {
		h.t.Fatalf("state %s, want Stable", st)
	}
	return ids, gen
}

func TestShardLifecycle(t *testing.T) {
	h := newShardHarness(t, testConfig())
	ids, gen := h.stableGroup("g", 2)
	if gen != 1 {
		t.Fatalf("generation %d, want 1", gen)
	}
	// The completed sync wrote the group's metadata.
	if len(h.log) != 1 {
		t.Fatalf("%d records durable, want the group's metadata", len(h.log))
	}
	_, _, gk, gv, err := DecodeRecord(h.log[0].Key, h.log[0].Value)
	if err != nil || gk == nil || gk.Group != "g" || gv == nil || gv.Generation != 1 || len(gv.Members) != 2 ||
		gv.Protocol == nil || *gv.Protocol != "range" || gv.Leader == nil || *gv.Leader != ids[0] {
		t.Fatalf("record: %+v %+v %v", gk, gv, err)
	}
	if c := h.heartbeat("g", ids[1], gen); c != errcode.None {
		t.Fatalf("heartbeat: %v", c)
	}
	// Both leave; the group is Empty, written, and the leave is answered once durable.
	l := h.leave(LeaveRequest{Version: 3, Group: "g", Members: []LeaveMember{{MemberID: ids[0]}, {MemberID: ids[1]}}})
	l.pending()
	if st := h.state("g"); st != "Empty" {
		t.Fatalf("state %s, want Empty", st)
	}
	h.persistAll()
	if r := l.get(); r.ErrorCode != errcode.None || len(r.Members) != 2 || r.Members[0].ErrorCode != errcode.None || r.Members[1].ErrorCode != errcode.None {
		t.Fatalf("leave: %+v", r)
	}
	_, _, _, gv, _ = DecodeRecord(h.log[1].Key, h.log[1].Value)
	if gv == nil || gv.Generation != 2 || len(gv.Members) != 0 || gv.Protocol != nil || gv.ProtocolType != "consumer" {
		t.Fatalf("empty record: %+v", gv)
	}
	if _, ok := h.s.NextTimer(); !ok {
		t.Fatal("the expiry pass is not armed")
	}
}

func TestShardLoading(t *testing.T) {
	w := &shardWriter{}
	s := NewShard(0, testConfig(), w)
	if s.Ready() {
		t.Fatal("ready before Loaded")
	}
	j := newReply[JoinResponse](t)
	s.Join(shardEpoch, consumerJoin("g", ""), j.fn)
	sy := newReply[SyncResponse](t)
	s.Sync(shardEpoch, SyncRequest{Group: "g"}, sy.fn)
	hb := newReply[errcode.Code](t)
	s.Heartbeat(shardEpoch, HeartbeatRequest{Group: "g"}, hb.fn)
	l := newReply[LeaveResponse](t)
	s.Leave(shardEpoch, LeaveRequest{Version: 3, Group: "g"}, l.fn)
	c := newReply[CommitResponse](t)
	s.CommitOffsets(shardEpoch, CommitRequest{Group: "g", Generation: -1, Topics: []CommitTopic{{Topic: "t", Partitions: []CommitPartition{{}}}}}, c.fn)
	f := newReply[FetchResponse](t)
	s.FetchOffsets(shardEpoch, FetchRequest{Group: "g"}, f.fn)
	d := newReply[errcode.Code](t)
	s.DeleteGroup(shardEpoch, "g", d.fn)
	od := newReply[OffsetDeleteResponse](t)
	s.DeleteOffsets(shardEpoch, "g", nil, od.fn)
	want := errcode.CoordinatorLoadInProgress
	if j.get().ErrorCode != want || sy.get().ErrorCode != want || hb.get() != want || l.get().ErrorCode != want ||
		c.get().Topics[0].Partitions[0].ErrorCode != want || f.get().ErrorCode != want || d.get() != want ||
		od.get().ErrorCode != want || s.Describe(shardEpoch, "g").ErrorCode != want || s.List(shardEpoch, nil) != nil {
		t.Fatalf("before Loaded: %+v %+v %v %+v %+v %+v %v %+v", j.get(), sy.get(), hb.get(), l.get(), c.get(), f.get(), d.get(), od.get())
	}
	if len(w.batches) != 0 {
		t.Fatalf("%d appends while loading", len(w.batches))
	}
	s.Loaded(shardEpoch)
	if !s.Ready() {
		t.Fatal("not ready after Loaded")
	}
	if err := s.Load(nil, nil); !errors.Is(err, ErrLoaded) {
		t.Fatalf("Load after Loaded: %v", err)
	}
}

func TestShardPersistedUnknownToken(t *testing.T) {
	h := newShardHarness(t, testConfig())
	h.s.Persisted(h.now, 12345, nil) // ignored
	h.s.Persisted(h.now, 0, errors.New("x"))
}

func TestMemberIDs(t *testing.T) {
	h := newShardHarness(t, testConfig())
	id, _ := h.newMember(consumerJoin("g", ""))
	// client id, a dash, a version-4 UUID
	const prefix = "client-"
	if len(id) != len(prefix)+36 || id[:len(prefix)] != prefix || id[len(prefix)+14] != '4' || id[len(prefix)+8] != '-' {
		t.Fatalf("member id %q", id)
	}
	static := consumerJoin("g", "")
	static.InstanceID = strp("host-7")
	r := h.join(static)
	h.tick()
	if got := r.get().MemberID; len(got) != len("host-7-")+36 || got[:7] != "host-7-" {
		t.Fatalf("static member id %q", got)
	}
	// Without randomness ids stay unique.
	cfg := testConfig()
	cfg.Rand = failingReader{}
	h2 := newShardHarness(t, cfg)
	a, _ := h2.newMember(consumerJoin("g", ""))
	b, _ := h2.newMember(consumerJoin("g", ""))
	if a == b {
		t.Fatalf("ids %q and %q", a, b)
	}
}

type failingReader struct{}

func (failingReader) Read([]byte) (int, error) { return 0, errors.New("no entropy") }

func TestTimerOrder(t *testing.T) {
	var ts timers
	var fired []int
	mk := func(i int) *timer { return newTimer(func(time.Time) { fired = append(fired, i) }) }
	a, b, c := mk(1), mk(2), mk(3)
	ts.schedule(a, shardEpoch.Add(2*time.Second))
	ts.schedule(b, shardEpoch.Add(time.Second))
	ts.schedule(c, shardEpoch.Add(time.Second))
	ts.schedule(a, shardEpoch.Add(500*time.Millisecond)) // rescheduled in place
	ts.cancel(c)
	ts.cancel(c) // twice is fine
	if n := len(ts.heap); n != 2 {
		t.Fatalf("%d timers armed, want 2", n)
	}
	for tm := ts.popDue(shardEpoch.Add(5 * time.Second)); tm != nil; tm = ts.popDue(shardEpoch.Add(5 * time.Second)) {
		tm.fire(shardEpoch)
	}
	if fmt.Sprint(fired) != "[1 2]" {
		t.Fatalf("fired %v", fired)
	}
}

func TestConfigDefaults(t *testing.T) {
	c := Config{}.withDefaults()
	d := DefaultConfig()
	if c.MaxSessionTimeout != d.MaxSessionTimeout || c.MaxGroupSize != d.MaxGroupSize || c.OffsetsRetention != 7*24*time.Hour ||
		c.MaxMetadataBytes != 4096 || c.MaxProtocolMetadataBytes != 1<<20 || c.MinSessionTimeout != 0 || c.InitialRebalanceDelay != 0 || c.Rand == nil {
		t.Fatalf("defaults: %+v", c)
	}
	if d.MinSessionTimeout != 6*time.Second || d.InitialRebalanceDelay != 3*time.Second || d.MaxSessionTimeout != 30*time.Minute {
		t.Fatalf("DefaultConfig: %+v", d)
	}
}

// be64 is a big-endian int64.
func be64(v int64) []byte { return binary.BigEndian.AppendUint64(nil, uint64(v)) }

func TestDescribeAndList(t *testing.T) {
	h := newShardHarness(t, testConfig())
	ids, gen := h.stableGroup("stable", 2)
	_ = gen
	completing(h, "completing")
	h.stableGroup("preparing", 2)
	h.join(consumerJoin("preparing", h.s.groups["preparing"].leader))
	commitCode(h, CommitRequest{Group: "simple", Generation: -1, Topics: oneOffset("t", 0, 1)})
	static := staticJoin("static", "", "i0")
	static.ClientID, static.ClientHost = "app", "/10.0.0.1"
	h.join(static)
	h.tick()

	if d := h.s.Describe(h.now, ""); d.ErrorCode != errcode.InvalidGroupID {
		t.Fatalf("empty id: %+v", d)
	}
	if d := h.s.Describe(h.now, "nope"); d.ErrorCode != errcode.GroupIDNotFound || d.State != "Dead" || d.Group != "nope" {
		t.Fatalf("unknown: %+v", d)
	}
	d := h.s.Describe(h.now, "stable")
	if d.ErrorCode != errcode.None || d.State != "Stable" || d.ProtocolType != "consumer" || d.Protocol != "range" || len(d.Members) != 2 ||
		d.Members[0].MemberID != ids[0] || d.Members[0].ClientID != "client" || d.Members[0].ClientHost != "/127.0.0.1" ||
		string(d.Members[1].Assignment) != "\x01" || string(d.Members[1].Metadata) != string(subscription(0, "t")) {
		t.Fatalf("stable: %+v", d)
	}
	// Outside Stable: no protocol, no metadata.
	d = h.s.Describe(h.now, "static")
	if d.State != "CompletingRebalance" || d.Protocol != "" || d.Members[0].Metadata != nil || *d.Members[0].InstanceID != "i0" || d.Members[0].ClientID != "app" {
		t.Fatalf("static: %+v", d)
	}
	if d = h.s.Describe(h.now, "simple"); d.State != "Empty" || d.ProtocolType != "" || len(d.Members) != 0 {
		t.Fatalf("simple: %+v", d)
	}

	list := func(states ...string) string {
		var out []string
		for _, g := range h.s.List(h.now, states) {
			if g.Type != "classic" {
				t.Fatalf("type %q", g.Type)
			}
			out = append(out, g.Group+":"+g.State+":"+g.ProtocolType)
		}
		return fmt.Sprint(out)
	}
	if got := list(); got != "[completing:CompletingRebalance:consumer preparing:PreparingRebalance:consumer simple:Empty: stable:Stable:consumer static:CompletingRebalance:consumer]" {
		t.Fatalf("list: %s", got)
	}
	if got := list("stable", "EMPTY"); got != "[simple:Empty: stable:Stable:consumer]" {
		t.Fatalf("list by state: %s", got)
	}
	if got := list("Dead"); got != "[]" {
		t.Fatalf("list dead: %s", got)
	}
}
