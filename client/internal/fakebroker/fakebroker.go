// Package fakebroker is a small in-memory Thorstream cluster for client tests: one net.Listener
// per node, speaking codec/proto v1 (ApiVersions, Metadata, Produce, Fetch, ListOffsets and
// OffsetCommit versions 1 and 2, OffsetFetch, CreateTopics, DeleteTopics, Ping, ListGroups,
// DescribeGroups, DeleteGroups, JoinGroup, SyncGroup, Heartbeat, LeaveGroup).
//
// Every partition has a leader node; a partition request sent to another node is answered with
// NOT_LEADER_OR_FOLLOWER and a leader hint, as the real broker does. Faults are injected with
// Control, modelled on franz-go's kfake: a function sees each request before it is served and may
// answer with an error code, drop the connection, or drop it after serving (a lost response).
package fakebroker

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/thorstream/thorstream/codec/batch"
	"github.com/thorstream/thorstream/codec/errcode"
	"github.com/thorstream/thorstream/codec/proto"
	"github.com/thorstream/thorstream/groups"
)

// Options configures a Cluster.
type Options struct {
	Nodes int // number of nodes (listeners); default 1
	// DiscardRecords keeps only offsets, not batches (benchmarks). Fetch then returns nothing.
	DiscardRecords bool
	// AutoCreatePartitions, when > 0, creates unknown topics named in Metadata requests that
	// allow auto-creation, with this many partitions.
	AutoCreatePartitions int32
	// Groups configures the group coordinator (membership.go). The zero value is the broker's
	// defaults except no initial rebalance delay and no minimum session timeout, so tests can
	// expire members quickly.
	Groups groups.Config
	// APIs are the versions the nodes serve and advertise (nil: proto.Supported), to play a broker
	// older than the client: a request at another version is answered UNSUPPORTED_VERSION.
	APIs []proto.APIRange
}

// Request is what a Control function sees.
type Request struct {
	Node int32
	Key  int16
	// Body is the decoded request: *proto.ProduceRequest, *proto.FetchRequest, … Byte fields
	// alias the frame: copy what you keep.
	Body any
}

// Action tells the broker how to treat a request. The zero value serves it normally.
type Action struct {
	// Error answers without serving: every partition (Produce, Fetch, ListOffsets) or the
	// top-level header (other APIs) gets this code.
	Error errcode.Code
	// Hint is the leader hint sent with a NOT_LEADER_OR_FOLLOWER Error (ID -1 for none).
	Hint proto.LeaderHint
	// Drop closes the connection without answering (the request is not served).
	Drop bool
	// DropAfter serves the request, then closes the connection without answering: the client
	// sees a lost response for a request that took effect.
	DropAfter bool
}

// ControlFunc inspects a request; nil means serve it normally.
type ControlFunc func(r *Request) *Action

// Cluster is a fake cluster. All methods are safe for concurrent use.
type Cluster struct {
	opts  Options
	nodes []*node

	mu       sync.Mutex // guards the fields below
	topics   map[string]*topic
	groups   map[string]map[string]map[int32]int64
	controls []ControlFunc
	counts   map[int16]int
	produced []ProduceLog
	changed  chan struct{} // closed and replaced on every append, for long-polling fetches
	done     chan struct{} // closed by Close
	conns    map[net.Conn]bool
	closed   bool

	// described holds the groups a test gave members (SetGroup, groups.go); under mu.
	described map[string]proto.DescribedGroup

	coordinator *groups.Coordinator // group membership (membership.go)
}

// ProduceLog records one partition's records in one served Produce request.
type ProduceLog struct {
	Node       int32
	Topic      string
	Partition  int32
	BaseOffset int64
	Batches    int
	Records    int
}

type node struct {
	id int32
	ln net.Listener
}

type topic struct {
	name       string
	partitions []*partition
	configs    map[string]string
}

type partition struct {
	leader   int32
	batches  [][]byte // stored batches (baseOffset patched), unless DiscardRecords
	logStart int64
	next     int64 // high watermark

	// replicas and isr are what Metadata lists (nil: the leader alone); followers are where
	// the leader sees each follower (SetFollower), for ListOffsets version 2.
	replicas, isr []int32
	followers     map[int32]follower
}

