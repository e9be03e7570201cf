package raftnode

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"go.etcd.io/raft/v3/raftpb"
	"go.uber.org/zap"
)

func ent(index, term uint64, data string) *raftpb.Entry {
	e := &raftpb.Entry{Index: new(index), Term: new(term), Type: raftpb.EntryNormal.Enum()}
	if data != "" {
		e.Data = []byte(data)
	}
	return e
}

func hardState(term, vote, commit uint64) *raftpb.HardState {
	return &raftpb.HardState{Term: new(term), Vote: new(vote), Commit: new(commit)}
}

type entID struct {
	index, term uint64
	data        string
}

func ids(ents []*raftpb.Entry) []entID {
	out := make([]entID, len(ents))
	for i, e := range ents {
		out[i] = entID{e.GetIndex(), e.GetTerm(), string(e.GetData())}
	}
	return out
}

func testSnapshot(index, term uint64, data string) *raftpb.Snapshot {
	return &raftpb.Snapshot{Data: []byte(data), Metadata: &raftpb.SnapshotMetadata{
		Index: new(index), Term: new(term),
		ConfState: &raftpb.ConfState{Voters: []uint64{1, 2, 3}, AutoLeave: new(false)},
	}}
}

func reopen(t *testing.T, dir string) (*disk, *loadedState) {
	t.Helper()
	d, ls, err := openDisk(dir, zap.NewNop())
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	return d, ls
}

// Raft overwrites a conflicting suffix with lower indexes; on reload the latest record for
// an index wins and the indexes past it that were not rewritten are gone.
func TestWALReloadOverwrittenSuffix(t *testing.T) {
	dir := t.TempDir()
	d, ls := reopen(t, dir)
	if ls.snap != nil || ls.hs != nil || len(ls.ents) != 0 {
		t.Fatalf("empty dir loaded %+v", ls)
	}
	must(t, d.save(hardState(1, 1, 0), []*raftpb.Entry{ent(1, 1, "a"), ent(2, 1, "b"), ent(3, 1, "c"), ent(4, 1, "d"), ent(5, 1, "e")}, true))
	must(t, d.save(hardState(2, 2, 2), []*raftpb.Entry{ent(3, 2, "C"), ent(4, 2, "D")}, true))
	must(t, d.close())

	d, ls = reopen(t, dir)
	want := []entID{{1, 1, "a"}, {2, 1, "b"}, {3, 2, "C"}, {4, 2, "D"}}
	if got := ids(ls.ents); !slices.Equal(got, want) {
		t.Fatalf("reloaded %v, want %v", got, want)
	}
	if ls.hs.GetTerm() != 2 || ls.hs.GetVote() != 2 || ls.hs.GetCommit() != 2 {
		t.Fatalf("hard state %v", ls.hs)
	}
	// The reload rewrote one file; a later overwrite at index 2 applies on top of it.
	must(t, d.save(nil, []*raftpb.Entry{ent(2, 3, "B")}, true))
	must(t, d.close())
	d, ls = reopen(t, dir)
	defer d.close()
	want = []entID{{1, 1, "a"}, {2, 3, "B"}}
	if got := ids(ls.ents); !slices.Equal(got, want) {
		t.Fatalf("reloaded %v, want %v", got, want)
	}
	if wals, _ := filepath.Glob(filepath.Join(dir, "wal-*")); len(wals) != 1 {
		t.Fatalf("files %v, want one write-ahead file", wals)
	}
}

func TestWALSnapshotRotation(t *testing.T) {
	dir := t.TempDir()
	d, _ := reopen(t, dir)
	must(t, d.save(hardState(1, 1, 6), []*raftpb.Entry{ent(1, 1, "a"), ent(2, 1, "b"), ent(3, 1, "c"), ent(4, 1, "d"), ent(5, 1, "e"), ent(6, 1, "f")}, true))
	must(t, d.saveSnapshot(testSnapshot(4, 1, "state@4"), nil, []*raftpb.Entry{ent(5, 1, "e"), ent(6, 1, "f")}))
	must(t, d.save(hardState(1, 1, 7), []*raftpb.Entry{ent(7, 1, "g")}, true))
	must(t, d.close())
	d, ls := reopen(t, dir)
	defer d.close()
	if ls.snap.GetMetadata().GetIndex() != 4 || string(ls.snap.GetData()) != "state@4" ||
		!slices.Equal(ls.snap.GetMetadata().GetConfState().GetVoters(), []uint64{1, 2, 3}) {
		t.Fatalf("snapshot %v", ls.snap)
	}
	want := []entID{{5, 1, "e"}, {6, 1, "f"}, {7, 1, "g"}}
	if got := ids(ls.ents); !slices.Equal(got, want) {
		t.Fatalf("entries %v, want %v", got, want)
	}
	if ls.hs.GetCommit() != 7 {
		t.Fatalf("hard state %v", ls.hs)
	}
}

