package tests

// Crash tests as users crash the broker: franz-go (kgo) producers with their default batching
// (idempotent, acks=all, batches up to 1 MB, 10 ms linger) write as fast as they can while the
// broker binary is killed with SIGKILL, also in the middle of segment rolls and of segment
// deletion. After every restart each partition is read back with a kgo consumer from its log
// start offset to its high watermark and checked against every acknowledgement: each acknowledged
// record at its acknowledged offset with its value, offsets contiguous, no record stored twice,
// each producer's records in the order it produced them.
//
// Rounds: THORSTREAM_CRASH_ROUNDS (default 3; `make crash` runs 10).

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// crashRounds is THORSTREAM_CRASH_ROUNDS, or 3.
func crashRounds(t *testing.T) int {
	t.Helper()
	v := os.Getenv("THORSTREAM_CRASH_ROUNDS")
	if v == "" {
		return 3
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		t.Fatalf("THORSTREAM_CRASH_ROUNDS=%q is not a positive number", v)
	}
	return n
}

// crashRecordID names a record of a crash test: its producer and its sequence number among that
// producer's records.
type crashRecordID struct {
	producer int
	seq      int64
}

func (id crashRecordID) String() string { return fmt.Sprintf("p%d-s%d", id.producer, id.seq) }

// crashValue returns the value of record id with size bytes: a "p<producer>-s<seq>-n<size>|"
// prefix, then bytes drawn from a generator seeded with id. The value describes itself, so a
// reader can rebuild it from its prefix and compare every byte.
func crashValue(id crashRecordID, size int) []byte {
	prefix := fmt.Appendf(nil, "%s-n%d|", id, size)
	size = max(size, len(prefix))
	v := make([]byte, size, size+8) // the spare capacity takes the last word's overhang
	n := copy(v, prefix)
	rng := rand.New(rand.NewPCG(uint64(id.producer), uint64(id.seq)))
	for i := n; i < size; i += 8 {
		binary.LittleEndian.PutUint64(v[i:i+8], rng.Uint64())
	}
	return v
}

// parseCrashValue reads the prefix crashValue wrote and rebuilds the whole value it promises.
func parseCrashValue(v []byte) (crashRecordID, []byte, bool) {
	bar := bytes.IndexByte(v, '|')
	if bar < 0 || bar > 64 {
		return crashRecordID{}, nil, false
	}
	var id crashRecordID
	var size int
	if _, err := fmt.Sscanf(string(v[:bar]), "p%d-s%d-n%d", &id.producer, &id.seq, &size); err != nil || size < 0 || size > 64<<20 {
		return crashRecordID{}, nil, false
	}
	return id, crashValue(id, size), true
}

// crashAck is an acknowledged record: the offset the broker gave it and which record it was.
type crashAck struct {
	offset int64
	id     crashRecordID
}

// crashProducer is one kgo client producing records of random sizes.
type crashProducer struct {
	id      int
	client  *kgo.Client
	keyed   bool // keyed records are hash partitioned; the others go through the sticky partitioner
	sizeMin int
	sizeMax int
	next    int64      // next sequence number: the producing goroutine's alone
	rng     *rand.Rand // sizes: the producing goroutine's alone
}

// crashLoad is the producers of one crash test and every acknowledgement they received. The
// producers live across broker restarts, as a user's would: they reconnect and retry what was in
// flight, which the broker must recognise as duplicates.
type crashLoad struct {
	t          *testing.T
	topic      string
	partitions int32
	producers  []*crashProducer

	kgoLog *syncBuffer // the producers' kgo log (info and above), for diagnosing a failure

	mu    sync.Mutex
	acked [][]crashAck // per partition, in the order the acknowledgements arrived; guarded by mu
	// lastAckedBy is each producer's highest acknowledged offset in each partition (-1: none);
	// guarded by mu
	lastAckedBy [][]int64
	failed      int      // records whose promise reported an error; guarded by mu
	firstErr    error    // guarded by mu
	dataLoss    []string // partitions where a producer detected data loss; guarded by mu

	// rate bounds each producer's value bytes per second (0: as fast as it can); set between
	// rounds only
	rate int

	roundAcks atomic.Int64 // acknowledgements since the round started
	stopping  atomic.Bool  // tells the producing goroutines to stop
	running   sync.WaitGroup
}

