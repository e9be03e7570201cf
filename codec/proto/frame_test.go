package proto

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"
)

func TestFrameSize(t *testing.T) {
	f := func(name string, in []byte, maxFrame int, wantSize int, wantOK bool, wantErr error) {
		t.Helper()
		size, ok, err := FrameSize(in, maxFrame)
		if size != wantSize || ok != wantOK || !errors.Is(err, wantErr) || (wantErr == nil) != (err == nil) {
			t.Errorf("%s: FrameSize(% x, %d) = %d, %v, %v; want %d, %v, %v", name, in, maxFrame, size, ok, err, wantSize, wantOK, wantErr)
		}
	}
	prefix := func(n uint32, rest ...byte) []byte { return append(binary.BigEndian.AppendUint32(nil, n), rest...) }

	f("empty", nil, DefaultMaxFrame, 0, false, nil)
	f("three bytes", []byte{0, 0, 0}, DefaultMaxFrame, 0, false, nil)
	f("zero", prefix(0), DefaultMaxFrame, 0, true, ErrFrameTooSmall)
	f("one below header", prefix(RequestHeaderLen-1), DefaultMaxFrame, 0, true, ErrFrameTooSmall)
	f("header only", prefix(RequestHeaderLen), DefaultMaxFrame, RequestHeaderLen, true, nil)
	f("body need not be buffered yet", prefix(100, 1, 2), DefaultMaxFrame, 100, true, nil)
	f("at the limit", prefix(DefaultMaxFrame), DefaultMaxFrame, DefaultMaxFrame, true, nil)
	f("one over the limit", prefix(DefaultMaxFrame+1), DefaultMaxFrame, 0, true, ErrFrameTooLarge)
	f("small configured limit", prefix(1025), 1024, 0, true, ErrFrameTooLarge)
	f("largest int32", prefix(0x7fffffff), DefaultMaxFrame, 0, true, ErrFrameTooLarge)
	f("largest int32, unlimited", prefix(0x7fffffff), 1<<40, 0x7fffffff, true, nil)
	// A prefix of 2 GiB or more (negative as an int32) is too large: rejected before any allocation.
	f("2 GiB", prefix(0x80000000), 1<<40, 0, true, ErrFrameTooLarge)
	f("minus one", prefix(0xffffffff), DefaultMaxFrame, 0, true, ErrFrameTooLarge)
	f("negative", prefix(0xfffffff0), DefaultMaxFrame, 0, true, ErrFrameTooLarge)
}

func TestRequestFrame(t *testing.T) {
	h := RequestHeader{APIKey: KeyPing, APIVersion: Version, CorrelationID: -7}
	body := (&PingRequest{Echo: 0x0102030405060708}).AppendTo(nil)

	dst := []byte("previous frame")
	dst, start := AppendRequestFrame(dst, h)
	if start != len("previous frame") {
		t.Fatalf("start = %d", start)
	}
	dst = append(dst, body...)
	FinishFrame(dst, start, 0)
	want := "previous frame" +
		"\x00\x00\x00\x10" + // size: 8 header + 8 body
		"\x00\x09\x00\x01\xff\xff\xff\xf9" +
		"\x01\x02\x03\x04\x05\x06\x07\x08"
	if string(dst) != want {
		t.Fatalf("frame\n got % x\nwant % x", dst, want)
	}

	frame := dst[start:]
	size, ok, err := FrameSize(frame, DefaultMaxFrame)
	if err != nil || !ok || size != len(frame)-SizeLen {
		t.Fatalf("FrameSize = %d, %v, %v", size, ok, err)
	}
	gotH, gotBody, err := ParseRequestHeader(frame[SizeLen : SizeLen+size])
	if err != nil || gotH != h || !bytes.Equal(gotBody, body) {
		t.Fatalf("ParseRequestHeader = %+v, % x, %v", gotH, gotBody, err)
	}
}