// follower is a follower's position as the fake leader reports it.
type follower struct {
	logEnd, lastCaughtUpMs int64
}

// New starts a cluster listening on loopback.
func New(opts Options) (*Cluster, error) {
	if opts.Nodes <= 0 {
		opts.Nodes = 1
	}
	c := &Cluster{
		opts:    opts,
		topics:  make(map[string]*topic),
		groups:  make(map[string]map[string]map[int32]int64),
		counts:  make(map[int16]int),
		changed: make(chan struct{}),
		done:    make(chan struct{}),
		conns:   make(map[net.Conn]bool),
	}
	c.coordinator = newCoordinator(opts.Groups)
	for i := 0; i < opts.Nodes; i++ {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			c.Close()
			return nil, err
		}
		n := &node{id: int32(i), ln: ln}
		c.nodes = append(c.nodes, n)
		go c.accept(n)
	}
	return c, nil
}

// Addrs returns the nodes' addresses, by node id.
func (c *Cluster) Addrs() []string {
	out := make([]string, len(c.nodes))
	for i, n := range c.nodes {
		out[i] = n.ln.Addr().String()
	}
	return out
}

// Close stops the listeners and closes every connection.
func (c *Cluster) Close() {
	c.mu.Lock()
	if !c.closed {
		close(c.done)
	}
	c.closed = true
	for nc := range c.conns {
		nc.Close()
	}
	c.mu.Unlock()
	for _, n := range c.nodes {
		n.ln.Close()
	}
	c.coordinator.Close()
}

// DropConnections closes every client connection (the listeners stay up).
func (c *Cluster) DropConnections() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for nc := range c.conns {
		nc.Close()
	}
}

// CreateTopic creates a topic whose partition i is led by node i % Nodes.
func (c *Cluster) CreateTopic(name string, partitions int32, configs map[string]string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.topics[name]; ok {
		return &errcode.Error{Code: errcode.TopicAlreadyExists, Message: name}
	}
	c.createLocked(name, partitions, configs)
	return nil
}

func (c *Cluster) createLocked(name string, partitions int32, configs map[string]string) {
	t := &topic{name: name, configs: map[string]string{}}
	for k, v := range configs {
		t.configs[k] = v
	}
	for i := int32(0); i < partitions; i++ {
		t.partitions = append(t.partitions, &partition{leader: i % int32(len(c.nodes))})
	}
	c.topics[name] = t
}

// SetLeader moves a partition's leadership to node; -1 leaves it without a leader (its requests
// answered LEADER_NOT_AVAILABLE, Metadata's leader -1) until it is given one.
func (c *Cluster) SetLeader(topicName string, p int32, node int32) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.topics[topicName].partitions[p].leader = node
}

// SetReplicas sets the replicas and in-sync replicas Metadata lists for a partition (the leader
// alone until then).
func (c *Cluster) SetReplicas(topicName string, p int32, replicas, isr []int32) {
	c.mu.Lock()
	defer c.mu.Unlock()
	part := c.topics[topicName].partitions[p]
	part.replicas, part.isr = append([]int32(nil), replicas...), append([]int32(nil), isr...)
}

// SetFollower sets where the partition's leader sees the follower on node: its log end and when
// it last caught up (ms since the Unix epoch), as ListOffsets version 2 reports them. A replica
// without one is reported unknown (-1).
func (c *Cluster) SetFollower(topicName string, p int32, node int32, logEnd, lastCaughtUpMs int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	part := c.topics[topicName].partitions[p]
	if part.followers == nil {
		part.followers = map[int32]follower{}
	}
	part.followers[node] = follower{logEnd, lastCaughtUpMs}
}

// Control adds fn; it sees every later request until RemoveControls.
func (c *Cluster) Control(fn ControlFunc) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.controls = append(c.controls, fn)
}

// RemoveControls removes every control function.
func (c *Cluster) RemoveControls() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.controls = nil
}

