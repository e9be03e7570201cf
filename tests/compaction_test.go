package tests

// End-to-end tests of log compaction (cleanup.policy=compact) against the real broker binary,
// with franz-go clients: what a consumer reads back after the cleaner ran (the latest record of
// every key, byte for byte, at its original offset), tombstones kept for delete.retention.ms
// after they were first cleaned and removed by a later pass, a kill -9 in the middle of a pass,
// and producers that a slow cleaner must not hold up.
//
// The tests read the partition directory to know what the cleaner did: the segment files
// (<base>.log; the last one is the active segment, never cleaned), the files of a pass in
// progress (<base>.log.cleaned and its indexes) and the cleaner checkpoint, whose first entry
// "0 <first dirty offset> 0" says up to where the log is cleaned and whose "1 <offset> <ms>"
// entries say when the offsets below were first cleaned.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// compactLong reports whether the long variants were asked for (more kill rounds, more data).
func compactLong() bool { return os.Getenv("THORSTREAM_COMPACTION_LONG") == "1" || abuseLong() }

// compactSeed is the seed of a test's random choices: THORSTREAM_COMPACTION_SEED to replay a run,
// else a fresh one, logged.
func compactSeed(t *testing.T) uint64 {
	t.Helper()
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("THORSTREAM_COMPACTION_SEED"); s != "" {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("THORSTREAM_COMPACTION_SEED=%q: %v", s, err)
		}
		seed = n
	}
	t.Logf("seed %d (THORSTREAM_COMPACTION_SEED=%d replays this run)", seed, seed)
	return seed
}

// compactDirState is what a partition directory shows of the cleaner.
type compactDirState struct {
	bases      []int64  // segment base offsets, ascending; the last is the active segment
	logBytes   int64    // bytes of the .log files
	cleaned    []string // files of a pass in progress (*.cleaned)
	tmp        []string // checkpoints being written (*.tmp)
	firstDirty int64    // from the cleaner checkpoint; -1 when there is none yet
	horizons   [][2]int64
}

// activeBase is the base offset of the active segment.
func (s compactDirState) activeBase() int64 {
	if len(s.bases) == 0 {
		return 0
	}
	return s.bases[len(s.bases)-1]
}

// caughtUp reports that the cleaner cleaned everything it may (all but the active segment) and
// no pass is writing.
func (s compactDirState) caughtUp() bool {
	return len(s.bases) >= 2 && len(s.cleaned) == 0 && s.firstDirty >= s.activeBase()
}

// firstCleanedMs is when offset was first cleaned (unix ms), from the checkpoint's horizons.
func (s compactDirState) firstCleanedMs(offset int64) (int64, bool) {
	for _, h := range s.horizons {
		if h[0] > offset {
			return h[1], true
		}
	}
	return 0, false
}

func (s compactDirState) String() string {
	return fmt.Sprintf("%d segments %v (%d bytes), first dirty %d, horizons %v, cleaned files %v, tmp files %v",
		len(s.bases), s.bases, s.logBytes, s.firstDirty, s.horizons, s.cleaned, s.tmp)
}

// compactInspect reads a partition directory. Files the broker removes while it is read are
// skipped.
func compactInspect(t *testing.T, dir string) compactDirState {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatalf("listing %s: %v", dir, err)
	}
	st := compactDirState{firstDirty: -1}
	for _, e := range entries {
		name := e.Name()
		switch {
		case strings.HasSuffix(name, ".cleaned"):
			st.cleaned = append(st.cleaned, name)
		case strings.HasSuffix(name, ".tmp"):
			st.tmp = append(st.tmp, name)
		case strings.HasSuffix(name, ".log"):
			base, err := strconv.ParseInt(strings.TrimSuffix(name, ".log"), 10, 64)
			if err != nil {
				continue
			}
			info, err := e.Info()
			if err != nil {
				continue // removed by a swap meanwhile
			}
			st.bases = append(st.bases, base)
			st.logBytes += info.Size()
		}
	}
	slices.Sort(st.bases)
	data, err := os.ReadFile(filepath.Join(dir, "cleaner-offset-checkpoint"))
	if errors.Is(err, os.ErrNotExist) {
		return st
	}
	if err != nil {
		t.Fatalf("reading the cleaner checkpoint: %v", err)
	}
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	if len(lines) < 2 {
		t.Fatalf("cleaner checkpoint %q: no header", data)
	}
	for _, line := range lines[2:] {
		f := strings.Fields(line)
		if len(f) != 3 {
			t.Fatalf("cleaner checkpoint %q: line %q", data, line)
		}
		var n [3]int64
		for i := range f {
			if n[i], err = strconv.ParseInt(f[i], 10, 64); err != nil {
				t.Fatalf("cleaner checkpoint %q: line %q", data, line)
			}
		}
		switch n[0] {
		case 0:
			st.firstDirty = n[1]
		case 1:
			st.horizons = append(st.horizons, [2]int64{n[1], n[2]})
		}
	}
	return st
}