// newCrashLoad makes producers kgo clients of addr for topic, each with opts added to kgo's
// defaults (every other producer keys its records), and values of sizeMin to sizeMax bytes.
func newCrashLoad(t *testing.T, addr, topic string, partitions int32, producers, sizeMin, sizeMax int, opts ...kgo.Opt) *crashLoad {
	t.Helper()
	l := &crashLoad{t: t, topic: topic, partitions: partitions, acked: make([][]crashAck, partitions), kgoLog: &syncBuffer{}}
	for i := range producers {
		last := make([]int64, partitions)
		for p := range last {
			last[p] = -1
		}
		l.lastAckedBy = append(l.lastAckedBy, last)
		all := append([]kgo.Opt{
			kgo.SeedBrokers(addr),
			kgo.WithLogger(kgo.BasicLogger(l.kgoLog, kgo.LogLevelInfo, func() string { return fmt.Sprintf("producer %d: ", i) })),
			kgo.DefaultProduceTopic(topic),
			// Enough room for several full 1 MB batches per partition, so the producers are never
			// the bottleneck, with a byte bound that keeps large records from using gigabytes.
			kgo.MaxBufferedRecords(200_000),
			kgo.MaxBufferedBytes(64 << 20),
			kgo.ProducerOnDataLossDetected(func(topic string, partition int32) {
				l.mu.Lock()
				l.dataLoss = append(l.dataLoss, fmt.Sprintf("producer %d: %s/%d", i, topic, partition))
				l.mu.Unlock()
			}),
		}, opts...)
		cl, err := kgo.NewClient(all...)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(cl.Close)
		l.producers = append(l.producers, &crashProducer{
			id: i, client: cl, keyed: i%2 == 1, sizeMin: sizeMin, sizeMax: sizeMax,
			rng: rand.New(rand.NewPCG(uint64(i), uint64(time.Now().UnixNano()))),
		})
	}
	return l
}

// produce sends p's next record, of size bytes (or a random size when size is 0), with key if
// not nil, records its acknowledgement, and returns its size.
func (l *crashLoad) produce(p *crashProducer, size int, key []byte) int {
	if size == 0 {
		size = p.sizeMin + p.rng.IntN(p.sizeMax-p.sizeMin+1)
	}
	id := crashRecordID{p.id, p.next}
	p.next++
	rec := &kgo.Record{Value: crashValue(id, size), Key: key}
	if key == nil && p.keyed {
		rec.Key = fmt.Appendf(nil, "key-%d", id.seq%97)
	}
	p.client.Produce(context.Background(), rec, func(r *kgo.Record, err error) {
		l.mu.Lock()
		defer l.mu.Unlock()
		if err != nil {
			l.failed++
			if l.firstErr == nil {
				l.firstErr = fmt.Errorf("%s: %w", id, err)
			}
			return
		}
		l.acked[r.Partition] = append(l.acked[r.Partition], crashAck{r.Offset, id})
		l.lastAckedBy[id.producer][r.Partition] = max(l.lastAckedBy[id.producer][r.Partition], r.Offset)
		l.roundAcks.Add(1)
	})
	return size
}

// start sets every producer writing as fast as it can until stop.
func (l *crashLoad) start() {
	l.roundAcks.Store(0)
	l.stopping.Store(false)
	for _, p := range l.producers {
		l.running.Add(1)
		go func() {
			defer l.running.Done()
			began, sent := time.Now(), 0
			for !l.stopping.Load() {
				sent += l.produce(p, 0, nil)
				if l.rate > 0 {
					if ahead := time.Duration(float64(sent)/float64(l.rate)*float64(time.Second)) - time.Since(began); ahead > 0 {
						time.Sleep(ahead) // rate limiting, not waiting for a condition
					}
				}
			}
		}()
	}
}

// stop tells the producers to produce no more records; what they buffered is still sent.
func (l *crashLoad) stop() { l.stopping.Store(true) }

// drain waits for the producing goroutines to return and for every buffered record to be
// acknowledged or failed. The broker must be up.
func (l *crashLoad) drain() {
	l.t.Helper()
	done := make(chan struct{})
	go func() { l.running.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(3 * time.Minute):
		l.t.Fatal("the producers did not return within three minutes after the restart")
	}
	for _, p := range l.producers {
		c, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		err := p.client.Flush(c)
		cancel()
		if err != nil {
			l.t.Fatalf("producer %d: flushing after the restart: %v (%d records still buffered)", p.id, err, p.client.BufferedProduceRecords())
		}
	}
}

// crashSnapshot is a copy of what the producers were told so far.
type crashSnapshot struct {
	acked    [][]crashAck // per partition, in acknowledgement order
	total    int          // acknowledged records
	failed   int          // failed records
	firstErr error        // the first failure
	dataLoss []string     // partitions where a producer detected data loss
}

// snapshot copies the acknowledgements so far.
func (l *crashLoad) snapshot() crashSnapshot {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := crashSnapshot{acked: make([][]crashAck, len(l.acked)), failed: l.failed, firstErr: l.firstErr,
		dataLoss: append([]string(nil), l.dataLoss...)}
	for p := range l.acked {
		s.acked[p] = append([]crashAck(nil), l.acked[p]...)
		s.total += len(s.acked[p])
	}
	return s
}

