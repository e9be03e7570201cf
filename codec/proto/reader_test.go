package proto

import (
	"errors"
	"math"
	"testing"
)

func TestReaderPrimitives(t *testing.T) {
	var b []byte
	b = AppendInt8(b, -2)
	b = AppendBool(b, true)
	b = AppendBool(b, false)
	b = AppendInt16(b, math.MinInt16)
	b = AppendInt32(b, math.MaxInt32)
	b = AppendInt64(b, math.MinInt64)
	b = AppendString(b, "")
	b = AppendNullableString(b, "", false)
	b = AppendNullableString(b, "set", true)
	b = AppendStringBytes(b, nil)
	b = AppendBytes(b, nil)
	b = AppendBytes(b, []byte{})
	b = AppendBytes(b, []byte{1, 2})
	b = AppendArrayLen(b, -1)
	b = AppendArrayLen(b, 0)
	b = append(b, 7) // a non-zero byte reads as true

	r := NewReader(b)
	if v := r.Int8(); v != -2 {
		t.Errorf("Int8 = %d", v)
	}
	if !r.Bool() || r.Bool() {
		t.Error("Bool")
	}
	if v := r.Int16(); v != math.MinInt16 {
		t.Errorf("Int16 = %d", v)
	}
	if v := r.Int32(); v != math.MaxInt32 {
		t.Errorf("Int32 = %d", v)
	}
	if v := r.Int64(); v != math.MinInt64 {
		t.Errorf("Int64 = %d", v)
	}
	if s := r.StringBytes(); s == nil || len(s) != 0 {
		t.Errorf("empty string = %#v", s)
	}
	if s, ok := r.NullableString(); s != "" || ok {
		t.Errorf("null string = %q, %v", s, ok)
	}
	if s, ok := r.NullableString(); s != "set" || !ok {
		t.Errorf("string = %q, %v", s, ok)
	}
	if s := r.StringBytes(); s != nil {
		t.Errorf("null string bytes = %#v", s)
	}
	if v := r.Bytes(); v != nil {
		t.Errorf("null bytes = %#v", v)
	}
	if v := r.Bytes(); v == nil || len(v) != 0 {
		t.Errorf("empty bytes = %#v", v)
	}
	if v := r.Bytes(); string(v) != "\x01\x02" {
		t.Errorf("bytes = %#v", v)
	}
	if n := r.ArrayLen(4); n != -1 {
		t.Errorf("null array = %d", n)
	}
	if n := r.ArrayLen(4); n != 0 {
		t.Errorf("empty array = %d", n)
	}
	if r.Remaining() != 1 || !r.Bool() {
		t.Error("last byte")
	}
	if err := r.Complete(); err != nil {
		t.Fatal(err)
	}
}

