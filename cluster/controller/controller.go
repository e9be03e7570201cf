// Package controller is the cluster's controller: the metadata state machine (cluster/meta) on
// a raft group of every node (cluster/raftnode), node registration, heartbeats and fencing. It
// is the cluster.MetadataStore of every node: the node whose raft peer leads is the active
// controller; every node applies the same log and holds the same metadata image.
//
// Liveness: each node registers at start (its incarnation is the index of its registration)
// and heartbeats the active controller every HeartbeatInterval. The active controller fences a
// node silent for SessionTimeout (its partitions get new leaders, or none), and unfences a fenced
// node that heartbeats again with its current incarnation. A node that has just become the
// active controller has no heartbeat history, so it fences nobody for one SessionTimeout.
package controller

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/raft/v3/raftpb"
	"go.uber.org/zap"
	"google.golang.org/protobuf/proto"

	"github.com/thorstream/thorstream/cluster/meta"
	"github.com/thorstream/thorstream/cluster/raftnode"
	"github.com/thorstream/thorstream/codec/errcode"
)

// Kinds of peer messages the controller sends and handles (reactor/peer frames).
const (
	KindRaft      uint8 = 1
	KindHeartbeat uint8 = 2
)

// Defaults of the liveness settings.
const (
	DefaultHeartbeatInterval = 500 * time.Millisecond
	DefaultSessionTimeout    = 2 * time.Second
)

// Options configures a Controller.
type Options struct {
	NodeID int32
	// Voters are the ids of every node of the cluster, this one included.
	Voters []int32
	// Dir holds the raft log, its hard state and snapshots.
	Dir string
	// Binary and Kafka are this node's advertised endpoints, registered for clients.
	Binary, Kafka meta.Endpoint
	// HeartbeatInterval and SessionTimeout: liveness (defaults above).
	HeartbeatInterval time.Duration
	SessionTimeout    time.Duration
	// Raft timing: a tick every TickInterval (default 100 ms), an election after ElectionTicks
	// (default 10) ticks without a leader; a snapshot every SnapshotEntries applied entries.
	TickInterval    time.Duration
	ElectionTicks   int
	SnapshotEntries uint64
	// Send hands a message to the peer transport without blocking; false: dropped.
	Send   func(to int32, kind uint8, payload []byte) bool
	Logger *zap.Logger
	Now    func() time.Time
}

// Controller is one node's part of the controller.
type Controller struct {
	opts   Options
	logger *zap.Logger
	node   *raftnode.Node

	img     atomic.Pointer[meta.Image]
	changed chan struct{}

	incarnation atomic.Uint64 // this node's, once registered
	leaving     atomic.Bool   // Shutdown: no more heartbeats or registrations

	mu       sync.Mutex
	lastSeen map[int32]heartbeat // heartbeats received while active controller
	pending  map[int32]bool      // a fence or unfence of the node is being proposed

	stop      chan struct{}
	wg        sync.WaitGroup
	closeOnce sync.Once
}

type heartbeat struct {
	incarnation uint64
	at          time.Time
}

// raftID is a node's raft peer id (raft ids must not be zero).
func raftID(node int32) uint64 { return uint64(node) + 1 }

func nodeOf(id uint64) int32 { return int32(id) - 1 }

// Start opens (or creates) the controller's state under Dir and starts its raft peer and its
// liveness loops. The node registers itself in the background once a controller is elected.
func Start(o Options) (*Controller, error) {
	if o.HeartbeatInterval <= 0 {
		o.HeartbeatInterval = DefaultHeartbeatInterval
	}
	if o.SessionTimeout <= 0 {
		o.SessionTimeout = DefaultSessionTimeout
	}
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Send == nil {
		return nil, errors.New("controller: no peer transport")
	}
	c := &Controller{
		opts:     o,
		logger:   o.Logger.Named("controller"),
		changed:  make(chan struct{}, 1),
		lastSeen: map[int32]heartbeat{},
		pending:  map[int32]bool{},
		stop:     make(chan struct{}),
	}
	c.img.Store(meta.Empty())
	peers := make([]uint64, 0, len(o.Voters))
	for _, v := range o.Voters {
		peers = append(peers, raftID(v))
	}
	node, err := raftnode.Start(raftnode.Config{
		ID:              raftID(o.NodeID),
		Peers:           peers,
		Dir:             o.Dir,
		TickInterval:    o.TickInterval,
		ElectionTicks:   o.ElectionTicks,
		SnapshotEntries: o.SnapshotEntries,
		SM:              (*stateMachine)(c),
		Transport:       transport{c},
		Logger:          c.logger,
	})
	if err != nil {
		return nil, fmt.Errorf("controller: %w", err)
	}
	c.node = node
	c.wg.Add(2)
	go c.register()
	go c.liveness()
	return c, nil
}

