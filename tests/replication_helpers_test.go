package tests

// Helpers of the replication tests: a TCP proxy for the peer connections that can stall or sever
// all traffic, a mesh of them between the nodes of a cluster, an idempotent producer of numbered
// records, a prober that sends single produce requests to one node, the partition states (ISR
// included) from Kafka Metadata, and the checks of the consumed log and of the replicas' files.

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// proxyState is what a tcpProxy does with traffic.
type proxyState int

const (
	proxyOpen    proxyState = iota // bytes flow both ways
	proxyStalled                   // nothing moves: bytes wait, new connections are held (a blackhole; TCP delivers after heal)
	proxySevered                   // every connection is closed, new ones are closed at once
)

func (s proxyState) String() string {
	switch s {
	case proxyOpen:
		return "open"
	case proxyStalled:
		return "stalled"
	default:
		return "severed"
	}
}

// tcpProxy accepts connections on a loopback port and copies bytes both ways between each and a
// connection it dials to target.
type tcpProxy struct {
	t      *testing.T
	ln     net.Listener
	target string
	closed chan struct{}

	mu    sync.Mutex
	state proxyState
	gate  chan struct{} // closed while open; a fresh one while stalled or severed
	conns map[net.Conn]struct{}
	wg    sync.WaitGroup

	copied atomic.Int64
}

func newTCPProxy(t *testing.T, target string) *tcpProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &tcpProxy{t: t, ln: ln, target: target, closed: make(chan struct{}), gate: make(chan struct{}), conns: map[net.Conn]struct{}{}}
	close(p.gate)
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(p.close)
	return p
}

func (p *tcpProxy) addr() string { return p.ln.Addr().String() }

func (p *tcpProxy) accept() {
	defer p.wg.Done()
	for {
		conn, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		if p.state == proxySevered {
			p.mu.Unlock()
			conn.Close()
			continue
		}
		p.conns[conn] = struct{}{}
		p.wg.Add(1)
		p.mu.Unlock()
		go p.serve(conn)
	}
}

// waitOpen blocks while the proxy is stalled or severed; false once the proxy is closed.
func (p *tcpProxy) waitOpen() bool {
	for {
		p.mu.Lock()
		st, gate := p.state, p.gate
		p.mu.Unlock()
		if st == proxyOpen {
			return true
		}
		select {
		case <-gate:
		case <-p.closed:
			return false
		}
	}
}

func (p *tcpProxy) track(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.state == proxySevered {
		return false
	}
	select {
	case <-p.closed:
		return false
	default:
	}
	p.conns[c] = struct{}{}
	return true
}

func (p *tcpProxy) untrack(cs ...net.Conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range cs {
		delete(p.conns, c)
		c.Close()
	}
}

func (p *tcpProxy) serve(down net.Conn) {
	defer p.wg.Done()
	if !p.waitOpen() { // a connection made while stalled waits, unanswered, for the heal
		p.untrack(down)
		return
	}
	up, err := net.DialTimeout("tcp", p.target, 2*time.Second)
	if err != nil { // the node is down: its peer sees the connection close, as a refused dial
		p.untrack(down)
		return
	}
	if !p.track(up) {
		up.Close()
		p.untrack(down)
		return
	}
	var wg sync.WaitGroup
	wg.Add(2)
	pipe := func(dst, src net.Conn) {
		defer wg.Done()
		buf := make([]byte, 64<<10)
		for {
			n, err := src.Read(buf)
			if n > 0 {
				if !p.waitOpen() {
					break
				}
				if _, werr := dst.Write(buf[:n]); werr != nil {
					break
				}
				p.copied.Add(int64(n))
			}
			if err != nil {
				break
			}
		}
		p.untrack(down, up) // either side gone: both are closed
	}
	go pipe(up, down)
	go pipe(down, up)
	wg.Wait()
}

// set changes what the proxy does: severing closes every connection it holds.
func (p *tcpProxy) set(st proxyState) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if st == p.state {
		return
	}
	if p.state == proxyOpen {
		p.gate = make(chan struct{})
	}
	p.state = st
	switch st {
	case proxyOpen:
		close(p.gate)
	case proxySevered:
		for c := range p.conns {
			c.Close()
			delete(p.conns, c)
		}
	}
}

