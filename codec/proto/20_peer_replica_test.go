package proto

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"unsafe"
)

func topicID(b byte) [16]byte {
	var id [16]byte
	for i := range id {
		id[i] = b + byte(i)
	}
	return id
}

func sampleReplicaFetch() *ReplicaFetchRequest {
	return &ReplicaFetchRequest{FetchID: 77, ReplicaID: 2, Incarnation: 1_700_000_000_123, MaxWaitMs: 500, MinBytes: 1, MaxBytes: 8 << 20,
		Partitions: []ReplicaFetchPartition{
			{Topic: "orders", TopicID: topicID(1), Partition: 0, CurrentLeaderEpoch: 3, FetchOffset: 1200, LastFetchedEpoch: 3, DurableEnd: 1100, LogStartOffset: 0, PartitionMaxBytes: 1 << 20},
			{Topic: "orders", TopicID: topicID(1), Partition: 5, CurrentLeaderEpoch: 4, FetchOffset: 0, LastFetchedEpoch: -1, DurableEnd: 0, LogStartOffset: 0, PartitionMaxBytes: 1 << 20},
			{Topic: "audit", TopicID: topicID(0x40), Partition: 1, CurrentLeaderEpoch: 0, FetchOffset: 9, LastFetchedEpoch: 0, DurableEnd: 9, LogStartOffset: 4, PartitionMaxBytes: 64 << 10},
		}}
}

func sampleReplicaData() *ReplicaDataResponse {
	return &ReplicaDataResponse{FetchID: 77, Partitions: []ReplicaDataPartition{
		{Topic: "orders", TopicID: topicID(1), Partition: 0, HighWatermark: 1100, LogStartOffset: 0, LogEndOffset: 1250, DivergingEpoch: -1, DivergingEndOffset: -1, Records: someRecords},
		{Topic: "orders", TopicID: topicID(1), Partition: 5, ErrorCode: 74, HighWatermark: -1, LogStartOffset: -1, LogEndOffset: -1, DivergingEpoch: -1, DivergingEndOffset: -1, Records: nil},
		{Topic: "audit", TopicID: topicID(0x40), Partition: 1, HighWatermark: 9, LogStartOffset: 4, LogEndOffset: 12, DivergingEpoch: 2, DivergingEndOffset: 7, Records: []byte{}},
	}}
}

// manyReplicaPartitions returns n fetch and data partitions over a few topics.
func manyReplicaPartitions(n int) ([]ReplicaFetchPartition, []ReplicaDataPartition) {
	fetch := make([]ReplicaFetchPartition, n)
	data := make([]ReplicaDataPartition, n)
	for i := range n {
		topic := fmt.Sprintf("topic-%d", i/100)
		id := topicID(byte(i / 100))
		fetch[i] = ReplicaFetchPartition{Topic: topic, TopicID: id, Partition: int32(i % 100), CurrentLeaderEpoch: int32(i), FetchOffset: int64(i) << 20,
			LastFetchedEpoch: int32(i) - 1, DurableEnd: int64(i) << 19, LogStartOffset: int64(i), PartitionMaxBytes: int32(i) * 7}
		data[i] = ReplicaDataPartition{Topic: topic, TopicID: id, Partition: int32(i % 100), ErrorCode: int16(i % 7), HighWatermark: int64(i) << 18,
			LogStartOffset: int64(i), LogEndOffset: int64(i) << 20, DivergingEpoch: int32(i%3) - 1, DivergingEndOffset: int64(i%5) - 1,
			Records: bytes.Repeat([]byte{byte(i)}, i%5)}
	}
	return fetch, data
}