// compactWait polls the partition directory (every 50 ms, up to limit) until cond holds.
func compactWait(t *testing.T, dir string, limit time.Duration, what string, cond func(compactDirState) bool) compactDirState {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		st := compactInspect(t, dir)
		if cond(st) {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v; %s", what, limit, st)
		}
		time.Sleep(50 * time.Millisecond) // polling interval of a condition with a deadline
	}
}

// compactRec is one acknowledged record, as produced.
type compactRec struct {
	key     []byte
	value   []byte // nil: a tombstone
	headers []kgo.RecordHeader
	ts      int64 // ms
}

// compactModel is every acknowledged record of partition 0 by offset.
type compactModel struct {
	mu    sync.Mutex
	acked map[int64]compactRec
}

func newCompactModel() *compactModel { return &compactModel{acked: map[int64]compactRec{}} }

// end is one past the highest acknowledged offset.
func (m *compactModel) end() int64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	end := int64(0)
	for o := range m.acked {
		end = max(end, o+1)
	}
	return end
}

// compactGen makes the updates: values carry their key and version and are partly compressible,
// a quarter of the records carry headers, timestamps are explicit and distinct.
type compactGen struct {
	rng     *rand.Rand
	topic   string
	version map[int]int
	tsBase  int64
	n       int64
}

func newCompactGen(seed uint64, topic string) *compactGen {
	return &compactGen{rng: rand.New(rand.NewPCG(seed, seed^0x5eed)), topic: topic, version: map[int]int{},
		tsBase: time.Now().Add(-time.Hour).UnixMilli()}
}

func (g *compactGen) record(key int, tombstone bool) *kgo.Record {
	g.version[key]++
	g.n++
	r := &kgo.Record{Topic: g.topic, Key: fmt.Appendf(nil, "key-%04d", key), Timestamp: time.UnixMilli(g.tsBase + g.n)}
	if !tombstone {
		v := fmt.Appendf(nil, "key-%04d version %d: ", key, g.version[key])
		size := 10 + g.rng.IntN(350)
		if g.rng.IntN(2) == 0 {
			v = append(v, bytes.Repeat([]byte{'a' + byte(key%26)}, size)...)
		} else {
			for range size {
				v = append(v, byte(g.rng.UintN(256)))
			}
		}
		r.Value = v
	}
	if g.rng.IntN(4) == 0 {
		r.Headers = []kgo.RecordHeader{{Key: "key", Value: r.Key}, {Key: "version", Value: []byte(strconv.Itoa(g.version[key]))}}
	}
	return r
}

// produce sends records spread over the clients (each with its own codec), records every
// acknowledgement in m and waits for all of them.
func (m *compactModel) produce(t *testing.T, clients []*kgo.Client, records []*kgo.Record) {
	t.Helper()
	c := ctx(t, 2*time.Minute)
	var failed sync.Once
	for i, r := range records {
		clients[i%len(clients)].Produce(c, r, func(r *kgo.Record, err error) {
			if err != nil {
				failed.Do(func() { t.Errorf("produce of %s: %v", r.Key, err) })
				return
			}
			if r.Partition != 0 {
				failed.Do(func() { t.Errorf("record %s went to partition %d", r.Key, r.Partition) })
			}
			m.mu.Lock()
			m.acked[r.Offset] = compactRec{key: r.Key, value: r.Value, headers: r.Headers, ts: r.Timestamp.UnixMilli()}
			m.mu.Unlock()
		})
	}
	for _, cl := range clients {
		if err := cl.Flush(c); err != nil {
			t.Fatal(err)
		}
	}
	if t.Failed() {
		t.FailNow()
	}
}

