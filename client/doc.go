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
// # Lock order
//
// Client.refreshMu → brokerConn.writeMu → wire.mu; brokerConn.writeMu → Producer.mu → Client.mu
// (a write that fails completes its calls under writeMu, and the producer's completion takes its
// own lock, then updates routing). Nothing takes Client.mu and then another lock; nothing holds a
// lock while calling user callbacks.
package client