// Count is the number of requests with key received so far (served or not).
func (c *Cluster) Count(key int16) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.counts[key]
}

// ProduceLog returns the log of served produce partitions, in serving order.
func (c *Cluster) ProduceLog() []ProduceLog {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]ProduceLog(nil), c.produced...)
}

// StoredRecord is one record as stored.
type StoredRecord struct {
	Offset    int64
	Timestamp int64
	Key       []byte
	Value     []byte
	Headers   []batch.RecordHeader
}

// Records returns a partition's stored records in offset order.
func (c *Cluster) Records(topicName string, p int32) []StoredRecord {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := c.topics[topicName]
	if t == nil || int(p) >= len(t.partitions) {
		return nil
	}
	var out []StoredRecord
	for _, b := range t.partitions[p].batches {
		_ = batch.Records(b, func(r *batch.Record) error {
			out = append(out, StoredRecord{
				Offset: r.Offset, Timestamp: r.Timestamp,
				Key: clone(r.Key), Value: clone(r.Value),
				Headers: append([]batch.RecordHeader(nil), r.Headers...),
			})
			return nil
		})
	}
	return out
}

// AppendBatch stores a raw batch in a partition (for consumer tests), returning its base offset.
func (c *Cluster) AppendBatch(topicName string, p int32, b []byte) int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	part := c.topics[topicName].partitions[p]
	return c.appendLocked(part, clone(b))
}

// SetLogStart drops records below offset from a partition (as retention would).
func (c *Cluster) SetLogStart(topicName string, p int32, offset int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	part := c.topics[topicName].partitions[p]
	part.logStart = offset
	for len(part.batches) > 0 {
		h, _ := batch.ParseHeader(part.batches[0])
		if h.NextOffset() > offset {
			break
		}
		part.batches = part.batches[1:]
	}
}

// Committed returns a group's committed offset (-1 if none).
func (c *Cluster) Committed(group, topicName string, p int32) int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	if off, ok := c.groups[group][topicName][p]; ok {
		return off
	}
	return -1
}

func clone(b []byte) []byte {
	if b == nil {
		return nil
	}
	return append([]byte{}, b...)
}

func (c *Cluster) appendLocked(part *partition, b []byte) int64 {
	base := part.next
	batch.SetBaseOffset(b, base)
	h, _ := batch.ParseHeader(b)
	part.next = h.NextOffset()
	if !c.opts.DiscardRecords {
		part.batches = append(part.batches, b)
	}
	close(c.changed)
	c.changed = make(chan struct{})
	return base
}

func (c *Cluster) accept(n *node) {
	for {
		nc, err := n.ln.Accept()
		if err != nil {
			return
		}
		c.mu.Lock()
		if c.closed {
			c.mu.Unlock()
			nc.Close()
			return
		}
		c.conns[nc] = true
		c.mu.Unlock()
		go c.serve(n, nc)
	}
}

var errDrop = errors.New("fakebroker: drop connection")

// serve reads requests and answers them in order, one at a time.
func (c *Cluster) serve(n *node, nc net.Conn) {
	defer func() {
		nc.Close()
		c.mu.Lock()
		delete(c.conns, nc)
		c.mu.Unlock()
	}()
	br := bufio.NewReaderSize(nc, 256<<10)
	bw := bufio.NewWriterSize(nc, 64<<10)
	var sizeBuf [4]byte
	var frame, out []byte
	for {
		if _, err := io.ReadFull(br, sizeBuf[:]); err != nil {
			return
		}
		size, _, err := proto.FrameSize(sizeBuf[:], proto.DefaultMaxFrame)
		if err != nil {
			return
		}
		if cap(frame) < size {
			frame = make([]byte, size)
		}
		frame = frame[:size]
		if _, err := io.ReadFull(br, frame); err != nil {
			return
		}
		h, body, err := proto.ParseRequestHeader(frame)
		if err != nil {
			return
		}
		out, err = c.handle(n, h, body, out[:0])
		if err != nil {
			return
		}
		if out == nil {
			continue // acks=0
		}
		if _, err := bw.Write(out); err != nil {
			return
		}
		if br.Buffered() == 0 {
			if err := bw.Flush(); err != nil {
				return
			}
		}
	}
}

