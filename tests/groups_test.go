package tests

// End-to-end tests of consumer groups through the Kafka listener of the real broker binary, with
// franz-go group consumers: members joining, leaving and dying over a 6-partition topic (eager
// range and cooperative-sticky, and an eager to cooperative rolling upgrade), static members
// restarted without a rebalance, commits surviving kill -9, a broker killed mid-rebalance, and
// the OffsetCommit error code of each group state on the wire.
//
// Every group consumer here runs the same loop (groupMember.run): poll with rebalances blocked
// (kgo.BlockRebalanceOnPoll), process, commit the records synchronously, allow rebalances. A
// ledger shared by the members of a test checks, as they go, what Kafka guarantees:
//   - a member processes records only of partitions it was assigned and not revoked, and no
//     partition is assigned to a live member while another live member holds it;
//   - within one generation no partition is in two members' assignments;
//   - a member that gets a partition starts at the group's last acknowledged commit (or at a
//     commit whose answer was lost, when one failed), and then goes on without a gap or a
//     repeat. Records are processed twice only after a commit was not acknowledged (the member
//     was killed, or the broker was);
//   - at the end every record of the log was processed and the commits are the log end.
//
// A member "killed without leaving" has its connections cut at once and every new one refused
// (a kgo.Dialer under the test's control): the broker sees what kill -9 of the consumer's process
// shows it, sockets closed and no LeaveGroup, and the session timeout must remove the member.
//
// THORSTREAM_GROUPS_LONG=1 runs the longer variants (more churn, more kill rounds).

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

const (
	// groupSessionTimeout is Kafka's group.min.session.timeout.ms default (the broker's too): the
	// shortest a member may ask for, and how long a killed member blocks its partitions.
	groupSessionTimeout = 6 * time.Second
	groupHeartbeat      = 500 * time.Millisecond
	// groupStep bounds one step of a scenario (a rebalance, catching up) on a loaded 2-core box.
	groupStep = 90 * time.Second
	// groupPartitions is the partition count of the topics the members consume.
	groupPartitions = 6
)

func groupsLong() bool { return os.Getenv("THORSTREAM_GROUPS_LONG") != "" }

// startGroupBroker starts a broker whose new groups rebalance at once (no initial delay).
func startGroupBroker(t *testing.T, extraEnv ...string) *kafkaBroker {
	t.Helper()
	return startKafkaBroker(t, append([]string{"THORSTREAM_GROUP_INITIAL_REBALANCE_DELAY_MS=0"}, extraEnv...)...)
}

// groupPoll polls cond every 20 ms until it holds, failing after limit with what() said.
func groupPoll(t *testing.T, limit time.Duration, what func() string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %v: %s", limit, what())
		}
		time.Sleep(20 * time.Millisecond) // polling interval of a condition with a deadline
	}
}

// cutDialer dials for one client until cut: then it closes every connection it made and refuses
// new ones, so the client can say nothing more to the broker (no LeaveGroup, no commit).
type cutDialer struct {
	mu    sync.Mutex
	cut   bool
	conns []net.Conn
}

var errCut = errors.New("tests: connection cut")

func (d *cutDialer) dial(ctx context.Context, network, host string) (net.Conn, error) {
	conn, err := (&net.Dialer{Timeout: 10 * time.Second}).DialContext(ctx, network, host)
	if err != nil {
		return nil, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.cut {
		conn.Close()
		return nil, errCut
	}
	d.conns = append(d.conns, conn)
	return conn, nil
}

func (d *cutDialer) cutAll() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.cut = true
	for _, c := range d.conns {
		c.Close()
	}
	d.conns = nil
}

// groupLedger is what the members of one test did, checked as they do it (see the file comment).
type groupLedger struct {
	t       *testing.T
	addr    string
	group   string
	topic   string
	started time.Time

	mu sync.Mutex
	// allowErrors: commits and fetches may fail (the broker is being killed).
	allowErrors bool
	owner       map[int32]*groupMember
	// committed is the last acknowledged commit of each partition; unsure the highest commit
	// whose answer never came or was an error (it may have been applied).
	committed, unsure [groupPartitions]int64
	seen              [groupPartitions][]bool
	processed         [groupPartitions]int64 // distinct offsets processed
	gens              map[int32]map[int32]string
	leaders           []string // the member whose balancer ran, each time one did
	holdBalance       chan struct{}
	members           []*groupMember
	problems          []string
}

func newGroupLedger(t *testing.T, addr, group, topic string) *groupLedger {
	l := &groupLedger{t: t, started: time.Now(), addr: addr, group: group, topic: topic, owner: map[int32]*groupMember{}, gens: map[int32]map[int32]string{}}
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		l.mu.Lock()
		members := slices.Clone(l.members)
		l.mu.Unlock()
		for _, m := range members {
			t.Logf("--- kgo log of %s (tail) ---\n%s", m.name, crashTail(m.logs.String(), 40))
		}
	})
	return l
}

// problem records a broken guarantee; l.mu is held.
func (l *groupLedger) problem(format string, args ...any) {
	if len(l.problems) < 50 {
		l.problems = append(l.problems, fmt.Sprintf(format, args...))
	}
}

// check fails the test with every problem recorded so far.
func (l *groupLedger) check() {
	l.t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.problems) > 0 {
		l.t.Fatalf("%d problems:\n%s", len(l.problems), strings.Join(l.problems, "\n"))
	}
}

func (l *groupLedger) setAllowErrors(v bool) {
	l.mu.Lock()
	l.allowErrors = v
	l.mu.Unlock()
}

// groupMember is one franz-go group consumer of a ledger's topic.
type groupMember struct {
	name string
	// identity is what the group knows the member as within a generation: its instance id
	// when static (a restarted instance takes its old place), else its name.
	identity string
	l        *groupLedger
	cl       *kgo.Client
	cut      *cutDialer
	logs     *syncBuffer
	ctx      context.Context
	cancel   context.CancelFunc
	done     chan struct{}
	// hold, when set, makes the poll loop wait on it after a poll with records, before allowing
	// a rebalance; held says that it waits.
	hold atomic.Pointer[chan struct{}]
	held atomic.Bool
	// heartbeats counts the Heartbeat responses the client read.
	heartbeats atomic.Int64

	// Under l.mu.
	dead        bool
	owned       map[int32]bool
	next        map[int32]int64 // next offset expected per partition owned; absent: none processed yet
	inflight    map[int32]int64 // the commit being sent
	generation  int32           // at the last assignment
	assignments int
	revocations int
	count       int // records processed
}

// heartbeatHook counts a member's Heartbeat responses.
type heartbeatHook struct{ m *groupMember }

func (h heartbeatHook) OnBrokerRead(_ kgo.BrokerMetadata, key int16, _ int, _, _ time.Duration, err error) {
	if key == kmsg.Heartbeat.Int16() && err == nil {
		h.m.heartbeats.Add(1)
	}
}

// trackedBalancer records which member led each rebalance and can hold the leader's assignment
// (the group then waits in CompletingRebalance).
type trackedBalancer struct {
	kgo.GroupBalancer
	m *groupMember
}