// safeToDelete returns, per partition, the lowest of the producers' highest acknowledged
// offsets (-1: a producer has none there yet). Each producer's acknowledgements of a partition
// arrive in offset order, so every batch below that offset has been acknowledged to the
// producer that wrote it: deleting it cannot make a producer retry a batch the broker no longer
// has. (A retried batch the broker has forgotten is answered OUT_OF_ORDER_SEQUENCE_NUMBER; seeing
// the log start offset above its last acknowledged offset, kgo then bumps its epoch and sends
// the batch again, and whatever of it was stored is stored twice.)
func (l *crashLoad) safeToDelete() []int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]int64, l.partitions)
	for p := range out {
		out[p] = l.lastAckedBy[0][p]
		for _, last := range l.lastAckedBy[1:] {
			out[p] = min(out[p], last[p])
		}
	}
	return out
}

// highestAcked returns the highest acknowledged offset of each partition (-1: none).
func (l *crashLoad) highestAcked() []int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]int64, l.partitions)
	for p := range out {
		out[p] = -1
		for _, last := range l.lastAckedBy {
			out[p] = max(out[p], last[p])
		}
	}
	return out
}

// kgoEvents returns the lines of the producers' kgo log about producer ids, epochs and sequence
// numbers (resets after an OUT_OF_ORDER_SEQUENCE_NUMBER, for instance).
func (l *crashLoad) kgoEvents() []string {
	var out []string
	for _, line := range strings.Split(l.kgoLog.String(), "\n") {
		if strings.Contains(line, "epoch") || strings.Contains(line, "sequence") || strings.Contains(line, "producer ID") {
			out = append(out, line)
		}
	}
	return out
}

// crashPoll polls cond every couple of milliseconds until it holds, failing after limit.
func crashPoll(t *testing.T, limit time.Duration, what func() string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %v: %s", limit, what())
		}
		time.Sleep(2 * time.Millisecond) // polling interval of a condition with a deadline
	}
}

// countOutput counts the occurrences of s in the output of the broker's current run.
func (b *syncBuffer) countOutput(s string) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return bytes.Count(b.buf.Bytes(), []byte(s))
}

// startupReport is what a broker logged while it recovered its logs.
type startupReport struct {
	tornTails    int
	bytesDropped []int64
	tornTailEnds map[string]int64 // partition directory name: where its torn tail was cut
	warnings     []string         // every WARN and ERROR line
}

var (
	bytesDroppedField   = regexp.MustCompile(`"bytes_dropped": (\d+)`)
	validEndOffsetField = regexp.MustCompile(`"valid_end_offset": (\d+)`)
	dirField            = regexp.MustCompile(`"dir": "([^"]+)"`)
)

// inspectStartup reads a broker's start-up output. A fenced partition or a corrupt batch fails
// the test: after kill -9 with fsync always, recovery must leave every partition writable.
func inspectStartup(t *testing.T, out string) startupReport {
	t.Helper()
	r := startupReport{tornTailEnds: map[string]int64{}}
	for _, line := range strings.Split(out, "\n") {
		if !strings.Contains(line, "\tWARN\t") && !strings.Contains(line, "\tERROR\t") {
			continue
		}
		r.warnings = append(r.warnings, line)
		if strings.Contains(line, "truncated torn tail") {
			r.tornTails++
			if m := bytesDroppedField.FindStringSubmatch(line); m != nil {
				n, _ := strconv.ParseInt(m[1], 10, 64)
				r.bytesDropped = append(r.bytesDropped, n)
			}
			dir, end := dirField.FindStringSubmatch(line), validEndOffsetField.FindStringSubmatch(line)
			if dir == nil || end == nil {
				t.Errorf("a torn tail line without its directory or valid end offset: %s", line)
				continue
			}
			n, _ := strconv.ParseInt(end[1], 10, 64)
			r.tornTailEnds[filepath.Base(dir[1])] = n
		}
		if strings.Contains(line, "fenced") || strings.Contains(line, "corrupt batch") {
			t.Errorf("after the restart: %s", line)
		}
	}
	return r
}

// crashVerifyOptions says what a verification may accept beyond the strict rule.
type crashVerifyOptions struct {
	// belowStartAllowed accepts acknowledged records below the log start offset: segment
	// deletion removed them on purpose.
	belowStartAllowed bool
	// minStart is the lowest log start offset each partition may have (acknowledged
	// DeleteRecords, an earlier round's start), or nil.
	minStart []int64
	// exact requires every stored record to be an acknowledged one (no crash happened).
	exact bool
}