func TestReaderErrors(t *testing.T) {
	f := func(name string, in []byte, read func(r *Reader)) {
		t.Helper()
		r := NewReader(in)
		read(&r)
		if !errors.Is(r.Complete(), ErrMalformed) || !errors.Is(r.Err(), ErrMalformed) {
			t.Errorf("%s: err = %v", name, r.Err())
		}
		// The error sticks and later reads give zero values.
		if r.Int64() != 0 || r.String() != "" || r.Bytes() != nil || r.ArrayLen(1) != 0 || r.Remaining() != 0 {
			t.Errorf("%s: reads after an error are not zero", name)
		}
	}
	f("short int8", nil, func(r *Reader) { r.Int8() })
	f("short int16", []byte{1}, func(r *Reader) { r.Int16() })
	f("short int32", []byte{1, 2, 3}, func(r *Reader) { r.Int32() })
	f("short int64", []byte{1, 2, 3, 4, 5, 6, 7}, func(r *Reader) { r.Int64() })
	f("string length -2", []byte{0xff, 0xfe, 'a', 'b'}, func(r *Reader) { _ = r.String() })
	f("string length min int16", []byte{0x80, 0x00}, func(r *Reader) { r.StringBytes() })
	f("string longer than input", []byte{0x00, 0x03, 'a', 'b'}, func(r *Reader) { _ = r.String() })
	f("bytes length -2", []byte{0xff, 0xff, 0xff, 0xfe}, func(r *Reader) { r.Bytes() })
	f("bytes length min int32", []byte{0x80, 0, 0, 0, 1}, func(r *Reader) { r.Bytes() })
	f("bytes longer than input", []byte{0, 0, 0, 5, 1, 2, 3, 4}, func(r *Reader) { r.Bytes() })
	f("bytes length 2 GiB-1", []byte{0x7f, 0xff, 0xff, 0xff, 1}, func(r *Reader) { r.Bytes() })
	f("array length -2", []byte{0xff, 0xff, 0xff, 0xfe}, func(r *Reader) { r.ArrayLen(1) })
	f("array length min int32", []byte{0x80, 0, 0, 0}, func(r *Reader) { r.ArrayLen(1) })
	f("array more elements than bytes", []byte{0, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, func(r *Reader) { r.ArrayLen(4) })
	f("array of 2^31-1 one-byte elements", []byte{0x7f, 0xff, 0xff, 0xff, 0}, func(r *Reader) { r.ArrayLen(0) })

	// Trailing bytes are only an error once the decoder says it is done.
	r := NewReader([]byte{0, 0, 1})
	r.Int16()
	if r.Err() != nil || !errors.Is(r.Complete(), ErrMalformed) || !errors.Is(r.Err(), ErrMalformed) {
		t.Errorf("trailing bytes: %v", r.Err())
	}

	// Exactly enough bytes for the claimed elements is fine.
	r = NewReader([]byte{0, 0, 0, 2, 1, 2, 3, 4, 5, 6, 7, 8})
	if n := r.ArrayLen(4); n != 2 || r.Err() != nil {
		t.Errorf("ArrayLen = %d, %v", n, r.Err())
	}

	// Reset clears the error.
	r.Reset([]byte{0, 1})
	if r.Int16() != 1 || r.Complete() != nil {
		t.Error("Reset")
	}
}

// TestHugeArrayCounts checks that a body claiming billions of elements fails without allocating
// for them, in every decoder and at every nesting level.
func TestHugeArrayCounts(t *testing.T) {
	huge := []byte{0x7f, 0xff, 0xff, 0xff}
	bodies := map[string][]byte{
		"produce topics":          cat([]byte{0, 1, 0, 0, 0, 0}, huge),
		"produce partitions":      cat([]byte{0, 1, 0, 0, 0, 0}, []byte{0, 0, 0, 1, 0, 1, 't'}, huge, make([]byte, 100)),
		"fetch topics":            cat(make([]byte, 12), huge, make([]byte, 100)),
		"list offsets topics":     cat(huge, make([]byte, 100)),
		"metadata topics":         cat(huge, make([]byte, 100)),
		"metadata replicas":       cat([]byte{0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, []byte{0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}, make([]byte, 14), huge, make([]byte, 100)),
		"offset commit topics":    cat([]byte{0, 0}, huge, make([]byte, 100)),
		"offset fetch partitions": cat([]byte{0, 0, 0, 0, 0, 1, 0, 0}, huge, make([]byte, 100)),
		"create topics topics":    cat(huge, make([]byte, 100)),
		"delete topics names":     cat(huge, make([]byte, 100)),
		"api versions apis":       cat(huge, make([]byte, 100)),
	}
	for name, body := range bodies {
		for _, newMsg := range append(requestTypes(), responseTypes()...) {
			var err error
			allocs := testing.AllocsPerRun(10, func() { err = newMsg().ReadFrom(body) })
			if err == nil {
				continue // this body happens to be valid for another type
			}
			if !errors.Is(err, ErrMalformed) {
				t.Errorf("%s as %s: err = %v", name, typeName(newMsg()), err)
			}
			// A few allocations for the value, the error and small slices; never 2^31 elements.
			if allocs > 20 {
				t.Errorf("%s as %s: %v allocations", name, typeName(newMsg()), allocs)
			}
		}
	}
	// The decoder's slices stay small too.
	var req ProduceRequest
	if err := req.ReadFrom(bodies["produce partitions"]); err == nil || cap(req.Topics) > 1 || cap(req.Topics[0].Partitions) != 0 {
		t.Errorf("err %v, caps %d", err, cap(req.Topics))
	}
}

func cat(parts ...[]byte) []byte {
	var out []byte
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}
