package partition

import (
	"errors"
	"testing"
	"time"

	"github.com/thorstream/thorstream/log/segment"
	"github.com/thorstream/thorstream/log/vfs"
)

// FuzzClean feeds arbitrary bytes to the cleaner as a sealed segment (what it reads back from
// disk) and as the cleaner checkpoint: Open recovers whatever is valid, a pass never panics, and
// the log stays readable, with every key's latest record present.
func FuzzClean(f *testing.F) {
	ts := int64(1_700_000_000_000)
	var valid []byte
	valid = append(valid, keyedBatch(0, ts, -1, 0, "a", "1", "b", "1")...)
	valid = append(valid, keyedBatch(2, ts, 9, 0, "a", "<nil>", "c", "2")...)
	f.Add(valid, []byte("0\n1\n0 0 0\n"))
	f.Add(valid, []byte("0\n3\n0 4 0\n1 4 1700000000000\n2 0 0\n"))
	f.Add(valid[:len(valid)-3], []byte("0\n1\n0 99 0\n"))
	f.Add([]byte{}, []byte("garbage"))
	f.Fuzz(func(t *testing.T, first, checkpoint []byte) {
		fs := vfs.NewMem()
		if err := fs.MkdirAll("/p", 0o755); err != nil {
			t.Fatal(err)
		}
		write := func(name string, data []byte) {
			fl, err := fs.Create("/p/" + name)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := fl.WriteAt(data, 0); err != nil {
				t.Fatal(err)
			}
			fl.Close()
		}
		write("00000000000000000000.log", first)
		write(cleanerCheckpoint, checkpoint)
		c := newClock()
		l, err := Open(testOptions(fs, "/p", c))
		if err != nil {
			return // refused to open: fine, nothing was destroyed by a pass
		}
		defer l.Close()
		next := l.NextOffset()
		if l.active.Size() > 0 {
			if err := l.roll(); err != nil {
				t.Fatal(err)
			}
		}
		if err := l.Append([][]byte{keyedBatch(next, ts, -1, 0, "z", "last")}); err != nil {
			t.Fatal(err)
		}
		if err := l.roll(); err != nil {
			t.Fatal(err)
		}
		if err := l.Sync(); err != nil {
			t.Fatal(err)
		}
		_, err = l.Clean(CleanOptions{Now: c.Now().Add(48 * time.Hour), Force: true, Map: NewOffsetMap(1 << 16), DeleteRetention: time.Hour, OnWriter: directWriter})
		if err != nil && !errors.Is(err, ErrCleanAborted) {
			// A batch the recovery kept but whose records do not decode is an error, never a panic.
			return
		}
		found := false
		for _, r := range readRecords(t, l) {
			if r.key == "z" && string(r.value) == "last" {
				found = true
			}
		}
		if !found {
			t.Fatal("the latest record of key z is gone")
		}
		names, _ := fs.ReadDir("/p")
		for _, n := range names {
			if _, suffix, ok := segment.ParseFileName(n); ok && suffix == segment.LogSuffix+segment.CleanedSuffix {
				t.Fatalf("left %s behind", n)
			}
		}
	})
}
