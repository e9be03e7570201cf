package groups

import (
	"errors"
	"math/rand/v2"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/thorstream/thorstream/codec/errcode"
)

// Random sequences of requests, ticks and write completions never panic and keep the shard's
// invariants; at the end, once every write completes and time runs on, every request has been
// answered exactly once. TestShardRandomOps runs a fixed set of seeds; FuzzShard explores more
// (go test -fuzz FuzzShard ./groups). GROUPS_RANDOM_SEEDS runs more seeds in the test.

type opClient struct {
	group      string
	instance   *string
	memberID   string
	generation int32
	protocols  int // index into opProtocols
	leader     bool
	members    []string // from the last leader JoinGroup response
}

var opProtocols = [][]string{{"range"}, {"range", "roundrobin"}, {"roundrobin"}, {"cooperative-sticky", "range"}}

type opDriver struct {
	t       testing.TB
	h       *shardHarness
	clients []*opClient
	// highest generation seen per live group object
	generations map[*group]int32
	joins       []*reply[JoinResponse]
	syncs       []*reply[SyncResponse]
	others      []interface{ done() bool }
	syncReqs    map[*reply[SyncResponse]]SyncRequest
}

func newOpDriver(t testing.TB) *opDriver {
	cfg := testConfig()
	cfg.MaxGroupSize = 5
	cfg.MaxPendingMembers = 3
	cfg.OffsetsRetention = 2 * time.Minute
	cfg.OffsetsRetentionCheckInterval = 30 * time.Second
	cfg.NewMemberJoinTimeout = 40 * time.Second
	d := &opDriver{t: t, h: newShardHarness(t, cfg), generations: map[*group]int32{}, syncReqs: map[*reply[SyncResponse]]SyncRequest{}}
	for i := range 8 {
		c := &opClient{group: "a", protocols: i % len(opProtocols)}
		if i >= 4 {
			c.group = "b"
		}
		if i%3 == 0 {
			c.instance = strp("inst" + strconv.Itoa(i))
		}
		d.clients = append(d.clients, c)
	}
	return d
}

func (d *opDriver) joinRequest(c *opClient, version int16, protocols int) JoinRequest {
	r := consumerJoin(c.group, c.memberID, opProtocols[protocols]...)
	r.Version = version
	r.InstanceID = c.instance
	r.SessionTimeout = 10 * time.Second
	r.RebalanceTimeout = 20 * time.Second
	return r
}

