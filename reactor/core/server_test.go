package core

import (
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/thorstream/thorstream/cluster"
	"github.com/thorstream/thorstream/codec/batch"
	"github.com/thorstream/thorstream/codec/errcode"
	"github.com/thorstream/thorstream/codec/proto"
	"github.com/thorstream/thorstream/groups"
	"github.com/thorstream/thorstream/log/vfs"
)

func TestAPIVersionsAnyVersion(t *testing.T) {
	e := newEnv(t, cluster.Options{NodeID: 7})
	for _, v := range []int16{0, 1, 3, -1, 32767} {
		corr := e.send(proto.KeyAPIVersions, v, nil)
		h, body := e.recv(corr)
		var resp proto.APIVersionsResponse
		if h.ErrorCode != 0 || resp.ReadFrom(body) != nil {
			t.Fatalf("version %d: code %d", v, h.ErrorCode)
		}
		if resp.NodeID != 7 || resp.Software != Software || !slices.Equal(resp.APIs, proto.Supported) {
			t.Fatalf("version %d: %+v", v, resp)
		}
	}
}

func TestUnsupportedAndMalformed(t *testing.T) {
	e := newEnv(t, cluster.Options{})
	e.createTopic("t", 1)
	cases := []struct {
		name   string
		key, v int16
		body   []byte
		code   errcode.Code
	}{
		{"unknown key", 99, 1, nil, errcode.UnsupportedVersion},
		{"peer key", 100, 1, nil, errcode.UnsupportedVersion},
		{"produce v0", proto.KeyProduce, 0, nil, errcode.UnsupportedVersion},
		{"fetch v2", proto.KeyFetch, 2, nil, errcode.UnsupportedVersion},
		{"produce truncated", proto.KeyProduce, 1, []byte{0, 1}, errcode.InvalidRequest},
		{"produce trailing bytes", proto.KeyProduce, 1, append(produceReq(1, "t", 0, makeBatch(1, 0, 0)).AppendTo(nil), 9), errcode.InvalidRequest},
		{"fetch truncated", proto.KeyFetch, 1, []byte{0, 0, 0, 1}, errcode.InvalidRequest},
		{"metadata garbage", proto.KeyMetadata, 1, []byte{0, 0, 0, 5, 0}, errcode.InvalidRequest},
		{"create topics empty", proto.KeyCreateTopics, 1, nil, errcode.InvalidRequest},
		{"delete topics short", proto.KeyDeleteTopics, 1, []byte{0}, errcode.InvalidRequest},
		{"list offsets short", proto.KeyListOffsets, 1, []byte{0, 0}, errcode.InvalidRequest},
		{"offset commit short", proto.KeyOffsetCommit, 1, []byte{0, 1, 'g'}, errcode.InvalidRequest},
		{"offset fetch short", proto.KeyOffsetFetch, 1, []byte{0, 5}, errcode.InvalidRequest},
		{"ping short", proto.KeyPing, 1, []byte{1}, errcode.InvalidRequest},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			corr := e.send(tc.key, tc.v, tc.body)
			h, body := e.recv(corr)
			if errcode.Code(h.ErrorCode) != tc.code || h.ErrorMessage == "" || len(body) != 0 {
				t.Fatalf("code %d %q, body %d bytes; want %v with a message and no body", h.ErrorCode, h.ErrorMessage, len(body), tc.code)
			}
		})
	}
	// A frame too short for a header is answered too (defensive path).
	f := NewFrame(3)
	seq, _ := e.sess.Begin(3)
	e.server.HandleFrame(e.sess, seq, f)
	h, _ := e.recv(0)
	if errcode.Code(h.ErrorCode) != errcode.InvalidRequest {
		t.Fatalf("short frame: %d", h.ErrorCode)
	}
	// The session still works.
	var ping proto.PingResponse
	e.call(proto.KeyPing, &proto.PingRequest{Echo: 42}, &ping)
	if ping.Echo != 42 {
		t.Fatalf("ping %+v", ping)
	}
}

