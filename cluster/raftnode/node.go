package raftnode

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"go.uber.org/zap"
	"google.golang.org/protobuf/proto"
)

var (
	// ErrStopped: the node was stopped (or stopped itself after a fatal error, see Err).
	ErrStopped = errors.New("raftnode: stopped")
	// ErrNoLeader: no leader is known, the proposal was not accepted; retry later.
	ErrNoLeader = errors.New("raftnode: no leader known")
	// ErrCorrupt: the stored state cannot be loaded.
	ErrCorrupt = errors.New("raftnode: corrupt stored state")
	// ErrConfig: the Config is invalid.
	ErrConfig = errors.New("raftnode: invalid config")
)

const (
	maxSizePerMsg   = 1 << 20 // bytes of entries per append message
	maxInflightMsgs = 256
	stepQueue       = 4096 // inbound messages waiting for the loop
	stepBatch       = 256  // inbound messages handed to raft per loop turn
	proposalHeader  = 16   // proposer uint64 + sequence uint64
)

// StateMachine is the replicated state. All three methods run on the node's loop goroutine.
type StateMachine interface {
	// Apply applies one committed entry's payload at index (on the node's apply goroutine, in
	// log order) and returns the result handed to the proposer on this node, if any. The
	// payload must not be modified; it may be retained.
	Apply(index uint64, payload []byte) []byte
	// Snapshot returns the applied state, for raft snapshots.
	Snapshot() ([]byte, error)
	// Restore replaces the state with a snapshot's, taken at index.
	Restore(index uint64, data []byte) error
}

// Transport carries raft messages to the other nodes. Send never blocks and may drop; the
// messages belong to the transport once handed over.
type Transport interface {
	Send(msgs []*raftpb.Message)
}

// Config configures a Node.
type Config struct {
	ID    uint64   // raft id of this node, non-zero (Thorstream node id + 1)
	Peers []uint64 // raft ids of every voter, this node included; used to bootstrap an empty Dir
	Dir   string   // persisted state; created if missing

	TickInterval   time.Duration // default 100ms
	ElectionTicks  int           // default 10
	HeartbeatTicks int           // default 1

	// SnapshotEntries: snapshot the state machine and compact the raft log every N applied
	// entries (default 1000).
	SnapshotEntries uint64
	// CatchUpEntries: entries kept in the log below a snapshot, so a follower slightly behind
	// catches up from the log instead of receiving the snapshot (default 100).
	CatchUpEntries uint64

	SM        StateMachine
	Transport Transport
	Logger    *zap.Logger // default: none
}

func (c *Config) setDefaults() error {
	if c.ID == 0 {
		return fmt.Errorf("%w: ID must be non-zero", ErrConfig)
	}
	if !slices.Contains(c.Peers, c.ID) {
		return fmt.Errorf("%w: Peers %v do not include ID %d", ErrConfig, c.Peers, c.ID)
	}
	if slices.Contains(c.Peers, 0) {
		return fmt.Errorf("%w: peer id 0", ErrConfig)
	}
	if sorted := slices.Sorted(slices.Values(c.Peers)); len(slices.Compact(sorted)) != len(c.Peers) {
		return fmt.Errorf("%w: duplicate ids in Peers %v", ErrConfig, c.Peers)
	}
	if c.Dir == "" {
		return fmt.Errorf("%w: Dir is empty", ErrConfig)
	}
	if c.SM == nil || c.Transport == nil {
		return fmt.Errorf("%w: SM and Transport are required", ErrConfig)
	}
	if c.TickInterval <= 0 {
		c.TickInterval = 100 * time.Millisecond
	}
	if c.ElectionTicks <= 0 {
		c.ElectionTicks = 10
	}
	if c.HeartbeatTicks <= 0 {
		c.HeartbeatTicks = 1
	}
	if c.ElectionTicks <= c.HeartbeatTicks {
		return fmt.Errorf("%w: ElectionTicks %d must exceed HeartbeatTicks %d", ErrConfig, c.ElectionTicks, c.HeartbeatTicks)
	}
	if c.SnapshotEntries == 0 {
		c.SnapshotEntries = 1000
	}
	if c.CatchUpEntries == 0 {
		c.CatchUpEntries = 100
	}
	if c.Logger == nil {
		c.Logger = zap.NewNop()
	}
	return nil
}

