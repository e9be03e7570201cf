package partition

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/thorstream/thorstream/codec/batch"
	"github.com/thorstream/thorstream/log/vfs"
)

// The power-loss test drives a partition log over a vfs.CrashFS through a random workload
// (appends of a few bytes to 1.2 MiB, rolls, retention, DeleteRecords, follower truncation, clean
// restarts), stops the world at a chosen mutating filesystem operation, cuts the power, and checks
// what the log recovers:
//
//   - durability: every batch appended before a successful Sync (or TruncateTo, Close, Open) is
//     there, byte for byte, at its offset;
//   - prefix: the batches readable from StartOffset to EndOffset are exactly the ones appended at
//     those offsets, contiguous, nothing reordered or corrupt;
//   - checkpoints never ahead of the log: the recovery point and the leader epoch entries name no
//     offset past EndOffset, and the epoch cache agrees with the batches' leader epochs;
//   - recovery is idempotent: a power loss right after Open changes nothing, also when an earlier
//     Open was itself cut short by a power loss;
//   - the log takes appends after recovery.
//
// Each seed chooses a scenario and is run once to count its filesystem operations, then again
// crashing at several of them (and once after the last). THORSTREAM_POWERLOSS_SEEDS=N runs N
// seeds (default 200); THORSTREAM_POWERLOSS_SEED=S and THORSTREAM_POWERLOSS_CRASH=C replay one
// seed and one crash point; THORSTREAM_POWERLOSS_TRACE=1 logs the workload of every run.

const powerLossMaxBatch = 1258291 // 1.2 MiB

type plSyncMode int

const (
	plSyncAlways   plSyncMode = iota // Sync after every append: an append is acknowledged by it
	plSyncInterval                   // Sync every k appends
	plSyncNever                      // only Open, TruncateTo and Close sync
)

func (m plSyncMode) String() string {
	return [...]string{"always", "interval", "never"}[m]
}

type plScenario struct {
	seed     uint64
	opts     Options // FS, Now and Logger are set per run
	mode     plSyncMode
	interval int
	steps    int
}

func newPLScenario(seed uint64) plScenario {
	rng := rand.New(rand.NewPCG(seed, 0x5ce7a))
	sc := plScenario{seed: seed, steps: 6 + rng.IntN(22)}
	sc.opts = Options{Dir: "/data/topic-0", RetentionBytes: -1}
	switch rng.IntN(10) {
	case 0, 1, 2:
		// default segment size: no size rolls
	case 3, 4:
		sc.opts.SegmentBytes = 8 << 10
	case 5, 6:
		sc.opts.SegmentBytes = 64 << 10
	case 7:
		sc.opts.SegmentBytes = 300 << 10
	default:
		sc.opts.SegmentBytes = 1 << 20
	}
	switch rng.IntN(3) {
	case 0:
		sc.opts.IndexIntervalBytes = 256
	case 1:
		sc.opts.IndexIntervalBytes = 64 << 10
	}
	if sc.opts.SegmentBytes > 0 && rng.IntN(3) == 0 {
		sc.opts.RetentionBytes = sc.opts.SegmentBytes * int64(1+rng.IntN(4))
	}
	if rng.IntN(4) == 0 {
		sc.opts.SegmentAge = time.Hour
	}
	if rng.IntN(5) == 0 {
		sc.opts.RetentionAge = 3 * time.Hour
	}
	switch rng.IntN(4) {
	case 0, 1:
		sc.mode = plSyncAlways
	case 2:
		sc.mode, sc.interval = plSyncInterval, 2+rng.IntN(4)
	default:
		sc.mode = plSyncNever
	}
	return sc
}

func (sc plScenario) String() string {
	return fmt.Sprintf("sync=%v interval=%d steps=%d segmentBytes=%d indexInterval=%d retentionBytes=%d segmentAge=%v retentionAge=%v",
		sc.mode, sc.interval, sc.steps, sc.opts.SegmentBytes, sc.opts.IndexIntervalBytes, sc.opts.RetentionBytes,
		sc.opts.SegmentAge, sc.opts.RetentionAge)
}