func TestTopicsAdmin(t *testing.T) {
	e := newEnv(t, cluster.Options{NodeID: 3})
	var created proto.TopicErrorsResponse
	e.call(proto.KeyCreateTopics, &proto.CreateTopicsRequest{Topics: []proto.CreateTopic{
		{Name: "a", NumPartitions: 2, ReplicationFactor: 1, Configs: []proto.ConfigEntry{{Key: cluster.ConfigRetentionMs, Value: "60000"}}},
		{Name: "b", NumPartitions: -1, ReplicationFactor: -1},
		{Name: "a", NumPartitions: 1, ReplicationFactor: 1},
		{Name: "bad/name", NumPartitions: 1, ReplicationFactor: 1},
		{Name: "c", NumPartitions: 1, ReplicationFactor: 1, Configs: []proto.ConfigEntry{{Key: "nope", Value: "1"}}},
		{Name: "d", NumPartitions: 0, ReplicationFactor: 1},
		{Name: "e", NumPartitions: 1, ReplicationFactor: 2},
	}}, &created)
	want := []errcode.Code{errcode.None, errcode.None, errcode.InvalidRequest, errcode.InvalidTopic, errcode.InvalidConfig, errcode.InvalidPartitions, errcode.InvalidReplicationFactor}
	if len(created.Topics) != len(want) {
		t.Fatalf("%d answers", len(created.Topics))
	}
	for i, w := range want {
		if errcode.Code(created.Topics[i].ErrorCode) != w {
			t.Errorf("create %s: %d %s, want %v", created.Topics[i].Name, created.Topics[i].ErrorCode, created.Topics[i].ErrorMessage, w)
		}
	}
	var validated proto.TopicErrorsResponse
	e.call(proto.KeyCreateTopics, &proto.CreateTopicsRequest{Topics: []proto.CreateTopic{{Name: "v", NumPartitions: 1, ReplicationFactor: 1}}, ValidateOnly: true}, &validated)
	if validated.Topics[0].ErrorCode != 0 || e.broker.Snapshot().Topics["v"] != nil {
		t.Fatalf("validate only: %+v", validated)
	}

	var md proto.MetadataResponse
	e.call(proto.KeyMetadata, &proto.MetadataRequest{}, &md)
	if md.ClusterID != e.broker.ClusterID() || md.ControllerID != 3 || len(md.Brokers) != 1 ||
		md.Brokers[0] != (proto.MetadataBroker{NodeID: 3, Host: "broker.local", Port: 9092}) {
		t.Fatalf("metadata header %+v", md)
	}
	var names []string
	for _, tp := range md.Topics {
		names = append(names, tp.Name)
	}
	if !slices.Equal(names, []string{groups.OffsetsTopic, "a", "b"}) {
		t.Fatalf("all topics: %v", names)
	}
	a := md.Topics[1]
	if a.ErrorCode != 0 || a.Internal || len(a.Partitions) != 2 || a.Partitions[1].Partition != 1 || a.Partitions[1].Leader != 3 ||
		!slices.Equal(a.Partitions[1].ISR, []int32{3}) || !md.Topics[0].Internal {
		t.Fatalf("topic a: %+v", a)
	}
	found := false
	for _, c := range a.Configs {
		found = found || c == proto.ConfigEntry{Key: cluster.ConfigRetentionMs, Value: "60000"}
	}
	if !found {
		t.Fatalf("configs of a: %+v", a.Configs)
	}

	e.call(proto.KeyMetadata, &proto.MetadataRequest{Topics: []string{"b", "missing"}}, &md)
	if len(md.Topics) != 2 || md.Topics[0].Name != "b" || md.Topics[0].ErrorCode != 0 ||
		errcode.Code(md.Topics[1].ErrorCode) != errcode.UnknownTopicOrPartition {
		t.Fatalf("named topics: %+v", md.Topics)
	}
	e.call(proto.KeyMetadata, &proto.MetadataRequest{Topics: []string{}}, &md)
	if len(md.Topics) != 0 {
		t.Fatalf("empty topic list answered %d topics", len(md.Topics))
	}
	// Allowing auto-creation does nothing when the broker does not auto-create.
	e.call(proto.KeyMetadata, &proto.MetadataRequest{Topics: []string{"auto"}, AllowAutoCreate: true}, &md)
	if errcode.Code(md.Topics[0].ErrorCode) != errcode.UnknownTopicOrPartition {
		t.Fatalf("auto-create while disabled: %+v", md.Topics[0])
	}

	var deleted proto.TopicErrorsResponse
	e.call(proto.KeyDeleteTopics, &proto.DeleteTopicsRequest{Names: []string{"a", "missing", groups.OffsetsTopic}}, &deleted)
	if deleted.Topics[0].ErrorCode != 0 || errcode.Code(deleted.Topics[1].ErrorCode) != errcode.UnknownTopicOrPartition ||
		errcode.Code(deleted.Topics[2].ErrorCode) != errcode.InvalidTopic {
		t.Fatalf("delete: %+v", deleted)
	}
	if e.broker.Snapshot().Topics["a"] != nil {
		t.Fatal("a still exists")
	}
}