type proposalResult struct {
	data  []byte
	index uint64
	err   error
}

// Node is one running member of the raft group.
type Node struct {
	cfg  Config
	id   uint64
	log  *zap.Logger
	rn   raft.Node
	ms   *raft.MemoryStorage
	disk *disk

	stepc    chan *raftpb.Message
	stopc    chan struct{}
	donec    chan struct{}
	stopOnce sync.Once

	lead        atomic.Uint64
	isLeader    atomic.Bool
	leaderSince atomic.Int64 // unix nanoseconds; 0 when not leader
	// contact is when this node last took a message only a leader sends (an append, a
	// heartbeat, a snapshot), in unix nanoseconds: LeaderContact.
	contact atomic.Int64
	// otherLead is the last leader this node knew other than itself (0: none), and
	// otherContact when it last heard from it (unix nanoseconds), kept when this node becomes
	// leader: PreviousLeader.
	otherLead    atomic.Uint64
	otherContact atomic.Int64
	applied      atomic.Uint64
	seq          atomic.Uint64
	droppedMsgs  atomic.Uint64 // inbound messages dropped (queue full, wrong To, stopped)

	mu      sync.Mutex // guards waiters, stopped, err
	waiters map[uint64]chan proposalResult
	stopped bool
	err     error

	// Owned by the loop goroutine.
	term      uint64
	appliedIx uint64
	snapIndex uint64
	confState *raftpb.ConfState
}

// Start loads (or bootstraps) the state in cfg.Dir, restores cfg.SM from the stored
// snapshot, and starts the node's goroutines.
func Start(cfg Config) (*Node, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	log := cfg.Logger.With(zap.Uint64("raft_id", cfg.ID))
	d, ls, err := openDisk(cfg.Dir, log)
	if err != nil {
		return nil, err
	}
	n := &Node{
		cfg:     cfg,
		id:      cfg.ID,
		log:     log,
		ms:      raft.NewMemoryStorage(),
		disk:    d,
		stepc:   make(chan *raftpb.Message, stepQueue),
		stopc:   make(chan struct{}),
		donec:   make(chan struct{}),
		waiters: make(map[uint64]chan proposalResult),
	}
	n.seq.Store(rand.Uint64())
	fresh := ls.snap == nil && len(ls.ents) == 0
	if err := n.load(ls); err != nil {
		_ = d.close()
		return nil, err
	}
	rc := &raft.Config{
		ID:              cfg.ID,
		ElectionTick:    cfg.ElectionTicks,
		HeartbeatTick:   cfg.HeartbeatTicks,
		Storage:         n.ms,
		Applied:         n.appliedIx,
		MaxSizePerMsg:   maxSizePerMsg,
		MaxInflightMsgs: maxInflightMsgs,
		CheckQuorum:     true,
		PreVote:         true,
		Logger:          raftLogger{log.Named("raft").Sugar()},
	}
	rn, err := startRaft(rc, cfg.Peers, fresh)
	if err != nil {
		_ = d.close()
		return nil, err
	}
	n.rn = rn
	if fresh {
		log.Info("raftnode: bootstrapped a new raft group", zap.Uint64s("peers", cfg.Peers), zap.String("dir", cfg.Dir))
	} else {
		log.Info("raftnode: restarted from disk", zap.String("dir", cfg.Dir),
			zap.Uint64("snapshot_index", n.snapIndex), zap.Int("entries", len(ls.ents)),
			zap.Uint64("term", n.term), zap.Uint64("commit", ls.hs.GetCommit()))
	}
	go n.run()
	return n, nil
}