func replicaCases() []struct {
	name   string
	in     message
	newMsg func() message
} {
	long := strings.Repeat("t", math.MaxInt16)
	mib := make([]byte, 1<<20)
	for i := range mib {
		mib[i] = byte(i * 31)
	}
	manyFetch, manyData := manyReplicaPartitions(1000)
	newFetch := func() message { return new(ReplicaFetchRequest) }
	newData := func() message { return new(ReplicaDataResponse) }
	oneRecords := func(records []byte) *ReplicaDataResponse {
		return &ReplicaDataResponse{FetchID: 1, Partitions: []ReplicaDataPartition{{Topic: "t", TopicID: topicID(9), DivergingEpoch: -1, DivergingEndOffset: -1, Records: records}}}
	}
	type c = struct {
		name   string
		in     message
		newMsg func() message
	}
	return []c{
		{"fetch zero", &ReplicaFetchRequest{}, newFetch},
		{"fetch sample", sampleReplicaFetch(), newFetch},
		{"fetch 1000 partitions", &ReplicaFetchRequest{FetchID: math.MaxInt64, ReplicaID: 3, Partitions: manyFetch}, newFetch},
		{"fetch extremes", &ReplicaFetchRequest{FetchID: math.MinInt64, ReplicaID: math.MinInt32, Incarnation: math.MaxInt64, MaxWaitMs: -1, MinBytes: math.MaxInt32, MaxBytes: math.MinInt32,
			Partitions: []ReplicaFetchPartition{{Topic: long, TopicID: topicID(0xf0), Partition: math.MaxInt32, CurrentLeaderEpoch: math.MinInt32, FetchOffset: math.MaxInt64,
				LastFetchedEpoch: math.MaxInt32, DurableEnd: math.MinInt64, LogStartOffset: -1, PartitionMaxBytes: math.MaxInt32}, {}}}, newFetch},
		{"data zero", &ReplicaDataResponse{}, newData},
		{"data leader stopping", &ReplicaDataResponse{FetchID: 5, ErrorCode: 6}, newData},
		{"data sample", sampleReplicaData(), newData},
		{"data 1000 partitions", &ReplicaDataResponse{FetchID: 8, Partitions: manyData}, newData},
		{"data records 0 B", oneRecords([]byte{}), newData},
		{"data records 1 B", oneRecords([]byte{0x2a}), newData},
		{"data records 1 MiB", oneRecords(mib), newData},
		{"data records null", oneRecords(nil), newData},
		{"data extremes", &ReplicaDataResponse{FetchID: math.MinInt64, ErrorCode: math.MinInt16, Partitions: []ReplicaDataPartition{
			{Topic: long, TopicID: topicID(0xf0), Partition: math.MinInt32, ErrorCode: math.MaxInt16, HighWatermark: math.MaxInt64, LogStartOffset: math.MinInt64,
				LogEndOffset: -1, DivergingEpoch: math.MaxInt32, DivergingEndOffset: math.MinInt64, Records: []byte(long)}, {}}}, newData},
	}
}

func TestReplicaRoundTrip(t *testing.T) {
	for _, tc := range replicaCases() {
		t.Run(tc.name, func(t *testing.T) {
			enc := tc.in.AppendTo(nil)
			got := tc.newMsg()
			if err := got.ReadFrom(enc); err != nil {
				t.Fatalf("ReadFrom: %v", err)
			}
			if !reflect.DeepEqual(got, tc.in) {
				t.Fatalf("round trip changed the value\n got %#v\nwant %#v", got, tc.in)
			}
			if prefixed := tc.in.AppendTo([]byte("prefix")); !bytes.Equal(prefixed, append([]byte("prefix"), enc...)) {
				t.Fatal("AppendTo did not append to dst")
			}
			// Decoding into a value that holds another message gives the same value.
			reused := tc.newMsg()
			for _, other := range []message{sampleReplicaFetch(), sampleReplicaData()} {
				if reflect.TypeOf(other) == reflect.TypeOf(reused) {
					if err := reused.ReadFrom(other.AppendTo(nil)); err != nil {
						t.Fatal(err)
					}
				}
			}
			if err := reused.ReadFrom(enc); err != nil {
				t.Fatalf("ReadFrom into a used value: %v", err)
			}
			if again := reused.AppendTo(nil); !bytes.Equal(again, enc) {
				t.Fatal("decoding into a used value changed the encoding")
			}
		})
	}
}

