package cluster

import (
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/thorstream/thorstream/codec/batch"
	"github.com/thorstream/thorstream/log/partition"
	"github.com/thorstream/thorstream/log/vfs"
)

// newFollowerReplica is a follower (node 1) of node 0 at leader epoch epoch.
func newFollowerReplica(t *testing.T, epoch int32) (*Replica, vfs.FS) {
	t.Helper()
	r, fs := newReplReplicaFS(t, FsyncPolicy{Mode: FsyncAlways}, nil)
	r.SetRole(followerRole(1, epoch), nil)
	return r, fs
}

// divergedFiles lists the files of cut-off batches in the partition directory.
func divergedFiles(t *testing.T, fs vfs.FS) []string {
	t.Helper()
	names, err := fs.ReadDir(replDir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, n := range names {
		if _, ok := partition.IsDivergedFile(n); ok {
			out = append(out, n)
		}
	}
	return out
}

// promoteFollower makes follower node 1 the leader of a partition of one replica at epoch.
func promoteFollower(r *Replica, epoch int32) {
	r.SetRole(Role{Self: 1, Leader: 1, LeaderEpoch: epoch, PartitionEpoch: epoch, Replicas: []int32{1}, ISR: []int32{1}, MinISR: 1}, nil)
}

// TestFollowAppendReplicatedByteIdentical: a follower stores the leader's batches as they are
// (offsets, leader epochs, producer fields, CRCs), with the same epoch cache and producer state;
// the leader serves followers past its high watermark, consumers below it only.
func TestFollowAppendReplicatedByteIdentical(t *testing.T) {
	leader := newReplReplica(t, FsyncPolicy{Mode: FsyncAlways}, nil)
	leader.SetRole(leaderRole(1, []int32{0, 1}, []int32{0, 1}, 2), nil)
	produceAcks1(t, leader, 2)
	c := newCollector()
	submitAcks(t, leader, c, 0, idempotentBatch(5, 0, 3), 1, 30000)
	if d := c.next(t); d.res.Err != nil || d.res.BaseOffset != 2 {
		t.Fatalf("idempotent batch: %+v", d.res)
	}
	leader.SetRole(leaderRole(3, []int32{0, 1}, []int32{0, 1}, 2), nil)
	produceAcks1(t, leader, 4)
	if got, err := leader.Read(nil, 0, 1<<20, true); err != nil || len(got) != 0 {
		t.Fatalf("consumer read above the high watermark %d: %d bytes, %v", leader.HighWatermark(), len(got), err)
	}
	if got, err := leader.ReadForFollower(nil, 0, 1<<20); err != nil || len(got) == 0 {
		t.Fatalf("follower read: %d bytes, %v", len(got), err)
	}

	follower, _ := newFollowerReplica(t, 3)
	replicate(t, leader, follower, 1)
	sameLog(t, leader, follower)
	if e := follower.log.EpochEntries(); len(e) != 2 || e[0] != (partition.EpochEntry{Epoch: 1, StartOffset: 0}) || e[1] != (partition.EpochEntry{Epoch: 3, StartOffset: 5}) {
		t.Fatalf("follower epochs %v", e)
	}
	if hw, fhw := leader.HighWatermark(), follower.HighWatermark(); hw != 9 || fhw != 9 {
		t.Fatalf("high watermarks: leader %d, follower %d, want 9 and 9", hw, fhw)
	}
	ps, err := follower.Producers()
	if err != nil || len(ps) != 1 || ps[0].ID != 5 || ps[0].LastSequence != 2 {
		t.Fatalf("follower producers %+v %v, want producer 5 at sequence 2", ps, err)
	}
	if d, err := follower.AppendReplicated(nil, 3); err != nil || d != 9 {
		t.Fatalf("durable end %d %v, want 9 (FsyncAlways)", d, err)
	}
}

// TestFollowAppendReplicatedRejectsCorrupt: a fetched batch that fails its CRC is not stored,
// nor is anything fetched with it.
func TestFollowAppendReplicatedRejectsCorrupt(t *testing.T) {
	r, _ := newFollowerReplica(t, 1)
	bad := stamped(2, 1, 2)
	bad[len(bad)-1] ^= 0xff
	for _, records := range [][]byte{bad, append(stamped(0, 1, 2), bad...)} {
		if _, err := r.AppendReplicated(records, 1); !errors.Is(err, batch.ErrCRC) {
			t.Fatalf("corrupt batch: %v, want a CRC error", err)
		}
		if leo := r.LogEndOffset(); leo != 0 {
			t.Fatalf("log end %d after a corrupt fetch, want 0", leo)
		}
	}
	appendStamped(t, r, stamped(0, 1, 2))
	if leo := r.LogEndOffset(); leo != 2 {
		t.Fatalf("log end %d, want 2", leo)
	}
}

// TestFollowCorruptFetchLeavesNoProducerState: a fetch refused for a corrupt batch changes
// nothing, producer state included: the idempotent batch before the corrupt one is not in the
// log, so once this replica leads, the producer's retry of it must be appended, not taken for a
// duplicate of an offset the log does not have.
func TestFollowCorruptFetchLeavesNoProducerState(t *testing.T) {
	r, _ := newFollowerReplica(t, 1)
	bad := stamped(3, 1, 1)
	bad[len(bad)-1] ^= 0xff
	if _, err := r.AppendReplicated(append(stampedIdempotent(0, 1, 9, 0, 3), bad...), 1); err == nil {
		t.Fatal("a fetch with a corrupt batch was appended")
	}
	if ps, err := r.Producers(); err != nil || len(ps) != 0 {
		t.Errorf("producer state %+v %v after a refused fetch; the log is empty", ps, err)
	}
	promoteFollower(r, 2)
	res := appendOne(t, r, idempotentBatch(9, 0, 3))
	if res.Err != nil || res.BaseOffset != 0 || r.LogEndOffset() != 3 {
		t.Fatalf("the producer's batch: %+v, log end %d; want it appended at 0, log end 3", res, r.LogEndOffset())
	}
}

// TestFollowAppendReplicatedGapNotOverlap: the leader's cleaner may have removed batches, so a
// fetched batch may start past the log end; never before it. A batch cut off by the fetch's
// size limit is left for the next fetch.
func TestFollowAppendReplicatedGapNotOverlap(t *testing.T) {
	r, _ := newFollowerReplica(t, 1)
	end := func(want int64) {
		t.Helper()
		if leo := r.LogEndOffset(); leo != want {
			t.Fatalf("log end %d, want %d", leo, want)
		}
	}
	appendStamped(t, r, stamped(0, 1, 3))
	appendStamped(t, r, stamped(5, 1, 2)) // 3 and 4 compacted away
	end(7)
	appendStamped(t, r, append(stamped(7, 1, 1), stamped(10, 1, 1)...))
	end(11)
	for _, records := range [][]byte{
		stamped(10, 1, 2), // overlaps the last batch
		append(stamped(11, 1, 2), stamped(12, 1, 1)...), // its second batch overlaps its first
	} {
		if _, err := r.AppendReplicated(records, 1); !errors.Is(err, ErrNotContiguous) {
			t.Fatalf("overlapping batches: %v, want ErrNotContiguous", err)
		}
		end(11)
	}
	cut := stamped(12, 1, 3)
	appendStamped(t, r, append(stamped(11, 1, 1), cut[:len(cut)-5]...))
	end(12)
	got, err := r.ReadForFollower(nil, 3, 1<<20) // in the gap: the next batch
	if err != nil || len(got) < batch.HeaderSize || batch.BaseOffset(got) != 5 {
		t.Fatalf("read in the gap: %d bytes, %v", len(got), err)
	}
}

// TestFollowStaleLeaderEpoch: fetched data of another leader epoch than the one followed, or
// fetched by a replica that leads, changes nothing.
func TestFollowStaleLeaderEpoch(t *testing.T) {
	r, _ := newFollowerReplica(t, 2)
	appendStamped(t, r, stamped(0, 2, 3))
	if _, err := r.AppendReplicated(stamped(3, 2, 1), 1); !errors.Is(err, ErrStaleFetch) {
		t.Fatalf("append fetched at epoch 1 while following epoch 2: %v", err)
	}
	if err := r.TruncateDiverged(1, 1); !errors.Is(err, ErrStaleFetch) {
		t.Fatalf("truncation fetched at epoch 1: %v", err)
	}
	if err := r.ResetLog(10, 3); !errors.Is(err, ErrStaleFetch) {
		t.Fatalf("reset fetched at epoch 3: %v", err)
	}
	promoteFollower(r, 2)
	if _, err := r.AppendReplicated(stamped(3, 2, 1), 2); !errors.Is(err, ErrStaleFetch) {
		t.Fatalf("append on a leader: %v", err)
	}
	if leo := r.LogEndOffset(); leo != 3 {
		t.Fatalf("log end %d, want 3", leo)
	}
}

// TestFollowTruncateDiverged: truncation at a batch boundary, inside a batch (from the batch's
// start), at or past the log end (nothing), below the log start (the log starts again there);
// the cut batches are kept in the partition directory, the epochs and the high watermark follow.
func TestFollowTruncateDiverged(t *testing.T) {
	batches := func() [][]byte { return [][]byte{stamped(0, 1, 3), stamped(3, 1, 3), stamped(6, 2, 3)} }
	for _, tc := range []struct {
		name      string
		offset    int64
		wantEnd   int64
		wantKept  int // bytes in .diverged- files
		wantEpoch []partition.EpochEntry
	}{
		{"batch boundary", 6, 6, len(batches()[2]), []partition.EpochEntry{{Epoch: 1, StartOffset: 0}}},
		{"inside a batch", 4, 3, len(batches()[1]) + len(batches()[2]), []partition.EpochEntry{{Epoch: 1, StartOffset: 0}}},
		{"log end", 9, 9, 0, []partition.EpochEntry{{Epoch: 1, StartOffset: 0}, {Epoch: 2, StartOffset: 6}}},
		{"past the log end", 20, 9, 0, []partition.EpochEntry{{Epoch: 1, StartOffset: 0}, {Epoch: 2, StartOffset: 6}}},
		{"everything", 0, 0, len(batches()[0]) + len(batches()[1]) + len(batches()[2]), nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, fs := newFollowerReplica(t, 2)
			appendStamped(t, r, batches()...)
			r.SetFollowerHighWatermark(9)
			if err := r.TruncateDiverged(tc.offset, 2); err != nil {
				t.Fatal(err)
			}
			if leo := r.LogEndOffset(); leo != tc.wantEnd {
				t.Fatalf("log end %d, want %d", leo, tc.wantEnd)
			}
			if hw := r.HighWatermark(); hw != tc.wantEnd {
				t.Fatalf("high watermark %d, want %d (brought down to the truncation)", hw, tc.wantEnd)
			}
			if d := r.log.DurableEnd(); d != tc.wantEnd {
				t.Fatalf("durable end %d, want %d", d, tc.wantEnd)
			}
			files := divergedFiles(t, fs)
			if got := r.log.DivergedBytes(); got != int64(tc.wantKept) {
				t.Fatalf("diverged bytes %d, want %d", got, tc.wantKept)
			}
			if (tc.wantKept > 0) != (len(files) == 1) {
				t.Fatalf(".diverged- files %v for %d bytes cut", files, tc.wantKept)
			}
			if len(files) == 1 {
				st, err := fs.Stat(filepath.Join(replDir, files[0]))
				if err != nil || st.Size() != int64(tc.wantKept) {
					t.Fatalf("%s: %v bytes, %v; want %d", files[0], st, err, tc.wantKept)
				}
			}
			e := r.log.EpochEntries()
			if len(e) != len(tc.wantEpoch) {
				t.Fatalf("epochs %v, want %v", e, tc.wantEpoch)
			}
			for i := range e {
				if e[i] != tc.wantEpoch[i] {
					t.Fatalf("epochs %v, want %v", e, tc.wantEpoch)
				}
			}
			// The follower goes on from where it was cut.
			appendStamped(t, r, stamped(tc.wantEnd, 2, 1))
		})
	}
}