// crashVerifyResult is what one verification found.
type crashVerifyResult struct {
	starts, ends []int64 // per partition: log start offset and high watermark
	stored       int     // records read
	deleted      int     // acknowledged records below the log start offset
	unacked      int     // stored records nobody acknowledged (their acknowledgement died with the broker)
	lost         int     // acknowledged records missing or changed
	problems     []string
}

func (r *crashVerifyResult) problem(format string, args ...any) {
	if len(r.problems) < 40 {
		r.problems = append(r.problems, fmt.Sprintf(format, args...))
	}
}

// errLogStartMoved: segment deletion raised the log start offset while a partition was read.
var errLogStartMoved = errors.New("tests: the log start offset moved while reading")

// verifyCrashLog reads every partition of topic from its log start offset to its high watermark
// and checks it against acked (per partition, in acknowledgement order).
func verifyCrashLog(t *testing.T, addr, topic string, acked [][]crashAck, opts crashVerifyOptions) crashVerifyResult {
	t.Helper()
	partitions := int32(len(acked))
	res := crashVerifyResult{starts: make([]int64, partitions), ends: make([]int64, partitions)}
	seen := make(map[crashRecordID]string) // where each stored record was found
	for p := range partitions {
		var stored []crashRecordID
		for attempt := 0; ; attempt++ {
			start := listOffset(t, addr, topic, p, -2).Offset
			end := listOffset(t, addr, topic, p, -1).Offset
			res.starts[p], res.ends[p] = start, end
			var err error
			stored, err = readCrashPartition(t, addr, topic, p, start, end, &res)
			if errors.Is(err, errLogStartMoved) && attempt < 5 {
				continue // retention ran meanwhile: read again from the new start
			}
			if err != nil {
				t.Fatalf("partition %d: %v", p, err)
			}
			break
		}
		start, end := res.starts[p], res.ends[p]
		res.stored += len(stored)
		if opts.minStart != nil && start < opts.minStart[p] {
			res.problem("partition %d: log start offset %d, below %d, which was acknowledged or seen before the crash", p, start, opts.minStart[p])
		}
		ackedAt := make(map[int64]bool, len(acked[p]))
		for _, a := range acked[p] {
			ackedAt[a.offset] = true
		}
		lastSeq := map[int]int64{}
		for i, id := range stored {
			offset := start + int64(i)
			where := fmt.Sprintf("partition %d offset %d (acknowledged: %v)", p, offset, ackedAt[offset])
			if first, dup := seen[id]; dup {
				res.problem("record %s stored twice: at %s and at %s", id, first, where)
			}
			seen[id] = where
			if last, ok := lastSeq[id.producer]; ok && id.seq <= last {
				res.problem("partition %d offset %d: record %s stored after the same producer's s%d: reordered", p, offset, id, last)
			}
			lastSeq[id.producer] = id.seq
		}
		ackedHere := 0
		lastAckOffset := map[int]int64{}
		for _, a := range acked[p] {
			if last, ok := lastAckOffset[a.id.producer]; ok && a.offset <= last {
				res.problem("partition %d: producer %d was acknowledged offset %d after %d: acknowledgements out of order", p, a.id.producer, a.offset, last)
			}
			lastAckOffset[a.id.producer] = a.offset
			switch {
			case a.offset < start && opts.belowStartAllowed:
				res.deleted++
			case a.offset < start:
				res.lost++
				res.problem("partition %d: acknowledged %s at offset %d is below the log start offset %d", p, a.id, a.offset, start)
			case a.offset >= end:
				res.lost++
				res.problem("partition %d: acknowledged %s at offset %d is missing: the high watermark is %d", p, a.id, a.offset, end)
			case a.offset >= start+int64(len(stored)):
				res.lost++
				res.problem("partition %d: acknowledged %s at offset %d was not read: reading stopped at %d", p, a.id, a.offset, start+int64(len(stored)))
			case stored[a.offset-start] != a.id:
				res.lost++
				res.problem("partition %d: offset %d holds %s, acknowledged as %s", p, a.offset, stored[a.offset-start], a.id)
			default:
				ackedHere++
			}
		}
		res.unacked += len(stored) - ackedHere
		if opts.exact && len(stored) != ackedHere {
			res.problem("partition %d: %d records stored, %d acknowledged: no crash happened, so they must be the same", p, len(stored), ackedHere)
		}
	}
	return res
}