func (b trackedBalancer) MemberBalancer(members []kmsg.JoinGroupResponseMember) (kgo.GroupMemberBalancer, map[string]struct{}, error) {
	l := b.m.l
	l.mu.Lock()
	l.leaders = append(l.leaders, b.m.name)
	hold := l.holdBalance
	l.mu.Unlock()
	if hold != nil {
		<-hold
	}
	return b.GroupBalancer.MemberBalancer(members)
}

// memberOpts are the options of a member besides the defaults of startMember.
type memberOpts struct {
	balancers      []kgo.GroupBalancer // default: range
	instanceID     string
	sessionTimeout time.Duration
}

// startMember starts a group consumer and its poll loop; it is closed (leaving the group) at the
// end of the test unless it was killed or closed before.
func (l *groupLedger) startMember(name string, o memberOpts) *groupMember {
	l.t.Helper()
	m := &groupMember{name: name, identity: name, l: l, cut: &cutDialer{}, logs: &syncBuffer{}, done: make(chan struct{}),
		owned: map[int32]bool{}, next: map[int32]int64{}}
	if len(o.balancers) == 0 {
		o.balancers = []kgo.GroupBalancer{kgo.RangeBalancer()}
	}
	if o.sessionTimeout == 0 {
		o.sessionTimeout = groupSessionTimeout
	}
	var balancers []kgo.GroupBalancer
	for _, b := range o.balancers {
		balancers = append(balancers, trackedBalancer{GroupBalancer: b, m: m})
	}
	opts := []kgo.Opt{
		kgo.SeedBrokers(l.addr),
		kgo.ClientID(name),
		kgo.Dialer(m.cut.dial),
		kgo.ConsumerGroup(l.group),
		kgo.ConsumeTopics(l.topic),
		kgo.Balancers(balancers...),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.DisableAutoCommit(),
		kgo.BlockRebalanceOnPoll(),
		kgo.SessionTimeout(o.sessionTimeout),
		kgo.HeartbeatInterval(min(groupHeartbeat, o.sessionTimeout/10)),
		kgo.RebalanceTimeout(60 * time.Second),
		kgo.FetchMaxWait(time.Second),
		kgo.OnPartitionsAssigned(func(_ context.Context, cl *kgo.Client, parts map[string][]int32) { l.assigned(m, cl, parts) }),
		kgo.OnPartitionsRevoked(func(_ context.Context, _ *kgo.Client, parts map[string][]int32) { l.released(m, parts, false) }),
		kgo.OnPartitionsLost(func(_ context.Context, _ *kgo.Client, parts map[string][]int32) { l.released(m, parts, true) }),
		kgo.WithHooks(heartbeatHook{m}),
		kgo.WithLogger(kgo.BasicLogger(m.logs, kgo.LogLevelInfo, func() string { return time.Now().Format("15:04:05.000 ") })),
	}
	if o.instanceID != "" {
		opts = append(opts, kgo.InstanceID(o.instanceID))
		m.identity = "instance " + o.instanceID
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		l.t.Fatal(err)
	}
	m.cl = cl
	m.ctx, m.cancel = context.WithCancel(context.Background())
	l.mu.Lock()
	l.members = append(l.members, m)
	l.mu.Unlock()
	go m.run()
	l.t.Cleanup(func() { m.close() })
	return m
}

func (m *groupMember) run() {
	defer close(m.done)
	for {
		fetches := m.cl.PollRecords(m.ctx, 2000)
		if m.ctx.Err() != nil {
			m.cl.AllowRebalance()
			return
		}
		fetches.EachError(func(topic string, p int32, err error) { m.l.fetchError(m, topic, p, err) })
		if recs := fetches.Records(); len(recs) > 0 && m.l.process(m, recs) {
			offsets := m.l.commitStart(m, recs)
			err := m.cl.CommitRecords(m.ctx, recs...)
			m.l.commitDone(m, offsets, err)
		}
		if hold := m.hold.Load(); hold != nil {
			m.held.Store(true)
			<-*hold
			m.held.Store(false)
		}
		m.cl.AllowRebalance()
	}
}

// holdPolls makes the member stop after its next poll with records, holding rebalances back; it
// returns the function that lets it go on.
func (m *groupMember) holdPolls() (release func()) {
	ch := make(chan struct{})
	m.hold.Store(&ch)
	return func() {
		m.hold.Store(nil)
		close(ch)
	}
}

// close stops the poll loop and closes the client, which leaves the group (a static member
// does not: kgo keeps its instance in the group for a restart).
func (m *groupMember) close() {
	m.cancel()
	<-m.done
	m.cl.Close()
}

// kill cuts the member off without a LeaveGroup; from then on it processes nothing.
func (m *groupMember) kill() {
	l := m.l
	l.mu.Lock()
	m.dead = true
	for p := range m.owned {
		if l.owner[p] == m {
			delete(l.owner, p)
		}
	}
	for p, o := range m.inflight {
		l.unsure[p] = max(l.unsure[p], o)
	}
	m.inflight = nil
	l.mu.Unlock()
	m.cut.cutAll()
	m.cancel()
	<-m.done
	go func() {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		_ = m.cl.LeaveGroupContext(ctx) // nothing can be sent: it only ends the client's group work
		m.cl.Close()
	}()
}

func (l *groupLedger) assigned(m *groupMember, cl *kgo.Client, parts map[string][]int32) {
	_, gen := cl.GroupMetadata()
	l.mu.Lock()
	defer l.mu.Unlock()
	if m.dead {
		return
	}
	m.assignments++
	m.generation = gen
	for topic, ps := range parts {
		if topic != l.topic {
			l.problem("%s: assigned %s %v, not the topic it subscribed to", m.name, topic, ps)
			continue
		}
		for _, p := range ps {
			if p < 0 || p >= groupPartitions {
				l.problem("%s: assigned partition %d of a %d-partition topic", m.name, p, groupPartitions)
				continue
			}
			if o := l.owner[p]; o != nil && o != m {
				l.problem("%s: assigned partition %d in generation %d while %s (alive) holds it since generation %d", m.name, p, gen, o.name, o.generation)
			}
			l.owner[p] = m
			m.owned[p] = true
		}
	}
	byPartition := l.gens[gen]
	if byPartition == nil {
		byPartition = map[int32]string{}
		l.gens[gen] = byPartition
	}
	for p := range m.owned {
		if other, ok := byPartition[p]; ok && other != m.identity {
			l.problem("generation %d: partition %d assigned to %s and to %s", gen, p, other, m.identity)
		}
		byPartition[p] = m.identity
	}
}

func (l *groupLedger) released(m *groupMember, parts map[string][]int32, lost bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if m.dead {
		return
	}
	if !lost {
		m.revocations++
	}
	for _, p := range parts[l.topic] {
		if l.owner[p] == m {
			delete(l.owner, p)
		}
		delete(m.owned, p)
		delete(m.next, p)
	}
}

func (l *groupLedger) fetchError(m *groupMember, topic string, p int32, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if m.dead || l.allowErrors || errors.Is(err, context.Canceled) {
		return
	}
	l.problem("%s: fetch %s/%d: %v", m.name, topic, p, err)
}

