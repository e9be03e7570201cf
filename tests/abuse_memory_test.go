package tests

// Hostile clients against the broker's memory budget (docs/OPERATIONS.md, "Memory budget"): a
// frame announced large and sent a byte a second, and consumers that fetch large responses and
// never read them. Each test reads the broker process's resident memory from /proc and requires
// it to stay under a stated bound while an ordinary franz-go client is served. The long versions
// (more connections, the default timeouts) run with THORSTREAM_ABUSE_LONG=1 (make abuse).

import (
	"bufio"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// heapStat reads one of the Go runtime's memory statistics (HeapAlloc, NextGC, …) of a broker
// started with THORSTREAM_PPROF_ADDR=pprofAddr, from the heap profile's text form.
func heapStat(t *testing.T, pprofAddr, name string) int64 {
	t.Helper()
	client := http.Client{Timeout: 30 * time.Second}
	resp, err := client.Get("http://" + pprofAddr + "/debug/pprof/heap?debug=1")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(body), "\n") {
		if rest, ok := strings.CutPrefix(line, "# "+name+" = "); ok {
			n, err := strconv.ParseInt(strings.TrimSpace(rest), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	t.Fatalf("no %s in the heap profile", name)
	return 0
}

// produceAndConsume produces n records of size bytes to topic with a franz-go client and reads
// them back, all within ctx.
func produceAndConsume(ctx context.Context, addr, topic string, n, size int) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.DefaultProduceTopic(topic), kgo.AllowAutoTopicCreation(),
		kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.ProducerBatchMaxBytes(1<<20))
	if err != nil {
		return err
	}
	defer cl.Close()
	value := make([]byte, size)
	var errs []error
	var mu sync.Mutex
	for i := 0; i < n; i++ {
		cl.Produce(ctx, &kgo.Record{Value: value}, func(_ *kgo.Record, err error) {
			if err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		})
	}
	if err := cl.Flush(ctx); err != nil {
		return fmt.Errorf("flush: %w", err)
	}
	if len(errs) > 0 {
		return fmt.Errorf("produce: %d errors, first %w", len(errs), errs[0])
	}
	got := 0
	for got < n {
		fetches := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("consumed %d of %d records: %w", got, n, err)
		}
		for _, fe := range fetches.Errors() {
			return fmt.Errorf("fetch %s/%d: %w", fe.Topic, fe.Partition, fe.Err)
		}
		got += fetches.NumRecords()
	}
	return nil
}

// slowloris is one connection that announces a frame of 64 MiB − 1 bytes and sends one byte of
// it a second. closedAt is when the broker closed it (zero while open).
type slowloris struct {
	conn     net.Conn
	openedAt time.Time
	closed   chan struct{}
	closedAt time.Time
}

func startSlowloris(t *testing.T, addr string) *slowloris {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	s := &slowloris{conn: conn, openedAt: time.Now(), closed: make(chan struct{})}
	if _, err := conn.Write(binary.BigEndian.AppendUint32(nil, 64<<20-1)); err != nil {
		t.Fatal(err)
	}
	go func() { // the broker sends nothing; a read returns when it closes the connection
		var b [1]byte
		_, _ = conn.Read(b[:])
		s.closedAt = time.Now()
		close(s.closed)
	}()
	go func() {
		tick := time.NewTicker(time.Second) // the attack's pace, not a wait for a condition
		defer tick.Stop()
		for {
			select {
			case <-s.closed:
				return
			case <-tick.C:
				if _, err := conn.Write([]byte{0}); err != nil {
					return
				}
			}
		}
	}()
	return s
}

