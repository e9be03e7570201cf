package proto

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"testing"
)

// The seed corpus lives in testdata/fuzz/FuzzXxx/ and is written by TestFuzzCorpus -update from
// the samples in apis: every valid encoding plus broken variants (truncated, trailing byte,
// negative and oversized lengths).

// checkDecoder is the property every fuzz target checks for one body type: decoding never
// panics; what decodes re-encodes to bytes that decode to the same value and re-encode to the
// same bytes; decoding into a value that already holds another message gives the same result.
func checkDecoder(t *testing.T, newMsg func() message, reuse message, data []byte) {
	v := newMsg()
	if err := v.ReadFrom(data); err != nil {
		if !errors.Is(err, ErrMalformed) {
			t.Fatalf("%s: error %v does not wrap ErrMalformed", typeName(v), err)
		}
		return
	}
	enc := v.AppendTo(nil)
	if len(enc) > len(data) {
		// Null and empty strings and arrays have the same size, so a canonical encoding is
		// never longer than its input.
		t.Fatalf("%s: re-encoding grew from %d to %d bytes", typeName(v), len(data), len(enc))
	}
	w := newMsg()
	if err := w.ReadFrom(enc); err != nil {
		t.Fatalf("%s: re-encoding does not decode: %v\ninput % x\nre-encoded % x", typeName(v), err, data, enc)
	}
	if !reflect.DeepEqual(v, w) {
		t.Fatalf("%s: value changed through a re-encoding\nfirst  %#v\nsecond %#v", typeName(v), v, w)
	}
	if again := w.AppendTo(nil); !bytes.Equal(again, enc) {
		t.Fatalf("%s: encoding is not stable\nfirst  % x\nsecond % x", typeName(v), enc, again)
	}
	if reuse != nil {
		if err := reuse.ReadFrom(data); err != nil {
			t.Fatalf("%s: decoding into a used value failed: %v", typeName(v), err)
		}
		if got := reuse.AppendTo(nil); !bytes.Equal(got, enc) {
			t.Fatalf("%s: decoding into a used value gave\n% x\nwant % x", typeName(v), got, enc)
		}
	}
}

// usedValue returns a value of newMsg's type that holds a decoded sample, so a decode into it
// exercises slice reuse.
func usedValue(newMsg func() message) message {
	v := newMsg()
	for _, a := range apis {
		for _, m := range []message{a.request, a.response} {
			if reflect.TypeOf(m) == reflect.TypeOf(v) {
				_ = v.ReadFrom(m.AppendTo(nil))
			}
		}
	}
	return v
}

func FuzzRequests(f *testing.F) {
	for _, a := range apis {
		f.Add(a.request.AppendTo(nil))
	}
	types := requestTypes()
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, newMsg := range types {
			checkDecoder(t, newMsg, usedValue(newMsg), data)
		}
	})
}

func FuzzResponses(f *testing.F) {
	for _, a := range apis {
		if a.response != nil {
			f.Add(a.response.AppendTo(nil))
		}
	}
	types := responseTypes()
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, newMsg := range types {
			checkDecoder(t, newMsg, usedValue(newMsg), data)
		}
	})
}

// FuzzFrame feeds bytes read from a socket to the framing code: FrameSize with a small limit,
// then both header parsers on the frame body, then the request body to the decoder its key names.
func FuzzFrame(f *testing.F) {
	for _, g := range goldenFrames() {
		f.Add(g.frame)
	}
	f.Add([]byte{0x80, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 1})
	f.Add([]byte{0, 0, 0, 7, 0, 0, 0, 1, 0, 0, 0})
	const maxFrame = 1 << 12
	f.Fuzz(func(t *testing.T, data []byte) {
		size, ok, err := FrameSize(data, maxFrame)
		switch {
		case !ok:
			if len(data) >= SizeLen || err != nil || size != 0 {
				t.Fatalf("FrameSize(% x) = %d, %v, %v", data, size, ok, err)
			}
			return
		case err != nil:
			if size != 0 || !(errors.Is(err, ErrFrameTooSmall) || errors.Is(err, ErrFrameTooLarge)) {
				t.Fatalf("FrameSize: %d, %v", size, err)
			}
			n := int64(int32(binary.BigEndian.Uint32(data)))
			if n >= MinRequestFrame && n <= maxFrame {
				t.Fatalf("FrameSize rejected a valid size %d: %v", n, err)
			}
			return
		}
		if size < MinRequestFrame || size > maxFrame {
			t.Fatalf("FrameSize accepted %d", size)
		}
		if len(data) < SizeLen+size {
			return // the rest of the frame has not arrived
		}
		frame := data[SizeLen : SizeLen+size]

		h, body, err := ParseRequestHeader(frame)
		if err != nil {
			t.Fatalf("ParseRequestHeader of a %d-byte frame: %v", size, err)
		}
		out, start := AppendRequestFrame(nil, h)
		out = append(out, body...)
		FinishFrame(out, start, 0)
		if !bytes.Equal(out, data[:SizeLen+size]) {
			t.Fatalf("request frame re-encoding\n got % x\nwant % x", out, data[:SizeLen+size])
		}
		for _, a := range apis {
			if a.key == h.APIKey {
				checkDecoder(t, a.newReq, nil, body)
			}
		}

		rh, rbody, err := ParseResponseHeader(frame)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("ParseResponseHeader: %v", err)
			}
			return
		}
		out, start = AppendResponseFrame(nil, rh.CorrelationID, rh.ErrorCode, rh.ErrorMessage)
		out = append(out, rbody...)
		FinishFrame(out, start, 0)
		h2, body2, err := ParseResponseHeader(out[SizeLen:])
		if err != nil || h2 != rh || !bytes.Equal(body2, rbody) {
			t.Fatalf("response header re-encoding: %+v, %v; want %+v", h2, err, rh)
		}
	})
}

