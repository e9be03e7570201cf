package cluster

import (
	"encoding/binary"
	"errors"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/thorstream/thorstream/codec/batch"
	"github.com/thorstream/thorstream/codec/errcode"
	"github.com/thorstream/thorstream/log/vfs"
)

func TestReplicaGroupCommitOneWriteContiguousOffsets(t *testing.T) {
	fs := newCountingFS(vfs.NewMem())
	r := newTestReplica(t, fs, "/data/t-0", nil, FsyncPolicy{Mode: FsyncAlways})
	c := newCollector()
	release := blockReplica(t, r, c) // offset 0
	writesBefore, syncsBefore := fs.counts()

	counts := []int{3, 1, 5, 2, 4}
	for i, n := range counts {
		if err := r.Submit(&AppendRequest{Records: makeBatch(n, testNow.UnixMilli(), 10), Owner: c, Slot: i}); err != nil {
			t.Fatal(err)
		}
	}
	release()
	want := int64(1)
	for i, n := range counts {
		d := c.next(t)
		if d.slot != i {
			t.Fatalf("result %d is for slot %d: results must come back in order", i, d.slot)
		}
		if d.res.Err != nil || d.res.BaseOffset != want || d.res.LogAppendTime != -1 || d.res.LogStartOffset != 0 {
			t.Fatalf("slot %d: %+v, want base offset %d", i, d.res, want)
		}
		want += int64(n)
	}
	writes, syncs := fs.counts()
	if writes-writesBefore != 1 || syncs-syncsBefore != 1 {
		t.Fatalf("group of %d requests took %d writes and %d syncs, want 1 and 1", len(counts), writes-writesBefore, syncs-syncsBefore)
	}
	if hw := r.HighWatermark(); hw != want {
		t.Fatalf("high watermark %d, want %d", hw, want)
	}
	batches := readAll(t, r)
	if len(batches) != len(counts)+1 {
		t.Fatalf("read %d batches, want %d", len(batches), len(counts)+1)
	}
	next := int64(0)
	for _, b := range batches {
		h, _ := batch.ParseHeader(b)
		if h.BaseOffset != next {
			t.Fatalf("batch at %d, want %d", h.BaseOffset, next)
		}
		next = h.NextOffset()
	}
}

func TestReplicaValidation(t *testing.T) {
	ts := testNow.UnixMilli()
	cases := []struct {
		name    string
		records func() []byte
		code    errcode.Code
	}{
		{"bad CRC", func() []byte { b := makeBatch(2, ts, 10); b[len(b)-1] ^= 0xff; return b }, errcode.CorruptMessage},
		{"magic 1", func() []byte { b := makeBatch(2, ts, 10); b[16] = 1; return b }, errcode.UnsupportedVersion},
		{"control batch", func() []byte {
			b := makeBatch(1, ts, 10)
			binary.BigEndian.PutUint16(b[21:], batch.ControlBit)
			fixCRC(b)
			return b
		}, errcode.InvalidRecord},
		{"too large", func() []byte { return makeBatch(1, ts, 2000) }, errcode.MessageTooLarge},
		{"truncated", func() []byte { b := makeBatch(3, ts, 10); return b[:len(b)-5] }, errcode.CorruptMessage},
		{"shorter than a length prefix", func() []byte { return makeBatch(1, ts, 10)[:8] }, errcode.CorruptMessage},
		{"bad length field", func() []byte { b := makeBatch(1, ts, 10); binary.BigEndian.PutUint32(b[8:], 3); return b }, errcode.CorruptMessage},
		{"no batches", func() []byte { return nil }, errcode.InvalidRecord},
		{"second batch corrupt", func() []byte {
			second := makeBatch(1, ts, 10)
			second[len(second)-1] ^= 1
			return append(makeBatch(2, ts, 10), second...)
		}, errcode.CorruptMessage},
		{"trailing garbage", func() []byte { return append(makeBatch(1, ts, 10), 1, 2, 3) }, errcode.CorruptMessage},
		{"timestamp too far", func() []byte { return makeBatch(1, ts-2*time.Hour.Milliseconds(), 10) }, errcode.InvalidTimestamp},
		{"lastOffsetDelta mismatch", func() []byte {
			b := makeBatch(2, ts, 10)
			binary.BigEndian.PutUint32(b[23:], 5)
			fixCRC(b)
			return b
		}, errcode.CorruptMessage},
	}
	overrides := map[string]string{ConfigMaxMessageBytes: "1000", ConfigTimestampDifference: "3600000"}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := newTestReplica(t, vfs.NewMem(), "/data/t-0", overrides, FsyncPolicy{Mode: FsyncNever})
			c := newCollector()
			release := blockReplica(t, r, c) // offset 0
			good := func(slot int) *AppendRequest {
				return &AppendRequest{Records: makeBatch(2, ts, 10), Owner: c, Slot: slot}
			}
			bad := &AppendRequest{Records: tc.records(), Owner: c, Slot: 1}
			badCopy := append([]byte(nil), bad.Records...)
			for _, req := range []*AppendRequest{good(0), bad, good(2)} {
				if err := r.Submit(req); err != nil {
					t.Fatal(err)
				}
			}
			release()
			want := []struct {
				base int64
				code errcode.Code
			}{{1, errcode.None}, {-1, tc.code}, {3, errcode.None}}
			for i, w := range want {
				d := c.next(t)
				if d.slot != i || d.res.BaseOffset != w.base || codeOf(d.res.Err) != w.code {
					t.Fatalf("slot %d: got slot %d %+v (code %v), want base %d code %v", i, d.slot, d.res, codeOf(d.res.Err), w.base, w.code)
				}
				if d.res.Err != nil {
					if _, ok := d.res.Err.(*errcode.Error); !ok {
						t.Fatalf("error %T is not an *errcode.Error", d.res.Err)
					}
				}
			}
			if string(bad.Records) != string(badCopy) {
				t.Fatal("a rejected request's records were modified")
			}
			if got := len(readAll(t, r)); got != 3 {
				t.Fatalf("%d batches in the log, want 3", got)
			}
			if r.Fenced() != nil {
				t.Fatal("a validation error fenced the partition")
			}
		})
	}
}

