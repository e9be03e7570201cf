package cluster

import (
	"fmt"
	"testing"
	"time"

	"github.com/thorstream/thorstream/codec/batch"
	"github.com/thorstream/thorstream/codec/compress"
	"github.com/thorstream/thorstream/codec/errcode"
	"github.com/thorstream/thorstream/log/cleaner"
	"github.com/thorstream/thorstream/log/vfs"
)

func keyed(ts int64, kv ...[]byte) []byte {
	var b batch.Builder
	b.Reset()
	for i := 0; i+1 < len(kv); i += 2 {
		b.Append(kv[i], kv[i+1], ts, nil)
	}
	return append([]byte(nil), b.Finish()...)
}

// TestCompactedTopicThroughTheBroker: a topic created with cleanup.policy=compact refuses records
// without a key, is compacted by the broker's cleaner once segments roll (keeping the latest value
// of each key, offsets unchanged), and the cleaner's progress is exported.
func TestCompactedTopicThroughTheBroker(t *testing.T) {
	d := DefaultDefaults
	d.SegmentBytes = 4 << 10
	m := NewMetrics()
	b, err := Open(Options{DataDir: "/d", FS: vfs.NewMem(), Defaults: d, Metrics: m, Now: time.Now,
		Cleaner: cleaner.Options{Backoff: 10 * time.Millisecond, DedupeBufferBytes: 1 << 20}})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	m.Attach(b)
	spec := TopicSpec{Name: "state", Partitions: 1, ReplicationFactor: 1,
		Configs: map[string]string{ConfigCleanupPolicy: PolicyCompact, ConfigMinCleanableRatio: "0.01"}}
	if err := b.CreateTopic(spec, false); err != nil {
		t.Fatal(err)
	}
	r := b.Replica("state", 0)
	c := newCollector()
	submit := func(records []byte) AppendResult {
		t.Helper()
		if err := r.Submit(&AppendRequest{Records: records, Owner: c}); err != nil {
			t.Fatal(err)
		}
		return c.next(t).res
	}
	now := time.Now().UnixMilli()
	if res := submit(keyed(now, nil, []byte("v"))); errcode.Of(res.Err) != errcode.InvalidRecord {
		t.Fatalf("keyless record: %v, want INVALID_RECORD", res.Err)
	}
	latest := map[string]string{}
	for i := 0; i < 400; i++ {
		var kv [][]byte
		for k := 0; k < 5; k++ {
			key, value := fmt.Sprintf("key-%d", (i*5+k)%20), fmt.Sprintf("value-%d-%d", i, k)
			latest[key] = value
			kv = append(kv, []byte(key), []byte(value))
		}
		records := keyed(now, kv...)
		if i%2 == 0 {
			if records, err = compress.CompressBatch(nil, records, batch.CodecLZ4); err != nil {
				t.Fatal(err)
			}
		}
		if res := submit(records); res.Err != nil {
			t.Fatal(res.Err)
		}
	}
	end := r.HighWatermark()
	deadline := time.Now().Add(30 * time.Second)
	for {
		got := gather(t, m)
		if got[`thorstream_cleaner_passes_total{partition="0",topic="state"}`] > 0 &&
			got[`thorstream_cleaner_removed_records_total{partition="0",topic="state"}`] > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no cleaning pass: %v", got)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if r.LogStartOffset() != 0 || r.HighWatermark() != end {
		t.Fatalf("offsets moved: [%d, %d), want [0, %d)", r.LogStartOffset(), r.HighWatermark(), end)
	}
	seen := map[string]string{}
	last := int64(-1)
	for next := int64(0); next < end; {
		data, err := r.Read(nil, next, 1<<20, true)
		if err != nil {
			t.Fatal(err)
		}
		err = batch.Split(data, func(one []byte) error {
			h, recs, err := compress.DecompressBatch(one, nil, 1<<20)
			if err != nil {
				return err
			}
			next = h.NextOffset()
			return batch.DecodeRecords(&h, recs, func(rec *batch.Record) error {
				if rec.Offset <= last {
					return fmt.Errorf("offset %d after %d", rec.Offset, last)
				}
				last = rec.Offset
				seen[string(rec.Key)] = string(rec.Value)
				return nil
			})
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	for k, v := range latest {
		if seen[k] != v {
			t.Fatalf("key %s reads %q, want %q", k, seen[k], v)
		}
	}
}
