package proto

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
)

// ErrMalformed is wrapped by every decoding error: a field that runs past the end of the frame, a
// negative length that is not -1, an array that claims more elements than bytes remain, or bytes
// left over after the last field.
var ErrMalformed = errors.New("codec/proto: malformed request")

// Reader decodes primitives from a frame body. The first error sticks: later calls return zero
// values, and Err/Complete report it, so decoders read straight through without checking each field.
// Byte slices returned by Bytes alias the source.
type Reader struct {
	src []byte
	err error
}

// NewReader returns a Reader over src.
func NewReader(src []byte) Reader { return Reader{src: src} }

// Reset points r at src and clears its error.
func (r *Reader) Reset(src []byte) { r.src, r.err = src, nil }

// Err is the first decoding error.
func (r *Reader) Err() error { return r.err }

// Remaining is the number of undecoded bytes.
func (r *Reader) Remaining() int { return len(r.src) }

// Complete returns the first error, or an error if bytes are left over.
func (r *Reader) Complete() error {
	if r.err == nil && len(r.src) != 0 {
		r.err = fmt.Errorf("%w: %d trailing bytes", ErrMalformed, len(r.src))
	}
	return r.err
}

func (r *Reader) fail(what string) {
	if r.err == nil {
		r.err = fmt.Errorf("%w: %s", ErrMalformed, what)
	}
	r.src = nil
}

func (r *Reader) take(n int, what string) []byte {
	if r.err != nil {
		return nil
	}
	if n < 0 || n > len(r.src) {
		r.fail(what)
		return nil
	}
	b := r.src[:n:n]
	r.src = r.src[n:]
	return b
}

// Int8 reads an int8.
func (r *Reader) Int8() int8 {
	b := r.take(1, "int8")
	if b == nil {
		return 0
	}
	return int8(b[0])
}

// Bool reads an int8 as a boolean.
func (r *Reader) Bool() bool { return r.Int8() != 0 }

// Int16 reads a big-endian int16.
func (r *Reader) Int16() int16 {
	b := r.take(2, "int16")
	if b == nil {
		return 0
	}
	return int16(binary.BigEndian.Uint16(b))
}

// Int32 reads a big-endian int32.
func (r *Reader) Int32() int32 {
	b := r.take(4, "int32")
	if b == nil {
		return 0
	}
	return int32(binary.BigEndian.Uint32(b))
}

// Int64 reads a big-endian int64.
func (r *Reader) Int64() int64 {
	b := r.take(8, "int64")
	if b == nil {
		return 0
	}
	return int64(binary.BigEndian.Uint64(b))
}

// StringBytes reads an int16-length string without copying; null gives nil.
func (r *Reader) StringBytes() []byte {
	n := r.Int16()
	if n == -1 {
		return nil
	}
	if n < -1 {
		r.fail("negative string length")
		return nil
	}
	b := r.take(int(n), "string")
	if b == nil && r.err == nil {
		b = []byte{}
	}
	return b
}

// String reads an int16-length string; null gives "".
func (r *Reader) String() string { return string(r.StringBytes()) }

// NullableString reads an int16-length string; null gives (“”, false).
func (r *Reader) NullableString() (string, bool) {
	b := r.StringBytes()
	return string(b), b != nil
}

// Bytes reads int32-length bytes without copying; null gives nil.
func (r *Reader) Bytes() []byte {
	n := r.Int32()
	if n == -1 {
		return nil
	}
	if n < -1 {
		r.fail("negative bytes length")
		return nil
	}
	b := r.take(int(n), "bytes")
	if b == nil && r.err == nil {
		b = []byte{}
	}
	return b
}

// ArrayLen reads an int32 element count; null gives -1. A count larger than the bytes left, with
// each element at least minElemSize bytes, is an error: it bounds what a decoder allocates.
func (r *Reader) ArrayLen(minElemSize int) int {
	n := r.Int32()
	if r.err != nil {
		return 0
	}
	if n == -1 {
		return -1
	}
	if n < -1 || int64(n)*int64(max(minElemSize, 1)) > int64(len(r.src)) {
		r.fail("array length")
		return 0
	}
	return int(n)
}

// AppendInt8 appends an int8.
func AppendInt8(dst []byte, v int8) []byte { return append(dst, byte(v)) }

// AppendBool appends a boolean as an int8.
func AppendBool(dst []byte, v bool) []byte {
	if v {
		return append(dst, 1)
	}
	return append(dst, 0)
}

// AppendInt16 appends a big-endian int16.
func AppendInt16(dst []byte, v int16) []byte { return binary.BigEndian.AppendUint16(dst, uint16(v)) }

// AppendInt32 appends a big-endian int32.
func AppendInt32(dst []byte, v int32) []byte { return binary.BigEndian.AppendUint32(dst, uint32(v)) }

// AppendInt64 appends a big-endian int64.
func AppendInt64(dst []byte, v int64) []byte { return binary.BigEndian.AppendUint64(dst, uint64(v)) }

// AppendString appends an int16-length string. Longer strings are cut to 32767 bytes.
func AppendString(dst []byte, s string) []byte {
	if len(s) > math.MaxInt16 {
		s = s[:math.MaxInt16]
	}
	dst = AppendInt16(dst, int16(len(s)))
	return append(dst, s...)
}

// AppendStringBytes appends an int16-length string from bytes; nil is written as null.
func AppendStringBytes(dst []byte, s []byte) []byte {
	if s == nil {
		return AppendInt16(dst, -1)
	}
	if len(s) > math.MaxInt16 {
		s = s[:math.MaxInt16]
	}
	dst = AppendInt16(dst, int16(len(s)))
	return append(dst, s...)
}

// AppendNullableString appends a string, or null when ok is false.
func AppendNullableString(dst []byte, s string, ok bool) []byte {
	if !ok {
		return AppendInt16(dst, -1)
	}
	return AppendString(dst, s)
}

// AppendBytes appends int32-length bytes; nil is written as null.
func AppendBytes(dst []byte, b []byte) []byte {
	if b == nil {
		return AppendInt32(dst, -1)
	}
	dst = AppendInt32(dst, int32(len(b)))
	return append(dst, b...)
}

// AppendArrayLen appends an element count; pass -1 for a null array.
func AppendArrayLen(dst []byte, n int) []byte { return AppendInt32(dst, int32(n)) }

// readNullableString reads a string whose null is meaningful (a group instance id): null gives nil.
func readNullableString(r *Reader) *string {
	s, ok := r.NullableString()
	if !ok {
		return nil
	}
	return &s
}

// appendNullableString appends *s, or null when s is nil.
func appendNullableString(dst []byte, s *string) []byte {
	if s == nil {
		return AppendInt16(dst, -1)
	}
	return AppendString(dst, *s)
}