func (p *tcpProxy) close() {
	select {
	case <-p.closed:
		return
	default:
	}
	close(p.closed)
	p.ln.Close()
	p.mu.Lock()
	for c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
}

// proxyMesh puts a proxy on every peer link of a cluster: node from reaches node to only through
// links[{from, to}], so a node is cut off by stalling or severing the links to and from it.
type proxyMesh struct {
	t     *testing.T
	links map[[2]int32]*tcpProxy
}

func newProxyMesh(t *testing.T) *proxyMesh {
	return &proxyMesh{t: t, links: map[[2]int32]*tcpProxy{}}
}

// peerAddr is clusterOptions.peerAddr: a new proxy from -> to in front of addr.
func (m *proxyMesh) peerAddr(from, to int32, addr string) string {
	p := newTCPProxy(m.t, addr)
	m.links[[2]int32{from, to}] = p
	return p.addr()
}

// isolate stalls or severs every link to and from node id.
func (m *proxyMesh) isolate(id int32, st proxyState) {
	for k, p := range m.links {
		if k[0] == id || k[1] == id {
			p.set(st)
		}
	}
}

// heal opens every link.
func (m *proxyMesh) heal() {
	for _, p := range m.links {
		p.set(proxyOpen)
	}
}

// startProxiedCluster is startCluster with every peer link through a proxy of the returned mesh.
func startProxiedCluster(t *testing.T, n int, o clusterOptions) (*testCluster, *proxyMesh) {
	t.Helper()
	m := newProxyMesh(t)
	o.peerAddr = m.peerAddr
	return startCluster(t, n, o), m
}

// partState is a partition as a node's Metadata describes it, with its ISR.
type partState struct {
	leader, epoch int32
	code          int16
	replicas, isr []int32
}

// partStates asks the node at addr for Metadata of topic alone (never creating it).
func partStates(addr, topic string) ([]partState, error) {
	req := kmsg.NewPtrMetadataRequest()
	rt := kmsg.NewMetadataRequestTopic()
	rt.Topic = kmsg.StringPtr(topic)
	req.Topics = []kmsg.MetadataRequestTopic{rt}
	resp, err := kafkaRequestTo(addr, req, 5*time.Second)
	if err != nil {
		return nil, err
	}
	m := resp.(*kmsg.MetadataResponse)
	if len(m.Topics) != 1 {
		return nil, fmt.Errorf("%d topics in the answer", len(m.Topics))
	}
	mt := m.Topics[0]
	if mt.ErrorCode != 0 {
		return nil, fmt.Errorf("topic %s: %w", topic, kerr.ErrorForCode(mt.ErrorCode))
	}
	out := make([]partState, len(mt.Partitions))
	for _, p := range mt.Partitions {
		if p.Partition < 0 || int(p.Partition) >= len(out) {
			return nil, fmt.Errorf("partition %d of %d", p.Partition, len(out))
		}
		isr := slices.Clone(p.ISR)
		slices.Sort(isr)
		out[p.Partition] = partState{leader: p.Leader, epoch: p.LeaderEpoch, code: p.ErrorCode, replicas: p.Replicas, isr: isr}
	}
	return out, nil
}

// statesOf is partStates from each node, or nil and why not.
func statesOf(topic string, nodes ...*clusterNode) ([][]partState, string) {
	var out [][]partState
	for _, n := range nodes {
		s, err := partStates(n.kafkaAddr, topic)
		if err != nil {
			return nil, fmt.Sprintf("Metadata of %s from node %d: %v", topic, n.id, err)
		}
		out = append(out, s)
	}
	return out, ""
}