// readCrashPartition consumes partition p of topic over [start, end) with a kgo consumer and
// returns which record each offset holds, after checking every value byte for byte. Structural
// problems (a gap in the offsets, a value that is no produced record) go into res.
func readCrashPartition(t *testing.T, addr, topic string, p int32, start, end int64, res *crashVerifyResult) ([]crashRecordID, error) {
	t.Helper()
	if start > end {
		res.problem("partition %d: log start offset %d above the high watermark %d", p, start, end)
		return nil, nil
	}
	if start == end {
		return nil, nil
	}
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(addr),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {p: kgo.NewOffset().At(start)}}),
		kgo.ConsumeResetOffset(kgo.NoResetOffset()),
		kgo.FetchMaxBytes(64<<20),
		kgo.FetchMaxPartitionBytes(8<<20),
	)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	c, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	ids := make([]crashRecordID, 0, end-start)
	next := start
	for next < end {
		fetches := cl.PollFetches(c)
		if c.Err() != nil {
			return nil, fmt.Errorf("read offsets %d to %d of [%d, %d) in three minutes", start, next, start, end)
		}
		for _, e := range fetches.Errors() {
			if errors.Is(e.Err, kerr.OffsetOutOfRange) {
				return nil, errLogStartMoved
			}
			return nil, fmt.Errorf("fetch at %d: %w", next, e.Err)
		}
		var structural error
		fetches.EachRecord(func(r *kgo.Record) {
			if structural != nil || r.Offset >= end {
				return
			}
			if r.Offset != next {
				structural = fmt.Errorf("partition %d: offset %d follows %d: a gap in the log (or a step back)", p, r.Offset, next-1)
				return
			}
			id, want, ok := parseCrashValue(r.Value)
			switch {
			case !ok:
				res.problem("partition %d offset %d: a %d-byte value that no producer wrote (starts %q)", p, r.Offset, len(r.Value), r.Value[:min(len(r.Value), 32)])
			case !bytes.Equal(r.Value, want):
				res.problem("partition %d offset %d: the value of %s is damaged (%d bytes, want %d)", p, r.Offset, id, len(r.Value), len(want))
			}
			ids = append(ids, id)
			next++
		})
		if structural != nil {
			res.problem("%v", structural)
			return ids, nil
		}
	}
	return ids, nil
}

// crashEnv is one crash test's broker, topic and producers, and the figures it reports.
type crashEnv struct {
	t          *testing.T
	b          *kafkaBroker
	topic      string
	partitions int32
	load       *crashLoad
	rounds     int
	tornTails  int
	dropped    []int64
	lastStarts []int64
	kgoEvents  int // kgo log events already reported
}

// newCrashEnv starts a broker with the default settings, creates topic with configs and makes
// the producers.
func newCrashEnv(t *testing.T, topic string, partitions int32, configs map[string]string, producers, sizeMin, sizeMax int, opts ...kgo.Opt) *crashEnv {
	t.Helper()
	b := startKafkaBroker(t)
	admin := newKafkaClient(t, b.kafkaAddr)
	createTopic(t, admin, topic, partitions, configs)
	admin.Close()
	return &crashEnv{
		t: t, b: b, topic: topic, partitions: partitions,
		load:       newCrashLoad(t, b.kafkaAddr, topic, partitions, producers, sizeMin, sizeMax, opts...),
		lastStarts: make([]int64, partitions),
	}
}

// crashRound runs one round: the producers write until killNow returns, the broker is killed
// with SIGKILL, afterKill (if any) runs, the broker restarts, the producers finish what they had
// buffered, and the whole log is verified.
func (e *crashEnv) crashRound(round int, killNow func(), afterKill func(), opts crashVerifyOptions) crashVerifyResult {
	t := e.t
	t.Helper()
	e.load.start()
	killNow()
	e.b.kill()
	e.load.stop()
	killedAt := e.load.roundAcks.Load()
	ackedBeforeKill := e.load.highestAcked()
	if afterKill != nil {
		afterKill()
	}
	before := e.b.output.String()
	e.b.restart()
	startup := inspectStartup(t, e.b.output.String())
	// With fsync always, an acknowledged batch is on disk: a torn tail can only be data nobody
	// was told was stored.
	for p, last := range ackedBeforeKill {
		if end, torn := startup.tornTailEnds[fmt.Sprintf("%s-%d", e.topic, p)]; torn && end <= last {
			t.Errorf("round %d: partition %d's torn tail was cut at offset %d, but offset %d was acknowledged before the kill", round, p, end, last)
		}
	}
	e.tornTails += startup.tornTails
	e.dropped = append(e.dropped, startup.bytesDropped...)
	e.load.drain()
	e.rounds++

	snap := e.load.snapshot()
	acked, total, failed, firstErr, dataLoss := snap.acked, snap.total, snap.failed, snap.firstErr, snap.dataLoss
	if opts.minStart == nil {
		opts.minStart = e.lastStarts
	} else {
		for p := range opts.minStart {
			opts.minStart[p] = max(opts.minStart[p], e.lastStarts[p])
		}
	}
	res := verifyCrashLog(t, e.b.kafkaAddr, e.topic, acked, opts)
	copy(e.lastStarts, res.starts)
	t.Logf("round %d: killed with %d records acknowledged in the round; %d acknowledged in all, %d failed, %d stored, %d stored unacknowledged, %d deleted below the log start; log start %v, high watermark %v; torn tails %d, bytes_dropped %v",
		round, killedAt, total, failed, res.stored, res.unacked, res.deleted, res.starts, res.ends, startup.tornTails, startup.bytesDropped)
	for _, w := range startup.warnings {
		t.Logf("round %d restart: %s", round, w)
	}
	if firstErr != nil {
		t.Logf("round %d: first failed record: %v", round, firstErr)
	}
	if len(dataLoss) > 0 {
		t.Errorf("round %d: the producers detected data loss: %v", round, dataLoss)
	}
	events := e.load.kgoEvents()
	if len(events) > e.kgoEvents {
		t.Logf("round %d: kgo producer id and sequence events:\n%s", round, strings.Join(events[e.kgoEvents:], "\n"))
		e.kgoEvents = len(events)
	}
	if len(res.problems) > 0 {
		e.summary(total, res.lost)
		t.Fatalf("round %d: %d acknowledged records lost; problems:\n%s\nbroker output before the kill (tail):\n%s\nbroker output after the restart:\n%s",
			round, res.lost, strings.Join(res.problems, "\n"), crashTail(before, 40), e.b.output.String())
	}
	return res
}

