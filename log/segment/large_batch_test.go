package segment

import (
	"errors"
	"testing"

	"github.com/thorstream/thorstream/codec/batch"
	"github.com/thorstream/thorstream/log/vfs"
)

// walkerBufferBytes is the capacity the recovery walker starts with; batches larger than it make
// the walker grow its buffer, the path that once lost the header it had already read.
const walkerBufferBytes = 64 << 10

// maxBatchBytes is the largest batch the broker accepts: a whole request frame.
const maxBatchBytes = 64 << 20

// batchOfSize builds one valid batch of exactly size bytes (size >= the smallest one-record
// batch) at base offset base: one record whose value is padded to reach size.
func batchOfSize(t testing.TB, base int64, size int) []byte {
	t.Helper()
	value := size - 80
	if value < 0 {
		value = 0
	}
	for try := 0; try < 16; try++ {
		var b batch.Builder
		b.Reset()
		v := make([]byte, value)
		for i := range v {
			v[i] = byte(i*7 + int(base))
		}
		b.Append([]byte("k"), v, 1_700_000_000_000+base, nil)
		out := append([]byte(nil), b.Finish()...)
		batch.SetBaseOffset(out, base)
		if len(out) == size {
			return out
		}
		value += size - len(out) // varint lengths shift by a byte or two; converge
		if value < 0 {
			t.Fatalf("cannot build a batch of %d bytes", size)
		}
	}
	t.Fatalf("cannot build a batch of exactly %d bytes", size)
	return nil
}

// TestBatchesLargerThanTheWalkerBuffer writes batches of 100 B, 64 KiB ± 1, 1 MiB and the largest
// size the broker accepts into one segment, then checks that Recover keeps them all, Scan
// (`segment dump`) lists them all without an error, and Verify calls the segment healthy.
func TestBatchesLargerThanTheWalkerBuffer(t *testing.T) {
	sizes := []int{100, walkerBufferBytes - 1, walkerBufferBytes, walkerBufferBytes + 1, 1 << 20, 1<<20 + 12, maxBatchBytes}
	// Each order matters: a large batch first, a large batch after a small one, two in a row.
	orders := map[string][]int{
		"ascending":   sizes,
		"descending":  {maxBatchBytes, 1 << 20, walkerBufferBytes + 1, walkerBufferBytes, walkerBufferBytes - 1, 100},
		"alternating": {walkerBufferBytes + 1, 100, 1 << 20, 100, walkerBufferBytes + 1, walkerBufferBytes + 1},
	}
	for name, order := range orders {
		t.Run(name, func(t *testing.T) {
			fs := vfs.NewMem()
			dir := "/p"
			if err := fs.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			s, err := Create(fs, dir, 0, Options{})
			if err != nil {
				t.Fatal(err)
			}
			var total int64
			for i, size := range order {
				b := batchOfSize(t, int64(i), size)
				if len(b) != size {
					t.Fatalf("batch %d has %d bytes, want %d", i, len(b), size)
				}
				if err := s.Append([][]byte{b}); err != nil {
					t.Fatal(err)
				}
				total += int64(size)
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			path := FileName(dir, 0, LogSuffix)

			var scanned int
			err = Scan(fs, path, func(pos int64, h batch.Header, err error) error {
				if err != nil {
					t.Errorf("Scan: batch at %d reported bad: %v", pos, err)
					return nil
				}
				if h.Size() != order[scanned] {
					t.Errorf("Scan: batch %d has %d bytes, want %d", scanned, h.Size(), order[scanned])
				}
				scanned++
				return nil
			})
			if err != nil || scanned != len(order) {
				t.Fatalf("Scan: %d batches, err %v; want %d", scanned, err, len(order))
			}

			res, err := Verify(fs, path)
			if err != nil {
				t.Fatal(err)
			}
			if res.BadPosition != -1 || res.Batches != len(order) || res.ValidBytes != total {
				t.Fatalf("Verify: %+v, want %d healthy batches of %d bytes", res, len(order), total)
			}

			r, rep, err := Recover(fs, dir, 0, Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			if rep.BytesDropped != 0 || rep.Reason != nil {
				t.Fatalf("Recover dropped %d bytes: %v", rep.BytesDropped, rep.Reason)
			}
			if r.Size() != total || r.NextOffset() != int64(len(order)) {
				t.Fatalf("Recover: size %d next %d, want %d and %d", r.Size(), r.NextOffset(), total, len(order))
			}
			// Every batch reads back byte for byte.
			for i := range order {
				got, err := r.Read(nil, int64(i), 1, int64(len(order)), true)
				if err != nil {
					t.Fatal(err)
				}
				if want := batchOfSize(t, int64(i), order[i]); string(got) != string(want) {
					t.Fatalf("batch %d differs after recovery", i)
				}
			}
		})
	}
}

// TestLargeBatchTornTail cuts a segment of large batches inside its last batch (in its header and
// in its body): recovery keeps every whole batch before it and reports the cut as torn.
func TestLargeBatchTornTail(t *testing.T) {
	sizes := []int{walkerBufferBytes + 1, 1 << 20, walkerBufferBytes - 1, 200 << 10}
	for _, cutInto := range []int{1, batch.HeaderSize - 1, batch.HeaderSize + 1, 100 << 10} {
		fs := vfs.NewMem()
		dir := "/p"
		s, all := func() (*Segment, [][]byte) {
			if err := fs.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			s, err := Create(fs, dir, 0, Options{})
			if err != nil {
				t.Fatal(err)
			}
			var all [][]byte
			for i, size := range sizes {
				b := batchOfSize(t, int64(i), size)
				if err := s.Append([][]byte{b}); err != nil {
					t.Fatal(err)
				}
				all = append(all, b)
			}
			return s, all
		}()
		s.Close()
		path := FileName(dir, 0, LogSuffix)
		data := readFile(t, fs, path)
		keep := 0
		for _, b := range all[:len(all)-1] {
			keep += len(b)
		}
		writeFile(t, fs, path, data[:keep+cutInto])
		r, rep, err := Recover(fs, dir, 0, Options{})
		if err != nil {
			t.Fatal(err)
		}
		if r.Size() != int64(keep) || r.NextOffset() != int64(len(all)-1) {
			t.Fatalf("cut %d bytes into the last batch: kept %d bytes to offset %d, want %d to %d", cutInto, r.Size(), r.NextOffset(), keep, len(all)-1)
		}
		if !errors.Is(rep.Reason, ErrTorn) || rep.BytesDropped != int64(cutInto) {
			t.Fatalf("cut %d: report %+v", cutInto, rep)
		}
		r.Close()
	}
}
