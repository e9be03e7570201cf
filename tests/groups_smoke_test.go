package tests

// A quick check of consumer groups through the Kafka listener with franz-go's group consumer:
// two members split a topic, commit, and a third member started after them resumes from the
// commits, across a broker restart. The thorough group tests are in groups_test.go.

import (
	"context"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// offsetsPartitions is the partition count of the offsets topic a new broker creates; they count
// against THORSTREAM_MAX_PARTITIONS and hold descriptors like any partition.
const offsetsPartitions = 12

func TestGroupsSmokeFranzGo(t *testing.T) {
	b := startKafkaBroker(t, "THORSTREAM_GROUP_INITIAL_REBALANCE_DELAY_MS=200")
	const topic, group, partitions, records = "smoke", "smoke-group", 4, 400
	admin := kadm.NewClient(newKafkaClient(t, b.kafkaAddr))
	if _, err := admin.CreateTopic(ctx(t, 30*time.Second), partitions, 1, nil, topic); err != nil {
		t.Fatal(err)
	}
	producer := newKafkaClient(t, b.kafkaAddr, kgo.DefaultProduceTopic(topic), kgo.RecordPartitioner(kgo.RoundRobinPartitioner()))
	produce := func(from, to int) {
		t.Helper()
		for i := from; i < to; i++ {
			if err := producer.ProduceSync(ctx(t, 30*time.Second), kgo.StringRecord(strconv.Itoa(i))).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
	}
	produce(0, records)

	// Two members consume everything between them, committing as they go (marks + autocommit,
	// and a final commit when each leaves).
	var mu sync.Mutex
	seen := map[string]int{}
	consume := func(name string, stop <-chan struct{}, done *sync.WaitGroup) {
		defer done.Done()
		cl, err := kgo.NewClient(kgo.SeedBrokers(b.kafkaAddr), kgo.ConsumerGroup(group), kgo.ConsumeTopics(topic),
			kgo.ClientID(name), kgo.AutoCommitMarks(), kgo.AutoCommitInterval(200*time.Millisecond),
			kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
		if err != nil {
			t.Error(err)
			return
		}
		defer cl.Close() // leaves the group, committing what was marked
		for {
			select {
			case <-stop:
				if err := cl.CommitMarkedOffsets(context.Background()); err != nil {
					t.Errorf("%s: final commit: %v", name, err)
				}
				return
			default:
			}
			pollCtx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
			fetches := cl.PollFetches(pollCtx)
			cancel()
			fetches.EachRecord(func(r *kgo.Record) {
				mu.Lock()
				seen[string(r.Value)]++
				mu.Unlock()
				cl.MarkCommitRecords(r)
			})
		}
	}
	stop := make(chan struct{})
	var done sync.WaitGroup
	done.Add(2)
	go consume("member-a", stop, &done)
	go consume("member-b", stop, &done)

	deadline := time.Now().Add(60 * time.Second)
	var described kadm.DescribedGroup
	for {
		mu.Lock()
		n := len(seen)
		mu.Unlock()
		groups, err := admin.DescribeGroups(ctx(t, 10*time.Second), group)
		if err == nil {
			described = groups[group]
		}
		if n == records && described.State == "Stable" && len(described.Members) == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("consumed %d of %d records; group %+v (%v)", n, records, described, err)
		}
		time.Sleep(50 * time.Millisecond) // polling a condition, with a deadline
	}
	assigned := 0
	for _, m := range described.Members {
		a, ok := m.Assigned.AsConsumer()
		if !ok {
			t.Fatalf("member %s: assignment does not decode as the consumer protocol", m.MemberID)
		}
		for _, tp := range a.Topics {
			assigned += len(tp.Partitions)
		}
		if m.ClientHost == "" || (m.ClientID != "member-a" && m.ClientID != "member-b") {
			t.Fatalf("member %+v", m)
		}
	}
	if assigned != partitions {
		t.Fatalf("%d partitions assigned, want %d: %+v", assigned, partitions, described)
	}
	close(stop)
	done.Wait()

	// The commits are the log end, and survive a restart.
	checkCommits := func(stage string, want int64) {
		t.Helper()
		offsets, err := admin.FetchOffsets(ctx(t, 30*time.Second), group)
		if err != nil {
			t.Fatalf("%s: %v", stage, err)
		}
		var sum int64
		for p := range int32(partitions) {
			o, ok := offsets.Lookup(topic, p)
			if !ok {
				t.Fatalf("%s: no commit for partition %d: %+v", stage, p, offsets)
			}
			sum += o.At
		}
		if sum != want {
			t.Fatalf("%s: commits sum to %d, want %d", stage, sum, want)
		}
	}
	checkCommits("after the members left", records)
	b.stop()
	b.restart()
	checkCommits("after a restart", records)

	// A new member resumes from the commits: it sees only what is produced from now on.
	produce(records, records+20)
	cl := newKafkaClient(t, b.kafkaAddr, kgo.ConsumerGroup(group), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	var got []string
	for len(got) < 20 {
		fetches := cl.PollFetches(ctx(t, 60*time.Second))
		if errs := fetches.Errors(); len(errs) > 0 {
			t.Fatalf("poll: %v", errs)
		}
		fetches.EachRecord(func(r *kgo.Record) { got = append(got, string(r.Value)) })
	}
	for _, v := range got {
		if n, _ := strconv.Atoi(v); n < records {
			t.Fatalf("the new member got record %s, committed before it joined (got %v)", v, got)
		}
	}
	if len(got) != 20 {
		t.Fatalf("got %d records, want 20: %v", len(got), got)
	}
	mu.Lock()
	defer mu.Unlock()
	for i := range records {
		if seen[strconv.Itoa(i)] == 0 {
			t.Fatalf("record %d was never consumed", i)
		}
	}
}
