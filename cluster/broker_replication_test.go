package cluster

import (
	"context"
	"errors"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/thorstream/thorstream/cluster/meta"
	"github.com/thorstream/thorstream/codec/errcode"
	"github.com/thorstream/thorstream/codec/proto"
	"github.com/thorstream/thorstream/log/partition"
	"github.com/thorstream/thorstream/log/vfs"
)

// TestReplTruncationOffset: where a follower cuts its log for a diverging epoch and end offset
// from its leader, as Kafka's fetch-based truncation (KIP-320): the smaller of the leader's end
// offset and this log's own end for the largest epoch it has at or below the diverging one.
func TestReplTruncationOffset(t *testing.T) {
	for _, tc := range []struct {
		name    string
		log     [][]byte // the follower's batches
		epoch   int32    // diverging epoch
		end     int64    // diverging end offset
		leoLead int64    // the leader's log end
		want    int64
	}{
		// Follower epochs 0 (0-4) and 1 (5-11).
		{"leader's epoch 1 ends first", [][]byte{stamped(0, 0, 5), stamped(5, 1, 7)}, 1, 8, 20, 8},
		{"own epoch 0 ends first", [][]byte{stamped(0, 0, 5), stamped(5, 1, 7)}, 0, 7, 20, 5},
		{"leader's epoch 0 ends first", [][]byte{stamped(0, 0, 5), stamped(5, 1, 7)}, 0, 3, 20, 3},
		{"no leader epoch: the leader's log end", [][]byte{stamped(0, 0, 5), stamped(5, 1, 7)}, -1, 4, 4, 4},
		// Follower epochs 0 (0-5) and 3 (6-11); the leader names epoch 2, which it never had.
		{"epoch unknown here", [][]byte{stamped(0, 0, 6), stamped(6, 3, 6)}, 2, 9, 20, 6},
		// Follower epochs 1 (0-5) and 3 (6-11): the leader's epoch 0 is older than all of them.
		{"older than every epoch here", [][]byte{stamped(0, 1, 6), stamped(6, 3, 6)}, 0, 4, 20, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, _ := newFollowerReplica(t, 4)
			appendStamped(t, r, tc.log...)
			rp := proto.ReplicaDataPartition{HighWatermark: 0, LogStartOffset: 0, LogEndOffset: tc.leoLead,
				DivergingEpoch: tc.epoch, DivergingEndOffset: tc.end}
			if got := (*fetcher)(nil).truncationOffset(r, &rp); got != tc.want {
				t.Fatalf("truncation offset %d, want %d", got, tc.want)
			}
		})
	}
}

// divergedPair is a leader at epoch 3 whose log has epoch 0 (offsets 0-4) and epoch 2 (5-9), and
// a follower that has the same epoch 0 and then epoch 1 (5-11), which the leader never had.
func divergedPair(t *testing.T) (leader, follower *Replica, followerFS vfs.FS) {
	t.Helper()
	leader = newReplReplica(t, FsyncPolicy{Mode: FsyncAlways}, nil)
	appendStamped(t, leader, stamped(0, 0, 5), stamped(5, 2, 5))
	leader.ResetHighWatermark(0)
	leader.SetRole(leaderRole(3, []int32{0, 1}, []int32{0, 1}, 2), nil)
	follower, followerFS = newFollowerReplica(t, 3)
	appendStamped(t, follower, stamped(0, 0, 5), stamped(5, 1, 7))
	return leader, follower, followerFS
}

// TestReplDivergedFollowerConverges: a follower whose log diverged is told the diverging epoch,
// truncates there (keeping the cut batches), fetches the leader's and ends byte-identical; the
// high watermark moves only once it has.
func TestReplDivergedFollowerConverges(t *testing.T) {
	leader, follower, fs := divergedPair(t)
	ff := replicateOnce(t, leader, follower, 1)
	if ff.DivergingEpoch != 0 || ff.DivergingEndOffset != 5 {
		t.Fatalf("first fetch: %+v, want diverging epoch 0 ending at 5", ff)
	}
	if leo := follower.LogEndOffset(); leo != 5 {
		t.Fatalf("follower log end %d after the truncation, want 5", leo)
	}
	if hw := leader.HighWatermark(); hw != 0 {
		t.Fatalf("leader high watermark %d while its follower diverges", hw)
	}
	if files := divergedFiles(t, fs); len(files) != 1 || follower.log.DivergedBytes() != int64(len(stamped(5, 1, 7))) {
		t.Fatalf("diverged files %v, %d bytes", files, follower.log.DivergedBytes())
	}
	replicate(t, leader, follower, 1)
	sameLog(t, leader, follower)
	if hw := leader.HighWatermark(); hw != 10 {
		t.Fatalf("leader high watermark %d, want 10", hw)
	}
}

