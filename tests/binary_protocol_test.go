package tests

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/thorstream/thorstream/codec/batch"
	"github.com/thorstream/thorstream/codec/errcode"
	"github.com/thorstream/thorstream/codec/proto"
)

// These tests speak the binary protocol over raw sockets, frame by frame, to check what
// docs/PROTOCOL.md sections 1, 4 and 5 promise about framing, errors and malformed input. The
// frames are built with codec/proto; nothing goes through the client package.

// ioDeadline bounds every read and write: generous for a loaded 2-core machine, short enough
// that a broker which neither answers nor closes fails the test instead of hanging it.
const ioDeadline = 30 * time.Second

// rawConn is one TCP connection to the broker's binary-protocol listener.
type rawConn struct {
	t *testing.T
	c net.Conn
}

func dialRaw(t *testing.T, addr string) *rawConn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &rawConn{t: t, c: c}
}

// write sends b in one write call.
func (r *rawConn) write(b []byte) {
	r.t.Helper()
	if err := r.c.SetWriteDeadline(time.Now().Add(ioDeadline)); err != nil {
		r.t.Fatal(err)
	}
	if _, err := r.c.Write(b); err != nil {
		r.t.Fatalf("write: %v", err)
	}
}

// response is one response frame, split into its header and body.
type response struct {
	proto.ResponseHeader
	body []byte
}

// readFrame reads one whole response frame.
func (r *rawConn) readFrame() response {
	r.t.Helper()
	if err := r.c.SetReadDeadline(time.Now().Add(ioDeadline)); err != nil {
		r.t.Fatal(err)
	}
	var prefix [proto.SizeLen]byte
	if _, err := io.ReadFull(r.c, prefix[:]); err != nil {
		r.t.Fatalf("reading a response size: %v", err)
	}
	size := binary.BigEndian.Uint32(prefix[:])
	if size < 8 || size > 256<<20 {
		r.t.Fatalf("response frame size %d is out of range", size)
	}
	frame := make([]byte, size)
	if _, err := io.ReadFull(r.c, frame); err != nil {
		r.t.Fatalf("reading a response frame of %d bytes: %v", size, err)
	}
	h, body, err := proto.ParseResponseHeader(frame)
	if err != nil {
		r.t.Fatalf("response header: %v", err)
	}
	return response{h, body}
}

// expectClosed checks that the broker closed the connection: a read returns EOF (not a timeout,
// not data) within the deadline. A reset also means closed: it happens when the broker closes
// while bytes we sent are still unread in its socket.
func (r *rawConn) expectClosed(allowReset bool) {
	r.t.Helper()
	if err := r.c.SetReadDeadline(time.Now().Add(ioDeadline)); err != nil {
		r.t.Fatal(err)
	}
	var buf [64]byte
	n, err := r.c.Read(buf[:])
	switch {
	case n > 0:
		r.t.Fatalf("the broker answered % x instead of closing the connection", buf[:n])
	case errors.Is(err, io.EOF):
	case allowReset && errors.Is(err, syscall.ECONNRESET):
	case errors.Is(err, os.ErrDeadlineExceeded):
		r.t.Fatalf("the connection is still open %s later", ioDeadline)
	default:
		r.t.Fatalf("read after the bad input: %v, want EOF", err)
	}
}

// requestFrame is one whole request frame.
func requestFrame(key, version int16, correlationID int32, body []byte) []byte {
	b, start := proto.AppendRequestFrame(nil, proto.RequestHeader{APIKey: key, APIVersion: version, CorrelationID: correlationID})
	b = append(b, body...)
	proto.FinishFrame(b, start, 0)
	return b
}

func pingFrame(correlationID int32, echo int64) []byte {
	return requestFrame(proto.KeyPing, proto.Version, correlationID, (&proto.PingRequest{Echo: echo}).AppendTo(nil))
}

// ping sends a Ping and checks that the next frame is its answer: the connection still works.
func (r *rawConn) ping(correlationID int32) {
	r.t.Helper()
	echo := int64(correlationID)*1000 + 7
	r.write(pingFrame(correlationID, echo))
	r.expectPong(correlationID, echo)
}

