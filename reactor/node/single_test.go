package node_test

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/thorstream/thorstream/cluster"
	"github.com/thorstream/thorstream/groups"
	"github.com/thorstream/thorstream/reactor/node"
)

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// A single node's data directory holds topics the cluster's metadata does not know: a node of a
// cluster refuses it before the controller writes anything there.
func TestSingleNodeDataDirectoryIsRefusedByAClusterNode(t *testing.T) {
	dir := t.TempDir()
	n, err := node.Start(node.Config{DataDir: dir, Addr: freeAddr(t), Groups: groups.DefaultConfig()})
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Broker.CreateTopic(cluster.TopicSpec{Name: "solo", Partitions: 2, ReplicationFactor: -1}, false); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := n.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	_, err = node.Start(node.Config{DataDir: dir, Addr: freeAddr(t), Peers: map[int32]string{1: freeAddr(t), 2: freeAddr(t)}, Groups: groups.DefaultConfig()})
	if err == nil || !strings.Contains(err.Error(), "holds the topics of a single node") {
		t.Fatalf("a cluster node on a single node's directory started, or failed otherwise: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "controller")); !os.IsNotExist(err) {
		t.Fatalf("the refused start left a controller directory: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "solo-1")); err != nil {
		t.Fatalf("the single node's partition is gone: %v", err)
	}
}