// TestReplicaLayout pins the byte layout of both payloads to the diagrams in 20_peer_replica.go.
func TestReplicaLayout(t *testing.T) {
	id := "\x00\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c\x0d\x0e\x0f"
	fetch := &ReplicaFetchRequest{FetchID: 0x0102030405060708, ReplicaID: 2, Incarnation: 9, MaxWaitMs: 500, MinBytes: 1, MaxBytes: 0x100000,
		Partitions: []ReplicaFetchPartition{{Topic: "ab", TopicID: topicID(0), Partition: 3, CurrentLeaderEpoch: 4, FetchOffset: 5, LastFetchedEpoch: -1,
			DurableEnd: 6, LogStartOffset: 7, PartitionMaxBytes: 8}}}
	want := "\x01\x02\x03\x04\x05\x06\x07\x08" + "\x00\x00\x00\x02" + "\x00\x00\x00\x00\x00\x00\x00\x09" +
		"\x00\x00\x01\xf4" + "\x00\x00\x00\x01" + "\x00\x10\x00\x00" +
		"\x00\x00\x00\x01" + "\x00\x02ab" + id + "\x00\x00\x00\x03" + "\x00\x00\x00\x04" + "\x00\x00\x00\x00\x00\x00\x00\x05" +
		"\xff\xff\xff\xff" + "\x00\x00\x00\x00\x00\x00\x00\x06" + "\x00\x00\x00\x00\x00\x00\x00\x07" + "\x00\x00\x00\x08"
	if got := fetch.AppendTo(nil); string(got) != want {
		t.Errorf("ReplicaFetch\n got % x\nwant % x", got, want)
	}
	if len(want)-(8+4+8+4+4+4+4)-len("ab") != replicaFetchPartitionMinLen {
		t.Errorf("replicaFetchPartitionMinLen = %d does not match the layout", replicaFetchPartitionMinLen)
	}

	data := &ReplicaDataResponse{FetchID: 0x0102030405060708, ErrorCode: 0x0203, Partitions: []ReplicaDataPartition{{Topic: "ab", TopicID: topicID(0),
		Partition: 3, ErrorCode: 4, HighWatermark: 5, LogStartOffset: 6, LogEndOffset: 7, DivergingEpoch: -1, DivergingEndOffset: 8, Records: []byte("xyz")}}}
	want = "\x01\x02\x03\x04\x05\x06\x07\x08" + "\x02\x03" +
		"\x00\x00\x00\x01" + "\x00\x02ab" + id + "\x00\x00\x00\x03" + "\x00\x04" + "\x00\x00\x00\x00\x00\x00\x00\x05" +
		"\x00\x00\x00\x00\x00\x00\x00\x06" + "\x00\x00\x00\x00\x00\x00\x00\x07" + "\xff\xff\xff\xff" + "\x00\x00\x00\x00\x00\x00\x00\x08" +
		"\x00\x00\x00\x03xyz"
	if got := data.AppendTo(nil); string(got) != want {
		t.Errorf("ReplicaData\n got % x\nwant % x", got, want)
	}
	if len(want)-(8+2+4)-len("ab")-len("xyz") != replicaDataPartitionMinLen {
		t.Errorf("replicaDataPartitionMinLen = %d does not match the layout", replicaDataPartitionMinLen)
	}
	if PeerKindReplicaFetch != 3 || PeerKindReplicaData != 4 {
		t.Errorf("kinds %d, %d; want 3, 4", PeerKindReplicaFetch, PeerKindReplicaData)
	}
}

// TestReplicaDataHeadMatchesAppendTo checks that the leader's piecewise encoding (start, then a
// head per partition followed by its records) is the whole-message encoding.
func TestReplicaDataHeadMatchesAppendTo(t *testing.T) {
	for _, tc := range replicaCases() {
		v, ok := tc.in.(*ReplicaDataResponse)
		if !ok {
			continue
		}
		t.Run(tc.name, func(t *testing.T) {
			out := AppendReplicaDataStart([]byte("prefix"), v.FetchID, v.ErrorCode, len(v.Partitions))
			for i := range v.Partitions {
				p := v.Partitions[i]
				records := p.Records
				n := len(records)
				if records == nil {
					n = -1
				}
				p.Records = []byte("ignored by the head") // the head looks at recordsLen only
				out = AppendReplicaDataPartitionHead(out, &p, n)
				out = append(out, records...)
			}
			if want := v.AppendTo([]byte("prefix")); !bytes.Equal(out, want) {
				t.Fatalf("start+heads+records differ from AppendTo (%d vs %d bytes)", len(out), len(want))
			}
		})
	}
}

// TestReplicaDataRecordsAlias checks that decoded records point into the payload, with their
// capacity capped so that appending to them cannot overwrite the next field.
func TestReplicaDataRecordsAlias(t *testing.T) {
	enc := sampleReplicaData().AppendTo(nil)
	var v ReplicaDataResponse
	if err := v.ReadFrom(enc); err != nil {
		t.Fatal(err)
	}
	r := v.Partitions[0].Records
	start := uintptr(unsafe.Pointer(unsafe.SliceData(enc)))
	at := uintptr(unsafe.Pointer(unsafe.SliceData(r)))
	if at < start || at+uintptr(len(r)) > start+uintptr(len(enc)) || !bytes.Equal(r, someRecords) {
		t.Fatal("records do not alias the payload")
	}
	if cap(r) != len(r) {
		t.Fatalf("records capacity %d, want %d", cap(r), len(r))
	}
}