func (r *rawConn) expectPong(correlationID int32, echo int64) {
	r.t.Helper()
	resp := r.readFrame()
	if resp.CorrelationID != correlationID || resp.ErrorCode != 0 {
		r.t.Fatalf("Ping %d answered with correlation id %d, error %d %q", correlationID, resp.CorrelationID, resp.ErrorCode, resp.ErrorMessage)
	}
	var pong proto.PingResponse
	if err := pong.ReadFrom(resp.body); err != nil {
		r.t.Fatalf("Ping response body: %v", err)
	}
	if pong.Echo != echo {
		r.t.Fatalf("Ping %d echoed %d, sent %d", correlationID, pong.Echo, echo)
	}
}

// expectTopLevelError checks a response with a top-level error: the request's correlation id,
// the code, a message, and an empty body.
func expectTopLevelError(t *testing.T, resp response, correlationID int32, code errcode.Code) {
	t.Helper()
	if resp.CorrelationID != correlationID {
		t.Fatalf("correlation id %d, want %d (error %d %q)", resp.CorrelationID, correlationID, resp.ErrorCode, resp.ErrorMessage)
	}
	if errcode.Code(resp.ErrorCode) != code {
		t.Fatalf("error %v %q, want %v", errcode.Code(resp.ErrorCode), resp.ErrorMessage, code)
	}
	if resp.ErrorMessage == "" {
		t.Errorf("%v without a message", code)
	}
	if len(resp.body) != 0 {
		t.Fatalf("a %v response carries a %d-byte body, want none", code, len(resp.body))
	}
}

// recordBatch is one uncompressed batch of values, as a producer sends it.
func recordBatch(values ...string) []byte {
	var b batch.Builder
	b.Reset()
	for _, v := range values {
		b.Append(nil, []byte(v), time.Now().UnixMilli(), nil)
	}
	return bytes.Clone(b.Finish())
}

func produceFrame(correlationID int32, acks int16, topic string, records map[int32][]byte) []byte {
	req := proto.ProduceRequest{Acks: acks, TimeoutMs: 30_000, Topics: []proto.ProduceTopic{{Name: []byte(topic)}}}
	for p := int32(0); p < int32(len(records)); p++ {
		req.Topics[0].Partitions = append(req.Topics[0].Partitions, proto.ProducePartition{Partition: p, Records: records[p]})
	}
	return requestFrame(proto.KeyProduce, proto.Version, correlationID, req.AppendTo(nil))
}

// produceResults sends a Produce with acks=1 and returns the per-partition outcomes by partition.
func (r *rawConn) produce(correlationID int32, topic string, records map[int32][]byte) map[int32]proto.ProducePartitionResponse {
	r.t.Helper()
	r.write(produceFrame(correlationID, proto.AcksLeader, topic, records))
	resp := r.readFrame()
	if resp.CorrelationID != correlationID || resp.ErrorCode != 0 {
		r.t.Fatalf("Produce %d: correlation id %d, top-level error %d %q", correlationID, resp.CorrelationID, resp.ErrorCode, resp.ErrorMessage)
	}
	var pr proto.ProduceResponse
	if err := pr.ReadFrom(resp.body); err != nil {
		r.t.Fatalf("Produce response body: %v", err)
	}
	out := map[int32]proto.ProducePartitionResponse{}
	for _, tr := range pr.Topics {
		for _, p := range tr.Partitions {
			out[p.Partition] = p
		}
	}
	if len(out) != len(records) {
		r.t.Fatalf("Produce answered %d partitions, sent %d", len(out), len(records))
	}
	return out
}

// latestOffset asks ListOffsets for the high watermark of topic/partition.
func (r *rawConn) latestOffset(correlationID int32, topic string, partition int32) int64 {
	r.t.Helper()
	req := proto.ListOffsetsRequest{Topics: []proto.ListOffsetsTopic{{Name: topic, Partitions: []proto.ListOffsetsPartition{{Partition: partition, Timestamp: proto.TimestampLatest}}}}}
	r.write(requestFrame(proto.KeyListOffsets, proto.Version, correlationID, req.AppendTo(nil)))
	resp := r.readFrame()
	if resp.CorrelationID != correlationID || resp.ErrorCode != 0 {
		r.t.Fatalf("ListOffsets %d: correlation id %d, error %d %q", correlationID, resp.CorrelationID, resp.ErrorCode, resp.ErrorMessage)
	}
	var lr proto.ListOffsetsResponse
	if err := lr.ReadFrom(resp.body); err != nil {
		r.t.Fatalf("ListOffsets response body: %v", err)
	}
	if len(lr.Topics) != 1 || len(lr.Topics[0].Partitions) != 1 {
		r.t.Fatalf("ListOffsets answered %+v", lr)
	}
	p := lr.Topics[0].Partitions[0]
	if p.ErrorCode != 0 {
		r.t.Fatalf("ListOffsets %s/%d: error %d %q", topic, partition, p.ErrorCode, p.ErrorMessage)
	}
	return p.Offset
}