func TestMetadataAutoCreate(t *testing.T) {
	e := newEnv(t, cluster.Options{AutoCreateTopics: true, DefaultPartitions: 3})
	var md proto.MetadataResponse
	e.call(proto.KeyMetadata, &proto.MetadataRequest{Topics: []string{"fresh", "bad name"}, AllowAutoCreate: true}, &md)
	if md.Topics[0].ErrorCode != 0 || len(md.Topics[0].Partitions) != 3 || errcode.Code(md.Topics[1].ErrorCode) != errcode.InvalidTopic {
		t.Fatalf("%+v", md.Topics)
	}
	e.call(proto.KeyMetadata, &proto.MetadataRequest{Topics: []string{"other"}}, &md)
	if errcode.Code(md.Topics[0].ErrorCode) != errcode.UnknownTopicOrPartition {
		t.Fatal("created without AllowAutoCreate")
	}
}

func TestProduceAcks(t *testing.T) {
	e := newEnv(t, cluster.Options{})
	e.createTopic("t", 2)
	for i, acks := range []int16{proto.AcksLeader, proto.AcksAll} {
		var resp proto.ProduceResponse
		e.call(proto.KeyProduce, produceReq(acks, "t", 1, makeBatch(3, testNow.UnixMilli(), 1)), &resp)
		p := resp.Topics[0].Partitions[0]
		if p.ErrorCode != 0 || p.Partition != 1 || p.BaseOffset != int64(3*i) || p.LogAppendTime != -1 || p.LogStartOffset != 0 ||
			p.Leader != (proto.LeaderHint{ID: 0, Addr: "broker.local:9092"}) || resp.ThrottleTimeMs != 0 {
			t.Fatalf("acks %d: %+v", acks, p)
		}
	}
	// acks=0: no response at all, but the data is appended. The Ping behind it proves the
	// produce finished (responses leave in request order) and that nothing was sent for it.
	e.send(proto.KeyProduce, 1, produceReq(proto.AcksNone, "t", 1, makeBatch(2, testNow.UnixMilli(), 1)).AppendTo(nil))
	corr := e.send(proto.KeyPing, 1, (&proto.PingRequest{Echo: 1}).AppendTo(nil))
	e.recv(corr)
	if hw := e.broker.Replica("t", 1).HighWatermark(); hw != 8 {
		t.Fatalf("high watermark %d after acks=0, want 8", hw)
	}
	// acks=0 errors are silent too.
	e.send(proto.KeyProduce, 1, produceReq(proto.AcksNone, "nope", 0, makeBatch(1, 0, 1)).AppendTo(nil))
	corr = e.send(proto.KeyPing, 1, (&proto.PingRequest{Echo: 2}).AppendTo(nil))
	e.recv(corr)

	var resp proto.ProduceResponse
	e.call(proto.KeyProduce, produceReq(2, "t", 0, makeBatch(1, 0, 1)), &resp)
	if errcode.Code(resp.Topics[0].Partitions[0].ErrorCode) != errcode.InvalidRequiredAcks {
		t.Fatalf("acks=2: %+v", resp)
	}
	if p := e.produce("t", 5, makeBatch(1, 0, 1)); errcode.Code(p.ErrorCode) != errcode.UnknownTopicOrPartition || p.Leader.ID != -1 {
		t.Fatalf("unknown partition: %+v", p)
	}
	bad := makeBatch(1, 0, 1)
	bad[len(bad)-1] ^= 1
	if p := e.produce("t", 0, bad); errcode.Code(p.ErrorCode) != errcode.CorruptMessage || p.BaseOffset != -1 || p.ErrorMessage == "" {
		t.Fatalf("corrupt batch: %+v", p)
	}
	// Several topics and partitions in one request, answered in request order.
	e.createTopic("u", 1)
	req := &proto.ProduceRequest{Acks: 1, Topics: []proto.ProduceTopic{
		{Name: []byte("u"), Partitions: []proto.ProducePartition{{Partition: 0, Records: makeBatch(1, 0, 1)}}},
		{Name: []byte("t"), Partitions: []proto.ProducePartition{{Partition: 1, Records: makeBatch(1, 0, 1)}, {Partition: 0, Records: makeBatch(2, 0, 1)}}},
	}}
	e.call(proto.KeyProduce, req, &resp)
	if resp.Topics[0].Name != "u" || resp.Topics[0].Partitions[0].BaseOffset != 0 ||
		resp.Topics[1].Partitions[0].BaseOffset != 8 || resp.Topics[1].Partitions[1].Partition != 0 || resp.Topics[1].Partitions[1].BaseOffset != 0 {
		t.Fatalf("multi-partition produce: %+v", resp)
	}
}

