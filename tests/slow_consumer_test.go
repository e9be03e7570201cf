package tests

import (
	"bufio"
	"context"
	"encoding/binary"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestSlowKafkaConsumerDoesNotGrowBrokerMemory pipelines many large Fetch requests on one
// connection and never reads the answers. The broker must not buffer them all: with 64 fetches of
// up to 32 MiB over a 32 MiB topic, an unbounded broker would hold about 2 GiB. The test reads the
// broker process's resident memory and requires it to stay far below that, and the broker to
// keep serving other clients meanwhile.
func TestSlowKafkaConsumerDoesNotGrowBrokerMemory(t *testing.T) {
	kafkaAddr := freeAddr(t)
	// GOMEMLIMIT as docs/OPERATIONS.md advises, under the limit below: the connection's share of
	// the memory budget (64 MiB) must then fit, instead of the collector letting the heap double.
	b := startBroker(t, t.TempDir(), "THORSTREAM_KAFKA_ADDR="+kafkaAddr, "THORSTREAM_FSYNC=never", "GOMEMLIMIT=96MiB")
	const topic = "slow"
	const valueSize = 64 << 10
	cl, err := kgo.NewClient(kgo.SeedBrokers(kafkaAddr), kgo.DefaultProduceTopic(topic), kgo.AllowAutoTopicCreation(),
		kgo.ProducerBatchMaxBytes(1<<20))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	value := make([]byte, valueSize)
	for i := 0; i < 512; i++ { // 32 MiB
		cl.Produce(ctx(t, time.Minute), &kgo.Record{Value: value}, func(_ *kgo.Record, err error) {
			if err != nil {
				t.Errorf("produce: %v", err)
			}
		})
	}
	if err := cl.Flush(ctx(t, time.Minute)); err != nil {
		t.Fatal(err)
	}
	before := residentKiB(t, b.cmd.Process.Pid)

	conn, err := net.DialTimeout("tcp", kafkaAddr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// A small receive buffer makes the client as slow as it gets: the kernel stops taking data
	// for it almost at once, and whatever the broker answers waits in the broker.
	_ = conn.(*net.TCPConn).SetReadBuffer(4096)
	w := bufio.NewWriter(conn)
	for i := int32(0); i < 64; i++ {
		req := kmsg.NewPtrFetchRequest()
		req.Version = 11
		req.MaxWaitMillis = 100
		req.MinBytes = 1
		req.MaxBytes = 32 << 20
		rt := kmsg.NewFetchRequestTopic()
		rt.Topic = topic
		rp := kmsg.NewFetchRequestTopicPartition()
		rp.Partition, rp.FetchOffset, rp.PartitionMaxBytes = 0, 0, 32<<20
		rp.CurrentLeaderEpoch = -1
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		body := req.AppendTo(nil)
		frame := binary.BigEndian.AppendUint32(nil, 0)
		frame = binary.BigEndian.AppendUint16(frame, uint16(kmsg.Fetch))
		frame = binary.BigEndian.AppendUint16(frame, 11)
		frame = binary.BigEndian.AppendUint32(frame, uint32(i))
		frame = binary.BigEndian.AppendUint16(frame, 0xffff) // null client id
		frame = append(frame, body...)
		binary.BigEndian.PutUint32(frame, uint32(len(frame)-4))
		if _, err := w.Write(frame); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}

	// While the slow connection sits there, another client is served, and the broker's memory
	// stays bounded. Watch it for a while: every fetch would have been answered within a
	// second if the broker did not hold back.
	other, err := kgo.NewClient(kgo.SeedBrokers(kafkaAddr))
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	peak := before
	for i := 0; i < 20; i++ {
		pingCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_, err := kmsg.NewPtrApiVersionsRequest().RequestWith(pingCtx, other)
		cancel()
		if err != nil {
			t.Fatalf("another client is not served while a slow one waits: %v", err)
		}
		peak = max(peak, residentKiB(t, b.cmd.Process.Pid))
		time.Sleep(100 * time.Millisecond) // sampling interval of the memory watch, not a wait for a condition
	}
	const limitKiB = 128 << 10 // 128 MiB: an unbounded broker passes 300 MiB within two seconds
	if peak > limitKiB {
		t.Fatalf("broker resident memory grew from %d KiB to %d KiB with a slow consumer (limit %d KiB)", before, peak, limitKiB)
	}
	t.Logf("broker resident memory: %d KiB before, %d KiB peak with 64 unread 32 MiB fetches", before, peak)
}

// residentKiB reads VmRSS of a process.
func residentKiB(t *testing.T, pid int) int {
	t.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			n, err := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")))
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	t.Fatal("no VmRSS")
	return 0
}
