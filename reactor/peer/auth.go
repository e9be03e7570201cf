package peer

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/thorstream/thorstream/codec/proto"
)

// How a connection proves which node opened it. The first Peer frame on every connection is a
// hello; the receiving core (reactor/core) hands it to Admit and, once admitted, binds the
// connection to the hello's node: it passes on that node's messages only, and closes the
// connection at anything else.
//
// With a secret (Options.Secret, the same on every node), the hello's payload is a
// proto.PeerHello: a random nonce, the sender's clock, and an HMAC-SHA256 keyed with the secret
// over helloContext, the sender's and the receiver's node ids, the nonce and the time. Admit
// checks the MAC (a constant-time compare), that the time is within helloWindow of its own
// clock, and that it has not seen the nonce before: a hello recorded on the wire cannot be
// played again, to this node or another.
//
// Without a secret, the hello is empty, and Admit takes it from any connection whose remote IP
// is one of the peers' addresses (any loopback address when a peer's is loopback). That only
// keeps strangers on other hosts out: anyone who can send from a peer's address, or from the
// loopback of a node whose peers are on loopback, passes.

// ErrHelloRefused is wrapped by every reason Admit refuses a hello.
var ErrHelloRefused = errors.New("peer: hello refused")

const (
	// helloContext opens the bytes a hello's MAC covers, naming what they are.
	helloContext = "thorstream-peer-v1"
	// helloWindow is how far a hello's time may be from the receiver's clock, either way.
	helloWindow = 5 * time.Minute
	// maxNonces bounds the nonces remembered; when more than this many hellos arrive within
	// helloWindow, the oldest nonce is forgotten and no hello older than it is taken.
	maxNonces = 10_000
)

// helloPayload is the payload of the hello to node to on a new connection, at now.
func (p *Peers) helloPayload(to int32, now time.Time) []byte {
	if len(p.secret) == 0 {
		return []byte{}
	}
	h := proto.PeerHello{UnixMillis: now.UnixMilli()}
	_, _ = rand.Read(h.Nonce[:]) // never fails (crypto/rand)
	h.MAC = helloMAC(p.secret, p.o.Self, to, h.Nonce, h.UnixMillis)
	return h.AppendTo(make([]byte, 0, proto.PeerHelloLen))
}

// helloMAC is a hello's MAC: HMAC-SHA256(secret, helloContext | from | to | nonce | unixMillis).
func helloMAC(secret []byte, from, to int32, nonce [16]byte, unixMillis int64) [32]byte {
	var msg [len(helloContext) + 4 + 4 + 16 + 8]byte
	b := append(msg[:0], helloContext...)
	b = binary.BigEndian.AppendUint32(b, uint32(from))
	b = binary.BigEndian.AppendUint32(b, uint32(to))
	b = append(b, nonce[:]...)
	b = binary.BigEndian.AppendUint64(b, uint64(unixMillis))
	m := hmac.New(sha256.New, secret)
	m.Write(b)
	var sum [32]byte
	m.Sum(sum[:0])
	return sum
}

// Admit is core.Options.PeerAdmit: it decides whether a connection whose first Peer frame is
// a hello from node from, with payload hello, from remote, is that node's. It returns nil to
// admit it, or why not (wrapping ErrHelloRefused). Safe from any goroutine; it does not block.
func (p *Peers) Admit(from int32, hello []byte, remote netip.Addr) error {
	if from == p.o.Self {
		return fmt.Errorf("%w: node %d is this node", ErrHelloRefused, from)
	}
	if p.peers[from] == nil {
		return fmt.Errorf("%w: node %d is not one of this node's peers", ErrHelloRefused, from)
	}
	if len(p.secret) == 0 {
		if len(hello) != 0 {
			return fmt.Errorf("%w: the hello proves a cluster secret and this node has none: set the same THORSTREAM_CLUSTER_SECRET on every node", ErrHelloRefused)
		}
		if !p.peerAddress(remote) {
			return fmt.Errorf("%w: %v is not the address of a peer (and the nodes have no THORSTREAM_CLUSTER_SECRET)", ErrHelloRefused, remote)
		}
		return nil
	}
	if len(hello) == 0 {
		return fmt.Errorf("%w: the hello proves no cluster secret: the sender has no THORSTREAM_CLUSTER_SECRET", ErrHelloRefused)
	}
	var h proto.PeerHello
	if err := h.ReadFrom(hello); err != nil {
		return fmt.Errorf("%w: %w", ErrHelloRefused, err)
	}
	want := helloMAC(p.secret, from, p.o.Self, h.Nonce, h.UnixMillis)
	if !hmac.Equal(want[:], h.MAC[:]) {
		return fmt.Errorf("%w: the hello's MAC does not match: the nodes' THORSTREAM_CLUSTER_SECRET differ", ErrHelloRefused)
	}
	now := p.o.Now()
	if skew := now.Sub(time.UnixMilli(h.UnixMillis)); skew > helloWindow || skew < -helloWindow {
		return fmt.Errorf("%w: the hello's time is %v from this node's clock, more than %v: the clocks differ, or the hello is played again",
			ErrHelloRefused, skew.Round(time.Second), helloWindow)
	}
	if !p.nonces.add(h.Nonce, h.UnixMillis, now) {
		return fmt.Errorf("%w: the hello's nonce was seen before: a hello played again", ErrHelloRefused)
	}
	return nil
}

