package partition

import (
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/thorstream/thorstream/codec/batch"
	"github.com/thorstream/thorstream/log/vfs"
)

// TestConcurrentReaders runs readers against a writer that appends, rolls, syncs, enforces
// retention and advances the start offset. Readers must only ever see whole valid batches in
// offset order, and the only error allowed is ErrOffsetOutOfRange (a segment deleted under
// them). Run it with -race.
func TestConcurrentReaders(t *testing.T) {
	for _, fsName := range []string{"mem", "os"} {
		t.Run(fsName, func(t *testing.T) {
			var fs vfs.FS = vfs.NewMem()
			dir := "/p"
			if fsName == "os" {
				fs, dir = vfs.Default, t.TempDir()
			}
			c := newClock()
			opts := testOptions(fs, dir, c)
			opts.SegmentBytes = 4000
			opts.RetentionBytes = 20000
			opts.Now = time.Now // the clock is not shared with readers; retention here is by size
			l := mustOpen(t, opts)
			defer l.Close()

			batches := 1500
			if fsName == "os" {
				batches = 400 // real preads and fsyncs are slow on a loaded box
			}
			var done atomic.Bool
			var wg sync.WaitGroup
			errs := make(chan error, 8)
			for r := 0; r < 4; r++ {
				wg.Add(1)
				go func(r int) {
					defer wg.Done()
					buf := make([]byte, 0, 64<<10)
					for !done.Load() {
						offset := l.StartOffset()
						for offset < l.EndOffset() {
							out, err := l.Read(buf[:0], offset, 2000+r*1000, l.EndOffset(), true)
							if errors.Is(err, ErrOffsetOutOfRange) {
								break // retention passed us: start over
							}
							if err != nil {
								errs <- err
								return
							}
							if len(out) == 0 {
								break
							}
							first := true
							err = batch.Split(out, func(b []byte) error {
								h, err := batch.Validate(b)
								if err != nil {
									return err
								}
								if first && (h.BaseOffset > offset || h.LastOffset() < offset) {
									return errors.New("first batch does not contain the offset")
								}
								if !first && h.BaseOffset != offset {
									return errors.New("batches not contiguous")
								}
								first = false
								offset = h.NextOffset()
								return nil
							})
							if err != nil {
								errs <- err
								return
							}
						}
						if _, _, _, err := l.OffsetForTimestamp(int64(batches / 2)); err != nil && !errors.Is(err, ErrOffsetOutOfRange) {
							errs <- err
							return
						}
						_ = l.Size()
						_, _ = l.EndOffsetForEpoch(l.LatestEpoch())
					}
				}(r)
			}
			for i := 0; i < batches; i++ {
				b := makeBatch(l.NextOffset(), 1+i%4, int32(i/500), int64(i), 50+i%200)
				if err := l.Append([][]byte{b}); err != nil {
					t.Fatal(err)
				}
				if i%100 == 0 {
					if err := l.Sync(); err != nil {
						t.Fatal(err)
					}
					if _, err := l.EnforceRetention(); err != nil {
						t.Fatal(err)
					}
				}
				if i == batches*2/3 {
					if err := l.AdvanceStartOffset(l.StartOffset() + 7); err != nil {
						t.Fatal(err)
					}
				}
			}
			done.Store(true)
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Fatal(err)
			}
		})
	}
}
