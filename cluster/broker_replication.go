package cluster

// Replication between the nodes of a cluster: every follower replica fetches from its leader
// over the peer connections, and every leader answers those fetches, tracks its followers and
// asks the controller to change the in-sync replicas.
//
// A follower node runs one fetcher per node it follows partitions from. A fetcher has one fetch
// outstanding at a time (ReplicaFetch, peer kind 3), naming every partition it follows from that
// leader; the leader answers (ReplicaData, kind 4) over its own connection to the follower when
// a partition has data, when something is wrong, or after the long-poll wait. The follower
// appends what came, and its next fetch reports the new log end and durable end, which move the
// leader's high watermark. A lost message is sent again after a timeout.

import (
	"context"
	"encoding/binary"
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/thorstream/thorstream/cluster/meta"
	"github.com/thorstream/thorstream/codec/errcode"
	"github.com/thorstream/thorstream/codec/proto"
)

// Peer message kinds of replication (reactor/peer carries them; kinds 1 and 2 are the
// controller's).
const (
	KindReplicaFetch uint8 = uint8(proto.PeerKindReplicaFetch)
	KindReplicaData  uint8 = uint8(proto.PeerKindReplicaData)
)

// Replication fetch sizes and timing, as Kafka's replica.fetch.* settings.
const (
	replicaFetchMaxBytes          = 8 << 20 // replica.fetch.response.max.bytes
	replicaFetchPartitionMaxBytes = 4 << 20 // replica.fetch.max.bytes (Kafka's is 1 MiB; an fsync per answer favours more)
	replicaFetchMaxWait           = 500 * time.Millisecond
	replicaFetchTimeout           = replicaFetchMaxWait + 1500*time.Millisecond
	replicaFetchBackoff           = 50 * time.Millisecond
	isrCheckInterval              = 250 * time.Millisecond
	defaultReplicaLagMax          = 10 * time.Second
)

// replication is a node's replication machinery (nil on a single node).
type replication struct {
	b    *Broker
	stop chan struct{}
	wg   sync.WaitGroup

	mu       sync.Mutex
	fetchers map[int32]*fetcher     // by leader node
	servers  map[int32]*fetchServer // by follower node
	// registered: the last roles given were those of a node registered in this life (the
	// reconciling goroutine's, under Broker.adminMu).
	registered bool
}

// followed is one partition a fetcher follows.
type followed struct {
	topic       string
	id          [16]byte
	partition   int32
	leaderEpoch int32
	r           *Replica
}

func (b *Broker) startReplication() {
	rp := &replication{b: b, stop: make(chan struct{}), fetchers: map[int32]*fetcher{}, servers: map[int32]*fetchServer{}}
	b.cs.repl = rp
	rp.wg.Add(1)
	go rp.maintain()
}

func (b *Broker) stopReplication() {
	rp := b.cs.repl
	if rp == nil {
		return
	}
	close(rp.stop)
	rp.wg.Wait()
}

func (b *Broker) lagMax() time.Duration {
	if b.opts.ReplicaLagMax > 0 {
		return b.opts.ReplicaLagMax
	}
	return defaultReplicaLagMax
}

// defaultReplicationFactor is the replication factor of a topic created without one.
func (b *Broker) defaultReplicationFactor() int16 {
	if b.opts.DefaultReplicationFactor > 0 {
		return b.opts.DefaultReplicationFactor
	}
	if b.cs == nil {
		return 1
	}
	return int16(min(3, b.ClusterSize()))
}

// lease reports whether this node may take writes for the partitions it leads: it was in touch
// with the controller within a session timeout.
func (b *Broker) lease() func() bool {
	if c, ok := b.opts.Store.(interface{ InContact() bool }); ok {
		return c.InContact
	}
	return nil
}

