package groups

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

// updateRecordCorpus rewrites the checked-in seed corpus of FuzzDecodeRecord from recordSeeds:
//
//	go test ./groups -run TestFuzzDecodeRecordCorpus -update-record-corpus
var updateRecordCorpus = flag.Bool("update-record-corpus", false, "rewrite testdata/fuzz/FuzzDecodeRecord from the golden records")

const recordCorpusDir = "testdata/fuzz/FuzzDecodeRecord"

// FuzzDecodeRecord feeds arbitrary keys and values (tombstone: a null value) to DecodeRecord, as
// a damaged or foreign offsets log would. DecodeRecord must never panic; it must fail only with
// ErrBadRecord or ErrUnknownRecord and then set nothing; a record it accepts has exactly one key,
// a value of the same kind or none for a tombstone, holds memory in proportion to its size and
// none of the input's, and survives being written back as Thorstream writes it (version 3
// values, which do not carry an expire timestamp).
//
// Seeds: testdata/fuzz/FuzzDecodeRecord (every golden record of records_test.go and broken
// variants of them), kept in step with recordSeeds by TestFuzzDecodeRecordCorpus.
func FuzzDecodeRecord(f *testing.F) {
	f.Add([]byte{}, []byte{}, false)
	f.Fuzz(func(t *testing.T, key, value []byte, tombstone bool) {
		if tombstone {
			value = nil
		}
		// Decode copies, so the input can be overwritten afterwards.
		keyCopy, valueCopy := bytes.Clone(key), bytes.Clone(value)
		got, err := decodeRecordPair(keyCopy, valueCopy)
		if err != nil {
			if !errors.Is(err, ErrBadRecord) && !errors.Is(err, ErrUnknownRecord) {
				t.Fatalf("error is neither ErrBadRecord nor ErrUnknownRecord: %v", err)
			}
			if got != (decodedRecord{}) {
				t.Fatalf("results set with an error (%v): %v", err, got)
			}
			return
		}
		switch {
		case (got.ok == nil) == (got.gk == nil):
			t.Fatalf("not exactly one key: %v", got)
		case got.ok == nil && got.ov != nil, got.gk == nil && got.gv != nil:
			t.Fatalf("a value of the other kind than the key: %v", got)
		case tombstone != (got.ov == nil && got.gv == nil):
			t.Fatalf("tombstone %v, decoded %v", tombstone, got)
		}
		if fp, limit := recordFootprint(got), maxFootprint(key, value); fp > limit {
			t.Fatalf("%d bytes decoded from %d; limit %d", fp, len(key)+len(value), limit)
		}
		for i := range keyCopy {
			keyCopy[i] ^= 0xff
		}
		for i := range valueCopy {
			valueCopy[i] ^= 0xff
		}
		again, err := decodeRecordPair(key, value)
		if err != nil || !reflect.DeepEqual(got, again) {
			t.Fatalf("decoded record changed with its input, or decoding is not deterministic:\nfirst %v\nagain %v (%v)", got, again, err)
		}

		// Written back as Thorstream writes it, the record reads the same.
		var wantBack decodedRecord
		var rkey, rvalue []byte
		if got.ok != nil {
			rkey = AppendOffsetKey(nil, *got.ok)
			wantBack.ok = got.ok
			if got.ov != nil {
				rvalue = AppendOffsetValue(nil, *got.ov)
				v := *got.ov
				v.ExpireTimestamp = -1
				wantBack.ov = &v
			}
		} else {
			rkey = AppendGroupKey(nil, *got.gk)
			wantBack.gk = got.gk
			if got.gv != nil {
				rvalue = AppendGroupValue(nil, *got.gv)
				wantBack.gv = got.gv
			}
		}
		back, err := decodeRecordPair(rkey, rvalue)
		if err != nil || !reflect.DeepEqual(back, wantBack) {
			t.Fatalf("written back and read again:\ngot  %v (%v)\nwant %v", back, err, wantBack)
		}
	})
}

type recordSeed struct {
	key, value []byte
	tombstone  bool
}