// waitFullISR waits until every node of c lists every node as a broker and describes each of
// topic's partitions alike: a leader, and every replica (all nodes) in the ISR.
func waitFullISR(t *testing.T, c *testCluster, topic string, parts int, limit time.Duration) time.Duration {
	t.Helper()
	var all []int32
	for _, n := range c.nodes {
		all = append(all, n.id)
	}
	return clusterWait(t, limit, fmt.Sprintf("every replica of %s in its ISR on every node", topic), func() (bool, string) {
		views, detail := viewsOf(c.nodes...)
		if views == nil {
			return false, detail
		}
		for i, v := range views {
			if !mapsEqual(v.brokers, wantBrokers(c.nodes...)) {
				return false, fmt.Sprintf("node %d lists brokers %v", c.nodes[i].id, v.brokers)
			}
		}
		states, detail := statesOf(topic, c.nodes...)
		if states == nil {
			return false, detail
		}
		for i, s := range states {
			if len(s) != parts {
				return false, fmt.Sprintf("node %d: %d partitions", c.nodes[i].id, len(s))
			}
			for p, ps := range s {
				if ps.leader < 0 || ps.code != 0 || !slices.Equal(ps.isr, all) {
					return false, fmt.Sprintf("node %d: partition %d leader %d epoch %d error %d ISR %v", c.nodes[i].id, p, ps.leader, ps.epoch, ps.code, ps.isr)
				}
				if ps.leader != states[0][p].leader || ps.epoch != states[0][p].epoch {
					return false, fmt.Sprintf("partition %d: node %d names leader %d epoch %d, node %d leader %d epoch %d", p, c.nodes[i].id, ps.leader, ps.epoch, c.nodes[0].id, states[0][p].leader, states[0][p].epoch)
				}
			}
		}
		return true, ""
	})
}

// leadersNow are the leaders of topic's partitions as node n describes them.
func leadersNow(t *testing.T, n *clusterNode, topic string) []int32 {
	t.Helper()
	s, err := partStates(n.kafkaAddr, topic)
	if err != nil {
		t.Fatalf("Metadata from node %d: %v", n.id, err)
	}
	var out []int32
	for _, p := range s {
		out = append(out, p.leader)
	}
	return out
}

// waitNewLeaders waits until every one of observers names, for each of parts, the same leader,
// neither gone nor -1, and returns how long after since that held.
func waitNewLeaders(t *testing.T, observers []*clusterNode, topic string, parts []int32, gone int32, since time.Time, limit time.Duration) (time.Duration, []int32) {
	t.Helper()
	var leaders []int32
	clusterWait(t, limit, fmt.Sprintf("new leaders of %s partitions %v (not node %d)", topic, parts, gone), func() (bool, string) {
		states, detail := statesOf(topic, observers...)
		if states == nil {
			return false, detail
		}
		leaders = leaders[:0]
		for _, p := range parts {
			l := states[0][p].leader
			for i, s := range states {
				if s[p].leader != l || l < 0 || l == gone {
					return false, fmt.Sprintf("partition %d: node %d names leader %d (epoch %d, ISR %v)", p, observers[i].id, s[p].leader, s[p].epoch, s[p].isr)
				}
			}
			leaders = append(leaders, l)
		}
		return true, ""
	})
	return time.Since(since), leaders
}

// replKey is the key of a numbered record: producer name, partition, partition-local sequence.
func replKey(name string, p int32, seq int64) []byte {
	return fmt.Appendf(nil, "%s/%d/%d", name, p, seq)
}

func parseReplKey(k []byte) (name string, p int32, seq int64, ok bool) {
	f := strings.Split(string(k), "/")
	if len(f) != 3 {
		return "", 0, 0, false
	}
	pp, err1 := strconv.ParseInt(f[1], 10, 32)
	s, err2 := strconv.ParseInt(f[2], 10, 64)
	if err1 != nil || err2 != nil {
		return "", 0, 0, false
	}
	return f[0], int32(pp), s, true
}

// replValue is the value of record seq of producer name in partition p: random bytes of a size
// from 0 B to 100 KiB, most small, one in 40 just above 64 KiB, one in 40 from 10 to 100 KiB.
func replValue(name string, p int32, seq int64) []byte {
	key := replKey(name, p, seq)
	r := rand.New(rand.NewPCG(uint64(seq), uint64(p)+uint64(crc32.ChecksumIEEE([]byte(name)))<<8))
	var size int
	switch {
	case seq == 0:
		size = 0
	case seq == 1:
		size = 100 << 10
	case seq%40 == 7:
		size = 64<<10 + 1 + r.IntN(1024)
	case r.IntN(40) == 0:
		size = 10<<10 + r.IntN(90<<10+1)
	case r.IntN(5) == 0:
		size = r.IntN(4<<10 + 1)
	default:
		size = r.IntN(257)
	}
	v := make([]byte, size)
	var seed [32]byte
	copy(seed[:], key)
	_, _ = rand.NewChaCha8(seed).Read(v)
	return v
}

