package kafka

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"reflect"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/thorstream/thorstream/cluster"
	"github.com/thorstream/thorstream/codec/errcode"
	"github.com/thorstream/thorstream/reactor/core"
)

// The hand-framed Fetch response (01_fetch.go) is checked against kmsg: for random topics,
// partitions, errors, watermarks, record bytes and leaders (v12's CurrentLeader), the frame must be exactly what
// kmsg.FetchResponse.AppendTo encodes for the same answer, and kmsg.FetchResponse.ReadFrom must
// decode it back to the same fields.

// fetchCase is one random Fetch answer: the request's topics and partitions, each partition's
// result, and the data buffer the results point into.
type fetchCase struct {
	version int16
	corr    int32
	req     kmsg.FetchRequest
	results []core.PartitionRead
	routes  []cluster.Route // the leader a NOT_LEADER_OR_FOLLOWER partition names (v12)
	data    []byte
}

// randomFetchCase draws a Fetch answer from seed; record bytes are cut out of records.
func randomFetchCase(version int16, corr int32, seed uint64, records []byte) fetchCase {
	rng := rand.New(rand.NewPCG(seed, uint64(version)))
	c := fetchCase{version: version, corr: corr}
	c.req.Version = version
	codes := []int16{0, 0, 0, 1, 3, 6, 56, 74, 75, -1, int16(rng.Uint32())}
	int64s := func() int64 {
		switch rng.IntN(4) {
		case 0:
			return -1
		case 1:
			return int64(rng.IntN(1000))
		case 2:
			return int64(rng.Uint64())
		default:
			return int64(rng.Uint32())
		}
	}
	for range rng.IntN(4) {
		name := make([]byte, rng.IntN(24))
		for i := range name {
			name[i] = byte(rng.UintN(256))
		}
		topic := kmsg.FetchRequestTopic{Topic: string(name)}
		for range rng.IntN(5) {
			topic.Partitions = append(topic.Partitions, kmsg.FetchRequestTopicPartition{Partition: int32(rng.Uint32())})
			res := core.PartitionRead{
				Code:          errcode.Code(codes[rng.IntN(len(codes))]),
				HighWatermark: int64s(),
				LogStart:      int64s(),
			}
			if rng.IntN(3) > 0 {
				res.HasRecords = true
				res.DataStart = len(c.data)
				if len(records) > 0 {
					from := rng.IntN(len(records))
					to := from + rng.IntN(len(records)-from+1)
					c.data = append(c.data, records[from:to]...)
				}
				res.DataEnd = len(c.data)
			}
			c.results = append(c.results, res)
			rt := cluster.Route{Leader: -1, LeaderEpoch: -1}
			if rng.IntN(4) > 0 {
				rt.Leader, rt.LeaderEpoch = int32(rng.IntN(5)), int32(rng.Uint32())
			}
			c.routes = append(c.routes, rt)
		}
		c.req.Topics = append(c.req.Topics, topic)
	}
	return c
}

// handEncode runs the hand-written encoder and returns the whole frame, size prefix included.
func (c *fetchCase) handEncode(empty bool, code int16) []byte {
	t := &fetchTxn{
		h:       header{key: kmsg.Fetch.Int16(), version: c.version, correlationID: c.corr, flexible: isFlexible(kmsg.Fetch.Int16(), c.version)},
		req:     c.req,
		results: c.results,
		routes:  c.routes,
	}
	resp := core.NewResponse()
	defer resp.Written(nil)
	if empty {
		t.encodeEmpty(resp, code)
	} else {
		resp.Data().B = append(resp.Data().B[:0], c.data...)
		t.encode(resp)
	}
	var b []byte
	for _, p := range resp.Bufs {
		b = append(b, p...)
	}
	return b
}

// want is the kmsg form of the answer.
func (c *fetchCase) want() *kmsg.FetchResponse {
	resp := kmsg.NewPtrFetchResponse()
	resp.Version = c.version
	slot := 0
	for _, topic := range c.req.Topics {
		rt := kmsg.NewFetchResponseTopic()
		rt.Topic = topic.Topic
		for _, p := range topic.Partitions {
			res := c.results[slot]
			slot++
			rp := kmsg.NewFetchResponseTopicPartition()
			rp.Partition = p.Partition
			rp.ErrorCode = int16(res.Code)
			rp.HighWatermark = res.HighWatermark
			rp.LastStableOffset = res.HighWatermark
			if c.version >= 5 {
				rp.LogStartOffset = res.LogStart
			}
			rp.AbortedTransactions = []kmsg.FetchResponseTopicPartitionAbortedTransaction{}
			rp.PreferredReadReplica = -1
			rp.RecordBatches = []byte{}
			if res.HasRecords && res.DataEnd > res.DataStart {
				rp.RecordBatches = c.data[res.DataStart:res.DataEnd]
			}
			if rt := c.routes[slot-1]; c.version >= 12 && res.Code == errcode.NotLeaderOrFollower && rt.Leader >= 0 {
				rp.CurrentLeader.LeaderID, rp.CurrentLeader.LeaderEpoch = rt.Leader, rt.LeaderEpoch
			}
			rt.Partitions = append(rt.Partitions, rp)
		}
		resp.Topics = append(resp.Topics, rt)
	}
	return resp
}