// replCluster is the metadata of the Brokers of one test, applied with meta.Apply, and the peer
// connections between them: SendPeer hands a replication message straight to the other Broker's
// handler, as reactor/peer does on a connection's event loop.
type replCluster struct {
	mu      sync.Mutex
	img     *meta.Image
	views   []*replView
	brokers map[int32]*Broker
}

// replView is one node's MetadataStore on the cluster's metadata.
type replView struct {
	c       *replCluster
	node    int32
	changed chan struct{}
}

func newReplCluster(img *meta.Image) *replCluster {
	return &replCluster{img: img, brokers: map[int32]*Broker{}}
}

func (v *replView) Image() *meta.Image {
	v.c.mu.Lock()
	defer v.c.mu.Unlock()
	return v.c.img
}

func (v *replView) Changed() <-chan struct{} { return v.changed }

func (v *replView) Propose(ctx context.Context, cmd meta.Command) (meta.Result, uint64, error) {
	if err := ctx.Err(); err != nil {
		return meta.Result{}, 0, err
	}
	v.c.mu.Lock()
	img, res := meta.Apply(v.c.img, v.c.img.Index+1, cmd)
	v.c.img = img
	views := slices.Clone(v.c.views)
	v.c.mu.Unlock()
	for _, w := range views {
		select {
		case w.changed <- struct{}{}:
		default:
		}
	}
	return res, img.Index, nil
}

func (v *replView) ControllerID() int32 { return 0 }
func (v *replView) Close() error        { return nil }

// Incarnation is this node's, as the metadata has it.
func (v *replView) Incarnation() uint64 {
	v.c.mu.Lock()
	defer v.c.mu.Unlock()
	if n := v.c.img.Nodes[v.node]; n != nil {
		return n.Incarnation
	}
	return 0
}

// send is node from's SendPeer.
func (c *replCluster) send(from int32) func(to int32, kind uint8, payload []byte) bool {
	return func(to int32, kind uint8, payload []byte) bool {
		c.mu.Lock()
		b := c.brokers[to]
		c.mu.Unlock()
		if b == nil {
			return false
		}
		switch kind {
		case KindReplicaFetch:
			b.HandleReplicaFetch(from, slices.Clone(payload))
		case KindReplicaData:
			b.HandleReplicaData(from, slices.Clone(payload))
		default:
			return false
		}
		return true
	}
}