// plBatch is one appended batch.
type plBatch struct {
	base, next int64
	epoch      int32
	data       []byte
}

// plModel is what the workload did, as far as a crash can tell.
type plModel struct {
	batches []plBatch // appended (attempted) batches in offset order, after truncations
	// beforeTruncate is the list before a TruncateTo the crash interrupted: the crash may leave
	// its dropped batches in place. nil otherwise.
	beforeTruncate []plBatch
	durableEnd     int64 // every batch below was acknowledged durable
	ackedStart     int64 // a start offset acknowledged durable (AdvanceStartOffset, retention returned)
	maxStart       int64 // the highest start offset any call may have made durable
	maxEnd         int64 // the highest end offset the log ever had
	trace          []string
}

func (m *plModel) end() int64 {
	if n := len(m.batches); n > 0 {
		return m.batches[n-1].next
	}
	return 0
}

// candidates is the list the recovered log must be a prefix of.
func (m *plModel) candidates() []plBatch {
	if m.beforeTruncate != nil {
		return m.beforeTruncate
	}
	return m.batches
}

func (m *plModel) logf(format string, args ...any) {
	m.trace = append(m.trace, fmt.Sprintf(format, args...))
}

// plBuildBatch builds a batch of records records whose total size is close to (usually exactly)
// size bytes, at base with epoch.
func plBuildBatch(rng *rand.Rand, base int64, epoch int32, ts int64, records, size int) []byte {
	var b batch.Builder
	pattern := byte(rng.Uint32())
	value := func(n int) []byte {
		v := make([]byte, max(n, 0))
		for i := range v {
			v[i] = pattern + byte(i*7)
		}
		return v
	}
	small := make([]int, records-1)
	for i := range small {
		small[i] = 1 + rng.IntN(20)
	}
	build := func(lastValue int) int {
		b.Reset()
		for _, n := range small {
			b.Append(nil, value(n), ts, nil)
		}
		b.Append([]byte(strconv.FormatInt(base, 10)), value(lastValue), ts, nil)
		return b.Size()
	}
	// Only the last record's value is resized to reach size; a varint growing a byte may make
	// size unreachable, then the batch is a byte or two off.
	lastValue := 0
	got := build(lastValue)
	for i := 0; i < 4 && got != size && lastValue+size-got >= 0; i++ {
		lastValue += size - got
		got = build(lastValue)
	}
	out := append([]byte(nil), b.Finish()...)
	batch.SetBaseOffset(out, base)
	batch.SetPartitionLeaderEpoch(out, epoch)
	return out
}

// plBatchShape picks a batch size and record count from the sizes Kafka clients send.
func plBatchShape(rng *rand.Rand) (records, size int) {
	switch r := rng.IntN(100); {
	case r < 30: // a few bytes
		return 1, 70 + rng.IntN(100)
	case r < 42: // many small records
		n := 50 + rng.IntN(1500)
		return n, n * 25
	case r < 57: // around the 64 KiB read buffer
		return 1 + rng.IntN(3), 64<<10 + rng.IntN(129) - 64
	case r < 80:
		return 1 + rng.IntN(20), 1<<10 + rng.IntN(200<<10)
	case r < 90: // around 1 MiB, the default max.request.size
		return 1, 1<<20 + rng.IntN(257) - 128
	default:
		return 1 + rng.IntN(4), 256<<10 + rng.IntN(powerLossMaxBatch-256<<10+1)
	}
}

