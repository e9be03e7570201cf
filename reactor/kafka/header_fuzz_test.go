package kafka

import (
	"bytes"
	"encoding/binary"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

func TestParseHeader(t *testing.T) {
	id := "client-1"
	empty := ""
	f := func(name string, frame []byte, want header, wantBody []byte, wantErr bool) {
		t.Helper()
		h, body, err := parseHeader(frame)
		if (err != nil) != wantErr {
			t.Fatalf("%s: error %v, want error %v", name, err, wantErr)
		}
		if wantErr {
			return
		}
		if h != want || !bytes.Equal(body, wantBody) {
			t.Fatalf("%s: got %+v body % x, want %+v body % x", name, h, body, want, wantBody)
		}
	}
	body := []byte{1, 2, 3}
	f("v1 with client id", requestFrame(3, 8, 77, &id, false, body), header{key: 3, version: 8, correlationID: 77}, body, false)
	f("v1 null client id", requestFrame(3, 8, 77, nil, false, body), header{key: 3, version: 8, correlationID: 77}, body, false)
	f("v1 empty client id", requestFrame(3, 8, 77, &empty, false, body), header{key: 3, version: 8, correlationID: 77}, body, false)
	f("v2 flexible", requestFrame(3, 9, -5, &id, true, body), header{key: 3, version: 9, correlationID: -5, flexible: true}, body, false)
	// A header tag section with one tag (tag 0, two bytes).
	withTag := append(requestFrame(1, 12, 1, nil, false, nil), 1, 0, 2, 0xaa, 0xbb)
	withTag = append(withTag, body...)
	f("v2 with a header tag", withTag, header{key: 1, version: 12, correlationID: 1, flexible: true}, body, false)
	f("short", []byte{0, 3, 0, 0}, header{}, nil, true)
	f("client id past the end", requestFrame(3, 1, 1, &id, false, nil)[:12], header{}, nil, true)
	f("client id length -2", append(binary.BigEndian.AppendUint16([]byte{0, 3, 0, 1, 0, 0, 0, 1}, 0xfffe), body...), header{}, nil, true)
	f("flexible without tags", requestFrame(1, 12, 1, nil, false, nil), header{}, nil, true)
	f("tag size past the end", append(requestFrame(1, 12, 1, nil, false, nil), 1, 0, 9, 1), header{}, nil, true)
}

func FuzzRequestHeader(f *testing.F) {
	id := "franz-go"
	for _, req := range []kmsg.Request{
		kmsg.NewPtrApiVersionsRequest(), kmsg.NewPtrMetadataRequest(), kmsg.NewPtrFetchRequest(), kmsg.NewPtrProduceRequest(),
	} {
		for _, v := range []int16{0, 3, 9, 12} {
			if v > req.MaxVersion() {
				continue
			}
			req.SetVersion(v)
			f.Add(requestFrame(req.Key(), v, 1, &id, req.IsFlexible(), req.AppendTo(nil)))
		}
	}
	f.Add(append(requestFrame(1, 12, 1, nil, false, nil), 1, 0, 2, 0xaa, 0xbb))
	f.Add(append(requestFrame(1, 12, 1, nil, false, nil), 0xff, 0xff, 0xff, 0xff, 0x0f))
	f.Add(append(requestFrame(1, 12, 1, nil, false, nil), 1, 0, 0xff, 0xff, 0xff, 0xff, 0x0f))
	f.Fuzz(func(t *testing.T, frame []byte) {
		h, body, err := parseHeader(frame)
		if err == nil {
			if len(frame) < 10 || h.key != int16(binary.BigEndian.Uint16(frame)) || h.version != int16(binary.BigEndian.Uint16(frame[2:])) ||
				h.correlationID != int32(binary.BigEndian.Uint32(frame[4:])) {
				t.Fatalf("header %+v does not match the frame % x", h, frame)
			}
			if len(body) > len(frame)-10 || !bytes.HasSuffix(frame, body) {
				t.Fatalf("body of %d bytes is not a tail of the %d-byte frame after the fixed header", len(body), len(frame))
			}
			if h.flexible != isFlexible(h.key, h.version) {
				t.Fatalf("flexible %v for key %d v%d", h.flexible, h.key, h.version)
			}
		}
		rest, err := skipTags(frame)
		if err == nil && (len(rest) >= len(frame) || !bytes.HasSuffix(frame, rest)) {
			t.Fatalf("skipTags returned %d bytes of %d, not a proper tail", len(rest), len(frame))
		}
	})
}
