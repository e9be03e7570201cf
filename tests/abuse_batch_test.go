package tests

// Hostile record batches against the broker binary: compressed bombs, batches claiming millions of
// headers, invented producer ids. The broker must refuse them with Kafka's errors, keep its memory
// bounded and keep serving ordinary clients. THORSTREAM_ABUSE_LONG=1 runs longer versions.

import (
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/thorstream/thorstream/codec/batch"
	"github.com/thorstream/thorstream/codec/compress"
	"github.com/thorstream/thorstream/codec/errcode"
)

// rawBatch builds a batch whose records section is section (uncompressed) compressed with codec,
// claiming count records, from producer pid (-1: none) at sequence seq.
func abuseBatch(t *testing.T, codec int, section []byte, count int32, pid int64, seq int32) []byte {
	t.Helper()
	var bl batch.Builder
	bl.ResetProducer(pid, 0, seq)
	bl.Append(nil, nil, time.Now().UnixMilli(), nil)
	b := append([]byte(nil), bl.Finish()[:batch.HeaderSize]...)
	var err error
	if b, err = compress.Compress(codec, b, section, compress.DefaultLevel); err != nil {
		t.Fatal(err)
	}
	binary.BigEndian.PutUint32(b[8:], uint32(len(b)-batch.LengthPrefix))
	binary.BigEndian.PutUint16(b[21:], uint16(codec))
	binary.BigEndian.PutUint32(b[23:], uint32(count-1))
	binary.BigEndian.PutUint32(b[57:], uint32(count))
	c := batch.Checksum(b)
	binary.BigEndian.PutUint32(b[17:], c)
	return b
}

// abuseHeaders is the records section of one record with n empty headers (2 bytes each).
func abuseHeaders(n int) []byte {
	body := []byte{0, 0, 0, 1, 1}
	body = binary.AppendVarint(body, int64(n))
	hs := make([]byte, 2*n)
	for i := 1; i < len(hs); i += 2 {
		hs[i] = 1
	}
	rec := binary.AppendVarint(nil, int64(len(body)+len(hs)))
	return append(append(rec, body...), hs...)
}

// abuseValues is the records section of n records, each with a value of size zero bytes.
func abuseValues(n, size int) []byte {
	var out []byte
	for i := range n {
		body := []byte{0, 0}
		body = binary.AppendVarint(body, int64(i))
		body = append(body, 1) // null key
		body = binary.AppendVarint(body, int64(size))
		body = append(body, make([]byte, size)...)
		body = append(body, 0)
		out = binary.AppendVarint(out, int64(len(body)))
		out = append(out, body...)
	}
	return out
}

// produceAbuse sends one Produce request with records for each listed partition and returns the
// error code of each.
func produceAbuse(t *testing.T, cl *kgo.Client, topic string, parts map[int32][]byte) map[int32]int16 {
	t.Helper()
	req := kmsg.NewPtrProduceRequest()
	req.Acks = -1
	req.TimeoutMillis = 30000
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = topic
	for p, records := range parts {
		rp := kmsg.NewProduceRequestTopicPartition()
		rp.Partition = p
		rp.Records = records
		rt.Partitions = append(rt.Partitions, rp)
	}
	req.Topics = append(req.Topics, rt)
	resp := request[*kmsg.ProduceResponse](t, cl, req)
	codes := map[int32]int16{}
	for _, rt := range resp.Topics {
		for _, rp := range rt.Partitions {
			codes[rp.Partition] = rp.ErrorCode
		}
	}
	return codes
}

func createAbuseTopic(t *testing.T, cl *kgo.Client, topic string, partitions int32) {
	t.Helper()
	req := kmsg.NewPtrCreateTopicsRequest()
	rt := kmsg.NewCreateTopicsRequestTopic()
	rt.Topic, rt.NumPartitions, rt.ReplicationFactor = topic, partitions, 1
	req.Topics = append(req.Topics, rt)
	req.TimeoutMillis = 30000
	resp := request[*kmsg.CreateTopicsResponse](t, cl, req)
	if c := resp.Topics[0].ErrorCode; c != 0 {
		t.Fatalf("create %s: error %d", topic, c)
	}
}