// createTopicRaw creates a topic with a CreateTopics frame.
func (r *rawConn) createTopic(correlationID int32, name string, partitions int32) {
	r.t.Helper()
	req := proto.CreateTopicsRequest{Topics: []proto.CreateTopic{{Name: name, NumPartitions: partitions, ReplicationFactor: 1}}, TimeoutMs: 30_000}
	r.write(requestFrame(proto.KeyCreateTopics, proto.Version, correlationID, req.AppendTo(nil)))
	resp := r.readFrame()
	if resp.CorrelationID != correlationID || resp.ErrorCode != 0 {
		r.t.Fatalf("CreateTopics: correlation id %d, error %d %q", resp.CorrelationID, resp.ErrorCode, resp.ErrorMessage)
	}
	var tr proto.TopicErrorsResponse
	if err := tr.ReadFrom(resp.body); err != nil {
		r.t.Fatal(err)
	}
	if len(tr.Topics) != 1 || tr.Topics[0].ErrorCode != 0 {
		r.t.Fatalf("CreateTopics %s: %+v", name, tr.Topics)
	}
}

// TestUnsupportedAPIKeyOrVersion: an unknown API key, or a known key at a version the broker does
// not serve, gets UNSUPPORTED_VERSION with the request's correlation id and an empty body, and the
// connection keeps serving requests.
func TestUnsupportedAPIKeyOrVersion(t *testing.T) {
	b := startBroker(t, t.TempDir())
	conn := dialRaw(t, b.addr)
	cases := []struct {
		name         string
		key, version int16
		body         []byte
	}{
		{"the first unused key", int16(len(proto.Supported)), 1, nil}, // keys run 0, 1, 2, …
		{"unknown key 99 with a body", 99, 1, []byte("whatever the body is")},
		{"unknown key -1", -1, 1, nil},
		{"unknown key 32767", 32767, 0, nil},
		{"Ping version 0", proto.KeyPing, 0, (&proto.PingRequest{Echo: 1}).AppendTo(nil)},
		{"Ping version 2", proto.KeyPing, 2, (&proto.PingRequest{Echo: 1}).AppendTo(nil)},
		{"Fetch version 9", proto.KeyFetch, 9, nil},
		{"Produce version -1", proto.KeyProduce, -1, nil},
		{"Metadata version 32767", proto.KeyMetadata, 32767, nil},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			conn.t = t
			corr := int32(0x5a5a0000 + i) // an arbitrary id: the broker must echo it, whatever it is
			conn.write(requestFrame(tc.key, tc.version, corr, tc.body))
			expectTopLevelError(t, conn.readFrame(), corr, errcode.UnsupportedVersion)
			conn.ping(int32(1000 + i))
		})
	}
	// ApiVersions is the documented exception: any version is answered, in version 1's format.
	for _, version := range []int16{0, 1, 3, 32767} {
		t.Run(fmt.Sprintf("ApiVersions version %d", version), func(t *testing.T) {
			conn.t = t
			corr := int32(2000 + version)
			conn.write(requestFrame(proto.KeyAPIVersions, version, corr, nil))
			resp := conn.readFrame()
			if resp.CorrelationID != corr || resp.ErrorCode != 0 {
				t.Fatalf("correlation id %d, error %d %q", resp.CorrelationID, resp.ErrorCode, resp.ErrorMessage)
			}
			var av proto.APIVersionsResponse
			if err := av.ReadFrom(resp.body); err != nil {
				t.Fatalf("body: %v", err)
			}
			if len(av.APIs) != len(proto.Supported) {
				t.Fatalf("%d APIs advertised, want %d", len(av.APIs), len(proto.Supported))
			}
		})
	}
}

