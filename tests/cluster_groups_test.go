package tests

// A consumer group on a three-node cluster: franz-go members seeded with one node each, the
// group hosted by the node that leads its __consumer_offsets partition, the offsets read through
// another node, and the coordinator killed with SIGKILL and restarted with its commits intact.

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// cgOffsetsPartitions is the partition count of a cluster's __consumer_offsets.
const cgOffsetsPartitions = 12

// cgOffsetsPartition is the __consumer_offsets partition of group as Kafka places it:
// Utils.abs(String.hashCode) % partitions, for an ASCII group name.
func cgOffsetsPartition(group string) int32 {
	var h int32
	for i := 0; i < len(group); i++ {
		h = 31*h + int32(group[i])
	}
	if h == math.MinInt32 {
		h = 0
	} else if h < 0 {
		h = -h
	}
	return h % cgOffsetsPartitions
}

// cgMember is one franz-go group member polling in its own goroutine until stopped; it keeps
// every record it polled.
type cgMember struct {
	name string
	seed string
	cl   *kgo.Client
	stop context.CancelFunc
	done chan struct{}

	mu   sync.Mutex
	recs []*kgo.Record
	errs []error
}

// startCGMember starts a member of group consuming topic with franz-go's default group
// settings, seeded with one Kafka address only; each record it polls adds one to total.
func startCGMember(t *testing.T, name, seed, group, topic string, total *atomic.Int64) *cgMember {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(seed), kgo.ConsumerGroup(group), kgo.ConsumeTopics(topic))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	pollCtx, stop := context.WithCancel(context.Background())
	m := &cgMember{name: name, seed: seed, cl: cl, stop: stop, done: make(chan struct{})}
	go func() {
		defer close(m.done)
		for {
			fetches := cl.PollFetches(pollCtx)
			m.mu.Lock()
			fetches.EachRecord(func(r *kgo.Record) {
				m.recs = append(m.recs, r)
				total.Add(1)
			})
			fetches.EachError(func(topic string, p int32, err error) {
				if !errors.Is(err, context.Canceled) && !errors.Is(err, kgo.ErrClientClosed) {
					m.errs = append(m.errs, fmt.Errorf("%s/%d: %w", topic, p, err))
				}
			})
			m.mu.Unlock()
			if pollCtx.Err() != nil {
				return
			}
		}
	}()
	return m
}

// finish stops the member's polling, commits everything it polled (a blocking commit, as an
// application does before it stops) and closes it (LeaveGroup).
func (m *cgMember) finish(t *testing.T) {
	m.stop()
	<-m.done
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := m.cl.CommitUncommittedOffsets(c); err != nil {
		t.Errorf("%s: commit: %v", m.name, err)
	}
	m.cl.Close()
}

// records are the records the member polled, and the fetch errors it saw.
func (m *cgMember) records() ([]*kgo.Record, []error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.recs), slices.Clone(m.errs)
}

// cgAdmin runs fn with a kadm client seeded with the node at addr only, closed after it.
func cgAdmin(addr string, fn func(c context.Context, adm *kadm.Client) error) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		return err
	}
	defer cl.Close()
	c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return fn(c, kadm.NewClient(cl))
}

// cgCoordinator waits until every node names the same coordinator of group through kadm's
// FindCoordinator (seeded with that node only), and returns it.
func cgCoordinator(t *testing.T, c *testCluster, group string) int32 {
	t.Helper()
	var coord int32
	clusterWait(t, 60*time.Second, "every node to name the coordinator of "+group, func() (bool, string) {
		coord = -1
		for _, n := range c.nodes {
			var r kadm.FindCoordinatorResponse
			var ok bool
			err := cgAdmin(n.kafkaAddr, func(c context.Context, adm *kadm.Client) error {
				r, ok = adm.FindGroupCoordinators(c, group)[group]
				return nil
			})
			if err != nil || !ok || r.Err != nil {
				return false, fmt.Sprintf("FindCoordinator through node %d: %+v", n.id, r)
			}
			if coord >= 0 && r.NodeID != coord {
				return false, fmt.Sprintf("node %d names coordinator %d, another %d", n.id, r.NodeID, coord)
			}
			if want := c.node(r.NodeID).kafkaAddr; fmt.Sprintf("%s:%d", r.Host, r.Port) != want {
				return false, fmt.Sprintf("coordinator %d at %s:%d, its listener is %s", r.NodeID, r.Host, r.Port, want)
			}
			coord = r.NodeID
		}
		return true, ""
	})
	return coord
}