// compactReadAll reads partition 0 of topic from the start up to end with a consumer outside any
// group, failing on a fetch error.
func compactReadAll(t *testing.T, addr, topic string, end int64) []*kgo.Record {
	t.Helper()
	cl := newKafkaClient(t, addr, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {0: kgo.NewOffset().AtStart()}}),
		kgo.FetchMaxWait(200*time.Millisecond))
	defer cl.Close()
	c := ctx(t, 2*time.Minute)
	var out []*kgo.Record
	next := int64(0)
	for next < end {
		fetches := cl.PollFetches(c)
		if c.Err() != nil {
			t.Fatalf("read up to offset %d of %d before the deadline", next, end)
		}
		for _, e := range fetches.Errors() {
			t.Fatalf("fetch %s/%d: %v", e.Topic, e.Partition, e.Err)
		}
		for _, r := range fetches.Records() {
			out = append(out, r)
			next = r.Offset + 1
		}
	}
	return out
}

// compactCheck is what a read-back must show besides the model.
type compactCheck struct {
	// cleanedUpTo, when positive: offsets below were cleaned, so each key is there at most once
	// below it, and every record at or above it is there.
	cleanedUpTo int64
	// exact: a pass cleaned everything below cleanedUpTo with every key of it mapped (the
	// cleaner caught up), so below it is exactly the latest record of each key as of
	// cleanedUpTo (a tombstone may be gone).
	exact bool
	// tombstonesKept and tombstonesGone name keys whose latest record is a cleaned tombstone
	// that must still be there, or must be gone with every earlier record of the key.
	tombstonesKept, tombstonesGone map[string]bool
}

// verify checks a read-back against the model: offsets increasing, every record byte for byte
// the one acknowledged at its offset, the latest record of every key there, nothing uncleaned
// missing, and what chk adds.
func (m *compactModel) verify(t *testing.T, got []*kgo.Record, chk compactCheck) {
	t.Helper()
	m.mu.Lock()
	defer m.mu.Unlock()
	last := int64(-1)
	seen := map[int64]bool{}
	cleanedKeys := map[string]int64{}
	for _, r := range got {
		if r.Offset <= last {
			t.Fatalf("offset %d after %d", r.Offset, last)
		}
		last = r.Offset
		seen[r.Offset] = true
		want, ok := m.acked[r.Offset]
		if !ok {
			t.Fatalf("offset %d: a record nobody acknowledged (key %q)", r.Offset, r.Key)
		}
		if !bytes.Equal(r.Key, want.key) || !bytes.Equal(r.Value, want.value) || (r.Value == nil) != (want.value == nil) ||
			r.Timestamp.UnixMilli() != want.ts || !compactHeadersEqual(r.Headers, want.headers) {
			t.Fatalf("offset %d: read key %q value %d bytes (nil %v) ts %d headers %v; produced key %q value %d bytes (nil %v) ts %d headers %v",
				r.Offset, r.Key, len(r.Value), r.Value == nil, r.Timestamp.UnixMilli(), r.Headers,
				want.key, len(want.value), want.value == nil, want.ts, want.headers)
		}
		if chk.cleanedUpTo > 0 && r.Offset < chk.cleanedUpTo {
			if prev, dup := cleanedKeys[string(r.Key)]; dup {
				t.Fatalf("key %q at offsets %d and %d, both below the cleaned offset %d", r.Key, prev, r.Offset, chk.cleanedUpTo)
			}
			cleanedKeys[string(r.Key)] = r.Offset
		}
		if chk.tombstonesGone[string(r.Key)] {
			t.Fatalf("offset %d: key %q is still there although its tombstone expired and a later pass ran", r.Offset, r.Key)
		}
	}
	// The latest record of every key is there (a tombstone may be gone), and every record the
	// cleaner has not reached is there.
	latest := map[string]int64{}
	for o, r := range m.acked {
		if prev, ok := latest[string(r.key)]; !ok || o > prev {
			latest[string(r.key)] = o
		}
		if chk.cleanedUpTo > 0 && o >= chk.cleanedUpTo && !seen[o] {
			t.Fatalf("offset %d (key %q) at or above the cleaned offset %d is missing", o, r.key, chk.cleanedUpTo)
		}
	}
	for key, o := range latest {
		tomb := m.acked[o].value == nil
		switch {
		case !tomb && !seen[o]:
			t.Fatalf("key %q: its latest record (offset %d) is missing", key, o)
		case tomb && chk.tombstonesKept[key] && !seen[o]:
			t.Fatalf("key %q: its tombstone (offset %d) is gone before delete.retention.ms", key, o)
		}
	}
	if chk.exact {
		// Below the cleaned offset: exactly the latest record of each key as of that offset.
		below := map[string]int64{}
		for o, r := range m.acked {
			if o < chk.cleanedUpTo {
				if prev, ok := below[string(r.key)]; !ok || o > prev {
					below[string(r.key)] = o
				}
			}
		}
		for key, o := range cleanedKeys {
			if below[key] != o {
				t.Fatalf("key %q: offset %d below the cleaned offset %d is not its latest there (%d)", key, o, chk.cleanedUpTo, below[key])
			}
		}
		for key, o := range below {
			if m.acked[o].value != nil && cleanedKeys[key] != o {
				t.Fatalf("key %q: its latest record below the cleaned offset %d (offset %d) is missing", key, chk.cleanedUpTo, o)
			}
		}
	}
}