// plRun runs the scenario's workload on fs and returns the first error (nil if it completed),
// recording in m what a crash may have left. l is the log when it is still open.
func plRun(sc plScenario, fs vfs.FS, m *plModel) (l *Log, err error) {
	rng := rand.New(rand.NewPCG(sc.seed, 0xa11))
	clk := newClock()
	opts := sc.opts
	opts.FS, opts.Now = fs, clk.Now
	ops := func() int64 {
		if c, ok := fs.(*vfs.CrashFS); ok {
			return c.MutatingOps()
		}
		return 0
	}
	m.logf("[op %d] open", ops())
	if l, err = Open(opts); err != nil {
		return nil, err
	}
	epoch := int32(0)
	appends := 0
	synced := func() {
		m.durableEnd = l.EndOffset()
		appends = 0
	}
	sync := func() error {
		m.logf("[op %d] sync at end %d", ops(), l.EndOffset())
		if err := l.Sync(); err != nil {
			return err
		}
		synced()
		return nil
	}
	for step := 0; step < sc.steps; step++ {
		clk.Advance(time.Duration(rng.IntN(40)) * time.Minute)
		switch r := rng.IntN(100); {
		case r < 72: // append
			n := 1
			if rng.IntN(6) == 0 {
				n = 2 + rng.IntN(3)
			}
			if rng.IntN(8) == 0 {
				epoch++
			}
			var batches [][]byte
			next := l.NextOffset()
			for i := 0; i < n; i++ {
				records, size := plBatchShape(rng)
				data := plBuildBatch(rng, next, epoch, clk.Now().UnixMilli(), records, size)
				h, _ := batch.ParseHeader(data)
				m.batches = append(m.batches, plBatch{base: next, next: h.NextOffset(), epoch: epoch, data: data})
				batches = append(batches, data)
				next = h.NextOffset()
			}
			m.maxEnd = max(m.maxEnd, next)
			m.logf("[op %d] append %d batches [%d, %d) epoch %d, %d bytes", ops(), n, l.NextOffset(), next, epoch, plBytes(batches))
			if err := l.Append(batches); err != nil {
				return l, err
			}
			appends++
			if sc.mode == plSyncAlways || (sc.mode == plSyncInterval && appends >= sc.interval) {
				if err := sync(); err != nil {
					return l, err
				}
			}
		case r < 80: // retention (and age rolls)
			// It may roll first, so the new start can be anything up to the end.
			m.maxStart = max(m.maxStart, l.EndOffset())
			m.logf("[op %d] enforce retention over segments %v", ops(), l.Segments())
			if _, err := l.EnforceRetention(); err != nil {
				return l, err
			}
			m.ackedStart = max(m.ackedStart, l.StartOffset())
		case r < 86: // DeleteRecords
			start, end := l.StartOffset(), l.EndOffset()
			offset := start + rng.Int64N(end-start+1)
			m.maxStart = max(m.maxStart, offset)
			m.logf("[op %d] advance start offset %d -> %d (end %d)", ops(), start, offset, end)
			if err := l.AdvanceStartOffset(offset); err != nil {
				return l, err
			}
			m.ackedStart = max(m.ackedStart, offset)
		case r < 91: // follower truncation to a batch boundary
			start := l.StartOffset()
			var bounds []int64
			for _, b := range m.batches {
				if b.base >= start {
					bounds = append(bounds, b.base)
				}
			}
			if len(bounds) == 0 {
				continue
			}
			offset := bounds[max(0, len(bounds)-1-rng.IntN(4))]
			m.logf("[op %d] truncate to %d (end %d)", ops(), offset, l.EndOffset())
			m.beforeTruncate = append([]plBatch(nil), m.batches...)
			m.durableEnd = min(m.durableEnd, offset)
			kept := m.batches[:0]
			for _, b := range m.batches {
				if b.base < offset {
					kept = append(kept, b)
				}
			}
			m.batches = kept
			if err := l.TruncateTo(offset); err != nil {
				return l, err
			}
			m.beforeTruncate = nil
			synced()
		case r < 95: // clean restart
			m.logf("[op %d] close", ops())
			if err := l.Close(); err != nil {
				return nil, err
			}
			synced()
			m.logf("[op %d] open", ops())
			if l, err = Open(opts); err != nil {
				return nil, err
			}
		default:
			if sc.mode != plSyncNever {
				if err := sync(); err != nil {
					return l, err
				}
			}
		}
	}
	if rng.IntN(4) == 0 {
		m.logf("[op %d] close", ops())
		if err := l.Close(); err != nil {
			return nil, err
		}
		synced()
		return nil, nil
	}
	m.logf("[op %d] done", ops())
	return l, nil
}

