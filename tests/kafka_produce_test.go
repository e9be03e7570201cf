package tests

// Idempotent produce across restarts, and what the Kafka listener does with bad input.

import (
	"encoding/binary"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func TestKafkaIdempotentProduceAcrossKill(t *testing.T) {
	b := startKafkaBroker(t)
	const topic = "idem-kill"
	cl := newKafkaClient(t, b.kafkaAddr, kgo.DefaultProduceTopic(topic))
	createTopic(t, cl, topic, 1, nil)
	first := valueRecords(topic, "before", 500)
	produceSync(t, cl, first...)
	cl.Close()

	b.kill()
	b.restart()

	cl2 := newKafkaClient(t, b.kafkaAddr, kgo.DefaultProduceTopic(topic))
	second := valueRecords(topic, "after", 500)
	produceSync(t, cl2, second...)
	for i, r := range second {
		if r.Offset != int64(len(first)+i) {
			t.Fatalf("record %d after the restart at offset %d, want %d", i, r.Offset, len(first)+i)
		}
	}
	got := consume(t, b.kafkaAddr, len(first)+len(second), topic)
	for i, r := range got {
		want := first
		j := i
		if i >= len(first) {
			want, j = second, i-len(first)
		}
		if r.Offset != int64(i) || string(r.Value) != string(want[j].Value) {
			t.Fatalf("offset %d: %q, want %q", r.Offset, r.Value, want[j].Value)
		}
	}
	if hw := listOffset(t, b.kafkaAddr, topic, 0, -1).Offset; hw != int64(len(got)) {
		t.Fatalf("high watermark %d: duplicates were appended", hw)
	}
}

// TestKafkaDuplicateBatch drives the idempotence rules with hand-made batches: a retried batch
// gets its original offset and is stored once, also after a clean restart and after kill -9; a
// sequence gap and an older epoch are refused.
func TestKafkaDuplicateBatch(t *testing.T) {
	b := startKafkaBroker(t)
	const topic = "idem-raw"
	cl := newKafkaClient(t, b.kafkaAddr)
	createTopic(t, cl, topic, 1, nil)
	ids := request[*kmsg.InitProducerIDResponse](t, cl, kmsg.NewPtrInitProducerIDRequest())
	if ids.ErrorCode != 0 {
		t.Fatalf("init producer id: error %d", ids.ErrorCode)
	}
	pid := ids.ProducerID

	send := func(cl *kgo.Client, batch []byte, wantCode int16, wantOffset int64) {
		t.Helper()
		r := produceRaw(t, cl, topic, 0, batch)
		if r.ErrorCode != wantCode || (wantCode == 0 && r.BaseOffset != wantOffset) {
			t.Fatalf("produce: error %d (%v) base offset %d, want error %d offset %d", r.ErrorCode, r.ErrorMessage, r.BaseOffset, wantCode, wantOffset)
		}
	}
	highWatermark := func(want int64) {
		t.Helper()
		if got := listOffset(t, b.kafkaAddr, topic, 0, -1).Offset; got != want {
			t.Fatalf("high watermark %d, want %d", got, want)
		}
	}

	batchA := kafkaBatch(3, 0, pid, 0, 0) // sequences 0-2
	send(cl, batchA, 0, 0)
	send(cl, batchA, 0, 0)
	highWatermark(3)

	send(cl, kafkaBatch(2, 0, pid, 0, 10), kerr.OutOfOrderSequenceNumber.Code, 0) // 3-9 missing
	highWatermark(3)

	b.stop()
	b.restart()
	cl = newKafkaClient(t, b.kafkaAddr)
	send(cl, batchA, 0, 0)
	highWatermark(3)

	batchB := kafkaBatch(4, 0, pid, 0, 3) // sequences 3-6
	send(cl, batchB, 0, 3)
	highWatermark(7)

	b.kill()
	b.restart()
	cl = newKafkaClient(t, b.kafkaAddr)
	send(cl, batchB, 0, 3)
	send(cl, batchA, 0, 0)
	highWatermark(7)
	send(cl, kafkaBatch(1, 0, pid, 0, 7), 0, 7) // the next sequence still follows
	highWatermark(8)

	// A new epoch starts at sequence 0; the old epoch is fenced from then on.
	send(cl, kafkaBatch(2, 0, pid, 1, 0), 0, 8)
	send(cl, kafkaBatch(1, 0, pid, 0, 8), kerr.InvalidProducerEpoch.Code, 0)
	highWatermark(10)

	// Non-idempotent batches (producer id -1, as kafkajs and sarama send) are never deduplicated.
	plain := kafkaBatch(2, 0, -1, 0, 0)
	send(cl, plain, 0, 10)
	send(cl, plain, 0, 12)
	highWatermark(14)
}

func TestKafkaBadInput(t *testing.T) {
	b := startKafkaBroker(t)
	const topic = "bad-input"
	cl := newKafkaClient(t, b.kafkaAddr, kgo.DefaultProduceTopic(topic))
	createTopic(t, cl, topic, 1, nil)
	produceSync(t, cl, valueRecords(topic, "good", 5)...)

	t.Run("produce v2 gets UNSUPPORTED_VERSION", func(t *testing.T) {
		conn := dialKafka(t, b.kafkaAddr)
		for v := int16(0); v <= 2; v++ {
			req := produceRequest(topic, 0, kafkaBatch(1, 0, -1, 0, 0))
			req.SetVersion(v)
			resp := conn.do(req).(*kmsg.ProduceResponse)
			if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 || resp.Topics[0].Partitions[0].ErrorCode != kerr.UnsupportedVersion.Code {
				t.Fatalf("produce v%d: %+v", v, resp.Topics)
			}
		}
		if hw := listOffset(t, b.kafkaAddr, topic, 0, -1).Offset; hw != 5 {
			t.Fatalf("high watermark %d after refused produces", hw)
		}
	})

	t.Run("unknown API key closes only that connection", func(t *testing.T) {
		other := dialKafka(t, b.kafkaAddr)
		apiVersions := func() {
			t.Helper()
			req := kmsg.NewPtrApiVersionsRequest()
			req.SetVersion(0)
			if resp := other.do(req).(*kmsg.ApiVersionsResponse); resp.ErrorCode != 0 {
				t.Fatalf("error %d", resp.ErrorCode)
			}
		}
		other.t = t
		apiVersions()
		bad := dialKafka(t, b.kafkaAddr)
		bad.write(9999, 0, false, []byte{0, 0, 0, 0})
		bad.expectClosed()
		apiVersions()
		produceSync(t, cl, &kgo.Record{Value: []byte("still served")})
	})

	t.Run("2 GiB size prefix closes the connection", func(t *testing.T) {
		conn := dialKafka(t, b.kafkaAddr)
		frame := binary.BigEndian.AppendUint32(nil, 1<<31)
		frame = append(frame, make([]byte, 100)...)
		conn.writeBytes(frame)
		conn.expectClosed()
		produceSync(t, cl, &kgo.Record{Value: []byte("still served")})
	})

	t.Run("corrupt CRC gets CORRUPT_MESSAGE", func(t *testing.T) {
		before := listOffset(t, b.kafkaAddr, topic, 0, -1).Offset
		for name, corrupt := range map[string]func([]byte){
			"crc":     func(b []byte) { b[17] ^= 0xff },
			"payload": func(b []byte) { b[len(b)-3] ^= 0x01 },
		} {
			batch := kafkaBatch(3, 0, -1, 0, 0)
			corrupt(batch)
			if r := produceRaw(t, cl, topic, 0, batch); r.ErrorCode != kerr.CorruptMessage.Code {
				t.Fatalf("%s: error %d, want CORRUPT_MESSAGE", name, r.ErrorCode)
			}
		}
		if hw := listOffset(t, b.kafkaAddr, topic, 0, -1).Offset; hw != before {
			t.Fatalf("high watermark %d after corrupt batches, was %d", hw, before)
		}
	})

	t.Run("control batch from a client gets INVALID_RECORD", func(t *testing.T) {
		before := listOffset(t, b.kafkaAddr, topic, 0, -1).Offset
		const controlBit = 0x20
		if r := produceRaw(t, cl, topic, 0, kafkaBatch(1, controlBit, -1, 0, 0)); r.ErrorCode != kerr.InvalidRecord.Code {
			t.Fatalf("error %d, want INVALID_RECORD", r.ErrorCode)
		}
		if hw := listOffset(t, b.kafkaAddr, topic, 0, -1).Offset; hw != before {
			t.Fatalf("high watermark %d after a control batch, was %d", hw, before)
		}
	})

	t.Run("acks=0 gets no response and the connection keeps reading", func(t *testing.T) {
		conn := dialKafka(t, b.kafkaAddr)
		before := listOffset(t, b.kafkaAddr, topic, 0, -1).Offset
		req := produceRequest(topic, 0, kafkaBatch(4, 0, -1, 0, 0))
		req.Acks = 0
		req.SetVersion(9)
		conn.write(req.Key(), 9, true, req.AppendTo(nil))
		av := kmsg.NewPtrApiVersionsRequest()
		av.SetVersion(0)
		if resp := conn.do(av).(*kmsg.ApiVersionsResponse); resp.ErrorCode != 0 { // do checks the correlation id
			t.Fatalf("error %d", resp.ErrorCode)
		}
		waitHighWatermark(t, b.kafkaAddr, topic, 0, before+4)
	})

	t.Run("unknown partition", func(t *testing.T) {
		r := produceRaw(t, cl, topic, 0, kafkaBatch(1, 0, -1, 0, 0))
		if r.ErrorCode != 0 {
			t.Fatalf("error %d", r.ErrorCode)
		}
		conn := dialKafka(t, b.kafkaAddr)
		req := produceRequest(topic, 9, kafkaBatch(1, 0, -1, 0, 0))
		req.SetVersion(9)
		resp := conn.do(req).(*kmsg.ProduceResponse)
		if c := resp.Topics[0].Partitions[0].ErrorCode; c != kerr.UnknownTopicOrPartition.Code {
			t.Fatalf("error %d, want UNKNOWN_TOPIC_OR_PARTITION", c)
		}
	})
}

func TestKafkaProduceAutoCreatesTopic(t *testing.T) {
	b := startKafkaBroker(t)
	conn := dialKafka(t, b.kafkaAddr)
	req := produceRequest("auto-created", 0, kafkaBatch(3, 0, -1, 0, 0))
	req.SetVersion(9)
	resp := conn.do(req).(*kmsg.ProduceResponse)
	if r := resp.Topics[0].Partitions[0]; r.ErrorCode != 0 || r.BaseOffset != 0 {
		t.Fatalf("produce to a new topic: error %d base offset %d", r.ErrorCode, r.BaseOffset)
	}
	if hw := listOffset(t, b.kafkaAddr, "auto-created", 0, -1).Offset; hw != 3 {
		t.Fatalf("high watermark %d, want 3", hw)
	}
}

// TestKafkaPipelinedRequestsAnsweredInOrder writes requests of several kinds back to back in one
// write (as kafka-python and franz-go pipeline them): the responses come back in request order
// although produce, fetch and control requests complete on different goroutines.
func TestKafkaPipelinedRequestsAnsweredInOrder(t *testing.T) {
	b := startKafkaBroker(t)
	const topic = "pipelined"
	cl := newKafkaClient(t, b.kafkaAddr)
	createTopic(t, cl, topic, 1, nil)
	conn := dialKafka(t, b.kafkaAddr)

	var reqs []kmsg.Request
	for i := range 20 {
		av := kmsg.NewPtrApiVersionsRequest()
		av.SetVersion(0)
		md := metadataRequest(0, nil, false, false)
		produce := produceRequest(topic, 0, kafkaBatch(2, 0, -1, 0, int32(i)))
		produce.SetVersion(int16(3 + i%10))
		fetch := kmsg.NewPtrFetchRequest()
		fetch.SetVersion(int16(4 + i%9))
		fetch.ReplicaID, fetch.MaxWaitMillis, fetch.MinBytes, fetch.MaxBytes = -1, 200, 1, 1<<20
		fp := kmsg.NewFetchRequestTopicPartition()
		fp.FetchOffset, fp.PartitionMaxBytes = int64(2*i), 1<<20
		ft := kmsg.NewFetchRequestTopic()
		ft.Topic, ft.Partitions = topic, []kmsg.FetchRequestTopicPartition{fp}
		fetch.Topics = []kmsg.FetchRequestTopic{ft}
		lo := kmsg.NewPtrListOffsetsRequest()
		lo.SetVersion(int16(1 + i%7))
		lp := kmsg.NewListOffsetsRequestTopicPartition()
		lp.Timestamp = -1
		lt := kmsg.NewListOffsetsRequestTopic()
		lt.Topic, lt.Partitions = topic, []kmsg.ListOffsetsRequestTopicPartition{lp}
		lo.Topics = []kmsg.ListOffsetsRequestTopic{lt}
		reqs = append(reqs, fetch, av, md, produce, lo)
	}
	var all []byte
	first := conn.corr + 1
	for _, req := range reqs {
		conn.corr++
		b := binary.BigEndian.AppendUint32(nil, 0)
		b = binary.BigEndian.AppendUint16(b, uint16(req.Key()))
		b = binary.BigEndian.AppendUint16(b, uint16(req.GetVersion()))
		b = binary.BigEndian.AppendUint32(b, uint32(conn.corr))
		b = binary.BigEndian.AppendUint16(b, 0xffff) // null client id
		if req.IsFlexible() {
			b = append(b, 0)
		}
		b = req.AppendTo(b)
		binary.BigEndian.PutUint32(b, uint32(len(b)-4))
		all = append(all, b...)
	}
	conn.writeBytes(all)
	for i, req := range reqs {
		corr, body := conn.read()
		if corr != first+int32(i) {
			t.Fatalf("response %d has correlation id %d, want %d", i, corr, first+int32(i))
		}
		resp := req.ResponseKind()
		resp.SetVersion(req.GetVersion())
		if resp.IsFlexible() && req.Key() != kmsg.ApiVersions.Int16() {
			body = body[1:]
		}
		if err := resp.ReadFrom(body); err != nil {
			t.Fatalf("response %d (%s v%d): %v", i, kmsg.NameForKey(req.Key()), req.GetVersion(), err)
		}
		if p, ok := resp.(*kmsg.ProduceResponse); ok {
			if r := p.Topics[0].Partitions[0]; r.ErrorCode != 0 || r.BaseOffset != int64(2*(i/5)) {
				t.Fatalf("produce %d: error %d base offset %d, want %d", i/5, r.ErrorCode, r.BaseOffset, 2*(i/5))
			}
		}
	}
}