// handle serves one request and returns the whole response frame (nil: no response).
func (c *Cluster) handle(n *node, h proto.RequestHeader, body []byte, out []byte) ([]byte, error) {
	var req interface{ ReadFrom([]byte) error }
	switch h.APIKey {
	case proto.KeyProduce:
		req = new(proto.ProduceRequest)
	case proto.KeyFetch:
		req = new(proto.FetchRequest)
	case proto.KeyListOffsets:
		req = new(proto.ListOffsetsRequest)
	case proto.KeyMetadata:
		req = new(proto.MetadataRequest)
	case proto.KeyOffsetCommit:
		req = &proto.OffsetCommitRequest{Version: h.APIVersion}
	case proto.KeyOffsetFetch:
		req = new(proto.OffsetFetchRequest)
	case proto.KeyCreateTopics:
		req = new(proto.CreateTopicsRequest)
	case proto.KeyDeleteTopics:
		req = new(proto.DeleteTopicsRequest)
	case proto.KeyAPIVersions:
		req = new(proto.APIVersionsRequest)
	case proto.KeyPing:
		req = new(proto.PingRequest)
	case proto.KeyListGroups:
		req = new(proto.ListGroupsRequest)
	case proto.KeyDescribeGroups:
		req = new(proto.DescribeGroupsRequest)
	case proto.KeyDeleteGroups:
		req = new(proto.DeleteGroupsRequest)
	case proto.KeyJoinGroup:
		req = new(proto.JoinGroupRequest)
	case proto.KeySyncGroup:
		req = new(proto.SyncGroupRequest)
	case proto.KeyHeartbeat:
		req = new(proto.HeartbeatRequest)
	case proto.KeyLeaveGroup:
		req = new(proto.LeaveGroupRequest)
	default:
		out, start := proto.AppendResponseFrame(out, h.CorrelationID, int16(errcode.UnsupportedVersion), "unknown api key")
		proto.FinishFrame(out, start, 0)
		return out, nil
	}
	if !c.serves(h) {
		c.mu.Lock()
		c.counts[h.APIKey]++
		c.mu.Unlock()
		msg := fmt.Sprintf("%s version %d not supported", proto.KeyName(h.APIKey), h.APIVersion)
		out, start := proto.AppendResponseFrame(out, h.CorrelationID, int16(errcode.UnsupportedVersion), msg)
		proto.FinishFrame(out, start, 0)
		return out, nil
	}
	if err := req.ReadFrom(body); err != nil {
		out, start := proto.AppendResponseFrame(out, h.CorrelationID, int16(errcode.InvalidRequest), err.Error())
		proto.FinishFrame(out, start, 0)
		return out, nil
	}

	c.mu.Lock()
	c.counts[h.APIKey]++
	controls := c.controls
	c.mu.Unlock()
	var act Action
	r := &Request{Node: n.id, Key: h.APIKey, Body: req}
	for _, fn := range controls {
		if a := fn(r); a != nil {
			act = *a
			break
		}
	}
	if act.Drop {
		return nil, errDrop
	}
	partitioned := h.APIKey == proto.KeyProduce || h.APIKey == proto.KeyFetch || h.APIKey == proto.KeyListOffsets
	if act.Error != errcode.None && !partitioned {
		out, start := proto.AppendResponseFrame(out, h.CorrelationID, int16(act.Error), "injected")
		proto.FinishFrame(out, start, 0)
		return out, nil
	}

	out, start := proto.AppendResponseFrame(out, h.CorrelationID, 0, "")
	var resp interface{ AppendTo([]byte) []byte }
	switch v := req.(type) {
	case *proto.ProduceRequest:
		pr := c.produce(n, v, act)
		if v.Acks == proto.AcksNone {
			return nil, nil
		}
		resp = pr
	case *proto.FetchRequest:
		resp = c.fetch(n, v, act)
	case *proto.ListOffsetsRequest:
		resp = c.listOffsets(n, v, h.APIVersion, act)
	case *proto.MetadataRequest:
		resp = c.metadata(v)
	case *proto.OffsetCommitRequest:
		if v.Version < 2 {
			resp = c.offsetCommit(v)
			break
		}
		var ok bool
		if resp, ok = c.memberCommit(v); !ok {
			return nil, errDrop
		}
	case *proto.OffsetFetchRequest:
		resp = c.offsetFetch(v)
	case *proto.CreateTopicsRequest:
		resp = c.createTopics(v)
	case *proto.DeleteTopicsRequest:
		resp = c.deleteTopics(v)
	case *proto.APIVersionsRequest:
		resp = &proto.APIVersionsResponse{APIs: c.apis(), NodeID: n.id, Software: "fakebroker"}
	case *proto.PingRequest:
		resp = &proto.PingResponse{Echo: v.Echo, NodeID: n.id}
	case *proto.ListGroupsRequest:
		resp = c.listGroups(v)
	case *proto.DescribeGroupsRequest:
		resp = c.describeGroups(v)
	case *proto.DeleteGroupsRequest:
		resp = c.deleteGroups(v)
	case *proto.JoinGroupRequest:
		var ok bool
		if resp, ok = c.joinGroup(v); !ok {
			return nil, errDrop
		}
	case *proto.SyncGroupRequest:
		var ok bool
		if resp, ok = c.syncGroup(v); !ok {
			return nil, errDrop
		}
	case *proto.HeartbeatRequest:
		var ok bool
		if resp, ok = c.heartbeat(v); !ok {
			return nil, errDrop
		}
	case *proto.LeaveGroupRequest:
		var ok bool
		if resp, ok = c.leaveGroup(v); !ok {
			return nil, errDrop
		}
	}
	out = resp.AppendTo(out)
	proto.FinishFrame(out, start, 0)
	if act.DropAfter {
		return nil, errDrop
	}
	return out, nil
}