func plBytes(batches [][]byte) int {
	n := 0
	for _, b := range batches {
		n += len(b)
	}
	return n
}

func envInt(t *testing.T, name string, def int64) int64 {
	s := os.Getenv(name)
	if s == "" {
		return def
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		t.Fatalf("%s=%q: %v", name, s, err)
	}
	return v
}

func TestPowerLoss(t *testing.T) {
	defaultSeeds := int64(200)
	if testing.Short() {
		defaultSeeds = 25 // the race-detector pass; the plain run does 200
	}
	seeds := envInt(t, "THORSTREAM_POWERLOSS_SEEDS", defaultSeeds)
	onlySeed := envInt(t, "THORSTREAM_POWERLOSS_SEED", -1)
	onlyCrash := envInt(t, "THORSTREAM_POWERLOSS_CRASH", -1)
	trace := os.Getenv("THORSTREAM_POWERLOSS_TRACE") != ""
	failures, runs, shortRuns, cutRecoveries := 0, 0, 0, 0
	first, last := int64(1), seeds
	if onlySeed >= 0 {
		first, last = onlySeed, onlySeed
	}
	for seed := first; seed <= last; seed++ {
		sc := newPLScenario(uint64(seed))
		// Count the operations of an uninterrupted run.
		dry := vfs.NewCrashFS()
		var dryModel plModel
		l, err := plRun(sc, dry, &dryModel)
		if err != nil {
			t.Fatalf("seed %d (%v): uninterrupted run: %v", seed, sc, err)
		}
		total := dry.MutatingOps()
		if l != nil {
			l.Close()
		}
		rng := rand.New(rand.NewPCG(uint64(seed), 0xc4a5))
		points := []int64{total + 1} // after the last operation
		for i := 0; i < 4; i++ {
			points = append(points, 1+rng.Int64N(total))
		}
		if onlyCrash >= 0 {
			points = []int64{onlyCrash}
		}
		for _, crash := range points {
			runs++
			p := &plCheck{t: t, sc: sc, crash: crash, total: total, trace: trace}
			p.run()
			if p.recoveredShort {
				shortRuns++
			}
			if p.recoveryCut {
				cutRecoveries++
			}
			if p.failed {
				failures++
				if failures >= 5 {
					t.Fatalf("stopping after %d failures", failures)
				}
			}
		}
	}
	t.Logf("%d seeds, %d crash runs: %d recovered less than was appended, %d had their first recovery cut by a second power loss",
		last-first+1, runs, shortRuns, cutRecoveries)
}

// plCheck is one crash run: workload, stop at an operation, power loss, recovery, checks.
type plCheck struct {
	t            *testing.T
	sc           plScenario
	crash, total int64
	trace        bool
	m            plModel
	failed       bool
	// For the summary: the log recovered fewer offsets than were appended; the first recovery
	// was itself cut by a power loss.
	recoveredShort, recoveryCut bool
}

func (p *plCheck) errorf(format string, args ...any) {
	p.t.Helper()
	if p.failed {
		return
	}
	p.failed = true
	tail := p.m.trace
	if len(tail) > 40 {
		tail = tail[len(tail)-40:]
	}
	p.t.Errorf("seed %d crash after op %d of %d (%v): %s\n  reproduce: THORSTREAM_POWERLOSS_SEED=%d THORSTREAM_POWERLOSS_CRASH=%d go test -run 'TestPowerLoss$' ./log/partition\n  workload:\n    %s",
		p.sc.seed, p.crash, p.total, p.sc, fmt.Sprintf(format, args...), p.sc.seed, p.crash, strings.Join(tail, "\n    "))
}

