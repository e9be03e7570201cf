package proto

// Replication payloads of the Peer request (key 20). A follower asks the leader of its
// partitions for their records with a ReplicaFetch; the leader answers with a ReplicaData, sent
// as a Peer request of its own over its connection to the follower (a Peer request is never
// answered on the connection it came in on). Both are one-way: the answer echoes the fetch's
// fetchId, and a follower that has no answer in time sends its fetch again.
//
// ReplicaFetch (kind 3), follower to leader:
//
//	fetchId int64 | replicaId int32 | incarnation int64 | maxWaitMs int32 | minBytes int32 | maxBytes int32 |
//	partitions [ topic string | topicId [16]byte | partition int32 | currentLeaderEpoch int32 |
//	             fetchOffset int64 | lastFetchedEpoch int32 | durableEnd int64 | logStartOffset int64 |
//	             partitionMaxBytes int32 ]
//
// replicaId and incarnation name the follower; fetchOffset is its log end, lastFetchedEpoch the
// leader epoch of its last batch, durableEnd how far its log is fsynced and logStartOffset its
// log start. The leader answers once minBytes are available or maxWaitMs has passed, as Fetch
// does.
//
// ReplicaData (kind 4), leader to follower:
//
//	fetchId int64 | errorCode int16 |
//	partitions [ topic string | topicId [16]byte | partition int32 | errorCode int16 |
//	             highWatermark int64 | logStartOffset int64 | logEndOffset int64 |
//	             divergingEpoch int32 | divergingEndOffset int64 | records bytes ]
//
// The first errorCode concerns the whole fetch (the leader is stopping, say); each partition has
// its own. divergingEpoch and divergingEndOffset tell a follower whose log has diverged where to
// truncate to (-1 when it has not). records comes last in each partition, so the leader reads
// stored batches straight into the message after AppendReplicaDataPartitionHead.
//
// A topicId is 16 raw bytes, not a length-prefixed field.

// Peer request kinds of the replication messages (0 hello, 1 raft and 2 heartbeat are defined
// by the code that sends them).
const (
	// PeerKindReplicaFetch is a ReplicaFetchRequest, from a follower to a leader.
	PeerKindReplicaFetch int8 = 3
	// PeerKindReplicaData is a ReplicaDataResponse, from a leader to a follower.
	PeerKindReplicaData int8 = 4
)

// TopicIDLen is the bytes of a topic id.
const TopicIDLen = 16

// The fewest bytes an element of each array can take, which bounds what a lying count makes
// the decoders allocate.
const (
	replicaFetchPartitionMinLen = 2 + TopicIDLen + 4 + 4 + 8 + 4 + 8 + 8 + 4
	replicaDataPartitionMinLen  = 2 + TopicIDLen + 4 + 2 + 8 + 8 + 8 + 4 + 8 + 4
)

// ReplicaFetchRequest is a decoded ReplicaFetch payload.
type ReplicaFetchRequest struct {
	FetchID     int64
	ReplicaID   int32
	Incarnation int64
	MaxWaitMs   int32
	MinBytes    int32
	MaxBytes    int32
	Partitions  []ReplicaFetchPartition
}

// ReplicaFetchPartition asks for one partition from the follower's log end.
type ReplicaFetchPartition struct {
	Topic              string
	TopicID            [16]byte
	Partition          int32
	CurrentLeaderEpoch int32
	FetchOffset        int64
	LastFetchedEpoch   int32
	DurableEnd         int64
	LogStartOffset     int64
	PartitionMaxBytes  int32
}

// ReadFrom decodes a ReplicaFetch payload, reusing v's slices and, where they are unchanged, its
// topic names.
func (v *ReplicaFetchRequest) ReadFrom(payload []byte) error {
	r := NewReader(payload)
	v.FetchID = r.Int64()
	v.ReplicaID = r.Int32()
	v.Incarnation = r.Int64()
	v.MaxWaitMs = r.Int32()
	v.MinBytes = r.Int32()
	v.MaxBytes = r.Int32()
	v.Partitions = growSlice(v.Partitions, max(r.ArrayLen(replicaFetchPartitionMinLen), 0))
	prev := ""
	for i := range v.Partitions {
		p := &v.Partitions[i]
		p.Topic = readTopic(&r, p.Topic, prev)
		prev = p.Topic
		readTopicID(&r, &p.TopicID)
		p.Partition = r.Int32()
		p.CurrentLeaderEpoch = r.Int32()
		p.FetchOffset = r.Int64()
		p.LastFetchedEpoch = r.Int32()
		p.DurableEnd = r.Int64()
		p.LogStartOffset = r.Int64()
		p.PartitionMaxBytes = r.Int32()
	}
	return r.Complete()
}

