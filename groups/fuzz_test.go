package groups

import (
	"bytes"
	"encoding/binary"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/thorstream/thorstream/codec/batch"
)

// updateCorpus rewrites the checked-in seed corpus of FuzzLoad from loadSeeds:
//
//	go test ./groups -run TestFuzzLoadCorpus -update-fuzz-corpus
var updateCorpus = flag.Bool("update-fuzz-corpus", false, "rewrite testdata/fuzz/FuzzLoad from the package's encoding")

const loadCorpusDir = "testdata/fuzz/FuzzLoad"

// FuzzLoad feeds arbitrary bytes to Load, as a damaged offsets log would. Load must never panic,
// and whatever it accepted (all of the input or a prefix before an error) must leave a table that
// still serves Fetch, FetchAll, Commit and DeleteTopic. Replaying the same bytes a second time
// changes nothing, since commit records are last-writer-wins: that is what makes it safe for the
// broker to replay the whole offsets log after a restart.
//
// Seeds: testdata/fuzz/FuzzLoad (valid logs written through Commit and a fake Store, and broken
// variants of them), kept in step with loadSeeds by TestFuzzLoadCorpus.
func FuzzLoad(f *testing.F) {
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		o := NewOffsets(&fakeStore{})
		err := o.Load(data)
		once := snapshot(o)

		again := NewOffsets(&fakeStore{})
		err1 := again.Load(data)
		err2 := again.Load(data)
		if (err == nil) != (err1 == nil) || (err1 == nil) != (err2 == nil) {
			t.Fatalf("Load is not deterministic: %v, then %v, then %v", err, err1, err2)
		}
		if twice := snapshot(again); !slices.Equal(once, twice) {
			t.Fatalf("loading the same bytes twice changed the state:\nonce:  %v\ntwice: %v", once, twice)
		}

		// The table stays usable after whatever Load did.
		for _, e := range once {
			c, ok := o.Fetch(e.group, e.topic, e.partition)
			if !ok || c != e.committed {
				t.Fatalf("FetchAll lists %+v but Fetch gives %+v, %v", e, c, ok)
			}
		}
		errs := commit(t, o, "after-load", 7, Commit{Topic: "t", Partition: 0, Offset: 1})
		if errs[0] != nil {
			t.Fatalf("commit after Load: %v", errs[0])
		}
		if c, ok := o.Fetch("after-load", "t", 0); !ok || c.Offset != 1 {
			t.Fatalf("commit after Load not visible: %+v, %v", c, ok)
		}
		for _, e := range once {
			o.DeleteTopic(e.topic)
		}
	})
}

// loadedEntry is one committed offset, comparable, for snapshots.
type loadedEntry struct {
	group, topic string
	partition    int32
	committed    Committed
}

// snapshot lists every committed offset of o in a stable order.
func snapshot(o *Offsets) []loadedEntry {
	o.mu.RLock()
	out := make([]loadedEntry, 0, len(o.committed))
	for k, c := range o.committed {
		out = append(out, loadedEntry{k.group, k.topic, k.partition, c})
	}
	o.mu.RUnlock()
	slices.SortFunc(out, func(a, b loadedEntry) int {
		if c := strings.Compare(a.group, b.group); c != 0 {
			return c
		}
		if c := strings.Compare(a.topic, b.topic); c != 0 {
			return c
		}
		return int(a.partition) - int(b.partition)
	})
	return out
}

// loadSeed is one seed of FuzzLoad: an offsets log and what Load makes of it.
type loadSeed struct {
	log     []byte
	wantErr bool
	want    []loadedEntry // for valid logs: the state after Load
}

// persistedLog runs commits (one Commit call each) through a fake Store and returns the log the
// Store holds, exactly as the broker would persist it.
func persistedLog(t testing.TB, calls ...func(o *Offsets, done func([]error))) []byte {
	s := &fakeStore{}
	o := NewOffsets(s)
	for i, call := range calls {
		call(o, func(errs []error) {
			for _, err := range errs {
				if err != nil {
					t.Fatalf("commit call %d: %v", i, err)
				}
			}
		})
	}
	return s.log()
}