// step runs one operation chosen by op and arg.
func (d *opDriver) step(op, arg byte) {
	h := d.h
	c := d.clients[int(arg)%len(d.clients)]
	switch op % 14 {
	case 0, 1: // join
		versions := []int16{3, 4, 5, 9}
		protocols := c.protocols
		if arg&0x80 != 0 {
			protocols = int(arg>>4) % len(opProtocols)
			c.protocols = protocols
		}
		r := d.joinRequest(c, versions[int(arg>>3)%len(versions)], protocols)
		j := newReply[JoinResponse](d.t)
		d.joins = append(d.joins, j)
		h.s.Join(h.now, r, func(resp JoinResponse) {
			j.fn(resp)
			switch resp.ErrorCode {
			case errcode.None:
				c.memberID, c.generation, c.leader = resp.MemberID, resp.Generation, resp.Leader == resp.MemberID
				if c.leader {
					c.members = nil
					for _, m := range resp.Members {
						c.members = append(c.members, m.MemberID)
					}
				}
			case errcode.MemberIDRequired:
				c.memberID = resp.MemberID
			case errcode.UnknownMemberID, errcode.FencedInstanceID:
				c.memberID = ""
			}
		})
	case 2, 3: // sync
		r := SyncRequest{Version: 5, Group: c.group, Generation: c.generation, MemberID: c.memberID, InstanceID: c.instance}
		if c.leader {
			for i, id := range c.members {
				r.Assignments = append(r.Assignments, SyncAssignment{MemberID: id, Assignment: []byte{byte(c.generation), byte(i)}})
			}
		}
		s := newReply[SyncResponse](d.t)
		d.syncs = append(d.syncs, s)
		d.syncReqs[s] = r
		h.s.Sync(h.now, r, func(resp SyncResponse) {
			s.fn(resp)
			if resp.ErrorCode == errcode.None {
				// Assignments go only to members of a Stable group in the generation they joined.
				g := h.s.groups[r.Group]
				if g == nil || !g.is(stateStable) || g.generation != r.Generation || g.members[r.MemberID] == nil {
					d.t.Errorf("assignment for %s in generation %d, group %+v", r.MemberID, r.Generation, g)
				}
			}
		})
	case 4: // heartbeat
		gen := c.generation
		if arg&1 != 0 {
			gen--
		}
		hb := newReply[errcode.Code](d.t)
		d.others = append(d.others, hb)
		h.s.Heartbeat(h.now, HeartbeatRequest{Version: 4, Group: c.group, MemberID: c.memberID, InstanceID: c.instance, Generation: gen}, hb.fn)
	case 5: // leave, or a restart of the client's process (it forgets its member id)
		if arg&2 != 0 {
			c.memberID, c.leader = "", false
			break
		}
		l := newReply[LeaveResponse](d.t)
		d.others = append(d.others, l)
		members := []LeaveMember{{MemberID: c.memberID, InstanceID: c.instance}}
		if arg&1 != 0 && c.instance != nil {
			members[0].MemberID = ""
		}
		h.s.Leave(h.now, LeaveRequest{Version: 3, Group: c.group, Members: members}, l.fn)
		if arg&1 != 0 {
			c.memberID = ""
		}
	case 6: // commit
		gen := c.generation
		if arg&1 != 0 {
			gen = -1
		}
		cr := newReply[CommitResponse](d.t)
		d.others = append(d.others, cr)
		h.s.CommitOffsets(h.now, CommitRequest{Version: 8, Group: c.group, Generation: gen, MemberID: c.memberID, InstanceID: c.instance,
			Topics: oneOffset([]string{"t", "u"}[arg>>7], int32(arg>>5)&3, int64(arg))}, cr.fn)
	case 7: // fetch, describe, list
		h.fetch(FetchRequest{Group: c.group})
		h.s.Describe(h.now, c.group)
		h.s.List(h.now, []string{"stable", "Empty"})
	case 8, 9: // time
		h.advance(time.Duration(arg%16) * time.Second)
	case 10: // a write completes
		if len(h.w.batches) > 0 {
			h.complete(nil)
		}
	case 11: // a write fails
		if len(h.w.batches) > 0 {
			h.complete(errors.New("disk"))
		}
	case 12: // deletions
		switch arg % 3 {
		case 0:
			dg := newReply[errcode.Code](d.t)
			d.others = append(d.others, dg)
			h.s.DeleteGroup(h.now, c.group, dg.fn)
		case 1:
			od := newReply[OffsetDeleteResponse](d.t)
			d.others = append(d.others, od)
			h.s.DeleteOffsets(h.now, c.group, []TopicPartition{{"u", int32(arg>>5) & 3}}, od.fn)
		case 2:
			h.s.DeleteTopic(h.now, "u")
		}
	case 13: // complete everything in order
		h.persistAll()
	}
	d.check()
}