// TestFollowTruncateBelowLogStart: a truncation below the log start starts the log again, empty,
// at the truncation offset.
func TestFollowTruncateBelowLogStart(t *testing.T) {
	r, _ := newFollowerReplica(t, 2)
	if err := r.ResetLog(10, 2); err != nil {
		t.Fatal(err)
	}
	appendStamped(t, r, stamped(10, 2, 3))
	r.SetFollowerHighWatermark(13)
	if err := r.TruncateDiverged(5, 2); err != nil {
		t.Fatal(err)
	}
	if start, leo, hw := r.LogStartOffset(), r.LogEndOffset(), r.HighWatermark(); start != 5 || leo != 5 || hw != 5 {
		t.Fatalf("log start %d, log end %d, high watermark %d; want 5, 5, 5", start, leo, hw)
	}
	if e := r.log.EpochEntries(); len(e) != 0 {
		t.Fatalf("epochs %v after the log started again", e)
	}
	appendStamped(t, r, stamped(5, 2, 1))
}

// TestFollowTruncateRebuildsProducers: after a truncation the producers' state is what the log
// keeps: a truncated idempotent batch retried on this replica once it leads is appended, one that
// is still in the log is a duplicate.
func TestFollowTruncateRebuildsProducers(t *testing.T) {
	r, _ := newFollowerReplica(t, 1)
	appendStamped(t, r, stampedIdempotent(0, 1, 8, 0, 3), stampedIdempotent(3, 1, 7, 0, 3))
	if err := r.TruncateDiverged(3, 1); err != nil {
		t.Fatal(err)
	}
	if ps, err := r.Producers(); err != nil || len(ps) != 1 || ps[0].ID != 8 {
		t.Fatalf("producers after the truncation: %+v %v, want producer 8 only", ps, err)
	}
	promoteFollower(r, 2)
	if res := appendOne(t, r, idempotentBatch(7, 0, 3)); res.Err != nil || res.BaseOffset != 3 || r.LogEndOffset() != 6 {
		t.Fatalf("producer 7's truncated batch retried: %+v, log end %d; want it appended at 3", res, r.LogEndOffset())
	}
	if res := appendOne(t, r, idempotentBatch(8, 0, 3)); res.Err != nil || res.BaseOffset != 0 || r.LogEndOffset() != 6 {
		t.Fatalf("producer 8's kept batch retried: %+v, log end %d; want the duplicate of 0", res, r.LogEndOffset())
	}
}