// load fills the memory storage and the state machine from the loaded state.
func (n *Node) load(ls *loadedState) error {
	if ls.snap != nil {
		md := ls.snap.GetMetadata()
		if err := n.ms.ApplySnapshot(ls.snap); err != nil {
			return fmt.Errorf("%w: apply snapshot %d: %w", ErrCorrupt, md.GetIndex(), err)
		}
		if err := n.cfg.SM.Restore(md.GetIndex(), ls.snap.GetData()); err != nil {
			return fmt.Errorf("raftnode: restore the state machine from snapshot %d: %w", md.GetIndex(), err)
		}
		n.snapIndex, n.appliedIx = md.GetIndex(), md.GetIndex()
		n.applied.Store(n.appliedIx)
		n.confState = cloneConfState(md.GetConfState())
		voters := slices.Sorted(slices.Values(n.confState.GetVoters()))
		if !slices.Contains(voters, n.id) {
			return fmt.Errorf("%w: snapshot %d voters %v do not include this node %d", ErrCorrupt, md.GetIndex(), voters, n.id)
		}
		if !slices.Equal(voters, slices.Sorted(slices.Values(n.cfg.Peers))) {
			n.log.Warn("raftnode: stored voters differ from the configured peers; the stored ones are used",
				zap.Uint64s("stored", voters), zap.Uint64s("configured", n.cfg.Peers))
		}
	}
	if ls.hs != nil {
		if err := n.ms.SetHardState(ls.hs); err != nil {
			return fmt.Errorf("%w: hard state: %w", ErrCorrupt, err)
		}
		n.term = ls.hs.GetTerm()
	}
	if err := n.ms.Append(ls.ents); err != nil {
		return fmt.Errorf("%w: entries: %w", ErrCorrupt, err)
	}
	return nil
}

// startRaft starts the raft node; raft reports a state it refuses by panicking, which
// becomes ErrCorrupt here.
func startRaft(rc *raft.Config, peers []uint64, fresh bool) (rn raft.Node, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%w: raft refused the stored state: %v", ErrCorrupt, r)
		}
	}()
	if fresh {
		ps := make([]raft.Peer, len(peers))
		for i, id := range peers {
			ps[i] = raft.Peer{ID: id}
		}
		return raft.StartNode(rc, ps), nil
	}
	return raft.RestartNode(rc), nil
}

// Propose proposes payload and waits until this node has applied it, returning the state
// machine's result and the entry's index. ErrNoLeader (retriable) when no leader is known,
// ctx.Err() when ctx ends first, ErrStopped when the node stops. An error other than
// ErrNoLeader does not mean the entry will not commit later: commands must be idempotent.
func (n *Node) Propose(ctx context.Context, payload []byte) ([]byte, uint64, error) {
	if err := ctx.Err(); err != nil {
		return nil, 0, err
	}
	ch := make(chan proposalResult, 1)
	n.mu.Lock()
	if n.stopped {
		n.mu.Unlock()
		return nil, 0, ErrStopped
	}
	seq := n.seq.Add(1)
	n.waiters[seq] = ch
	n.mu.Unlock()
	defer func() {
		n.mu.Lock()
		delete(n.waiters, seq)
		n.mu.Unlock()
	}()

	if n.lead.Load() == 0 {
		return nil, 0, ErrNoLeader
	}
	data := make([]byte, proposalHeader+len(payload))
	binary.BigEndian.PutUint64(data, n.id)
	binary.BigEndian.PutUint64(data[8:], seq)
	copy(data[proposalHeader:], payload)

	// raft holds proposals while it knows no leader; bound that wait by an election timeout
	// so a caller learns quickly that there is none.
	pctx, cancel := context.WithTimeout(ctx, time.Duration(n.cfg.ElectionTicks)*n.cfg.TickInterval)
	err := n.rn.Propose(pctx, data)
	cancel()
	switch {
	case err == nil:
	case errors.Is(err, raft.ErrProposalDropped):
		return nil, 0, ErrNoLeader
	case errors.Is(err, raft.ErrStopped):
		return nil, 0, ErrStopped
	case ctx.Err() != nil:
		return nil, 0, ctx.Err()
	case errors.Is(err, context.DeadlineExceeded):
		return nil, 0, ErrNoLeader
	default:
		return nil, 0, fmt.Errorf("raftnode: propose: %w", err)
	}

	select {
	case r := <-ch:
		return r.data, r.index, r.err
	case <-ctx.Done():
		return nil, 0, ctx.Err()
	case <-n.donec:
		select {
		case r := <-ch: // applied just before the node stopped
			return r.data, r.index, r.err
		default:
			return nil, 0, ErrStopped
		}
	}
}