// seqProducer produces numbered records round robin over a topic's partitions with franz-go's
// defaults (idempotent, acks=all, batches up to 1 MB), the partition chosen by the record, until
// stopped; it records which were acknowledged, at which offsets and when.
type seqProducer struct {
	t     *testing.T
	name  string
	topic string
	parts int32
	cl    *kgo.Client
	pace  time.Duration
	stop  chan struct{}
	done  chan struct{}
	sem   chan struct{}

	mu       sync.Mutex
	next     []int64           // the next sequence number by partition
	acked    []map[int64]int64 // by partition: sequence -> offset
	ackTimes [][]time.Time     // by partition, in the order acknowledged
	failed   map[string]int    // error -> records it failed
	nFailed  int
	fail     []map[int64]bool // by partition: sequences failed
}

// startSeqProducer starts producing; pace is the pause after each record, at most inflight
// records wait for their acknowledgement.
func startSeqProducer(t *testing.T, name, topic string, parts int32, seeds []string, pace time.Duration, inflight int) *seqProducer {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	sp := &seqProducer{t: t, name: name, topic: topic, parts: parts, cl: cl, pace: pace,
		stop: make(chan struct{}), done: make(chan struct{}), sem: make(chan struct{}, inflight),
		next: make([]int64, parts), failed: map[string]int{}}
	for range parts {
		sp.acked = append(sp.acked, map[int64]int64{})
		sp.ackTimes = append(sp.ackTimes, nil)
		sp.fail = append(sp.fail, map[int64]bool{})
	}
	t.Cleanup(func() {
		sp.halt()
		cl.Close()
	})
	go sp.run()
	return sp
}

func (sp *seqProducer) run() {
	defer close(sp.done)
	for i := 0; ; i++ {
		select {
		case <-sp.stop:
			return
		case sp.sem <- struct{}{}:
		}
		p := int32(i) % sp.parts
		sp.mu.Lock()
		seq := sp.next[p]
		sp.next[p]++
		sp.mu.Unlock()
		r := &kgo.Record{Topic: sp.topic, Partition: p, Key: replKey(sp.name, p, seq), Value: replValue(sp.name, p, seq)}
		sp.cl.Produce(context.Background(), r, func(r *kgo.Record, err error) {
			now := time.Now()
			sp.mu.Lock()
			if err != nil {
				sp.failed[err.Error()]++
				sp.nFailed++
				sp.fail[p][seq] = true
			} else {
				sp.acked[p][seq] = r.Offset
				sp.ackTimes[p] = append(sp.ackTimes[p], now)
			}
			sp.mu.Unlock()
			<-sp.sem
		})
		if sp.pace > 0 {
			time.Sleep(sp.pace) // pacing the load
		}
	}
}

func (sp *seqProducer) halt() {
	select {
	case <-sp.stop:
	default:
		close(sp.stop)
	}
	<-sp.done
}

// finish stops producing and waits until every record produced is acknowledged or failed.
func (sp *seqProducer) finish(limit time.Duration) {
	sp.t.Helper()
	sp.halt()
	c, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	if err := sp.cl.Flush(c); err != nil {
		sp.mu.Lock()
		n := sp.nAcked()
		sp.mu.Unlock()
		sp.t.Fatalf("producer %s: records still unanswered %v after production stopped (%d acknowledged): %v", sp.name, limit, n, err)
	}
}

// nAcked counts acknowledged records; sp.mu held.
func (sp *seqProducer) nAcked() int {
	n := 0
	for _, m := range sp.acked {
		n += len(m)
	}
	return n
}

// acks counts acknowledged records.
func (sp *seqProducer) acks() int {
	sp.mu.Lock()
	defer sp.mu.Unlock()
	return sp.nAcked()
}