func TestProduceUnknownTopicAutoCreate(t *testing.T) {
	for _, auto := range []bool{true, false} {
		t.Run(map[bool]string{true: "on", false: "off"}[auto], func(t *testing.T) {
			e := newEnv(t, cluster.Options{AutoCreateTopics: auto})
			p := e.produce("new-topic", 0, makeBatch(2, testNow.UnixMilli(), 1))
			if auto {
				if p.ErrorCode != 0 || p.BaseOffset != 0 {
					t.Fatalf("%+v", p)
				}
				if r := e.broker.Replica("new-topic", 0); r == nil || r.HighWatermark() != 2 {
					t.Fatal("auto-created topic has no data")
				}
			} else {
				if errcode.Code(p.ErrorCode) != errcode.UnknownTopicOrPartition || e.broker.Snapshot().Topics["new-topic"] != nil {
					t.Fatalf("%+v", p)
				}
			}
		})
	}
}

func TestFetchReturnsProducedBatches(t *testing.T) {
	e := newEnv(t, cluster.Options{})
	e.createTopic("t", 1)
	e.produce("t", 0, makeBatch(3, testNow.UnixMilli(), 1))
	e.produce("t", 0, makeBatch(2, testNow.UnixMilli(), 1), makeBatch(1, testNow.UnixMilli(), 1))
	for _, tc := range []struct {
		offset int64
		want   []int64
	}{
		{0, []int64{0, 1, 2, 3, 4, 5}},
		{3, []int64{3, 4, 5}},
		{4, []int64{3, 4, 5}}, // whole batches: the one containing 4 comes first
		{6, nil},
	} {
		p := e.fetch(fetchReq(0, 0, "t", 0, tc.offset))
		if p.ErrorCode != 0 || p.HighWatermark != 6 || p.LogStartOffset != 0 || p.Leader.Addr != "broker.local:9092" {
			t.Fatalf("offset %d: %+v", tc.offset, p)
		}
		if got := offsetsOf(t, p.Records); !slices.Equal(got, tc.want) {
			t.Fatalf("offset %d: records %v, want %v", tc.offset, got, tc.want)
		}
	}
	// The first batch comes whole even over the limits; later ones respect them.
	req := fetchReq(0, 0, "t", 0, 0)
	req.MaxBytes, req.Topics[0].Partitions[0].PartitionMaxBytes = 10, 10
	if got := offsetsOf(t, e.fetch(req).Records); !slices.Equal(got, []int64{0, 1, 2}) {
		t.Fatalf("tiny limits: %v", got)
	}
	// Two partitions of one topic, one unknown.
	var resp proto.FetchResponse
	e.call(proto.KeyFetch, &proto.FetchRequest{MaxBytes: 1 << 20, Topics: []proto.FetchTopic{{Name: []byte("t"), Partitions: []proto.FetchPartition{
		{Partition: 0, FetchOffset: 5, PartitionMaxBytes: 1 << 20}, {Partition: 9, FetchOffset: 0, PartitionMaxBytes: 1 << 20},
	}}}}, &resp)
	ps := resp.Topics[0].Partitions
	if ps[0].ErrorCode != 0 || !slices.Equal(offsetsOf(t, ps[0].Records), []int64{5}) || errcode.Code(ps[1].ErrorCode) != errcode.UnknownTopicOrPartition {
		t.Fatalf("%+v", ps)
	}
}