// Step hands an inbound message to the node, which owns it from then on. It never blocks: a
// full queue drops the message (raft retransmits). Messages for another id are dropped.
func (n *Node) Step(m *raftpb.Message) {
	if m == nil || m.GetTo() != n.id {
		n.droppedMsgs.Add(1)
		return
	}
	select {
	case <-n.donec:
		n.droppedMsgs.Add(1)
		return
	default:
	}
	select {
	case n.stepc <- m:
	default:
		n.droppedMsgs.Add(1)
	}
}

// Leader returns the raft id of the leader this node knows, 0 for none.
func (n *Node) Leader() uint64 { return n.lead.Load() }

// IsLeader reports whether this node is the leader.
func (n *Node) IsLeader() bool { return n.isLeader.Load() }

// LeaderSince returns when this node last became leader, the zero time if it is not leader.
func (n *Node) LeaderSince() time.Time {
	ns := n.leaderSince.Load()
	if ns == 0 || !n.isLeader.Load() {
		return time.Time{}
	}
	return time.Unix(0, ns)
}

// Applied returns the index of the last entry applied to the state machine.
func (n *Node) Applied() uint64 { return n.applied.Load() }

// ID returns this node's raft id.
func (n *Node) ID() uint64 { return n.id }

// ReportUnreachable tells raft that the last messages to id were not delivered.
func (n *Node) ReportUnreachable(id uint64) {
	select {
	case <-n.donec:
		return
	default:
	}
	n.rn.ReportUnreachable(id)
}

// Done is closed once the node has stopped (Stop, or a fatal error: see Err).
func (n *Node) Done() <-chan struct{} { return n.donec }

// Err returns the fatal error that stopped the node (a disk write or state machine restore
// failed), nil while it runs or after a plain Stop.
func (n *Node) Err() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.err
}

// Stop stops the node: every goroutine ends, pending proposals fail with ErrStopped, the
// write-ahead file is synced and closed. Safe to call more than once and concurrently.
func (n *Node) Stop() {
	n.stopOnce.Do(func() { close(n.stopc) })
	<-n.donec
}

// run is the loop goroutine: it owns the raft node, the disk and the state machine.
func (n *Node) run() {
	var fatal error
	defer func() { n.shutdown(fatal) }()
	ticker := time.NewTicker(n.cfg.TickInterval)
	defer ticker.Stop()
	ctx := context.Background()
	for {
		select {
		case <-n.stopc:
			return
		case <-ticker.C:
			n.rn.Tick()
		case m := <-n.stepc:
			n.stepQueued(ctx, m)
		case rd := <-n.rn.Ready():
			if err := n.handleReady(rd); err != nil {
				fatal = err
				return
			}
		}
	}
}

// stepQueued hands m and up to stepBatch-1 more queued messages to raft.
func (n *Node) stepQueued(ctx context.Context, m *raftpb.Message) {
	n.noteContact(m)
	_ = n.rn.Step(ctx, m)
	for i := 1; i < stepBatch; i++ {
		select {
		case m = <-n.stepc:
			n.noteContact(m)
			_ = n.rn.Step(ctx, m)
		default:
			return
		}
	}
}

// noteContact records a message that only a leader sends.
func (n *Node) noteContact(m *raftpb.Message) {
	switch m.GetType() {
	case raftpb.MessageType_MsgApp, raftpb.MessageType_MsgHeartbeat, raftpb.MessageType_MsgSnap:
		n.contact.Store(time.Now().UnixNano())
	}
}

