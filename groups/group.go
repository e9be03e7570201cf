package groups

import (
	"slices"
	"strings"
	"time"

	"github.com/thorstream/thorstream/codec/errcode"
)

// groupState is a classic group's state.
//
//	Empty ──join──▶ PreparingRebalance ──all joined / rebalance timeout──▶ CompletingRebalance
//	  ▲                 ▲       │ (no member left)                            │ leader's SyncGroup
//	  └─────────────────┼───────┘                                             ▼ durable
//	                    └────── join, leave, session expiry, pending-sync ── Stable
//
// and Dead from any state while the group is being deleted (a request meanwhile gets
// COORDINATOR_NOT_AVAILABLE and retries).
type groupState int8

const (
	stateEmpty groupState = iota
	statePreparingRebalance
	stateCompletingRebalance
	stateStable
	stateDead
)

func (s groupState) String() string {
	switch s {
	case stateEmpty:
		return "Empty"
	case statePreparingRebalance:
		return "PreparingRebalance"
	case stateCompletingRebalance:
		return "CompletingRebalance"
	case stateStable:
		return "Stable"
	case stateDead:
		return "Dead"
	}
	return "Unknown"
}

// consumerProtocolType is the protocol type of Kafka consumers, whose subscriptions the
// coordinator can read (ConsumerProtocolSubscription).
const consumerProtocolType = "consumer"

// group is one classic group's state. Members are kept in join order, which makes leader
// election and response order deterministic.
type group struct {
	id            string
	state         groupState
	previousState groupState
	// stateTime is when the group entered its state (the record's current-state timestamp);
	// zero when unknown (loaded from a value without one).
	stateTime    time.Time
	generation   int32
	protocolType string // "" for a simple group (offsets only)
	protocol     string // the selected protocol, "" when none
	leader       string // "" when none

	members map[string]*member
	order   []string          // member ids in join order
	static  map[string]string // instance id -> member id
	// supported counts, per protocol name, the members supporting it.
	supported map[string]int
	// awaitingJoin counts the members with a parked JoinGroup.
	awaitingJoin int

	pending      map[string]*pendingMember
	pendingOrder []string // pending ids, oldest first; may hold ids no longer pending

	// pendingSync holds the members of this generation that have not sent SyncGroup yet.
	pendingSync map[string]bool

	// newMemberAdded is set when a member joins during the initial rebalance delay, which then
	// extends it (Kafka's InitialDelayedJoin).
	newMemberAdded   bool
	initialDelay     time.Duration
	initialRemaining time.Duration

	joinTimer *timer // initial delay or rebalance timeout
	syncTimer *timer // pending-sync timeout

	// subscribed is the union of the members' subscribed topics when subscribedKnown (the
	// consumer protocol type with readable subscriptions); computed at each new generation.
	subscribed      map[string]bool
	subscribedKnown bool

	// hasRecord is set once a metadata record of the group was written or loaded: deleting the
	// group then needs a tombstone.
	hasRecord bool
}

func newGroup(id string) *group {
	return &group{
		id:          id,
		members:     map[string]*member{},
		static:      map[string]string{},
		supported:   map[string]int{},
		pending:     map[string]*pendingMember{},
		pendingSync: map[string]bool{},
	}
}

func (g *group) is(s groupState) bool { return g.state == s }

func (g *group) transition(now time.Time, to groupState) {
	g.previousState, g.state, g.stateTime = g.state, to, now
}

// canRebalance: PreparingRebalance may be entered from Empty, CompletingRebalance and Stable.
func (g *group) canRebalance() bool {
	return g.state == stateEmpty || g.state == stateCompletingRebalance || g.state == stateStable
}

func (g *group) isLeader(id string) bool { return id != "" && g.leader == id }

// hasAllMembersJoined: every member has a parked JoinGroup and no handed-out id is still
// expected.
func (g *group) hasAllMembersJoined() bool {
	return len(g.members) == g.awaitingJoin && len(g.pending) == 0
}