// recordSeeds are the golden records and broken variants of them.
func recordSeeds(t testing.TB) map[string]recordSeed {
	seeds := map[string]recordSeed{}
	for _, g := range goldenRecords(t) {
		name := strings.Map(func(r rune) rune {
			switch {
			case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
				return r
			case r >= 'A' && r <= 'Z':
				return r - 'A' + 'a'
			}
			return '-'
		}, g.name)
		for strings.Contains(name, "--") {
			name = strings.ReplaceAll(name, "--", "-")
		}
		name = strings.Trim(name, "-")
		key, value := g.bytes(t)
		seeds["golden-"+name] = recordSeed{key, value, g.tombstone}
		if !g.tombstone {
			seeds["broken-short-"+name] = recordSeed{key, value[:len(value)-1], false}
			seeds["broken-long-"+name] = recordSeed{key, append(bytes.Clone(value), 0), false}
		}
	}
	groupKey, offsetKey := unhexDump(t, groupKeyV2Hex), unhexDump(t, offsetKeyV1Hex)
	broken := func(name string, key []byte, value string) {
		seeds["broken-"+name] = recordSeed{key, unhexDump(t, value), false}
	}
	broken("member-count", groupKey, "0003 0000 00000000 ffff ffff 0000018bcfe56800 7fffffff 0000")
	broken("compact-member-count", groupKey, "0004 01 00000000 00 00 0000018bcfe56800 ffffffff0f 00")
	broken("subscription-length", groupKey, "0003 0000 00000000 ffff ffff 0000018bcfe56800 00000001 0000 ffff 0000 0000 00000000 00000000 7fffffff 00000000")
	broken("tag-size", groupKey, "0004 01 00000000 00 00 0000018bcfe56800 01 01 00 ffffffff07")
	broken("varint", offsetKey, "0004 000000000000002a 00000005 ffffffff1f 0000018bcfe56800 00")
	broken("value-version", offsetKey, "0005 000000000000002a 00000005 0001 6d 0000018bcfe56800")
	seeds["broken-key-version"] = recordSeed{unhexDump(t, "0003 0002 6731"), unhexDump(t, "0000"), false}
	seeds["broken-key-null-string"] = recordSeed{unhexDump(t, "0001 ffff 0001 74 00000007"), nil, true}
	return seeds
}

// TestFuzzDecodeRecordCorpus checks that every seed of FuzzDecodeRecord is checked in, byte for
// byte as recordSeeds builds it, and that no other file is in the corpus directory. What
// DecodeRecord does with the seeds is checked by the golden tests and by the fuzz target, which
// go test runs over the corpus.
func TestFuzzDecodeRecordCorpus(t *testing.T) {
	seeds := recordSeeds(t)
	if *updateRecordCorpus {
		if err := os.MkdirAll(recordCorpusDir, 0o755); err != nil {
			t.Fatal(err)
		}
		for name, s := range seeds {
			content := fmt.Sprintf("go test fuzz v1\n[]byte(%s)\n[]byte(%s)\nbool(%v)\n",
				strconv.Quote(string(s.key)), strconv.Quote(string(s.value)), s.tombstone)
			if err := os.WriteFile(filepath.Join(recordCorpusDir, name), []byte(content), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	for name, s := range seeds {
		raw, err := os.ReadFile(filepath.Join(recordCorpusDir, name))
		if err != nil {
			t.Errorf("seed not checked in (run with -update-record-corpus): %v", err)
			continue
		}
		key, value, tombstone, err := parseRecordSeed(string(raw))
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if !bytes.Equal(key, s.key) || !bytes.Equal(value, s.value) || tombstone != s.tombstone {
			t.Errorf("%s: checked-in seed differs from recordSeeds (run with -update-record-corpus)", name)
		}
	}
	entries, err := os.ReadDir(recordCorpusDir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if _, ok := seeds[e.Name()]; !ok {
			t.Errorf("%s/%s is not a seed of recordSeeds: add it there or delete it", recordCorpusDir, e.Name())
		}
	}
}

// parseRecordSeed reads a "go test fuzz v1" file of FuzzDecodeRecord's arguments.
func parseRecordSeed(s string) (key, value []byte, tombstone bool, err error) {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) != 4 || lines[0] != "go test fuzz v1" {
		return nil, nil, false, fmt.Errorf("not a go test fuzz v1 file of two []byte and a bool: %.60q", s)
	}
	var fields [2][]byte
	for i := range fields {
		quoted, hasPrefix := strings.CutPrefix(lines[1+i], "[]byte(")
		quoted, hasSuffix := strings.CutSuffix(quoted, ")")
		if !hasPrefix || !hasSuffix {
			return nil, nil, false, fmt.Errorf("line %d is not []byte(...)", 2+i)
		}
		v, err := strconv.Unquote(quoted)
		if err != nil {
			return nil, nil, false, fmt.Errorf("line %d: %w", 2+i, err)
		}
		fields[i] = []byte(v)
	}
	switch lines[3] {
	case "bool(true)":
		tombstone = true
	case "bool(false)":
	default:
		return nil, nil, false, fmt.Errorf("line 4 is not bool(...)")
	}
	return fields[0], fields[1], tombstone, nil
}