func compactHeadersEqual(a, b []kgo.RecordHeader) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Key != b[i].Key || !bytes.Equal(a[i].Value, b[i].Value) {
			return false
		}
	}
	return true
}

// compactProducers returns one producer a codec, franz-go defaults otherwise (idempotent,
// acks=all, batches up to 1 MB).
func compactProducers(t *testing.T, addr string, codecs ...kgo.CompressionCodec) []*kgo.Client {
	t.Helper()
	var out []*kgo.Client
	for _, c := range codecs {
		out = append(out, newKafkaClient(t, addr, kgo.ProducerBatchCompression(c)))
	}
	return out
}

var compactCodecs = []kgo.CompressionCodec{kgo.NoCompression(), kgo.GzipCompression(), kgo.SnappyCompression(),
	kgo.Lz4Compression(), kgo.ZstdCompression()}

// compactCreate creates a one-partition topic with configs through kadm.
func compactCreate(t *testing.T, admin *kadm.Client, topic string, configs map[string]string) {
	t.Helper()
	cfg := map[string]*string{}
	for k, v := range configs {
		cfg[k] = kmsg.StringPtr(v)
	}
	resp, err := admin.CreateTopics(ctx(t, 30*time.Second), 1, 1, cfg, topic)
	if err != nil {
		t.Fatalf("create %s: %v", topic, err)
	}
	if r, ok := resp[topic]; !ok || r.Err != nil {
		t.Fatalf("create %s: %+v", topic, resp)
	}
}