// registeredNow reports whether snap holds this node's registration of this life (always, with a
// store that has no registrations).
func (b *Broker) registeredNow(snap *Snapshot) bool {
	c, ok := b.opts.Store.(interface{ Incarnation() uint64 })
	if !ok {
		return true
	}
	inc := c.Incarnation()
	n := snap.Node(b.opts.NodeID)
	return inc != 0 && n != nil && n.Incarnation == inc
}

func (b *Broker) incarnation() int64 {
	if c, ok := b.opts.Store.(interface{ Incarnation() uint64 }); ok {
		return int64(c.Incarnation())
	}
	return 0
}

// applyRoles gives every hosted replica of snap its role and the fetchers their partitions.
// Called with adminMu held, after snap is published.
func (b *Broker) applyRoles(snap *Snapshot, changed map[*Topic]bool) {
	rp := b.cs.repl
	self := b.opts.NodeID
	lease := b.lease()
	// A node leads nothing until the metadata holds its registration of this life: until then
	// the metadata it replayed from its own disk may name it the leader at an epoch it led before
	// a crash, and its log may have lost an unsynced tail its followers hold. The registration
	// moves those leaderships on, or bumps their epochs. Every role is given again when it comes.
	registered := b.registeredNow(snap)
	all := registered != rp.registered
	rp.registered = registered
	byLeader := map[int32][]followed{}
	for _, name := range snap.Names {
		t := snap.Topics[name]
		for p, r := range t.Replicas {
			if r == nil {
				continue
			}
			mp := &t.Partitions[p]
			if changed[t] || all {
				minISR := 1
				if t.Config != nil {
					minISR = int(t.Config.MinInsyncReplicas)
					if _, set := t.Config.Overrides[ConfigMinInsyncReplicas]; !set {
						// The broker's default never asks more replicas than a topic has:
						// a topic created with one replica takes acks=all writes.
						minISR = min(minISR, len(mp.Replicas))
					}
				}
				leader := mp.Leader
				if leader == self && !registered {
					leader = meta.NoLeader
				}
				r.SetRole(Role{Self: self, Leader: leader, LeaderEpoch: mp.LeaderEpoch, PartitionEpoch: mp.PartitionEpoch,
					Replicas: mp.Replicas, ISR: mp.ISR, MinISR: minISR}, lease)
			}
			if mp.Leader != self && mp.Leader != meta.NoLeader && len(mp.Replicas) > 1 && b.opts.SendPeer != nil {
				byLeader[mp.Leader] = append(byLeader[mp.Leader], followed{topic: name, id: t.ID, partition: int32(p), leaderEpoch: mp.LeaderEpoch, r: r})
			}
		}
	}
	rp.mu.Lock()
	defer rp.mu.Unlock()
	for id, f := range rp.fetchers {
		if _, ok := byLeader[id]; !ok {
			f.set(nil)
		}
	}
	for id, parts := range byLeader {
		f := rp.fetchers[id]
		if f == nil {
			f = newFetcher(rp, id)
			rp.fetchers[id] = f
			rp.wg.Add(1)
			go f.run()
		}
		f.set(parts)
	}
}

// maintain is the leader's periodic work: acks=all appends past their timeout are answered, and
// ISR changes are proposed to the controller.
func (rp *replication) maintain() {
	defer rp.wg.Done()
	t := time.NewTicker(isrCheckInterval)
	defer t.Stop()
	for {
		select {
		case <-rp.stop:
			return
		case <-t.C:
		}
		snap := rp.b.snapshot.Load()
		lagMax := rp.b.lagMax()
		for _, name := range snap.Names {
			tp := snap.Topics[name]
			for p, r := range tp.Replicas {
				if r == nil || !r.IsLeader() || !r.Replicated() {
					continue
				}
				r.expireAcks()
				if ch, ok := r.WantISRChange(lagMax); ok {
					rp.wg.Add(1)
					go rp.proposeISR(tp, int32(p), r, ch)
				}
			}
		}
	}
}