// process checks and records a poll's records; it reports whether the member should commit them
// (a killed member does nothing more).
func (l *groupLedger) process(m *groupMember, recs []*kgo.Record) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if m.dead {
		return false
	}
	for _, r := range recs {
		p := r.Partition
		if r.Topic != l.topic || p < 0 || p >= groupPartitions {
			l.problem("%s: record of %s/%d", m.name, r.Topic, p)
			continue
		}
		if !m.owned[p] {
			l.problem("%s: processed %d@%d without owning partition %d (held by %v)", m.name, p, r.Offset, p, l.owner[p] != nil)
		}
		if want, ok := m.next[p]; !ok {
			lo := l.committed[p]
			hi := max(lo, l.unsure[p])
			if r.Offset < lo || r.Offset > hi {
				l.problem("%s: started partition %d at offset %d; the group's last acknowledged commit is %d (unacknowledged up to %d)", m.name, p, r.Offset, lo, hi)
			}
		} else if r.Offset != want {
			l.problem("%s: partition %d: offset %d after %d (a gap or a repeat)", m.name, p, r.Offset, want-1)
		}
		m.next[p] = r.Offset + 1
		for int64(len(l.seen[p])) <= r.Offset {
			l.seen[p] = append(l.seen[p], false)
		}
		if !l.seen[p][r.Offset] {
			l.seen[p][r.Offset] = true
			l.processed[p]++
		}
		m.count++
	}
	return true
}

func (l *groupLedger) commitStart(m *groupMember, recs []*kgo.Record) map[int32]int64 {
	offsets := map[int32]int64{}
	for _, r := range recs {
		offsets[r.Partition] = max(offsets[r.Partition], r.Offset+1)
	}
	l.mu.Lock()
	m.inflight = offsets
	l.mu.Unlock()
	return offsets
}

func (l *groupLedger) commitDone(m *groupMember, offsets map[int32]int64, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	m.inflight = nil
	for p, o := range offsets {
		if err != nil {
			l.unsure[p] = max(l.unsure[p], o)
			continue
		}
		if o < l.committed[p] {
			l.problem("%s: commit of partition %d at %d acknowledged after one at %d", m.name, p, o, l.committed[p])
		}
		l.committed[p] = o
	}
	if err != nil && !m.dead && !l.allowErrors && !errors.Is(err, context.Canceled) {
		l.problem("%s: commit %v: %v", m.name, offsets, err)
	}
}

// owners describes who holds what, for failure messages.
func (l *groupLedger) owners() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var parts []string
	for _, m := range l.members {
		if m.dead {
			continue
		}
		parts = append(parts, fmt.Sprintf("%s gen %d %v (%d records)", m.name, m.generation, slices.Sorted(maps.Keys(m.owned)), m.count))
	}
	return fmt.Sprintf("members [%s]; processed %v; committed %v; problems %d", strings.Join(parts, "; "), l.processed, l.committed, len(l.problems))
}

// balancedAmong reports whether exactly the named members hold every partition, each at least
// its share (partitions / members, rounded down).
func (l *groupLedger) balancedAmong(names ...string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	want := map[string]bool{}
	for _, n := range names {
		want[n] = true
	}
	for p := range int32(groupPartitions) {
		o := l.owner[p]
		if o == nil || !want[o.name] {
			return false
		}
	}
	for _, m := range l.members {
		if m.dead {
			continue
		}
		if want[m.name] != (len(m.owned) >= groupPartitions/len(names)) {
			return false
		}
		if !want[m.name] && len(m.owned) > 0 {
			return false
		}
	}
	return true
}

// describe returns the group as the broker describes it (nil on an error).
func describeGroupKafka(adm *kadm.Client, group string) *kadm.DescribedGroup {
	c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	dg, err := adm.DescribeGroups(c, group)
	if err != nil {
		return nil
	}
	g, ok := dg[group]
	if !ok || g.Err != nil {
		return nil
	}
	return &g
}

// checkDescribedAssignment checks the broker's view of a Stable group: n members whose
// assignments (Kafka's consumer protocol) split the topic's partitions with none twice.
func checkDescribedAssignment(g *kadm.DescribedGroup, topic string, n int) error {
	if g.State != "Stable" || len(g.Members) != n || g.ProtocolType != "consumer" {
		return fmt.Errorf("state %s, protocol type %q, %d members; want Stable, consumer, %d", g.State, g.ProtocolType, len(g.Members), n)
	}
	owner := map[int32]string{}
	for _, m := range g.Members {
		a, ok := m.Assigned.AsConsumer()
		if !ok {
			return fmt.Errorf("member %s: assignment is not Kafka's consumer protocol", m.MemberID)
		}
		for _, at := range a.Topics {
			if at.Topic != topic {
				return fmt.Errorf("member %s assigned topic %s", m.MemberID, at.Topic)
			}
			for _, p := range at.Partitions {
				if o, dup := owner[p]; dup {
					return fmt.Errorf("partition %d assigned to %s and %s", p, o, m.MemberID)
				}
				owner[p] = m.MemberID
			}
		}
	}
	if len(owner) != groupPartitions {
		return fmt.Errorf("%d of %d partitions assigned: %v", len(owner), groupPartitions, owner)
	}
	return nil
}

// waitBalanced waits until exactly the named members hold every partition, in the ledger and in
// the broker's DescribeGroups, and then until every partition was processed up to what had been
// produced when they did (so each member is really consuming).
func (l *groupLedger) waitBalanced(adm *kadm.Client, p *groupProducer, names ...string) {
	l.t.Helper()
	var described string
	groupPoll(l.t, groupStep, func() string {
		return fmt.Sprintf("want %v to share the partitions: %s; broker: %s", names, l.owners(), described)
	}, func() bool {
		if !l.balancedAmong(names...) {
			return false
		}
		g := describeGroupKafka(adm, l.group)
		if g == nil {
			described = "no answer"
			return false
		}
		if err := checkDescribedAssignment(g, l.topic, len(names)); err != nil {
			described = err.Error()
			return false
		}
		return l.balancedAmong(names...)
	})
	if p != nil {
		l.waitProcessed(p.afterNow(l.t))
	}
	l.check()
	l.t.Logf("%6.2fs %v share the partitions: %s", time.Since(l.started).Seconds(), names, l.owners())
}

// waitProcessed waits until every offset below ends was processed.
func (l *groupLedger) waitProcessed(ends [groupPartitions]int64) {
	l.t.Helper()
	groupPoll(l.t, groupStep, func() string { return fmt.Sprintf("processing up to %v: %s", ends, l.owners()) }, func() bool {
		l.mu.Lock()
		defer l.mu.Unlock()
		for p := range groupPartitions {
			if l.processed[p] < ends[p] {
				return false
			}
		}
		return true
	})
}

// waitCommitted waits until the ledger's acknowledged commits are ends.
func (l *groupLedger) waitCommitted(ends [groupPartitions]int64) {
	l.t.Helper()
	groupPoll(l.t, groupStep, func() string { return fmt.Sprintf("commits at %v: %s", ends, l.owners()) }, func() bool {
		l.mu.Lock()
		defer l.mu.Unlock()
		return l.committed == ends
	})
}