// TestAbuseSlowlorisFramesAreBoundedAndTimedOut: connections announcing 64 MiB frames and sending
// a byte a second cost the broker a small first chunk each (not 64 MiB), are closed when the
// frame read timeout passes, and an ordinary client produces and fetches meanwhile.
func TestAbuseSlowlorisFramesAreBoundedAndTimedOut(t *testing.T) {
	conns, timeout := 50, 12*time.Second
	boundKiB := 96 << 10 // 96 MiB; 50 connections without the budget count 3.2 GB as live heap
	if abuseLong() {
		conns, timeout, boundKiB = 500, 30*time.Second, 320<<10
	}
	pprofAddr := freeAddr(t)
	b := startKafkaBroker(t, "THORSTREAM_FSYNC=never", "THORSTREAM_PPROF_ADDR="+pprofAddr,
		"THORSTREAM_FRAME_READ_TIMEOUT_MS="+strconv.Itoa(int(timeout/time.Millisecond)))
	verify := produceAcked(t, b.kafkaAddr, "acked-before-attack", 500)
	pid := b.cmd.Process.Pid
	before := procStatusKiB(t, pid, "VmRSS")

	started := time.Now()
	attackers := make([]*slowloris, conns)
	for i := range attackers {
		addr := b.kafkaAddr
		if i%2 == 1 {
			addr = b.addr // the binary protocol's listener is read the same way
		}
		attackers[i] = startSlowloris(t, addr)
	}
	opened := time.Now()

	// An ordinary client is served while every attacker holds its connection: 32 MiB produced
	// and read back, which without the budget would pile up as garbage the collector never
	// reclaims (the announced frames count as live heap).
	clientErr := produceAndConsume(ctx(t, timeout), b.kafkaAddr, "ordinary", 512, 64<<10)
	clientDone := time.Now()
	if clientErr != nil {
		t.Fatalf("an ordinary client was not served within %v while %d slowloris connections were open: %v", timeout, conns, clientErr)
	}
	// The collector's next target is twice the heap it found live: announced frames allocated
	// whole would put it in gigabytes, and the collector would stop reclaiming garbage.
	const heapBound = 256 << 20
	if next := heapStat(t, pprofAddr, "NextGC"); next > heapBound {
		t.Fatalf("the broker's next collection is at %d MiB of heap with %d slowloris connections (bound %d MiB)", next>>20, conns, heapBound>>20)
	}
	// VmHWM is the kernel's record of the process's peak resident memory.
	if peak := procStatusKiB(t, pid, "VmHWM"); peak > boundKiB {
		t.Fatalf("broker resident memory peaked at %d KiB with %d slowloris connections and one ordinary client (bound %d KiB, %d KiB before)", peak, conns, boundKiB, before)
	}

	// Every attacker is closed at its deadline: not before the timeout since its frame began,
	// and within the timeout plus the watch's scan interval (at most a second) and slack.
	late := timeout + 10*time.Second
	var first, last time.Duration
	for i, s := range attackers {
		select {
		case <-s.closed:
		case <-time.After(time.Until(opened.Add(late))):
			t.Fatalf("slowloris connection %d still open %v after it began its frame", i, late)
		}
		open := s.closedAt.Sub(s.openedAt)
		if open < timeout-500*time.Millisecond {
			t.Fatalf("slowloris connection %d closed %v after it began its frame, before the %v timeout", i, open, timeout)
		}
		if i == 0 || open < first {
			first = open
		}
		last = max(last, open)
	}
	if clientDone.After(attackers[0].closedAt) {
		t.Errorf("the ordinary client finished (%v) after the attackers were closed (%v): it was not served meanwhile",
			clientDone.Sub(started), attackers[0].closedAt.Sub(started))
	}
	peak := procStatusKiB(t, pid, "VmHWM")
	if peak > boundKiB {
		t.Fatalf("broker resident memory peaked at %d KiB with %d slowloris connections (bound %d KiB, %d KiB before)", peak, conns, boundKiB, before)
	}
	if !strings.Contains(b.output.String(), "a request frame did not arrive in time") {
		t.Errorf("no log line for the connections closed at their frame deadline:\n%s", b.output.String())
	}
	t.Logf("%d slowloris connections: resident memory %d KiB before, peak %d KiB (bound %d KiB); client served in %v; closed %v to %v after their frames began",
		conns, before, peak, boundKiB, clientDone.Sub(opened).Round(time.Millisecond), first.Round(time.Millisecond), last.Round(time.Millisecond))
	verify()
}

// fetchFrame is a Kafka Fetch v11 request frame for partition 0 of topic from offset 0, asking
// for maxBytes.
func fetchFrame(corr int32, topic string, maxBytes int32) []byte {
	req := kmsg.NewPtrFetchRequest()
	req.Version = 11
	req.MaxWaitMillis = 100
	req.MinBytes = 1
	req.MaxBytes = maxBytes
	rt := kmsg.NewFetchRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewFetchRequestTopicPartition()
	rp.Partition, rp.FetchOffset, rp.PartitionMaxBytes = 0, 0, maxBytes
	rp.CurrentLeaderEpoch = -1
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	frame := binary.BigEndian.AppendUint32(nil, 0)
	frame = binary.BigEndian.AppendUint16(frame, uint16(kmsg.Fetch))
	frame = binary.BigEndian.AppendUint16(frame, 11)
	frame = binary.BigEndian.AppendUint32(frame, uint32(corr))
	frame = binary.BigEndian.AppendUint16(frame, 0xffff) // null client id
	frame = req.AppendTo(frame)
	binary.BigEndian.PutUint32(frame, uint32(len(frame)-4))
	return frame
}

