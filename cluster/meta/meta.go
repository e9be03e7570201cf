// Package meta is the cluster's metadata: an immutable Image of nodes, topics and partition
// assignments, and the deterministic state machine that applies Commands to it. Every node
// applies the same commands in the same order (the controller's raft log) and so holds the same
// Image; nothing here does I/O, reads a clock or draws a random number.
//
// Every command carries what it expects (a topic id, a node's incarnation), so a command that is
// applied twice, or proposed from a stale view, changes nothing and reports why.
package meta

import "errors"

// NoLeader is the leader of a partition that has none (offline, or being elected).
const NoLeader int32 = -1

// Endpoint is an advertised listener address. Port 0: the node has no such listener.
type Endpoint struct {
	Host string `json:"host"`
	Port int32  `json:"port"`
}

// Node is one broker of the cluster as the controller knows it.
type Node struct {
	ID int32 `json:"id"`
	// Incarnation is the index of the node's latest registration: a restarted node registers
	// again and gets a new, larger one, so messages of its earlier life are told apart.
	Incarnation uint64 `json:"incarnation"`
	// Binary is the advertised address of the Thorstream binary protocol (clients and peers).
	Binary Endpoint `json:"binary"`
	// Kafka is the advertised address of the Kafka listener (Port 0: none).
	Kafka Endpoint `json:"kafka"`
	// Fenced nodes missed their heartbeats for the session timeout: they lead nothing until
	// they heartbeat again (or register anew).
	Fenced bool `json:"fenced"`
}

// Partition is one partition's assignment. Replicas[0] is the preferred leader.
type Partition struct {
	Replicas []int32 `json:"replicas"`
	ISR      []int32 `json:"isr"`
	Leader   int32   `json:"leader"` // NoLeader: offline
	// LeaderEpoch grows with every change of leader (and every re-registration of the leader).
	LeaderEpoch int32 `json:"leader_epoch"`
	// PartitionEpoch grows with every change of the partition's assignment, ISR or leader.
	PartitionEpoch int32 `json:"partition_epoch"`
}

// Topic is one topic.
type Topic struct {
	Name              string            `json:"name"`
	ID                [16]byte          `json:"id"`
	Internal          bool              `json:"internal,omitempty"`
	ReplicationFactor int16             `json:"replication_factor"`
	Configs           map[string]string `json:"configs,omitempty"` // topic-level overrides only
	Partitions        []Partition       `json:"partitions"`
}

// Image is the applied metadata at one index of the log. It is immutable: Apply returns a new
// Image sharing every unchanged topic and node with the old one.
type Image struct {
	// Index is the log index of the last applied command.
	Index     uint64 `json:"index"`
	ClusterID string `json:"cluster_id"`
	// Nodes by id; NodeIDs sorted.
	Nodes   map[int32]*Node `json:"-"`
	NodeIDs []int32         `json:"-"`
	// Topics by name; Names sorted.
	Topics map[string]*Topic `json:"-"`
	Names  []string          `json:"-"`
	// NextProducerID is the first producer id of the next block handed out.
	NextProducerID int64 `json:"next_producer_id"`
}

// Command is one change of the metadata. Exactly one field is set.
type Command struct {
	Init             *InitCluster      `json:"init,omitempty"`
	Register         *RegisterNode     `json:"register,omitempty"`
	Fence            *FenceNode        `json:"fence,omitempty"`
	Unfence          *UnfenceNode      `json:"unfence,omitempty"`
	CreateTopics     *CreateTopics     `json:"create_topics,omitempty"`
	DeleteTopic      *DeleteTopic      `json:"delete_topic,omitempty"`
	AlterConfigs     *AlterConfigs     `json:"alter_configs,omitempty"`
	CreatePartitions *CreatePartitions `json:"create_partitions,omitempty"`
	AllocProducerIDs *AllocProducerIDs `json:"alloc_producer_ids,omitempty"`
	AlterPartition   *AlterPartition   `json:"alter_partition,omitempty"`
}

// InitCluster names the cluster. Applied only while the image has no cluster id (the first
// controller proposes it); later ones change nothing.
type InitCluster struct {
	ClusterID string `json:"cluster_id"`
	// NextProducerID starts the producer-id allocator (above every id a single node's data
	// directory handed out before it joined a cluster).
	NextProducerID int64 `json:"next_producer_id,omitempty"`
}

// RegisterNode is a node starting: it gets Incarnation = the command's index, is unfenced, its
// endpoints are recorded, and it leaves the ISR of every replicated partition it is not the last
// in-sync member of (its log may have lost an unsynced tail, or the disk, in a crash: it rejoins
// once it has caught up), the leadership of those it led going to the next live ISR member. It
// takes back the leadership of its partitions that have no leader and whose ISR still holds it
// (and of those it still leads, with the leader epoch bumped).
type RegisterNode struct {
	ID     int32    `json:"id"`
	Binary Endpoint `json:"binary"`
	Kafka  Endpoint `json:"kafka"`
	// ClusterID names the cluster if it has no name yet (as InitCluster), so the cluster has
	// its id from its first registration on, whichever command the first controller commits
	// first.
	ClusterID string `json:"cluster_id,omitempty"`
}