// plState is what a recovered log serves.
type plState struct {
	start, end int64
	batches    []plBatch
	epochs     []EpochEntry
}

func (p *plCheck) run() bool {
	fs := vfs.NewCrashFS()
	fs.CrashAfter(p.crash)
	l, err := plRun(p.sc, fs, &p.m)
	if err != nil && !errors.Is(err, vfs.ErrPowerLost) {
		p.errorf("workload failed with an error that is not the power loss: %v", err)
		return false
	}
	if err == nil && p.crash <= p.total {
		p.errorf("workload completed although the power went at op %d: it is not deterministic", p.crash)
		return false
	}
	_ = l // dead after the power loss, as the process that held it
	rng := rand.New(rand.NewPCG(p.sc.seed, uint64(p.crash)))
	fs.PowerLoss(rng)
	p.m.logf("power loss; durable end %d, acked start %d, max start %d, model end %d", p.m.durableEnd, p.m.ackedStart, p.m.maxStart, p.m.end())

	recoveryPoint, hasRecoveryPoint := p.readCheckpoint(fs, recoveryPointCheckpoint)
	opts := p.sc.opts
	opts.FS, opts.Now = fs, newClock().Now

	// Half the runs cut the power again in the middle of the first recovery.
	if rng.IntN(2) == 0 {
		fs.CrashAfter(1 + rng.Int64N(40))
		l, err := Open(opts)
		switch {
		case err == nil:
			p.m.logf("open under a power cut armed: completed")
			fs.CrashAfter(0)
			// A power loss right after a successful Open must change nothing; the check below
			// (after the next Open) sees it.
		case errors.Is(err, vfs.ErrPowerLost):
			p.m.logf("open cut by a power loss: %v", err)
			p.recoveryCut = true
		default:
			p.errorf("open under a power cut: %v", err)
			return false
		}
		_ = l
		fs.PowerLoss(rng)
	}

	l, err = Open(opts)
	if err != nil {
		p.errorf("open after the power loss: %v", err)
		return false
	}
	first, ok := p.check(l, fs)
	if !ok {
		return !p.failed
	}
	if hasRecoveryPoint && recoveryPoint > first.end {
		why := fmt.Sprintf("the recovery point checkpoint left by the crash (%d) is past the recovered end offset %d", recoveryPoint, first.end)
		if p.m.beforeTruncate == nil {
			p.errorf("%s", why)
			return false
		}
		p.errorf("%s", why)
	}
	p.recoveredShort = first.end < p.m.end()
	if p.trace {
		p.t.Logf("seed %d crash %d/%d: recovered [%d, %d) of %d appended, durable end %d\n    %s",
			p.sc.seed, p.crash, p.total, first.start, first.end, p.m.end(), p.m.durableEnd, strings.Join(p.m.trace, "\n    "))
	}

	// Recovery is idempotent: a power loss now changes nothing.
	fs.PowerLoss(rng)
	l, err = Open(opts)
	if err != nil {
		p.errorf("second open after the power loss: %v", err)
		return false
	}
	second, ok := p.check(l, fs)
	if !ok {
		return !p.failed
	}
	if d := first.diff(second); d != "" {
		why := fmt.Sprintf("a power loss right after recovery changed the log: %s", d)
		if !first.onlyEpochAtEndDropped(second) {
			p.errorf("%s", why)
			return false
		}
		p.errorf("%s", why)
	}

	// The log takes appends at its recovered end.
	epoch := max(l.LatestEpoch(), 0)
	b := makeBatch(l.NextOffset(), 3, epoch, newClock().Now().UnixMilli(), 100)
	if err := l.Append([][]byte{b}); err != nil {
		p.errorf("append after recovery: %v", err)
		return false
	}
	if err := l.Sync(); err != nil {
		p.errorf("sync after recovery: %v", err)
		return false
	}
	if err := l.Close(); err != nil {
		p.errorf("close after recovery: %v", err)
		return false
	}
	fs.PowerLoss(rng)
	l, err = Open(opts)
	if err != nil {
		p.errorf("open after the append: %v", err)
		return false
	}
	defer l.Close()
	got, err := l.Read(nil, second.end, 1<<20, l.EndOffset(), true)
	if err != nil || !bytes.Equal(got, b) || l.EndOffset() != second.end+3 {
		p.errorf("the batch appended at %d after recovery: end %d, read %d bytes, %v", second.end, l.EndOffset(), len(got), err)
		return false
	}
	return true
}

