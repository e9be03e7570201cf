package client

import (
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/thorstream/thorstream/client/internal/fakebroker"
	"github.com/thorstream/thorstream/codec/batch"
	"github.com/thorstream/thorstream/codec/errcode"
	"github.com/thorstream/thorstream/codec/murmur2"
	"github.com/thorstream/thorstream/codec/proto"
)

// results collects producer callbacks.
type results struct {
	mu   sync.Mutex
	recs []*Record
	errs []error
	wg   sync.WaitGroup
}

func (r *results) callback() func(*Record, error) {
	r.wg.Add(1)
	return func(rec *Record, err error) {
		r.mu.Lock()
		r.recs = append(r.recs, rec)
		r.errs = append(r.errs, err)
		r.mu.Unlock()
		r.wg.Done()
	}
}

func newProducer(t testing.TB, c *Client, opts ProducerOptions) *Producer {
	t.Helper()
	p := NewProducer(c, opts)
	t.Cleanup(func() { p.Close() })
	return p
}

func TestProduceSyncFillsOffsets(t *testing.T) {
	fc := newCluster(t, fakebroker.Options{})
	mustCreate(t, fc, "t", 2)
	c := newClient(t, fc)
	p := newProducer(t, c, ProducerOptions{})
	ctx := testContext(t)

	var recs []*Record
	for i := 0; i < 10; i++ {
		recs = append(recs, &Record{Topic: "t", Partition: 1, Value: []byte(strconv.Itoa(i)),
			Headers: []batch.RecordHeader{{Key: "h", Value: []byte("x")}}})
	}
	if err := p.ProduceSync(ctx, recs...); err != nil {
		t.Fatal(err)
	}
	stored := fc.Records("t", 1)
	if len(stored) != 10 {
		t.Fatalf("stored %d records", len(stored))
	}
	for i, r := range recs {
		if r.Partition != 1 || r.Offset != int64(i) {
			t.Errorf("record %d: partition %d offset %d", i, r.Partition, r.Offset)
		}
		if string(stored[i].Value) != strconv.Itoa(i) || len(stored[i].Headers) != 1 {
			t.Errorf("stored %d = %+v", i, stored[i])
		}
	}
	// Offsets keep counting across requests.
	more := &Record{Topic: "t", Partition: 1, Value: []byte("10")}
	if err := p.ProduceSync(ctx, more); err != nil || more.Offset != 10 {
		t.Fatalf("next record: offset %d, %v", more.Offset, err)
	}
}

// Records are batched per partition up to BatchBytes, and nothing is sent before linger ends
// unless a batch is full or Flush is called.
func TestBatching(t *testing.T) {
	fc := newCluster(t, fakebroker.Options{})
	mustCreate(t, fc, "t", 1)
	c := newClient(t, fc)
	p := newProducer(t, c, ProducerOptions{Linger: time.Hour, BatchBytes: 1024})
	ctx := testContext(t)
	value := make([]byte, 100)

	var res results
	for i := 0; i < 5; i++ { // about 600 bytes: one open batch
		p.Produce(ctx, &Record{Topic: "t", Partition: 0, Value: value}, res.callback())
	}
	// The sender has nothing to send: a Ping on the same connection proves no Produce went out
	// before it (the broker answers in order).
	if _, _, err := c.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	if n := fc.Count(proto.KeyProduce); n != 0 {
		t.Fatalf("%d produce requests before linger or flush", n)
	}
	for i := 5; i < 100; i++ {
		p.Produce(ctx, &Record{Topic: "t", Partition: 0, Value: value}, res.callback())
	}
	if err := p.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	res.wg.Wait()
	total := 0
	batches := 0
	for _, l := range fc.ProduceLog() {
		total += l.Records
		batches += l.Batches
	}
	if total != 100 {
		t.Fatalf("stored %d records", total)
	}
	// 100 records of ~110 bytes in batches of at most 1 KiB: at least 11 batches, and never one
	// per record.
	if batches < 11 || batches > 20 {
		t.Fatalf("%d batches", batches)
	}
	for i, rec := range res.recs {
		if res.errs[i] != nil || rec.Offset != int64(i) {
			t.Fatalf("record %d: offset %d, %v", i, rec.Offset, res.errs[i])
		}
	}
}