// Image is the latest applied metadata.
func (c *Controller) Image() *meta.Image { return c.img.Load() }

// Changed is signalled after every applied image.
func (c *Controller) Changed() <-chan struct{} { return c.changed }

// ControllerID is the active controller's node id; -1 while none is known.
func (c *Controller) ControllerID() int32 {
	if l := c.node.Leader(); l != 0 {
		return nodeOf(l)
	}
	return -1
}

// Voters are the ids of every node of the cluster.
func (c *Controller) Voters() []int32 { return append([]int32(nil), c.opts.Voters...) }

// Incarnation is this node's incarnation; 0 until it has registered.
func (c *Controller) Incarnation() uint64 { return c.incarnation.Load() }

// InContact reports whether this node was in touch with an active controller holding a quorum
// within the session timeout. A node that is not may be cut off from the majority, which fences
// it and elects other leaders for its partitions after that long: it must not take writes.
func (c *Controller) InContact() bool {
	return time.Since(c.node.LeaderContact()) < c.opts.SessionTimeout
}

// Propose has cmd applied by the cluster and returns once this node has applied it.
func (c *Controller) Propose(ctx context.Context, cmd meta.Command) (meta.Result, uint64, error) {
	data, err := meta.EncodeCommand(cmd)
	if err != nil {
		return meta.Result{}, 0, errcode.New(errcode.InvalidRequest, "%v", err)
	}
	out, index, err := c.node.Propose(ctx, data)
	switch {
	case errors.Is(err, raftnode.ErrNoLeader):
		return meta.Result{}, 0, errcode.New(errcode.NotController, "no controller is elected: the cluster has no majority of nodes up, or an election is under way")
	case errors.Is(err, raftnode.ErrStopped):
		return meta.Result{}, 0, errcode.New(errcode.UnknownServerError, "the node is shutting down")
	case ctx.Err() != nil:
		return meta.Result{}, 0, errcode.New(errcode.RequestTimedOut, "the controller did not commit the change in time")
	case err != nil:
		return meta.Result{}, 0, errcode.New(errcode.UnknownServerError, "proposing to the controller: %v", err)
	}
	var res meta.Result
	if err := json.Unmarshal(out, &res); err != nil {
		return meta.Result{}, index, errcode.New(errcode.UnknownServerError, "controller result: %v", err)
	}
	return res, index, nil
}

// HandlePeer takes a message from another node's controller. It never blocks (it runs on an
// event loop) and keeps nothing of payload.
func (c *Controller) HandlePeer(from int32, kind uint8, payload []byte) {
	switch kind {
	case KindRaft:
		m := &raftpb.Message{}
		if err := proto.Unmarshal(payload, m); err != nil || m.GetFrom() != raftID(from) {
			return
		}
		c.node.Step(m)
	case KindHeartbeat:
		if len(payload) != 12 || int32(binary.BigEndian.Uint32(payload)) != from {
			return
		}
		hb := heartbeat{incarnation: binary.BigEndian.Uint64(payload[4:]), at: c.opts.Now()}
		c.mu.Lock()
		c.lastSeen[from] = hb
		c.mu.Unlock()
	}
}

// Shutdown is a controlled shutdown (Kafka's): the node stops heartbeating and has itself fenced,
// so its partitions are known to be without their leader at once rather than after a session
// timeout. It returns when the fence is applied here or ctx ends; Close follows it.
func (c *Controller) Shutdown(ctx context.Context) error {
	c.leaving.Store(true)
	inc := c.incarnation.Load()
	if inc == 0 {
		return nil
	}
	for {
		n := c.img.Load().Node(c.opts.NodeID)
		if n == nil || n.Incarnation != inc || n.Fenced {
			return nil
		}
		actx, cancel := context.WithTimeout(ctx, time.Second)
		_, _, err := c.Propose(actx, meta.Command{Fence: &meta.FenceNode{ID: c.opts.NodeID, Incarnation: inc}})
		cancel()
		if err == nil {
			continue // applied: the loop sees the node fenced
		}
		if ctx.Err() != nil {
			return err
		}
		if !c.sleep(100 * time.Millisecond) {
			return err
		}
	}
}