// firstAckAfter is when the first record of partition p acknowledged after since was, or zero.
func (sp *seqProducer) firstAckAfter(p int32, since time.Time) time.Time {
	sp.mu.Lock()
	defer sp.mu.Unlock()
	ts := sp.ackTimes[p]
	i := sort.Search(len(ts), func(i int) bool { return ts[i].After(since) })
	if i == len(ts) {
		return time.Time{}
	}
	return ts[i]
}

// failures describes the records that failed, by error.
func (sp *seqProducer) failures() string {
	sp.mu.Lock()
	defer sp.mu.Unlock()
	if sp.nFailed == 0 {
		return "none"
	}
	return fmt.Sprintf("%d: %v", sp.nFailed, sp.failed)
}

// probeResult is one produce request a prober sent.
type probeResult struct {
	n        int
	sent     time.Time
	answered time.Time
	code     int16 // the partition's error code, when answered
	offset   int64 // the base offset, when code is 0
	err      error // no answer (the request's own timeout)
}

// prober sends, every interval, one produce request (acks=all, one record, its own connection)
// for a partition straight to one node's Kafka listener, and records each answer.
type prober struct {
	t         *testing.T
	addr      string
	topic     string
	partition int32
	stop      chan struct{}
	done      chan struct{}
	wg        sync.WaitGroup

	mu      sync.Mutex
	results []probeResult
}

func probeKey(n int) []byte   { return fmt.Appendf(nil, "probe/%d", n) }
func probeValue(n int) []byte { return fmt.Appendf(nil, "probe value %d", n) }

func startProber(t *testing.T, addr, topic string, partition int32, every, timeout time.Duration) *prober {
	pr := &prober{t: t, addr: addr, topic: topic, partition: partition, stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(pr.done)
		tick := time.NewTicker(every)
		defer tick.Stop()
		for n := 0; ; n++ {
			pr.wg.Add(1)
			go pr.probe(n, timeout)
			select {
			case <-pr.stop:
				pr.wg.Wait()
				return
			case <-tick.C:
			}
		}
	}()
	t.Cleanup(pr.finish)
	return pr
}

func (pr *prober) probe(n int, timeout time.Duration) {
	defer pr.wg.Done()
	req := produceRequest(pr.topic, pr.partition, singleRecordBatch(probeKey(n), probeValue(n)))
	req.TimeoutMillis = int32(timeout / time.Millisecond)
	res := probeResult{n: n, sent: time.Now()}
	resp, err := kafkaRequestTo(pr.addr, req, timeout+3*time.Second)
	res.answered = time.Now()
	if err != nil {
		res.err = err
	} else {
		pr := resp.(*kmsg.ProduceResponse)
		if len(pr.Topics) != 1 || len(pr.Topics[0].Partitions) != 1 {
			res.err = fmt.Errorf("produce answer %+v", pr)
		} else {
			res.code = pr.Topics[0].Partitions[0].ErrorCode
			res.offset = pr.Topics[0].Partitions[0].BaseOffset
		}
	}
	pr.mu.Lock()
	pr.results = append(pr.results, res)
	pr.mu.Unlock()
}

// finish stops probing and waits for the answers of the requests sent.
func (pr *prober) finish() {
	select {
	case <-pr.stop:
	default:
		close(pr.stop)
	}
	<-pr.done
}

func (pr *prober) all() []probeResult {
	pr.mu.Lock()
	defer pr.mu.Unlock()
	out := slices.Clone(pr.results)
	slices.SortFunc(out, func(a, b probeResult) int { return a.n - b.n })
	return out
}

// singleRecordBatch is a RecordBatch v2 of one record, without a producer id.
func singleRecordBatch(key, value []byte) []byte {
	ts := time.Now().UnixMilli()
	r := kmsg.Record{Key: key, Value: value}
	r.Length = int32(len(r.AppendTo(nil)) - 1) // the placeholder length 0 takes one byte
	records := r.AppendTo(nil)
	b := kmsg.RecordBatch{
		PartitionLeaderEpoch: -1,
		Magic:                2,
		FirstTimestamp:       ts,
		MaxTimestamp:         ts,
		ProducerID:           -1,
		ProducerEpoch:        -1,
		FirstSequence:        -1,
		NumRecords:           1,
		Records:              records,
		Length:               int32(49 + len(records)),
	}
	out := b.AppendTo(nil)
	binary.BigEndian.PutUint32(out[17:], crc32.Checksum(out[21:], crc32.MakeTable(crc32.Castagnoli)))
	return out
}