// FenceNode fences a node that missed its heartbeats, if its incarnation is still Incarnation:
// every partition it leads gets a new leader from the rest of its ISR (none left: NoLeader), the
// leader epoch bumped; it leaves every ISR it is not the last member of.
type FenceNode struct {
	ID          int32  `json:"id"`
	Incarnation uint64 `json:"incarnation"`
}

// UnfenceNode unfences a fenced node that heartbeats again with incarnation Incarnation: it takes
// back the leadership of its partitions that have no leader.
type UnfenceNode struct {
	ID          int32  `json:"id"`
	Incarnation uint64 `json:"incarnation"`
}

// NewTopic is one topic of CreateTopics. The proposer validated the name and configs and drew the
// id; the state machine places the replicas over the unfenced nodes.
type NewTopic struct {
	Name              string            `json:"name"`
	ID                [16]byte          `json:"id"`
	Partitions        int32             `json:"partitions"`
	ReplicationFactor int16             `json:"replication_factor"`
	Internal          bool              `json:"internal,omitempty"`
	Configs           map[string]string `json:"configs,omitempty"`
}

// CreateTopics creates topics; each succeeds or fails on its own (Result.Codes, one per topic).
type CreateTopics struct {
	Topics []NewTopic `json:"topics"`
}

// DeleteTopic deletes a topic if its id is still ID.
type DeleteTopic struct {
	Name string   `json:"name"`
	ID   [16]byte `json:"id"`
}

// AlterConfigs replaces a topic's overrides (the whole set) if its id is still ID.
type AlterConfigs struct {
	Name    string            `json:"name"`
	ID      [16]byte          `json:"id"`
	Configs map[string]string `json:"configs"`
}

// CreatePartitions raises a topic's partition count to Count, if its id is still ID and it has
// exactly From partitions (From < Count); the new partitions are placed like a new topic's.
type CreatePartitions struct {
	Name  string   `json:"name"`
	ID    [16]byte `json:"id"`
	From  int32    `json:"from"`
	Count int32    `json:"count"`
}

// AllocProducerIDs hands node Node the block [Result.ProducerIDStart, +Count).
type AllocProducerIDs struct {
	Node  int32 `json:"node"`
	Count int64 `json:"count"`
}

// AlterPartition is a partition leader's change of its ISR (Kafka's AlterPartition), applied if
// the partition is still led by Leader in LeaderEpoch at PartitionEpoch (a deposed leader, or the
// same command applied twice, changes nothing), the new ISR holds the leader and replicas only,
// each once, the leader is live at the incarnation its ISRMember names, and every member the ISR
// gains is live at the incarnation the leader saw it at (a fenced node, or one that restarted
// since, cannot rejoin). Members it keeps or drops are not checked: a shrink is always allowed.
// The ISR is recorded in replica order and the partition epoch bumped (Result.PartitionEpoch);
// the leader and its epoch stay.
type AlterPartition struct {
	Topic          string      `json:"topic"`
	ID             [16]byte    `json:"id"`
	Partition      int32       `json:"partition"`
	Leader         int32       `json:"leader"`
	LeaderEpoch    int32       `json:"leader_epoch"`
	PartitionEpoch int32       `json:"partition_epoch"`
	ISR            []ISRMember `json:"isr"`
}

// ISRMember is one member of a proposed ISR: a node and the incarnation the leader saw it at.
type ISRMember struct {
	ID          int32  `json:"id"`
	Incarnation uint64 `json:"incarnation"`
}

// Result is what applying one command did. Codes are Kafka error codes (0: done).
type Result struct {
	// Code is the command's outcome; for CreateTopics, Codes has one per topic and Code is 0.
	Code    int16   `json:"code,omitempty"`
	Message string  `json:"message,omitempty"`
	Codes   []int16 `json:"codes,omitempty"`
	// Messages parallel Codes.
	Messages []string `json:"messages,omitempty"`
	// ProducerIDStart is the first id of an AllocProducerIDs block.
	ProducerIDStart int64 `json:"producer_id_start,omitempty"`
	// Incarnation is a RegisterNode's new incarnation.
	Incarnation uint64 `json:"incarnation,omitempty"`
	// PartitionEpoch is the partition epoch after an AlterPartition that applied or found the
	// ISR already as asked.
	PartitionEpoch int32 `json:"partition_epoch,omitempty"`
}

// ErrBadCommand is a command that does not decode or has no field set.
var ErrBadCommand = errors.New("meta: bad command")