// proposeISR has the controller commit an ISR change (meta.AlterPartition).
func (rp *replication) proposeISR(t *Topic, p int32, r *Replica, ch ISRChange) {
	defer rp.wg.Done()
	b := rp.b
	self := b.opts.NodeID
	cmd := &meta.AlterPartition{Topic: t.Name, ID: t.ID, Partition: p, Leader: self, LeaderEpoch: ch.LeaderEpoch, PartitionEpoch: ch.PartitionEpoch}
	for _, id := range ch.ISR {
		inc := ch.Incarnations[id]
		if id == self {
			inc = b.incarnation()
		}
		cmd.ISR = append(cmd.ISR, meta.ISRMember{ID: id, Incarnation: uint64(inc)})
	}
	ctx, cancel := context.WithTimeout(context.Background(), proposeAttempt)
	defer cancel()
	res, _, err := b.cs.store.Propose(ctx, meta.Command{AlterPartition: cmd})
	committed := err == nil && res.Code == 0
	switch code := errcode.Code(res.Code); {
	case committed:
		r.ISRChangeDone(ISRCommitted, res.PartitionEpoch)
	case err != nil || code == errcode.InvalidUpdateVersion || code == errcode.FencedLeaderEpoch:
		r.ISRChangeDone(ISRUncertain, 0)
	default:
		r.ISRChangeDone(ISRRefused, 0)
	}
	old := t.Partitions[p].ISR
	switch {
	case committed:
		b.logger.Info("in-sync replicas changed", zap.String("topic", t.Name), zap.Int32("partition", p),
			zap.Int32s("from", old), zap.Int32s("to", ch.ISR))
	case err != nil:
		b.logger.Debug("in-sync replica change not committed", zap.String("topic", t.Name), zap.Int32("partition", p), zap.Error(err))
	default:
		b.logger.Debug("in-sync replica change refused", zap.String("topic", t.Name), zap.Int32("partition", p),
			zap.Int16("code", res.Code), zap.String("why", res.Message))
	}
}

// --- The follower's side ---

// fetcher fetches every partition this node follows from one leader node.
type fetcher struct {
	rp     *replication
	leader int32
	parts  atomic.Pointer[[]followed]
	wakeC  chan struct{}
	respC  chan []byte
	// outstanding is the id of the fetch waiting for its answer (0: none).
	outstanding atomic.Int64
	nextID      int64
	// recv is a buffer for the next answer's copy: deliver takes it, the fetcher gives it back
	// once it has applied the answer. req is the fetch being built.
	recvMu sync.Mutex
	recv   []byte
	req    proto.ReplicaFetchRequest
}

func newFetcher(rp *replication, leader int32) *fetcher {
	f := &fetcher{rp: rp, leader: leader, wakeC: make(chan struct{}, 1), respC: make(chan []byte, 1)}
	f.nextID = time.Now().UnixNano() // ids of an earlier life of this node are never reused
	empty := []followed(nil)
	f.parts.Store(&empty)
	return f
}

func (f *fetcher) set(parts []followed) {
	f.parts.Store(&parts)
	select {
	case f.wakeC <- struct{}{}:
	default:
	}
}

// pause waits d, or until the fetcher's partitions change or replication stops; false: stopped.
func (f *fetcher) pause(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-f.rp.stop:
		return false
	case <-f.wakeC:
		return true
	case <-t.C:
		return true
	}
}