// cgFindCoordinatorRaw sends FindCoordinator for group to the node at addr itself and returns
// the node it names and the error code.
func cgFindCoordinatorRaw(addr, group string) (int32, int16, error) {
	req := kmsg.NewPtrFindCoordinatorRequest()
	req.CoordinatorKey = group
	req.CoordinatorKeys = []string{group}
	resp, err := kafkaRequestTo(addr, req, 5*time.Second)
	if err != nil {
		return -1, 0, err
	}
	r := resp.(*kmsg.FindCoordinatorResponse)
	if r.Version >= 4 {
		if len(r.Coordinators) != 1 {
			return -1, 0, fmt.Errorf("%d coordinators in the answer", len(r.Coordinators))
		}
		return r.Coordinators[0].NodeID, r.Coordinators[0].ErrorCode, nil
	}
	return r.NodeID, r.ErrorCode, nil
}

// cgDescribe is the group as DescribeGroups through kadm (seeded with addr) describes it.
func cgDescribe(addr, group string) (kadm.DescribedGroup, error) {
	var dg kadm.DescribedGroups
	err := cgAdmin(addr, func(c context.Context, adm *kadm.Client) (err error) {
		dg, err = adm.DescribeGroups(c, group)
		return err
	})
	if err != nil {
		return kadm.DescribedGroup{}, err
	}
	g, ok := dg[group]
	if !ok {
		return kadm.DescribedGroup{}, fmt.Errorf("group %s not in the answer", group)
	}
	return g, g.Err
}

// cgAssignment is each member's partitions of topic in a described group, by member id.
func cgAssignment(g kadm.DescribedGroup, topic string) (map[string][]int32, error) {
	out := map[string][]int32{}
	for _, m := range g.Members {
		a, ok := m.Assigned.AsConsumer()
		if !ok {
			return nil, fmt.Errorf("member %s: assignment is not Kafka's consumer protocol", m.MemberID)
		}
		for _, at := range a.Topics {
			if at.Topic != topic {
				return nil, fmt.Errorf("member %s assigned topic %s", m.MemberID, at.Topic)
			}
			out[m.MemberID] = append(out[m.MemberID], at.Partitions...)
		}
		slices.Sort(out[m.MemberID])
	}
	return out, nil
}