// TestMalformedBodyGetsInvalidRequest: a frame whose header decodes but whose body does not, for
// every API, gets INVALID_REQUEST with the correlation id and an empty body, and the connection
// keeps serving requests. No malformed request has an effect (no topic is created).
func TestMalformedBodyGetsInvalidRequest(t *testing.T) {
	b := startBroker(t, t.TempDir())
	conn := dialRaw(t, b.addr)
	conn.createTopic(1, "malformed", 1)

	valid := map[int16][]byte{
		proto.KeyProduce: (&proto.ProduceRequest{Acks: 1, TimeoutMs: 1000, Topics: []proto.ProduceTopic{{Name: []byte("malformed"),
			Partitions: []proto.ProducePartition{{Partition: 0, Records: recordBatch("never appended")}}}}}).AppendTo(nil),
		proto.KeyFetch: (&proto.FetchRequest{MaxWaitMs: 0, MinBytes: 1, MaxBytes: 1 << 20, Topics: []proto.FetchTopic{{Name: []byte("malformed"),
			Partitions: []proto.FetchPartition{{Partition: 0, FetchOffset: 0, PartitionMaxBytes: 1 << 20}}}}}).AppendTo(nil),
		proto.KeyListOffsets: (&proto.ListOffsetsRequest{Topics: []proto.ListOffsetsTopic{{Name: "malformed",
			Partitions: []proto.ListOffsetsPartition{{Partition: 0, Timestamp: -1}}}}}).AppendTo(nil),
		proto.KeyMetadata: (&proto.MetadataRequest{Topics: []string{"created-by-a-malformed-request"}, AllowAutoCreate: true}).AppendTo(nil),
		proto.KeyOffsetCommit: (&proto.OffsetCommitRequest{Group: "g", Topics: []proto.OffsetCommitTopic{{Name: "malformed",
			Partitions: []proto.OffsetCommitPartition{{Partition: 0, Offset: 5}}}}}).AppendTo(nil),
		proto.KeyOffsetFetch: (&proto.OffsetFetchRequest{Group: "g", Topics: []proto.OffsetFetchTopic{{Name: "malformed", Partitions: []int32{0}}}}).AppendTo(nil),
		proto.KeyCreateTopics: (&proto.CreateTopicsRequest{Topics: []proto.CreateTopic{{Name: "created-by-a-malformed-request", NumPartitions: 1, ReplicationFactor: 1}},
			TimeoutMs: 1000}).AppendTo(nil),
		proto.KeyDeleteTopics: (&proto.DeleteTopicsRequest{Names: []string{"malformed"}, TimeoutMs: 1000}).AppendTo(nil),
		proto.KeyPing:         (&proto.PingRequest{Echo: 42}).AppendTo(nil),
	}
	type malformed struct {
		name string
		key  int16
		body []byte
	}
	var cases []malformed
	for key := int16(0); key <= proto.KeyPing; key++ {
		body, ok := valid[key]
		if !ok {
			continue // ApiVersions ignores its body by design
		}
		cases = append(cases,
			malformed{proto.KeyName(key) + " truncated by one byte", key, body[:len(body)-1]},
			malformed{proto.KeyName(key) + " with a trailing byte", key, append(bytes.Clone(body), 0)},
			malformed{proto.KeyName(key) + " empty", key, nil},
		)
	}
	cases = append(cases,
		// A count far beyond what the frame could hold: rejected before anything is allocated.
		malformed{"Metadata topic count 2^31-1", proto.KeyMetadata, append(proto.AppendInt32(nil, 1<<31-1), 0)},
		malformed{"Metadata topic count -2", proto.KeyMetadata, append(proto.AppendInt32(nil, -2), 0)},
		malformed{"Produce topic name length -2", proto.KeyProduce,
			proto.AppendInt32(proto.AppendInt16(proto.AppendInt32(proto.AppendInt32(proto.AppendInt16(nil, 1), 1000), 1), -2), 0)},
		malformed{"Produce records length past the frame", proto.KeyProduce,
			proto.AppendInt32(proto.AppendInt32(proto.AppendInt32(proto.AppendString(proto.AppendInt32(proto.AppendInt32(proto.AppendInt16(nil, 1), 1000), 1), "malformed"), 1), 0), 1<<20)},
	)
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			conn.t = t
			corr := int32(-1000 - i) // negative ids are legal too
			conn.write(requestFrame(tc.key, proto.Version, corr, tc.body))
			expectTopLevelError(t, conn.readFrame(), corr, errcode.InvalidRequest)
			conn.ping(int32(100 + i))
		})
	}
	conn.t = t
	if end := conn.latestOffset(3, "malformed", 0); end != 0 {
		t.Errorf("a malformed Produce appended: the log ends at %d", end)
	}
	conn.write(requestFrame(proto.KeyMetadata, proto.Version, 5, (&proto.MetadataRequest{}).AppendTo(nil)))
	resp := conn.readFrame()
	var md proto.MetadataResponse
	if err := md.ReadFrom(resp.body); err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, tp := range md.Topics {
		names[tp.Name] = true
	}
	if names["created-by-a-malformed-request"] {
		t.Errorf("a malformed CreateTopics or Metadata request created its topic")
	}
	if !names["malformed"] {
		t.Errorf("a malformed DeleteTopics request deleted its topic")
	}
}