func commitCall(group string, nowMs int64, commits ...Commit) func(o *Offsets, done func([]error)) {
	return func(o *Offsets, done func([]error)) { o.Commit(group, commits, nowMs, done) }
}

// tombstoneBatch is a batch of one record with a null value for the key: Commit never writes one,
// but Load must forget the offset when it meets one (a future offset expiry writes them).
func tombstoneBatch(group, topic string, partition int32, nowMs int64) []byte {
	var b batch.Builder
	b.Reset()
	b.Append(encodeKey(group, topic, partition), nil, nowMs, nil)
	return bytes.Clone(b.Finish())
}

// rawRecordBatch is a batch of one record with arbitrary key and value bytes.
func rawRecordBatch(key, value []byte) []byte {
	var b batch.Builder
	b.Reset()
	b.Append(key, value, 1_000, nil)
	return bytes.Clone(b.Finish())
}

func loadSeeds(t testing.TB) map[string]loadSeed {
	const t0 = 1_700_000_000_000
	one := persistedLog(t, commitCall("g", t0, Commit{Topic: "orders", Partition: 0, Offset: 10, Metadata: "m"}))
	many := persistedLog(t,
		commitCall("g1", t0, Commit{Topic: "a", Partition: 0, Offset: 5}, Commit{Topic: "a", Partition: 1, Offset: 7}, Commit{Topic: "b", Partition: 2, Offset: 0}),
		commitCall("g2", t0+1, Commit{Topic: "a", Partition: 0, Offset: 100, Metadata: strings.Repeat("x", 300)}),
		commitCall("g1", t0+2, Commit{Topic: "a", Partition: 0, Offset: 6}), // overwrites g1/a/0
	)
	withTombstone := append(bytes.Clone(many), tombstoneBatch("g1", "a", 1, t0+3)...)
	longMetadata := persistedLog(t, commitCall("g", t0, Commit{Topic: "t", Partition: 3, Offset: 1 << 40, Metadata: strings.Repeat("meta", MaxMetadataBytes/4)}))

	mut := func(b []byte, fn func(b []byte) []byte) []byte { return fn(bytes.Clone(b)) }
	keyV1 := encodeKey("g", "t", 0)
	valueV1 := encodeValue(1, "", t0)
	return map[string]loadSeed{
		"valid-empty-log":      {log: nil},
		"valid-one-commit":     {log: one, want: []loadedEntry{{"g", "orders", 0, Committed{10, "m", t0}}}},
		"valid-three-batches":  {log: many, want: []loadedEntry{{"g1", "a", 0, Committed{6, "", t0 + 2}}, {"g1", "a", 1, Committed{7, "", t0}}, {"g1", "b", 2, Committed{0, "", t0}}, {"g2", "a", 0, Committed{100, strings.Repeat("x", 300), t0 + 1}}}},
		"valid-tombstone":      {log: withTombstone, want: []loadedEntry{{"g1", "a", 0, Committed{6, "", t0 + 2}}, {"g1", "b", 2, Committed{0, "", t0}}, {"g2", "a", 0, Committed{100, strings.Repeat("x", 300), t0 + 1}}}},
		"valid-long-metadata":  {log: longMetadata, want: []loadedEntry{{"g", "t", 3, Committed{1 << 40, strings.Repeat("meta", MaxMetadataBytes/4), t0}}}},
		"broken-truncated":     {log: one[:len(one)-1], wantErr: true},
		"broken-header-only":   {log: one[:batch.HeaderSize-3], wantErr: true},
		"broken-trailing-byte": {log: append(bytes.Clone(one), 0), wantErr: true},
		"broken-bad-magic":     {log: mut(one, func(b []byte) []byte { b[16] = 1; return b }), wantErr: true},
		"broken-compressed":    {log: mut(one, func(b []byte) []byte { b[22] |= 1; return b }), wantErr: true},
		"broken-negative-length": {log: mut(one, func(b []byte) []byte {
			binary.BigEndian.PutUint32(b[8:], 0xfffffff0)
			return b
		}), wantErr: true},
		"broken-record-count": {log: mut(one, func(b []byte) []byte {
			binary.BigEndian.PutUint32(b[57:], 1<<30)
			return b
		}), wantErr: true},
		"broken-key-version":     {log: rawRecordBatch(append([]byte{0, 2}, keyV1[2:]...), valueV1), wantErr: true},
		"broken-key-trailing":    {log: rawRecordBatch(append(bytes.Clone(keyV1), 9), valueV1), wantErr: true},
		"broken-key-string-long": {log: rawRecordBatch([]byte{0, 1, 0x7f, 0xff, 'g'}, valueV1), wantErr: true},
		"broken-key-null":        {log: rawRecordBatch(nil, valueV1), wantErr: true},
		"broken-value-version":   {log: rawRecordBatch(keyV1, append([]byte{0, 0}, valueV1[2:]...)), wantErr: true},
		"broken-value-short":     {log: rawRecordBatch(keyV1, valueV1[:len(valueV1)-1]), wantErr: true},
		"broken-value-empty":     {log: rawRecordBatch(keyV1, []byte{}), wantErr: true},
		"broken-after-valid":     {log: append(bytes.Clone(one), rawRecordBatch(keyV1, []byte{0, 1})...), wantErr: true},
		"broken-garbage":         {log: []byte("not an offsets log at all, just text that is long enough for a header"), wantErr: true},
	}
}

