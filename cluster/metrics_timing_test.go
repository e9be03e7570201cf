package cluster

import (
	"testing"

	"github.com/thorstream/thorstream/log/partition"
	"github.com/thorstream/thorstream/log/vfs"
)

// BenchmarkReplicaMetrics is what the storage metrics cost a partition writer per group commit
// of one request with one batch of 100 records, synced: the inbox stamp, the topic's bytes and
// records, the group commit histogram, the sync count and histogram and the fsync wait. One op
// is one group.
func BenchmarkReplicaMetrics(b *testing.B) {
	log, err := partition.Open(partition.Options{FS: vfs.NewMem(), Dir: "/p", Now: fixedNow})
	if err != nil {
		b.Fatal(err)
	}
	defer log.Close()
	r := &Replica{metrics: NewMetrics().forReplica("t", log)}
	req := &AppendRequest{Records: makeBatch(100, testNow.UnixMilli(), 10)}
	r.group = []*AppendRequest{req}
	r.results = []AppendResult{{}}
	r.iovecs = [][]byte{req.Records}
	b.ReportAllocs()
	for range b.N {
		r.noteQueued(req)
		r.noteAppended()
		start := r.syncClock()
		r.noteSynced(start, true)
	}
}