// TestCompactionUserScenario is a user's compacted topic: 100,000 updates over 1,000 keys from
// producers with franz-go's defaults (one a codec), a few hundred of them tombstones, read back
// after the cleaner ran; then the tombstones outlive delete.retention.ms and a later pass
// removes them.
func TestCompactionUserScenario(t *testing.T) {
	const (
		topic       = "compact-users"
		keys        = 1000
		updates     = 100_000
		deleted     = 200 // keys 800-999 end with a tombstone
		retentionMs = 3000
	)
	seed := compactSeed(t)
	b := startKafkaBroker(t, "THORSTREAM_LOG_CLEANER_BACKOFF_MS=200")
	admin := kadm.NewClient(newKafkaClient(t, b.kafkaAddr))
	compactCreate(t, admin, topic, map[string]string{
		"cleanup.policy":            "compact",
		"delete.retention.ms":       strconv.Itoa(retentionMs),
		"min.cleanable.dirty.ratio": "0.01",
		"segment.bytes":             "1048576",
	})
	compactCreate(t, admin, "compact-defaults", map[string]string{"cleanup.policy": "compact"})
	dir := compactPartitionDir(b.brokerProc, topic)

	// The configs as DescribeConfigs shows them: set on the topic, or the broker's defaults.
	described, err := admin.DescribeTopicConfigs(ctx(t, 30*time.Second), topic, "compact-defaults")
	if err != nil {
		t.Fatal(err)
	}
	wantConfigs := map[string]map[string]struct {
		value  string
		source kmsg.ConfigSource
	}{
		topic: {
			"cleanup.policy":            {"compact", kmsg.ConfigSourceDynamicTopicConfig},
			"delete.retention.ms":       {"3000", kmsg.ConfigSourceDynamicTopicConfig},
			"min.cleanable.dirty.ratio": {"0.01", kmsg.ConfigSourceDynamicTopicConfig},
			"min.compaction.lag.ms":     {"0", kmsg.ConfigSourceDefaultConfig},
		},
		"compact-defaults": {
			"cleanup.policy":            {"compact", kmsg.ConfigSourceDynamicTopicConfig},
			"min.cleanable.dirty.ratio": {"0.5", kmsg.ConfigSourceDefaultConfig},
			"delete.retention.ms":       {"86400000", kmsg.ConfigSourceDefaultConfig},
		},
	}
	for _, rc := range described {
		if rc.Err != nil {
			t.Fatalf("describe %s: %v %s", rc.Name, rc.Err, rc.ErrMessage)
		}
		want := wantConfigs[rc.Name]
		found := 0
		for _, c := range rc.Configs {
			w, ok := want[c.Key]
			if !ok {
				continue
			}
			found++
			if c.Value == nil || *c.Value != w.value || c.Source != w.source {
				value := "<null>"
				if c.Value != nil {
					value = *c.Value
				}
				t.Errorf("%s: %s = %s from %v, want %s from %v", rc.Name, c.Key, value, c.Source, w.value, w.source)
			}
		}
		if found != len(want) {
			t.Errorf("%s: described %+v, want all of %v", rc.Name, rc.Configs, want)
		}
	}
	if len(described) != 2 {
		t.Fatalf("described %d topics, want 2", len(described))
	}

	// A record without a key has no place in a compacted log.
	keyless := newKafkaClient(t, b.kafkaAddr, kgo.DefaultProduceTopic(topic))
	err = keyless.ProduceSync(ctx(t, 30*time.Second), &kgo.Record{Value: []byte("no key")}).FirstErr()
	if !errors.Is(err, kerr.InvalidRecord) {
		t.Fatalf("a record without a key: %v, want INVALID_RECORD", err)
	}
	keyless.Close()

	// 100,000 updates: 99,800 over every key, about 100 of them tombstones; then one batch of
	// tombstones for keys 800-999.
	m := newCompactModel()
	gen := newCompactGen(seed, topic)
	producers := compactProducers(t, b.kafkaAddr, compactCodecs...)
	records := make([]*kgo.Record, 0, updates)
	for range updates - deleted {
		records = append(records, gen.record(gen.rng.IntN(keys), gen.rng.IntN(1000) == 0))
	}
	begin := time.Now()
	m.produce(t, producers, records)
	var payload int64
	for _, r := range records {
		payload += int64(len(r.Key) + len(r.Value))
	}
	t.Logf("produced %d records (%.1f MB of keys and values) in %v", len(records), float64(payload)/1e6, time.Since(begin))
	tombstoner := newKafkaClient(t, b.kafkaAddr, kgo.ManualFlushing())
	records = records[:0]
	for k := keys - deleted; k < keys; k++ {
		records = append(records, gen.record(k, true))
	}
	m.produce(t, []*kgo.Client{tombstoner}, records) // one batch: all in one segment
	var lastTombstone int64
	deletedKeys := map[string]bool{}
	for _, r := range records {
		lastTombstone = max(lastTombstone, r.Offset)
		deletedKeys[string(r.Key)] = true
	}

	// Updates of the other keys, a little at a time, until the tombstones' segment rolls: the one
	// pass that cleans them is the last one until more is written.
	filler := func(until func(compactDirState) bool) compactDirState {
		deadline := time.Now().Add(time.Minute)
		for {
			if st := compactInspect(t, dir); until(st) {
				return st
			}
			if time.Now().After(deadline) {
				t.Fatalf("no segment roll after a minute of updates: %s", compactInspect(t, dir))
			}
			chunk := make([]*kgo.Record, 50)
			for i := range chunk {
				chunk[i] = gen.record(gen.rng.IntN(keys-deleted), false)
			}
			m.produce(t, producers[:1], chunk)
		}
	}
	filler(func(st compactDirState) bool { return st.activeBase() > lastTombstone })
	end := m.end()
	st := compactWait(t, dir, 2*time.Minute, "the cleaner catching up", func(st compactDirState) bool { return st.caughtUp() })
	cleanedMs, ok := st.firstCleanedMs(lastTombstone)
	if !ok {
		t.Fatalf("no horizon covers the tombstones at %d: %s", lastTombstone, st)
	}
	t.Logf("cleaned in %v: %s", time.Since(begin), st)

	got := compactReadAll(t, b.kafkaAddr, topic, end)
	m.verify(t, got, compactCheck{cleanedUpTo: st.activeBase(), exact: true, tombstonesKept: deletedKeys})
	if earliest := listOffset(t, b.kafkaAddr, topic, 0, -2).Offset; earliest != 0 {
		t.Fatalf("log start offset %d after cleaning, want 0", earliest)
	}
	if latest := listOffset(t, b.kafkaAddr, topic, 0, -1).Offset; latest != end {
		t.Fatalf("end offset %d after cleaning, want %d", latest, end)
	}
	if int64(len(got)) > end/10 || st.logBytes > payload/4 {
		t.Fatalf("read back %d of %d records, %d bytes on disk for %d bytes produced: not compacted", len(got), end, st.logBytes, payload)
	}
	t.Logf("read back %d of %d records, %d bytes on disk for %d bytes of keys and values", len(got), end, st.logBytes, payload)

	// Once delete.retention.ms has passed since the tombstones were cleaned, the next pass
	// removes them and every earlier record of their keys.
	for time.Now().UnixMilli() <= cleanedMs+retentionMs {
		time.Sleep(50 * time.Millisecond) // polling interval of a condition with a deadline
	}
	prevActive := st.activeBase()
	filler(func(st compactDirState) bool { return st.activeBase() > prevActive })
	end = m.end()
	st = compactWait(t, dir, 2*time.Minute, "the pass after delete.retention.ms", func(st compactDirState) bool {
		return st.caughtUp() && st.firstDirty > prevActive
	})
	got = compactReadAll(t, b.kafkaAddr, topic, end)
	m.verify(t, got, compactCheck{cleanedUpTo: st.activeBase(), exact: true, tombstonesGone: deletedKeys})
	if earliest := listOffset(t, b.kafkaAddr, topic, 0, -2).Offset; earliest != 0 {
		t.Fatalf("log start offset %d after the tombstones went, want 0", earliest)
	}
	if latest := listOffset(t, b.kafkaAddr, topic, 0, -1).Offset; latest != end {
		t.Fatalf("end offset %d after the tombstones went, want %d", latest, end)
	}
	t.Logf("after the tombstones expired: read back %d of %d records; %s", len(got), end, st)
}