// apis are the versions the nodes serve.
func (c *Cluster) apis() []proto.APIRange {
	if c.opts.APIs != nil {
		return c.opts.APIs
	}
	return proto.Supported
}

// serves reports whether the nodes serve the request's version (ApiVersions: any, as the broker).
func (c *Cluster) serves(h proto.RequestHeader) bool {
	if h.APIKey == proto.KeyAPIVersions {
		return true
	}
	for _, a := range c.apis() {
		if a.Key == h.APIKey {
			return h.APIVersion >= a.MinVersion && h.APIVersion <= a.MaxVersion
		}
	}
	return false
}

// partitionFor finds a partition and checks that node leads it.
func (c *Cluster) partitionForLocked(n *node, name string, p int32) (*partition, errcode.Code, proto.LeaderHint) {
	t := c.topics[name]
	if t == nil || p < 0 || int(p) >= len(t.partitions) {
		return nil, errcode.UnknownTopicOrPartition, proto.NoLeader
	}
	part := t.partitions[p]
	if part.leader < 0 {
		return nil, errcode.LeaderNotAvailable, proto.NoLeader
	}
	if part.leader != n.id {
		return nil, errcode.NotLeaderOrFollower, proto.LeaderHint{ID: part.leader, Addr: c.nodes[part.leader].ln.Addr().String()}
	}
	return part, errcode.None, proto.NoLeader
}