// consumeToEnd reads topic's partitions from the start through seeds until each reaches the end
// offset the cluster names (two minutes at most), failing on any fetch error.
func consumeToEnd(t *testing.T, seeds []string, topic string, parts int32) map[int32][]*kgo.Record {
	t.Helper()
	ends := endOffsets(t, seeds, topic)
	offsets := map[int32]kgo.Offset{}
	for p := range parts {
		offsets[p] = kgo.NewOffset().AtStart()
	}
	cl := newKafkaClient(t, seeds[0], kgo.SeedBrokers(seeds...), kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: offsets}),
		kgo.FetchMaxBytes(8<<20))
	defer cl.Close()
	c := ctx(t, 2*time.Minute)
	out := map[int32][]*kgo.Record{}
	reached := func() bool {
		for p := range parts {
			rs := out[p]
			if ends[p] > 0 && (len(rs) == 0 || rs[len(rs)-1].Offset+1 < ends[p]) {
				return false
			}
		}
		return true
	}
	for !reached() {
		fetches := cl.PollFetches(c)
		if c.Err() != nil {
			var got []string
			for p := range parts {
				got = append(got, fmt.Sprintf("%d: %d of %d", p, len(out[p]), ends[p]))
			}
			t.Fatalf("consuming %s: the end offsets not reached within two minutes (%s)", topic, strings.Join(got, ", "))
		}
		for _, e := range fetches.Errors() {
			t.Fatalf("fetch %s/%d: %v", e.Topic, e.Partition, e.Err)
		}
		fetches.EachRecord(func(r *kgo.Record) { out[r.Partition] = append(out[r.Partition], r) })
	}
	return out
}

// logCheck is what verifyReplLog found.
type logCheck struct {
	records        int // in the log
	acked          int // acknowledged (all present)
	unackedPresent int // produced, failed, present nevertheless
	probesOK       int // probes answered with success (all present)
	probesPresent  int // probes present
}