func compactPartitionDir(b *brokerProc, topic string) string {
	return filepath.Join(b.dataDir, topic+"-0")
}

// TestCompactionKill9DuringCleaning kills the broker at random points of cleaning passes, which a
// rate limit makes last seconds. After each kill the broker restarts with its cleaner off, so
// the directory is seen as recovery left it: no file of the interrupted pass, every key's latest
// record there byte for byte. Then cleaning resumes and, at the end, completes.
func TestCompactionKill9DuringCleaning(t *testing.T) {
	const (
		topic = "compact-kill"
		keys  = 1000
	)
	rounds, perRound := 3, 20_000
	if compactLong() {
		rounds = 12
	}
	seed := compactSeed(t)
	rng := rand.New(rand.NewPCG(seed, 1))
	b := startKafkaBroker(t, "THORSTREAM_LOG_CLEANER_BACKOFF_MS=200", "THORSTREAM_LOG_CLEANER_IO_MAX_BYTES_PER_SECOND=4MiB")
	withCleaner := slices.Clone(b.env)
	admin := kadm.NewClient(newKafkaClient(t, b.kafkaAddr))
	compactCreate(t, admin, topic, map[string]string{
		"cleanup.policy":            "compact",
		"min.cleanable.dirty.ratio": "0.01",
		"segment.bytes":             "1048576",
	})
	dir := compactPartitionDir(b.brokerProc, topic)
	m := newCompactModel()
	gen := newCompactGen(seed, topic)
	midPass := 0
	for round := range rounds {
		producers := compactProducers(t, b.kafkaAddr, compactCodecs[round%len(compactCodecs)], kgo.NoCompression())
		records := make([]*kgo.Record, 0, perRound)
		for range perRound {
			records = append(records, gen.record(gen.rng.IntN(keys), gen.rng.IntN(200) == 0))
		}
		m.produce(t, producers, records)
		// Kill at a random point after a pass started writing. On a slow machine the cleaner
		// may have caught up with the producers already: more updates then roll a segment.
		deadline := time.Now().Add(time.Minute)
		for st := compactInspect(t, dir); len(st.cleaned) == 0; st = compactInspect(t, dir) {
			if time.Now().After(deadline) {
				t.Fatalf("round %d: no pass writing cleaned files within a minute: %s", round, st)
			}
			if st.caughtUp() {
				more := make([]*kgo.Record, 2000)
				for i := range more {
					more[i] = gen.record(gen.rng.IntN(keys), false)
				}
				m.produce(t, producers, more)
				continue
			}
			time.Sleep(20 * time.Millisecond) // polling interval of a condition with a deadline
		}
		for _, p := range producers {
			p.Close()
		}
		delay := time.Duration(rng.IntN(600)) * time.Millisecond
		<-time.After(delay) // the random kill point, not a condition
		b.kill()
		atKill := compactInspect(t, dir)
		if len(atKill.cleaned) > 0 {
			midPass++
		}
		t.Logf("round %d: killed %v after the pass began writing; on disk: %s", round, delay, atKill)

		b.env = append(slices.Clone(withCleaner), "THORSTREAM_LOG_CLEANER_ENABLE=false")
		b.restart()
		after := compactInspect(t, dir)
		if len(after.cleaned) > 0 || len(after.tmp) > 0 {
			t.Fatalf("round %d: files of the interrupted pass left after the restart: %s", round, after)
		}
		end := m.end()
		m.verify(t, compactReadAll(t, b.kafkaAddr, topic, end), compactCheck{cleanedUpTo: max(after.firstDirty, 0)})
		if latest := listOffset(t, b.kafkaAddr, topic, 0, -1).Offset; latest != end {
			t.Fatalf("round %d: end offset %d after the restart, want %d", round, latest, end)
		}
		b.stop()
		b.env = withCleaner
		b.restart()
	}
	if midPass == 0 {
		t.Fatalf("no kill in %d rounds found cleaned files on disk: the test did not interrupt a pass", rounds)
	}
	end := m.end()
	st := compactWait(t, dir, 3*time.Minute, "cleaning completing after the kills", func(st compactDirState) bool { return st.caughtUp() })
	got := compactReadAll(t, b.kafkaAddr, topic, end)
	m.verify(t, got, compactCheck{cleanedUpTo: st.activeBase(), exact: true})
	if int64(len(got)) > end/4 {
		t.Fatalf("read back %d of %d records after cleaning completed", len(got), end)
	}
	t.Logf("%d rounds, %d killed with cleaned files on disk; read back %d of %d records; %s", rounds, midPass, len(got), end, st)
}