// Close stops the liveness loops and the raft peer.
func (c *Controller) Close() error {
	c.closeOnce.Do(func() {
		close(c.stop)
		c.wg.Wait()
		c.node.Stop()
	})
	return nil
}

// register proposes this node's registration until it is applied, and again whenever the
// applied metadata does not list this node's incarnation (it never should, but a node that is
// not registered is assigned nothing and heard by nobody).
func (c *Controller) register() {
	defer c.wg.Done()
	backoff := 100 * time.Millisecond
	for {
		if c.leaving.Load() {
			return
		}
		img := c.img.Load()
		n := img.Node(c.opts.NodeID)
		if inc := c.incarnation.Load(); inc != 0 && n != nil && n.Incarnation == inc {
			if !c.sleep(c.opts.HeartbeatInterval) {
				return
			}
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		res, _, err := c.Propose(ctx, meta.Command{Register: &meta.RegisterNode{ID: c.opts.NodeID, Binary: c.opts.Binary, Kafka: c.opts.Kafka, ClusterID: newClusterID()}})
		cancel()
		if err == nil && res.Code == 0 {
			c.incarnation.Store(res.Incarnation)
			c.logger.Info("node registered", zap.Int32("node", c.opts.NodeID), zap.Uint64("incarnation", res.Incarnation))
			// The broker leads nothing before it knows its registration is applied: tell it.
			select {
			case c.changed <- struct{}{}:
			default:
			}
			backoff = 100 * time.Millisecond
			continue
		}
		if !c.sleep(backoff) {
			return
		}
		backoff = min(2*backoff, 400*time.Millisecond) // cheap, and the node is assigned nothing until it is done
	}
}

// liveness sends this node's heartbeats to the active controller and, on the active
// controller, names the cluster and fences and unfences nodes.
func (c *Controller) liveness() {
	defer c.wg.Done()
	t := time.NewTicker(c.opts.HeartbeatInterval / 2)
	defer t.Stop()
	var lastBeat time.Time
	for {
		select {
		case <-c.stop:
			return
		case <-t.C:
		}
		now := c.opts.Now()
		if inc := c.incarnation.Load(); inc != 0 && !c.leaving.Load() && now.Sub(lastBeat) >= c.opts.HeartbeatInterval {
			lastBeat = now
			var hb [12]byte
			binary.BigEndian.PutUint32(hb[:], uint32(c.opts.NodeID))
			binary.BigEndian.PutUint64(hb[4:], inc)
			if l := c.node.Leader(); l == raftID(c.opts.NodeID) {
				c.HandlePeer(c.opts.NodeID, KindHeartbeat, hb[:])
			} else if l != 0 {
				c.opts.Send(nodeOf(l), KindHeartbeat, hb[:])
			}
		}
		if c.node.IsLeader() {
			c.lead(now)
		}
	}
}

// lead is the active controller's work: name a new cluster, fence the silent, unfence the back.
func (c *Controller) lead(now time.Time) {
	img := c.img.Load()
	if img.ClusterID == "" {
		c.proposeAsync(-1, meta.Command{Init: &meta.InitCluster{ClusterID: newClusterID()}})
	}
	since := c.node.LeaderSince()
	if since.IsZero() {
		return
	}
	// A new controller has no heartbeat history: for one session timeout it fences only the
	// previous controller, if that one has been silent for a session timeout counted from the
	// last message this node took from it (a controller that died is the usual reason for an
	// election, and its partitions then get new leaders a session timeout after it died, not
	// after the election).
	young := now.Sub(since) < c.opts.SessionTimeout
	prev, prevContact := c.node.PreviousLeader()
	for _, id := range img.NodeIDs {
		n := img.Nodes[id]
		if young && (prev == 0 || id != nodeOf(prev) || prevContact.IsZero()) {
			continue
		}
		c.mu.Lock()
		hb, seen := c.lastSeen[id]
		c.mu.Unlock()
		alive := seen && hb.incarnation == n.Incarnation && now.Sub(hb.at) < c.opts.SessionTimeout
		if young && !alive {
			alive = now.Sub(prevContact) < c.opts.SessionTimeout || (seen && hb.incarnation == n.Incarnation && hb.at.After(since))
		}
		switch {
		case !n.Fenced && !alive:
			c.logger.Warn("fencing a node that missed its heartbeats", zap.Int32("node", id), zap.Uint64("incarnation", n.Incarnation),
				zap.Duration("session_timeout", c.opts.SessionTimeout))
			c.proposeAsync(id, meta.Command{Fence: &meta.FenceNode{ID: id, Incarnation: n.Incarnation}})
		case n.Fenced && alive:
			c.logger.Info("unfencing a node that heartbeats again", zap.Int32("node", id), zap.Uint64("incarnation", n.Incarnation))
			c.proposeAsync(id, meta.Command{Unfence: &meta.UnfenceNode{ID: id, Incarnation: n.Incarnation}})
		}
	}
}

// proposeAsync proposes cmd on its own goroutine, one at a time per node (node -1: the cluster).
func (c *Controller) proposeAsync(node int32, cmd meta.Command) {
	c.mu.Lock()
	if c.pending[node] {
		c.mu.Unlock()
		return
	}
	c.pending[node] = true
	c.mu.Unlock()
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		ctx, cancel := context.WithTimeout(context.Background(), c.opts.SessionTimeout)
		defer cancel()
		go func() {
			select {
			case <-c.stop:
				cancel()
			case <-ctx.Done():
			}
		}()
		if _, _, err := c.Propose(ctx, cmd); err != nil {
			c.logger.Debug("controller proposal failed", zap.Error(err))
		}
		c.mu.Lock()
		delete(c.pending, node)
		c.mu.Unlock()
	}()
}