func (f *fetcher) run() {
	defer f.rp.wg.Done()
	b := f.rp.b
	var buf []byte
	for {
		select {
		case <-f.rp.stop:
			return
		default:
		}
		parts := *f.parts.Load()
		if len(parts) == 0 {
			select {
			case <-f.rp.stop:
				return
			case <-f.wakeC:
			}
			continue
		}
		f.nextID++
		id := f.nextID
		req := &f.req
		*req = proto.ReplicaFetchRequest{FetchID: id, ReplicaID: b.opts.NodeID, Incarnation: b.incarnation(),
			MaxWaitMs: int32(replicaFetchMaxWait / time.Millisecond), MinBytes: 1, MaxBytes: replicaFetchMaxBytes,
			Partitions: slices.Grow(req.Partitions[:0], len(parts))[:len(parts)]}
		for i, p := range parts {
			req.Partitions[i] = proto.ReplicaFetchPartition{Topic: p.topic, TopicID: p.id, Partition: p.partition,
				CurrentLeaderEpoch: p.leaderEpoch, FetchOffset: p.r.LogEndOffset(), LastFetchedEpoch: p.r.log.LatestEpoch(),
				DurableEnd: p.r.durableEnd(), LogStartOffset: p.r.LogStartOffset(), PartitionMaxBytes: replicaFetchPartitionMaxBytes}
		}
		buf = req.AppendTo(buf[:0])
		// Drop an answer to an earlier fetch that came late.
		select {
		case <-f.respC:
		default:
		}
		f.outstanding.Store(id)
		if !b.opts.SendPeer(f.leader, KindReplicaFetch, buf) {
			f.outstanding.Store(0)
			if !f.pause(100 * time.Millisecond) {
				return
			}
			continue
		}
		var payload []byte
		timer := time.NewTimer(replicaFetchTimeout)
		select {
		case <-f.rp.stop:
			timer.Stop()
			return
		case payload = <-f.respC:
		case <-timer.C:
		}
		timer.Stop()
		f.outstanding.Store(0)
		if payload == nil {
			continue // lost: fetch again
		}
		progressed := f.process(id, parts, payload)
		if cap(payload) <= 2*replicaFetchMaxBytes {
			f.recvMu.Lock()
			f.recv = payload[:0]
			f.recvMu.Unlock()
		}
		if !progressed {
			if !f.pause(replicaFetchBackoff) {
				return
			}
		}
	}
}

// deliver hands the answer to fetch id to the fetcher, if it is the one it waits for. It runs on
// an event loop: the payload is copied, nothing blocks.
func (f *fetcher) deliver(id int64, payload []byte) {
	if id == 0 || !f.outstanding.CompareAndSwap(id, 0) {
		return
	}
	f.recvMu.Lock()
	buf := append(f.recv[:0], payload...)
	f.recv = nil // the fetcher owns it now, and gives it back when done with it
	f.recvMu.Unlock()
	select {
	case f.respC <- buf:
	default:
	}
}