// rebalanceTimeout is the largest of the members' rebalance timeouts.
func (g *group) rebalanceTimeout() time.Duration {
	var d time.Duration
	for _, m := range g.members {
		d = max(d, m.rebalanceTimeout)
	}
	return d
}

// validateMember is Kafka's check of a member's identity: a known instance id must map to the
// member id (else the caller is a fenced zombie), and the member id must be a member.
func (g *group) validateMember(memberID string, instanceID *string) errcode.Code {
	if instanceID != nil {
		existing, ok := g.static[*instanceID]
		if !ok {
			return errcode.UnknownMemberID
		}
		if existing != memberID {
			return errcode.FencedInstanceID
		}
	}
	if _, ok := g.members[memberID]; !ok {
		return errcode.UnknownMemberID
	}
	return errcode.None
}

// supportsProtocols reports whether a member with this protocol type and these protocols may
// join: any non-empty type and list while Empty, else the group's type and at least one protocol
// every member supports.
func (g *group) supportsProtocols(protocolType string, protocols []Protocol) bool {
	if g.state == stateEmpty {
		return protocolType != "" && len(protocols) > 0
	}
	if protocolType != g.protocolType {
		return false
	}
	for _, p := range protocols {
		if g.supported[p.Name] == len(g.members) {
			return true
		}
	}
	return false
}

// selectProtocol lets every member vote for its most preferred protocol among those all members
// support; most votes win, a tie goes to the first member's preference.
func (g *group) selectProtocol() string {
	candidates := map[string]bool{}
	for name, n := range g.supported {
		if n == len(g.members) && n > 0 {
			candidates[name] = true
		}
	}
	votes := map[string]int{}
	for _, id := range g.order {
		if v := g.members[id].vote(candidates); v != "" {
			votes[v]++
		}
	}
	best, bestVotes := "", 0
	if len(g.order) > 0 {
		for _, p := range g.members[g.order[0]].protocols {
			if n := votes[p.Name]; n > bestVotes {
				best, bestVotes = p.Name, n
			}
		}
	}
	return best
}

func (g *group) countProtocols(m *member, delta int) {
	for _, p := range m.protocols {
		if n := g.supported[p.Name] + delta; n > 0 {
			g.supported[p.Name] = n
		} else {
			delete(g.supported, p.Name)
		}
	}
}

// add makes m a member; joinReply (may be nil) is its parked JoinGroup. The caller has dropped m's
// id from the pending ids.
func (g *group) add(m *member, joinReply func(JoinResponse), joinVersion int16) {
	if m.instanceID != nil {
		g.static[*m.instanceID] = m.id
	}
	if len(g.members) == 0 {
		g.protocolType = m.protocolType
	}
	if g.leader == "" {
		g.leader = m.id
	}
	g.members[m.id] = m
	g.order = append(g.order, m.id)
	g.countProtocols(m, 1)
	m.joinReply, m.joinVersion = joinReply, joinVersion
	if joinReply != nil {
		g.awaitingJoin++
	}
}

// remove drops a member, answering any request it has parked with UNKNOWN_MEMBER_ID (it may still
// be alive and will rejoin). The caller cancels its session timer.
func (g *group) remove(id string) *member {
	m, ok := g.members[id]
	if !ok {
		return nil
	}
	g.answerJoin(m, JoinResponse{ErrorCode: errcode.UnknownMemberID, Generation: -1})
	g.answerSync(m, SyncResponse{ErrorCode: errcode.UnknownMemberID})
	g.countProtocols(m, -1)
	delete(g.members, id)
	if i := slices.Index(g.order, id); i >= 0 {
		g.order = slices.Delete(g.order, i, i+1)
	}
	if m.instanceID != nil && g.static[*m.instanceID] == id {
		delete(g.static, *m.instanceID)
	}
	if g.leader == id {
		g.leader = ""
		if len(g.order) > 0 {
			g.leader = g.order[0]
		}
	}
	delete(g.pendingSync, id)
	return m
}

// answerJoin answers m's parked JoinGroup, if any.
func (g *group) answerJoin(m *member, r JoinResponse) bool {
	if m.joinReply == nil {
		return false
	}
	reply := m.joinReply
	m.joinReply = nil
	g.awaitingJoin--
	reply(r)
	return true
}

