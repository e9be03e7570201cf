package groups

import (
	"fmt"
	"testing"
	"time"

	"github.com/thorstream/thorstream/codec/errcode"
)

// A client that never comes back with the member id it was given must not grow the group.
func TestHostileJoinsWithoutMemberID(t *testing.T) {
	h := newShardHarness(t, testConfig())
	ids, gen := h.stableGroup("g", 1)
	var handedOut []string
	for range 10_000 {
		r := h.join(consumerJoin("g", "")).get()
		if r.ErrorCode != errcode.MemberIDRequired {
			t.Fatalf("join: %+v", r)
		}
		handedOut = append(handedOut, r.MemberID)
	}
	g := h.s.groups["g"]
	if len(g.pending) != 1000 || len(g.pendingOrder) > 2*1000+16 || len(h.s.timers.heap) > 1000+10 {
		t.Fatalf("%d pending ids, order %d, %d timers", len(g.pending), len(g.pendingOrder), len(h.s.timers.heap))
	}
	if len(g.members) != 1 || h.state("g") != "Stable" {
		t.Fatalf("the group changed: %d members, %s", len(g.members), h.state("g"))
	}
	// The oldest ids were forgotten, the newest still work.
	if r := h.join(consumerJoin("g", handedOut[0])).get(); r.ErrorCode != errcode.UnknownMemberID {
		t.Fatalf("an evicted id: %+v", r)
	}
	j := h.join(consumerJoin("g", handedOut[len(handedOut)-1]))
	if h.state("g") != "PreparingRebalance" {
		t.Fatal(h.state("g"))
	}
	// The rebalance waits for the ids still pending, until they expire (the session timeout).
	h.join(consumerJoin("g", ids[0]))
	j.pending()
	h.advance(10 * time.Second)
	if r := j.get(); r.ErrorCode != errcode.None || r.Generation != gen+1 {
		t.Fatalf("after the pending ids expired: %+v", r)
	}
	if len(g.pending) != 0 || len(g.pendingOrder) > 16 {
		t.Fatalf("%d pending, order %d", len(g.pending), len(g.pendingOrder))
	}
}

// Fresh group ids from a hostile client leave nothing behind once their handed-out ids expire.
func TestHostileFreshGroups(t *testing.T) {
	h := newShardHarness(t, testConfig())
	for i := range 10_000 {
		h.join(consumerJoin(fmt.Sprintf("g%d", i), ""))
		bad := consumerJoin(fmt.Sprintf("bad%d", i), "")
		bad.ProtocolType = ""
		h.join(bad)
	}
	if n := len(h.s.groups); n != 10_000 {
		t.Fatalf("%d groups", n)
	}
	h.advance(10 * time.Second)
	if n, timers := len(h.s.groups), len(h.s.timers.heap); n != 0 || timers != 1 {
		t.Fatalf("%d groups and %d timers left", n, timers)
	}
}

// A member heartbeating in a tight loop reschedules its one timer.
func TestHostileHeartbeats(t *testing.T) {
	h := newShardHarness(t, testConfig())
	ids, gen := h.stableGroup("g", 1)
	before := len(h.s.timers.heap)
	for range 100_000 {
		h.heartbeat("g", ids[0], gen)
	}
	if after := len(h.s.timers.heap); after != before {
		t.Fatalf("timers %d -> %d", before, after)
	}
}

// Protocol metadata and assignments are bounded per member.
func TestHostileMetadata(t *testing.T) {
	cfg := testConfig()
	cfg.MaxProtocolMetadataBytes = 64 << 10
	h := newShardHarness(t, cfg)
	r := consumerJoin("g", "")
	for i := range 10_000 {
		r.Protocols = append(r.Protocols, Protocol{Name: fmt.Sprintf("p%d", i), Metadata: make([]byte, 16)})
	}
	if got := h.join(r).get(); got.ErrorCode != errcode.InvalidRequest {
		t.Fatalf("10,000 protocols: %+v", got)
	}
	r = consumerJoin("g", "")
	r.Protocols[0].Metadata = make([]byte, 64<<10)
	if got := h.join(r).get(); got.ErrorCode != errcode.InvalidRequest {
		t.Fatalf("metadata over the bound: %+v", got)
	}
	if len(h.s.groups) != 0 {
		t.Fatal("a refused join left a group")
	}
}