// finish stops the producer and checks the end state: every record of the log processed, the
// commits (the ledger's and the broker's) at the log end.
func (l *groupLedger) finish(adm *kadm.Client, p *groupProducer) [groupPartitions]int64 {
	l.t.Helper()
	if p != nil {
		p.stop()
	}
	ends := logEnds(l.t, adm, l.topic)
	l.waitProcessed(ends)
	l.waitCommitted(ends)
	l.mu.Lock()
	for part := range groupPartitions {
		if l.processed[part] != ends[part] {
			l.problem("partition %d: %d distinct offsets processed, log end %d", part, l.processed[part], ends[part])
		}
	}
	l.mu.Unlock()
	if got := fetchCommitted(l.t, adm, l.group, l.topic); got != ends {
		l.t.Fatalf("the broker's commits of %s are %v, the log ends at %v", l.group, got, ends)
	}
	l.check()
	return ends
}

// logEnds returns the topic's log end offsets.
func logEnds(t *testing.T, adm *kadm.Client, topic string) [groupPartitions]int64 {
	t.Helper()
	var ends [groupPartitions]int64
	var last error
	groupPoll(t, groupStep, func() string { return fmt.Sprintf("list end offsets of %s: %v", topic, last) }, func() bool {
		c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		lo, err := adm.ListEndOffsets(c, topic)
		if err == nil {
			err = lo.Error()
		}
		if last = err; err != nil {
			return false
		}
		n := 0
		lo.Each(func(o kadm.ListedOffset) {
			if o.Partition >= 0 && o.Partition < groupPartitions {
				ends[o.Partition] = o.Offset
				n++
			}
		})
		return n == groupPartitions
	})
	return ends
}

// fetchCommitted returns the group's committed offsets of topic (-1 where none).
func fetchCommitted(t *testing.T, adm *kadm.Client, group, topic string) [groupPartitions]int64 {
	t.Helper()
	var out [groupPartitions]int64
	var last error
	groupPoll(t, groupStep, func() string { return fmt.Sprintf("fetch offsets of %s: %v", group, last) }, func() bool {
		c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		resp, err := adm.FetchOffsets(c, group)
		if err == nil {
			err = resp.Error()
		}
		if last = err; err != nil {
			return false
		}
		for p := range int32(groupPartitions) {
			out[p] = -1
			if o, ok := resp.Lookup(topic, p); ok {
				out[p] = o.At
			}
		}
		return true
	})
	return out
}

// groupProducer produces to every partition of a topic in the background, a round of records
// per partition every tick, until stopped.
type groupProducer struct {
	t      *testing.T
	cl     *kgo.Client
	cancel context.CancelFunc
	done   chan struct{}

	mu     sync.Mutex
	ends   [groupPartitions]int64 // one past the highest acknowledged offset
	errors []error
}

func startGroupProducer(t *testing.T, addr, topic string, perPartition int, every time.Duration) *groupProducer {
	t.Helper()
	cl := newKafkaClient(t, addr, kgo.DefaultProduceTopic(topic), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	c, cancel := context.WithCancel(context.Background())
	p := &groupProducer{t: t, cl: cl, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(p.done)
		tick := time.NewTicker(every) // the production rate, not a wait for a condition
		defer tick.Stop()
		seq := 0
		for c.Err() == nil {
			var recs []*kgo.Record
			for part := range int32(groupPartitions) {
				for range perPartition {
					recs = append(recs, &kgo.Record{Partition: part, Value: fmt.Appendf(nil, "record-%d", seq)})
					seq++
				}
			}
			res := cl.ProduceSync(c, recs...)
			p.mu.Lock()
			for _, r := range res {
				if r.Err != nil {
					if c.Err() == nil {
						p.errors = append(p.errors, r.Err)
					}
					continue
				}
				p.ends[r.Record.Partition] = max(p.ends[r.Record.Partition], r.Record.Offset+1)
			}
			p.mu.Unlock()
			select {
			case <-tick.C:
			case <-c.Done():
			}
		}
	}()
	t.Cleanup(p.stop)
	return p
}

func (p *groupProducer) acked() [groupPartitions]int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.ends
}

// afterNow waits until records were acknowledged in every partition after the call and returns
// the ends then.
func (p *groupProducer) afterNow(t *testing.T) [groupPartitions]int64 {
	t.Helper()
	before := p.acked()
	var now [groupPartitions]int64
	groupPoll(t, groupStep, func() string { return fmt.Sprintf("produce beyond %v: at %v", before, now) }, func() bool {
		now = p.acked()
		for i := range now {
			if now[i] <= before[i] {
				return false
			}
		}
		return true
	})
	return now
}

func (p *groupProducer) stop() {
	p.cancel()
	<-p.done
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.errors) > 0 {
		p.t.Errorf("%d produce errors; first: %v", len(p.errors), p.errors[0])
		p.errors = nil
	}
}

// groupSetup starts what a scenario needs: an admin client, the topic, a ledger.
func groupSetup(t *testing.T, addr, group, topic string) (*kadm.Client, *groupLedger) {
	t.Helper()
	adm, cl := newAdmin(t, addr)
	createTopic(t, cl, topic, groupPartitions, nil)
	return adm, newGroupLedger(t, addr, group, topic)
}

func TestGroupsMembersJoinLeaveAndDie(t *testing.T) {
	t.Parallel()
	for _, strategy := range []struct {
		name      string
		balancers func() []kgo.GroupBalancer
		protocol  string
	}{
		{"eager-range", func() []kgo.GroupBalancer { return []kgo.GroupBalancer{kgo.RangeBalancer()} }, "range"},
		{"cooperative-sticky", func() []kgo.GroupBalancer { return []kgo.GroupBalancer{kgo.CooperativeStickyBalancer()} }, "cooperative-sticky"},
	} {
		t.Run(strategy.name, func(t *testing.T) {
			t.Parallel()
			b := startGroupBroker(t)
			adm, l := groupSetup(t, b.kafkaAddr, "churn-"+strategy.name, "churn-"+strategy.name)
			p := startGroupProducer(t, b.kafkaAddr, l.topic, 10, 50*time.Millisecond)
			o := memberOpts{balancers: strategy.balancers()}
			members := map[string]*groupMember{}
			start := func(name string) { members[name] = l.startMember(name, o) }

			for _, n := range []string{"a", "b", "c"} {
				start(n)
			}
			l.waitBalanced(adm, p, "a", "b", "c")
			if g := describeGroupKafka(adm, l.group); g == nil || g.Protocol != strategy.protocol {
				t.Fatalf("group protocol: %+v, want %s", g, strategy.protocol)
			}
			start("d") // a fourth member joins
			l.waitBalanced(adm, p, "a", "b", "c", "d")
			members["b"].close() // one leaves (LeaveGroup)
			l.waitBalanced(adm, p, "a", "c", "d")
			members["c"].kill() // one dies: the session timeout removes it
			l.waitBalanced(adm, p, "a", "d")
			start("e")
			l.waitBalanced(adm, p, "a", "d", "e")
			if groupsLong() {
				for round := range 3 {
					x, y := fmt.Sprintf("x%d", round), fmt.Sprintf("y%d", round)
					start(x)
					start(y)
					l.waitBalanced(adm, p, "a", "d", "e", x, y)
					members[x].kill()
					members[y].close()
					l.waitBalanced(adm, p, "a", "d", "e")
				}
			}
			ends := l.finish(adm, p)
			for _, n := range []string{"a", "d", "e"} {
				members[n].close()
			}
			groupPoll(t, groupStep, func() string { return "the group did not become Empty" }, func() bool {
				g := describeGroupKafka(adm, l.group)
				return g != nil && g.State == "Empty" && len(g.Members) == 0
			})
			if got := fetchCommitted(t, adm, l.group, l.topic); got != ends {
				t.Fatalf("commits %v once the group is Empty, want %v", got, ends)
			}

			// A new member resumes from the commits: it starts every partition at the commit
			// (the ledger checks it) and sees only the records produced since.
			produceSync(t, newKafkaClient(t, b.kafkaAddr, kgo.DefaultProduceTopic(l.topic)), valueRecords(l.topic, "after", 120)...)
			start("f")
			newEnds := l.finish(adm, nil)
			var added int64
			for i := range ends {
				added += newEnds[i] - ends[i]
			}
			l.mu.Lock()
			got := members["f"].count
			l.mu.Unlock()
			if added != 120 || int64(got) != added {
				t.Fatalf("the new member processed %d records; %d were produced after the others left (want 120)", got, added)
			}
		})
	}
}