// TestFollowResetLog: a follower behind the leader's log start starts its log again, empty, at
// it, with no epochs and no producer state, and appends from there.
func TestFollowResetLog(t *testing.T) {
	r, _ := newFollowerReplica(t, 1)
	appendStamped(t, r, stampedIdempotent(0, 1, 8, 0, 3))
	if err := r.ResetLog(20, 1); err != nil {
		t.Fatal(err)
	}
	if start, leo, hw := r.LogStartOffset(), r.LogEndOffset(), r.HighWatermark(); start != 20 || leo != 20 || hw != 20 {
		t.Fatalf("log start %d, log end %d, high watermark %d; want 20, 20, 20", start, leo, hw)
	}
	if e := r.log.EpochEntries(); len(e) != 0 {
		t.Fatalf("epochs %v", e)
	}
	if ps, err := r.Producers(); err != nil || len(ps) != 0 {
		t.Fatalf("producers %+v %v", ps, err)
	}
	if _, err := r.AppendReplicated(stamped(0, 1, 1), 1); !errors.Is(err, ErrNotContiguous) {
		t.Fatalf("a batch below the new start: %v", err)
	}
	appendStamped(t, r, stamped(20, 1, 2))
	if leo := r.LogEndOffset(); leo != 22 {
		t.Fatalf("log end %d, want 22", leo)
	}
}

