package client

import (
	"context"
	"strconv"
	"testing"

	"github.com/thorstream/thorstream/client/internal/fakebroker"
	"github.com/thorstream/thorstream/codec/batch"
	"github.com/thorstream/thorstream/codec/compress"
	"github.com/thorstream/thorstream/codec/errcode"
	"github.com/thorstream/thorstream/codec/proto"
)

// appendValues stores one batch of values in a partition.
func appendValues(fc *fakebroker.Cluster, topic string, p int32, values ...string) {
	var b batch.Builder
	b.Reset()
	for i, v := range values {
		b.Append([]byte("k"+v), []byte(v), 1000+int64(i), []batch.RecordHeader{{Key: "i", Value: []byte(v)}})
	}
	fc.AppendBatch(topic, p, b.Finish())
}

// pollN polls until n records arrived.
func pollN(t *testing.T, ctx context.Context, c *Consumer, n int) []*Record {
	t.Helper()
	var out []*Record
	for len(out) < n {
		recs, err := c.Poll(ctx)
		if err != nil {
			t.Fatalf("Poll after %d records: %v", len(out), err)
		}
		out = append(out, recs...)
	}
	return out
}

func values(recs []*Record) []string {
	var out []string
	for _, r := range recs {
		out = append(out, string(r.Value))
	}
	return out
}

func TestSubscribeFromEarliest(t *testing.T) {
	fc := newCluster(t, fakebroker.Options{Nodes: 2})
	mustCreate(t, fc, "t", 2)
	appendValues(fc, "t", 0, "a", "b", "c")
	appendValues(fc, "t", 1, "x")
	appendValues(fc, "t", 1, "y", "z")
	cl := newClient(t, fc)
	c := NewConsumer(cl, ConsumerOptions{ResetOffset: ResetEarliest})
	defer c.Close()
	c.Subscribe("t")
	ctx := testContext(t)
	recs := pollN(t, ctx, c, 6)
	if len(recs) != 6 {
		t.Fatalf("got %d records", len(recs))
	}
	per := map[int32][]string{}
	for _, r := range recs {
		per[r.Partition] = append(per[r.Partition], string(r.Value)+"@"+strconv.FormatInt(r.Offset, 10))
		if string(r.Key) != "k"+string(r.Value) || len(r.Headers) != 1 || string(r.Headers[0].Value) != string(r.Value) || r.Timestamp.UnixMilli() < 1000 {
			t.Errorf("record %+v", r)
		}
	}
	if got := per[0]; len(got) != 3 || got[0] != "a@0" || got[2] != "c@2" {
		t.Errorf("partition 0: %v", got)
	}
	if got := per[1]; len(got) != 3 || got[0] != "x@0" || got[2] != "z@2" {
		t.Errorf("partition 1: %v", got)
	}
	if p := c.Position(TopicPartition{"t", 0}); p != 3 {
		t.Errorf("Position = %d", p)
	}
	if n := fc.Count(proto.KeyFetch); n != 2 {
		t.Errorf("%d fetches: want one per broker", n) // both partitions answered in one round
	}
}

// A Seek into the middle of a batch skips the batch's earlier records.
func TestSeekSkipsRecordsBelowOffset(t *testing.T) {
	fc := newCluster(t, fakebroker.Options{})
	mustCreate(t, fc, "t", 1)
	appendValues(fc, "t", 0, "0", "1", "2", "3", "4")
	c := NewConsumer(newClient(t, fc), ConsumerOptions{})
	tp := TopicPartition{"t", 0}
	c.Assign([]TopicPartition{tp})
	c.Seek(tp, 3)
	got := values(pollN(t, testContext(t), c, 2))
	if len(got) != 2 || got[0] != "3" || got[1] != "4" {
		t.Fatalf("got %v", got)
	}
}