func TestGroupsEagerToCooperativeRollingUpgrade(t *testing.T) {
	t.Parallel()
	b := startGroupBroker(t)
	adm, l := groupSetup(t, b.kafkaAddr, "upgrade", "upgrade")
	p := startGroupProducer(t, b.kafkaAddr, l.topic, 10, 50*time.Millisecond)
	eager := memberOpts{balancers: []kgo.GroupBalancer{kgo.RangeBalancer()}}
	both := memberOpts{balancers: []kgo.GroupBalancer{kgo.CooperativeStickyBalancer(), kgo.RangeBalancer()}}
	coop := memberOpts{balancers: []kgo.GroupBalancer{kgo.CooperativeStickyBalancer()}}
	protocol := func() string {
		if g := describeGroupKafka(adm, l.group); g != nil {
			return g.Protocol
		}
		return "?"
	}
	members := []*groupMember{l.startMember("eager-0", eager), l.startMember("eager-1", eager), l.startMember("eager-2", eager)}
	names := []string{"eager-0", "eager-1", "eager-2"}
	l.waitBalanced(adm, p, names...)
	if got := protocol(); got != "range" {
		t.Fatalf("protocol %s, want range", got)
	}
	// Two rolling bounces as KIP-429 prescribes: first to both protocols (range stays chosen
	// while a member supports only range), then to cooperative-sticky alone.
	for phase, o := range []memberOpts{both, coop} {
		for i := range members {
			members[i].close()
			names[i] = fmt.Sprintf("phase%d-%d", phase+1, i)
			members[i] = l.startMember(names[i], o)
			l.waitBalanced(adm, p, names...)
			want := "range"
			if phase == 1 || i == len(members)-1 {
				want = "cooperative-sticky" // every member now prefers it
			}
			if got := protocol(); got != want {
				t.Fatalf("phase %d, member %d replaced: protocol %s, want %s", phase+1, i, got, want)
			}
		}
	}
	l.finish(adm, p)
}

func TestGroupsStaticMemberRestart(t *testing.T) {
	t.Parallel()
	b := startGroupBroker(t)
	adm, l := groupSetup(t, b.kafkaAddr, "static", "static")
	p := startGroupProducer(t, b.kafkaAddr, l.topic, 10, 50*time.Millisecond)
	// A session timeout long enough for a restart on a loaded box.
	static := func(id string) memberOpts { return memberOpts{instanceID: id, sessionTimeout: 30 * time.Second} }
	s1 := l.startMember("s1", static("instance-1"))
	s2 := l.startMember("s2", static("instance-2"))
	l.waitBalanced(adm, p, "s1", "s2")
	l.mu.Lock()
	leader := l.leaders[len(l.leaders)-1]
	l.mu.Unlock()

	// Restart each instance with a new client (a new process: a new member id), the follower
	// first, then the leader (KIP-814: it is told to keep the assignment). Neither rebalances.
	type instance struct {
		id string
		m  *groupMember
	}
	insts := []*instance{{"instance-1", s1}, {"instance-2", s2}}
	if leader == s1.name {
		insts[0], insts[1] = insts[1], insts[0]
	}
	for i, in := range insts {
		other := insts[1-i].m
		l.mu.Lock()
		gen, owned := in.m.generation, slices.Sorted(maps.Keys(in.m.owned))
		otherAssignments, otherRevocations, otherGen := other.assignments, other.revocations, other.generation
		l.mu.Unlock()
		otherID, _ := other.cl.GroupMetadata()
		in.m.close() // a static member's close sends no LeaveGroup
		restarted := l.startMember(in.m.name+"-restarted", static(in.id))
		in.m = restarted
		groupPoll(t, groupStep, func() string { return "restarted member assigned: " + l.owners() }, func() bool {
			l.mu.Lock()
			defer l.mu.Unlock()
			return restarted.assignments > 0
		})
		l.mu.Lock()
		newGen, newOwned := restarted.generation, slices.Sorted(maps.Keys(restarted.owned))
		l.mu.Unlock()
		if newGen != gen || !slices.Equal(newOwned, owned) {
			t.Fatalf("%s restarted into generation %d with %v; it had generation %d with %v", in.id, newGen, newOwned, gen, owned)
		}
		// Two heartbeats of the other member after the restart: had the join started a
		// rebalance, the first would have told it, and it would have revoked (eager range).
		hb := other.heartbeats.Load()
		groupPoll(t, groupStep, func() string { return "two heartbeats of the other member" }, func() bool { return other.heartbeats.Load() >= hb+2 })
		g := describeGroupKafka(adm, l.group)
		if g == nil {
			t.Fatal("DescribeGroups failed")
		}
		if err := checkDescribedAssignment(g, l.topic, 2); err != nil {
			t.Fatalf("after restarting %s: %v", in.id, err)
		}
		var ids []string
		for _, dm := range g.Members {
			ids = append(ids, dm.MemberID)
		}
		newID, _ := restarted.cl.GroupMetadata()
		if !slices.Contains(ids, otherID) || !slices.Contains(ids, newID) {
			t.Fatalf("members %v, want the other member %s and the restarted %s", ids, otherID, newID)
		}
		l.mu.Lock()
		stable := other.assignments == otherAssignments && other.revocations == otherRevocations && other.generation == otherGen
		msg := fmt.Sprintf("restarting %s rebalanced: the other member's assignments %d→%d, revocations %d→%d, generation %d→%d",
			in.id, otherAssignments, other.assignments, otherRevocations, other.revocations, otherGen, other.generation)
		l.mu.Unlock()
		if !stable {
			t.Fatal(msg)
		}
		l.waitProcessed(p.afterNow(t))
	}
	l.check()

	// An instance that does not come back within its session timeout (6 s here) is removed,
	// and the others take its partitions.
	names := []string{insts[0].m.name, insts[1].m.name}
	s3 := l.startMember("s3", memberOpts{instanceID: "instance-3"})
	l.waitBalanced(adm, p, append(names, "s3")...)
	s3.close()
	l.waitBalanced(adm, p, names...)
	l.finish(adm, p)
}

