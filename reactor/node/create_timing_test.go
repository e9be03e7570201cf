package node_test

import (
	"strconv"
	"testing"

	"github.com/thorstream/thorstream/cluster"
	"github.com/thorstream/thorstream/reactor/node/nodetest"
)

// BenchmarkClusterCreateTopic creates one-partition topics one request at a time through a
// node that is not the controller of a three-node in-process cluster, on top of 3,000 topics
// created first: the proposal's round trip through raft (forwarded, committed, fsynced on a
// majority) and every node's reconciliation of the larger metadata.
func BenchmarkClusterCreateTopic(b *testing.B) {
	c := nodetest.Start(b, nodetest.Options{})
	ctrl := c.Controller(wait)
	waitRegistered(b, c, 3)
	via := (ctrl + 1) % 3
	for k := range 30 {
		specs := make([]cluster.TopicSpec, 100)
		for i := range specs {
			specs[i] = cluster.TopicSpec{Name: "base-" + strconv.Itoa(k*100+i), Partitions: 1, ReplicationFactor: 1}
		}
		for _, err := range c.Node(ctrl).Broker.CreateTopics(specs, false) {
			if err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		if err := c.Node(via).Broker.CreateTopic(cluster.TopicSpec{Name: "bench-" + strconv.Itoa(i), Partitions: 1, ReplicationFactor: 1}, false); err != nil {
			b.Fatal(err)
		}
	}
}
