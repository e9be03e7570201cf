// Package node assembles one Thorstream node: the log and its replicas (cluster.Broker), the
// controller and peer connections when the node is one of a cluster, the group coordinator,
// the request cores of both protocols and the event loops. cmd/thorstream, the benchmarks and
// the in-process cluster tests all start nodes here, so every one of them runs the same
// assembly.
package node

import (
	"context"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"slices"
	"strconv"
	"time"

	"go.uber.org/zap"

	"github.com/thorstream/thorstream/cluster"
	"github.com/thorstream/thorstream/cluster/controller"
	"github.com/thorstream/thorstream/cluster/meta"
	"github.com/thorstream/thorstream/codec/proto"
	"github.com/thorstream/thorstream/groups"
	"github.com/thorstream/thorstream/groups/offsetslog"
	"github.com/thorstream/thorstream/reactor"
	"github.com/thorstream/thorstream/reactor/core"
	"github.com/thorstream/thorstream/reactor/kafka"
	"github.com/thorstream/thorstream/reactor/peer"
)

// Config is one node's assembly. Broker, Reactor and Groups carry every other setting; the
// fields here override theirs where both name a thing (node id, data directory, addresses).
type Config struct {
	NodeID  int32
	DataDir string
	// Addr is the binary-protocol listener (clients and peers); Advertised what clients and
	// peers are told (default: Addr with 0.0.0.0 replaced by a reachable address).
	Addr, Advertised string
	// KafkaAddr is the Kafka listener (empty: none); KafkaAdvertised as Advertised.
	KafkaAddr, KafkaAdvertised string
	// Peers are the other nodes' binary-protocol addresses by node id; empty: a single node.
	Peers map[int32]string
	// ClusterSecret proves the peer connections (reactor/peer, auth.go): the same on every
	// node; empty: peers are known by their addresses only.
	ClusterSecret string
	// Controller timing (zero: the controller's defaults).
	HeartbeatInterval, SessionTimeout time.Duration
	TickInterval                      time.Duration
	ElectionTicks                     int
	SnapshotEntries                   uint64

	Broker  cluster.Options
	Reactor reactor.Options
	Groups  groups.Config
	// Network are the request metrics of both protocols (nil: none).
	Network *core.Metrics
	Logger  *zap.Logger

	// WrapSend, when set, wraps the peer transport's Send (tests drop, delay and partition
	// messages with it).
	WrapSend func(send func(to int32, kind uint8, payload []byte) bool) func(to int32, kind uint8, payload []byte) bool

	// AfterBroker runs once the replicas are open, before anything serves (metrics, readiness).
	AfterBroker func(*cluster.Broker)
	// AfterGroups runs once the coordinator has started.
	AfterGroups func(*groups.Coordinator, *cluster.Broker)
}

// Node is a running node.
type Node struct {
	Broker      *cluster.Broker
	Coordinator *groups.Coordinator
	Server      *core.Server
	Engine      *reactor.Reactor
	// Controller and Peers are nil on a single node.
	Controller *controller.Controller
	Peers      *peer.Peers

	Addr, Advertised           string
	KafkaAddr, KafkaAdvertised string
	logger                     *zap.Logger
}

