// Package bench holds end-to-end benchmarks of the broker: a real cluster.Broker, request core
// and gnet reactor in the test process, listening on loopback, data on the OS filesystem, driven
// by the Go client. The figures and how to read them are in docs/BENCHMARKS.md.
//
// This file is the harness (a broker started the way cmd/thorstream starts one); the benchmarks
// are in the *_timing_test.go files.
package bench

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/thorstream/thorstream/cluster"
	"github.com/thorstream/thorstream/groups"
	"github.com/thorstream/thorstream/reactor"
	"github.com/thorstream/thorstream/reactor/core"
	"github.com/thorstream/thorstream/reactor/node"
)

// Options configures a Broker. Zero fields take the documented defaults.
type Options struct {
	// DataDir is where logs and metadata live. Required.
	DataDir string
	// Fsync is the broker's fsync policy; the zero value is cluster.FsyncAlways.
	Fsync cluster.FsyncPolicy
	// Loops is the number of event loops. Default 2.
	Loops int
	// Kafka also serves the Kafka protocol (kafka.Server, as cmd/thorstream does with
	// THORSTREAM_KAFKA_ADDR) on a second free loopback port, Broker.KafkaAddr.
	Kafka bool
	// Groups configures the group coordinator; nil: groups.DefaultConfig without the initial
	// rebalance delay, so a benchmark's groups start at once.
	Groups *groups.Config
}

// Broker is a broker running in this process on a free loopback port.
type Broker struct {
	// Addr is the host:port the broker listens on and advertises.
	Addr string
	// KafkaAddr is the host:port of the Kafka listener, which it also advertises; empty unless
	// Options.Kafka was set.
	KafkaAddr string
	Cluster   *cluster.Broker
	Server    *core.Server
	// Coordinator is the group coordinator both listeners share.
	Coordinator *groups.Coordinator

	node *node.Node
}

// startAttempts bounds the retries when the free port found is taken before the reactor binds
// it (another process raced us to it).
const startAttempts = 5

// Start opens a broker under o.DataDir and starts its reactor on a free 127.0.0.1 port (and,
// with o.Kafka, its Kafka listener on another). It returns once the listeners accept
// connections.
func Start(o Options) (*Broker, error) {
	if o.DataDir == "" {
		return nil, errors.New("bench: no data directory")
	}
	if o.Loops <= 0 {
		o.Loops = 2
	}
	cfg := groups.DefaultConfig()
	cfg.InitialRebalanceDelay = 0
	if o.Groups != nil {
		cfg = *o.Groups
	}
	var lastErr error
	for range startAttempts {
		ports := 1
		if o.Kafka {
			ports = 2
		}
		addrs, err := freeLoopbackAddrs(ports)
		if err != nil {
			return nil, err
		}
		addr, kafkaAddr := addrs[0], ""
		if o.Kafka {
			kafkaAddr = addrs[1]
		}
		// The same assembly as cmd/thorstream's.
		n, err := node.Start(node.Config{
			DataDir:    o.DataDir,
			Addr:       addr,
			Advertised: addr,
			KafkaAddr:  kafkaAddr,
			Broker:     cluster.Options{Fsync: o.Fsync},
			Reactor:    reactor.Options{Loops: o.Loops},
			Groups:     cfg,
		})
		if err != nil {
			if errors.Is(err, cluster.ErrDataDirInUse) {
				return nil, err
			}
			lastErr = err
			continue
		}
		return &Broker{Addr: addr, KafkaAddr: kafkaAddr, Cluster: n.Broker, Server: n.Server, Coordinator: n.Coordinator, node: n}, nil
	}
	return nil, fmt.Errorf("bench: starting the broker: %w", lastErr)
}

// freeLoopbackAddrs returns n distinct 127.0.0.1 ports that were free a moment ago. gnet does
// not report the port it bound for ":0", so the ports are found first and handed to the
// reactor. Every listener stays open until all n are found, so the ports differ.
func freeLoopbackAddrs(n int) ([]string, error) {
	addrs := make([]string, 0, n)
	listeners := make([]net.Listener, 0, n)
	defer func() {
		for _, l := range listeners {
			_ = l.Close()
		}
	}()
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("bench: finding a free port: %w", err)
		}
		listeners = append(listeners, l)
		port := l.Addr().(*net.TCPAddr).Port
		addrs = append(addrs, net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	}
	return addrs, nil
}

// Close stops the reactor (closing every connection) and then the partitions, which sync and
// close their logs.
func (b *Broker) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return b.node.Stop(ctx)
}

// CreateTopic creates a topic of partitions partitions, replication factor 1.
func (b *Broker) CreateTopic(name string, partitions int32) error {
	return b.Cluster.CreateTopic(cluster.TopicSpec{Name: name, Partitions: partitions, ReplicationFactor: 1}, false)
}
