package kafka

import (
	"testing"

	"github.com/thorstream/thorstream/reactor/core"
	"github.com/thorstream/thorstream/reactor/internal/fakemeta"
)

// newClusterEnv is a Kafka server on node fakemeta.Self of the fakemeta.Cluster image: it leads
// partition 0 of fakemeta.Topic, nodes 2 and 0 lead partitions 1 and 3, and partition 2 has no
// leader. The store is returned so a test can publish later images.
func newClusterEnv(t *testing.T) (*env, *fakemeta.Store) {
	t.Helper()
	store := fakemeta.NewStore(fakemeta.Cluster(), fakemeta.Controller)
	b := fakemeta.Open(t, fakemeta.Self, store)
	s, err := NewServer(Options{Broker: b, AdvertisedAddr: "broker.local:9092"})
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, broker: b, server: s, tr: newFakeTransport()}
	e.sess = core.NewSession(e.tr, core.Limits{})
	return e, store
}