// check verifies the shard's invariants.
func (d *opDriver) check() {
	t, s := d.t, d.h.s
	for id, g := range s.groups {
		if g.id != id {
			t.Fatalf("group %q filed under %q", g.id, id)
		}
		if prev, ok := d.generations[g]; ok && g.generation < prev {
			t.Fatalf("group %s generation went from %d to %d", id, prev, g.generation)
		}
		d.generations[g] = g.generation
		awaiting, supported := 0, map[string]int{}
		if len(g.order) != len(g.members) {
			t.Fatalf("group %s: order %v, %d members", id, g.order, len(g.members))
		}
		for _, mid := range g.order {
			m := g.members[mid]
			if m == nil || m.id != mid {
				t.Fatalf("group %s: member %q missing", id, mid)
			}
			if m.awaitingJoin() {
				awaiting++
			}
			for _, p := range m.protocols {
				supported[p.Name]++
			}
			if m.instanceID != nil && g.static[*m.instanceID] != mid {
				t.Fatalf("group %s: static map %v misses %s", id, g.static, mid)
			}
			if _, pending := g.pending[mid]; pending {
				t.Fatalf("group %s: %s is a member and pending", id, mid)
			}
			if !m.session.scheduled() {
				t.Fatalf("group %s: member %s has no session timer", id, mid)
			}
		}
		if awaiting != g.awaitingJoin {
			t.Fatalf("group %s: %d awaiting join, counted %d", id, awaiting, g.awaitingJoin)
		}
		if len(supported) != len(g.supported) {
			t.Fatalf("group %s: supported %v, counted %v", id, g.supported, supported)
		}
		for name, n := range supported {
			if g.supported[name] != n {
				t.Fatalf("group %s: supported %v, counted %v", id, g.supported, supported)
			}
		}
		for inst, mid := range g.static {
			if m := g.members[mid]; m == nil || m.instanceID == nil || *m.instanceID != inst {
				t.Fatalf("group %s: static %s -> %s is not that member", id, inst, mid)
			}
		}
		for mid := range g.pendingSync {
			if g.members[mid] == nil {
				t.Fatalf("group %s: pending sync %s is not a member", id, mid)
			}
		}
		switch {
		case len(g.members) == 0 && g.leader != "":
			t.Fatalf("group %s: leader %s without members", id, g.leader)
		case len(g.members) > 0 && g.members[g.leader] == nil:
			t.Fatalf("group %s: leader %q is not a member", id, g.leader)
		case (g.is(stateStable) || g.is(stateCompletingRebalance)) && len(g.members) == 0:
			t.Fatalf("group %s: %s without members", id, g.state)
		case g.is(stateEmpty) && len(g.members) > 0:
			t.Fatalf("group %s: Empty with members", id)
		case g.is(stateStable) && g.protocol == "":
			t.Fatalf("group %s: Stable without a protocol", id)
		}
	}
	for k, n := range s.inflight {
		if n <= 0 || s.inflightGroups[k.Group] < n {
			t.Fatalf("in-flight count of %+v: %d (group %d)", k, n, s.inflightGroups[k.Group])
		}
	}
}

// drain completes every write and lets time run until nothing is left to wait for.
func (d *opDriver) drain() {
	h := d.h
	for range 600 {
		h.persistAll()
		h.advance(time.Second)
	}
	h.persistAll()
	d.check()
	for i, j := range d.joins {
		if !j.done() {
			d.t.Fatalf("join %d never answered", i)
		}
	}
	for i, s := range d.syncs {
		if !s.done() {
			d.t.Fatalf("sync %d (%+v) never answered", i, d.syncReqs[s])
		}
	}
	for i, o := range d.others {
		if !o.done() {
			d.t.Fatalf("request %d never answered", i)
		}
	}
}

func runOps(t testing.TB, ops []byte) {
	d := newOpDriver(t)
	for i := 0; i+1 < len(ops); i += 2 {
		d.step(ops[i], ops[i+1])
	}
	d.drain()
}

func TestShardRandomOps(t *testing.T) {
	seeds := 150
	if n, err := strconv.Atoi(os.Getenv("GROUPS_RANDOM_SEEDS")); err == nil {
		seeds = n
	}
	for seed := range seeds {
		rng := rand.New(rand.NewPCG(uint64(seed), 0x9e3779b97f4a7c15))
		ops := make([]byte, 2*(100+rng.IntN(300)))
		for i := range ops {
			ops[i] = byte(rng.UintN(256))
		}
		t.Run(strconv.Itoa(seed), func(t *testing.T) { runOps(t, ops) })
		if t.Failed() {
			return
		}
	}
}

func FuzzShard(f *testing.F) {
	f.Add([]byte{0, 0, 0, 1, 8, 0, 2, 0, 2, 1, 13, 0})
	f.Add([]byte{0, 3, 0, 3, 0, 6, 8, 0, 2, 3, 2, 6, 10, 0, 5, 3, 8, 15, 8, 15})
	f.Add([]byte{6, 1, 6, 4, 12, 0, 11, 0, 12, 1, 13, 0, 8, 15, 8, 15, 8, 15})
	f.Add([]byte{0, 0x83, 0, 0x93, 0, 0x80, 8, 0, 2, 0, 3, 3, 4, 0, 11, 0, 0, 0, 2, 0, 13, 0})
	f.Fuzz(func(t *testing.T, ops []byte) {
		if len(ops) > 4000 {
			ops = ops[:4000]
		}
		runOps(t, ops)
	})
}