func TestDefaultStartsAtLatestAndLongPolls(t *testing.T) {
	fc := newCluster(t, fakebroker.Options{})
	mustCreate(t, fc, "t", 1)
	appendValues(fc, "t", 0, "old")
	cl := newClient(t, fc)
	c := NewConsumer(cl, ConsumerOptions{})
	c.Subscribe("t")
	// Append only once the consumer is waiting in its first Fetch: its position was resolved
	// (to the latest offset) before.
	first := make(chan struct{})
	fc.Control(func(r *fakebroker.Request) *fakebroker.Action {
		if r.Key == proto.KeyFetch {
			select {
			case <-first:
			default:
				close(first)
				go appendValues(fc, "t", 0, "new")
			}
		}
		return nil
	})
	got := values(pollN(t, testContext(t), c, 1))
	if len(got) != 1 || got[0] != "new" {
		t.Fatalf("got %v", got)
	}
}

func TestCommitAndResume(t *testing.T) {
	fc := newCluster(t, fakebroker.Options{})
	mustCreate(t, fc, "t", 1)
	appendValues(fc, "t", 0, "a", "b", "c")
	cl := newClient(t, fc)
	ctx := testContext(t)
	tp := TopicPartition{"t", 0}

	c := NewConsumer(cl, ConsumerOptions{Group: "g", ResetOffset: ResetEarliest})
	if off, err := c.Committed(ctx, tp); err != nil || off != -1 {
		t.Fatalf("Committed before commit = %d, %v", off, err)
	}
	c.Subscribe("t")
	pollN(t, ctx, c, 3)
	if err := c.CommitOffsets(ctx, map[TopicPartition]int64{tp: 2}); err != nil {
		t.Fatal(err)
	}
	if off, err := c.Committed(ctx, tp); err != nil || off != 2 {
		t.Fatalf("Committed = %d, %v", off, err)
	}
	c.Close()

	c2 := NewConsumer(cl, ConsumerOptions{Group: "g", ResetOffset: ResetEarliest})
	c2.Subscribe("t")
	if got := values(pollN(t, ctx, c2, 1)); len(got) != 1 || got[0] != "c" {
		t.Fatalf("resumed at %v", got)
	}
	if err := c2.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if got := fc.Committed("g", "t", 0); got != 3 {
		t.Fatalf("Commit stored %d", got)
	}
	if err := NewConsumer(cl, ConsumerOptions{}).Commit(ctx); err != ErrNoGroup {
		t.Fatalf("Commit without group: %v", err)
	}
}

func TestOffsetOutOfRangeResets(t *testing.T) {
	fc := newCluster(t, fakebroker.Options{})
	mustCreate(t, fc, "t", 1)
	appendValues(fc, "t", 0, "0", "1", "2")
	appendValues(fc, "t", 0, "3", "4")
	fc.SetLogStart("t", 0, 3)
	c := NewConsumer(newClient(t, fc), ConsumerOptions{ResetOffset: ResetEarliest})
	tp := TopicPartition{"t", 0}
	c.Seek(tp, 1)
	got := values(pollN(t, testContext(t), c, 2))
	if len(got) != 2 || got[0] != "3" {
		t.Fatalf("got %v", got)
	}
}

func TestSeekToTimestampAndEnds(t *testing.T) {
	fc := newCluster(t, fakebroker.Options{})
	mustCreate(t, fc, "t", 1)
	appendValues(fc, "t", 0, "a", "b", "c") // timestamps 1000, 1001, 1002
	c := NewConsumer(newClient(t, fc), ConsumerOptions{})
	ctx := testContext(t)
	tp := TopicPartition{"t", 0}
	if err := c.SeekToTimestamp(ctx, tp, 1001); err != nil {
		t.Fatal(err)
	}
	if got := values(pollN(t, ctx, c, 2)); got[0] != "b" {
		t.Fatalf("from timestamp: %v", got)
	}
	c.SeekToBeginning(tp)
	if got := values(pollN(t, ctx, c, 3)); got[0] != "a" {
		t.Fatalf("from beginning: %v", got)
	}
	c.SeekToEnd(tp)
	appendedAfterEnd := make(chan struct{})
	fc.Control(func(r *fakebroker.Request) *fakebroker.Action {
		if r.Key == proto.KeyFetch {
			select {
			case <-appendedAfterEnd:
			default:
				close(appendedAfterEnd)
				go appendValues(fc, "t", 0, "d")
			}
		}
		return nil
	})
	if got := values(pollN(t, ctx, c, 1)); got[0] != "d" {
		t.Fatalf("from end: %v", got)
	}
}