func TestFetchOffsetOutOfRange(t *testing.T) {
	e := newEnv(t, cluster.Options{})
	e.createTopic("t", 1)
	e.produce("t", 0, makeBatch(2, testNow.UnixMilli(), 1))
	for _, off := range []int64{3, 100, -1} {
		start := time.Now()
		p := e.fetch(fetchReq(10_000, 1, "t", 0, off))
		if errcode.Code(p.ErrorCode) != errcode.OffsetOutOfRange || p.HighWatermark != 2 || len(p.Records) != 0 {
			t.Fatalf("offset %d: %+v", off, p)
		}
		if time.Since(start) > waitTimeout/2 {
			t.Fatal("an out-of-range fetch waited")
		}
	}
}

func TestFetchLongPoll(t *testing.T) {
	e := newEnv(t, cluster.Options{})
	e.createTopic("t", 1)
	e.produce("t", 0, makeBatch(1, testNow.UnixMilli(), 1))

	t.Run("woken by produce", func(t *testing.T) {
		const maxWait = 15_000
		start := time.Now()
		corr := e.send(proto.KeyFetch, 1, fetchReq(maxWait, 1, "t", 0, 1).AppendTo(nil))
		e.tr.none(t, 50*time.Millisecond) // nothing to send yet: the fetch waits
		// Produce through a second connection: the fetch holds the first one's head.
		other := NewSession(newFakeTransport(), Limits{})
		f := frame(proto.KeyProduce, 1, 1, produceReq(1, "t", 0, makeBatch(2, testNow.UnixMilli(), 1)).AppendTo(nil))
		seq, _ := other.Begin(len(f.Bytes()))
		e.server.HandleFrame(other, seq, f)
		h, body := e.recv(corr)
		var resp proto.FetchResponse
		if h.ErrorCode != 0 || resp.ReadFrom(body) != nil {
			t.Fatal("bad fetch response")
		}
		p := resp.Topics[0].Partitions[0]
		if p.ErrorCode != 0 || p.HighWatermark != 3 || !slices.Equal(offsetsOf(t, p.Records), []int64{1, 2}) {
			t.Fatalf("%+v", p)
		}
		if elapsed := time.Since(start); elapsed >= maxWait*time.Millisecond {
			t.Fatalf("fetch took %v: it was not woken by the produce", elapsed)
		}
	})
	t.Run("times out empty", func(t *testing.T) {
		const maxWait = 150
		start := time.Now()
		p := e.fetch(fetchReq(maxWait, 1, "t", 0, 3))
		if elapsed := time.Since(start); elapsed < maxWait*time.Millisecond {
			t.Fatalf("answered after %v, before the max wait", elapsed)
		}
		if p.ErrorCode != 0 || p.HighWatermark != 3 || len(p.Records) != 0 {
			t.Fatalf("%+v", p)
		}
	})
	t.Run("min bytes not reached waits for more", func(t *testing.T) {
		// Data arrives but less than minBytes: the fetch keeps waiting until the deadline and then
		// returns what there is.
		corr := e.send(proto.KeyFetch, 1, fetchReq(300, 1<<20, "t", 0, 3).AppendTo(nil))
		e.produce2(t, "t", 0, makeBatch(1, testNow.UnixMilli(), 1))
		h, body := e.recv(corr)
		var resp proto.FetchResponse
		if h.ErrorCode != 0 || resp.ReadFrom(body) != nil {
			t.Fatal("bad fetch response")
		}
		if got := offsetsOf(t, resp.Topics[0].Partitions[0].Records); !slices.Equal(got, []int64{3}) {
			t.Fatalf("records %v", got)
		}
	})
}