// TestAbuseFetchersThatNeverReadAreBounded: consumers that pipeline large fetches of a topic with
// plenty of data and never read the responses hold at most the broker-wide budget between them,
// and other clients keep being served.
func TestAbuseFetchersThatNeverReadAreBounded(t *testing.T) {
	// Live bytes stay within the budget; Go's collector may let the heap reach twice that, and
	// with many fetchers cut off and replaced, buffers of closed connections wait in the network
	// engine's pools and for the collector: a third budget's worth.
	fetchers, budgetMiB, budgets := 10, 128, 2
	if abuseLong() {
		fetchers, budgets = 40, 3
	}
	// GOMEMLIMIT as docs/OPERATIONS.md advises: the collector works harder near it instead of
	// letting the heap double, so the bound measures the budget and not the collector's pacing.
	b := startKafkaBroker(t, "THORSTREAM_FSYNC=never", "THORSTREAM_MAX_INFLIGHT_BYTES="+strconv.Itoa(budgetMiB)+"MiB",
		"GOMEMLIMIT="+strconv.Itoa(budgets*budgetMiB)+"MiB")
	verify := produceAcked(t, b.kafkaAddr, "acked-before-attack", 500)
	pid := b.cmd.Process.Pid
	const topic = "plenty"
	if err := produceAndConsume(ctx(t, 2*time.Minute), b.kafkaAddr, topic, 1024, 64<<10); err != nil { // 64 MiB
		t.Fatal(err)
	}
	before := procStatusKiB(t, pid, "VmRSS")
	boundKiB := before + budgets*budgetMiB<<10 + 64<<10

	for i := 0; i < fetchers; i++ {
		conn, err := net.DialTimeout("tcp", b.kafkaAddr, 10*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		// A tiny receive buffer: the kernel stops taking data for this client almost at once.
		_ = conn.(*net.TCPConn).SetReadBuffer(4096)
		w := bufio.NewWriter(conn)
		for j := int32(0); j < 16; j++ {
			if _, err := w.Write(fetchFrame(j, topic, 64<<20)); err != nil {
				t.Fatal(err)
			}
		}
		if err := w.Flush(); err != nil {
			t.Fatal(err)
		}
	}

	// Meanwhile another client produces and fetches, and answers control requests, for a while:
	// unbounded, the fetchers would pin about 200 MiB each within a second or two.
	other := newKafkaClient(t, b.kafkaAddr)
	deadline := time.Now().Add(8 * time.Second)
	for round := 0; time.Now().Before(deadline); round++ {
		if _, err := kmsg.NewPtrApiVersionsRequest().RequestWith(ctx(t, 20*time.Second), other); err != nil {
			t.Fatalf("another client is not served while %d fetchers do not read: %v", fetchers, err)
		}
		if err := produceAndConsume(ctx(t, 30*time.Second), b.kafkaAddr, "other-"+strconv.Itoa(round), 16, 16<<10); err != nil {
			t.Fatalf("another client could not produce and fetch while %d fetchers do not read: %v", fetchers, err)
		}
	}
	peak := procStatusKiB(t, pid, "VmHWM")
	if peak > boundKiB {
		t.Fatalf("broker resident memory grew from %d KiB to %d KiB with %d fetchers that do not read (bound %d KiB)", before, peak, fetchers, boundKiB)
	}
	// With half the budget or more in use, a client that takes none of its responses for two
	// seconds is cut off; whether the fetchers pushed the budget that far depends on timing.
	cut := strings.Count(b.output.String(), "does not read its responses")
	t.Logf("%d fetchers that do not read, budget %d MiB: resident memory %d KiB before, peak %d KiB (bound %d KiB); %d cut off",
		fetchers, budgetMiB, before, peak, boundKiB, cut)
	verify()
}
