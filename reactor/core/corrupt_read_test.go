package core

import (
	"os"
	"testing"

	"github.com/thorstream/thorstream/cluster"
	"github.com/thorstream/thorstream/codec/batch"
	"github.com/thorstream/thorstream/codec/errcode"
)

// A byte flipped on disk after start-up (recovery trusted that segment) is never served: a fetch
// stops before the corrupt batch, and a fetch at it gets KAFKA_STORAGE_ERROR.
func TestCorruptStoredBatchIsNotServed(t *testing.T) {
	e := newEnv(t, cluster.Options{})
	e.createTopic("t", 1)
	first := makeBatch(2, 1000, 1)
	second := makeBatch(3, 2000, 1)
	if r := e.produce("t", 0, first); r.ErrorCode != 0 {
		t.Fatalf("produce: %+v", r)
	}
	if r := e.produce("t", 0, second); r.ErrorCode != 0 || r.BaseOffset != 2 {
		t.Fatalf("produce: %+v", r)
	}
	// Flip one CRC-covered byte of the second batch in the segment file.
	f, err := e.fs.OpenFile("/data/t-0/00000000000000000000.log", os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	pos := int64(len(first) + batch.HeaderSize + 2)
	b := make([]byte, 1)
	if _, err := f.ReadAt(b, pos); err != nil {
		t.Fatal(err)
	}
	b[0] ^= 0xff
	if _, err := f.WriteAt(b, pos); err != nil {
		t.Fatal(err)
	}
	f.Close()

	got := e.fetch(fetchReq(0, 1, "t", 0, 0))
	if got.ErrorCode != 0 || len(got.Records) != len(first) {
		t.Fatalf("fetch from 0: code %d, %d bytes; want the first batch only (%d bytes)", got.ErrorCode, len(got.Records), len(first))
	}
	if _, err := batch.Validate(got.Records); err != nil {
		t.Fatalf("served batch is invalid: %v", err)
	}
	got = e.fetch(fetchReq(0, 1, "t", 0, 2))
	if errcode.Code(got.ErrorCode) != errcode.KafkaStorageError || len(got.Records) != 0 {
		t.Fatalf("fetch at the corrupt batch: code %d, %d bytes; want KAFKA_STORAGE_ERROR and nothing", got.ErrorCode, len(got.Records))
	}
}
