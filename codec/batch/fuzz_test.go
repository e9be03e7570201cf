package batch

import (
	"bytes"
	"encoding/binary"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// FuzzValidate: arbitrary bytes never panic, and Validate and Records agree with kmsg. Most random
// inputs fail the CRC, so each input is also checked with its CRC patched to be correct.
func FuzzValidate(f *testing.F) {
	for _, s := range validateSeeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		checkAgainstKmsg(t, data)
		if len(data) >= HeaderSize {
			fixed := fixCRC(bytes.Clone(data))
			checkAgainstKmsg(t, fixed)
			if h, err := Validate(fixed); err == nil {
				// Patching what the CRC does not cover keeps the batch valid.
				SetBaseOffset(fixed, h.BaseOffset+1)
				SetPartitionLeaderEpoch(fixed, h.PartitionLeaderEpoch+1)
				SetLogAppendTime(fixed, h.MaxTimestamp+1)
				if _, err := Validate(fixed); err != nil {
					t.Fatalf("patched batch no longer validates: %v", err)
				}
			}
		}
		_ = Split(data, func(b []byte) error {
			_, err := Validate(b)
			return err
		})
	})
}

// FuzzRecords: arbitrary bytes never panic, and whatever Records decodes franz-go decodes the same;
// whatever franz-go decodes from canonically encoded records, Records decodes too.
func FuzzRecords(f *testing.F) {
	for _, s := range recordsSeeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		checkAgainstKmsg(t, data)
		// The same bytes as a records section behind a well-formed header.
		for _, count := range []int32{1, 2, int32(bytes.Count(data, []byte{0}))} {
			checkAgainstKmsg(t, rawBatch(count, data))
		}
	})
}

func validateSeeds(t testing.TB) map[string][]byte {
	good := sampleBatch(t)
	mut := func(fn func(b []byte) []byte) []byte { return fn(bytes.Clone(good)) }
	logAppend := sampleBatch(t)
	SetLogAppendTime(logAppend, 1_800_000_000_000)
	return map[string][]byte{
		"valid-sample":       good,
		"valid-golden":       goldenBatch(t),
		"valid-logappend":    logAppend,
		"valid-kmsg":         kmsgBuild(kmsg.RecordBatch{FirstOffset: 9, FirstTimestamp: 1, MaxTimestamp: 1, ProducerID: -1, ProducerEpoch: -1, FirstSequence: -1}, []kmsg.Record{{Key: []byte("k"), Headers: []kmsg.Header{{Key: "h"}}}}),
		"broken-truncated":   good[:len(good)-3],
		"broken-header-only": good[:HeaderSize],
		"broken-crc":         mut(func(b []byte) []byte { b[offCRC] ^= 0x55; return b }),
		"broken-magic":       mut(func(b []byte) []byte { b[offMagic] = 1; return fixCRC(b) }),
		"broken-count":       mut(func(b []byte) []byte { return fixCRC(putUint32(b, offRecordCount, 9)) }),
		"broken-trailing":    append(bytes.Clone(good), 0),
		"broken-length":      mut(func(b []byte) []byte { return putUint32(b, offBatchLength, 1) }),
	}
}

func recordsSeeds(t testing.TB) map[string][]byte {
	good := sampleBatch(t)
	mut := func(fn func(b []byte) []byte) []byte { return fn(bytes.Clone(good)) }
	return map[string][]byte{
		"valid-sample":           good,
		"valid-golden":           goldenBatch(t),
		"valid-negative-key-len": rawBatch(1, appendRawRecord(nil, recordBody(0, 0, -5, 1, "v", 1, 1, "h", -9))),
		"valid-gapped-offsets":   rawBatch(2, appendRawRecord(appendRawRecord(nil, recordBody(0, 0, -1, -1, 0)), recordBody(2, 40, -1, -1, 0))),
		"broken-compressed":      mut(func(b []byte) []byte { b[offAttributes+1] |= CodecSnappy; return b }),
		"broken-header-count":    rawBatch(1, appendRawRecord(nil, recordBody(0, 0, -1, -1, -1))),
		"broken-offset-delta":    rawBatch(1, appendRawRecord(nil, recordBody(0, binary.AppendVarint(nil, 1<<33), -1, -1, 0))),
		"broken-in-record-tail":  rawBatch(1, appendRawRecord(nil, recordBody(0, 0, -1, -1, 0, "zz"))),
		"broken-null-header-key": rawBatch(1, appendRawRecord(nil, recordBody(0, 0, -1, -1, 1, -1, 0))),
		"broken-short":           good[:HeaderSize+4],
	}
}

// TestWriteFuzzCorpus regenerates testdata/fuzz/{FuzzValidate,FuzzRecords} with -update; without it
// it checks every seed against the oracle, so the checked-in corpus stays meaningful.
func TestWriteFuzzCorpus(t *testing.T) {
	if *update {
		writeCorpus(t, "FuzzValidate", validateSeeds(t))
		writeCorpus(t, "FuzzRecords", recordsSeeds(t))
	}
	for name, s := range validateSeeds(t) {
		_, err := Validate(s)
		if valid := err == nil; valid != (name[:5] == "valid") {
			t.Errorf("FuzzValidate seed %s: Validate %v", name, err)
		}
		checkAgainstKmsg(t, s)
	}
	for name, s := range recordsSeeds(t) {
		_, err := decodeAll(s)
		if valid := err == nil; valid != (name[:5] == "valid") {
			t.Errorf("FuzzRecords seed %s: Records %v", name, err)
		}
		checkAgainstKmsg(t, s)
	}
}