// AppendTo encodes the payload.
func (v *ReplicaFetchRequest) AppendTo(dst []byte) []byte {
	dst = AppendInt64(dst, v.FetchID)
	dst = AppendInt32(dst, v.ReplicaID)
	dst = AppendInt64(dst, v.Incarnation)
	dst = AppendInt32(dst, v.MaxWaitMs)
	dst = AppendInt32(dst, v.MinBytes)
	dst = AppendInt32(dst, v.MaxBytes)
	dst = AppendArrayLen(dst, len(v.Partitions))
	for i := range v.Partitions {
		p := &v.Partitions[i]
		dst = AppendString(dst, p.Topic)
		dst = append(dst, p.TopicID[:]...)
		dst = AppendInt32(dst, p.Partition)
		dst = AppendInt32(dst, p.CurrentLeaderEpoch)
		dst = AppendInt64(dst, p.FetchOffset)
		dst = AppendInt32(dst, p.LastFetchedEpoch)
		dst = AppendInt64(dst, p.DurableEnd)
		dst = AppendInt64(dst, p.LogStartOffset)
		dst = AppendInt32(dst, p.PartitionMaxBytes)
	}
	return dst
}

// ReplicaDataResponse is a decoded ReplicaData payload. Records alias the payload.
type ReplicaDataResponse struct {
	FetchID    int64
	ErrorCode  int16
	Partitions []ReplicaDataPartition
}

// ReplicaDataPartition is one partition's answer.
type ReplicaDataPartition struct {
	Topic              string
	TopicID            [16]byte
	Partition          int32
	ErrorCode          int16
	HighWatermark      int64
	LogStartOffset     int64
	LogEndOffset       int64
	DivergingEpoch     int32
	DivergingEndOffset int64
	// Records aliases the payload, capacity capped at its length; null decodes as nil.
	Records []byte
}

// ReadFrom decodes a ReplicaData payload without copying records, reusing v's slices and, where
// they are unchanged, its topic names: decoding into a value that held an answer for the same
// partitions allocates nothing.
func (v *ReplicaDataResponse) ReadFrom(payload []byte) error {
	r := NewReader(payload)
	v.FetchID = r.Int64()
	v.ErrorCode = r.Int16()
	v.Partitions = growSlice(v.Partitions, max(r.ArrayLen(replicaDataPartitionMinLen), 0))
	prev := ""
	for i := range v.Partitions {
		p := &v.Partitions[i]
		p.Topic = readTopic(&r, p.Topic, prev)
		prev = p.Topic
		readTopicID(&r, &p.TopicID)
		p.Partition = r.Int32()
		p.ErrorCode = r.Int16()
		p.HighWatermark = r.Int64()
		p.LogStartOffset = r.Int64()
		p.LogEndOffset = r.Int64()
		p.DivergingEpoch = r.Int32()
		p.DivergingEndOffset = r.Int64()
		p.Records = r.Bytes()
	}
	return r.Complete()
}

// AppendReplicaDataStart encodes the part of a ReplicaData payload before the first partition.
func AppendReplicaDataStart(dst []byte, fetchID int64, errorCode int16, partitions int) []byte {
	dst = AppendInt64(dst, fetchID)
	dst = AppendInt16(dst, errorCode)
	return AppendArrayLen(dst, partitions)
}

// AppendReplicaDataPartitionHead encodes one partition up to and including the records length
// (p.Records is not looked at); the caller appends recordsLen bytes of records after it, none
// when recordsLen is -1 (null records).
func AppendReplicaDataPartitionHead(dst []byte, p *ReplicaDataPartition, recordsLen int) []byte {
	dst = AppendString(dst, p.Topic)
	dst = append(dst, p.TopicID[:]...)
	dst = AppendInt32(dst, p.Partition)
	dst = AppendInt16(dst, p.ErrorCode)
	dst = AppendInt64(dst, p.HighWatermark)
	dst = AppendInt64(dst, p.LogStartOffset)
	dst = AppendInt64(dst, p.LogEndOffset)
	dst = AppendInt32(dst, p.DivergingEpoch)
	dst = AppendInt64(dst, p.DivergingEndOffset)
	return AppendInt32(dst, int32(recordsLen))
}

// AppendTo encodes the whole payload, copying records.
func (v *ReplicaDataResponse) AppendTo(dst []byte) []byte {
	dst = AppendReplicaDataStart(dst, v.FetchID, v.ErrorCode, len(v.Partitions))
	for i := range v.Partitions {
		p := &v.Partitions[i]
		n := len(p.Records)
		if p.Records == nil {
			n = -1
		}
		dst = AppendReplicaDataPartitionHead(dst, p, n)
		dst = append(dst, p.Records...)
	}
	return dst
}

// readTopic reads a topic name (null reads as ""). It returns old, the name the element held
// before, or prev, the previous element's name, when the bytes are equal to one of them, so that
// decoding the partitions of one topic, or the same answer again, allocates no string.
func readTopic(r *Reader, old, prev string) string {
	b := r.StringBytes()
	if string(b) == old {
		return old
	}
	if string(b) == prev {
		return prev
	}
	return string(b)
}

// readTopicID reads 16 raw bytes into id; on a short input it zeroes id and r holds the error.
func readTopicID(r *Reader, id *[16]byte) {
	b := r.take(TopicIDLen, "topic id")
	if b == nil {
		*id = [16]byte{}
		return
	}
	copy(id[:], b)
}
