package cluster

import (
	"testing"

	"github.com/thorstream/thorstream/codec/batch"
	"github.com/thorstream/thorstream/codec/errcode"
	"github.com/thorstream/thorstream/log/vfs"
)

// idempotentBatch is a batch of n records from producer pid, epoch 0, starting at sequence seq.
func idempotentBatch(pid int64, seq int32, n int) []byte {
	var b batch.Builder
	b.ResetProducer(pid, 0, seq)
	for i := 0; i < n; i++ {
		b.Append(nil, []byte("v"), testNow.UnixMilli(), nil)
	}
	return append([]byte(nil), b.Finish()...)
}

func appendOne(t *testing.T, r *Replica, records []byte) AppendResult {
	t.Helper()
	c := newCollector()
	if err := r.Submit(&AppendRequest{Records: records, Owner: c}); err != nil {
		t.Fatal(err)
	}
	return c.next(t).res
}

// TestProducerStateSurvivesCrashWithSnapshot: the replica snapshots its producer state after a
// sync once enough was appended; a crash (no Close) followed by a restart reads that snapshot and
// the batches after it, and still recognises a retried batch and a sequence gap.
func TestProducerStateSurvivesCrashWithSnapshot(t *testing.T) {
	fs := vfs.NewMem()
	cfg, err := BuildTopicConfig(nil, DefaultDefaults)
	if err != nil {
		t.Fatal(err)
	}
	open := func() *Replica {
		return NewReplica(ReplicaOptions{Topic: "t", Log: openLog(t, fs, "/p"), Config: cfg,
			Fsync: FsyncPolicy{Mode: FsyncAlways}, Now: fixedNow, ProducerSnapshotBytes: 1})
	}
	r := open()
	first := idempotentBatch(7, 0, 3)
	if res := appendOne(t, r, first); res.Err != nil || res.BaseOffset != 0 {
		t.Fatalf("first batch: %+v", res)
	}
	if _, err := fs.Stat("/p/" + producerSnapshotFile); err != nil {
		t.Fatalf("no producer snapshot after a synced append: %v", err)
	}
	// Appended after the snapshot: the restart must read it from the log.
	second := idempotentBatch(7, 3, 2)
	if res := appendOne(t, r, second); res.Err != nil || res.BaseOffset != 3 {
		t.Fatalf("second batch: %+v", res)
	}
	// Crash: the replica is abandoned, not closed (its goroutine stays parked on an empty inbox).

	r2 := open()
	t.Cleanup(func() { _ = r2.Close() })
	retry := idempotentBatch(7, 3, 2)
	if res := appendOne(t, r2, retry); res.Err != nil || res.BaseOffset != 3 {
		t.Fatalf("retried batch after the crash: %+v, want its original offset 3", res)
	}
	if hw := r2.HighWatermark(); hw != 5 {
		t.Fatalf("high watermark %d after a retried duplicate, want 5 (not appended again)", hw)
	}
	gap := idempotentBatch(7, 9, 1)
	if res := appendOne(t, r2, gap); codeOf(res.Err) != errcode.OutOfOrderSequenceNumber {
		t.Fatalf("sequence gap after the crash: %+v, want OUT_OF_ORDER_SEQUENCE_NUMBER", res)
	}
	next := idempotentBatch(7, 5, 1)
	if res := appendOne(t, r2, next); res.Err != nil || res.BaseOffset != 5 {
		t.Fatalf("next batch: %+v", res)
	}
	// The snapshot names the offset it is valid up to.
	lines, err := r2.log.ReadStateCheckpoint(producerSnapshotFile, 7)
	if err != nil || len(lines) == 0 || lines[0][0] != -1 {
		t.Fatalf("snapshot: %v %v", lines, err)
	}
}