// readCheckpoint reads a one-offset checkpoint straight from the filesystem.
func (p *plCheck) readCheckpoint(fs vfs.FS, name string) (int64, bool) {
	lines, err := readCheckpoint(fs, p.sc.opts.Dir, name, 1)
	if errors.Is(err, os.ErrNotExist) {
		return 0, false
	}
	if err != nil || len(lines) != 1 {
		p.errorf("checkpoint %s unreadable after the crash: %v %v", name, lines, err)
		return 0, false
	}
	return lines[0][0], true
}

// check verifies a freshly recovered log against the model and returns what it serves.
func (p *plCheck) check(l *Log, fs vfs.FS) (plState, bool) {
	s := plState{start: l.StartOffset(), end: l.EndOffset(), epochs: l.EpochEntries()}
	m := &p.m
	fail := func(format string, args ...any) (plState, bool) {
		p.errorf("recovered [%d, %d), durable end %d, appended end %d: %s", s.start, s.end, m.durableEnd, m.end(), fmt.Sprintf(format, args...))
		return s, false
	}
	// failTruncate is fail for a defect known to follow a crash inside TruncateTo.
	failTruncate := func(format string, args ...any) (plState, bool) {
		if m.beforeTruncate == nil {
			return fail(format, args...)
		}
		p.errorf("recovered [%d, %d), durable end %d, appended end %d: %s", s.start, s.end, m.durableEnd, m.end(), fmt.Sprintf(format, args...))
		return s, false
	}
	if s.start < 0 || s.start > s.end {
		return fail("start offset after the end offset")
	}
	if s.end < m.durableEnd {
		lost := []string{}
		for _, b := range m.candidates() {
			if b.next > s.end && b.base < m.durableEnd {
				lost = append(lost, fmt.Sprintf("[%d, %d) %d bytes", b.base, b.next, len(b.data)))
			}
		}
		return fail("acknowledged batches lost: %s", strings.Join(lost, ", "))
	}
	if s.end > max(m.maxEnd, 0) {
		return fail("end offset past anything appended (%d)", m.maxEnd)
	}
	if s.start > m.maxStart && s.start > 0 {
		return fail("start offset above any requested start (%d): data below it was lost", m.maxStart)
	}
	if s.start < min(m.ackedStart, s.end) {
		return fail("start offset below the acknowledged start %d", m.ackedStart)
	}

	// Read everything from the start offset: a prefix of what was appended.
	want := map[int64]plBatch{}
	for _, b := range m.candidates() {
		want[b.base] = b
	}
	offset := s.start
	for first := true; offset < s.end; first = false {
		out, err := l.Read(nil, offset, 1<<30, s.end, true)
		if err != nil {
			return fail("read at %d: %v", offset, err)
		}
		if len(out) == 0 {
			return fail("read at %d returned nothing", offset)
		}
		err = batch.Split(out, func(raw []byte) error {
			h, err := batch.Validate(raw)
			if err != nil {
				return fmt.Errorf("batch at offset %d: %w", offset, err)
			}
			wb, ok := want[h.BaseOffset]
			switch {
			case !ok:
				return fmt.Errorf("batch [%d, %d) was never appended at that offset", h.BaseOffset, h.NextOffset())
			case !bytes.Equal(raw, wb.data):
				return fmt.Errorf("batch at %d differs from the one appended there (%d bytes read, %d appended)", h.BaseOffset, len(raw), len(wb.data))
			case first && !(h.BaseOffset <= offset && offset < h.NextOffset()):
				return plGapError{fmt.Errorf("first batch [%d, %d) does not hold the start offset %d", h.BaseOffset, h.NextOffset(), offset)}
			case !first && h.BaseOffset != offset:
				return plGapError{fmt.Errorf("batch at %d where %d was expected: offsets not contiguous", h.BaseOffset, offset)}
			}
			first = false
			s.batches = append(s.batches, wb)
			offset = h.NextOffset()
			return nil
		})
		if gap := (plGapError{}); errors.As(err, &gap) {
			return failTruncate("%v", err)
		}
		if err != nil {
			return fail("%v", err)
		}
	}
	if offset != s.end {
		return fail("the last batch ends at %d, not at the end offset", offset)
	}

	// Checkpoints never ahead of the log.
	if rp, ok := p.readCheckpoint(fs, recoveryPointCheckpoint); ok && rp > s.end {
		return fail("recovery point checkpoint %d past the end offset after Open", rp)
	}
	for _, e := range s.epochs {
		if e.StartOffset > s.end {
			return fail("leader epoch entry %v past the end offset (entries %v)", e, s.epochs)
		}
	}
	// The epoch cache agrees with the batches' leader epochs.
	if why := epochDisagreement(s); why != "" {
		p.errorf("%s", why)
		if p.failed {
			return s, false
		}
	}
	return s, true
}