func (c *Cluster) produce(n *node, req *proto.ProduceRequest, act Action) *proto.ProduceResponse {
	resp := &proto.ProduceResponse{}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, t := range req.Topics {
		tr := proto.ProduceTopicResponse{Name: string(t.Name)}
		for _, p := range t.Partitions {
			pr := proto.ProducePartitionResponse{Partition: p.Partition, BaseOffset: -1, LogAppendTime: -1, Leader: proto.NoLeader}
			part, code, hint := c.partitionForLocked(n, string(t.Name), p.Partition)
			switch {
			case act.Error != errcode.None:
				pr.ErrorCode, pr.Leader = int16(act.Error), act.Hint
			case code != errcode.None:
				pr.ErrorCode, pr.Leader = int16(code), hint
			default:
				pr.BaseOffset = -1
				var batches, records int
				err := batch.Split(p.Records, func(b []byte) error {
					h, err := batch.Validate(b)
					if err != nil {
						return err
					}
					if !c.opts.DiscardRecords {
						b = clone(b)
					}
					off := c.appendLocked(part, b)
					if pr.BaseOffset < 0 {
						pr.BaseOffset = off
					}
					batches++
					records += int(h.RecordCount)
					return nil
				})
				if err != nil {
					pr.ErrorCode, pr.ErrorMessage = int16(errcode.CorruptMessage), err.Error()
				}
				pr.LogStartOffset = part.logStart
				c.produced = append(c.produced, ProduceLog{Node: n.id, Topic: string(t.Name), Partition: p.Partition,
					BaseOffset: pr.BaseOffset, Batches: batches, Records: records})
			}
			tr.Partitions = append(tr.Partitions, pr)
		}
		resp.Topics = append(resp.Topics, tr)
	}
	return resp
}

func (c *Cluster) fetch(n *node, req *proto.FetchRequest, act Action) *proto.FetchResponse {
	var timer *time.Timer
	for {
		resp, bytes, changed := c.fetchOnce(n, req, act)
		if bytes >= int(req.MinBytes) || req.MaxWaitMs <= 0 || act.Error != errcode.None {
			return resp
		}
		if timer == nil {
			timer = time.NewTimer(time.Duration(req.MaxWaitMs) * time.Millisecond)
			defer timer.Stop()
		}
		// Long poll: answer on the next append, or with what there is when MaxWait passes.
		select {
		case <-changed:
		case <-timer.C:
			req.MaxWaitMs = 0
		case <-c.done:
			return resp
		}
	}
}

func (c *Cluster) fetchOnce(n *node, req *proto.FetchRequest, act Action) (*proto.FetchResponse, int, chan struct{}) {
	c.mu.Lock()
	defer c.mu.Unlock()
	resp := &proto.FetchResponse{}
	total := 0
	for _, t := range req.Topics {
		tr := proto.FetchTopicResponse{Name: string(t.Name)}
		for _, p := range t.Partitions {
			pr := proto.FetchPartitionResponse{Partition: p.Partition, Leader: proto.NoLeader, HighWatermark: -1, LogStartOffset: -1}
			part, code, hint := c.partitionForLocked(n, string(t.Name), p.Partition)
			switch {
			case act.Error != errcode.None:
				pr.ErrorCode, pr.Leader = int16(act.Error), act.Hint
			case code != errcode.None:
				pr.ErrorCode, pr.Leader = int16(code), hint
			case p.FetchOffset < part.logStart || p.FetchOffset > part.next:
				pr.ErrorCode = int16(errcode.OffsetOutOfRange)
				pr.HighWatermark, pr.LogStartOffset = part.next, part.logStart
			default:
				pr.HighWatermark, pr.LogStartOffset = part.next, part.logStart
				pr.Records = []byte{}
				for _, b := range part.batches {
					h, _ := batch.ParseHeader(b)
					if h.NextOffset() <= p.FetchOffset {
						continue
					}
					if len(pr.Records) > 0 && (len(pr.Records)+len(b) > int(p.PartitionMaxBytes) || total+len(b) > int(req.MaxBytes)) {
						break
					}
					pr.Records = append(pr.Records, b...)
					total += len(b)
				}
			}
			tr.Partitions = append(tr.Partitions, pr)
		}
		resp.Topics = append(resp.Topics, tr)
	}
	return resp, total, c.changed
}