// cgCommitted are the group's committed offsets of topic, by partition, through kadm's
// FetchOffsets seeded with addr.
func cgCommitted(addr, group, topic string) (map[int32]int64, error) {
	var offs kadm.OffsetResponses
	err := cgAdmin(addr, func(c context.Context, adm *kadm.Client) (err error) {
		if offs, err = adm.FetchOffsets(c, group); err == nil {
			err = offs.Error()
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	out := map[int32]int64{}
	offs.Each(func(o kadm.OffsetResponse) {
		if o.Topic == topic {
			out[o.Partition] = o.At
		}
	})
	return out, nil
}

// cgProduce produces n keyed records "<tag>-<i>" with franz-go's defaults through addr and
// returns the keys.
func cgProduce(t *testing.T, addr, topic, tag string, n int) map[string]bool {
	t.Helper()
	records := make([]*kgo.Record, n)
	keys := map[string]bool{}
	for i := range records {
		k := tag + "-" + strconv.Itoa(i)
		keys[k] = true
		records[i] = &kgo.Record{Topic: topic, Key: []byte(k), Value: []byte("value of " + k)}
	}
	cl := newKafkaClient(t, addr)
	produceAll(t, cl, records)
	cl.Close()
	return keys
}

// cgConsumeExactly waits until the members together polled want records, then checks that they
// are exactly the records produced with keys, each polled once, in offset order per partition,
// and each from a partition its member was assigned (owner: partition -> member); it returns
// the lowest offset read per partition.
func cgConsumeExactly(t *testing.T, members []*cgMember, total *atomic.Int64, keys map[string]bool, owner map[int32]*cgMember) map[int32]int64 {
	t.Helper()
	want := int64(len(keys))
	clusterWait(t, 60*time.Second, fmt.Sprintf("%d records consumed by the group", want), func() (bool, string) {
		return total.Load() >= want, fmt.Sprintf("%d consumed", total.Load())
	})
	seen := map[string]string{}
	first := map[int32]int64{}
	last := map[int32]int64{}
	for _, m := range members {
		recs, errs := m.records()
		for _, err := range errs {
			t.Errorf("%s: fetch error %v", m.name, err)
		}
		for _, r := range recs {
			k := string(r.Key)
			if !keys[k] {
				t.Fatalf("%s polled %q at %d/%d: not one of the records produced for this step", m.name, k, r.Partition, r.Offset)
			}
			if by, dup := seen[k]; dup {
				t.Fatalf("record %q (%d/%d) polled by %s and again by %s", k, r.Partition, r.Offset, by, m.name)
			}
			seen[k] = m.name
			if owner != nil && owner[r.Partition] != m {
				t.Fatalf("%s polled %d/%d, a partition assigned to another member", m.name, r.Partition, r.Offset)
			}
			if l, ok := last[r.Partition]; ok && r.Offset != l+1 {
				t.Fatalf("partition %d: offset %d polled after %d", r.Partition, r.Offset, l)
			}
			if _, ok := first[r.Partition]; !ok {
				first[r.Partition] = r.Offset
			}
			last[r.Partition] = r.Offset
		}
	}
	if int64(len(seen)) != want || total.Load() != want {
		t.Fatalf("%d distinct records of %d polled (%d polls counted)", len(seen), want, total.Load())
	}
	return first
}

func TestClusterConsumerGroupAcrossNodes(t *testing.T) {
	c := startCluster(t, 3, clusterOptions{})
	const topic, group = "group-orders", "orders-billing"

	createClusterTopic(t, []string{c.nodes[0].kafkaAddr}, topic, 6)
	leaders := waitLeaders(t, c.nodes, topic, 6)
	perNode := map[int32]int{}
	for _, l := range leaders {
		perNode[l]++
	}
	if !mapsEqual(perNode, map[int32]int{0: 2, 1: 2, 2: 2}) {
		t.Fatalf("leaders of %s %v: %v per node, want 2 on each", topic, leaders, perNode)
	}

	// The coordinator: the same node through every node, the leader of the group's offsets
	// partition.
	coordID := cgCoordinator(t, c, group)
	coord := c.node(coordID)
	other := c.others(coord)[0]
	offsetsPart := cgOffsetsPartition(group)
	if ov := other.view().topics["__consumer_offsets"]; ov == nil || len(ov.parts) != cgOffsetsPartitions {
		t.Errorf("node %d's Metadata describes __consumer_offsets as %+v, want %d partitions", other.id, ov, cgOffsetsPartitions)
	} else if l := ov.parts[offsetsPart].leader; l != coordID {
		t.Errorf("coordinator %d, but __consumer_offsets/%d is led by %d", coordID, offsetsPart, l)
	}
	if id, code, err := cgFindCoordinatorRaw(other.kafkaAddr, group); err != nil || code != 0 || id != coordID {
		t.Errorf("FindCoordinator sent to node %d itself: node %d, code %d, %v; want node %d", other.id, id, code, err, coordID)
	}
	t.Logf("group %s: __consumer_offsets/%d, coordinator node %d; topic leaders %v", group, offsetsPart, coordID, leaders)

	// The group's own requests sent to a node that does not host it: NOT_COORDINATOR.
	{
		req := kmsg.NewPtrOffsetFetchRequest()
		req.Group = group
		rg := kmsg.NewOffsetFetchRequestGroup()
		rg.Group = group
		req.Groups = []kmsg.OffsetFetchRequestGroup{rg}
		resp, err := kafkaRequestTo(other.kafkaAddr, req, 5*time.Second)
		if err != nil {
			t.Fatalf("OffsetFetch to node %d: %v", other.id, err)
		}
		r := resp.(*kmsg.OffsetFetchResponse)
		code := r.ErrorCode
		if len(r.Groups) == 1 {
			code = r.Groups[0].ErrorCode
		}
		if kerr.ErrorForCode(code) != kerr.NotCoordinator {
			t.Errorf("OffsetFetch v%d of %s sent to node %d (coordinator %d): %v, want NOT_COORDINATOR", r.Version, group, other.id, coordID, kerr.ErrorForCode(code))
		}
	}

	// Three members, each seeded with another node, split the six partitions two each.
	var total atomic.Int64
	var members []*cgMember
	for i, n := range c.nodes {
		members = append(members, startCGMember(t, fmt.Sprintf("member-%d", i), n.kafkaAddr, group, topic, &total))
	}
	var assignment map[string][]int32
	start := time.Now()
	clusterWait(t, 60*time.Second, "the three members to split the partitions", func() (bool, string) {
		g, err := cgDescribe(other.kafkaAddr, group)
		if err != nil {
			return false, err.Error()
		}
		if g.State != "Stable" || len(g.Members) != 3 || g.ProtocolType != "consumer" || g.Coordinator.NodeID != coordID {
			return false, fmt.Sprintf("state %s, %d members, protocol type %q, coordinator %d", g.State, len(g.Members), g.ProtocolType, g.Coordinator.NodeID)
		}
		a, err := cgAssignment(g, topic)
		if err != nil {
			return false, err.Error()
		}
		var all []int32
		for _, ps := range a {
			if len(ps) != 2 {
				return false, fmt.Sprintf("assignment %v", a)
			}
			all = append(all, ps...)
		}
		slices.Sort(all)
		if !slices.Equal(all, []int32{0, 1, 2, 3, 4, 5}) {
			return false, fmt.Sprintf("assignment %v", a)
		}
		assignment = a
		return true, ""
	})
	owner := map[int32]*cgMember{}
	for _, m := range members {
		id, _ := m.cl.GroupMetadata()
		ps, ok := assignment[id]
		if !ok {
			t.Fatalf("%s (member id %q) is not in the described group %v", m.name, id, assignment)
		}
		for _, p := range ps {
			owner[p] = m
		}
	}
	t.Logf("group stable in %v: assignment %v", time.Since(start).Round(time.Millisecond), assignment)

	// 20,000 records, every one polled once, each by the member its partition is assigned to.
	start = time.Now()
	keys := cgProduce(t, c.nodes[1].kafkaAddr, topic, "first", 20000)
	first := cgConsumeExactly(t, members, &total, keys, owner)
	t.Logf("20000 records produced and consumed in %v", time.Since(start).Round(time.Millisecond))
	for p, o := range first {
		if o != 0 {
			t.Errorf("partition %d first polled at offset %d, want 0", p, o)
		}
	}

	// Committed and closed: the commits are the log end offsets, read through a node that does
	// not coordinate the group; the group is Empty.
	var wg sync.WaitGroup
	for _, m := range members {
		wg.Add(1)
		go func() { defer wg.Done(); m.finish(t) }()
	}
	wg.Wait()
	ends := endOffsets(t, []string{other.kafkaAddr}, topic)
	var sum int64
	for _, e := range ends {
		sum += e
	}
	if sum != 20000 {
		t.Fatalf("end offsets %v sum to %d, want 20000", ends, sum)
	}
	checkCommitted := func(what string, want map[int32]int64, via *clusterNode) {
		t.Helper()
		clusterWait(t, 60*time.Second, what, func() (bool, string) {
			got, err := cgCommitted(via.kafkaAddr, group, topic)
			if err != nil {
				return false, err.Error()
			}
			if !mapsEqual(got, want) {
				return false, fmt.Sprintf("committed %v, want %v", got, want)
			}
			return true, ""
		})
	}
	checkCommitted("the commits at the log end, through node "+strconv.Itoa(int(other.id)), ends, other)
	clusterWait(t, 60*time.Second, "the group Empty once its members closed", func() (bool, string) {
		g, err := cgDescribe(other.kafkaAddr, group)
		if err != nil {
			return false, err.Error()
		}
		return g.State == "Empty" && len(g.Members) == 0, fmt.Sprintf("state %s, %d members", g.State, len(g.Members))
	})

	// A member joining later resumes at the commits: it reads the new records only.
	resume := func(what string, seed *clusterNode, tag string, n int, committed map[int32]int64) map[int32]int64 {
		t.Helper()
		more := cgProduce(t, c.nodes[2].kafkaAddr, topic, tag, n)
		var count atomic.Int64
		m := startCGMember(t, what, seed.kafkaAddr, group, topic, &count)
		from := cgConsumeExactly(t, []*cgMember{m}, &count, more, nil)
		for p, o := range from {
			if o != committed[p] {
				t.Errorf("%s: partition %d read from offset %d, committed %d", what, p, o, committed[p])
			}
		}
		m.finish(t)
		newEnds := endOffsets(t, []string{seed.kafkaAddr}, topic)
		var added int64
		for p, e := range newEnds {
			added += e - committed[p]
		}
		if added != int64(n) {
			t.Fatalf("%s: the log ends %v grew by %d since the commits %v, want %d", what, newEnds, added, committed, n)
		}
		return newEnds
	}
	ends = resume("late member", c.nodes[0], "second", 1200, ends)
	checkCommitted("the late member's commits", ends, other)

	// kill -9 of the coordinator: its offsets partition has replicas on the other nodes, and the
	// one that becomes its leader takes the group over, with every commit.
	coord.kill9()
	survivor := c.others(coord)[0]
	start = time.Now()
	var moved int32 = -1
	clusterWait(t, 30*time.Second, "another node to coordinate the group while its node is down", func() (bool, string) {
		id, code, err := cgFindCoordinatorRaw(survivor.kafkaAddr, group)
		if err != nil {
			return false, err.Error()
		}
		moved = id
		return code == 0 && id >= 0 && id != coordID, fmt.Sprintf("node %d, %v", id, kerr.ErrorForCode(code))
	})
	t.Logf("coordinator moved from node %d to node %d %v after the kill", coordID, moved, time.Since(start).Round(time.Millisecond))
	checkCommitted("the commits after the coordinator's node died", ends, survivor)
	coord.start()
	c.waitFormed(c.nodes...)
	now := cgCoordinator(t, c, group)
	checkCommitted("the commits with the killed node back", ends, survivor)
	g, err := cgDescribe(survivor.kafkaAddr, group)
	if err != nil || g.State != "Empty" || g.Coordinator.NodeID != now {
		t.Errorf("after the restart: %s is %+v, %v; want Empty, coordinator %d", group, g, err, now)
	}

	// And a member started now resumes there.
	ends = resume("member after the restart", coord, "third", 600, ends)
	checkCommitted("the commits of the member after the restart", ends, survivor)
	t.Logf("final commits %v", ends)
}
