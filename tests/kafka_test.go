package tests

// End-to-end tests of the Kafka listener with franz-go (kgo) as the client, against the real
// broker binary. Control-plane requests are kmsg structs sent with kgo's Client.Request, or over a
// plain connection (kafkaConn) where the test needs a particular version or malformed input.

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"maps"
	"net"
	"slices"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// kafkaBroker is a broker child process with its Kafka listener on.
type kafkaBroker struct {
	*brokerProc
	kafkaAddr string
}

// startKafkaBroker starts a broker with a Kafka listener on a fresh port.
func startKafkaBroker(t *testing.T, extraEnv ...string) *kafkaBroker {
	t.Helper()
	addr := freeAddr(t)
	b := startBroker(t, t.TempDir(), append([]string{"THORSTREAM_KAFKA_ADDR=" + addr}, extraEnv...)...)
	return &kafkaBroker{brokerProc: b, kafkaAddr: addr}
}

// newKafkaClient returns a kgo client of addr, closed at the end of the test.
func newKafkaClient(t *testing.T, addr string, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(addr)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// request sends req with cl and returns the typed response.
func request[R kmsg.Response](t *testing.T, cl *kgo.Client, req kmsg.Request) R {
	t.Helper()
	resp, err := cl.Request(ctx(t, 30*time.Second), req)
	if err != nil {
		t.Fatalf("%s: %v", kmsg.NameForKey(req.Key()), err)
	}
	return resp.(R)
}

// createTopic creates a topic through CreateTopics and fails the test on any error.
func createTopic(t *testing.T, cl *kgo.Client, name string, partitions int32, configs map[string]string) {
	t.Helper()
	resp := request[*kmsg.CreateTopicsResponse](t, cl, createTopicsRequest(false, topicSpec(name, partitions, configs)))
	if len(resp.Topics) != 1 || resp.Topics[0].ErrorCode != 0 {
		t.Fatalf("create %s: %+v", name, resp.Topics)
	}
}

func topicSpec(name string, partitions int32, configs map[string]string) kmsg.CreateTopicsRequestTopic {
	rt := kmsg.NewCreateTopicsRequestTopic()
	rt.Topic, rt.NumPartitions, rt.ReplicationFactor = name, partitions, 1
	if partitions == -1 {
		rt.ReplicationFactor = -1 // both from the broker's defaults (v4+)
	}
	for _, k := range slices.Sorted(maps.Keys(configs)) {
		c := kmsg.NewCreateTopicsRequestTopicConfig()
		c.Name, c.Value = k, kmsg.StringPtr(configs[k])
		rt.Configs = append(rt.Configs, c)
	}
	return rt
}

func createTopicsRequest(validateOnly bool, topics ...kmsg.CreateTopicsRequestTopic) *kmsg.CreateTopicsRequest {
	req := kmsg.NewPtrCreateTopicsRequest()
	req.TimeoutMillis, req.ValidateOnly, req.Topics = 30000, validateOnly, topics
	return req
}

// listOffset answers a ListOffsets v7 query (-2 earliest, -1 latest, -3 max timestamp, or a
// time) for one partition over a fresh connection, failing on an error code. (kgo's Client.Request
// routes ListOffsets through its metadata cache, which lags topic deletion and re-creation.)
func listOffset(t *testing.T, addr string, topic string, partition int32, ts int64) kmsg.ListOffsetsResponseTopicPartition {
	t.Helper()
	rp := listOffsetRaw(t, addr, topic, partition, ts)
	if rp.ErrorCode != 0 {
		t.Fatalf("list offsets %s/%d at %d: error %d", topic, partition, ts, rp.ErrorCode)
	}
	return rp
}

// listOffsetRaw is listOffset without the error check.
func listOffsetRaw(t *testing.T, addr string, topic string, partition int32, ts int64) kmsg.ListOffsetsResponseTopicPartition {
	t.Helper()
	conn := dialKafka(t, addr)
	defer conn.conn.Close()
	req := kmsg.NewPtrListOffsetsRequest()
	req.SetVersion(7)
	req.ReplicaID = -1
	p := kmsg.NewListOffsetsRequestTopicPartition()
	p.Partition, p.Timestamp = partition, ts
	rt := kmsg.NewListOffsetsRequestTopic()
	rt.Topic, rt.Partitions = topic, []kmsg.ListOffsetsRequestTopicPartition{p}
	req.Topics = []kmsg.ListOffsetsRequestTopic{rt}
	resp := conn.do(req).(*kmsg.ListOffsetsResponse)
	if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
		t.Fatalf("list offsets: %+v", resp)
	}
	return resp.Topics[0].Partitions[0]
}

