package node_test

import (
	"testing"

	"github.com/thorstream/thorstream/reactor/node/nodetest"
)

// TestClusterWithSecretElectsAndCreates: nodes that share a cluster secret prove their peer
// connections with it, elect a controller, register and create a topic, and refuse none of
// each other's connections.
func TestClusterWithSecretElectsAndCreates(t *testing.T) {
	c := nodetest.Start(t, nodetest.Options{ClusterSecret: "a secret the three nodes share"})
	c.Controller(wait)
	waitRegistered(t, c, 3)
	createTopic(t, c, 1, "secret-orders", 3)
	c.Eventually(wait, "every node to see the topic", func() bool {
		for _, id := range c.Running() {
			if len(leadersOf(c, id, "secret-orders")) != 3 {
				return false
			}
		}
		return true
	})
	for _, id := range c.Running() {
		if n := c.Node(id).Server.PeerRefused(); n != 0 {
			t.Errorf("node %d refused %d peer connections", id, n)
		}
	}
}