func TestGroupsCommitSurvivesBrokerKill(t *testing.T) {
	t.Parallel()
	b := startGroupBroker(t)
	adm, l := groupSetup(t, b.kafkaAddr, "kill-member", "kill-commits")
	p := startGroupProducer(t, b.kafkaAddr, l.topic, 5, 50*time.Millisecond)
	l.startMember("m", memberOpts{sessionTimeout: 30 * time.Second})
	l.waitBalanced(adm, p, "m")

	rounds := 2
	if groupsLong() {
		rounds = 10
	}
	const committers = 4
	for round := range rounds {
		// Simple (generation -1) commits of every partition, in a tight loop per group; the
		// first group's committer kills the broker the moment its commit number 30 is
		// acknowledged, while the other groups have theirs in flight.
		type committer struct {
			group            string
			acked, attempted int64
		}
		cs := make([]*committer, committers)
		var killed atomic.Bool
		var wg sync.WaitGroup
		errs := make(chan error, committers)
		for i := range cs {
			c := &committer{group: fmt.Sprintf("simple-%d-%d", round, i)}
			cs[i] = c
			wg.Add(1)
			go func() {
				defer wg.Done()
				conn, err := dialGroupConn(b.kafkaAddr)
				if err != nil {
					errs <- err
					return
				}
				defer conn.close()
				for n := int64(1); !killed.Load(); n++ {
					c.attempted = n * 10
					resp, err := conn.do(offsetCommitReq(8, c.group, -1, "", nil, l.topic, c.attempted))
					if err != nil {
						if !killed.Load() {
							errs <- fmt.Errorf("%s: %w", c.group, err)
						}
						return
					}
					if code := commitCode(resp.(*kmsg.OffsetCommitResponse)); code != 0 {
						errs <- fmt.Errorf("%s: commit answered %v", c.group, kerr.ErrorForCode(code))
						return
					}
					c.acked = c.attempted
					if i == 0 && n == 30 && killed.CompareAndSwap(false, true) {
						_ = b.cmd.Process.Signal(syscall.SIGKILL)
						return
					}
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		l.setAllowErrors(true)
		b.kill()
		l.mu.Lock()
		memberAcked := l.committed
		l.mu.Unlock()
		b.restart()
		for i, c := range cs {
			got := fetchCommitted(t, adm, c.group, l.topic)
			for part, o := range got {
				lo, hi := c.acked, c.attempted
				if i == 0 {
					hi = lo // nothing was in flight when the broker was killed
				}
				if o < lo || o > hi {
					t.Fatalf("round %d: %s partition %d: committed %d after the restart; acknowledged %d, sent up to %d", round, c.group, part, o, lo, hi)
				}
			}
		}
		got := fetchCommitted(t, adm, l.group, l.topic)
		for part := range got {
			if got[part] < memberAcked[part] {
				t.Fatalf("round %d: the member's commit of partition %d is %d after the restart, %d was acknowledged", round, part, got[part], memberAcked[part])
			}
		}
		t.Logf("round %d: commits acknowledged before the kill: %v (group %s: last, nothing in flight); after the restart: %v",
			round, func() (out []int64) {
				for _, c := range cs {
					out = append(out, c.acked/10)
				}
				return out
			}(), cs[0].group, fetchCommitted(t, adm, cs[1].group, l.topic)[0])
		// The group member goes on with the restarted broker.
		l.waitProcessed(p.afterNow(t))
		l.setAllowErrors(false)
		l.waitBalanced(adm, p, "m")
	}
	l.finish(adm, p)
}

func TestGroupsBrokerKilledMidRebalance(t *testing.T) {
	t.Parallel()
	for _, state := range []string{"PreparingRebalance", "CompletingRebalance"} {
		t.Run(state, func(t *testing.T) {
			t.Parallel()
			b := startGroupBroker(t)
			adm, l := groupSetup(t, b.kafkaAddr, "midrebalance", "midrebalance")
			p := startGroupProducer(t, b.kafkaAddr, l.topic, 5, 50*time.Millisecond)
			o := memberOpts{sessionTimeout: 30 * time.Second}
			m0 := l.startMember("m0", o)
			l.startMember("m1", o)
			l.startMember("m2", o)
			l.waitBalanced(adm, p, "m0", "m1", "m2")

			// Hold the group in the state: a member that does not rejoin (its poll holds the
			// rebalance back) keeps it PreparingRebalance; a leader that does not assign keeps it
			// CompletingRebalance.
			var release func()
			if state == "PreparingRebalance" {
				release = m0.holdPolls()
				groupPoll(t, groupStep, func() string { return "m0 holding" }, m0.held.Load)
			} else {
				ch := make(chan struct{})
				l.mu.Lock()
				l.holdBalance = ch
				l.mu.Unlock()
				release = func() {
					l.mu.Lock()
					l.holdBalance = nil
					l.mu.Unlock()
					close(ch)
				}
			}
			l.startMember("m3", o)
			var seen string
			groupPoll(t, groupStep, func() string { return "the group in " + state + ", it is " + seen }, func() bool {
				g := describeGroupKafka(adm, l.group)
				if g != nil {
					seen = g.State
				}
				return seen == state
			})
			l.setAllowErrors(true)
			b.kill()
			b.restart()
			release()
			l.waitBalanced(adm, p, "m0", "m1", "m2", "m3")
			l.setAllowErrors(false)
			l.finish(adm, p)
		})
	}
}

// groupConn is a plain Kafka connection whose errors are returned, for use off the test goroutine.
type groupConn struct {
	conn net.Conn
	corr int32
}

func dialGroupConn(addr string) (*groupConn, error) {
	conn, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		return nil, err
	}
	return &groupConn{conn: conn}, nil
}

func (c *groupConn) close() { c.conn.Close() }

// do sends req at its version and reads the response (60 s at most: a JoinGroup may wait).
func (c *groupConn) do(req kmsg.Request) (kmsg.Response, error) {
	c.corr++
	b := binary.BigEndian.AppendUint32(nil, 0)
	b = binary.BigEndian.AppendUint16(b, uint16(req.Key()))
	b = binary.BigEndian.AppendUint16(b, uint16(req.GetVersion()))
	b = binary.BigEndian.AppendUint32(b, uint32(c.corr))
	b = binary.BigEndian.AppendUint16(b, uint16(len("raw-group")))
	b = append(b, "raw-group"...)
	if req.IsFlexible() {
		b = append(b, 0)
	}
	b = req.AppendTo(b)
	binary.BigEndian.PutUint32(b, uint32(len(b)-4))
	_ = c.conn.SetDeadline(time.Now().Add(60 * time.Second))
	if _, err := c.conn.Write(b); err != nil {
		return nil, err
	}
	var size [4]byte
	if _, err := io.ReadFull(c.conn, size[:]); err != nil {
		return nil, err
	}
	body := make([]byte, binary.BigEndian.Uint32(size[:]))
	if _, err := io.ReadFull(c.conn, body); err != nil {
		return nil, err
	}
	if len(body) < 4 || int32(binary.BigEndian.Uint32(body)) != c.corr {
		return nil, fmt.Errorf("response for another correlation id (%d bytes)", len(body))
	}
	body = body[4:]
	resp := req.ResponseKind()
	resp.SetVersion(req.GetVersion())
	if resp.IsFlexible() {
		if len(body) == 0 || body[0] != 0 {
			return nil, errors.New("flexible response header without an empty tag section")
		}
		body = body[1:]
	}
	if err := resp.ReadFrom(body); err != nil {
		return nil, fmt.Errorf("%s v%d response: %w", kmsg.NameForKey(req.Key()), req.GetVersion(), err)
	}
	return resp, nil
}

// offsetCommitReq commits offset for every partition of topic.
func offsetCommitReq(version int16, group string, generation int32, member string, instance *string, topic string, offset int64) *kmsg.OffsetCommitRequest {
	req := kmsg.NewPtrOffsetCommitRequest()
	req.SetVersion(version)
	req.Group, req.Generation, req.MemberID, req.InstanceID = group, generation, member, instance
	rt := kmsg.NewOffsetCommitRequestTopic()
	rt.Topic = topic
	for p := range int32(groupPartitions) {
		rp := kmsg.NewOffsetCommitRequestTopicPartition()
		rp.Partition, rp.Offset, rp.LeaderEpoch = p, offset, -1
		rt.Partitions = append(rt.Partitions, rp)
	}
	req.Topics = []kmsg.OffsetCommitRequestTopic{rt}
	return req
}

// commitCode is the one error code of a commit response's partitions (-1 when they differ or
// there are none).
func commitCode(resp *kmsg.OffsetCommitResponse) int16 {
	code, n := int16(-1), 0
	for _, rt := range resp.Topics {
		for _, rp := range rt.Partitions {
			if n > 0 && rp.ErrorCode != code {
				return -1
			}
			code = rp.ErrorCode
			n++
		}
	}
	return code
}

// rawMember is a group member driven request by request.
type rawMember struct {
	conn       *groupConn
	group      string
	instance   *string
	id         string
	generation int32
	leader     string
	members    []kmsg.JoinGroupResponseMember
}

// join sends JoinGroup v9 (and again with the id a MEMBER_ID_REQUIRED hands out) and returns
// the final answer's error code.
func (m *rawMember) join(topic string) (int16, error) {
	for range 3 {
		req := kmsg.NewPtrJoinGroupRequest()
		req.SetVersion(9)
		req.Group, req.MemberID, req.InstanceID = m.group, m.id, m.instance
		req.SessionTimeoutMillis, req.RebalanceTimeoutMillis = 30000, 30000
		req.ProtocolType = "consumer"
		meta := kmsg.NewConsumerMemberMetadata()
		meta.Topics = []string{topic}
		proto := kmsg.NewJoinGroupRequestProtocol()
		proto.Name, proto.Metadata = "range", meta.AppendTo(nil)
		req.Protocols = []kmsg.JoinGroupRequestProtocol{proto}
		resp, err := m.conn.do(req)
		if err != nil {
			return 0, err
		}
		r := resp.(*kmsg.JoinGroupResponse)
		m.id = r.MemberID
		if r.ErrorCode == kerr.MemberIDRequired.Code {
			continue
		}
		m.generation, m.leader, m.members = r.Generation, r.LeaderID, r.Members
		return r.ErrorCode, nil
	}
	return 0, errors.New("MEMBER_ID_REQUIRED three times")
}

// sync sends SyncGroup v5; the leader assigns every partition of topic to itself.
func (m *rawMember) sync(topic string) (int16, error) {
	req := kmsg.NewPtrSyncGroupRequest()
	req.SetVersion(5)
	req.Group, req.Generation, req.MemberID, req.InstanceID = m.group, m.generation, m.id, m.instance
	req.ProtocolType, req.Protocol = kmsg.StringPtr("consumer"), kmsg.StringPtr("range")
	if m.leader == m.id {
		for i, jm := range m.members {
			a := kmsg.NewConsumerMemberAssignment()
			if i == 0 {
				at := kmsg.NewConsumerMemberAssignmentTopic()
				at.Topic = topic
				for p := range int32(groupPartitions) {
					at.Partitions = append(at.Partitions, p)
				}
				a.Topics = []kmsg.ConsumerMemberAssignmentTopic{at}
			}
			ga := kmsg.NewSyncGroupRequestGroupAssignment()
			ga.MemberID, ga.MemberAssignment = jm.MemberID, a.AppendTo(nil)
			req.GroupAssignment = append(req.GroupAssignment, ga)
		}
	}
	resp, err := m.conn.do(req)
	if err != nil {
		return 0, err
	}
	return resp.(*kmsg.SyncGroupResponse).ErrorCode, nil
}

func (m *rawMember) heartbeat() (int16, error) {
	req := kmsg.NewPtrHeartbeatRequest()
	req.SetVersion(4)
	req.Group, req.Generation, req.MemberID, req.InstanceID = m.group, m.generation, m.id, m.instance
	resp, err := m.conn.do(req)
	if err != nil {
		return 0, err
	}
	return resp.(*kmsg.HeartbeatResponse).ErrorCode, nil
}

func (m *rawMember) leave() (int16, error) {
	req := kmsg.NewPtrLeaveGroupRequest()
	req.SetVersion(5)
	req.Group = m.group
	lm := kmsg.NewLeaveGroupRequestMember()
	lm.MemberID, lm.InstanceID = m.id, m.instance
	req.Members = []kmsg.LeaveGroupRequestMember{lm}
	resp, err := m.conn.do(req)
	if err != nil {
		return 0, err
	}
	r := resp.(*kmsg.LeaveGroupResponse)
	if r.ErrorCode != 0 || len(r.Members) != 1 {
		return r.ErrorCode, nil
	}
	return r.Members[0].ErrorCode, nil
}

// TestGroupsCommitCodeByState sends OffsetCommit in each state of a group and checks Kafka's
// error code for each (clients' retry logic depends on them), with other group APIs' codes
// met on the way.
func TestGroupsCommitCodeByState(t *testing.T) {
	t.Parallel()
	b := startGroupBroker(t)
	const group, topic = "codes", "codes"
	adm, cl := newAdmin(t, b.kafkaAddr)
	createTopic(t, cl, topic, groupPartitions, nil)
	conn := func() *groupConn {
		c, err := dialGroupConn(b.kafkaAddr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(c.close)
		return c
	}
	control := conn()
	code := func(step string, version int16, generation int32, member string, instance *string, want error) {
		t.Helper()
		resp, err := control.do(offsetCommitReq(version, group, generation, member, instance, topic, 7))
		if err != nil {
			t.Fatalf("%s: %v", step, err)
		}
		got := commitCode(resp.(*kmsg.OffsetCommitResponse))
		wantCode := int16(0)
		if want != nil {
			wantCode = want.(*kerr.Error).Code
		}
		if got != wantCode {
			t.Fatalf("%s: OffsetCommit v%d (generation %d, member %q) answered %v (%d), want %v", step, version, generation, member, kerr.ErrorForCode(got), got, want)
		}
	}
	state := func() string {
		g := describeGroupKafka(adm, group)
		if g == nil {
			return "?"
		}
		return g.State
	}
	must := func(step string, got int16, err error, want error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", step, err)
		}
		if kerr.ErrorForCode(got) != want {
			t.Fatalf("%s: answered %v, want %v", step, kerr.ErrorForCode(got), want)
		}
	}

	// An unknown group: no offsets, no error; a simple commit (generation -1) creates it Empty.
	fetchResp, err := control.do(func() kmsg.Request {
		req := kmsg.NewPtrOffsetFetchRequest()
		req.SetVersion(5)
		req.Group = group
		rt := kmsg.NewOffsetFetchRequestTopic()
		rt.Topic, rt.Partitions = topic, []int32{0}
		req.Topics = []kmsg.OffsetFetchRequestTopic{rt}
		return req
	}())
	if err != nil {
		t.Fatal(err)
	}
	if f := fetchResp.(*kmsg.OffsetFetchResponse); f.ErrorCode != 0 || len(f.Topics) != 1 || len(f.Topics[0].Partitions) != 1 ||
		f.Topics[0].Partitions[0].Offset != -1 || f.Topics[0].Partitions[0].ErrorCode != 0 {
		t.Fatalf("OffsetFetch of an unknown group: %+v", f)
	}
	code("unknown group, simple commit v8", 8, -1, "", nil, nil)
	code("Empty, simple commit v0", 0, -1, "", nil, nil)
	code("Empty, a member commit", 8, 1, "ghost", nil, kerr.UnknownMemberID)
	if got := state(); got != "Empty" {
		t.Fatalf("state %s after simple commits, want Empty", got)
	}

	// One static member: joined, not yet synced: CompletingRebalance.
	instance := kmsg.StringPtr("codes-1")
	m1 := &rawMember{conn: conn(), group: group, instance: instance}
	c, err := m1.join(topic)
	must("m1 join", c, err, nil)
	if got := state(); got != "CompletingRebalance" {
		t.Fatalf("state %s after the join, want CompletingRebalance", got)
	}
	code("CompletingRebalance, current generation", 8, m1.generation, m1.id, instance, kerr.RebalanceInProgress)
	c, err = m1.sync(topic)
	must("m1 sync", c, err, nil)
	if got := state(); got != "Stable" {
		t.Fatalf("state %s after the sync, want Stable", got)
	}
	code("Stable, current generation", 8, m1.generation, m1.id, instance, nil)
	code("Stable, an older generation", 8, m1.generation-1, m1.id, instance, kerr.IllegalGeneration)
	code("Stable, a newer generation", 8, m1.generation+1, m1.id, instance, kerr.IllegalGeneration)
	code("Stable, unknown member", 8, m1.generation, "ghost", nil, kerr.UnknownMemberID)
	code("Stable, the instance with another member id", 8, m1.generation, "ghost", instance, kerr.FencedInstanceID)
	code("Stable, simple commit v8", 8, -1, "", nil, kerr.UnknownMemberID)
	code("Stable, simple commit v0", 0, -1, "", nil, kerr.UnknownMemberID)
	code("Stable, v2 with the generation", 2, m1.generation, m1.id, nil, nil)

	// DeleteGroups and OffsetDelete of a group with a member subscribed to the topic.
	delResp, err := control.do(func() kmsg.Request {
		req := kmsg.NewPtrDeleteGroupsRequest()
		req.SetVersion(2)
		req.Groups = []string{group}
		return req
	}())
	if err != nil {
		t.Fatal(err)
	}
	if d := delResp.(*kmsg.DeleteGroupsResponse); len(d.Groups) != 1 || d.Groups[0].ErrorCode != kerr.NonEmptyGroup.Code {
		t.Fatalf("DeleteGroups of a group with a member: %+v", d.Groups)
	}
	odResp, err := control.do(func() kmsg.Request {
		req := kmsg.NewPtrOffsetDeleteRequest()
		req.Group = group
		rt := kmsg.NewOffsetDeleteRequestTopic()
		rt.Topic = topic
		rp := kmsg.NewOffsetDeleteRequestTopicPartition()
		rt.Partitions = []kmsg.OffsetDeleteRequestTopicPartition{rp}
		req.Topics = []kmsg.OffsetDeleteRequestTopic{rt}
		return req
	}())
	if err != nil {
		t.Fatal(err)
	}
	if od := odResp.(*kmsg.OffsetDeleteResponse); od.ErrorCode != 0 || len(od.Topics) != 1 || len(od.Topics[0].Partitions) != 1 ||
		od.Topics[0].Partitions[0].ErrorCode != kerr.GroupSubscribedToTopic.Code {
		t.Fatalf("OffsetDelete of a subscribed topic: %+v", od)
	}

	// A second member joins: PreparingRebalance until m1 rejoins. A commit of the current
	// generation is still accepted (clients commit in their revoke callback).
	m2 := &rawMember{conn: conn(), group: group}
	joined := make(chan error, 1)
	var m2code int16
	go func() {
		var err error
		m2code, err = m2.join(topic)
		joined <- err
	}()
	groupPoll(t, groupStep, func() string { return "the group in PreparingRebalance, it is " + state() }, func() bool { return state() == "PreparingRebalance" })
	code("PreparingRebalance, current generation", 8, m1.generation, m1.id, instance, nil)
	c, err = m1.heartbeat()
	must("m1 heartbeat while PreparingRebalance", c, err, kerr.RebalanceInProgress)
	c, err = m1.join(topic)
	must("m1 rejoin", c, err, nil)
	if err := <-joined; err != nil || m2code != 0 {
		t.Fatalf("m2 join: %v, code %v", err, kerr.ErrorForCode(m2code))
	}
	if m2.generation != m1.generation || m1.leader != m2.leader {
		t.Fatalf("the join phase gave m1 generation %d leader %s, m2 generation %d leader %s", m1.generation, m1.leader, m2.generation, m2.leader)
	}
	code("CompletingRebalance, m2 in the new generation", 8, m2.generation, m2.id, nil, kerr.RebalanceInProgress)
	leader, follower := m1, m2
	if m2.leader == m2.id {
		leader, follower = m2, m1
	}
	synced := make(chan error, 1)
	go func() {
		c, err := follower.sync(topic)
		if err == nil && c != 0 {
			err = kerr.ErrorForCode(c)
		}
		synced <- err
	}()
	c, err = leader.sync(topic)
	must("leader sync", c, err, nil)
	if err := <-synced; err != nil {
		t.Fatalf("follower sync: %v", err)
	}
	code("Stable, the previous generation", 8, m2.generation-1, m1.id, instance, kerr.IllegalGeneration)
	code("Stable, m2 in the new generation", 8, m2.generation, m2.id, nil, nil)

	// Both leave: Empty. A member commit is refused, a simple one accepted; then the group can
	// be deleted, and its offsets go with it.
	c, err = m1.leave()
	must("m1 leave", c, err, nil)
	c, err = m2.leave()
	must("m2 leave", c, err, nil)
	if got := state(); got != "Empty" {
		t.Fatalf("state %s after both left, want Empty", got)
	}
	code("Empty, a former member", 8, m2.generation, m2.id, nil, kerr.UnknownMemberID)
	code("Empty, simple commit", 8, -1, "", nil, nil)
	dr, err := adm.DeleteGroups(ctx(t, 30*time.Second), group)
	if err != nil || dr[group].Err != nil {
		t.Fatalf("DeleteGroups of an Empty group: %v %+v", err, dr)
	}
	if got := fetchCommitted(t, adm, group, topic); got != [groupPartitions]int64{-1, -1, -1, -1, -1, -1} {
		t.Fatalf("offsets after DeleteGroups: %v", got)
	}
}