// TestFollowSetHighWatermark: the follower takes the leader's high watermark, capped at its own
// log end, and wakes its waiters when it moves.
func TestFollowSetHighWatermark(t *testing.T) {
	r, _ := newFollowerReplica(t, 1)
	appendStamped(t, r, stamped(0, 1, 9))
	w := NewWaiter()
	r.AddWaiter(w)
	defer r.RemoveWaiter(w)
	for _, tc := range []struct{ set, want int64 }{{20, 9}, {5, 5}, {-1, 5}, {7, 7}} {
		r.SetFollowerHighWatermark(tc.set)
		if hw := r.HighWatermark(); hw != tc.want {
			t.Fatalf("set %d: high watermark %d, want %d", tc.set, hw, tc.want)
		}
	}
	select {
	case <-w.C:
	case <-time.After(waitTimeout):
		t.Fatal("waiter not woken")
	}
}

// TestFollowResetHighWatermark: a replica opened in a cluster starts its high watermark low, never
// below its log start.
func TestFollowResetHighWatermark(t *testing.T) {
	r, _ := newFollowerReplica(t, 1)
	if err := r.ResetLog(5, 1); err != nil {
		t.Fatal(err)
	}
	appendStamped(t, r, stamped(5, 1, 4))
	for _, tc := range []struct{ set, want int64 }{{0, 5}, {7, 7}, {-1, 5}} {
		r.ResetHighWatermark(tc.set)
		if hw := r.HighWatermark(); hw != tc.want {
			t.Fatalf("reset to %d: high watermark %d, want %d", tc.set, hw, tc.want)
		}
	}
}

// TestFollowReadForFollower: reads go up to the log end whatever the high watermark, one whole
// batch at least, nothing at the log end.
func TestFollowReadForFollower(t *testing.T) {
	r, _ := newFollowerReplica(t, 1)
	a, b := stamped(0, 1, 2), stamped(2, 1, 2)
	appendStamped(t, r, a, b)
	if got, err := r.ReadForFollower(nil, 0, 1); err != nil || string(got) != string(a) {
		t.Fatalf("max 1 byte: %d bytes, %v; want the first batch whole", len(got), err)
	}
	if got, err := r.ReadForFollower(nil, 3, 1<<20); err != nil || string(got) != string(b) {
		t.Fatalf("inside the second batch: %d bytes, %v; want it whole", len(got), err)
	}
	if got, err := r.ReadForFollower(nil, 4, 1<<20); err != nil || len(got) != 0 {
		t.Fatalf("at the log end: %d bytes, %v", len(got), err)
	}
	if _, err := r.ReadForFollower(nil, 5, 1<<20); !errors.Is(err, partition.ErrOffsetOutOfRange) {
		t.Fatalf("past the log end: %v", err)
	}
}