// brokenVariants derives malformed inputs from a valid encoding.
func brokenVariants(enc []byte) [][]byte {
	var out [][]byte
	if len(enc) > 0 {
		out = append(out, enc[:len(enc)-1], enc[:len(enc)/2])
	}
	out = append(out, append(bytes.Clone(enc), 0))
	// The first int16 and int32 fields set to negative lengths and to huge counts.
	for _, patch := range [][]byte{{0xff, 0xfe}, {0x80, 0x00}, {0x7f, 0xff, 0xff, 0xff}, {0xff, 0xff, 0xff, 0xfe}} {
		if len(enc) >= len(patch) {
			b := bytes.Clone(enc)
			copy(b, patch)
			out = append(out, b)
		}
	}
	return out
}

func corpusFile(b []byte) []byte {
	return []byte("go test fuzz v1\n[]byte(" + strconv.Quote(string(b)) + ")\n")
}

// TestFuzzCorpus writes (with -update) and checks the checked-in seed corpus: every file is in
// go test fuzz v1 format and passes its target's property.
func TestFuzzCorpus(t *testing.T) {
	corpora := map[string][][]byte{}
	for _, a := range apis {
		req := a.request.AppendTo(nil)
		corpora["FuzzRequests"] = append(corpora["FuzzRequests"], req)
		corpora["FuzzRequests"] = append(corpora["FuzzRequests"], brokenVariants(req)...)
		if a.response == nil {
			continue // never answered
		}
		resp := a.response.AppendTo(nil)
		corpora["FuzzResponses"] = append(corpora["FuzzResponses"], resp)
		corpora["FuzzResponses"] = append(corpora["FuzzResponses"], brokenVariants(resp)...)
	}
	for _, g := range goldenFrames() {
		corpora["FuzzFrame"] = append(corpora["FuzzFrame"], g.frame)
		corpora["FuzzFrame"] = append(corpora["FuzzFrame"], g.frame[:len(g.frame)-1])
		if len(g.frame) > SizeLen+1 {
			b := bytes.Clone(g.frame)
			binary.BigEndian.PutUint32(b, uint32(len(b)-SizeLen-1)) // size one short: trailing byte
			corpora["FuzzFrame"] = append(corpora["FuzzFrame"], b)
		}
	}
	corpora["FuzzFrame"] = append(corpora["FuzzFrame"],
		[]byte{0x80, 0, 0, 0}, []byte{0xff, 0xff, 0xff, 0xff}, []byte{0, 0, 0, 7}, []byte{0, 0x40, 0, 1}, []byte{0, 0})

	for target, seeds := range corpora {
		dir := filepath.Join("testdata", "fuzz", target)
		if *update {
			if err := os.RemoveAll(dir); err != nil {
				t.Fatal(err)
			}
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			for i, s := range seeds {
				name := filepath.Join(dir, fmt.Sprintf("seed-%03d", i))
				if err := os.WriteFile(name, corpusFile(s), 0o644); err != nil {
					t.Fatal(err)
				}
			}
		}
		files, err := filepath.Glob(filepath.Join(dir, "*"))
		if err != nil || len(files) < len(seeds) {
			t.Fatalf("%s: %d corpus files, want at least %d (run with -update): %v", target, len(files), len(seeds), err)
		}
		for _, name := range files {
			data, err := os.ReadFile(name)
			if err != nil {
				t.Fatal(err)
			}
			const head = "go test fuzz v1\n[]byte("
			if !bytes.HasPrefix(data, []byte(head)) || !bytes.HasSuffix(data, []byte(")\n")) {
				t.Fatalf("%s: not a go test fuzz v1 []byte file", name)
			}
			if _, err := strconv.Unquote(string(data[len(head) : len(data)-2])); err != nil {
				t.Fatalf("%s: %v", name, err)
			}
		}
	}
}
