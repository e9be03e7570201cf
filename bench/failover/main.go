// Command failover measures a partition leader's failover on a running cluster: it produces to
// one partition at a modest rate with a franz-go client at its default settings (acks=all,
// idempotent), kills the partition's leader with SIGKILL, and reports
//
//   - leader: the time from the kill until a surviving node's Metadata names another leader for
//     the partition (Metadata polled every 50 ms on the survivors), and
//   - next ack: the time from the kill until the producer's next acknowledged record of that
//     partition (the end of the longest pause between two acknowledgements).
//
// The cluster's processes are given by node id (-pids 0=PID,1=PID,2=PID); bench/failover/run.sh
// starts a fresh three-node cluster for each measurement and runs this command against it.
// After the run the partition's log end offset is read from its new leader: every acknowledged
// record must be there.
//
// Exit status: 0 on a measurement, 1 when the run failed (no new leader, no acknowledgement in
// -timeout, a lost acknowledged record), 2 on bad usage.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

var errFailover = errors.New("failover")

type config struct {
	brokers     []string
	pids        map[int32]int
	topic       string
	partitions  int
	rate        int
	size        int
	warmup      time.Duration
	after       time.Duration
	timeout     time.Duration
	poll        time.Duration
	kill        string
	metadataAge time.Duration
}

func main() {
	c, err := parseFlags(os.Args[1:])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	ctx, stop := context.WithTimeout(context.Background(), c.warmup+c.timeout+c.after+time.Minute)
	defer stop()
	if err := run(ctx, c); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

func parseFlags(args []string) (config, error) {
	var c config
	fs := flag.NewFlagSet("failover", flag.ContinueOnError)
	brokers := fs.String("brokers", "", "the nodes' Kafka listeners, host:port,host:port,... (required)")
	pids := fs.String("pids", "", "node id=process id of every node, 0=PID,1=PID,2=PID (required)")
	fs.StringVar(&c.topic, "topic", "failover", "topic, created with -partitions and the cluster's default replication factor if missing")
	fs.IntVar(&c.partitions, "partitions", 3, "partitions of the topic")
	fs.IntVar(&c.rate, "rate", 2000, "records per second to the measured partition")
	fs.IntVar(&c.size, "record-size", 100, "value bytes per record")
	fs.DurationVar(&c.warmup, "warmup", 3*time.Second, "produce this long before the kill")
	fs.DurationVar(&c.after, "after", 2*time.Second, "keep producing this long after the next acknowledgement")
	fs.DurationVar(&c.timeout, "timeout", 30*time.Second, "give up if no new leader or acknowledgement after this long")
	fs.DurationVar(&c.poll, "poll", 50*time.Millisecond, "Metadata poll interval")
	fs.StringVar(&c.kill, "kill", "leader", "which leader to kill: leader (of a partition led by a node that is not the active controller) or controller (of a partition the active controller leads)")
	fs.DurationVar(&c.metadataAge, "metadata-min-age", 0, "the producer's kgo.MetadataMinAge (0: franz-go's default)")
	if err := fs.Parse(args); err != nil {
		return c, fmt.Errorf("%w: %v", errFailover, err)
	}
	for _, b := range strings.Split(*brokers, ",") {
		if b = strings.TrimSpace(b); b != "" {
			c.brokers = append(c.brokers, b)
		}
	}
	c.pids = map[int32]int{}
	for _, kv := range strings.Split(*pids, ",") {
		id, pid, ok := strings.Cut(strings.TrimSpace(kv), "=")
		if !ok {
			continue
		}
		n, err1 := strconv.ParseInt(id, 10, 32)
		p, err2 := strconv.Atoi(pid)
		if err1 != nil || err2 != nil || p <= 0 {
			return c, fmt.Errorf("%w: bad -pids entry %q", errFailover, kv)
		}
		c.pids[int32(n)] = p
	}
	if len(c.brokers) == 0 || len(c.pids) < 2 || c.rate <= 0 || c.size < 0 || c.partitions <= 0 {
		return c, fmt.Errorf("%w: need -brokers, -pids of at least two nodes, a positive -rate and -partitions", errFailover)
	}
	if c.kill != "leader" && c.kill != "controller" {
		return c, fmt.Errorf("%w: -kill must be leader or controller", errFailover)
	}
	return c, nil
}

// partitionState is one partition as a node's Metadata describes it.
type partitionState struct {
	leader, epoch int32
	isr           []int32
}

// metadata asks broker (or any broker if broker < 0) about the topic.
func metadata(ctx context.Context, cl *kgo.Client, broker int32, topic string) (controller int32, parts map[int32]partitionState, err error) {
	req := kmsg.NewPtrMetadataRequest()
	rt := kmsg.NewMetadataRequestTopic()
	rt.Topic = kmsg.StringPtr(topic)
	req.Topics = append(req.Topics, rt)
	var resp *kmsg.MetadataResponse
	if broker < 0 {
		resp, err = req.RequestWith(ctx, cl)
	} else {
		var r kmsg.Response
		r, err = cl.Broker(int(broker)).Request(ctx, req)
		if err == nil {
			resp = r.(*kmsg.MetadataResponse)
		}
	}
	if err != nil {
		return -1, nil, err
	}
	parts = map[int32]partitionState{}
	for _, t := range resp.Topics {
		if t.Topic == nil || *t.Topic != topic {
			continue
		}
		if err := kerr.ErrorForCode(t.ErrorCode); err != nil {
			return resp.ControllerID, nil, err
		}
		for _, p := range t.Partitions {
			parts[p.Partition] = partitionState{leader: p.Leader, epoch: p.LeaderEpoch, isr: p.ISR}
		}
	}
	return resp.ControllerID, parts, nil
}

func createTopic(ctx context.Context, cl *kgo.Client, c config) error {
	req := kmsg.NewPtrCreateTopicsRequest()
	t := kmsg.NewCreateTopicsRequestTopic()
	t.Topic = c.topic
	t.NumPartitions = int32(c.partitions)
	t.ReplicationFactor = -1 // the cluster's default
	req.Topics = append(req.Topics, t)
	req.TimeoutMillis = 30_000
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return fmt.Errorf("%w: creating %s: %w", errFailover, c.topic, err)
	}
	for _, rt := range resp.Topics {
		if err := kerr.ErrorForCode(rt.ErrorCode); err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
			return fmt.Errorf("%w: creating %s: %w", errFailover, c.topic, err)
		}
	}
	return nil
}

