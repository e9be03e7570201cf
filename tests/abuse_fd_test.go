package tests

// Descriptor exhaustion: a broker started with a low RLIMIT_NOFILE is flooded with connections
// until accept() fails with EMFILE. It must keep both listeners and the connections it already
// serves, and serve new clients once descriptors are free again.

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// startBrokerWithFileLimit is startBroker for a broker whose soft and hard RLIMIT_NOFILE are
// limit: through prlimit (util-linux) if it is installed, else through bash's ulimit. Both exec
// the broker, so the process the test signals is the broker itself.
func startBrokerWithFileLimit(t *testing.T, dataDir string, limit int, extraEnv ...string) *brokerProc {
	t.Helper()
	bin := filepath.Join(binDir, "thorstream")
	var cmd *exec.Cmd
	if prlimit, err := exec.LookPath("prlimit"); err == nil {
		cmd = exec.Command(prlimit, fmt.Sprintf("--nofile=%d:%d", limit, limit), "--", bin)
	} else if bash, err := exec.LookPath("bash"); err == nil {
		cmd = exec.Command(bash, "-c", `ulimit -n "$1" && exec "$0"`, bin, strconv.Itoa(limit))
	} else {
		t.Fatal("neither prlimit nor bash is installed: cannot start a broker with a descriptor limit")
	}
	b := &brokerProc{t: t, addr: freeAddr(t), dataDir: dataDir}
	b.env = append([]string{
		"THORSTREAM_ADDR=" + b.addr,
		"THORSTREAM_DATA_DIR=" + dataDir,
		"THORSTREAM_EVENT_LOOPS=2",
	}, extraEnv...)
	b.output = &syncBuffer{}
	b.cmd = cmd
	b.cmd.Env = append(cleanEnv(), b.env...)
	b.cmd.Stdout, b.cmd.Stderr = b.output, b.output
	if err := b.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	b.exited = make(chan struct{})
	go func(cmd *exec.Cmd, exited chan struct{}) {
		_ = cmd.Wait()
		close(exited)
	}(b.cmd, b.exited)
	t.Cleanup(func() { b.kill() })
	b.waitReady()
	return b
}

// pollUntil polls cond every 50 ms until it holds, failing the test after limit with what().
func pollUntil(t *testing.T, limit time.Duration, what func() string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %v: %s", limit, what())
		}
		time.Sleep(50 * time.Millisecond) // polling interval of a condition with a deadline
	}
}

// assertAlive fails the test if the broker process has exited.
func (b *brokerProc) assertAlive(when string) {
	b.t.Helper()
	select {
	case <-b.exited:
		b.t.Fatalf("the broker exited %s (status %v):\n%s", when, b.cmd.ProcessState, lastLines(b.output.String(), 40))
	default:
	}
}

// lastLines is the last n lines of s.
func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// kafkaRoundTrip produces one record to topic through a fresh franz-go client and fetches it
// back. It returns the first error instead of failing the test, so it can be retried.
func kafkaRoundTrip(addr, topic, value string, limit time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.RecordRetries(2))
	if err != nil {
		return err
	}
	defer cl.Close()
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: topic, Value: []byte(value)}).FirstErr(); err != nil {
		return fmt.Errorf("produce: %w", err)
	}
	for {
		fetches := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("fetch: %q not read back: %w", value, err)
		}
		found := false
		fetches.EachRecord(func(r *kgo.Record) { found = found || string(r.Value) == value })
		if found {
			return nil
		}
	}
}

// brokerLogInterval is how often the broker logs a run of accept failures at most.
const brokerLogInterval = time.Second