// TestBadFrameSizeClosesOnlyThatConnection: a size prefix that cannot delimit a frame (2 GiB, a
// negative one, beyond the 64 MiB limit, below the 8-byte header) closes that connection without
// an answer, while a client on another connection keeps being served.
func TestBadFrameSizeClosesOnlyThatConnection(t *testing.T) {
	b := startBroker(t, t.TempDir())
	other := dialRaw(t, b.addr)
	other.ping(1)
	cases := []struct {
		name string
		size uint32
	}{
		{"2 GiB", 1 << 31},
		{"negative (-1)", 0xffffffff},
		{"negative (-100)", uint32(0xffffffff - 99)},
		{"2 GiB - 1", 1<<31 - 1},
		{"max frame + 1", proto.DefaultMaxFrame + 1},
		{"zero", 0},
		{"below the header (7)", 7},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			bad := dialRaw(t, b.addr)
			bad.ping(int32(10 + i)) // served before the bad frame
			bad.write(binary.BigEndian.AppendUint32(nil, tc.size))
			bad.expectClosed(false)
			other.t = t
			other.ping(int32(100 + i))
		})
	}
}

// TestGarbageClosesConnection: bytes that are not the protocol (a client speaking HTTP or TLS to
// the port) close the connection, and other connections are unaffected.
func TestGarbageClosesConnection(t *testing.T) {
	b := startBroker(t, t.TempDir())
	other := dialRaw(t, b.addr)
	cases := map[string][]byte{
		"HTTP request":    []byte("GET / HTTP/1.1\r\nHost: localhost\r\nUser-Agent: curl/8\r\n\r\n"),
		"TLS ClientHello": append([]byte{0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03}, bytes.Repeat([]byte{0xab}, 64)...),
		"all ones":        bytes.Repeat([]byte{0xff}, 100),
		"ELF binary":      append([]byte("\x7fELF\x02\x01\x01"), make([]byte, 57)...),
	}
	i := int32(0)
	for name, garbage := range cases {
		i++
		t.Run(name, func(t *testing.T) {
			bad := dialRaw(t, b.addr)
			bad.write(garbage)
			// Garbage longer than a size prefix may still be unread in the broker's socket when it
			// closes, which the kernel reports as a reset rather than EOF: both are a close.
			bad.expectClosed(true)
			other.t = t
			other.ping(i)
		})
	}
}