// summary prints the figures of the whole test in one line.
func (e *crashEnv) summary(acknowledged, lost int) {
	e.t.Logf("crash rounds=%d acknowledged=%d lost=%d torn_tails=%d bytes_dropped=%v", e.rounds, acknowledged, lost, e.tornTails, e.dropped)
}

// finish prints the summary and fails a test in which nothing was acknowledged.
func (e *crashEnv) finish() {
	total := e.load.snapshot().total
	e.summary(total, 0)
	if total == 0 {
		e.t.Fatal("no record was acknowledged")
	}
}

// crashTail returns the last n lines of s.
func crashTail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// ackTarget waits until the round has at least n acknowledgements.
func (e *crashEnv) ackTarget(n int64) {
	crashPoll(e.t, 3*time.Minute, func() string {
		return fmt.Sprintf("%d of %d records acknowledged:\n%s", e.load.roundAcks.Load(), n, e.b.output.String())
	}, func() bool { return e.load.roundAcks.Load() >= n })
}

// TestCrashKafkaIdempotentProducers kills the broker (default settings: fsync always, 1 GiB
// segments) while two kgo producers with default batching write 50 B to 2 KB records to four
// partitions as fast as they can.
func TestCrashKafkaIdempotentProducers(t *testing.T) {
	e := newCrashEnv(t, "crash-kgo", 4, nil, 2, 50, 2000)
	for round := range crashRounds(t) {
		target := int64(15_000 + rand.IntN(15_000))
		e.crashRound(round, func() { e.ackTarget(target) }, nil, crashVerifyOptions{})
	}
	e.finish()
}

// TestCrashKafkaLargeRecords kills the broker while kgo producers write 100 KB to 1 MB records in
// batches of up to 2 MiB (the topic's max.message.bytes raised to match).
func TestCrashKafkaLargeRecords(t *testing.T) {
	const maxBatch = 2 << 20
	e := newCrashEnv(t, "crash-large", 3, map[string]string{"max.message.bytes": strconv.Itoa(maxBatch)},
		2, 100_000, 1_000_000, kgo.ProducerBatchMaxBytes(maxBatch))
	for round := range crashRounds(t) {
		target := int64(40 + rand.IntN(60))
		e.crashRound(round, func() { e.ackTarget(target) }, nil, crashVerifyOptions{})
	}
	e.finish()
}

// logSegments counts the segment files of a partition directory.
func logSegments(t *testing.T, dir string) int {
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatalf("listing %s: %v", dir, err)
	}
	n := 0
	for _, en := range entries {
		if strings.HasSuffix(en.Name(), ".log") {
			n++
		}
	}
	return n
}

