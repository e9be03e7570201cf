package groups

import (
	"time"

	"github.com/thorstream/thorstream/codec/errcode"
)

// Describe handles one group of a DescribeGroups request. Members come with their assignment,
// and with their metadata for the selected protocol while Stable.
func (s *Shard) Describe(now time.Time, group string) DescribedGroup {
	d := DescribedGroup{Group: group}
	if group == "" {
		d.ErrorCode = errcode.InvalidGroupID
		return d
	}
	if !s.loaded {
		d.ErrorCode = errcode.CoordinatorLoadInProgress
		return d
	}
	g := s.groups[group]
	if g == nil || g.is(stateDead) {
		d.State, d.ErrorCode = stateDead.String(), errcode.GroupIDNotFound
		return d
	}
	d.State, d.ProtocolType = g.state.String(), g.protocolType
	stable := g.is(stateStable)
	if stable {
		d.Protocol = g.protocol
	}
	d.Members = make([]DescribedMember, 0, len(g.order))
	for _, id := range g.order {
		m := g.members[id]
		dm := DescribedMember{MemberID: m.id, InstanceID: m.instanceID, ClientID: m.clientID, ClientHost: m.clientHost, Assignment: m.assignment}
		if stable {
			dm.Metadata = m.metadata(g.protocol)
		}
		d.Members = append(d.Members, dm)
	}
	return d
}

// List handles a ListGroups request: the shard's groups in id order, those in one of states
// (case-insensitive) when states is not empty. Groups being deleted are not listed.
func (s *Shard) List(now time.Time, states []string) []ListedGroup {
	if !s.loaded {
		return nil
	}
	var out []ListedGroup
	for _, id := range s.sortedGroupIDs() {
		g := s.groups[id]
		if g.is(stateDead) || !g.stateMatches(states) {
			continue
		}
		out = append(out, ListedGroup{Group: g.id, ProtocolType: g.protocolType, State: g.state.String(), Type: "classic"})
	}
	return out
}