// waitHighWatermark polls ListOffsets until the partition's high watermark is want (20 s at most).
func waitHighWatermark(t *testing.T, addr string, topic string, partition int32, want int64) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		got := listOffset(t, addr, topic, partition, -1).Offset
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("high watermark %d, want %d", got, want)
		}
		time.Sleep(20 * time.Millisecond) // polling interval of a condition with a deadline
	}
}

// consume reads n records from the start of topics with a fresh consumer, failing on any fetch
// error or when they do not all arrive within a minute.
func consume(t *testing.T, addr string, n int, topics ...string) []*kgo.Record {
	t.Helper()
	cl := newKafkaClient(t, addr, kgo.ConsumeTopics(topics...), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	defer cl.Close()
	c := ctx(t, 60*time.Second)
	var out []*kgo.Record
	for len(out) < n {
		fetches := cl.PollFetches(c)
		if c.Err() != nil {
			t.Fatalf("consumed %d of %d records before the deadline", len(out), n)
		}
		for _, e := range fetches.Errors() {
			t.Fatalf("fetch %s/%d: %v", e.Topic, e.Partition, e.Err)
		}
		out = append(out, fetches.Records()...)
	}
	if len(out) != n {
		t.Fatalf("consumed %d records, want %d", len(out), n)
	}
	return out
}

// produceSync produces records and fails on the first error.
func produceSync(t *testing.T, cl *kgo.Client, records ...*kgo.Record) {
	t.Helper()
	if err := cl.ProduceSync(ctx(t, 60*time.Second), records...).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

// valueRecords returns n records with values prefix-0, prefix-1, …
func valueRecords(topic, prefix string, n int) []*kgo.Record {
	out := make([]*kgo.Record, n)
	for i := range out {
		out[i] = &kgo.Record{Topic: topic, Value: fmt.Appendf(nil, "%s-%d", prefix, i)}
	}
	return out
}

func TestKafkaCompressionCodecsRoundTrip(t *testing.T) {
	b := startKafkaBroker(t)
	codecs := []struct {
		name  string
		codec kgo.CompressionCodec
		bits  uint8 // the batch attributes' codec bits
	}{
		{"none", kgo.NoCompression(), 0},
		{"gzip", kgo.GzipCompression(), 1},
		{"snappy", kgo.SnappyCompression(), 2},
		{"lz4", kgo.Lz4Compression(), 3},
		{"zstd", kgo.ZstdCompression(), 4},
	}
	for _, c := range codecs {
		t.Run(c.name, func(t *testing.T) {
			topic := "codec-" + c.name
			cl := newKafkaClient(t, b.kafkaAddr, kgo.ProducerBatchCompression(c.codec), kgo.DefaultProduceTopic(topic))
			createTopic(t, cl, topic, 1, nil)
			// Compressible and incompressible values, an empty one, and one of 100 KiB.
			var values [][]byte
			for i := range 300 {
				v := bytes.Repeat(fmt.Appendf(nil, "record %d of codec %s; ", i, c.name), i%7+1)
				if i%3 == 0 {
					v = make([]byte, 64+i)
					for j := range v {
						v[j] = byte(uint32(i*131+j*7919) >> 3)
					}
				}
				values = append(values, v)
			}
			values = append(values, []byte{}, bytes.Repeat([]byte("0123456789abcdef"), 6400))
			records := make([]*kgo.Record, len(values))
			for i, v := range values {
				records[i] = &kgo.Record{Value: v}
			}
			produceSync(t, cl, records...)
			got := consume(t, b.kafkaAddr, len(values), topic)
			for i, r := range got {
				if !bytes.Equal(r.Value, values[i]) {
					t.Fatalf("record %d: value of %d bytes differs from the %d bytes produced", i, len(r.Value), len(values[i]))
				}
				if r.Offset != int64(i) {
					t.Fatalf("record %d at offset %d", i, r.Offset)
				}
				// The broker stores the producer's batch as it came, so the consumer sees its codec.
				if r.Attrs.CompressionType() != c.bits {
					t.Fatalf("record %d: stored with codec %d, want %d", i, r.Attrs.CompressionType(), c.bits)
				}
			}
		})
	}
}

func TestKafkaKeyedRecordsKeepPartitionAndOrder(t *testing.T) {
	b := startKafkaBroker(t)
	const topic, partitions, keys, perKey = "keyed", 16, 64, 30
	cl := newKafkaClient(t, b.kafkaAddr, kgo.DefaultProduceTopic(topic))
	createTopic(t, cl, topic, partitions, nil)
	var records []*kgo.Record
	for i := range perKey {
		for k := range keys {
			records = append(records, &kgo.Record{Key: fmt.Appendf(nil, "key-%d", k), Value: fmt.Appendf(nil, "%d", i)})
		}
	}
	produceSync(t, cl, records...)
	// The producer's own view: every record of a key went to one partition.
	producedTo := map[string]int32{}
	for _, r := range records {
		if p, ok := producedTo[string(r.Key)]; ok && p != r.Partition {
			t.Fatalf("key %s produced to partitions %d and %d", r.Key, p, r.Partition)
		}
		producedTo[string(r.Key)] = r.Partition
	}

	got := consume(t, b.kafkaAddr, len(records), topic)
	partitionOf := map[string]int32{}
	next := map[string]int{}
	used := map[int32]bool{}
	for _, r := range got {
		k := string(r.Key)
		if p, ok := partitionOf[k]; ok && p != r.Partition {
			t.Fatalf("key %s found in partitions %d and %d", k, p, r.Partition)
		}
		partitionOf[k] = r.Partition
		used[r.Partition] = true
		if r.Partition != producedTo[k] {
			t.Fatalf("key %s consumed from partition %d, produced to %d", k, r.Partition, producedTo[k])
		}
		if string(r.Value) != fmt.Sprint(next[k]) {
			t.Fatalf("key %s: record %q where %d was next", k, r.Value, next[k])
		}
		next[k]++
	}
	for k := range keys {
		if n := next[fmt.Sprintf("key-%d", k)]; n != perKey {
			t.Fatalf("key-%d: %d records, want %d", k, n, perKey)
		}
	}
	if len(used) < partitions/2 {
		t.Fatalf("%d keys landed in only %d of %d partitions", keys, len(used), partitions)
	}
}

func TestKafkaHeadersAndTimestampsPreserved(t *testing.T) {
	b := startKafkaBroker(t)
	const topic = "headers"
	cl := newKafkaClient(t, b.kafkaAddr, kgo.DefaultProduceTopic(topic))
	createTopic(t, cl, topic, 1, nil)
	base := time.Now().Add(-time.Hour).Truncate(time.Millisecond)
	var records []*kgo.Record
	for i := range 50 {
		r := &kgo.Record{
			Key:   fmt.Appendf(nil, "k%d", i),
			Value: fmt.Appendf(nil, "v%d", i),
			// Out of order on purpose, millisecond precision, spread over an hour.
			Timestamp: base.Add(time.Duration((i*37)%50) * time.Minute).Add(time.Duration(i) * time.Millisecond),
		}
		switch i % 4 {
		case 0:
		case 1:
			r.Headers = []kgo.RecordHeader{{Key: "trace", Value: fmt.Appendf(nil, "id-%d", i)}}
		case 2:
			r.Headers = []kgo.RecordHeader{{Key: "dup", Value: []byte("a")}, {Key: "dup", Value: []byte("b")}, {Key: "", Value: []byte{}}}
		case 3:
			r.Headers = []kgo.RecordHeader{{Key: "bin\x00ary", Value: []byte{0, 1, 2, 0xff}}, {Key: "ünïcode", Value: bytes.Repeat([]byte{'h'}, 1000)}}
		}
		records = append(records, r)
	}
	want := make([]kgo.Record, len(records))
	for i, r := range records {
		want[i] = *r
	}
	produceSync(t, cl, records...)
	got := consume(t, b.kafkaAddr, len(records), topic)
	for i, r := range got {
		w := want[i]
		if !bytes.Equal(r.Key, w.Key) || !bytes.Equal(r.Value, w.Value) {
			t.Fatalf("record %d: key %q value %q, want %q %q", i, r.Key, r.Value, w.Key, w.Value)
		}
		if !r.Timestamp.Equal(w.Timestamp) {
			t.Fatalf("record %d: timestamp %v, want %v", i, r.Timestamp, w.Timestamp)
		}
		if len(r.Headers) != len(w.Headers) {
			t.Fatalf("record %d: headers %+v, want %+v", i, r.Headers, w.Headers)
		}
		for j := range r.Headers {
			if r.Headers[j].Key != w.Headers[j].Key || !bytes.Equal(r.Headers[j].Value, w.Headers[j].Value) {
				t.Fatalf("record %d header %d: %q=%q, want %q=%q", i, j, r.Headers[j].Key, r.Headers[j].Value, w.Headers[j].Key, w.Headers[j].Value)
			}
		}
	}
}

func TestKafkaAcks(t *testing.T) {
	b := startKafkaBroker(t)
	f := func(name string, acks kgo.Acks, idempotent bool) {
		t.Run(name, func(t *testing.T) {
			topic := "acks-" + name
			opts := []kgo.Opt{kgo.RequiredAcks(acks)}
			if !idempotent {
				opts = append(opts, kgo.DisableIdempotentWrite())
			}
			cl := newKafkaClient(t, b.kafkaAddr, opts...)
			createTopic(t, cl, topic, 1, nil)
			records := valueRecords(topic, name, 200)
			produceSync(t, cl, records...)
			if name != "0" {
				for i, r := range records {
					if r.Offset != int64(i) {
						t.Fatalf("record %d acknowledged at offset %d", i, r.Offset)
					}
				}
			}
			// acks=0 gets no response: the records show up for a consumer.
			got := consume(t, b.kafkaAddr, len(records), topic)
			for i, r := range got {
				if string(r.Value) != string(records[i].Value) || r.Offset != int64(i) {
					t.Fatalf("record %d: %q at offset %d, want %q", i, r.Value, r.Offset, records[i].Value)
				}
			}
			// The connection that sent acks=0 produces keeps working.
			produceSync(t, cl, &kgo.Record{Topic: topic, Value: []byte("after")})
			want := int64(len(records)) + 1
			if name == "0" {
				waitHighWatermark(t, b.kafkaAddr, topic, 0, want)
			} else if got := listOffset(t, b.kafkaAddr, topic, 0, -1).Offset; got != want {
				t.Fatalf("high watermark %d right after the acknowledgement, want %d", got, want)
			}
		})
	}
	f("0", kgo.NoAck(), false)
	f("1", kgo.LeaderAck(), false)
	f("all", kgo.AllISRAcks(), true)
}

// fetchWriteHook signals every Fetch request kgo writes to a broker.
type fetchWriteHook chan struct{}

func (h fetchWriteHook) OnBrokerWrite(_ kgo.BrokerMetadata, key int16, _ int, _, _ time.Duration, err error) {
	if key == kmsg.Fetch.Int16() && err == nil {
		select {
		case h <- struct{}{}:
		default:
		}
	}
}

func TestKafkaLongPollReturnsWhenDataArrives(t *testing.T) {
	b := startKafkaBroker(t)
	const topic = "long-poll"
	producer := newKafkaClient(t, b.kafkaAddr, kgo.DefaultProduceTopic(topic))
	createTopic(t, producer, topic, 1, nil)

	written := make(fetchWriteHook, 1)
	consumer := newKafkaClient(t, b.kafkaAddr, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchMaxWait(20*time.Second), kgo.WithHooks(written))
	polled := make(chan kgo.Fetches, 1)
	go func() { polled <- consumer.PollFetches(context.Background()) }()
	// Produce once the consumer's fetch is on its way, so that it waits in the broker.
	select {
	case <-written:
	case <-time.After(30 * time.Second):
		t.Fatal("the consumer sent no fetch within 30 s")
	}
	start := time.Now()
	produceSync(t, producer, &kgo.Record{Value: []byte("wake up")})
	select {
	case fetches := <-polled:
		for _, e := range fetches.Errors() {
			t.Fatalf("fetch: %v", e.Err)
		}
		recs := fetches.Records()
		if len(recs) != 1 || string(recs[0].Value) != "wake up" {
			t.Fatalf("poll returned %d records", len(recs))
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("the long poll did not return within 10 s of the produce (fetch max wait 20 s)")
	}
	t.Logf("poll returned %v after the produce started", time.Since(start))

	// Data arriving in any partition of the request ends the wait, not only the first one.
	const multi = "long-poll-multi"
	createTopic(t, producer, multi, 4, nil)
	written2 := make(fetchWriteHook, 1)
	consumer2 := newKafkaClient(t, b.kafkaAddr, kgo.ConsumeTopics(multi), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchMaxWait(20*time.Second), kgo.WithHooks(written2))
	polled2 := make(chan kgo.Fetches, 1)
	go func() { polled2 <- consumer2.PollFetches(context.Background()) }()
	select {
	case <-written2:
	case <-time.After(30 * time.Second):
		t.Fatal("the consumer sent no fetch within 30 s")
	}
	partitioned := newKafkaClient(t, b.kafkaAddr, kgo.DefaultProduceTopic(multi), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	produceSync(t, partitioned, &kgo.Record{Partition: 3, Value: []byte("last partition")})
	select {
	case fetches := <-polled2:
		for _, e := range fetches.Errors() {
			t.Fatalf("fetch: %v", e.Err)
		}
		recs := fetches.Records()
		if len(recs) != 1 || recs[0].Partition != 3 {
			t.Fatalf("poll returned %d records", len(recs))
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("the long poll did not return within 10 s of a produce to partition 3 (fetch max wait 20 s)")
	}
}

func TestKafkaMillionRecords(t *testing.T) {
	if testing.Short() {
		t.Skip("a million records")
	}
	b := startKafkaBroker(t)
	const topic, n = "million", 1_000_000
	start := time.Now()
	cl := newKafkaClient(t, b.kafkaAddr, kgo.DefaultProduceTopic(topic))
	createTopic(t, cl, topic, 1, nil)
	var failed atomic.Int64
	var firstErr atomic.Value
	c := ctx(t, 2*time.Minute)
	for i := range n {
		v := make([]byte, 100)
		binary.BigEndian.PutUint64(v, uint64(i))
		copy(v[8:], "a hundred-byte value, padded: ..........................................................")
		cl.Produce(c, &kgo.Record{Value: v}, func(_ *kgo.Record, err error) {
			if err != nil && failed.Add(1) == 1 {
				firstErr.Store(err)
			}
		})
	}
	if err := cl.Flush(c); err != nil {
		t.Fatal(err)
	}
	if failed.Load() > 0 {
		t.Fatalf("%d records failed; first: %v", failed.Load(), firstErr.Load())
	}
	produced := time.Since(start)

	consumer := newKafkaClient(t, b.kafkaAddr, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	next := int64(0)
	for next < n {
		fetches := consumer.PollFetches(c)
		if c.Err() != nil {
			t.Fatalf("consumed %d of %d records before the deadline", next, n)
		}
		for _, e := range fetches.Errors() {
			t.Fatalf("fetch: %v", e.Err)
		}
		for it := fetches.RecordIter(); !it.Done(); {
			r := it.Next()
			if r.Offset != next || len(r.Value) != 100 || int64(binary.BigEndian.Uint64(r.Value)) != next {
				t.Fatalf("record at offset %d (value %d, %d bytes), want offset %d", r.Offset, binary.BigEndian.Uint64(r.Value), len(r.Value), next)
			}
			next++
		}
	}
	t.Logf("produced %d records in %v, consumed in %v", n, produced, time.Since(start)-produced)
}

// kafkaConn is a plain connection speaking the Kafka protocol, for requests at a chosen version
// and for malformed input.
type kafkaConn struct {
	t    *testing.T
	conn net.Conn
	corr int32
}

// dialKafka connects to addr, retrying until the listener answers (for up to 30 s).
func dialKafka(t *testing.T, addr string) *kafkaConn {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err == nil {
			t.Cleanup(func() { conn.Close() })
			return &kafkaConn{t: t, conn: conn}
		}
		if time.Now().After(deadline) {
			t.Fatalf("dial %s: %v", addr, err)
		}
		time.Sleep(50 * time.Millisecond) // polling interval of a condition with a deadline
	}
}

// write sends one frame: size, request header v1 (v2 when flexible), body. It returns the
// correlation id.
func (k *kafkaConn) write(key, version int16, flexibleHeader bool, body []byte) int32 {
	k.t.Helper()
	k.corr++
	b := binary.BigEndian.AppendUint32(nil, 0)
	b = binary.BigEndian.AppendUint16(b, uint16(key))
	b = binary.BigEndian.AppendUint16(b, uint16(version))
	b = binary.BigEndian.AppendUint32(b, uint32(k.corr))
	b = binary.BigEndian.AppendUint16(b, uint16(len("raw-test")))
	b = append(b, "raw-test"...)
	if flexibleHeader {
		b = append(b, 0)
	}
	b = append(b, body...)
	binary.BigEndian.PutUint32(b, uint32(len(b)-4))
	k.writeBytes(b)
	return k.corr
}

func (k *kafkaConn) writeBytes(b []byte) {
	k.t.Helper()
	_ = k.conn.SetWriteDeadline(time.Now().Add(30 * time.Second))
	if _, err := k.conn.Write(b); err != nil {
		k.t.Fatal(err)
	}
}

// read returns the next response frame's correlation id and the bytes after it.
func (k *kafkaConn) read() (int32, []byte) {
	k.t.Helper()
	_ = k.conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	var size [4]byte
	if _, err := io.ReadFull(k.conn, size[:]); err != nil {
		k.t.Fatalf("reading a response: %v", err)
	}
	b := make([]byte, binary.BigEndian.Uint32(size[:]))
	if _, err := io.ReadFull(k.conn, b); err != nil || len(b) < 4 {
		k.t.Fatalf("reading a response of %d bytes: %v", len(b), err)
	}
	return int32(binary.BigEndian.Uint32(b)), b[4:]
}

// do sends req at its version and decodes the response at that version.
func (k *kafkaConn) do(req kmsg.Request) kmsg.Response {
	k.t.Helper()
	corr := k.write(req.Key(), req.GetVersion(), req.IsFlexible(), req.AppendTo(nil))
	got, body := k.read()
	if got != corr {
		k.t.Fatalf("response for correlation id %d, want %d", got, corr)
	}
	resp := req.ResponseKind()
	resp.SetVersion(req.GetVersion())
	if resp.IsFlexible() && req.Key() != kmsg.ApiVersions.Int16() {
		if len(body) == 0 || body[0] != 0 {
			k.t.Fatalf("flexible response header without an empty tag section")
		}
		body = body[1:]
	}
	if err := resp.ReadFrom(body); err != nil {
		k.t.Fatalf("%s v%d response: %v", kmsg.NameForKey(req.Key()), req.GetVersion(), err)
	}
	return resp
}

// expectClosed asserts that the server closes the connection: a read ends in EOF (or a reset,
// when unread input was left behind) within 20 s.
func (k *kafkaConn) expectClosed() {
	k.t.Helper()
	_ = k.conn.SetReadDeadline(time.Now().Add(20 * time.Second))
	buf := make([]byte, 64)
	for {
		n, err := k.conn.Read(buf)
		if err == nil {
			k.t.Fatalf("read %d bytes from a connection that should be closed", n)
		}
		if errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET) {
			return
		}
		k.t.Fatalf("connection not closed: %v", err)
	}
}

// kafkaBatch encodes a magic-2 batch of n records with the given attributes and producer fields
// and a valid CRC-32C (Castagnoli, over the bytes from attributes on).
func kafkaBatch(n int, attributes int16, producerID int64, epoch int16, baseSequence int32) []byte {
	ts := time.Now().UnixMilli()
	var records []byte
	for i := range n {
		r := kmsg.Record{OffsetDelta: int32(i), Key: fmt.Appendf(nil, "k%d", i), Value: fmt.Appendf(nil, "raw value %d seq %d", i, baseSequence+int32(i))}
		r.Length = int32(len(r.AppendTo(nil)) - 1) // the placeholder length 0 takes one byte
		records = r.AppendTo(records)
	}
	b := kmsg.RecordBatch{
		PartitionLeaderEpoch: -1,
		Magic:                2,
		Attributes:           attributes,
		LastOffsetDelta:      int32(n - 1),
		FirstTimestamp:       ts,
		MaxTimestamp:         ts,
		ProducerID:           producerID,
		ProducerEpoch:        epoch,
		FirstSequence:        baseSequence,
		NumRecords:           int32(n),
		Records:              records,
		Length:               int32(49 + len(records)),
	}
	out := b.AppendTo(nil)
	binary.BigEndian.PutUint32(out[17:], crc32.Checksum(out[21:], crc32.MakeTable(crc32.Castagnoli)))
	return out
}

// produceRequest builds a Produce request (acks all) of records for one partition.
func produceRequest(topic string, partition int32, records []byte) *kmsg.ProduceRequest {
	req := kmsg.NewPtrProduceRequest()
	req.Acks, req.TimeoutMillis = -1, 30000
	p := kmsg.NewProduceRequestTopicPartition()
	p.Partition, p.Records = partition, records
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic, rt.Partitions = topic, []kmsg.ProduceRequestTopicPartition{p}
	req.Topics = []kmsg.ProduceRequestTopic{rt}
	return req
}

// produceRaw sends one partition's records with cl.Request and returns the partition's answer.
func produceRaw(t *testing.T, cl *kgo.Client, topic string, partition int32, records []byte) kmsg.ProduceResponseTopicPartition {
	t.Helper()
	resp := request[*kmsg.ProduceResponse](t, cl, produceRequest(topic, partition, records))
	if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
		t.Fatalf("produce response %+v", resp)
	}
	return resp.Topics[0].Partitions[0]
}