// checkFrame checks the size prefix, correlation id and header tags of a Fetch response frame and
// returns its body.
func checkFrame(version int16, corr int32, frame []byte) ([]byte, error) {
	if len(frame) < 8 {
		return nil, fmt.Errorf("frame of %d bytes", len(frame))
	}
	if size := binary.BigEndian.Uint32(frame); int(size) != len(frame)-4 {
		return nil, fmt.Errorf("size prefix %d, %d bytes follow", size, len(frame)-4)
	}
	if got := int32(binary.BigEndian.Uint32(frame[4:])); got != corr {
		return nil, fmt.Errorf("correlation id %d, want %d", got, corr)
	}
	body := frame[8:]
	if version >= 12 {
		if len(body) == 0 || body[0] != 0 {
			return nil, fmt.Errorf("v%d response header: no empty tag section", version)
		}
		body = body[1:]
	}
	return body, nil
}

// compareFetch checks one random answer at one version.
func compareFetch(t *testing.T, version int16, corr int32, seed uint64, records []byte) {
	t.Helper()
	c := randomFetchCase(version, corr, seed, records)
	body, err := checkFrame(version, corr, c.handEncode(false, 0))
	if err != nil {
		t.Fatalf("v%d seed %d: %v", version, seed, err)
	}
	want := c.want()
	if enc := want.AppendTo(nil); string(enc) != string(body) {
		t.Fatalf("v%d seed %d: hand-framed body differs from kmsg's encoding\nhand % x\nkmsg % x", version, seed, body, enc)
	}
	got := kmsg.NewPtrFetchResponse()
	got.Version = version
	if err := got.ReadFrom(body); err != nil {
		t.Fatalf("v%d seed %d: kmsg cannot decode the hand-framed body: %v", version, seed, err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("v%d seed %d: decoded\n%+v\nwant\n%+v", version, seed, got, want)
	}
	if got.ErrorCode != 0 || got.SessionID != 0 || got.ThrottleMillis != 0 {
		t.Fatalf("v%d seed %d: top level error %d session %d throttle %d", version, seed, got.ErrorCode, got.SessionID, got.ThrottleMillis)
	}

	// The session error answer (FETCH_SESSION_ID_NOT_FOUND) exists from v7, where sessions do.
	if version >= 7 {
		body, err := checkFrame(version, corr, c.handEncode(true, fetchSessionIDNotFound))
		if err != nil {
			t.Fatalf("v%d seed %d (session error): %v", version, seed, err)
		}
		want := kmsg.NewPtrFetchResponse()
		want.Version = version
		want.ErrorCode = fetchSessionIDNotFound
		if enc := want.AppendTo(nil); string(enc) != string(body) {
			t.Fatalf("v%d (session error): hand-framed body differs from kmsg's encoding\nhand % x\nkmsg % x", version, body, enc)
		}
		got := kmsg.NewPtrFetchResponse()
		got.Version = version
		if err := got.ReadFrom(body); err != nil || got.ErrorCode != fetchSessionIDNotFound || len(got.Topics) != 0 {
			t.Fatalf("v%d (session error): decoded %+v, %v", version, got, err)
		}
	}
}

func TestFetchResponseMatchesKmsg(t *testing.T) {
	records := make([]byte, 4096)
	for i := range records {
		records[i] = byte(i*7 + i>>8)
	}
	for version := int16(4); version <= 12; version++ {
		t.Run(fmt.Sprintf("v%d", version), func(t *testing.T) {
			for seed := uint64(0); seed < 300; seed++ {
				compareFetch(t, version, int32(seed)*31-7, seed, records)
			}
		})
	}
}

// FuzzFetchResponse: the version is taken modulo the served range 4-12.
func FuzzFetchResponse(f *testing.F) {
	f.Add(byte(4), int32(1), uint64(0), []byte("records"))
	f.Add(byte(11), int32(-1), uint64(42), []byte{})
	f.Add(byte(12), int32(1<<30), uint64(7), make([]byte, 300))
	f.Fuzz(func(t *testing.T, v byte, corr int32, seed uint64, records []byte) {
		compareFetch(t, 4+int16(v%9), corr, seed, records)
	})
}