// open starts node id's Broker on fs and waits until it hosts topic's partition 0.
func (c *replCluster) open(t *testing.T, id int32, fs vfs.FS, topic string) *Broker {
	t.Helper()
	v := &replView{c: c, node: id, changed: make(chan struct{}, 1)}
	c.mu.Lock()
	c.views = append(c.views, v)
	c.mu.Unlock()
	b, err := Open(Options{NodeID: id, DataDir: "/data", FS: fs, CleanerDisabled: true, SendPeer: c.send(id),
		OpenStore: func() (MetadataStore, error) { return v, nil }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	c.mu.Lock()
	c.brokers[id] = b
	c.mu.Unlock()
	waitRepl(t, "the broker hosts the partition", func() bool {
		tp := b.Snapshot().Topics[topic]
		return tp != nil && tp.Replicas[0] != nil
	})
	return b
}

// replImage is nodes 0 and 1 and topic "r", whose one partition node 0 leads at leaderEpoch,
// both replicas in sync, min.insync.replicas 2.
func replImage(leaderEpoch int32) *meta.Image {
	img := meta.Empty()
	img.Index, img.ClusterID = 1, "replication-test"
	for id := int32(0); id < 2; id++ {
		img.Nodes[id] = &meta.Node{ID: id, Incarnation: 1}
	}
	img.NodeIDs = []int32{0, 1}
	img.Topics["r"] = &meta.Topic{Name: "r", ID: [16]byte{9, 9}, ReplicationFactor: 2, Configs: map[string]string{ConfigMinInsyncReplicas: "2"},
		Partitions: []meta.Partition{{Replicas: []int32{0, 1}, ISR: []int32{0, 1}, Leader: 0, LeaderEpoch: leaderEpoch, PartitionEpoch: 1}}}
	img.Names = []string{"r"}
	return img
}

// waitRepl polls cond until it holds, failing after waitTimeout.
func waitRepl(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(waitTimeout); !cond(); {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(2 * time.Millisecond) // polling a condition, with a deadline
	}
}

// produceAcksAll submits n acks=all batches of 3 records to r and waits for their answers.
func produceAcksAll(t *testing.T, r *Replica, n int) []AppendResult {
	t.Helper()
	c := newCollector()
	for i := 0; i < n; i++ {
		submitAcks(t, r, c, i, makeBatch(3, time.Now().UnixMilli(), 10), -1, 15000)
	}
	out := make([]AppendResult, n)
	for i := 0; i < n; i++ {
		d := c.next(t)
		out[d.slot] = d.res
	}
	return out
}

// TestReplBrokersAcksAll: two Brokers replicating over their peer messages: acks=all produce
// completes once the follower has the batches, and the follower ends byte-identical to the
// leader with its high watermark.
func TestReplBrokersAcksAll(t *testing.T) {
	c := newReplCluster(replImage(1))
	// The follower first: the leader's answers then always find it.
	b1 := c.open(t, 1, vfs.NewMem(), "r")
	b0 := c.open(t, 0, vfs.NewMem(), "r")
	leader := b0.Route("r", 0).Replica
	if leader == nil || !leader.IsLeader() {
		t.Fatal("node 0 does not lead r-0")
	}
	if rt := b1.Route("r", 0); rt.Code != errcode.NotLeaderOrFollower || rt.Leader != 0 {
		t.Fatalf("node 1's route: %+v", rt)
	}
	follower := b1.Snapshot().Topics["r"].Replicas[0]
	if follower.IsLeader() || !follower.Replicated() {
		t.Fatal("node 1's replica is not a follower")
	}
	results := produceAcksAll(t, leader, 20)
	for i, res := range results {
		if res.Err != nil || res.BaseOffset != int64(3*i) {
			t.Fatalf("batch %d: %+v, want offset %d", i, res, 3*i)
		}
	}
	if hw := leader.HighWatermark(); hw != 60 {
		t.Fatalf("leader high watermark %d after every ack, want 60", hw)
	}
	waitRepl(t, "the follower has the leader's high watermark", func() bool { return follower.HighWatermark() == 60 })
	sameLog(t, leader, follower)
	waitRepl(t, "the leader sees its follower at the log end", func() bool { return followerAt(leader, 1) == 60 })
}

// TestReplBrokersDivergedFollower: a follower Broker whose log diverged from its leader's (a
// tail in an epoch the leader never had) truncates where the leader's epochs say, keeps the cut
// batches, catches up and then commits acks=all produce with it.
func TestReplBrokersDivergedFollower(t *testing.T) {
	writeLog := func(fs vfs.FS, batches ...[]byte) {
		l, err := partition.Open(partition.Options{FS: fs, Dir: "/data/r-0", Now: fixedNow})
		if err != nil {
			t.Fatal(err)
		}
		if err := l.Append(batches); err != nil {
			t.Fatal(err)
		}
		if err := l.Sync(); err != nil {
			t.Fatal(err)
		}
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
	}
	leaderFS, followerFS := vfs.NewMem(), vfs.NewMem()
	writeLog(leaderFS, stamped(0, 0, 5), stamped(5, 2, 5))
	diverged := stamped(5, 1, 7)
	writeLog(followerFS, stamped(0, 0, 5), diverged)

	c := newReplCluster(replImage(3))
	b1 := c.open(t, 1, followerFS, "r")
	b0 := c.open(t, 0, leaderFS, "r")
	leader := b0.Route("r", 0).Replica
	follower := b1.Snapshot().Topics["r"].Replicas[0]
	waitRepl(t, "the follower truncated and caught up", func() bool {
		return follower.LogEndOffset() == 10 && leader.HighWatermark() == 10
	})
	names, err := followerFS.ReadDir("/data/r-0")
	if err != nil {
		t.Fatal(err)
	}
	var kept []string
	for _, n := range names {
		if _, ok := partition.IsDivergedFile(n); ok {
			kept = append(kept, n)
		}
	}
	if len(kept) != 1 || follower.log.DivergedBytes() != int64(len(diverged)) {
		t.Fatalf("diverged files %v, %d bytes cut; want one file of %d bytes", kept, follower.log.DivergedBytes(), len(diverged))
	}
	if st, err := followerFS.Stat(filepath.Join("/data/r-0", kept[0])); err != nil || st.Size() != int64(len(diverged)) {
		t.Fatalf("%s: %v %v", kept[0], st, err)
	}
	results := produceAcksAll(t, leader, 2)
	for i, res := range results {
		if res.Err != nil || res.BaseOffset != int64(10+3*i) {
			t.Fatalf("batch %d: %+v", i, res)
		}
	}
	waitRepl(t, "the follower has the new batches", func() bool { return follower.LogEndOffset() == 16 })
	sameLog(t, leader, follower)
	want := []partition.EpochEntry{{Epoch: 0, StartOffset: 0}, {Epoch: 2, StartOffset: 5}, {Epoch: 3, StartOffset: 10}}
	if got := follower.log.EpochEntries(); !slices.Equal(got, want) {
		t.Fatalf("follower epochs %v, want %v", got, want)
	}
	if _, err := follower.AppendReplicated(stamped(16, 3, 1), 2); !errors.Is(err, ErrStaleFetch) {
		t.Fatalf("an append fetched in an older epoch: %v", err)
	}
}