func (c *Cluster) listOffsets(n *node, req *proto.ListOffsetsRequest, version int16, act Action) *proto.ListOffsetsResponse {
	c.mu.Lock()
	defer c.mu.Unlock()
	resp := &proto.ListOffsetsResponse{Version: version}
	for _, t := range req.Topics {
		tr := proto.ListOffsetsTopicResponse{Name: t.Name}
		for _, p := range t.Partitions {
			pr := proto.ListOffsetsPartitionResponse{Partition: p.Partition, Timestamp: -1, Offset: -1, Leader: proto.NoLeader}
			part, code, hint := c.partitionForLocked(n, t.Name, p.Partition)
			switch {
			case act.Error != errcode.None:
				pr.ErrorCode, pr.Leader = int16(act.Error), act.Hint
			case code != errcode.None:
				pr.ErrorCode, pr.Leader = int16(code), hint
			case p.Timestamp == proto.TimestampEarliest:
				pr.Offset = part.logStart
			case p.Timestamp == proto.TimestampLatest:
				pr.Offset = part.next
			default:
				for _, b := range part.batches {
					found := false
					_ = batch.Records(b, func(r *batch.Record) error {
						if !found && r.Timestamp >= p.Timestamp {
							found = true
							pr.Offset, pr.Timestamp = r.Offset, r.Timestamp
						}
						return nil
					})
					if found {
						break
					}
				}
			}
			if pr.ErrorCode == 0 {
				// As the broker: a partition's answer names the node that answered, its leader.
				pr.Leader = proto.LeaderHint{ID: n.id, Addr: n.ln.Addr().String()}
				if version >= 2 {
					pr.Replicas = part.replicaPositions()
				}
			}
			tr.Partitions = append(tr.Partitions, pr)
		}
		resp.Topics = append(resp.Topics, tr)
	}
	return resp
}

// replicaPositions are ListOffsets version 2's replicas: the leader at its log end and now, each
// follower where SetFollower put it, -1 for the others.
func (part *partition) replicaPositions() []proto.ListOffsetsReplica {
	replicas := part.replicas
	if replicas == nil {
		replicas = []int32{part.leader}
	}
	out := make([]proto.ListOffsetsReplica, 0, len(replicas))
	for _, id := range replicas {
		r := proto.ListOffsetsReplica{Node: id, LogEndOffset: -1, LastCaughtUpMs: -1}
		if f, ok := part.followers[id]; ok {
			r.LogEndOffset, r.LastCaughtUpMs = f.logEnd, f.lastCaughtUpMs
		}
		if id == part.leader {
			r.LogEndOffset, r.LastCaughtUpMs = part.next, time.Now().UnixMilli()
		}
		out = append(out, r)
	}
	return out
}

func (c *Cluster) metadata(req *proto.MetadataRequest) *proto.MetadataResponse {
	c.mu.Lock()
	defer c.mu.Unlock()
	resp := &proto.MetadataResponse{ClusterID: "fake", ControllerID: 0}
	for _, n := range c.nodes {
		host, port, _ := net.SplitHostPort(n.ln.Addr().String())
		p, _ := strconv.Atoi(port)
		resp.Brokers = append(resp.Brokers, proto.MetadataBroker{NodeID: n.id, Host: host, Port: int32(p)})
	}
	names := req.Topics
	if names == nil {
		for name := range c.topics {
			names = append(names, name)
		}
	}
	for _, name := range names {
		t := c.topics[name]
		if t == nil && req.AllowAutoCreate && c.opts.AutoCreatePartitions > 0 {
			c.createLocked(name, c.opts.AutoCreatePartitions, nil)
			t = c.topics[name]
		}
		if t == nil {
			resp.Topics = append(resp.Topics, proto.MetadataTopic{Name: name, ErrorCode: int16(errcode.UnknownTopicOrPartition)})
			continue
		}
		mt := proto.MetadataTopic{Name: name}
		for i, p := range t.partitions {
			mp := proto.MetadataPartition{Partition: int32(i), Leader: p.leader, Replicas: []int32{p.leader}, ISR: []int32{p.leader}}
			if p.replicas != nil {
				mp.Replicas, mp.ISR = p.replicas, p.isr
			}
			if p.leader < 0 {
				mp.ErrorCode, mp.Replicas, mp.ISR = int16(errcode.LeaderNotAvailable), []int32{}, []int32{}
			}
			mt.Partitions = append(mt.Partitions, mp)
		}
		for k, v := range t.configs {
			mt.Configs = append(mt.Configs, proto.ConfigEntry{Key: k, Value: v})
		}
		resp.Topics = append(resp.Topics, mt)
	}
	return resp
}