// process applies one answer; progressed reports whether it was a normal answer (records or
// an empty long-poll), false when every partition had an error (the caller backs off).
func (f *fetcher) process(id int64, parts []followed, payload []byte) (progressed bool) {
	b := f.rp.b
	var resp proto.ReplicaDataResponse
	if err := resp.ReadFrom(payload); err != nil {
		b.logger.Warn("could not decode a replication answer", zap.Int32("leader", f.leader), zap.Error(err))
		return false
	}
	if resp.FetchID != id {
		return true // a late answer to an earlier fetch: fetch again at once
	}
	if resp.ErrorCode != 0 {
		return false
	}
	byKey := make(map[partKey]*followed, len(parts))
	for i := range parts {
		byKey[partKey{parts[i].topic, parts[i].partition}] = &parts[i]
	}
	// Only what this fetcher still follows, at the epoch the fetch named: an answer to a fetch
	// sent before a leader change is not applied.
	current := map[partKey]int32{}
	for _, p := range *f.parts.Load() {
		current[partKey{p.topic, p.partition}] = p.leaderEpoch
	}
	var apply []applyItem
	for i := range resp.Partitions {
		rp := &resp.Partitions[i]
		key := partKey{rp.Topic, rp.Partition}
		fp := byKey[key]
		if fp == nil || fp.id != rp.TopicID {
			continue
		}
		if e, ok := current[key]; !ok || e != fp.leaderEpoch {
			continue
		}
		r := fp.r
		switch {
		case errcode.Code(rp.ErrorCode) == errcode.OffsetOutOfRange:
			if rp.LogStartOffset > r.LogEndOffset() || rp.LogEndOffset < r.LogStartOffset() {
				start := rp.LogStartOffset
				if rp.LogEndOffset < r.LogStartOffset() {
					start = rp.LogEndOffset
				}
				if err := r.ResetLog(start, fp.leaderEpoch); err != nil {
					if errors.Is(err, ErrStaleFetch) {
						continue
					}
					b.logger.Error("could not start a follower log again at the leader's log start", zap.String("topic", fp.topic),
						zap.Int32("partition", fp.partition), zap.Error(err))
					continue
				}
				progressed = true
			}
		case rp.ErrorCode != 0:
			b.logger.Debug("replication fetch refused", zap.String("topic", fp.topic), zap.Int32("partition", fp.partition),
				zap.Int32("leader", f.leader), zap.String("error", errcode.Code(rp.ErrorCode).String()))
		case rp.DivergingEpoch != -1 || rp.DivergingEndOffset != -1:
			if err := r.TruncateDiverged(f.truncationOffset(r, rp), fp.leaderEpoch); err != nil {
				if errors.Is(err, ErrStaleFetch) {
					continue
				}
				b.logger.Error("could not truncate a follower log that diverged from its leader's", zap.String("topic", fp.topic),
					zap.Int32("partition", fp.partition), zap.Error(err))
				continue
			}
			progressed = true
		default:
			apply = append(apply, applyItem{fp, rp})
		}
	}
	// The partitions' writers append and sync in parallel: an answer costs the slowest one's
	// fsync, not their sum.
	switch len(apply) {
	case 0:
	case 1:
		progressed = f.applyRecords(apply[0].fp, apply[0].rp) || progressed
	default:
		var wg sync.WaitGroup
		var any atomic.Bool
		for _, a := range apply {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if f.applyRecords(a.fp, a.rp) {
					any.Store(true)
				}
			}()
		}
		wg.Wait()
		progressed = any.Load() || progressed
	}
	return progressed
}

type applyItem struct {
	fp *followed
	rp *proto.ReplicaDataPartition
}

// applyRecords appends one partition's fetched records and takes the leader's high watermark and
// log start; false: nothing could be applied.
func (f *fetcher) applyRecords(fp *followed, rp *proto.ReplicaDataPartition) bool {
	b := f.rp.b
	r := fp.r
	if len(rp.Records) > 0 {
		if _, err := r.AppendReplicated(rp.Records, fp.leaderEpoch); err != nil {
			var inside *BatchOverlapError
			switch {
			case errors.Is(err, ErrStaleFetch):
			case errors.As(err, &inside):
				// This log ends inside one of the leader's batches: what it holds from that
				// batch's start on is not the leader's. Cut it (kept aside) there.
				return r.TruncateDiverged(inside.BatchBase, fp.leaderEpoch) == nil
			default:
				b.logger.Error("could not append replicated records", zap.String("topic", fp.topic),
					zap.Int32("partition", fp.partition), zap.Error(err))
			}
			return false
		}
	}
	r.SetFollowerHighWatermark(rp.HighWatermark)
	if rp.LogStartOffset > r.LogStartOffset() && rp.LogStartOffset <= r.HighWatermark() {
		_, _ = r.DeleteRecords(rp.LogStartOffset)
	}
	return true
}

// truncationOffset is where a diverged follower log is cut (Kafka's fetch-based truncation,
// KIP-320): the leader's end offset for the diverging epoch, or this replica's own end for it
// when that is smaller. The next fetch checks again, so a cut that falls short of the whole
// divergence is completed then.
func (f *fetcher) truncationOffset(r *Replica, rp *proto.ReplicaDataPartition) int64 {
	if rp.DivergingEpoch < 0 || rp.DivergingEndOffset < 0 {
		// The leader has no epoch at or below ours: its log is all there is.
		return max(rp.LogEndOffset, 0)
	}
	end, epoch := r.log.EndOffsetForEpoch(rp.DivergingEpoch)
	if epoch < 0 || end < 0 {
		// Every epoch here is newer than the leader's: nothing here is known to be its.
		return min(rp.DivergingEndOffset, r.LogStartOffset())
	}
	return min(end, rp.DivergingEndOffset)
}