// PreviousLeader is, on a leader, the leader before it as this node knew it (0: none) and when
// this node last took a message from a leader before it became leader itself: a new controller
// knows how long the previous one has been silent without waiting for its heartbeats.
func (n *Node) PreviousLeader() (id uint64, lastContact time.Time) {
	id = n.otherLead.Load()
	if ns := n.otherContact.Load(); ns != 0 {
		lastContact = time.Unix(0, ns)
	}
	return id, lastContact
}

// LeaderContact is when this node last knew itself in touch with a leader holding a quorum: now
// while it is the leader (CheckQuorum makes a leader that lost its quorum step down within an
// election timeout), else when it last took a message from one. The zero time: never.
func (n *Node) LeaderContact() time.Time {
	if n.isLeader.Load() {
		return time.Now()
	}
	ns := n.contact.Load()
	if ns == 0 {
		return time.Time{}
	}
	return time.Unix(0, ns)
}

func (n *Node) shutdown(fatal error) {
	n.rn.Stop()
	if err := n.disk.close(); err != nil {
		n.log.Error("raftnode: closing storage", zap.Error(err))
	}
	n.mu.Lock()
	n.stopped = true
	n.err = fatal
	for seq, ch := range n.waiters {
		ch <- proposalResult{err: ErrStopped}
		delete(n.waiters, seq)
	}
	n.mu.Unlock()
	n.isLeader.Store(false)
	n.lead.Store(0)
	n.leaderSince.Store(0)
	if fatal != nil {
		n.log.Error("raftnode: stopped after a fatal error", zap.Error(fatal))
	} else {
		n.log.Info("raftnode: stopped", zap.Uint64("applied", n.appliedIx))
	}
	close(n.donec)
}

// handleReady processes one Ready in the order etcd raft's README gives.
func (n *Node) handleReady(rd raft.Ready) error {
	// 1. Persist before anything leaves this node.
	hasSnap := !raft.IsEmptySnap(rd.Snapshot)
	if hasSnap {
		if err := n.disk.saveSnapshot(rd.Snapshot, rd.HardState, rd.Entries); err != nil {
			return err
		}
		if err := n.ms.ApplySnapshot(rd.Snapshot); err != nil && !errors.Is(err, raft.ErrSnapOutOfDate) {
			return fmt.Errorf("raftnode: apply received snapshot: %w", err)
		}
	} else if err := n.disk.save(rd.HardState, rd.Entries, rd.MustSync); err != nil {
		return err
	}
	if !raft.IsEmptyHardState(rd.HardState) {
		if err := n.ms.SetHardState(rd.HardState); err != nil {
			return fmt.Errorf("raftnode: set hard state: %w", err)
		}
		n.term = rd.HardState.GetTerm()
	}
	if err := n.ms.Append(rd.Entries); err != nil {
		return fmt.Errorf("raftnode: append entries: %w", err)
	}
	if rd.SoftState != nil {
		n.updateSoftState(rd.SoftState)
	}

	// 2. Send.
	if len(rd.Messages) > 0 {
		var snapTo []uint64
		for _, m := range rd.Messages {
			if m.GetType() == raftpb.MsgSnap {
				snapTo = append(snapTo, m.GetTo())
				n.log.Info("raftnode: sending snapshot", zap.Uint64("to", m.GetTo()),
					zap.Uint64("index", m.GetSnapshot().GetMetadata().GetIndex()),
					zap.Int("bytes", len(m.GetSnapshot().GetData())))
			}
		}
		n.cfg.Transport.Send(rd.Messages)
		for _, to := range snapTo {
			// Send is fire and forget: report it sent; if it never arrives raft probes the
			// follower and sends the snapshot again.
			n.rn.ReportSnapshot(to, raft.SnapshotFinish)
		}
	}

	// 3. Apply.
	if hasSnap {
		md := rd.Snapshot.GetMetadata()
		if err := n.cfg.SM.Restore(md.GetIndex(), rd.Snapshot.GetData()); err != nil {
			return fmt.Errorf("raftnode: restore the state machine from snapshot %d: %w", md.GetIndex(), err)
		}
		n.snapIndex, n.appliedIx = md.GetIndex(), md.GetIndex()
		n.applied.Store(n.appliedIx)
		n.confState = cloneConfState(md.GetConfState())
		n.log.Info("raftnode: installed snapshot from the leader", zap.Uint64("index", md.GetIndex()),
			zap.Uint64("term", md.GetTerm()), zap.Int("bytes", len(rd.Snapshot.GetData())))
	}
	for _, e := range rd.CommittedEntries {
		n.apply(e)
	}

	// 4. Snapshot and compact.
	if n.appliedIx-n.snapIndex >= n.cfg.SnapshotEntries {
		if err := n.takeSnapshot(); err != nil {
			return err
		}
	}

	// 5. Advance.
	n.rn.Advance()
	return nil
}