// produce2 produces through a separate session (the env's session may be held by a fetch).
func (e *env) produce2(t *testing.T, topic string, partition int32, records []byte) {
	t.Helper()
	tr := newFakeTransport()
	s := NewSession(tr, Limits{})
	f := frame(proto.KeyProduce, 1, 1, produceReq(1, topic, partition, records).AppendTo(nil))
	seq, _ := s.Begin(len(f.Bytes()))
	e.server.HandleFrame(s, seq, f)
	tr.next(t)
}

// TestFetchDataArrivesBeforeWaiterRegistration drives the window between a fetch's first read and
// its waiter registration deterministically: the injected clock, which the fetch consults right
// after that read, appends a batch. The fetch then sees the partition grew, reads again, still has
// less than minBytes, and must wait for its deadline, then answer with the data.
func TestFetchDataArrivesBeforeWaiterRegistration(t *testing.T) {
	b, err := cluster.Open(cluster.Options{DataDir: "/d", FS: vfs.NewMem()})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if err := b.CreateTopic(cluster.TopicSpec{Name: "t", Partitions: 1, ReplicationFactor: 1}, false); err != nil {
		t.Fatal(err)
	}
	r := b.Replica("t", 0)
	var calls atomic.Int32
	now := func() time.Time {
		if calls.Add(1) == 2 { // the check right after the fetch's first read
			c := &appendSignal{ch: make(chan cluster.AppendResult, 1)}
			if err := r.Submit(&cluster.AppendRequest{Records: makeBatch(1, testNow.UnixMilli(), 1), Owner: c}); err != nil {
				t.Error(err)
			} else if res := <-c.ch; res.Err != nil {
				t.Error(res.Err)
			}
		}
		return time.Now()
	}
	s, err := NewServer(Options{Broker: b, AdvertisedAddr: "h:1", Now: now})
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, broker: b, server: s, tr: newFakeTransport()}
	e.sess = NewSession(e.tr, Limits{})
	corr := e.send(proto.KeyFetch, 1, fetchReq(200, 1<<20, "t", 0, 0).AppendTo(nil))
	h, body := e.recv(corr)
	var resp proto.FetchResponse
	if h.ErrorCode != 0 || resp.ReadFrom(body) != nil {
		t.Fatalf("fetch: %d %s", h.ErrorCode, h.ErrorMessage)
	}
	if got := offsetsOf(t, resp.Topics[0].Partitions[0].Records); !slices.Equal(got, []int64{0}) {
		t.Fatalf("records %v, want [0]", got)
	}
	e.broker = nil
}

type appendSignal struct{ ch chan cluster.AppendResult }

func (a *appendSignal) AppendDone(_ int, res cluster.AppendResult) { a.ch <- res }

func TestListOffsets(t *testing.T) {
	e := newEnv(t, cluster.Options{})
	e.createTopic("t", 1)
	ts := testNow.UnixMilli()
	e.produce("t", 0, makeBatch(3, ts, 10))     // offsets 0..2 at ts, ts+10, ts+20
	e.produce("t", 0, makeBatch(2, ts+100, 10)) // offsets 3..4 at ts+100, ts+110
	cases := []struct {
		ts, offset, timestamp int64
	}{
		{proto.TimestampEarliest, 0, -1},
		{proto.TimestampLatest, 5, -1},
		{0, 0, ts},
		{ts, 0, ts},
		{ts + 5, 1, ts + 10},    // inside the first batch
		{ts + 20, 2, ts + 20},   // the last record of a batch
		{ts + 21, 3, ts + 100},  // between batches
		{ts + 105, 4, ts + 110}, // inside the second batch
		{ts + 111, -1, -1},      // after every record
	}
	req := &proto.ListOffsetsRequest{Topics: []proto.ListOffsetsTopic{{Name: "t"}}}
	for _, tc := range cases {
		req.Topics[0].Partitions = append(req.Topics[0].Partitions, proto.ListOffsetsPartition{Partition: 0, Timestamp: tc.ts})
	}
	req.Topics = append(req.Topics, proto.ListOffsetsTopic{Name: "missing", Partitions: []proto.ListOffsetsPartition{{Partition: 0, Timestamp: -1}}})
	req.Topics[0].Partitions = append(req.Topics[0].Partitions, proto.ListOffsetsPartition{Partition: 0, Timestamp: -7})
	var resp proto.ListOffsetsResponse
	e.call(proto.KeyListOffsets, req, &resp)
	for i, tc := range cases {
		p := resp.Topics[0].Partitions[i]
		if p.ErrorCode != 0 || p.Offset != tc.offset || p.Timestamp != tc.timestamp {
			t.Errorf("timestamp %d: offset %d timestamp %d (code %d); want %d, %d", tc.ts, p.Offset, p.Timestamp, p.ErrorCode, tc.offset, tc.timestamp)
		}
	}
	if p := resp.Topics[0].Partitions[len(cases)]; errcode.Code(p.ErrorCode) != errcode.InvalidRequest {
		t.Errorf("timestamp -7: %+v", p)
	}
	if p := resp.Topics[1].Partitions[0]; errcode.Code(p.ErrorCode) != errcode.UnknownTopicOrPartition || p.Leader.ID != -1 {
		t.Errorf("unknown topic: %+v", p)
	}
}