// nonceSet remembers the nonces of the hellos admitted within helloWindow, up to maxNonces.
type nonceSet struct {
	mu   sync.Mutex // guards everything below; held for one lookup and insert
	seen map[[16]byte]struct{}
	// order is the nonces remembered, oldest first from head, with their hellos' times.
	order []nonceEntry
	head  int
	// floor is the latest time of a nonce forgotten while within the window: a hello no later
	// than it may be one played again, and is refused.
	floor int64
}

type nonceEntry struct {
	nonce      [16]byte
	unixMillis int64
}

// add records nonce of a hello at unixMillis; false: seen before, or possibly forgotten.
func (s *nonceSet) add(nonce [16]byte, unixMillis int64, now time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.seen == nil {
		s.seen = map[[16]byte]struct{}{}
	}
	if _, ok := s.seen[nonce]; ok || unixMillis <= s.floor {
		return false
	}
	// Forget what has left the window: a hello that old is refused by its time.
	expired := now.Add(-helloWindow).UnixMilli()
	for s.head < len(s.order) && s.order[s.head].unixMillis < expired {
		s.forget()
	}
	if len(s.order)-s.head >= maxNonces {
		s.floor = max(s.floor, s.order[s.head].unixMillis)
		s.forget()
	}
	if s.head > 0 && s.head >= len(s.order)/2 {
		n := copy(s.order, s.order[s.head:])
		s.order, s.head = s.order[:n], 0
	}
	s.seen[nonce] = struct{}{}
	s.order = append(s.order, nonceEntry{nonce, unixMillis})
	return true
}

// forget drops the oldest nonce. With mu held.
func (s *nonceSet) forget() {
	delete(s.seen, s.order[s.head].nonce)
	s.head++
}

// len is the number of nonces remembered.
func (s *nonceSet) len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.seen)
}

// peerAddress reports whether remote is one of the peers' resolved IPs, or a loopback address
// while a peer's is.
func (p *Peers) peerAddress(remote netip.Addr) bool {
	if !remote.IsValid() {
		return false
	}
	remote = remote.Unmap()
	for _, pe := range p.peers {
		ips := pe.ips.Load()
		if ips == nil {
			continue
		}
		for _, ip := range *ips {
			if ip == remote || (ip.IsLoopback() && remote.IsLoopback()) {
				return true
			}
		}
	}
	return false
}

// resolve looks up the peer's host and keeps its IPs for peerAddress; on failure it keeps the
// last ones. It runs before each dial, so a peer that moved is found again.
func (pe *peer) resolve(ctx context.Context) {
	host, _, err := net.SplitHostPort(pe.addr)
	if err != nil {
		return
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		pe.ips.Store(&[]netip.Addr{ip.Unmap()})
		return
	}
	ctx, cancel := context.WithTimeout(ctx, pe.p.o.DialTimeout)
	defer cancel()
	ips, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
	if err != nil || len(ips) == 0 {
		return
	}
	for i := range ips {
		ips[i] = ips[i].Unmap()
	}
	pe.ips.Store(&ips)
}