// verifyReplLog checks the consumed log of topic: offsets contiguous from 0; every record one of the
// producers' or probers', in its partition, with its value; each producer's records in
// strictly increasing sequence per partition (in order, none twice); every acknowledged record
// and every probe answered with success present at the offset it was acknowledged at.
func verifyReplLog(t *testing.T, logs map[int32][]*kgo.Record, parts int32, producers []*seqProducer, probers []*prober) logCheck {
	t.Helper()
	var lc logCheck
	byName := map[string]*seqProducer{}
	for _, sp := range producers {
		byName[sp.name] = sp
	}
	found := map[string][]map[int64]int64{} // name -> partition -> seq -> offset
	for _, sp := range producers {
		for range parts {
			found[sp.name] = append(found[sp.name], map[int64]int64{})
		}
	}
	probeAt := map[int32]map[int]int64{} // partition -> probe -> offset
	for p := range parts {
		last := map[string]int64{}
		probeAt[p] = map[int]int64{}
		for k, r := range logs[p] {
			lc.records++
			if r.Offset != int64(k) {
				t.Fatalf("partition %d: record %d at offset %d (offsets are not contiguous)", p, k, r.Offset)
			}
			if pn, ok := strings.CutPrefix(string(r.Key), "probe/"); ok {
				n, err := strconv.Atoi(pn)
				if err != nil || !bytes.Equal(r.Value, probeValue(n)) {
					t.Fatalf("partition %d offset %d: probe record %q value %q", p, r.Offset, r.Key, r.Value)
				}
				if at, dup := probeAt[p][n]; dup {
					t.Fatalf("partition %d: probe %d at offsets %d and %d", p, n, at, r.Offset)
				}
				probeAt[p][n] = r.Offset
				lc.probesPresent++
				continue
			}
			name, kp, seq, ok := parseReplKey(r.Key)
			sp := byName[name]
			if !ok || sp == nil || kp != p {
				t.Fatalf("partition %d offset %d: unexpected key %q", p, r.Offset, r.Key)
			}
			if !bytes.Equal(r.Value, replValue(name, p, seq)) {
				t.Fatalf("partition %d offset %d: record %q has %d bytes, not the %d produced", p, r.Offset, r.Key, len(r.Value), len(replValue(name, p, seq)))
			}
			if l, ok := last[name]; ok && seq <= l {
				if at, dup := found[name][p][seq]; dup {
					t.Fatalf("partition %d: record %q twice, at offsets %d and %d", p, r.Key, at, r.Offset)
				}
				t.Fatalf("partition %d offset %d: record %q after sequence %d (out of order)", p, r.Offset, r.Key, l)
			}
			last[name] = seq
			found[name][p][seq] = r.Offset
		}
	}
	for _, sp := range producers {
		sp.mu.Lock()
		for p := range parts {
			var missing []int64
			for seq, off := range sp.acked[p] {
				lc.acked++
				at, ok := found[sp.name][p][seq]
				switch {
				case !ok:
					missing = append(missing, seq)
				case at != off:
					sp.mu.Unlock()
					t.Fatalf("record %q acknowledged at offset %d, read at %d", replKey(sp.name, p, seq), off, at)
				}
			}
			for seq := range found[sp.name][p] {
				if _, ok := sp.acked[p][seq]; !ok {
					lc.unackedPresent++
					if !sp.fail[p][seq] {
						sp.mu.Unlock()
						t.Fatalf("record %q present, neither acknowledged nor failed", replKey(sp.name, p, seq))
					}
				}
			}
			if len(missing) > 0 {
				slices.Sort(missing)
				sp.mu.Unlock()
				t.Fatalf("producer %s partition %d: %d acknowledged records missing, sequences %v", sp.name, p, len(missing), missing[:min(len(missing), 20)])
			}
		}
		sp.mu.Unlock()
	}
	for _, pr := range probers {
		for _, res := range pr.all() {
			if res.err != nil || res.code != 0 {
				continue
			}
			lc.probesOK++
			at, ok := probeAt[pr.partition][res.n]
			if !ok {
				t.Fatalf("probe %d to %s acknowledged at %s/%d offset %d (answered %v after it was sent), missing from the log", res.n, pr.addr, pr.topic, pr.partition, res.offset, res.answered.Sub(res.sent).Round(time.Millisecond))
			}
			if at != res.offset {
				t.Fatalf("probe %d acknowledged at offset %d, read at %d", res.n, res.offset, at)
			}
		}
	}
	return lc
}

// partitionLog is the concatenation, in offset order, of the .log files of a partition
// directory (a truncation's .log.diverged-* and recovery's .dropped-* files are not part of it).
func partitionLog(dir string) ([]byte, error) {
	names, err := filepath.Glob(filepath.Join(dir, "*.log"))
	if err != nil {
		return nil, err
	}
	slices.Sort(names) // 20-digit base offsets: name order is offset order
	var out []byte
	for _, name := range names {
		b, err := os.ReadFile(name)
		if err != nil {
			return nil, err
		}
		out = append(out, b...)
	}
	return out, nil
}

func partitionLogSize(dir string) (int64, error) {
	names, err := filepath.Glob(filepath.Join(dir, "*.log"))
	if err != nil {
		return 0, err
	}
	var n int64
	for _, name := range names {
		st, err := os.Stat(name)
		if err != nil {
			return 0, err
		}
		n += st.Size()
	}
	return n, nil
}

func replicaDir(n *clusterNode, topic string, p int32) string {
	return filepath.Join(n.dataDir, topic+"-"+strconv.Itoa(int(p)))
}