func TestOffsetCommitFetchAndReopen(t *testing.T) {
	fs := vfs.NewMem()
	e := newEnv(t, cluster.Options{FS: fs, Fsync: cluster.FsyncPolicy{Mode: cluster.FsyncAlways}})
	e.createTopic("t", 2)
	var commitResp proto.OffsetCommitResponse
	e.call(proto.KeyOffsetCommit, &proto.OffsetCommitRequest{Group: "g", Topics: []proto.OffsetCommitTopic{
		{Name: "t", Partitions: []proto.OffsetCommitPartition{{Partition: 0, Offset: 5, Metadata: "m"}, {Partition: 1, Offset: -3}}},
	}}, &commitResp)
	ps := commitResp.Topics[0].Partitions
	if ps[0].ErrorCode != 0 || errcode.Code(ps[1].ErrorCode) != errcode.InvalidCommitOffsetSize {
		t.Fatalf("commit: %+v", commitResp)
	}
	e.call(proto.KeyOffsetCommit, &proto.OffsetCommitRequest{Group: "g", Topics: []proto.OffsetCommitTopic{
		{Name: "t", Partitions: []proto.OffsetCommitPartition{{Partition: 0, Offset: 7, Metadata: "m2"}}},
	}}, &commitResp)
	e.call(proto.KeyOffsetCommit, &proto.OffsetCommitRequest{Group: "", Topics: []proto.OffsetCommitTopic{
		{Name: "t", Partitions: []proto.OffsetCommitPartition{{Partition: 0, Offset: 1}}},
	}}, &commitResp)
	if errcode.Code(commitResp.Topics[0].Partitions[0].ErrorCode) != errcode.InvalidGroupID {
		t.Fatalf("empty group: %+v", commitResp)
	}

	check := func(stage string) {
		t.Helper()
		var resp proto.OffsetFetchResponse
		e.call(proto.KeyOffsetFetch, &proto.OffsetFetchRequest{Group: "g", Topics: []proto.OffsetFetchTopic{{Name: "t", Partitions: []int32{0, 1}}, {Name: "other", Partitions: []int32{0}}}}, &resp)
		want := []proto.OffsetFetchPartitionResponse{{Partition: 0, Offset: 7, Metadata: "m2"}, {Partition: 1, Offset: -1}}
		if !slices.Equal(resp.Topics[0].Partitions, want) || resp.Topics[1].Partitions[0].Offset != -1 {
			t.Fatalf("%s: offset fetch %+v", stage, resp)
		}
		e.call(proto.KeyOffsetFetch, &proto.OffsetFetchRequest{Group: "g"}, &resp)
		if len(resp.Topics) != 1 || resp.Topics[0].Name != "t" || !slices.Equal(resp.Topics[0].Partitions, want[:1]) {
			t.Fatalf("%s: fetch all %+v", stage, resp)
		}
		e.call(proto.KeyOffsetFetch, &proto.OffsetFetchRequest{Group: "nobody"}, &resp)
		if len(resp.Topics) != 0 {
			t.Fatalf("%s: unknown group %+v", stage, resp)
		}
	}
	check("live")
	e.close()
	e.open()
	check("after reopen")
	// Deleting the topic forgets its offsets, once the coordinator's tombstones are durable.
	var deleted proto.TopicErrorsResponse
	e.call(proto.KeyDeleteTopics, &proto.DeleteTopicsRequest{Names: []string{"t"}}, &deleted)
	for deadline := time.Now().Add(waitTimeout); ; {
		var resp proto.OffsetFetchResponse
		e.call(proto.KeyOffsetFetch, &proto.OffsetFetchRequest{Group: "g"}, &resp)
		if len(resp.Topics) == 0 {
			break
		} else if time.Now().After(deadline) {
			t.Fatalf("offsets of a deleted topic: %+v", resp)
		}
		time.Sleep(time.Millisecond) // polling a condition, with a deadline
	}
}