// TestReplicaTruncatedAndTrailing checks that every strict prefix of every case and a trailing
// byte are rejected with ErrMalformed.
func TestReplicaTruncatedAndTrailing(t *testing.T) {
	for _, tc := range replicaCases() {
		t.Run(tc.name, func(t *testing.T) {
			enc := tc.in.AppendTo(nil)
			if len(enc) > 1<<16 {
				// Long values: a sample of prefixes, denser near the start.
				for n := 0; n < len(enc); n += 1 + n/64 {
					if err := tc.newMsg().ReadFrom(enc[:n:n]); !errors.Is(err, ErrMalformed) {
						t.Fatalf("prefix of %d/%d bytes: err = %v, want ErrMalformed", n, len(enc), err)
					}
				}
			} else {
				for n := range len(enc) {
					if err := tc.newMsg().ReadFrom(enc[:n:n]); !errors.Is(err, ErrMalformed) {
						t.Fatalf("prefix of %d/%d bytes: err = %v, want ErrMalformed", n, len(enc), err)
					}
				}
			}
			if err := tc.newMsg().ReadFrom(enc[: len(enc)-1 : len(enc)-1]); !errors.Is(err, ErrMalformed) {
				t.Fatalf("one byte short: err = %v", err)
			}
			err := tc.newMsg().ReadFrom(append(enc[:len(enc):len(enc)], 0))
			if !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), "1 trailing bytes") {
				t.Fatalf("trailing byte: err = %v", err)
			}
		})
	}
}

// TestReplicaArrayCounts checks the partitions count: the fewest bytes a partition can take
// decode for exactly as many partitions as they hold, one more is refused before anything is
// allocated for it, and negative counts other than null are refused.
func TestReplicaArrayCounts(t *testing.T) {
	f := func(name string, header []byte, minLen int, newMsg func() message, count func(message) int) {
		t.Run(name, func(t *testing.T) {
			const n = 50
			body := append(bytes.Clone(header), make([]byte, 4+n*minLen)...)
			countAt := len(header)
			binary.BigEndian.PutUint32(body[countAt:], n)
			v := newMsg()
			if err := v.ReadFrom(body); err != nil || count(v) != n {
				t.Fatalf("%d minimal partitions: %d decoded, err %v", n, count(v), err)
			}
			for _, lie := range []uint32{n + 1, 1 << 20, math.MaxInt32, math.MaxUint32 - 1, 0x80000000} {
				binary.BigEndian.PutUint32(body[countAt:], lie)
				v := newMsg()
				if err := v.ReadFrom(body); !errors.Is(err, ErrMalformed) {
					t.Fatalf("count %d over %d bytes: err = %v, want ErrMalformed", int32(lie), n*minLen, err)
				}
				if c := reflect.ValueOf(v).Elem().FieldByName("Partitions").Cap(); c != 0 {
					t.Fatalf("count %d: room for %d partitions allocated", int32(lie), c)
				}
			}
			// null (-1) reads as no partitions
			null := append(bytes.Clone(header), 0xff, 0xff, 0xff, 0xff)
			v = newMsg()
			if err := v.ReadFrom(null); err != nil || count(v) != 0 {
				t.Fatalf("null partitions: %d, %v", count(v), err)
			}
		})
	}
	f("fetch", make([]byte, 8+4+8+4+4+4), replicaFetchPartitionMinLen,
		func() message { return new(ReplicaFetchRequest) }, func(m message) int { return len(m.(*ReplicaFetchRequest).Partitions) })
	f("data", make([]byte, 8+2), replicaDataPartitionMinLen,
		func() message { return new(ReplicaDataResponse) }, func(m message) int { return len(m.(*ReplicaDataResponse).Partitions) })

	// A negative records length other than -1 and a negative topic length are refused.
	enc := (&ReplicaDataResponse{Partitions: []ReplicaDataPartition{{Records: nil}}}).AppendTo(nil)
	binary.BigEndian.PutUint32(enc[len(enc)-4:], math.MaxUint32-1)
	if err := new(ReplicaDataResponse).ReadFrom(enc); !errors.Is(err, ErrMalformed) {
		t.Fatalf("records length -2: err = %v", err)
	}
	enc = (&ReplicaFetchRequest{Partitions: []ReplicaFetchPartition{{}}}).AppendTo(nil)
	enc[8+4+8+4+4+4+4] = 0xff
	if err := new(ReplicaFetchRequest).ReadFrom(enc); !errors.Is(err, ErrMalformed) {
		t.Fatalf("topic length negative: err = %v", err)
	}
}