// Start assembles and starts a node; it returns once every listener accepts connections.
func Start(cfg Config) (*Node, error) {
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	n := &Node{Addr: cfg.Addr, KafkaAddr: cfg.KafkaAddr, logger: cfg.Logger}
	var err error
	if n.Advertised = cfg.Advertised; n.Advertised == "" {
		if n.Advertised, err = reactor.AdvertisedAddr(cfg.Addr); err != nil {
			return nil, fmt.Errorf("advertised address: %w", err)
		}
	}
	if cfg.KafkaAddr != "" {
		if n.KafkaAdvertised = cfg.KafkaAdvertised; n.KafkaAdvertised == "" {
			if n.KafkaAdvertised, err = reactor.AdvertisedAddr(cfg.KafkaAddr); err != nil {
				return nil, fmt.Errorf("kafka advertised address: %w", err)
			}
		}
	}
	bo := cfg.Broker
	bo.NodeID, bo.DataDir, bo.Logger = cfg.NodeID, cfg.DataDir, cfg.Logger
	if bo.Binary, err = endpoint(n.Advertised); err != nil {
		return nil, err
	}
	if n.KafkaAdvertised != "" {
		if bo.Kafka, err = endpoint(n.KafkaAdvertised); err != nil {
			return nil, err
		}
	}
	var ctrl *controller.Controller
	if len(cfg.Peers) > 0 {
		n.Peers = peer.New(peer.Options{Self: cfg.NodeID, Peers: cfg.Peers, Secret: cfg.ClusterSecret, Logger: cfg.Logger.Named("peer")})
		voters := []int32{cfg.NodeID}
		for id := range cfg.Peers {
			voters = append(voters, id)
		}
		slices.Sort(voters)
		send := n.Peers.Send
		if cfg.WrapSend != nil {
			send = cfg.WrapSend(send)
		}
		bo.SendPeer = send
		if bo.DefaultReplicationFactor == 0 {
			bo.DefaultReplicationFactor = int16(min(3, len(voters)))
		}
		if bo.Defaults == (cluster.Defaults{}) {
			bo.Defaults = cluster.DefaultDefaults
		}
		if bo.Defaults.MinInsyncReplicas == 0 && len(voters) >= 3 {
			// Kafka's advice for a replication factor of three: an acks=all write is on two
			// nodes at least, and one node may be down.
			bo.Defaults.MinInsyncReplicas = 2
		}
		bo.OpenStore = func() (cluster.MetadataStore, error) {
			c, err := controller.Start(controller.Options{
				NodeID:            cfg.NodeID,
				Voters:            voters,
				Dir:               filepath.Join(cfg.DataDir, "controller"),
				Binary:            bo.Binary,
				Kafka:             bo.Kafka,
				HeartbeatInterval: cfg.HeartbeatInterval,
				SessionTimeout:    cfg.SessionTimeout,
				TickInterval:      cfg.TickInterval,
				ElectionTicks:     cfg.ElectionTicks,
				SnapshotEntries:   cfg.SnapshotEntries,
				Send:              send,
				Logger:            cfg.Logger,
			})
			ctrl = c
			return c, err
		}
	}
	broker, err := cluster.Open(bo)
	if err != nil {
		if n.Peers != nil {
			n.Peers.Close()
		}
		return nil, err
	}
	n.Broker, n.Controller = broker, ctrl
	if cfg.AfterBroker != nil {
		cfg.AfterBroker(broker)
	}
	coord, err := offsetslog.Start(broker, cfg.Groups, offsetslog.Options{Logger: cfg.Logger})
	if err != nil {
		n.closeBroker()
		return nil, err
	}
	n.Coordinator = coord
	if cfg.AfterGroups != nil {
		cfg.AfterGroups(coord, broker)
	}
	listeners := []proto.BrokerListener{{Name: "binary", Address: cfg.Addr, Advertised: n.Advertised}}
	if cfg.KafkaAddr != "" {
		listeners = append(listeners, proto.BrokerListener{Name: "kafka", Address: cfg.KafkaAddr, Advertised: n.KafkaAdvertised})
	}
	co := core.Options{Broker: broker, Coordinator: coord, Metrics: cfg.Network, AdvertisedAddr: n.Advertised, Logger: cfg.Logger, Listeners: listeners}
	if ctrl != nil {
		handle := func(from int32, kind uint8, payload []byte) {
			switch kind {
			case cluster.KindReplicaFetch:
				broker.HandleReplicaFetch(from, payload)
			case cluster.KindReplicaData:
				broker.HandleReplicaData(from, payload)
			default:
				ctrl.HandlePeer(from, kind, payload)
			}
		}
		co.PeerHandler, co.PeerAdmit = n.Peers.Inbound(handle), n.Peers.Admit
	}
	server, err := core.NewServer(co)
	if err != nil {
		n.closeBroker()
		return nil, err
	}
	n.Server = server
	var kafkaServer reactor.Handler
	if cfg.KafkaAddr != "" {
		ks, err := kafka.NewServer(kafka.Options{Broker: broker, Coordinator: coord, AdvertisedAddr: n.KafkaAdvertised, Logger: cfg.Logger, Metrics: cfg.Network})
		if err != nil {
			n.closeBroker()
			return nil, err
		}
		kafkaServer = ks
	}
	ro := cfg.Reactor
	ro.Addr, ro.KafkaAddr, ro.Logger = cfg.Addr, cfg.KafkaAddr, cfg.Logger
	engine := reactor.New(ro, server, kafkaServer)
	if err := engine.Start(); err != nil {
		n.closeBroker()
		return nil, err
	}
	n.Engine = engine
	if n.Peers != nil {
		n.Peers.Start(engine)
	}
	return n, nil
}

// endpoint splits an advertised host:port.
func endpoint(addr string) (meta.Endpoint, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return meta.Endpoint{}, fmt.Errorf("advertised address %q: %w", addr, err)
	}
	p, err := strconv.Atoi(port)
	if err != nil {
		return meta.Endpoint{}, fmt.Errorf("advertised address %q: bad port", addr)
	}
	return meta.Endpoint{Host: host, Port: int32(p)}, nil
}

// Done is closed when the network engine has stopped (Engine.Err says why, if not asked to).
func (n *Node) Done() <-chan struct{} { return n.Engine.Done() }

// Stop has the node fenced (a controlled shutdown, up to 3 s), stops accepting and closes every
// connection (waiting up to ctx), then the peer
// connections, the coordinator and the partitions, which answer what they accepted, sync and
// close; the controller stops last.
func (n *Node) Stop(ctx context.Context) error {
	if n.Controller != nil {
		// A controlled shutdown: the cluster learns at once that this node leads nothing.
		sctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		if err := n.Controller.Shutdown(sctx); err != nil {
			n.logger.Warn("the controller did not take this node's shutdown: the others fence it after the session timeout", zap.Error(err))
		}
		cancel()
	}
	if err := n.Engine.Stop(ctx); err != nil {
		n.logger.Warn("stopping the network engine", zap.Error(err))
	}
	if err := n.closeBroker(); err != nil {
		return fmt.Errorf("closing partitions: %w", err)
	}
	return nil
}

// Kill stops the node as abruptly as one process allows, as a crash would: no controlled
// shutdown (the cluster fences the node after the session timeout), the network engine stopped
// at once, then the peer connections, the coordinator, the partitions and the controller closed.
func (n *Node) Kill(ctx context.Context) error {
	err := n.Engine.Stop(ctx)
	return errors.Join(err, n.closeBroker())
}

func (n *Node) closeBroker() error {
	if n.Peers != nil {
		n.Peers.Close()
	}
	if n.Coordinator != nil {
		n.Coordinator.Close()
	}
	if n.Broker != nil {
		return n.Broker.Close()
	}
	return nil
}