func (c *Controller) sleep(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-c.stop:
		return false
	case <-t.C:
		return true
	}
}

func (c *Controller) publish(img *meta.Image) {
	c.img.Store(img)
	select {
	case c.changed <- struct{}{}:
	default:
	}
}

// stateMachine is the Controller as raftnode's state machine: meta.Apply over the image.
type stateMachine Controller

func (s *stateMachine) Apply(index uint64, payload []byte) []byte {
	c := (*Controller)(s)
	cmd, err := meta.DecodeCommand(payload)
	var res meta.Result
	var img *meta.Image
	if err != nil {
		// A proposer never sends what does not decode; the entry is applied as nothing.
		img = c.img.Load()
		res = meta.Result{Code: int16(errcode.InvalidRequest), Message: err.Error()}
	} else {
		img, res = meta.Apply(c.img.Load(), index, cmd)
		if cmd.Register != nil && res.Code == 0 {
			// A registration counts as the new incarnation's first heartbeat: the node is not
			// fenced before its heartbeats reach the controller.
			c.mu.Lock()
			c.lastSeen[cmd.Register.ID] = heartbeat{incarnation: res.Incarnation, at: c.opts.Now()}
			c.mu.Unlock()
		}
	}
	c.publish(img)
	out, _ := json.Marshal(res)
	return out
}

func (s *stateMachine) Snapshot() ([]byte, error) {
	return meta.EncodeImage((*Controller)(s).img.Load())
}

func (s *stateMachine) Restore(index uint64, data []byte) error {
	img, err := meta.DecodeImage(data)
	if err != nil {
		return err
	}
	(*Controller)(s).publish(img)
	return nil
}

// transport sends raft messages over the peer connections.
type transport struct{ c *Controller }

func (t transport) Send(msgs []*raftpb.Message) {
	for _, m := range msgs {
		data, err := proto.Marshal(m)
		if err != nil {
			continue
		}
		// A dropped message is raft's to resend: it probes a follower that stopped answering.
		t.c.opts.Send(nodeOf(m.GetTo()), KindRaft, data)
	}
}

func newClusterID() string {
	var id [16]byte
	_, _ = io.ReadFull(rand.Reader, id[:])
	return base64.RawURLEncoding.EncodeToString(id[:])
}