// TestCrashKafkaDuringSegmentRoll kills the broker right after a partition rolled to a new
// segment: the topic's segments are 1 MiB, so about every full batch rolls one.
func TestCrashKafkaDuringSegmentRoll(t *testing.T) {
	const topic = "crash-roll"
	e := newCrashEnv(t, topic, 3, map[string]string{"segment.bytes": strconv.Itoa(1 << 20)}, 2, 50, 2000)
	for round := range crashRounds(t) {
		part := round % 3
		dir := filepath.Join(e.b.dataDir, fmt.Sprintf("%s-%d", topic, part))
		target := int64(10_000 + rand.IntN(10_000))
		e.crashRound(round, func() {
			e.ackTarget(target)
			// Kill as soon as the partition opens its next segment.
			segments := logSegments(t, dir)
			crashPoll(t, 2*time.Minute, func() string { return "no segment roll in " + dir },
				func() bool { return logSegments(t, dir) > segments })
		}, nil, crashVerifyOptions{})
	}
	if n := logSegments(t, filepath.Join(e.b.dataDir, topic+"-0")); n < 3 {
		t.Fatalf("partition 0 has %d segments: the test did not roll any", n)
	}
	e.finish()
}

// TestCrashKafkaDuringSegmentDeletion kills the broker while it deletes segments: a topic with
// 1 MiB segments and retention.bytes of 64 MiB. The broker checks retention every 30 s (not
// configurable from the binary), so every third round waits for the first retention pass after
// the start and kills the broker at its first "deleting segment" line, while it deletes hundreds
// of segments; the other rounds delete continuously with DeleteRecords (the same deletion code,
// run on demand) and kill at a deletion. Acknowledged records below the log start offset were
// deleted on purpose; everything from the log start offset on must be there, and the log start
// offset must not go below an acknowledged DeleteRecords or below where it was before the crash.
//
// Both ways delete acknowledged batches only: retention.bytes is far above what the producers
// can have in flight (five 1 MB batches per partition each), and DeleteRecords stays below every
// producer's last acknowledged offset (see safeToDelete). Deleting a batch still in flight is
// legitimate, but its producer's retry after the restart then duplicates it.
func TestCrashKafkaDuringSegmentDeletion(t *testing.T) {
	const (
		topic      = "crash-retention"
		partitions = 3
		keep       = 1500 // records DeleteRecords leaves below the safe offset (1 to 2 segments)
	)
	e := newCrashEnv(t, topic, partitions, map[string]string{
		"segment.bytes":   strconv.Itoa(1 << 20),
		"retention.bytes": strconv.Itoa(64 << 20),
	}, 2, 50, 2000)
	admin := newKafkaClient(t, e.b.kafkaAddr)
	lowWatermarks := make([]int64, partitions) // acknowledged DeleteRecords
	for round := range crashRounds(t) {
		startsBefore := append([]int64(nil), e.lastStarts...)
		byRetention := round%3 == 0
		// Waiting for the retention pass, full speed would write gigabytes to read back: a
		// steady 20 MB/s in all still fills a few hundred segments before the pass.
		e.load.rate = 0
		if byRetention {
			e.load.rate = 10 << 20
		}
		var (
			deleting   sync.WaitGroup
			deleteStop atomic.Bool
			deletions  atomic.Int64
			deleteErr  atomic.Value
			watermarks sync.Mutex // guards lowWatermarks while the deleting goroutine runs
		)
		killNow := func() {
			if byRetention {
				crashPoll(t, 2*time.Minute, func() string { return "no retention pass in two minutes:\n" + e.b.output.String() },
					func() bool { return e.b.output.countOutput(`"why": "retention"`) > 0 })
				return
			}
			deleting.Add(1)
			go func() {
				defer deleting.Done()
				for !deleteStop.Load() {
					time.Sleep(5 * time.Millisecond) // pacing: DeleteRecords about every 5 ms
					last := e.load.safeToDelete()
					req := kmsg.NewPtrDeleteRecordsRequest()
					req.TimeoutMillis = 10_000
					rt := kmsg.NewDeleteRecordsRequestTopic()
					rt.Topic = topic
					for p := range int32(partitions) {
						if below := last[p] + 1 - keep; below > 0 {
							rp := kmsg.NewDeleteRecordsRequestTopicPartition()
							rp.Partition, rp.Offset = p, below
							rt.Partitions = append(rt.Partitions, rp)
						}
					}
					if len(rt.Partitions) == 0 {
						continue
					}
					req.Topics = []kmsg.DeleteRecordsRequestTopic{rt}
					c, cancel := context.WithTimeout(context.Background(), 15*time.Second)
					resp, err := admin.Request(c, req)
					cancel()
					if err != nil {
						continue // the broker is gone or restarting
					}
					for _, rtp := range resp.(*kmsg.DeleteRecordsResponse).Topics {
						for _, rp := range rtp.Partitions {
							if rp.ErrorCode != 0 {
								if !deleteStop.Load() {
									deleteErr.Store(fmt.Sprintf("partition %d: error %d", rp.Partition, rp.ErrorCode))
								}
								continue
							}
							watermarks.Lock()
							if rp.LowWatermark > lowWatermarks[rp.Partition] {
								lowWatermarks[rp.Partition] = rp.LowWatermark
								deletions.Add(1)
							}
							watermarks.Unlock()
						}
					}
				}
			}()
			e.ackTarget(int64(8_000 + rand.IntN(8_000)))
			crashPoll(t, 2*time.Minute, func() string { return fmt.Sprintf("%d low watermark moves", deletions.Load()) },
				func() bool { return deletions.Load() >= 10 })
			// Kill at the next segment the broker deletes.
			n := e.b.output.countOutput("deleting segment")
			crashPoll(t, 2*time.Minute, func() string { return "no segment deleted:\n" + e.b.output.String() },
				func() bool { return e.b.output.countOutput("deleting segment") > n })
		}
		afterKill := func() {
			deleteStop.Store(true)
			deleting.Wait()
		}
		watermarks.Lock()
		minStart := append([]int64(nil), lowWatermarks...)
		watermarks.Unlock()
		res := e.crashRound(round, killNow, func() {
			afterKill()
			copy(minStart, lowWatermarks)
		}, crashVerifyOptions{belowStartAllowed: true, minStart: minStart})
		if v := deleteErr.Load(); v != nil {
			t.Fatalf("round %d: DeleteRecords failed while the broker ran: %v", round, v)
		}
		moved := false
		for p := range partitions {
			moved = moved || res.starts[p] > startsBefore[p]
		}
		if !moved {
			t.Fatalf("round %d: no log start offset moved (%v before, %v after): no segment was deleted", round, startsBefore, res.starts)
		}
		how := "DeleteRecords"
		if byRetention {
			how = "retention"
		}
		t.Logf("round %d: killed while deleting by %s; acknowledged low watermarks %v", round, how, lowWatermarks)
	}
	e.finish()
}