func (n *Node) updateSoftState(ss *raft.SoftState) {
	wasLeader := n.isLeader.Load()
	prevLead := n.lead.Load()
	leader := ss.RaftState == raft.StateLeader
	n.lead.Store(ss.Lead)
	n.isLeader.Store(leader)
	if ss.Lead != 0 && ss.Lead != n.id {
		n.otherLead.Store(ss.Lead)
	}
	switch {
	case leader && !wasLeader:
		n.otherContact.Store(n.contact.Load())
		n.leaderSince.Store(time.Now().UnixNano())
		n.log.Info("raftnode: became leader", zap.Uint64("term", n.term))
	case !leader && wasLeader:
		n.leaderSince.Store(0)
		n.log.Info("raftnode: lost leadership", zap.Uint64("term", n.term), zap.Uint64("leader", ss.Lead),
			zap.String("state", ss.RaftState.String()))
	case ss.Lead != prevLead && ss.Lead == 0:
		n.log.Info("raftnode: no leader known", zap.Uint64("term", n.term), zap.Uint64("previous_leader", prevLead))
	case ss.Lead != prevLead:
		n.log.Info("raftnode: leader changed", zap.Uint64("term", n.term), zap.Uint64("leader", ss.Lead))
	}
}

// apply applies one committed entry.
func (n *Node) apply(e *raftpb.Entry) {
	idx := e.GetIndex()
	if idx <= n.appliedIx {
		return
	}
	switch e.GetType() {
	case raftpb.EntryNormal:
		n.applyNormal(idx, e.GetData())
	case raftpb.EntryConfChange:
		cc := &raftpb.ConfChange{}
		if err := proto.Unmarshal(e.GetData(), cc); err != nil {
			// Every node decodes the same committed bytes the same way: cancel it everywhere.
			n.log.Error("raftnode: undecodable conf change, cancelled", zap.Uint64("index", idx), zap.Error(err))
			cc = &raftpb.ConfChange{}
		}
		n.confState = n.rn.ApplyConfChange(cc)
	case raftpb.EntryConfChangeV2:
		cc := &raftpb.ConfChangeV2{}
		if err := proto.Unmarshal(e.GetData(), cc); err != nil {
			n.log.Error("raftnode: undecodable conf change, cancelled", zap.Uint64("index", idx), zap.Error(err))
			cc = &raftpb.ConfChangeV2{}
		}
		n.confState = n.rn.ApplyConfChange(cc)
	}
	n.appliedIx = idx
	n.applied.Store(idx)
}

func (n *Node) applyNormal(idx uint64, data []byte) {
	if len(data) == 0 {
		return // a new leader's empty entry
	}
	if len(data) < proposalHeader {
		n.log.Error("raftnode: skipped an entry without a proposal header", zap.Uint64("index", idx), zap.Int("bytes", len(data)))
		return
	}
	proposer := binary.BigEndian.Uint64(data)
	seq := binary.BigEndian.Uint64(data[8:])
	result := n.cfg.SM.Apply(idx, data[proposalHeader:])
	if proposer != n.id {
		return
	}
	n.mu.Lock()
	ch, ok := n.waiters[seq]
	if ok {
		delete(n.waiters, seq)
	}
	n.mu.Unlock()
	if ok {
		ch <- proposalResult{data: result, index: idx} // buffered 1, one send per waiter
	}
}

