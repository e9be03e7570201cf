// Package client is the Go client of Thorstream's binary protocol v1 (codec/proto): an admin
// API, a batching Producer and a Consumer, over plain net.Conn.
//
// # Connections
//
// A Client keeps one connection per broker for produce and admin requests, and a second one for
// fetches: the broker answers each connection in request order, so a Fetch held in a long poll
// would otherwise delay everything queued behind it. Each connection is pipelined: callers write requests
// under the connection's write lock and go on, a reader goroutine reads responses and matches them
// to requests by correlation id. The broker answers in request order, so in-flight requests form a
// FIFO and the reader only checks that the id at its head matches. A broken connection fails every
// request in flight on it; the next request dials again.
//
// # Metadata and routing
//
// The Client bootstraps from the first reachable address of Options.Brokers and caches Metadata
// answers: the brokers' addresses and every topic's partitions and leaders. Partition requests
// (Produce, Fetch, ListOffsets) go to the partition's leader. NOT_LEADER_OR_FOLLOWER carries a
// leader hint that updates the cache at once; without a hint, and on
// UNKNOWN_TOPIC_OR_PARTITION or LEADER_NOT_AVAILABLE, the topic is marked stale and reloaded by the
// next request that needs it. Entries older than Options.MetadataMaxAge are reloaded too.
//
// # Errors
//
// An error code from the broker, per partition or in a response header, is returned as an
// *errcode.Error wrapped with the broker's address ("broker 127.0.0.1:9092: NOT_LEADER_OR_FOLLOWER:
// …"), so errcode.Of and errors.Is(err, &errcode.Error{Code: c}) work. A failed or timed-out
// connection is reported the same way, as NETWORK_EXCEPTION or REQUEST_TIMED_OUT.
//
// # Consumer groups
//
// A Consumer with ConsumerOptions.Group that subscribes is a member of that consumer group, with
// Kafka's classic protocol, so it shares groups with Kafka consumers on the broker's Kafka
// listener and Kafka's tools describe them. The group's coordinator is the leader of the group's
// partition of __consumer_offsets (Kafka's placement). Poll joins the group (JoinGroup,
// SyncGroup); the member the coordinator makes leader assigns every member's subscription with
// Kafka's range assignor, and writes the assignments in Kafka's ConsumerProtocolAssignment
// format. A goroutine per member heartbeats every HeartbeatInterval (3 s by default, as Kafka clients). When another
// member joins or leaves, or the coordinator removed this one (its session expired), the next
// Poll rejoins: rebalances are eager, so every partition is revoked first (AutoCommit commits
// their positions, then OnRevoke runs) and the new assignment starts at the group's committed
// offsets — but for partitions the member keeps from the generation just before, which keep
// their positions. Records read since the last commit of a partition that moves are read again
// by its next owner. Commit and CommitOffsets commit as the member of its generation. Close
// leaves the group, so the others take its partitions over at once (a static member, with
// InstanceID, keeps its place until its session expires, and gets it back without a rebalance
// when it restarts in time).
//
// # Lock order
//
// Client.refreshMu → brokerConn.writeMu → wire.mu; brokerConn.writeMu → Producer.mu → Client.mu
// (a write that fails completes its calls under writeMu, and the producer's completion takes its
// own lock, then updates routing); Consumer.mu → membership.mu. Nothing takes Client.mu or
// membership.mu and then another lock; nothing holds a lock while calling user callbacks.
package client
