//go:build !race

package partition

import (
	"testing"

	"github.com/thorstream/thorstream/codec/batch"
	"github.com/thorstream/thorstream/log/vfs"
)

// TestAppendAllocs: the steady-state Append path allocates nothing (index slices grow
// amortised; the batch buffers are reused, only their offsets patched).
func TestAppendAllocs(t *testing.T) {
	for _, name := range []string{"mem", "os"} {
		t.Run(name, func(t *testing.T) {
			var fs vfs.FS = vfs.NewMem()
			dir := "/p"
			if name == "os" {
				fs, dir = vfs.Default, t.TempDir()
			}
			opts := testOptions(fs, dir, newClock())
			opts.IndexIntervalBytes = 4096
			l := mustOpen(t, opts)
			defer l.Close()
			bufs := [][]byte{makeBatch(0, 4, 0, 0, 200), makeBatch(4, 4, 0, 0, 200)}
			appendOnce := func() {
				next := l.NextOffset()
				batch.SetBaseOffset(bufs[0], next)
				batch.SetBaseOffset(bufs[1], next+4)
				if err := l.Append(bufs); err != nil {
					t.Fatal(err)
				}
			}
			for i := 0; i < 1000; i++ {
				appendOnce()
			}
			if n := testing.AllocsPerRun(1000, appendOnce); n != 0 {
				t.Fatalf("Append allocates %.2f times per call", n)
			}
		})
	}
}