// ordinaryClientWorks produces and reads back a few records with a normal franz-go client
// within a deadline.
func ordinaryClientWorks(t *testing.T, addr, topic string) {
	t.Helper()
	start := time.Now()
	cl := newKafkaClient(t, addr, kgo.DefaultProduceTopic(topic), kgo.AllowAutoTopicCreation(),
		kgo.ProducerBatchCompression(kgo.ZstdCompression()))
	for i := range 100 {
		if err := cl.ProduceSync(ctx(t, 30*time.Second), &kgo.Record{Value: []byte(fmt.Sprint("ordinary ", i))}).FirstErr(); err != nil {
			t.Fatalf("an ordinary producer failed after the abuse: %v", err)
		}
	}
	if got := consume(t, addr, 100, topic); len(got) != 100 {
		t.Fatalf("read back %d records", len(got))
	}
	if d := time.Since(start); d > 60*time.Second {
		t.Fatalf("an ordinary client took %v", d)
	}
}

// TestAbuseCompressedBatchBombs: small zstd batches of one record with 31 million empty headers,
// zeros beyond the 64 MiB decompression cap and a value beyond it, sent to every partition, are
// refused with INVALID_RECORD or CORRUPT_MESSAGE; the broker's peak RSS stays within a bound
// (it reached 6.7 GB when validation held a decompressed copy and the header slice per
// partition), nothing is kept afterwards, ListOffsets by timestamp on a large compressed batch
// costs no more, and an ordinary client is served.
func TestAbuseCompressedBatchBombs(t *testing.T) {
	b := startKafkaBroker(t, "THORSTREAM_FSYNC=never")
	verify := produceAcked(t, b.kafkaAddr, "acked-before-attack", 500)
	cl := newKafkaClient(t, b.kafkaAddr)
	const partitions = 8
	createAbuseTopic(t, cl, "bombs", partitions)
	ordinaryClientWorks(t, b.kafkaAddr, "warmup")
	rssBefore := procStatusKiB(t, b.brokerProc.cmd.Process.Pid, "VmRSS")

	bombs := []struct {
		name  string
		batch []byte
		want  errcode.Code
	}{
		{"31M empty headers", abuseBatch(t, batch.CodecZstd, abuseHeaders(31_000_000), 1, -1, -1), errcode.InvalidRecord},
		{"65 MiB of zeros", abuseBatch(t, batch.CodecZstd, make([]byte, 65<<20), 1, -1, -1), errcode.InvalidRecord},
		{"a 65 MiB value", abuseBatch(t, batch.CodecZstd, abuseValues(1, 65<<20), 1, -1, -1), errcode.CorruptMessage},
	}
	rounds := 3
	if abuseLong() {
		rounds = 30
	}
	for _, bomb := range bombs {
		if len(bomb.batch) > 16<<10 {
			t.Fatalf("%s: %d bytes, not a small batch", bomb.name, len(bomb.batch))
		}
		start := time.Now()
		for range rounds {
			parts := map[int32][]byte{}
			for p := range int32(partitions) {
				parts[p] = bomb.batch
			}
			for p, code := range produceAbuse(t, cl, "bombs", parts) {
				if errcode.Code(code) != bomb.want {
					t.Fatalf("%s on partition %d: error %d, want %v", bomb.name, p, code, bomb.want)
				}
			}
		}
		t.Logf("%s (%d bytes): %d rounds of %d partitions refused in %v", bomb.name, len(bomb.batch), rounds, partitions, time.Since(start))
	}

	// A valid batch of 40 MiB of records in 5 KB of zstd, then ListOffsets by timestamp on it.
	valid := abuseBatch(t, batch.CodecZstd, abuseValues(40, 1<<20), 40, -1, -1)
	if code := produceAbuse(t, cl, "bombs", map[int32][]byte{0: valid})[0]; code != 0 {
		t.Fatalf("valid 40 MiB batch: error %d", code)
	}
	start := time.Now()
	for range 20 {
		req := kmsg.NewPtrListOffsetsRequest()
		req.ReplicaID = -1
		rt := kmsg.NewListOffsetsRequestTopic()
		rt.Topic = "bombs"
		rp := kmsg.NewListOffsetsRequestTopicPartition()
		rp.Partition, rp.Timestamp = 0, 1 // every record is later: the answer is offset 0
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		resp := request[*kmsg.ListOffsetsResponse](t, cl, req)
		if p := resp.Topics[0].Partitions[0]; p.ErrorCode != 0 || p.Offset != 0 {
			t.Fatalf("ListOffsets by timestamp: error %d offset %d", p.ErrorCode, p.Offset)
		}
	}
	t.Logf("20 ListOffsets by timestamp on a 40 MiB batch in %v", time.Since(start))

	peak, rssAfter := procStatusKiB(t, b.brokerProc.cmd.Process.Pid, "VmHWM"), procStatusKiB(t, b.brokerProc.cmd.Process.Pid, "VmRSS")
	t.Logf("broker RSS %d KiB before, %d KiB after, peak %d KiB", rssBefore, rssAfter, peak)
	// One bomb decodes through the shared zstd decoders' 8 MiB windows and a 32 KiB buffer per
	// partition; the rest is Go's heap slack.
	if peak-rssBefore > 200<<10 {
		t.Errorf("peak RSS grew by %d MiB during the bombs, want at most 200 MiB", (peak-rssBefore)>>10)
	}
	if rssAfter-rssBefore > 100<<10 {
		t.Errorf("RSS stayed %d MiB higher after the bombs, want at most 100 MiB", (rssAfter-rssBefore)>>10)
	}
	ordinaryClientWorks(t, b.kafkaAddr, "after-bombs")
	verify()
}