// TestFrameSentOneByteAtATime: frames that arrive a byte at a time, including the size prefix,
// are reassembled and answered, in order.
func TestFrameSentOneByteAtATime(t *testing.T) {
	b := startBroker(t, t.TempDir())
	conn := dialRaw(t, b.addr)
	conn.createTopic(1, "bytewise", 1)
	var stream []byte
	stream = append(stream, pingFrame(10, 1010)...)
	stream = append(stream, requestFrame(proto.KeyProduce, proto.Version, 11,
		(&proto.ProduceRequest{Acks: 1, TimeoutMs: 30_000, Topics: []proto.ProduceTopic{{Name: []byte("bytewise"),
			Partitions: []proto.ProducePartition{{Partition: 0, Records: recordBatch("one", "byte", "at a time")}}}}}).AppendTo(nil))...)
	stream = append(stream, pingFrame(12, 1212)...)
	for i := range stream {
		conn.write(stream[i : i+1])
		// Pacing, not waiting for a condition: a pause between bytes makes the broker's reads see
		// partial size prefixes and partial frames. The test's outcome does not depend on it.
		time.Sleep(200 * time.Microsecond)
	}
	conn.expectPong(10, 1010)
	resp := conn.readFrame()
	if resp.CorrelationID != 11 || resp.ErrorCode != 0 {
		t.Fatalf("Produce: correlation id %d, error %d %q", resp.CorrelationID, resp.ErrorCode, resp.ErrorMessage)
	}
	var pr proto.ProduceResponse
	if err := pr.ReadFrom(resp.body); err != nil {
		t.Fatal(err)
	}
	if p := pr.Topics[0].Partitions[0]; p.ErrorCode != 0 || p.BaseOffset != 0 {
		t.Fatalf("Produce: %+v", p)
	}
	conn.expectPong(12, 1212)
	if end := conn.latestOffset(13, "bytewise", 0); end != 3 {
		t.Fatalf("the log ends at %d, want 3", end)
	}
}

// TestPipelinedPingsAnsweredInOrder: 50 Pings written back to back on one connection, before any
// answer is read, are answered in request order.
func TestPipelinedPingsAnsweredInOrder(t *testing.T) {
	b := startBroker(t, t.TempDir())
	conn := dialRaw(t, b.addr)
	const n = 50
	var all []byte
	for i := 0; i < n; i++ {
		corr := int32(7000 + 13*i) // not consecutive, so order and identity are both checked
		all = append(all, pingFrame(corr, int64(i))...)
	}
	conn.write(all)
	for i := 0; i < n; i++ {
		conn.expectPong(int32(7000+13*i), int64(i))
	}
}

// TestPipelinedMixedRequestsAnsweredInOrder: requests served in different places (Pings on the
// event loop, Metadata and ListOffsets on goroutines, Produce by the partition writer after an
// fsync) are still answered in the order they were sent.
func TestPipelinedMixedRequestsAnsweredInOrder(t *testing.T) {
	b := startBroker(t, t.TempDir())
	conn := dialRaw(t, b.addr)
	conn.createTopic(1, "mixed", 1)
	const n = 50
	var all []byte
	for i := int32(0); i < n; i++ {
		corr := 100 + i
		switch i % 4 {
		case 0:
			all = append(all, produceFrame(corr, proto.AcksLeader, "mixed", map[int32][]byte{0: recordBatch(fmt.Sprint(i))})...)
		case 1:
			all = append(all, requestFrame(proto.KeyMetadata, proto.Version, corr, (&proto.MetadataRequest{}).AppendTo(nil))...)
		case 2:
			req := proto.ListOffsetsRequest{Topics: []proto.ListOffsetsTopic{{Name: "mixed", Partitions: []proto.ListOffsetsPartition{{Partition: 0, Timestamp: -1}}}}}
			all = append(all, requestFrame(proto.KeyListOffsets, proto.Version, corr, req.AppendTo(nil))...)
		case 3:
			all = append(all, pingFrame(corr, int64(i))...)
		}
	}
	conn.write(all)
	for i := int32(0); i < n; i++ {
		resp := conn.readFrame()
		if resp.CorrelationID != 100+i || resp.ErrorCode != 0 {
			t.Fatalf("response %d: correlation id %d (error %d %q), want %d", i, resp.CorrelationID, resp.ErrorCode, resp.ErrorMessage, 100+i)
		}
	}
}