func TestOffsetsUnavailable(t *testing.T) {
	b, err := cluster.Open(cluster.Options{DataDir: "/d", FS: vfs.NewMem()})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	s, err := NewServer(Options{Broker: b, AdvertisedAddr: "h:1"})
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, broker: b, server: s, tr: newFakeTransport()}
	e.sess = NewSession(e.tr, Limits{})
	for _, key := range []int16{proto.KeyOffsetCommit, proto.KeyOffsetFetch} {
		var body []byte
		if key == proto.KeyOffsetCommit {
			body = (&proto.OffsetCommitRequest{Group: "g"}).AppendTo(nil)
		} else {
			body = (&proto.OffsetFetchRequest{Group: "g"}).AppendTo(nil)
		}
		h, _ := e.recv(e.send(key, 1, body))
		if errcode.Code(h.ErrorCode) != errcode.CoordinatorNotAvailable {
			t.Fatalf("%s without offsets: %d", proto.KeyName(key), h.ErrorCode)
		}
	}
	for _, addr := range []string{"nohost", "h:0", "h:x", "h:70000"} {
		if _, err := NewServer(Options{Broker: b, AdvertisedAddr: addr}); err == nil {
			t.Errorf("NewServer accepted advertised address %q", addr)
		}
	}
}

func TestFetchAfterFence(t *testing.T) {
	// A fenced partition reports KAFKA_STORAGE_ERROR in Metadata and Produce, and serves reads.
	mem := vfs.NewMem()
	fs := vfs.NewFaultFS(mem)
	e := newEnv(t, cluster.Options{FS: fs, Fsync: cluster.FsyncPolicy{Mode: cluster.FsyncAlways}})
	e.createTopic("t", 1)
	e.produce("t", 0, makeBatch(1, testNow.UnixMilli(), 1))
	fs.Inject(vfs.Fault{Op: vfs.OpSync, Err: errTest, Persistent: true, Match: func(p string) bool { return len(p) > 4 && p[len(p)-4:] == ".log" }})
	if p := e.produce("t", 0, makeBatch(1, testNow.UnixMilli(), 1)); errcode.Code(p.ErrorCode) != errcode.KafkaStorageError {
		t.Fatalf("%+v", p)
	}
	if p := e.produce("t", 0, makeBatch(1, testNow.UnixMilli(), 1)); errcode.Code(p.ErrorCode) != errcode.KafkaStorageError {
		t.Fatalf("after fence: %+v", p)
	}
	var md proto.MetadataResponse
	e.call(proto.KeyMetadata, &proto.MetadataRequest{Topics: []string{"t"}}, &md)
	if errcode.Code(md.Topics[0].Partitions[0].ErrorCode) != errcode.KafkaStorageError {
		t.Fatalf("metadata of a fenced partition: %+v", md.Topics[0])
	}
	if p := e.fetch(fetchReq(0, 0, "t", 0, 0)); p.ErrorCode != 0 || !slices.Equal(offsetsOf(t, p.Records), []int64{0}) {
		t.Fatalf("fetch from a fenced partition: %+v", p)
	}
	fs.Clear()
}

// keep batch imported for helpers used only in some builds.
var _ = batch.HeaderSize