// TestFuzzLoadCorpus checks that every seed of FuzzLoad is checked in, byte for byte as the
// package's encoding produces it today, and that Load does with it what the seed says: the
// expected state for valid logs, an error for broken ones.
func TestFuzzLoadCorpus(t *testing.T) {
	seeds := loadSeeds(t)
	if *updateCorpus {
		if err := os.MkdirAll(loadCorpusDir, 0o755); err != nil {
			t.Fatal(err)
		}
		for name, s := range seeds {
			content := fmt.Sprintf("go test fuzz v1\n[]byte(%s)\n", strconv.Quote(string(s.log)))
			if err := os.WriteFile(filepath.Join(loadCorpusDir, name), []byte(content), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	for name, s := range seeds {
		t.Run(name, func(t *testing.T) {
			raw, err := os.ReadFile(filepath.Join(loadCorpusDir, name))
			if err != nil {
				t.Fatalf("seed not checked in (run with -update-fuzz-corpus): %v", err)
			}
			got, err := parseCorpusBytes(string(raw))
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, s.log) {
				t.Fatalf("checked-in seed differs from the package's encoding (run with -update-fuzz-corpus)")
			}
			o := NewOffsets(&fakeStore{})
			err = o.Load(got)
			if s.wantErr {
				if err == nil {
					t.Fatalf("Load accepted a broken log; state %v", snapshot(o))
				}
				return
			}
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			if st := snapshot(o); !slices.Equal(st, s.want) {
				t.Fatalf("after Load:\ngot  %v\nwant %v", st, s.want)
			}
		})
	}
	// No stray files: every file in the corpus directory is a seed this test knows.
	entries, err := os.ReadDir(loadCorpusDir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if _, ok := seeds[e.Name()]; !ok {
			t.Errorf("%s/%s is not a seed of loadSeeds: add it there or delete it", loadCorpusDir, e.Name())
		}
	}
}

// parseCorpusBytes reads a one-value "go test fuzz v1" file holding a []byte.
func parseCorpusBytes(s string) ([]byte, error) {
	rest, ok := strings.CutPrefix(s, "go test fuzz v1\n[]byte(")
	if !ok {
		return nil, fmt.Errorf("not a go test fuzz v1 file of one []byte: %.40q", s)
	}
	rest, ok = strings.CutSuffix(strings.TrimRight(rest, "\n"), ")")
	if !ok {
		return nil, fmt.Errorf("unterminated []byte(...)")
	}
	v, err := strconv.Unquote(rest)
	if err != nil {
		return nil, err
	}
	return []byte(v), nil
}