func TestKeyPartitioner(t *testing.T) {
	fc := newCluster(t, fakebroker.Options{})
	mustCreate(t, fc, "t", 7)
	c := newClient(t, fc)
	p := newProducer(t, c, ProducerOptions{})
	ctx := testContext(t)
	var recs []*Record
	for i := 0; i < 50; i++ {
		recs = append(recs, NewRecord("t", []byte(fmt.Sprintf("key-%d", i)), []byte("v")))
	}
	if err := p.ProduceSync(ctx, recs...); err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		if want := murmur2.Partition(r.Key, 7); r.Partition != want {
			t.Errorf("key %s: partition %d, want %d", r.Key, r.Partition, want)
		}
		stored := fc.Records("t", r.Partition)
		if r.Offset >= int64(len(stored)) || string(stored[r.Offset].Key) != string(r.Key) {
			t.Errorf("key %s not stored at %d/%d", r.Key, r.Partition, r.Offset)
		}
	}
}

func TestKeyPartitionKafkaVectors(t *testing.T) {
	// murmur2 values from Kafka's UtilsTest; the partition is toPositive(hash) % n.
	f := func(key string, hash int32) {
		t.Helper()
		for _, n := range []int32{1, 3, 12, 100} {
			want := (hash & 0x7fffffff) % n
			if got := keyPartition([]byte(key), n); got != want {
				t.Errorf("keyPartition(%q, %d) = %d, want %d", key, n, got, want)
			}
		}
	}
	f("21", -973932308)
	f("foobar", -790332482)
	f("a-little-bit-long-string", -985981536)
	f("a-little-bit-longer-string", -1486304829)
	f("lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58897971)
	f("abc", 479470107)
}

// Keyless records stick to one partition until its batch is sealed, then move on.
func TestStickyPartitioner(t *testing.T) {
	fc := newCluster(t, fakebroker.Options{})
	mustCreate(t, fc, "t", 4)
	c := newClient(t, fc)
	p := newProducer(t, c, ProducerOptions{Linger: time.Hour, BatchBytes: 1024})
	ctx := testContext(t)
	var res results
	var recs []*Record
	value := make([]byte, 90)
	for i := 0; i < 200; i++ {
		r := NewRecord("t", nil, value)
		recs = append(recs, r)
		p.Produce(ctx, r, res.callback())
	}
	if err := p.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	res.wg.Wait()
	// Runs of consecutive records on the same partition: each is one batch.
	runs := 1
	used := map[int32]bool{recs[0].Partition: true}
	for i := 1; i < len(recs); i++ {
		if recs[i].Partition != recs[i-1].Partition {
			runs++
		}
		used[recs[i].Partition] = true
	}
	batches := 0
	for _, l := range fc.ProduceLog() {
		batches += l.Batches
	}
	if runs != batches {
		t.Fatalf("%d runs of records on one partition, %d batches", runs, batches)
	}
	if len(used) < 2 {
		t.Fatalf("all %d batches went to one partition", batches)
	}
	// With ~100-byte records and 1 KiB batches, each run but the last holds 9 records.
	size := batch.EstimateRecordSize(nil, value, nil)
	perBatch := 0
	for n := batch.HeaderSize; n+size <= 1024; n += size {
		perBatch++
	}
	start := 0
	for i := 1; i <= len(recs); i++ {
		if i == len(recs) || recs[i].Partition != recs[i-1].Partition {
			if i < len(recs) && i-start < perBatch {
				t.Errorf("run at %d holds %d records, batch holds at least %d", start, i-start, perBatch)
			}
			start = i
		}
	}
}

// Partition requests go to each partition's leader; a moved leader is found through the hint
// in NOT_LEADER_OR_FOLLOWER.
func TestRoutingToLeaders(t *testing.T) {
	fc := newCluster(t, fakebroker.Options{Nodes: 3})
	mustCreate(t, fc, "t", 6)
	c := newClient(t, fc)
	// A long linger: batches go out only when ProduceSync flushes, all in the same round.
	p := newProducer(t, c, ProducerOptions{RetryBackoff: time.Millisecond, Linger: time.Hour})
	ctx := testContext(t)
	produceAll := func() {
		t.Helper()
		var recs []*Record
		for part := int32(0); part < 6; part++ {
			recs = append(recs, &Record{Topic: "t", Partition: part, Value: []byte("v")})
		}
		if err := p.ProduceSync(ctx, recs...); err != nil {
			t.Fatal(err)
		}
	}
	produceAll()
	if n := fc.Count(proto.KeyProduce); n != 3 {
		t.Errorf("%d produce requests for 6 partitions on 3 brokers, want one per broker", n)
	}
	for _, l := range fc.ProduceLog() {
		if l.Node != l.Partition%3 {
			t.Errorf("partition %d served by node %d", l.Partition, l.Node)
		}
	}
	metadataBefore := fc.Count(proto.KeyMetadata)
	fc.SetLeader("t", 0, 2)
	before := len(fc.ProduceLog())
	produceAll()
	for _, l := range fc.ProduceLog()[before:] {
		want := l.Partition % 3
		if l.Partition == 0 {
			want = 2
		}
		if l.Node != want {
			t.Errorf("after move: partition %d served by node %d", l.Partition, l.Node)
		}
	}
	if n := fc.Count(proto.KeyMetadata); n != metadataBefore {
		t.Errorf("the leader hint should avoid a metadata request (%d → %d)", metadataBefore, n)
	}
}

// Retried batches never overtake later ones: the partition's log is in produce order, with
// every record once.
func TestOrderingUnderRetry(t *testing.T) {
	for _, fault := range []string{"error", "drop"} {
		t.Run(fault, func(t *testing.T) {
			fc := newCluster(t, fakebroker.Options{})
			mustCreate(t, fc, "t", 2)
			var faults atomic.Int32
			fc.Control(func(r *fakebroker.Request) *fakebroker.Action {
				req, ok := r.Body.(*proto.ProduceRequest)
				if !ok {
					return nil
				}
				// Fail every third produce request, up to 6 of them.
				if n := fc.Count(proto.KeyProduce); n%3 != 1 || faults.Add(1) > 6 {
					return nil
				}
				_ = req
				if fault == "drop" {
					return &fakebroker.Action{Drop: true}
				}
				return &fakebroker.Action{Error: errcode.NotEnoughReplicas}
			})
			c := newClient(t, fc)
			p := newProducer(t, c, ProducerOptions{BatchBytes: 512, Linger: -1, RetryBackoff: time.Millisecond})
			ctx := testContext(t)
			var res results
			var recs []*Record
			for i := 0; i < 2000; i++ {
				r := &Record{Topic: "t", Partition: int32(i % 2), Value: []byte(strconv.Itoa(i))}
				recs = append(recs, r)
				p.Produce(ctx, r, res.callback())
			}
			if err := p.Flush(ctx); err != nil {
				t.Fatal(err)
			}
			res.wg.Wait()
			for i, err := range res.errs {
				if err != nil {
					t.Fatalf("record %d: %v", i, err)
				}
			}
			if faults.Load() == 0 {
				t.Fatal("no fault was injected")
			}
			for part := int32(0); part < 2; part++ {
				stored := fc.Records("t", part)
				if len(stored) != 1000 {
					t.Fatalf("partition %d holds %d records", part, len(stored))
				}
				for j, s := range stored {
					if want := strconv.Itoa(j*2 + int(part)); string(s.Value) != want {
						t.Fatalf("partition %d offset %d holds %s, want %s", part, j, s.Value, want)
					}
				}
			}
			for i, r := range recs {
				if r.Offset != int64(i/2) {
					t.Fatalf("record %d got offset %d", i, r.Offset)
				}
			}
		})
	}
}

func TestNonRetryableAndExhaustedRetries(t *testing.T) {
	fc := newCluster(t, fakebroker.Options{})
	mustCreate(t, fc, "t", 1)
	var code atomic.Int32
	code.Store(int32(errcode.MessageTooLarge))
	fc.Control(func(r *fakebroker.Request) *fakebroker.Action {
		if r.Key == proto.KeyProduce {
			return &fakebroker.Action{Error: errcode.Code(code.Load())}
		}
		return nil
	})
	c := newClient(t, fc)
	p := newProducer(t, c, ProducerOptions{Retries: 2, RetryBackoff: time.Millisecond})
	ctx := testContext(t)

	err := p.ProduceSync(ctx, &Record{Topic: "t", Value: []byte("x")})
	if errcode.Of(err) != errcode.MessageTooLarge {
		t.Fatalf("err = %v, want MESSAGE_TOO_LARGE", err)
	}
	if n := fc.Count(proto.KeyProduce); n != 1 {
		t.Fatalf("non-retryable error sent %d times", n)
	}

	code.Store(int32(errcode.NotEnoughReplicas))
	err = p.ProduceSync(ctx, &Record{Topic: "t", Value: []byte("x")})
	if errcode.Of(err) != errcode.NotEnoughReplicas {
		t.Fatalf("err = %v, want NOT_ENOUGH_REPLICAS", err)
	}
	if n := fc.Count(proto.KeyProduce) - 1; n != 3 {
		t.Fatalf("retryable error sent %d times, want 1 + 2 retries", n)
	}
}

func TestAcksNone(t *testing.T) {
	fc := newCluster(t, fakebroker.Options{})
	mustCreate(t, fc, "t", 1)
	c := newClient(t, fc)
	p := newProducer(t, c, ProducerOptions{Acks: AcksNone})
	ctx := testContext(t)
	recs := []*Record{{Topic: "t", Value: []byte("a")}, {Topic: "t", Value: []byte("b")}}
	if err := p.ProduceSync(ctx, recs...); err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		if r.Offset != -1 {
			t.Errorf("acks=0 offset %d, want -1", r.Offset)
		}
	}
	// The broker answers in order on one connection: once the Ping is answered, the produce
	// request before it was served.
	if _, _, err := c.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	if n := len(fc.Records("t", 0)); n != 2 {
		t.Fatalf("stored %d records", n)
	}
}

func TestProduceErrorsBeforeSending(t *testing.T) {
	fc := newCluster(t, fakebroker.Options{})
	mustCreate(t, fc, "t", 1)
	c := newClient(t, fc)
	p := newProducer(t, c, ProducerOptions{})
	ctx := testContext(t)
	f := func(r *Record, want errcode.Code) {
		t.Helper()
		if err := p.ProduceSync(ctx, r); errcode.Of(err) != want {
			t.Errorf("ProduceSync(%+v) = %v, want %v", r, err, want)
		}
	}
	f(&Record{Topic: "t", Partition: 3}, errcode.UnknownTopicOrPartition)
	f(&Record{Topic: "missing"}, errcode.UnknownTopicOrPartition)
	if err := p.ProduceSync(ctx, &Record{Partition: -1}); err != ErrNoTopic {
		t.Errorf("no topic: %v", err)
	}
	p.Close()
	if err := p.ProduceSync(ctx, &Record{Topic: "t"}); err != ErrProducerClosed {
		t.Errorf("after Close: %v", err)
	}
}