// stopCaughtUp waits until every replica of topic is in every ISR and the replicas' .log files
// have the same size on every node, then stops every node with SIGTERM.
func stopCaughtUp(t *testing.T, c *testCluster, topic string, parts int32) {
	t.Helper()
	waitFullISR(t, c, topic, int(parts), 60*time.Second)
	clusterWait(t, 30*time.Second, "every replica's log the same size", func() (bool, string) {
		for p := range parts {
			var sizes []int64
			for _, n := range c.nodes {
				s, err := partitionLogSize(replicaDir(n, topic, p))
				if err != nil {
					return false, err.Error()
				}
				sizes = append(sizes, s)
			}
			if slices.Min(sizes) != slices.Max(sizes) {
				return false, fmt.Sprintf("partition %d: .log bytes by node %v", p, sizes)
			}
		}
		return true, ""
	})
	for _, n := range c.nodes {
		n.stop()
	}
}

// batchInfo is a RecordBatch's place in a log.
type batchInfo struct {
	pos, baseOffset int64
	length, epoch   int32
}

func walkBatches(b []byte) ([]batchInfo, error) {
	var out []batchInfo
	for pos := 0; pos < len(b); {
		if len(b)-pos < 61 {
			return out, fmt.Errorf("%d bytes at position %d: not a batch header", len(b)-pos, pos)
		}
		l := int32(binary.BigEndian.Uint32(b[pos+8:]))
		if l < 49 || int(l) > len(b)-pos-12 {
			return out, fmt.Errorf("batch length %d at position %d", l, pos)
		}
		out = append(out, batchInfo{pos: int64(pos), baseOffset: int64(binary.BigEndian.Uint64(b[pos:])), length: l, epoch: int32(binary.BigEndian.Uint32(b[pos+12:]))})
		pos += 12 + int(l)
	}
	return out, nil
}

// compareReplicas asserts that each partition of topic has the same log bytes on every node
// (stopped), and returns the bytes per partition; on a difference it says at which batch.
func compareReplicas(t *testing.T, c *testCluster, topic string, parts int32) []int {
	t.Helper()
	var sizes []int
	for p := range parts {
		var logs [][]byte
		for _, n := range c.nodes {
			b, err := partitionLog(replicaDir(n, topic, p))
			if err != nil {
				t.Fatalf("node %d partition %d: %v", n.id, p, err)
			}
			logs = append(logs, b)
		}
		if len(logs[0]) == 0 {
			t.Fatalf("partition %d: node %d has an empty log", p, c.nodes[0].id)
		}
		for i := 1; i < len(logs); i++ {
			if bytes.Equal(logs[0], logs[i]) {
				continue
			}
			a, errA := walkBatches(logs[0])
			b, errB := walkBatches(logs[i])
			k := 0
			for k < len(a) && k < len(b) && a[k] == b[k] && bytes.Equal(logs[0][a[k].pos:a[k].pos+12+int64(a[k].length)], logs[i][b[k].pos:b[k].pos+12+int64(b[k].length)]) {
				k++
			}
			describe := func(bs []batchInfo) string {
				if k < len(bs) {
					return fmt.Sprintf("%+v", bs[k])
				}
				return "the end"
			}
			t.Fatalf("partition %d: node %d has %d log bytes (%d batches, %v), node %d %d (%d batches, %v); they agree on %d batches, then node %d has %s, node %d %s",
				p, c.nodes[0].id, len(logs[0]), len(a), errA, c.nodes[i].id, len(logs[i]), len(b), errB, k, c.nodes[0].id, describe(a), c.nodes[i].id, describe(b))
		}
		if _, err := walkBatches(logs[0]); err != nil {
			t.Fatalf("partition %d: %v", p, err)
		}
		sizes = append(sizes, len(logs[0]))
	}
	return sizes
}

// durationStats is min, median and max of ds.
func durationStats(ds []time.Duration) string {
	if len(ds) == 0 {
		return "none measured"
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	r := func(d time.Duration) time.Duration { return d.Round(time.Millisecond) }
	return fmt.Sprintf("min %v, median %v, max %v (%d)", r(s[0]), r(s[len(s)/2]), r(s[len(s)-1]), len(s))
}

// globDiverged lists the bytes a follower's truncation cut from the partition in dir.
func globDiverged(dir string) ([]string, error) {
	names, err := filepath.Glob(filepath.Join(dir, "*.log.diverged-*"))
	for i := range names {
		names[i] = filepath.Base(names[i])
	}
	return names, err
}