func (c *Cluster) offsetCommit(req *proto.OffsetCommitRequest) *proto.OffsetCommitResponse {
	c.mu.Lock()
	defer c.mu.Unlock()
	resp := &proto.OffsetCommitResponse{}
	g := c.groups[req.Group]
	if g == nil {
		g = make(map[string]map[int32]int64)
		c.groups[req.Group] = g
	}
	for _, t := range req.Topics {
		tr := proto.PartitionErrorsTopic{Name: t.Name}
		if g[t.Name] == nil {
			g[t.Name] = make(map[int32]int64)
		}
		for _, p := range t.Partitions {
			g[t.Name][p.Partition] = p.Offset
			tr.Partitions = append(tr.Partitions, proto.PartitionError{Partition: p.Partition})
		}
		resp.Topics = append(resp.Topics, tr)
	}
	return resp
}

func (c *Cluster) offsetFetch(req *proto.OffsetFetchRequest) *proto.OffsetFetchResponse {
	c.mu.Lock()
	defer c.mu.Unlock()
	resp := &proto.OffsetFetchResponse{}
	g := c.groups[req.Group]
	topics := req.Topics
	if topics == nil { // every committed offset
		for name, parts := range g {
			t := proto.OffsetFetchTopic{Name: name}
			for p := range parts {
				t.Partitions = append(t.Partitions, p)
			}
			sort.Slice(t.Partitions, func(i, j int) bool { return t.Partitions[i] < t.Partitions[j] })
			topics = append(topics, t)
		}
		sort.Slice(topics, func(i, j int) bool { return topics[i].Name < topics[j].Name })
	}
	for _, t := range topics {
		tr := proto.OffsetFetchTopicResponse{Name: t.Name}
		for _, p := range t.Partitions {
			off, ok := g[t.Name][p]
			if !ok {
				off = -1
			}
			tr.Partitions = append(tr.Partitions, proto.OffsetFetchPartitionResponse{Partition: p, Offset: off})
		}
		resp.Topics = append(resp.Topics, tr)
	}
	return resp
}

func (c *Cluster) createTopics(req *proto.CreateTopicsRequest) *proto.TopicErrorsResponse {
	c.mu.Lock()
	defer c.mu.Unlock()
	resp := &proto.TopicErrorsResponse{}
	for _, t := range req.Topics {
		te := proto.TopicError{Name: t.Name}
		n := t.NumPartitions
		if n == -1 {
			n = 1
		}
		switch {
		case c.topics[t.Name] != nil:
			te.ErrorCode, te.ErrorMessage = int16(errcode.TopicAlreadyExists), fmt.Sprintf("topic %q already exists", t.Name)
		case n <= 0:
			te.ErrorCode, te.ErrorMessage = int16(errcode.InvalidPartitions), "partitions must be positive"
		case t.ReplicationFactor > int16(len(c.nodes)):
			te.ErrorCode, te.ErrorMessage = int16(errcode.InvalidReplicationFactor), "not enough brokers"
		default:
			configs := map[string]string{}
			for _, e := range t.Configs {
				configs[e.Key] = e.Value
			}
			c.createLocked(t.Name, n, configs)
		}
		resp.Topics = append(resp.Topics, te)
	}
	return resp
}

func (c *Cluster) deleteTopics(req *proto.DeleteTopicsRequest) *proto.TopicErrorsResponse {
	c.mu.Lock()
	defer c.mu.Unlock()
	resp := &proto.TopicErrorsResponse{}
	for _, name := range req.Names {
		te := proto.TopicError{Name: name}
		if c.topics[name] == nil {
			te.ErrorCode = int16(errcode.UnknownTopicOrPartition)
		} else {
			delete(c.topics, name)
		}
		resp.Topics = append(resp.Topics, te)
	}
	return resp
}