// TestProduceCorruptCRC: a batch whose CRC does not match gets CORRUPT_MESSAGE for its partition,
// and nothing is appended there; another partition in the same request is appended.
func TestProduceCorruptCRC(t *testing.T) {
	b := startBroker(t, t.TempDir())
	conn := dialRaw(t, b.addr)
	conn.createTopic(1, "crc", 2)
	// One good batch first, so "unchanged" is not trivially zero.
	if res := conn.produce(2, "crc", map[int32][]byte{0: recordBatch("a", "b"), 1: recordBatch("c")}); res[0].ErrorCode != 0 || res[1].ErrorCode != 0 {
		t.Fatalf("good produce: %+v", res)
	}
	before0, before1 := conn.latestOffset(3, "crc", 0), conn.latestOffset(4, "crc", 1)
	if before0 != 2 || before1 != 1 {
		t.Fatalf("after the good produce the logs end at %d and %d, want 2 and 1", before0, before1)
	}

	cases := map[string]func(b []byte){
		"CRC field":     func(b []byte) { b[17] ^= 0x01 },
		"a record byte": func(b []byte) { b[len(b)-2] ^= 0x80 },
		"attributes":    func(b []byte) { b[22] ^= 0x08 }, // covered by the CRC
	}
	corr := int32(10)
	for name, corrupt := range cases {
		t.Run(name, func(t *testing.T) {
			conn.t = t
			bad := recordBatch("x", "y", "z")
			corrupt(bad)
			corr++
			res := conn.produce(corr, "crc", map[int32][]byte{0: bad, 1: recordBatch("fine")})
			if code := errcode.Code(res[0].ErrorCode); code != errcode.CorruptMessage {
				t.Errorf("corrupt batch: %v %q, want CORRUPT_MESSAGE", code, res[0].ErrorMessage)
			}
			if res[0].BaseOffset != -1 {
				t.Errorf("corrupt batch got base offset %d, want -1", res[0].BaseOffset)
			}
			if res[1].ErrorCode != 0 || res[1].BaseOffset != before1 {
				t.Errorf("the good batch beside it: %+v, want success at offset %d", res[1], before1)
			}
			before1++
			corr++
			if end := conn.latestOffset(corr, "crc", 0); end != before0 {
				t.Fatalf("after the corrupt batch partition 0 ends at %d, want %d: something was appended", end, before0)
			}
			corr++
			if end := conn.latestOffset(corr, "crc", 1); end != before1 {
				t.Fatalf("partition 1 ends at %d, want %d", end, before1)
			}
		})
	}
}

// TestProduceAcksZeroHasNoResponse: a Produce with acks=0 is never answered, whether it succeeds
// or fails; the next frame on the connection is the answer to the request after it.
func TestProduceAcksZeroHasNoResponse(t *testing.T) {
	b := startBroker(t, t.TempDir())
	conn := dialRaw(t, b.addr)
	conn.createTopic(1, "fire-and-forget", 1)

	// A good batch: appended, not answered.
	conn.write(append(produceFrame(20, proto.AcksNone, "fire-and-forget", map[int32][]byte{0: recordBatch("1", "2", "3")}), pingFrame(21, 2121)...))
	conn.expectPong(21, 2121)
	deadline := time.Now().Add(ioDeadline)
	corr := int32(100)
	for {
		corr++
		end := conn.latestOffset(corr, "fire-and-forget", 0)
		if end == 3 {
			break
		}
		if end > 3 || time.Now().After(deadline) {
			t.Fatalf("the acks=0 batch of 3 records: the log ends at %d", end)
		}
		time.Sleep(10 * time.Millisecond) // polling a condition with a deadline
	}

	// A corrupt batch and a batch for an unknown partition: not appended, not answered either.
	bad := recordBatch("bad")
	bad[17] ^= 0xff
	conn.write(append(produceFrame(30, proto.AcksNone, "fire-and-forget", map[int32][]byte{0: bad}), pingFrame(31, 3131)...))
	conn.expectPong(31, 3131)
	req := proto.ProduceRequest{Acks: proto.AcksNone, Topics: []proto.ProduceTopic{{Name: []byte("fire-and-forget"),
		Partitions: []proto.ProducePartition{{Partition: 7, Records: recordBatch("nowhere")}}}}}
	conn.write(append(requestFrame(proto.KeyProduce, proto.Version, 32, req.AppendTo(nil)), pingFrame(33, 3333)...))
	conn.expectPong(33, 3333)

	// No late answer to any of them is queued behind: the next frame is the next request's.
	conn.ping(34)
	if end := conn.latestOffset(35, "fire-and-forget", 0); end != 3 {
		t.Fatalf("after the corrupt acks=0 batch the log ends at %d, want 3", end)
	}
}