// TestCompactionSlowCleanerDoesNotStallProduce produces to a compacted topic that a cleaner
// limited to 64 KiB/s is cleaning (its pass over one 1 MiB segment takes half a minute), and to a
// topic without compaction, and compares with a broker whose cleaner is off, in alternating
// rounds so that both see the same load from the rest of the machine: the throughput of a flood
// of records from one producer, and the latency of single records sent one at a time meanwhile.
func TestCompactionSlowCleanerDoesNotStallProduce(t *testing.T) {
	const (
		compacted = "compact-busy"
		plain     = "plain-busy"
		keys      = 1000
	)
	rounds, perRound := 5, 50_000 // records a topic a round: about 10 MB each
	if compactLong() {
		rounds, perRound = 8, 60_000
	}
	ref := startKafkaBroker(t, "THORSTREAM_LOG_CLEANER_ENABLE=false")
	slow := startKafkaBroker(t, "THORSTREAM_LOG_CLEANER_BACKOFF_MS=200", "THORSTREAM_LOG_CLEANER_IO_MAX_BYTES_PER_SECOND=64KiB")
	type side struct {
		name      string
		b         *kafkaBroker
		cl, probe *kgo.Client
		bytes     int64
		elapsed   time.Duration
		worst     time.Duration   // slowest round
		latencies []time.Duration // of the single records
		cleaning  int             // rounds that began and ended with a pass writing
	}
	sides := []*side{{name: "cleaner off", b: ref}, {name: "cleaner at 64 KiB/s", b: slow}}
	seed := compactSeed(t)
	gen := newCompactGen(seed, compacted)
	probeGen := newCompactGen(seed+1, compacted) // the probe's own: it runs beside the flood
	for _, s := range sides {
		admin := kadm.NewClient(newKafkaClient(t, s.b.kafkaAddr))
		compactCreate(t, admin, compacted, map[string]string{"cleanup.policy": "compact", "min.cleanable.dirty.ratio": "0.01", "segment.bytes": "1048576"})
		compactCreate(t, admin, plain, map[string]string{"segment.bytes": "1048576"})
		s.cl = newKafkaClient(t, s.b.kafkaAddr)
		s.probe = newKafkaClient(t, s.b.kafkaAddr)
		// Fill the compacted topic until its first segment rolls: the slow cleaner then starts a
		// pass that outlasts the rounds.
		dir := compactPartitionDir(s.b.brokerProc, compacted)
		m := newCompactModel()
		for len(compactInspect(t, dir).bases) < 2 {
			chunk := make([]*kgo.Record, 500)
			for i := range chunk {
				chunk[i] = gen.record(gen.rng.IntN(keys), false)
			}
			m.produce(t, []*kgo.Client{s.cl}, chunk)
		}
	}
	slowDir := compactPartitionDir(slow.brokerProc, compacted)
	compactWait(t, slowDir, time.Minute, "the slow cleaner's pass writing", func(st compactDirState) bool { return len(st.cleaned) > 0 })

	const deadline = time.Minute // for a round, and for any one record
	round := func(s *side) {
		records := make([]*kgo.Record, 0, 2*perRound)
		var n int64
		for range perRound {
			r := gen.record(gen.rng.IntN(keys), false)
			records = append(records, r, &kgo.Record{Topic: plain, Value: r.Value, Timestamp: r.Timestamp})
			n += int64(len(r.Key) + 2*len(r.Value))
		}
		dir := compactPartitionDir(s.b.brokerProc, compacted)
		cleaningBefore := len(compactInspect(t, dir).cleaned) > 0
		c, cancel := context.WithTimeout(context.Background(), deadline)
		defer cancel()
		// Single records, one at a time, while the flood runs.
		stopProbe := make(chan struct{})
		probeDone := make(chan []time.Duration)
		go func() {
			var lat []time.Duration
			defer func() { probeDone <- lat }()
			for i := 0; ; i++ {
				select {
				case <-stopProbe:
					return
				default:
				}
				r := probeGen.record(0, false)
				if i%2 == 1 {
					r.Topic, r.Key = plain, nil
				}
				r.Value = r.Value[:32]
				begin := time.Now()
				if err := s.probe.ProduceSync(c, r).FirstErr(); err != nil {
					t.Errorf("%s: a single record to %s: %v", s.name, r.Topic, err)
					return
				}
				lat = append(lat, time.Since(begin))
			}
		}()
		var wg sync.WaitGroup
		var failed sync.Once
		begin := time.Now()
		for _, r := range records {
			wg.Add(1)
			s.cl.Produce(c, r, func(r *kgo.Record, err error) {
				defer wg.Done()
				if err != nil {
					failed.Do(func() { t.Errorf("%s: produce to %s: %v", s.name, r.Topic, err) })
				}
			})
		}
		wg.Wait()
		took := time.Since(begin)
		close(stopProbe)
		s.latencies = append(s.latencies, <-probeDone...)
		if c.Err() != nil || t.Failed() {
			t.Fatalf("%s: a round of %d records did not complete within %v", s.name, len(records), deadline)
		}
		if len(compactInspect(t, dir).cleaned) > 0 && cleaningBefore {
			s.cleaning++
		}
		s.bytes += n
		s.elapsed += took
		s.worst = max(s.worst, took)
	}
	for range rounds {
		for _, s := range sides {
			round(s)
		}
	}
	rate := func(s *side) float64 { return float64(s.bytes) / s.elapsed.Seconds() / 1e6 }
	for _, s := range sides {
		slices.Sort(s.latencies)
		pct := func(p float64) time.Duration {
			if len(s.latencies) == 0 {
				return 0
			}
			return s.latencies[min(len(s.latencies)-1, int(p*float64(len(s.latencies))))]
		}
		t.Logf("%s: %.1f MB/s over %d rounds (slowest round %v), %d rounds with a pass writing throughout; single records: %d, p50 %v, p99 %v, max %v",
			s.name, rate(s), rounds, s.worst, s.cleaning, len(s.latencies), pct(0.5), pct(0.99), pct(1))
	}
	if sides[1].cleaning == 0 {
		t.Fatalf("the slow cleaner was not writing during any round: %s", compactInspect(t, slowDir))
	}
	if ratio := rate(sides[1]) / rate(sides[0]); ratio < 0.3 {
		t.Fatalf("produce while the slow cleaner runs: %.1f MB/s, %.0f%% of the %.1f MB/s without cleaning", rate(sides[1]), 100*ratio, rate(sides[0]))
	}
}
