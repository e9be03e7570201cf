package groups

import (
	"bytes"
	"time"
)

// member is one member of a classic group.
type member struct {
	id         string
	instanceID *string // static membership (KIP-345); nil for a dynamic member
	clientID   string
	clientHost string

	rebalanceTimeout time.Duration
	sessionTimeout   time.Duration
	protocolType     string
	protocols        []Protocol // in the member's order of preference, names unique

	// assignment is what the leader gave the member in the current generation.
	assignment []byte

	// joinReply is set while the member waits for a JoinGroup response (the join phase of a
	// rebalance); joinVersion is that request's version. syncReply is set while it waits for a
	// SyncGroup response (the leader's assignment, then its write). Whoever answers one clears
	// it, so every request is answered exactly once: removing or fencing a member answers both.
	joinReply   func(JoinResponse)
	joinVersion int16
	syncReply   func(SyncResponse)

	// isNew is set from a member's first join until its first JoinGroup response; a new member's
	// session is Config.NewMemberJoinTimeout, and waiting for the join phase does not keep it
	// alive (it may have gone away while its request was parked).
	isNew bool

	session *timer
}

func (m *member) awaitingJoin() bool { return m.joinReply != nil }
func (m *member) awaitingSync() bool { return m.syncReply != nil }

// hasSatisfiedHeartbeat: a member parked in a join or sync request is alive by definition (its
// request is the heartbeat), except a new member, which may have disconnected.
func (m *member) hasSatisfiedHeartbeat() bool {
	if m.isNew {
		return false
	}
	return m.awaitingJoin() || m.awaitingSync()
}

// metadata is the member's metadata for protocol, nil if it does not support it.
func (m *member) metadata(protocol string) []byte {
	for _, p := range m.protocols {
		if p.Name == protocol {
			return p.Metadata
		}
	}
	return nil
}

// matches reports whether protocols are exactly the member's (names, order and metadata).
func (m *member) matches(protocols []Protocol) bool {
	if len(protocols) != len(m.protocols) {
		return false
	}
	for i := range protocols {
		if protocols[i].Name != m.protocols[i].Name || !bytes.Equal(protocols[i].Metadata, m.protocols[i].Metadata) {
			return false
		}
	}
	return true
}

// vote is the member's most preferred protocol among candidates, "" if none.
func (m *member) vote(candidates map[string]bool) string {
	for _, p := range m.protocols {
		if candidates[p.Name] {
			return p.Name
		}
	}
	return ""
}

// pendingMember is a member id handed out with MEMBER_ID_REQUIRED whose owner has not rejoined
// with it yet. It expires after the session timeout of the join that created it.
type pendingMember struct {
	id      string
	session *timer
}

// uniqueProtocols drops repeated protocol names, keeping the first of each.
func uniqueProtocols(ps []Protocol) []Protocol {
	if len(ps) < 2 {
		return ps
	}
	seen := make(map[string]bool, len(ps))
	out := ps[:0:0]
	for _, p := range ps {
		if !seen[p.Name] {
			seen[p.Name] = true
			out = append(out, p)
		}
	}
	return out
}