// acks records when each acknowledgement of the measured partition arrived.
type acks struct {
	mu     sync.Mutex
	times  []time.Time
	failed int
	last   error
}

func (a *acks) add(t time.Time, err error) {
	a.mu.Lock()
	if err != nil {
		a.failed++
		a.last = err
	} else {
		a.times = append(a.times, t)
	}
	a.mu.Unlock()
}

func (a *acks) since(t0 time.Time) (n int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for i := len(a.times) - 1; i >= 0 && a.times[i].After(t0); i-- {
		n++
	}
	return n
}

func run(ctx context.Context, c config) error {
	adm, err := kgo.NewClient(kgo.SeedBrokers(c.brokers...))
	if err != nil {
		return fmt.Errorf("%w: %w", errFailover, err)
	}
	defer adm.Close()
	if err := createTopic(ctx, adm, c); err != nil {
		return err
	}
	// Wait for every partition to have a leader and a full ISR.
	var controller int32
	var parts map[int32]partitionState
	deadline := time.Now().Add(c.timeout)
	for {
		controller, parts, err = metadata(ctx, adm, -1, c.topic)
		full := err == nil && len(parts) == c.partitions
		for _, p := range parts {
			full = full && p.leader >= 0 && len(p.isr) == len(c.pids)
		}
		if full {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%w: topic %s not fully replicated after %v (last error %v)", errFailover, c.topic, c.timeout, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	part, victim := int32(-1), int32(-1)
	for p := range int32(c.partitions) {
		l := parts[p].leader
		if (c.kill == "controller") == (l == controller) {
			part, victim = p, l
			break
		}
	}
	if part < 0 {
		return fmt.Errorf("%w: no partition of %s whose leader fits -kill %s (controller %d)", errFailover, c.topic, c.kill, controller)
	}
	pid, ok := c.pids[victim]
	if !ok {
		return fmt.Errorf("%w: no process id for node %d", errFailover, victim)
	}
	var survivors []int32
	for id := range c.pids {
		if id != victim {
			survivors = append(survivors, id)
		}
	}
	slices.Sort(survivors)

	opts := []kgo.Opt{kgo.SeedBrokers(c.brokers...), kgo.DefaultProduceTopic(c.topic),
		kgo.RecordPartitioner(kgo.ManualPartitioner())}
	if c.metadataAge > 0 {
		opts = append(opts, kgo.MetadataMinAge(c.metadataAge))
	}
	prod, err := kgo.NewClient(opts...)
	if err != nil {
		return fmt.Errorf("%w: %w", errFailover, err)
	}
	defer prod.Close()
	var a acks
	value := make([]byte, c.size)
	stopProducing := make(chan struct{})
	produced := make(chan struct{})
	go func() {
		defer close(produced)
		// Records go out in steps of 10 ms (a tenth of a millisecond ticker would be the
		// scheduler's, not the rate's).
		per := max(c.rate/100, 1)
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stopProducing:
				return
			case <-tick.C:
			}
			for range per {
				prod.Produce(ctx, &kgo.Record{Partition: part, Value: value}, func(_ *kgo.Record, err error) {
					a.add(time.Now(), err)
				})
			}
		}
	}()
	time.Sleep(c.warmup)
	if a.since(time.Now().Add(-time.Second)) == 0 {
		close(stopProducing)
		return fmt.Errorf("%w: no acknowledgement in the last second of the warm-up (failed %d, last error %v)", errFailover, a.failed, a.last)
	}

	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		close(stopProducing)
		return fmt.Errorf("%w: kill %d: %w", errFailover, pid, err)
	}
	t0 := time.Now()

	// Poll the survivors' Metadata until one names another leader.
	var named time.Duration
	var newLeader, newEpoch int32 = -1, -1
	tick := time.NewTicker(c.poll)
	for i := 0; named == 0; i++ {
		if time.Since(t0) > c.timeout {
			tick.Stop()
			close(stopProducing)
			return fmt.Errorf("%w: no new leader of partition %d named in %v", errFailover, part, c.timeout)
		}
		<-tick.C
		pctx, cancel := context.WithTimeout(ctx, c.poll*4)
		_, ps, err := metadata(pctx, adm, survivors[i%len(survivors)], c.topic)
		cancel()
		if err != nil {
			continue
		}
		if p, ok := ps[part]; ok && p.leader >= 0 && p.leader != victim {
			named, newLeader, newEpoch = time.Since(t0), p.leader, p.epoch
		}
	}
	tick.Stop()

	// Wait for acknowledgements to resume, then a little longer.
	for a.since(t0) == 0 || a.since(t0.Add(named)) == 0 {
		if time.Since(t0) > c.timeout {
			close(stopProducing)
			return fmt.Errorf("%w: no acknowledgement of partition %d in %v after the kill (failed %d, last error %v)", errFailover, part, c.timeout, a.failed, a.last)
		}
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(c.after)
	close(stopProducing)
	<-produced
	fctx, cancel := context.WithTimeout(ctx, c.timeout)
	ferr := prod.Flush(fctx)
	cancel()

	a.mu.Lock()
	times := slices.Clone(a.times)
	failed, lastErr := a.failed, a.last
	a.mu.Unlock()
	slices.SortFunc(times, func(x, y time.Time) int { return x.Compare(y) })
	// The outage is the longest pause between two acknowledgements around the kill.
	var gapStart, gapEnd time.Time
	for i := 1; i < len(times); i++ {
		if times[i].Before(t0.Add(-time.Second)) {
			continue
		}
		if times[i].Sub(times[i-1]) > gapEnd.Sub(gapStart) {
			gapStart, gapEnd = times[i-1], times[i]
		}
	}
	stale := 0 // acknowledgements after the kill but before the pause (already on their way)
	for _, t := range times {
		if t.After(t0) && !t.After(gapStart) {
			stale++
		}
	}

	ends, err := kadm.NewClient(adm).ListEndOffsets(ctx, c.topic)
	end := int64(-1)
	if err == nil {
		if o, ok := ends.Lookup(c.topic, part); ok && o.Err == nil {
			end = o.Offset
		}
	}
	ms := func(d time.Duration) string {
		return strconv.FormatFloat(float64(d)/float64(time.Millisecond), 'f', 0, 64)
	}
	fmt.Printf("partition %d: leader %d (controller %d) killed; new leader %d (epoch %d) named after %s ms; "+
		"last ack %s ms before the kill, next ack %s ms after it (%d acks in between); "+
		"acked %d, failed %d, log end offset %d\n",
		part, victim, controller, newLeader, newEpoch, ms(named),
		ms(t0.Sub(gapStart)), ms(gapEnd.Sub(t0)), stale, len(times), failed, end)
	fmt.Printf("result leader_ms=%s next_ack_ms=%s killed_controller=%t\n", ms(named), ms(gapEnd.Sub(t0)), victim == controller)
	switch {
	case ferr != nil:
		return fmt.Errorf("%w: flush: %w", errFailover, ferr)
	case failed > 0:
		return fmt.Errorf("%w: %d records failed, last error %v", errFailover, failed, lastErr)
	case end >= 0 && end < int64(len(times)):
		return fmt.Errorf("%w: %d records acknowledged but the log ends at offset %d", errFailover, len(times), end)
	case end < 0:
		return fmt.Errorf("%w: could not read the log end offset: %v", errFailover, err)
	}
	return nil
}
