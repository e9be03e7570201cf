package batch

import (
	"bytes"
	"testing"
)

func TestRecordSkipperKeyNull(t *testing.T) {
	var b Builder
	b.Reset()
	b.Append([]byte("k"), []byte("v"), 1, nil)
	b.Append(nil, []byte("v"), 2, nil)
	b.Append([]byte{}, nil, 3, nil)                         // an empty key is a key
	b.Append(nil, bytes.Repeat([]byte{1}, 100<<10), 4, nil) // larger than the stream's buffer
	raw := append([]byte(nil), b.Finish()...)
	h, err := Validate(raw)
	if err != nil {
		t.Fatal(err)
	}
	want := []bool{false, true, false, true}
	for _, stream := range []bool{false, true} {
		var s RecordSkipper
		if stream {
			s.ResetReader(&h, bytes.NewReader(raw[HeaderSize:]), 1<<20)
		} else {
			s.ResetBytes(&h, raw[HeaderSize:])
		}
		var got []bool
		for s.Next() {
			got = append(got, s.KeyNull())
		}
		if s.Err() != nil || len(got) != len(want) || got[0] != want[0] || got[1] != want[1] || got[2] != want[2] || got[3] != want[3] {
			t.Fatalf("stream %v: key null %v, err %v; want %v", stream, got, s.Err(), want)
		}
	}
}