func TestReplicaLogAppendTime(t *testing.T) {
	r := newTestReplica(t, vfs.NewMem(), "/data/t-0", map[string]string{ConfigTimestampType: TimestampTypeLogAppendTime}, FsyncPolicy{Mode: FsyncNever})
	c := newCollector()
	createTs := testNow.UnixMilli() - 5000
	req := &AppendRequest{Records: append(makeBatch(3, createTs, 10), makeBatch(2, createTs, 10)...), Owner: c}
	if err := r.Submit(req); err != nil {
		t.Fatal(err)
	}
	d := c.next(t)
	if d.res.Err != nil || d.res.LogAppendTime != testNow.UnixMilli() || d.res.BaseOffset != 0 {
		t.Fatalf("result %+v, want log append time %d", d.res, testNow.UnixMilli())
	}
	batches := readAll(t, r)
	if len(batches) != 2 {
		t.Fatalf("%d batches, want 2", len(batches))
	}
	for _, b := range batches {
		h, err := batch.Validate(b) // the CRC was recomputed
		if err != nil {
			t.Fatal(err)
		}
		if !h.LogAppendTime() || h.MaxTimestamp != testNow.UnixMilli() || h.BaseTimestamp != createTs {
			t.Fatalf("header %+v: want the LogAppendTime bit and maxTimestamp %d", h, testNow.UnixMilli())
		}
		if err := batch.Records(b, func(rec *batch.Record) error {
			if rec.Timestamp != testNow.UnixMilli() {
				t.Errorf("record %d timestamp %d, want %d", rec.Offset, rec.Timestamp, testNow.UnixMilli())
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
}

func TestReplicaFsyncPolicy(t *testing.T) {
	for _, tc := range []struct {
		policy    FsyncPolicy
		wantDirty bool
	}{
		{FsyncPolicy{Mode: FsyncAlways}, false},
		{FsyncPolicy{Mode: FsyncNever}, true},
	} {
		t.Run(tc.policy.String(), func(t *testing.T) {
			fs := newCountingFS(vfs.NewMem())
			r := newTestReplica(t, fs, "/data/t-0", nil, tc.policy)
			c := newCollector()
			dirtyAtDone := make(chan bool, 16)
			c.check = func(int) { dirtyAtDone <- fs.anyDirty() }
			for i := 0; i < 3; i++ {
				if err := r.Submit(&AppendRequest{Records: makeBatch(1, testNow.UnixMilli(), 10), Owner: c, Slot: i}); err != nil {
					t.Fatal(err)
				}
				if d := c.next(t); d.res.Err != nil {
					t.Fatal(d.res.Err)
				}
				if dirty := <-dirtyAtDone; dirty != tc.wantDirty {
					t.Fatalf("append %d: unsynced log data at AppendDone = %v, want %v", i, dirty, tc.wantDirty)
				}
			}
			if err := r.Close(); err != nil {
				t.Fatal(err)
			}
			if fs.anyDirty() {
				t.Fatal("Close left unsynced data")
			}
		})
	}
}

func TestReplicaFencesOnStorageError(t *testing.T) {
	isLog := func(dir string) func(string) bool {
		return func(p string) bool { return strings.HasPrefix(p, dir+"/") && strings.HasSuffix(p, ".log") }
	}
	cases := []struct {
		name  string
		fault vfs.Fault
	}{
		{"write EIO", vfs.Fault{Op: vfs.OpWrite, Err: syscall.EIO}},
		{"write ENOSPC partial", vfs.Fault{Op: vfs.OpWrite, Err: syscall.ENOSPC, PartialBytes: 30}},
		{"sync EIO", vfs.Fault{Op: vfs.OpSync, Err: syscall.EIO}},
		{"sync ENOSPC", vfs.Fault{Op: vfs.OpSync, Err: syscall.ENOSPC}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			mem := vfs.NewMem()
			fs := vfs.NewFaultFS(mem)
			r0 := newTestReplica(t, fs, "/data/t-0", nil, FsyncPolicy{Mode: FsyncAlways})
			r1 := newTestReplica(t, fs, "/data/t-1", nil, FsyncPolicy{Mode: FsyncAlways})
			c := newCollector()
			submit := func(r *Replica, slot int) AppendResult {
				t.Helper()
				if err := r.Submit(&AppendRequest{Records: makeBatch(2, testNow.UnixMilli(), 10), Owner: c, Slot: slot}); err != nil {
					t.Fatalf("submit %d: %v", slot, err)
				}
				return c.next(t).res
			}
			var acked [][]byte
			for i := 0; i < 3; i++ {
				if res := submit(r0, i); res.Err != nil {
					t.Fatal(res.Err)
				}
			}
			acked = readAll(t, r0)

			fault := tc.fault
			fault.Match = isLog("/data/t-0")
			fs.Inject(fault)
			if res := submit(r0, 3); codeOf(res.Err) != errcode.KafkaStorageError || res.BaseOffset != -1 {
				t.Fatalf("failing append: %+v, want KAFKA_STORAGE_ERROR", res)
			}
			if fs.Fired() != 1 {
				t.Fatalf("fault fired %d times", fs.Fired())
			}
			if codeOf(r0.Fenced()) != errcode.KafkaStorageError {
				t.Fatalf("Fenced() = %v", r0.Fenced())
			}
			if hw := r0.HighWatermark(); hw != 6 {
				t.Fatalf("high watermark moved to %d after a failed append", hw)
			}
			err := r0.Submit(&AppendRequest{Records: makeBatch(1, testNow.UnixMilli(), 1), Owner: c, Slot: 4})
			if codeOf(err) != errcode.KafkaStorageError {
				t.Fatalf("Submit after the fence: %v, want KAFKA_STORAGE_ERROR", err)
			}
			// Reads go on.
			if got := readAll(t, r0); len(got) != len(acked) {
				t.Fatalf("fenced partition reads %d batches, want %d", len(got), len(acked))
			}
			// Another partition on the same disk keeps working.
			for i := 0; i < 2; i++ {
				if res := submit(r1, 10+i); res.Err != nil || res.BaseOffset != int64(2*i) {
					t.Fatalf("other partition: %+v", res)
				}
			}
			_ = r0.Close() // a fenced log reports the fence
			if err := r1.Close(); err != nil {
				t.Fatal(err)
			}

			// Everything acknowledged before the failure survives a reopen.
			fs.Clear()
			re := newTestReplica(t, mem, "/data/t-0", nil, FsyncPolicy{Mode: FsyncAlways})
			got := readAll(t, re)
			if len(got) < len(acked) {
				t.Fatalf("after reopen %d batches, want at least the %d acknowledged", len(got), len(acked))
			}
			for i := range acked {
				if string(got[i]) != string(acked[i]) {
					t.Fatalf("acknowledged batch %d changed after reopen", i)
				}
			}
			c2 := newCollector()
			if err := re.Submit(&AppendRequest{Records: makeBatch(1, testNow.UnixMilli(), 1), Owner: c2}); err != nil {
				t.Fatal(err)
			}
			if d := c2.next(t); d.res.Err != nil || d.res.BaseOffset != re.HighWatermark()-1 {
				t.Fatalf("append after reopen: %+v", d.res)
			}
		})
	}
}

// TestReplicaFenceRejectsTheRestOfTheGroup checks that when the group's write fails every request
// of the group gets the storage error, and so do requests queued behind it.
func TestReplicaFenceRejectsTheRestOfTheGroup(t *testing.T) {
	fs := vfs.NewFaultFS(vfs.NewMem())
	r := newTestReplica(t, fs, "/data/t-0", nil, FsyncPolicy{Mode: FsyncAlways})
	c := newCollector()
	release := blockReplica(t, r, c)
	for i := 0; i < 4; i++ {
		if err := r.Submit(&AppendRequest{Records: makeBatch(1, testNow.UnixMilli(), 1), Owner: c, Slot: i}); err != nil {
			t.Fatal(err)
		}
	}
	fs.Inject(vfs.Fault{Op: vfs.OpWrite, Err: syscall.EIO, Match: func(p string) bool { return strings.HasSuffix(p, ".log") }})
	release()
	for i := 0; i < 4; i++ {
		if d := c.next(t); d.slot != i || codeOf(d.res.Err) != errcode.KafkaStorageError {
			t.Fatalf("slot %d: %+v", i, d)
		}
	}
}

func TestReplicaCloseAnswersEverything(t *testing.T) {
	r := newTestReplica(t, vfs.NewMem(), "/data/t-0", nil, FsyncPolicy{Mode: FsyncNever})
	c := newCollector()
	release := blockReplica(t, r, c)
	const n = 50
	for i := 0; i < n; i++ {
		if err := r.Submit(&AppendRequest{Records: makeBatch(1, testNow.UnixMilli(), 1), Owner: c, Slot: i}); err != nil {
			t.Fatal(err)
		}
	}
	closed := make(chan error, 1)
	go func() { closed <- r.Close() }()
	// Close must wait for the writer; it cannot finish while the writer is parked.
	release()
	select {
	case err := <-closed:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(waitTimeout):
		t.Fatal("Close did not return")
	}
	if got := len(c.ch); got != n {
		t.Fatalf("%d of %d requests answered when Close returned", got, n)
	}
	for i := 0; i < n; i++ {
		if d := <-c.ch; d.slot != i || d.res.Err != nil || d.res.BaseOffset != int64(i+1) {
			t.Fatalf("slot %d: %+v", i, d)
		}
	}
	done := make(chan error, 1)
	go func() { done <- r.Submit(&AppendRequest{Records: makeBatch(1, 0, 1), Owner: c}) }()
	select {
	case err := <-done:
		if !errors.Is(err, ErrReplicaClosed) {
			t.Fatalf("Submit after Close: %v, want ErrReplicaClosed", err)
		}
	case <-time.After(waitTimeout):
		t.Fatal("Submit after Close hangs")
	}
	if err := r.Close(); err != nil && !errors.Is(err, ErrReplicaClosed) {
		t.Logf("second Close: %v", err)
	}
}

func TestReplicaInboxFull(t *testing.T) {
	cfg, _ := BuildTopicConfig(nil, DefaultDefaults)
	r := NewReplica(ReplicaOptions{Topic: "t", Log: openLog(t, vfs.NewMem(), "/d/t-0"), Config: cfg, Fsync: FsyncPolicy{Mode: FsyncNever}, InboxSize: 2, Now: fixedNow})
	t.Cleanup(func() { _ = r.Close() })
	c := newCollector()
	release := blockReplica(t, r, c)
	defer release()
	for i := 0; i < 2; i++ {
		if err := r.Submit(&AppendRequest{Records: makeBatch(1, testNow.UnixMilli(), 1), Owner: c, Slot: i}); err != nil {
			t.Fatal(err)
		}
	}
	err := r.Submit(&AppendRequest{Records: makeBatch(1, testNow.UnixMilli(), 1), Owner: c, Slot: 2})
	if !errors.Is(err, ErrInboxFull) || !codeOf(err).Retryable() {
		t.Fatalf("Submit to a full inbox: %v, want the retryable ErrInboxFull", err)
	}
}

func TestReplicaWaiters(t *testing.T) {
	r := newTestReplica(t, vfs.NewMem(), "/data/t-0", nil, FsyncPolicy{Mode: FsyncNever})
	c := newCollector()
	w, gone := NewWaiter(), NewWaiter()
	r.AddWaiter(w)
	r.AddWaiter(w) // registering twice is harmless
	r.AddWaiter(gone)
	r.RemoveWaiter(gone)
	if err := r.Submit(&AppendRequest{Records: makeBatch(4, testNow.UnixMilli(), 1), Owner: c}); err != nil {
		t.Fatal(err)
	}
	// The high watermark moves before AppendDone, so the signal is already there.
	if d := c.next(t); d.res.Err != nil {
		t.Fatal(d.res.Err)
	}
	select {
	case <-w.C:
	default:
		t.Fatal("waiter not signalled on high watermark advance")
	}
	select {
	case <-gone.C:
		t.Fatal("removed waiter signalled")
	default:
	}
	if hw := r.HighWatermark(); hw != 4 {
		t.Fatalf("high watermark %d, want 4", hw)
	}
	// A rejected append does not move the high watermark nor wake anyone.
	if err := r.Submit(&AppendRequest{Records: []byte{1}, Owner: c}); err != nil {
		t.Fatal(err)
	}
	c.next(t)
	select {
	case <-w.C:
		t.Fatal("waiter signalled without an advance")
	default:
	}
	r.RemoveWaiter(w)
	if n := r.waiterCount.Load(); n != 0 {
		t.Fatalf("waiter count %d after removing all", n)
	}
}

func TestReplicaOffsetForTimestamp(t *testing.T) {
	r := newTestReplica(t, vfs.NewMem(), "/data/t-0", nil, FsyncPolicy{Mode: FsyncNever})
	c := newCollector()
	base := testNow.UnixMilli() - 10_000
	for i := 0; i < 3; i++ {
		if err := r.Submit(&AppendRequest{Records: makeBatch(2, base+int64(i)*100, 1), Owner: c}); err != nil {
			t.Fatal(err)
		}
		if d := c.next(t); d.res.Err != nil {
			t.Fatal(d.res.Err)
		}
	}
	for _, tc := range []struct {
		ts    int64
		off   int64
		found bool
	}{{0, 0, true}, {base + 1, 0, true}, {base + 2, 2, true}, {base + 150, 4, true}, {base + 201, 4, true}, {base + 202, -1, false}} {
		off, _, found, err := r.OffsetForTimestamp(tc.ts)
		if err != nil || off != tc.off || found != tc.found {
			t.Errorf("OffsetForTimestamp(%d) = %d, %v, %v; want %d, %v", tc.ts, off, found, err, tc.off, tc.found)
		}
	}
}

// TestReplicaLogAppendTimeSkipsTimestampCheck: a LogAppendTime topic replaces the producer's
// timestamps, so message.timestamp.difference.max.ms does not apply to them (as in Kafka).
func TestReplicaLogAppendTimeSkipsTimestampCheck(t *testing.T) {
	r := newTestReplica(t, vfs.NewMem(), "/data/t-0", map[string]string{
		ConfigTimestampType: TimestampTypeLogAppendTime, ConfigTimestampDifference: "1000",
	}, FsyncPolicy{Mode: FsyncNever})
	c := newCollector()
	if err := r.Submit(&AppendRequest{Records: makeBatch(1, 0, 1), Owner: c}); err != nil {
		t.Fatal(err)
	}
	if d := c.next(t); d.res.Err != nil || d.res.LogAppendTime != testNow.UnixMilli() {
		t.Fatalf("%+v", d.res)
	}
}