type partKey struct {
	topic     string
	partition int32
}

// HandleReplicaData takes a leader's answer to a replication fetch (peer kind 4). It runs on an
// event loop and never blocks.
func (b *Broker) HandleReplicaData(from int32, payload []byte) {
	if b.cs == nil || b.cs.repl == nil || len(payload) < 8 {
		return
	}
	rp := b.cs.repl
	rp.mu.Lock()
	f := rp.fetchers[from]
	rp.mu.Unlock()
	if f != nil {
		f.deliver(int64(binary.BigEndian.Uint64(payload)), payload)
	}
}

// --- The leader's side ---

// fetchServer answers one follower node's fetches, one at a time: a newer fetch from the same
// follower replaces one still waiting (the follower gave up on it), so a follower costs the
// leader one goroutine and one answer at most.
type fetchServer struct {
	mu      sync.Mutex
	running bool
	next    *proto.ReplicaFetchRequest
	cancel  chan struct{}
	// sentHW is the high watermark last sent for each partition (the serving goroutine's): a
	// waiting fetch is answered when it moves, so followers know it within a round trip.
	sentHW map[partKey]int64
	// buf and data are the serving goroutine's answer and read buffers, kept between fetches.
	buf, data []byte
}

// HandleReplicaFetch takes a follower's fetch (peer kind 3). It runs on an event loop: the
// request is decoded here and answered from a goroutine.
func (b *Broker) HandleReplicaFetch(from int32, payload []byte) {
	if b.cs == nil || b.cs.repl == nil {
		return
	}
	req := new(proto.ReplicaFetchRequest)
	if err := req.ReadFrom(payload); err != nil || req.ReplicaID != from {
		b.logger.Debug("dropped a malformed replication fetch", zap.Int32("from", from), zap.Error(err))
		return
	}
	rp := b.cs.repl
	rp.mu.Lock()
	s := rp.servers[from]
	if s == nil {
		s = &fetchServer{cancel: make(chan struct{}, 1), sentHW: map[partKey]int64{}}
		rp.servers[from] = s
	}
	rp.mu.Unlock()
	s.mu.Lock()
	if s.running {
		s.next = req
		s.mu.Unlock()
		select {
		case s.cancel <- struct{}{}:
		default:
		}
		return
	}
	s.running = true
	s.mu.Unlock()
	select {
	case <-s.cancel: // a stale cancel of an earlier fetch
	default:
	}
	go rp.serve(from, s, req)
}

func (rp *replication) serve(from int32, s *fetchServer, req *proto.ReplicaFetchRequest) {
	// The buffers stay with the follower's server: one goroutine at a time serves it.
	buf, data := s.buf, s.data
	for req != nil {
		buf, data = rp.answer(from, s, req, buf[:0], data)
		if !rp.b.opts.SendPeer(from, KindReplicaData, buf) {
			rp.b.logger.Debug("a replication answer was dropped", zap.Int32("to", from), zap.Int("bytes", len(buf)))
		}
		if cap(buf) > 2*replicaFetchMaxBytes {
			buf, data = nil, nil // an answer with a huge batch: do not keep its buffers
		}
		s.mu.Lock()
		s.buf, s.data = buf, data
		req, s.next = s.next, nil
		if req == nil {
			s.running = false
		}
		s.mu.Unlock()
	}
}