// answerSync answers m's parked SyncGroup, if any.
func (g *group) answerSync(m *member, r SyncResponse) bool {
	if m.syncReply == nil {
		return false
	}
	reply := m.syncReply
	m.syncReply = nil
	reply(r)
	return true
}

// updateMember gives m new protocols and timeouts and parks joinReply (may be nil) as its
// JoinGroup. A JoinGroup it had parked already (a client that gave up on it and sent another) is answered
// REBALANCE_IN_PROGRESS: nobody reads that answer, but every request gets exactly one.
func (g *group) updateMember(m *member, protocols []Protocol, rebalanceTimeout, sessionTimeout time.Duration, joinReply func(JoinResponse), joinVersion int16) {
	g.countProtocols(m, -1)
	m.protocols = protocols
	g.countProtocols(m, 1)
	m.rebalanceTimeout, m.sessionTimeout = rebalanceTimeout, sessionTimeout
	g.answerJoin(m, JoinResponse{ErrorCode: errcode.RebalanceInProgress, Generation: -1, MemberID: m.id})
	if joinReply != nil {
		m.joinReply, m.joinVersion = joinReply, joinVersion
		g.awaitingJoin++
	}
}

// maybeElectNewJoinedLeader keeps the leader if it rejoined, else promotes a member that did.
// False when no member rejoined (or there is no leader).
func (g *group) maybeElectNewJoinedLeader() bool {
	if g.leader == "" {
		return false
	}
	if g.members[g.leader].awaitingJoin() {
		return true
	}
	for _, id := range g.order {
		if g.members[id].awaitingJoin() {
			g.leader = id
			return true
		}
	}
	return false
}

// replaceStaticMember gives a static member a new member id, keeping everything else. The old
// id's parked requests are answered FENCED_INSTANCE_ID (KAFKA-8500: the old process must not
// keep a join or sync going in the new one's name). The caller cancels the old member's session
// timer and arms the new one's.
func (g *group) replaceStaticMember(instanceID, oldID, newID string) (old, replacement *member) {
	old = g.members[oldID]
	g.answerJoin(old, JoinResponse{ErrorCode: errcode.FencedInstanceID, Generation: -1, MemberID: oldID})
	g.answerSync(old, SyncResponse{ErrorCode: errcode.FencedInstanceID})
	replacement = &member{
		id:               newID,
		instanceID:       old.instanceID,
		clientID:         old.clientID,
		clientHost:       old.clientHost,
		rebalanceTimeout: old.rebalanceTimeout,
		sessionTimeout:   old.sessionTimeout,
		protocolType:     old.protocolType,
		protocols:        old.protocols,
		assignment:       old.assignment,
	}
	delete(g.members, oldID)
	g.members[newID] = replacement
	if i := slices.Index(g.order, oldID); i >= 0 {
		g.order[i] = newID
	}
	if g.leader == oldID {
		g.leader = newID
	}
	if g.pendingSync[oldID] {
		delete(g.pendingSync, oldID)
		g.pendingSync[newID] = true
	}
	g.static[instanceID] = newID
	return old, replacement
}

// addPending records a handed-out member id.
func (g *group) addPending(p *pendingMember) {
	g.pending[p.id] = p
	g.pendingOrder = append(g.pendingOrder, p.id)
}

// removePending forgets a handed-out id; the caller cancels its timer.
func (g *group) removePending(id string) *pendingMember {
	p, ok := g.pending[id]
	if !ok {
		return nil
	}
	delete(g.pending, id)
	// pendingOrder is cleaned lazily; compact it when mostly stale so it stays bounded.
	if len(g.pendingOrder) > 2*len(g.pending)+16 {
		live := g.pendingOrder[:0]
		for _, id := range g.pendingOrder {
			if _, ok := g.pending[id]; ok {
				live = append(live, id)
			}
		}
		clear(g.pendingOrder[len(live):])
		g.pendingOrder = live
	}
	return p
}