// epochDisagreement says how the recovered leader epoch cache disagrees with the leader epochs
// of the batches the log serves, "" when it does not: every batch from the start offset on must
// be covered by the entry of its own epoch.
func epochDisagreement(s plState) string {
	for _, b := range s.batches {
		if len(s.epochs) == 0 || b.base < s.epochs[0].StartOffset {
			if b.base >= s.start {
				return fmt.Sprintf("batch [%d, %d) of epoch %d has no leader epoch entry (entries %v)", b.base, b.next, b.epoch, s.epochs)
			}
			continue
		}
		covering := s.epochs[0]
		for _, e := range s.epochs {
			if e.StartOffset <= b.base {
				covering = e
			}
		}
		if covering.Epoch != b.epoch {
			return fmt.Sprintf("batch [%d, %d) has leader epoch %d, the epoch cache says %d (entries %v)", b.base, b.next, b.epoch, covering.Epoch, s.epochs)
		}
	}
	return ""
}

// plGapError is a hole in the offsets the log serves.
type plGapError struct{ error }

// onlyEpochAtEndDropped reports whether o is s less an epoch entry that started at the end offset.
func (s plState) onlyEpochAtEndDropped(o plState) bool {
	if s.start != o.start || s.end != o.end || len(s.batches) != len(o.batches) || len(o.epochs) != len(s.epochs)-1 {
		return false
	}
	last := s.epochs[len(s.epochs)-1]
	return last.StartOffset == s.end && fmt.Sprint(o.epochs) == fmt.Sprint(s.epochs[:len(s.epochs)-1])
}

// diff describes how two recovered states differ, "" if they do not.
func (s plState) diff(o plState) string {
	var d []string
	if s.start != o.start || s.end != o.end {
		d = append(d, fmt.Sprintf("[%d, %d) became [%d, %d)", s.start, s.end, o.start, o.end))
	}
	if len(s.batches) != len(o.batches) {
		d = append(d, fmt.Sprintf("%d batches became %d", len(s.batches), len(o.batches)))
	}
	if fmt.Sprint(s.epochs) != fmt.Sprint(o.epochs) {
		d = append(d, fmt.Sprintf("epochs %v became %v", s.epochs, o.epochs))
	}
	return strings.Join(d, "; ")
}