// answer builds the answer to one fetch, waiting up to its max wait for data.
func (rp *replication) answer(from int32, s *fetchServer, req *proto.ReplicaFetchRequest, buf, data []byte) ([]byte, []byte) {
	b := rp.b
	wait := min(time.Duration(req.MaxWaitMs)*time.Millisecond, 2*time.Second)
	deadline := time.Now().Add(wait)
	maxBytes := int(min(req.MaxBytes, replicaFetchMaxBytes))
	results := make([]proto.ReplicaDataPartition, len(req.Partitions))
	replicas := make([]*Replica, len(req.Partitions))
	var waiter *Waiter
	defer func() {
		if waiter != nil {
			for _, r := range replicas {
				if r != nil {
					r.RemoveWaiter(waiter)
				}
			}
		}
	}()
	for {
		snap := b.snapshot.Load()
		data = data[:0]
		done := false
		remaining := maxBytes
		for i := range req.Partitions {
			p := &req.Partitions[i]
			res := &results[i]
			*res = proto.ReplicaDataPartition{Topic: p.Topic, TopicID: p.TopicID, Partition: p.Partition,
				HighWatermark: -1, LogStartOffset: -1, LogEndOffset: -1, DivergingEpoch: -1, DivergingEndOffset: -1}
			t := snap.Topics[p.Topic]
			if t == nil || t.ID != p.TopicID || p.Partition < 0 || int(p.Partition) >= len(t.Replicas) {
				res.ErrorCode = int16(errcode.UnknownTopicOrPartition)
				done = true
				continue
			}
			r := t.Replicas[p.Partition]
			if r == nil {
				res.ErrorCode = int16(errcode.NotLeaderOrFollower)
				done = true
				continue
			}
			replicas[i] = r
			ff := r.FollowerFetched(from, req.Incarnation, p.CurrentLeaderEpoch, p.FetchOffset, p.LastFetchedEpoch, p.DurableEnd)
			res.HighWatermark, res.LogStartOffset, res.LogEndOffset = r.HighWatermark(), r.LogStartOffset(), r.LogEndOffset()
			switch {
			case ff.Code != errcode.None:
				res.ErrorCode = int16(ff.Code)
				done = true
			case ff.DivergingEpoch != -1 || ff.DivergingEndOffset != -1:
				res.DivergingEpoch, res.DivergingEndOffset = ff.DivergingEpoch, ff.DivergingEndOffset
				done = true
			case remaining > 0 && p.FetchOffset < res.LogEndOffset:
				start := len(data)
				out, err := r.ReadForFollower(data, p.FetchOffset, min(int(p.PartitionMaxBytes), remaining))
				if err != nil {
					res.ErrorCode = int16(errcode.Of(err))
					if res.ErrorCode == 0 {
						res.ErrorCode = int16(errcode.KafkaStorageError)
					}
					done = true
					continue
				}
				data = out
				res.Records = data[start:len(data):len(data)]
				remaining -= len(res.Records)
				if len(res.Records) > 0 {
					done = true
				}
			case res.HighWatermark > s.sentHW[partKey{p.Topic, p.Partition}]:
				done = true
			}
		}
		if done || !time.Now().Before(deadline) {
			break
		}
		if waiter == nil {
			waiter = NewWaiter()
			for _, r := range replicas {
				if r != nil {
					r.AddWaiter(waiter)
				}
			}
			continue // look again: an append between the read and the registration is not missed
		}
		timer := time.NewTimer(time.Until(deadline))
		select {
		case <-waiter.C:
		case <-timer.C:
		case <-s.cancel:
			timer.Stop()
			deadline = time.Now() // a newer fetch waits: answer this one now
			continue
		case <-rp.stop:
			timer.Stop()
			deadline = time.Now()
			continue
		}
		timer.Stop()
	}
	buf = proto.AppendReplicaDataStart(buf, req.FetchID, 0, len(results))
	if len(s.sentHW) > 4*len(results)+1024 {
		clear(s.sentHW) // partitions this follower no longer fetches
	}
	for i := range results {
		if results[i].HighWatermark >= 0 {
			s.sentHW[partKey{results[i].Topic, results[i].Partition}] = results[i].HighWatermark
		}
		n := -1
		if results[i].Records != nil {
			n = len(results[i].Records)
		}
		buf = proto.AppendReplicaDataPartitionHead(buf, &results[i], n)
		buf = append(buf, results[i].Records...)
	}
	return buf, data
}