// A moved leader is followed through the hint in the Fetch response.
func TestFetchFollowsLeader(t *testing.T) {
	fc := newCluster(t, fakebroker.Options{Nodes: 2})
	mustCreate(t, fc, "t", 1)
	appendValues(fc, "t", 0, "a")
	cl := newClient(t, fc)
	c := NewConsumer(cl, ConsumerOptions{ResetOffset: ResetEarliest})
	c.Subscribe("t")
	ctx := testContext(t)
	pollN(t, ctx, c, 1)
	fc.SetLeader("t", 0, 1)
	appendValues(fc, "t", 0, "b")
	if got := values(pollN(t, ctx, c, 1)); got[0] != "b" {
		t.Fatalf("got %v", got)
	}
}

func TestFetchNonRetryableError(t *testing.T) {
	fc := newCluster(t, fakebroker.Options{})
	mustCreate(t, fc, "t", 1)
	fc.Control(func(r *fakebroker.Request) *fakebroker.Action {
		if r.Key == proto.KeyFetch {
			return &fakebroker.Action{Error: errcode.InvalidFetchSize}
		}
		return nil
	})
	c := NewConsumer(newClient(t, fc), ConsumerOptions{})
	c.Assign([]TopicPartition{{"t", 0}})
	if _, err := c.Poll(testContext(t)); errcode.Of(err) != errcode.InvalidFetchSize {
		t.Fatalf("Poll = %v", err)
	}
}

func TestDecodePartitionIgnoresTruncatedTail(t *testing.T) {
	var b batch.Builder
	b.Reset()
	b.Append(nil, []byte("a"), 1, nil)
	first := append([]byte(nil), b.Finish()...)
	b.Reset()
	b.Append(nil, []byte("b"), 1, nil)
	second := append([]byte(nil), b.Finish()...)
	batch.SetBaseOffset(second, 1)
	data := append(first, second[:len(second)-3]...)
	recs, next, err := decodePartition(nil, "t", 0, data, 0)
	if err != nil || len(recs) != 1 || next != 1 {
		t.Fatalf("decodePartition = %d records, next %d, %v", len(recs), next, err)
	}
}

func TestPollDecodesCompressedBatches(t *testing.T) {
	fc := newCluster(t, fakebroker.Options{})
	mustCreate(t, fc, "t", 1)
	for _, codec := range []int{batch.CodecGzip, batch.CodecSnappy, batch.CodecLZ4, batch.CodecZstd} {
		var b batch.Builder
		b.Reset()
		for i := 0; i < 3; i++ {
			b.Append(nil, []byte(strconv.Itoa(codec*10+i)), 1, nil)
		}
		compressed, err := compress.CompressBatch(nil, b.Finish(), codec)
		if err != nil {
			t.Fatal(err)
		}
		fc.AppendBatch("t", 0, compressed)
	}
	c := NewConsumer(newClient(t, fc), ConsumerOptions{})
	tp := TopicPartition{"t", 0}
	c.Seek(tp, 1) // inside the first batch
	got := values(pollN(t, testContext(t), c, 11))
	want := []string{"11", "12", "20", "21", "22", "30", "31", "32", "40", "41", "42"}
	if len(got) != len(want) {
		t.Fatalf("got %v", got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("got %v, want %v", got, want)
		}
	}
}