func TestFinishFrameExtra(t *testing.T) {
	// A Fetch response whose records are sent after the encoded head (writev): the size counts them.
	records := []byte("stored batch bytes")
	head, start := AppendResponseFrame(nil, 42, 0, "")
	head = AppendFetchResponseStart(head, 0, 1)
	head = AppendFetchTopicStart(head, []byte("t"), 1)
	p := FetchPartitionResponse{Partition: 0, HighWatermark: 9, Leader: NoLeader}
	head = AppendFetchPartitionHead(head, &p, len(records))
	FinishFrame(head, start, len(records))

	wire := append(append([]byte(nil), head...), records...)
	size, ok, err := FrameSize(wire, DefaultMaxFrame)
	if err != nil || !ok || size != len(wire)-SizeLen {
		t.Fatalf("FrameSize = %d, %v, %v; wire is %d bytes", size, ok, err, len(wire))
	}
	rh, body, err := ParseResponseHeader(wire[SizeLen:])
	if err != nil || rh != (ResponseHeader{CorrelationID: 42}) {
		t.Fatalf("ParseResponseHeader = %+v, %v", rh, err)
	}
	var resp FetchResponse
	if err := resp.ReadFrom(body); err != nil {
		t.Fatal(err)
	}
	p.Records = records
	want := FetchResponse{Topics: []FetchTopicResponse{{Name: "t", Partitions: []FetchPartitionResponse{p}}}}
	if got := resp.AppendTo(nil); !bytes.Equal(got, want.AppendTo(nil)) {
		t.Fatalf("body\n got % x\nwant % x", got, want.AppendTo(nil))
	}

	// FinishFrame at a non-zero start with extra bytes.
	buf := []byte{0xaa}
	buf, start = AppendRequestFrame(buf, RequestHeader{APIKey: KeyProduce, APIVersion: 1, CorrelationID: 1})
	FinishFrame(buf, start, 1000)
	if got := binary.BigEndian.Uint32(buf[1:]); got != RequestHeaderLen+1000 || buf[0] != 0xaa {
		t.Fatalf("size = %d, first byte %x", got, buf[0])
	}
}

func TestResponseFrame(t *testing.T) {
	f := func(corr int32, code int16, msg string, want string) {
		t.Helper()
		dst, start := AppendResponseFrame(nil, corr, code, msg)
		dst = append(dst, 0xde, 0xad)
		FinishFrame(dst, start, 0)
		if string(dst) != want {
			t.Fatalf("frame\n got % x\nwant % x", dst, want)
		}
		h, body, err := ParseResponseHeader(dst[SizeLen:])
		if err != nil || h != (ResponseHeader{CorrelationID: corr, ErrorCode: code, ErrorMessage: msg}) || string(body) != "\xde\xad" {
			t.Fatalf("ParseResponseHeader = %+v, % x, %v", h, body, err)
		}
	}
	// No message: null string.
	f(7, 0, "", "\x00\x00\x00\x0a\x00\x00\x00\x07\x00\x00\xff\xff\xde\xad")
	f(-1, 35, "version 9", "\x00\x00\x00\x13\xff\xff\xff\xff\x00\x23\x00\x09version 9\xde\xad")
}

func TestParseHeaderErrors(t *testing.T) {
	for n := 0; n < RequestHeaderLen; n++ {
		if _, _, err := ParseRequestHeader(make([]byte, n)); !errors.Is(err, ErrFrameTooSmall) {
			t.Errorf("request header of %d bytes: %v", n, err)
		}
	}
	h, body, err := ParseRequestHeader([]byte{0xff, 0xff, 0x7f, 0xff, 0x80, 0, 0, 0})
	if err != nil || h != (RequestHeader{APIKey: -1, APIVersion: 0x7fff, CorrelationID: -0x80000000}) || len(body) != 0 {
		t.Errorf("ParseRequestHeader = %+v, % x, %v", h, body, err)
	}

	full := "\x00\x00\x00\x01\x00\x00\x00\x02hi"
	for n := 0; n < len(full); n++ {
		if _, _, err := ParseResponseHeader([]byte(full[:n])); !errors.Is(err, ErrMalformed) {
			t.Errorf("response header of %d bytes: %v", n, err)
		}
	}
	if _, _, err := ParseResponseHeader([]byte("\x00\x00\x00\x01\x00\x00\xff\xfe")); !errors.Is(err, ErrMalformed) {
		t.Errorf("negative message length: %v", err)
	}
}