// TestAbuseInventedProducerIDs: a client inventing producer ids (20,000 here, 200,000 with
// THORSTREAM_ABUSE_LONG=1) gets at most 10,000 tracked per partition, the rest refused with the
// retriable REQUEST_TIMED_OUT; negative sequences are refused with INVALID_RECORD; the broker's
// RSS and its producer-state checkpoint stay small, and an ordinary client is served.
func TestAbuseInventedProducerIDs(t *testing.T) {
	b := startKafkaBroker(t, "THORSTREAM_FSYNC=never")
	verify := produceAcked(t, b.kafkaAddr, "acked-before-attack", 500)
	cl := newKafkaClient(t, b.kafkaAddr)
	createAbuseTopic(t, cl, "pids", 1)
	ordinaryClientWorks(t, b.kafkaAddr, "warmup")
	rssBefore := procStatusKiB(t, b.brokerProc.cmd.Process.Pid, "VmRSS")

	if code := produceAbuse(t, cl, "pids", map[int32][]byte{0: abuseBatch(t, batch.CodecNone, abuseValues(1, 10), 1, 5, -3)})[0]; errcode.Code(code) != errcode.InvalidRecord {
		t.Fatalf("negative sequence: error %d, want INVALID_RECORD", code)
	}
	ids := 20_000
	if abuseLong() {
		ids = 200_000
	}
	section := abuseValues(1, 10)
	var mu sync.Mutex
	codes := map[int16]int{}
	var wg sync.WaitGroup
	const senders = 8
	start := time.Now()
	for s := range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for pid := s; pid < ids; pid += senders {
				code := produceAbuse(t, cl, "pids", map[int32][]byte{0: abuseBatch(t, batch.CodecNone, section, 1, int64(1_000_000+pid), 0)})[0]
				mu.Lock()
				codes[code]++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	t.Logf("%d invented producer ids in %v: %v", ids, time.Since(start), codes)
	if codes[0] != 10_000 || codes[int16(errcode.RequestTimedOut)] != ids-10_000 {
		t.Fatalf("answers %v, want 10000 accepted and the rest REQUEST_TIMED_OUT", codes)
	}
	rssAfter := procStatusKiB(t, b.brokerProc.cmd.Process.Pid, "VmRSS")
	t.Logf("broker RSS %d KiB before, %d KiB after", rssBefore, rssAfter)
	if rssAfter-rssBefore > 100<<10 {
		t.Errorf("RSS grew by %d MiB, want at most 100 MiB", (rssAfter-rssBefore)>>10)
	}
	ordinaryClientWorks(t, b.kafkaAddr, "after-pids")

	b.stop() // a clean stop writes the producer-state checkpoint
	path := filepath.Join(b.dataDir, "pids-0", "producer-state-checkpoint")
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("checkpoint %s: %d bytes", path, fi.Size())
	if fi.Size() > 1<<20 {
		t.Fatalf("checkpoint of %d bytes for a bounded state, want at most 1 MiB", fi.Size())
	}
	b.restart()
	verify()
}