// TestCrashKafkaCleanStopLargeBatches stops the broker with SIGTERM after a kgo producer with
// default settings wrote 20,000 records, a 70 KB record and a small record after it (batches
// larger than 64 KiB with more data behind them), then checks everything is there after the
// restart, with no recovery work: a clean stop leaves no torn tail.
func TestCrashKafkaCleanStopLargeBatches(t *testing.T) {
	const (
		topic      = "clean-stop"
		partitions = 3
	)
	b := startKafkaBroker(t)
	admin := newKafkaClient(t, b.kafkaAddr)
	createTopic(t, admin, topic, partitions, nil)
	admin.Close()
	l := newCrashLoad(t, b.kafkaAddr, topic, partitions, 1, 50, 2000)
	p := l.producers[0]
	total := 0
	rounds := crashRounds(t)
	for round := range rounds {
		for range 20_000 {
			l.produce(p, 0, nil)
		}
		key := fmt.Appendf(nil, "large-%d", round) // the same key: the same partition
		l.produce(p, 70*1024, key)
		if err := p.client.Flush(ctx(t, 2*time.Minute)); err != nil {
			t.Fatal(err)
		}
		l.produce(p, 100, key)
		if err := p.client.Flush(ctx(t, 2*time.Minute)); err != nil {
			t.Fatal(err)
		}
		snap := l.snapshot()
		acked, n, failed, firstErr := snap.acked, snap.total, snap.failed, snap.firstErr
		if failed > 0 {
			t.Fatalf("round %d: %d records failed, the first: %v", round, failed, firstErr)
		}
		total = n
		b.stop()
		if out := b.output.String(); !strings.Contains(out, "thorstream stopped cleanly") {
			t.Fatalf("round %d: no clean stop logged after SIGTERM:\n%s", round, out)
		}
		b.restart()
		startup := inspectStartup(t, b.output.String())
		if startup.tornTails > 0 {
			t.Fatalf("round %d: a torn tail after a clean stop (bytes_dropped %v):\n%s", round, startup.bytesDropped, b.output.String())
		}
		res := verifyCrashLog(t, b.kafkaAddr, topic, acked, crashVerifyOptions{exact: true})
		for part := range int32(partitions) {
			if res.ends[part] != int64(len(acked[part])) {
				res.problem("partition %d: high watermark %d after the restart, %d records acknowledged", part, res.ends[part], len(acked[part]))
			}
		}
		t.Logf("round %d: %d records acknowledged in all, %d stored; high watermarks %v", round, n, res.stored, res.ends)
		if len(res.problems) > 0 {
			t.Logf("crash rounds=%d acknowledged=%d lost=%d", round+1, total, res.lost)
			t.Fatalf("round %d: after a clean stop:\n%s\nbroker output after the restart:\n%s", round, strings.Join(res.problems, "\n"), b.output.String())
		}
	}
	t.Logf("crash rounds=%d acknowledged=%d lost=0 torn_tails=0", rounds, total)
}
