package groups

import (
	"slices"
	"time"

	"github.com/thorstream/thorstream/codec/errcode"
)

// maxUnloadRounds bounds the failed appends Unload reports: each may emit another batch (a group
// that rebalances after a failed write), which fails in turn.
const maxUnloadRounds = 1 << 16

// discardWriter takes the batches of a shard being unloaded: nothing is appended any more.
type discardWriter struct{}

func (discardWriter) Append([]Record, uint64) {}

// Unload ends the shard's coordination of its partition's groups, which another node coordinates
// from now on (Kafka's unloading of a partition on resignation): every request the shard holds
// is answered NOT_COORDINATOR, so its client looks the coordinator up again — a JoinGroup
// waiting for the rebalance, a SyncGroup waiting for the leader or for the write of the
// assignment, and every request waiting for an append that was not reported (as failed: the log
// no longer takes this node's appends). Nothing more is appended. The shard must not be used
// afterwards.
func (s *Shard) Unload(now time.Time) {
	s.writer = discardWriter{}
	s.answerParked()
	moved := errcode.New(errcode.NotLeaderOrFollower, "offsets partition %d moved to another node", s.partition)
	for range maxUnloadRounds {
		if len(s.inFlight) == 0 {
			break
		}
		// In append order, as the log would have reported them.
		tok := slices.Min(mapKeys(s.inFlight))
		s.Persisted(now, tok, moved)
	}
	// A failure above may have answered a member and parked nothing new, but answer again in
	// case one rejoined the parked state (a rebalance completing with the requests left).
	s.answerParked()
	s.out, s.outDone = nil, nil
	s.timers = timers{}
}

// answerParked answers every parked JoinGroup and SyncGroup NOT_COORDINATOR.
func (s *Shard) answerParked() {
	for _, id := range s.sortedGroupIDs() {
		g := s.groups[id]
		for _, mid := range slices.Clone(g.order) {
			m := g.members[mid]
			if m == nil {
				continue
			}
			g.answerJoin(m, JoinResponse{ErrorCode: errcode.NotCoordinator, Generation: -1, MemberID: m.id})
			g.answerSync(m, SyncResponse{ErrorCode: errcode.NotCoordinator})
		}
	}
}

func mapKeys[K comparable, V any](m map[K]V) []K {
	keys := make([]K, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	return keys
}