// TestReplicaTopicNames checks the topic name sharing of the decoders: partitions of one topic
// share one string, and a name the element held before is kept.
func TestReplicaTopicNames(t *testing.T) {
	var v ReplicaDataResponse
	if err := v.ReadFrom(sampleReplicaData().AppendTo(nil)); err != nil {
		t.Fatal(err)
	}
	p := v.Partitions
	if unsafe.StringData(p[0].Topic) != unsafe.StringData(p[1].Topic) || p[2].Topic != "audit" {
		t.Fatalf("topics %q %q %q: the first two do not share a string", p[0].Topic, p[1].Topic, p[2].Topic)
	}
	before := unsafe.StringData(p[2].Topic)
	if err := v.ReadFrom(sampleReplicaData().AppendTo(nil)); err != nil {
		t.Fatal(err)
	}
	if unsafe.StringData(v.Partitions[2].Topic) != before {
		t.Fatal("decoding the same answer again made a new topic string")
	}
	// A changed name is a changed name.
	changed := sampleReplicaData()
	changed.Partitions[2].Topic = "orders"
	changed.Partitions[1].Topic = "audit"
	if err := v.ReadFrom(changed.AppendTo(nil)); err != nil || !reflect.DeepEqual(&v, changed) {
		t.Fatalf("renamed topics decoded as %#v, %v", v.Partitions, err)
	}
}

func FuzzReplicaFetchRequest(f *testing.F) {
	for _, s := range replicaSeeds()["FuzzReplicaFetchRequest"] {
		f.Add(s)
	}
	newMsg := func() message { return new(ReplicaFetchRequest) }
	f.Fuzz(func(t *testing.T, data []byte) {
		used := newMsg()
		_ = used.ReadFrom(sampleReplicaFetch().AppendTo(nil))
		checkDecoder(t, newMsg, used, data)
	})
}

func FuzzReplicaDataResponse(f *testing.F) {
	for _, s := range replicaSeeds()["FuzzReplicaDataResponse"] {
		f.Add(s)
	}
	newMsg := func() message { return new(ReplicaDataResponse) }
	f.Fuzz(func(t *testing.T, data []byte) {
		used := newMsg()
		_ = used.ReadFrom(sampleReplicaData().AppendTo(nil))
		checkDecoder(t, newMsg, used, data)
	})
}

// replicaSeeds are the seed corpora of the two fuzz targets: short valid encodings and their
// broken variants.
func replicaSeeds() map[string][][]byte {
	seeds := map[string][][]byte{}
	for _, tc := range replicaCases() {
		enc := tc.in.AppendTo(nil)
		if len(enc) > 1024 {
			continue // the fuzzer mutates short inputs best
		}
		target := "FuzzReplicaFetchRequest"
		if _, ok := tc.in.(*ReplicaDataResponse); ok {
			target = "FuzzReplicaDataResponse"
		}
		seeds[target] = append(seeds[target], enc)
		if strings.HasSuffix(tc.name, "sample") {
			seeds[target] = append(seeds[target], brokenVariants(enc)...)
		}
	}
	return seeds
}

// TestReplicaFuzzCorpus writes (with -update) and checks the checked-in seed corpora of
// FuzzReplicaFetchRequest and FuzzReplicaDataResponse: every seed is there, every file is in go
// test fuzz v1 format and passes its target's property.
func TestReplicaFuzzCorpus(t *testing.T) {
	newMsgs := map[string]func() message{
		"FuzzReplicaFetchRequest": func() message { return new(ReplicaFetchRequest) },
		"FuzzReplicaDataResponse": func() message { return new(ReplicaDataResponse) },
	}
	for target, seeds := range replicaSeeds() {
		dir := filepath.Join("testdata", "fuzz", target)
		if *update {
			if err := os.RemoveAll(dir); err != nil {
				t.Fatal(err)
			}
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			for i, s := range seeds {
				if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("seed-%03d", i)), corpusFile(s), 0o644); err != nil {
					t.Fatal(err)
				}
			}
		}
		files, err := filepath.Glob(filepath.Join(dir, "*"))
		if err != nil {
			t.Fatal(err)
		}
		have := map[string]bool{}
		for _, name := range files {
			raw, err := os.ReadFile(name)
			if err != nil {
				t.Fatal(err)
			}
			const head = "go test fuzz v1\n[]byte("
			if !bytes.HasPrefix(raw, []byte(head)) || !bytes.HasSuffix(raw, []byte(")\n")) {
				t.Fatalf("%s: not a go test fuzz v1 []byte file", name)
			}
			data, err := strconv.Unquote(string(raw[len(head) : len(raw)-2]))
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			have[data] = true
			checkDecoder(t, newMsgs[target], nil, []byte(data))
		}
		for _, s := range seeds {
			if !have[string(s)] {
				t.Fatalf("%s: the seed corpus lacks % x (run with -update)", target, s)
			}
		}
	}
}