// exhaustionCycle floods the broker until it runs out of descriptors, checks that it keeps
// serving what it has, frees the descriptors and checks that it serves new clients again. It
// returns when it saw the broker log the accept failure.
func exhaustionCycle(t *testing.T, b *brokerProc, kafkaAddr, topic string, probe *rawConn, cycle, conns int) (failureLogged time.Time) {
	t.Helper()
	failuresBefore := strings.Count(b.output.String(), "accepting a connection failed")
	recoveriesBefore := strings.Count(b.output.String(), "accepting connections again")

	// Every dial completes in the kernel's backlog whether or not the broker can accept it, so
	// opening more connections than the limit allows makes accept() fail.
	flood := make([]net.Conn, 0, conns)
	defer func() {
		for _, c := range flood {
			_ = c.Close()
		}
	}()
	started := time.Now()
	for i := range conns {
		addr := b.addr
		if i%4 == 3 {
			addr = kafkaAddr
		}
		c, err := net.DialTimeout("tcp", addr, 10*time.Second)
		if err != nil {
			t.Fatalf("cycle %d: dial %d of %d to %s: %v\n%s", cycle, i+1, conns, addr, err, lastLines(b.output.String(), 20))
		}
		flood = append(flood, c)
	}
	pollUntil(t, 30*time.Second, func() string {
		return fmt.Sprintf("cycle %d: no accept failure logged after %d connections:\n%s", cycle, conns, lastLines(b.output.String(), 20))
	}, func() bool { return strings.Count(b.output.String(), "accepting a connection failed") > failuresBefore })
	failureLogged = time.Now()
	if out := b.output.String(); !strings.Contains(out, "too many open files") {
		t.Fatalf("cycle %d: the accept failure is not EMFILE:\n%s", cycle, lastLines(out, 20))
	}
	b.assertAlive("while out of descriptors")

	// Still listening on both ports (an engine that stopped would refuse), and a connection
	// accepted before the flood is still served.
	for _, addr := range []string{b.addr, kafkaAddr} {
		c, err := net.DialTimeout("tcp", addr, 10*time.Second)
		if err != nil {
			t.Fatalf("cycle %d: the listener on %s is gone while out of descriptors: %v", cycle, addr, err)
		}
		flood = append(flood, c)
	}
	probe.ping(int32(1000 + cycle))
	// The failures go on for as long as the flood lasts, but are logged once a second at most
	// per listener.
	logged := strings.Count(b.output.String(), "accepting a connection failed") - failuresBefore
	if most := 2 * (int(time.Since(started)/time.Second) + 2); logged > most {
		t.Errorf("cycle %d: %d accept failure lines in %v: logged per failure, not once a second", cycle, logged, time.Since(started))
	}

	for _, c := range flood {
		_ = c.Close()
	}
	flood = flood[:0]

	// The broker accepts and serves again within a deadline: a produce and fetch through the
	// Kafka listener, a Ping through the binary one.
	var lastErr error
	value := fmt.Sprintf("after exhaustion %d", cycle)
	pollUntil(t, 60*time.Second, func() string {
		return fmt.Sprintf("cycle %d: no Kafka round trip after the descriptors were freed: %v\n%s", cycle, lastErr, lastLines(b.output.String(), 20))
	}, func() bool {
		lastErr = kafkaRoundTrip(kafkaAddr, topic, value, 15*time.Second)
		return lastErr == nil
	})
	fresh := dialRaw(t, b.addr)
	fresh.ping(int32(2000 + cycle))
	_ = fresh.c.Close()
	probe.ping(int32(3000 + cycle))
	if strings.Count(b.output.String(), "accepting connections again") <= recoveriesBefore {
		t.Errorf("cycle %d: the recovery was not logged:\n%s", cycle, lastLines(b.output.String(), 20))
	}
	b.assertAlive("after the descriptors were freed")
	return failureLogged
}

func TestAbuseDescriptorExhaustionKeepsListening(t *testing.T) {
	limit, conns, cycles := 256, 400, 1
	if os.Getenv("THORSTREAM_ABUSE_LONG") == "1" {
		limit, conns, cycles = 1024, 3000, 5
	}
	kafkaAddr := freeAddr(t)
	b := startBrokerWithFileLimit(t, t.TempDir(), limit, "THORSTREAM_KAFKA_ADDR="+kafkaAddr)
	if want := fmt.Sprintf(`"soft": %d, "hard": %d`, limit, limit); !strings.Contains(b.output.String(), want) {
		t.Fatalf("the start-up log does not show the descriptor limits (%s):\n%s", want, b.output.String())
	}
	const topic = "fd-exhaustion"
	createTopic(t, newKafkaClient(t, kafkaAddr), topic, 1, nil)
	verify := produceAcked(t, kafkaAddr, "acked-before-attack", 500)
	if err := kafkaRoundTrip(kafkaAddr, topic, "before exhaustion", 30*time.Second); err != nil {
		t.Fatal(err)
	}
	probe := dialRaw(t, b.addr)
	probe.ping(1)

	var failureLogged time.Time
	for cycle := 1; cycle <= cycles; cycle++ {
		// The broker logs accept failures once a second at most: a cycle sooner than that after
		// the last line would go unreported. Waiting out that window is waiting for time, not for
		// a condition.
		time.Sleep(time.Until(failureLogged.Add(brokerLogInterval + 100*time.Millisecond)))
		failureLogged = exhaustionCycle(t, b, kafkaAddr, topic, probe, cycle, conns)
	}
	_ = probe.c.Close()
	b.stop() // a clean exit, status 0, after SIGTERM
	b.restart()
	verify()
}