// oldestPending is the longest-waiting handed-out id, nil if none.
func (g *group) oldestPending() *pendingMember {
	for len(g.pendingOrder) > 0 {
		if p, ok := g.pending[g.pendingOrder[0]]; ok {
			return p
		}
		g.pendingOrder[0] = ""
		g.pendingOrder = g.pendingOrder[1:]
	}
	return nil
}

// computeSubscriptions refreshes the subscribed topics from the members' metadata for the
// selected protocol: known only for the consumer protocol type with readable subscriptions.
func (g *group) computeSubscriptions() {
	g.subscribed, g.subscribedKnown = nil, false
	if g.protocolType != consumerProtocolType {
		return
	}
	if len(g.members) == 0 {
		g.subscribed, g.subscribedKnown = map[string]bool{}, true
		return
	}
	if g.protocol == "" {
		return
	}
	topics := map[string]bool{}
	for _, id := range g.order {
		ts, err := subscribedTopics(g.members[id].metadata(g.protocol))
		if err != nil {
			return
		}
		for _, t := range ts {
			topics[t] = true
		}
	}
	g.subscribed, g.subscribedKnown = topics, true
}

// isSubscribedTo reports whether the group consumes topic. When the subscriptions are unknown, a
// consumer group is assumed subscribed (its offsets are not deleted under it) and other groups
// are not.
func (g *group) isSubscribedTo(topic string) bool {
	if g.subscribedKnown {
		return g.subscribed[topic]
	}
	return g.protocolType == consumerProtocolType
}

// joinResponse is the current generation as JoinGroup answers it, with the members (and their
// metadata for the selected protocol) for the leader.
func (g *group) joinResponse(memberID string, withMembers bool) JoinResponse {
	r := JoinResponse{Generation: g.generation, Leader: g.leader, MemberID: memberID}
	if g.protocolType != "" {
		pt := g.protocolType
		r.ProtocolType = &pt
	}
	if g.protocol != "" {
		p := g.protocol
		r.ProtocolName = &p
	}
	if withMembers {
		r.Members = make([]JoinMember, 0, len(g.order))
		for _, id := range g.order {
			m := g.members[id]
			r.Members = append(r.Members, JoinMember{MemberID: m.id, InstanceID: m.instanceID, Metadata: m.metadata(g.protocol)})
		}
	}
	return r
}

// value is the group's metadata record with the members' current assignments.
func (g *group) value() GroupValue {
	v := GroupValue{
		ProtocolType:          g.protocolType,
		Generation:            g.generation,
		CurrentStateTimestamp: -1,
		Members:               make([]MemberValue, 0, len(g.order)),
	}
	if !g.stateTime.IsZero() {
		v.CurrentStateTimestamp = g.stateTime.UnixMilli()
	}
	if g.protocol != "" {
		p := g.protocol
		v.Protocol = &p
	}
	if g.leader != "" {
		l := g.leader
		v.Leader = &l
	}
	for _, id := range g.order {
		m := g.members[id]
		v.Members = append(v.Members, MemberValue{
			MemberID:           m.id,
			InstanceID:         m.instanceID,
			ClientID:           m.clientID,
			ClientHost:         m.clientHost,
			RebalanceTimeoutMs: durationMs(m.rebalanceTimeout),
			SessionTimeoutMs:   durationMs(m.sessionTimeout),
			Subscription:       m.metadata(g.protocol),
			Assignment:         m.assignment,
		})
	}
	return v
}

// durationMs is d in whole milliseconds, clamped to int32.
func durationMs(d time.Duration) int32 {
	ms := d.Milliseconds()
	if ms > 1<<31-1 {
		return 1<<31 - 1
	}
	if ms < 0 {
		return 0
	}
	return int32(ms)
}

// stateMatches reports whether the group's state is one of states (case-insensitive); an empty
// filter matches every state.
func (g *group) stateMatches(states []string) bool {
	if len(states) == 0 {
		return true
	}
	for _, s := range states {
		if strings.EqualFold(s, g.state.String()) {
			return true
		}
	}
	return false
}
