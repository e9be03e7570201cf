// Package proto is the Thorstream binary protocol, version 1: framing, request and response
// headers, and one file per API key (00_produce.go, 01_fetch.go, …) with its request and response
// bodies. docs/PROTOCOL.md specifies every byte; this package is its implementation.
//
// Every frame is length-prefixed:
//
//	request  frame: size int32 | apiKey int16 | apiVersion int16 | correlationId int32 | body
//	response frame: size int32 | correlationId int32 | errorCode int16 | errorMessage string | body
//
// size counts the bytes after itself. Primitives are big endian; a string is an int16 length and
// its bytes (-1: null), bytes an int32 length and its bytes (-1: null), an array an int32 count
// and its elements (-1: null). Every response opens with a top-level error code and message: a
// request the broker cannot serve at all (unknown API key or version, malformed body) gets that
// error and an empty body, never a silent close.
//
// Decoders implement ReadFrom(body []byte) error and alias byte fields into the body; encoders
// implement AppendTo(dst []byte) []byte and append to a caller-owned buffer.
package proto

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Sizes of the fixed frame parts.
const (
	SizeLen           = 4         // the int32 size prefix
	RequestHeaderLen  = 2 + 2 + 4 // apiKey, apiVersion, correlationId
	ResponseHeaderLen = 4         // correlationId
	DefaultMaxFrame   = 64 << 20  // default largest frame a broker accepts
	MinRequestFrame   = RequestHeaderLen
)

// Frame errors.
var (
	ErrFrameTooLarge = errors.New("codec/proto: frame too large")
	ErrFrameTooSmall = errors.New("codec/proto: frame too small")
)

// FrameSize reads the size prefix at the start of b and checks it against maxFrame. It returns
// ok=false when b holds fewer than SizeLen bytes. The returned size excludes the prefix itself.
func FrameSize(b []byte, maxFrame int) (size int, ok bool, err error) {
	if len(b) < SizeLen {
		return 0, false, nil
	}
	raw := binary.BigEndian.Uint32(b)
	if raw > 1<<31-1 || int64(raw) > int64(maxFrame) {
		// Also a "negative" prefix such as 0x80000000 (2 GiB): too large, not too small.
		return 0, true, fmt.Errorf("%w: %d bytes, limit %d", ErrFrameTooLarge, raw, maxFrame)
	}
	n := int32(raw)
	if n < MinRequestFrame {
		return 0, true, fmt.Errorf("%w: %d bytes", ErrFrameTooSmall, n)
	}
	if int64(n) > int64(maxFrame) {
		return 0, true, fmt.Errorf("%w: %d bytes, limit %d", ErrFrameTooLarge, n, maxFrame)
	}
	return int(n), true, nil
}

// RequestHeader opens every request frame body.
type RequestHeader struct {
	APIKey        int16
	APIVersion    int16
	CorrelationID int32
}

// ParseRequestHeader decodes the header at the start of a frame body (after the size prefix) and
// returns the request body that follows.
func ParseRequestHeader(frame []byte) (RequestHeader, []byte, error) {
	if len(frame) < RequestHeaderLen {
		return RequestHeader{}, nil, ErrFrameTooSmall
	}
	h := RequestHeader{
		APIKey:        int16(binary.BigEndian.Uint16(frame)),
		APIVersion:    int16(binary.BigEndian.Uint16(frame[2:])),
		CorrelationID: int32(binary.BigEndian.Uint32(frame[4:])),
	}
	return h, frame[RequestHeaderLen:], nil
}

// AppendRequestFrame starts a request frame in dst: a size placeholder and the header. Append the
// body, then call FinishFrame(dst, start) with the returned start.
func AppendRequestFrame(dst []byte, h RequestHeader) (out []byte, start int) {
	start = len(dst)
	dst = append(dst, 0, 0, 0, 0)
	dst = AppendInt16(dst, h.APIKey)
	dst = AppendInt16(dst, h.APIVersion)
	dst = AppendInt32(dst, h.CorrelationID)
	return dst, start
}

// AppendResponseFrame starts a response frame in dst: a size placeholder, the correlation id and
// the top-level error. Append the body, then call FinishFrame(dst, start).
func AppendResponseFrame(dst []byte, correlationID int32, code int16, message string) (out []byte, start int) {
	start = len(dst)
	dst = append(dst, 0, 0, 0, 0)
	dst = AppendInt32(dst, correlationID)
	dst = AppendInt16(dst, code)
	dst = AppendNullableString(dst, message, message != "")
	return dst, start
}

// FinishFrame writes the size prefix of the frame that starts at dst[start:], counting extra
// bytes that the caller sends after dst (for example record batches sent with writev).
func FinishFrame(dst []byte, start int, extra int) {
	binary.BigEndian.PutUint32(dst[start:], uint32(len(dst)-start-SizeLen+extra))
}

// ResponseHeader opens every response frame body.
type ResponseHeader struct {
	CorrelationID int32
	ErrorCode     int16
	ErrorMessage  string
}

// ParseResponseHeader decodes the header of a response frame body (after the size prefix) and
// returns the body that follows.
func ParseResponseHeader(frame []byte) (ResponseHeader, []byte, error) {
	r := NewReader(frame)
	h := ResponseHeader{CorrelationID: r.Int32(), ErrorCode: r.Int16()}
	h.ErrorMessage = r.String()
	if r.Err() != nil {
		return h, nil, r.Err()
	}
	return h, r.src, nil
}
