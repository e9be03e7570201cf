package kafka

import (
	"testing"

	"github.com/thorstream/thorstream/cluster/clustertest"
	"github.com/thorstream/thorstream/reactor/core"
)

// newClusterEnv is a Kafka server on node clustertest.Self of the clustertest.Cluster image: it leads
// partition 0 of clustertest.Routed, nodes 2 and 0 lead partitions 1 and 3, and partition 2 has no
// leader. The store is returned so a test can publish later images.
func newClusterEnv(t *testing.T) (*env, *clustertest.Store) {
	t.Helper()
	store := clustertest.Fixed(clustertest.Cluster(), clustertest.Controller)
	b := clustertest.Open(t, clustertest.Self, store)
	s, err := NewServer(Options{Broker: b, AdvertisedAddr: "broker.local:9092"})
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, broker: b, server: s, tr: newFakeTransport()}
	e.sess = core.NewSession(e.tr, core.Limits{})
	return e, store
}