// A crash after the snapshot file was written and before its write-ahead file: the old log
// is kept after the snapshot only if it holds the snapshot's entry.
func TestWALSnapshotWithoutItsWAL(t *testing.T) {
	for _, tc := range []struct {
		name     string
		snapTerm uint64
		want     []entID
	}{
		{"log continues the snapshot", 1, []entID{{4, 1, "d"}, {5, 1, "e"}}},
		{"log diverges from the snapshot", 2, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			d, _ := reopen(t, dir)
			must(t, d.save(hardState(1, 1, 2), []*raftpb.Entry{ent(1, 1, "a"), ent(2, 1, "b"), ent(3, 1, "c"), ent(4, 1, "d"), ent(5, 1, "e")}, true))
			must(t, d.close())
			must(t, writeSnapshotFile(dir, testSnapshot(3, tc.snapTerm, "s")))
			d, ls := reopen(t, dir)
			defer d.close()
			if got := ids(ls.ents); !slices.Equal(got, tc.want) {
				t.Fatalf("entries %v, want %v", got, tc.want)
			}
			if ls.hs.GetCommit() != 3 || ls.hs.GetTerm() < tc.snapTerm {
				t.Fatalf("hard state %v: commit must be raised to the snapshot, term to its term", ls.hs)
			}
		})
	}
}

func TestWALDamageBeforeTheLastFileIsCorrupt(t *testing.T) {
	dir := t.TempDir()
	d, _ := reopen(t, dir)
	must(t, d.save(hardState(1, 1, 1), []*raftpb.Entry{ent(1, 1, "a")}, true))
	must(t, d.close())
	first := onlyWAL(t, dir)
	// A newer file exists, so damage in the older one is not a torn tail.
	b, err := os.ReadFile(first)
	must(t, err)
	b[len(b)-2] ^= 0x55
	must(t, os.WriteFile(first, b, 0o644))
	newer := appendStartRecord(nil, 0, 0)
	must(t, os.WriteFile(filepath.Join(dir, walName(99)), newer, 0o644))
	if _, _, err := openDisk(dir, zap.NewNop()); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("open: %v, want ErrCorrupt", err)
	}
}

func TestWALCorruptRecordInLastFileIsCut(t *testing.T) {
	dir := t.TempDir()
	d, _ := reopen(t, dir)
	must(t, d.save(hardState(1, 1, 1), []*raftpb.Entry{ent(1, 1, "a")}, true))
	must(t, d.save(hardState(1, 1, 2), []*raftpb.Entry{ent(2, 1, "b")}, true))
	must(t, d.close())
	path := onlyWAL(t, dir)
	b, err := os.ReadFile(path)
	must(t, err)
	// Flip a byte in the second entry's data: the CRC catches it, everything from that
	// record on is cut (and kept).
	i := bytes.Index(b, appendEntryRecord(nil, ent(2, 1, "b")))
	if i < 0 {
		t.Fatal("second entry record not found")
	}
	b[i+frameHeader+18] = 'X' // type, term, index, entry type, then data
	must(t, os.WriteFile(path, b, 0o644))
	d, ls := reopen(t, dir)
	defer d.close()
	if got, want := ids(ls.ents), []entID{{1, 1, "a"}}; !slices.Equal(got, want) {
		t.Fatalf("entries %v, want %v", got, want)
	}
	if ls.hs.GetCommit() != 1 {
		t.Fatalf("hard state %v", ls.hs)
	}
	if _, err := os.Stat(path + ".dropped-1"); err != nil {
		t.Fatalf("cut bytes not kept: %v", err)
	}
}

func TestRecordAndSnapshotDecodeNeverPanic(t *testing.T) {
	rnd := rand.New(rand.NewPCG(3, 4))
	rec := appendEntryRecord(nil, ent(7, 3, "payload"))
	rec = appendHardStateRecord(rec, hardState(3, 1, 7))
	snap := encodeSnapshot(testSnapshot(9, 2, "data"))
	got, err := decodeSnapshot(snap)
	if err != nil || got.GetMetadata().GetIndex() != 9 || string(got.GetData()) != "data" {
		t.Fatalf("snapshot round trip: %v %v", got, err)
	}
	for range 20000 {
		for _, src := range [][]byte{rec, snap} {
			b := slices.Clone(src)
			switch rnd.IntN(3) {
			case 0:
				b = b[:rnd.IntN(len(b))]
			case 1:
				b[rnd.IntN(len(b))] ^= byte(1 + rnd.IntN(255))
			case 2:
				b = make([]byte, rnd.IntN(64))
				for i := range b {
					b[i] = byte(rnd.Uint32())
				}
			}
			_, _, _ = decodeRecord(b)
			_, _ = decodeSnapshot(b)
		}
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