// takeSnapshot snapshots the state machine at the applied index, persists the snapshot,
// starts a new write-ahead file and compacts the memory log keeping CatchUpEntries.
func (n *Node) takeSnapshot() error {
	data, err := n.cfg.SM.Snapshot()
	if err != nil {
		// Not fatal: the log keeps growing until a later attempt succeeds.
		n.log.Error("raftnode: state machine snapshot failed", zap.Uint64("applied", n.appliedIx), zap.Error(err))
		return nil
	}
	cs := n.confState
	if cs == nil {
		// Not reachable with a bootstrapped log (its first entries are the conf changes);
		// never let a snapshot go out without its voters.
		cs = &raftpb.ConfState{Voters: slices.Clone(n.cfg.Peers), AutoLeave: new(false)}
	}
	snap, err := n.ms.CreateSnapshot(n.appliedIx, cs, data)
	if err != nil {
		return fmt.Errorf("raftnode: create snapshot at %d: %w", n.appliedIx, err)
	}
	last, err := n.ms.LastIndex()
	if err != nil {
		return fmt.Errorf("raftnode: last index: %w", err)
	}
	var ents []*raftpb.Entry
	if last > n.appliedIx {
		if ents, err = n.ms.Entries(n.appliedIx+1, last+1, math.MaxUint64); err != nil {
			return fmt.Errorf("raftnode: entries after snapshot %d: %w", n.appliedIx, err)
		}
	}
	if err := n.disk.saveSnapshot(snap, nil, ents); err != nil {
		return err
	}
	n.snapIndex = n.appliedIx
	compacted := uint64(0)
	if n.appliedIx > n.cfg.CatchUpEntries {
		compacted = n.appliedIx - n.cfg.CatchUpEntries
		if err := n.ms.Compact(compacted); err != nil && !errors.Is(err, raft.ErrCompacted) {
			return fmt.Errorf("raftnode: compact at %d: %w", compacted, err)
		}
	}
	n.log.Info("raftnode: took snapshot", zap.Uint64("index", n.appliedIx), zap.Int("bytes", len(data)),
		zap.Uint64("log_compacted_to", compacted))
	return nil
}

// raftLogger routes etcd raft's log lines to zap. Fatal panics instead of exiting.
type raftLogger struct{ s *zap.SugaredLogger }

func (l raftLogger) Debug(v ...any)                   { l.s.Debug(v...) }
func (l raftLogger) Debugf(format string, v ...any)   { l.s.Debugf(format, v...) }
func (l raftLogger) Error(v ...any)                   { l.s.Error(v...) }
func (l raftLogger) Errorf(format string, v ...any)   { l.s.Errorf(format, v...) }
func (l raftLogger) Info(v ...any)                    { l.s.Debug(v...) }
func (l raftLogger) Infof(format string, v ...any)    { l.infof(format, v...) }
func (l raftLogger) Warning(v ...any)                 { l.s.Warn(v...) }
func (l raftLogger) Warningf(format string, v ...any) { l.s.Warnf(format, v...) }
func (l raftLogger) Fatal(v ...any)                   { l.s.Panic(v...) }
func (l raftLogger) Fatalf(format string, v ...any)   { l.s.Panicf(format, v...) }
func (l raftLogger) Panic(v ...any)                   { l.s.Panic(v...) }
func (l raftLogger) Panicf(format string, v ...any)   { l.s.Panicf(format, v...) }

// infof logs at info level what an operator follows (leaders won and lost) and at debug level
// the rest of raft's chatter (votes, terms, configuration replays).
func (l raftLogger) infof(format string, v ...any) {
	if strings.Contains(format, "became leader") || strings.Contains(format, "elected leader") || strings.Contains(format, "lost leader") {
		l.s.Infof(format, v...)
		return
	}
	l.s.Debugf(format, v...)
}

func cloneConfState(cs *raftpb.ConfState) *raftpb.ConfState {
	if cs == nil {
		return nil
	}
	return proto.Clone(cs).(*raftpb.ConfState)
}
