package partition

import (
	"testing"

	"github.com/thorstream/thorstream/codec/batch"
	"github.com/thorstream/thorstream/log/vfs"
)

// benchmarkAppend appends 16 KiB batches to a log on the OS filesystem, syncing every syncEvery
// appends (0 = never).
func benchmarkAppend(b *testing.B, syncEvery int) {
	opts := Options{FS: vfs.Default, Dir: b.TempDir(), RetentionBytes: -1, SegmentBytes: 256 << 20}
	l, err := Open(opts)
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	one := makeBatch(0, 16, 0, 0, 1000) // 16 records of 1000-byte values: about 16 KiB
	bufs := [][]byte{one}
	b.SetBytes(int64(len(one)))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		batch.SetBaseOffset(one, l.NextOffset())
		if err := l.Append(bufs); err != nil {
			b.Fatal(err)
		}
		if syncEvery > 0 && i%syncEvery == 0 {
			if err := l.Sync(); err != nil {
				b.Fatal(err)
			}
		}
	}
}

func BenchmarkAppend16KiBNoSync(b *testing.B)   { benchmarkAppend(b, 0) }
func BenchmarkAppend16KiBSyncEach(b *testing.B) { benchmarkAppend(b, 1) }
