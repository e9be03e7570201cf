package groups

// Records of the __consumer_offsets topic, in Kafka's own schemas so that Kafka tools (kcat,
// kafka-console-consumer's offsets formatter, franz-go's kmsg) read the log as they read Kafka's.
//
// Every key and value opens with a big-endian int16 version. The key's version says what the
// record is: 0 and 1 an offset commit, 2 group metadata; newer Kafka releases use higher numbers
// for record types this coordinator does not have, and DecodeRecord reports those as
// ErrUnknownRecord so the loader can skip them. A null value is a tombstone: the offset or the
// group was deleted, and compaction drops both once delete.retention.ms has passed.
//
// Classic (non-flexible) encodings: string = int16 length + bytes, nullable string = length -1
// for null, bytes = int32 length + bytes, array = int32 count + elements. Flexible versions
// (OffsetCommitValue and GroupMetadataValue v4) use compact encodings instead — uvarint(length+1),
// 0 for null — and end every struct with a tagged-field section (uvarint count, then per field
// uvarint tag, uvarint size, bytes), which the decoder skips. Thorstream writes the classic v3
// values, which every Kafka since 2.3 reads.
//
//	offset key     version int16 (0|1) | group string | topic string | partition int32
//	offset value   v0  version | offset int64 | metadata string | commitTimestamp int64
//	               v1  version | offset int64 | metadata string | commitTimestamp int64 | expireTimestamp int64
//	               v2  version | offset int64 | metadata string | commitTimestamp int64
//	               v3  version | offset int64 | leaderEpoch int32 | metadata string | commitTimestamp int64
//	               v4  v3 with a compact metadata string, then tagged fields
//	group key      version int16 (2) | group string
//	group value    version | protocolType string | generation int32 | protocol nullable string |
//	               leader nullable string | currentStateTimestamp int64 (v2+) | members [member]
//	member         memberId string | groupInstanceId nullable string (v3+) | clientId string |
//	               clientHost string | rebalanceTimeout int32 (v1+) | sessionTimeout int32 |
//	               subscription bytes | assignment bytes
//	               (v4: compact encodings; tagged fields after each member and after the value)
//
// Thorstream's first offsets log used the same key with a value of its own under version 1:
//
//	legacy value   version int16 (1) | offset int64 | metadata string | commitTimestamp int64
//
// That is Kafka's v1 value without expireTimestamp, so the two are told apart by length (20 bytes
// plus the metadata for the legacy layout, 28 plus the metadata for Kafka's), and logs written
// before the coordinator migrate as they are read.

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
)

// Key versions of __consumer_offsets records. Kafka calls the key version the record type.
const (
	offsetKeyVersion0 = 0 // offset commit, first key version; same layout as 1
	offsetKeyVersion  = 1 // offset commit, written
	groupKeyVersion   = 2 // group metadata, written
)

// Value versions written.
const (
	offsetValueVersion = 3
	groupValueVersion  = 3
)

// Highest value versions read; the first flexible version of each.
const (
	maxOffsetValueVersion = 4
	maxGroupValueVersion  = 4
	flexibleValueVersion  = 4
)

// MaxRecordStringBytes is the longest string a record can hold: Kafka's strings carry an int16
// length, and Kafka refuses longer ones in requests, even in flexible versions whose compact
// strings could say more. The coordinator must refuse a longer group id, topic, member id,
// instance id, client id or host before it builds a record (MaxMetadataBytes is far below it).
// The encoders clip a longer string to this length rather than write a record no reader could
// parse.
const MaxRecordStringBytes = math.MaxInt16

var (
	// ErrUnknownRecord is returned by DecodeRecord for a record type or value version this
	// coordinator does not know (written by a newer Kafka). Loaders skip such records.
	ErrUnknownRecord = errors.New("groups: unknown offsets record")
	// ErrBadRecord is returned by DecodeRecord for bytes that do not follow the schema their
	// version names: truncated, with trailing bytes, a null where null is not allowed, or a length
	// larger than what remains.
	ErrBadRecord = errors.New("groups: bad offsets record")
)

// OffsetKey is the key of an offset commit (key version 1 written, 0 also read).
type OffsetKey struct {
	Group     string
	Topic     string
	Partition int32
}

// OffsetValue is a committed offset (OffsetCommitValue).
type OffsetValue struct {
	Offset int64
	// LeaderEpoch is the leader epoch of the committed offset, -1 if the client sent none or the
	// value predates version 3.
	LeaderEpoch int32
	Metadata    string
	// CommitTimestamp is when the commit was accepted, in milliseconds since the epoch.
	CommitTimestamp int64
	// ExpireTimestamp is when the commit expires, in milliseconds since the epoch, -1 for none.
	// Only version 1 values carry it; AppendOffsetValue writes version 3, which does not, so it is
	// -1 again after a round trip through the log (expiry follows KIP-211 from CommitTimestamp and
	// the group's state instead).
	ExpireTimestamp int64
}

// GroupKey is the key of a group's metadata (key version 2).
type GroupKey struct {
	Group string
}

// GroupValue is a group's metadata (GroupMetadataValue) as of its last persisted state.
type GroupValue struct {
	// ProtocolType is the group's protocol type ("consumer", "connect"), empty for a group that
	// only commits offsets.
	ProtocolType string
	Generation   int32
	// Protocol is the selected protocol (assignor), nil if none.
	Protocol *string
	// Leader is the member id of the leader, nil if none.
	Leader *string
	// CurrentStateTimestamp is when the group entered its current state, in milliseconds since
	// the epoch, -1 if unknown (values before version 2).
	CurrentStateTimestamp int64
	Members               []MemberValue
}

// MemberValue is one member of a GroupValue.
type MemberValue struct {
	MemberID string
	// InstanceID is the static member's group.instance.id (KIP-345), nil for a dynamic member
	// and in values before version 3.
	InstanceID *string
	ClientID   string
	ClientHost string
	// RebalanceTimeoutMs is the member's rebalance timeout. Version 0 values have none; like
	// Kafka, the decoder uses the session timeout then.
	RebalanceTimeoutMs int32
	SessionTimeoutMs   int32
	// Subscription is the member's metadata for the selected protocol; Assignment what the leader
	// assigned it. Decoded values own their bytes (they never alias the record); zero-length bytes
	// decode as nil.
	Subscription []byte
	Assignment   []byte
}

// AppendOffsetKey appends the key of an offset commit (version 1) to dst.
func AppendOffsetKey(dst []byte, k OffsetKey) []byte {
	dst = slices.Grow(dst, 2+recStringSize(k.Group)+recStringSize(k.Topic)+4)
	dst = binary.BigEndian.AppendUint16(dst, offsetKeyVersion)
	dst = recAppendString(dst, k.Group)
	dst = recAppendString(dst, k.Topic)
	return binary.BigEndian.AppendUint32(dst, uint32(k.Partition))
}

// AppendOffsetValue appends v as an OffsetCommitValue version 3 (with leader epoch), as Kafka 2.1
// and later write it. ExpireTimestamp is not part of version 3 and is not written.
func AppendOffsetValue(dst []byte, v OffsetValue) []byte {
	dst = slices.Grow(dst, 2+8+4+recStringSize(v.Metadata)+8)
	dst = binary.BigEndian.AppendUint16(dst, offsetValueVersion)
	dst = binary.BigEndian.AppendUint64(dst, uint64(v.Offset))
	dst = binary.BigEndian.AppendUint32(dst, uint32(v.LeaderEpoch))
	dst = recAppendString(dst, v.Metadata)
	return binary.BigEndian.AppendUint64(dst, uint64(v.CommitTimestamp))
}

// AppendGroupKey appends the key of a group's metadata (version 2) to dst.
func AppendGroupKey(dst []byte, k GroupKey) []byte {
	dst = slices.Grow(dst, 2+recStringSize(k.Group))
	dst = binary.BigEndian.AppendUint16(dst, groupKeyVersion)
	return recAppendString(dst, k.Group)
}

// AppendGroupValue appends v as a GroupMetadataValue version 3 (with static member instance ids).
func AppendGroupValue(dst []byte, v GroupValue) []byte {
	dst = slices.Grow(dst, groupValueSize(&v))
	dst = binary.BigEndian.AppendUint16(dst, groupValueVersion)
	dst = recAppendString(dst, v.ProtocolType)
	dst = binary.BigEndian.AppendUint32(dst, uint32(v.Generation))
	dst = recAppendNullableString(dst, v.Protocol)
	dst = recAppendNullableString(dst, v.Leader)
	dst = binary.BigEndian.AppendUint64(dst, uint64(v.CurrentStateTimestamp))
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(v.Members)))
	for i := range v.Members {
		m := &v.Members[i]
		dst = recAppendString(dst, m.MemberID)
		dst = recAppendNullableString(dst, m.InstanceID)
		dst = recAppendString(dst, m.ClientID)
		dst = recAppendString(dst, m.ClientHost)
		dst = binary.BigEndian.AppendUint32(dst, uint32(m.RebalanceTimeoutMs))
		dst = binary.BigEndian.AppendUint32(dst, uint32(m.SessionTimeoutMs))
		dst = recAppendBytes(dst, m.Subscription)
		dst = recAppendBytes(dst, m.Assignment)
	}
	return dst
}

// groupValueSize is the encoded length of v at version 3.
func groupValueSize(v *GroupValue) int {
	n := 2 + recStringSize(v.ProtocolType) + 4 + recNullableStringSize(v.Protocol) +
		recNullableStringSize(v.Leader) + 8 + 4
	for i := range v.Members {
		m := &v.Members[i]
		n += recStringSize(m.MemberID) + recNullableStringSize(m.InstanceID) +
			recStringSize(m.ClientID) + recStringSize(m.ClientHost) + 4 + 4 +
			4 + len(m.Subscription) + 4 + len(m.Assignment)
	}
	return n
}

func recClip(s string) string {
	if len(s) > MaxRecordStringBytes {
		return s[:MaxRecordStringBytes]
	}
	return s
}

func recStringSize(s string) int { return 2 + len(recClip(s)) }

func recNullableStringSize(s *string) int {
	if s == nil {
		return 2
	}
	return recStringSize(*s)
}

func recAppendString(dst []byte, s string) []byte {
	s = recClip(s)
	dst = binary.BigEndian.AppendUint16(dst, uint16(len(s)))
	return append(dst, s...)
}

func recAppendNullableString(dst []byte, s *string) []byte {
	if s == nil {
		return binary.BigEndian.AppendUint16(dst, 0xffff)
	}
	return recAppendString(dst, *s)
}

func recAppendBytes(dst []byte, b []byte) []byte {
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(b)))
	return append(dst, b...)
}

// DecodeRecord decodes one __consumer_offsets record. On success exactly one key is set — ok for
// an offset commit, gk for group metadata — with its value, or with a nil value if value is nil
// (a tombstone: the offset or the group was deleted). An empty but non-nil value is not a
// tombstone and is malformed. Key versions other than 0, 1 and 2, and value versions above the
// highest known, give ErrUnknownRecord (skip the record); bytes that do not follow the schema give
// ErrBadRecord. Both are wrapped with detail, and every result is nil with an error.
//
// DecodeRecord never panics and allocates no more than a small multiple of len(key)+len(value):
// a length or count larger than what remains is an error before anything is allocated. Decoded
// values share no memory with key or value.
func DecodeRecord(key, value []byte) (ok *OffsetKey, ov *OffsetValue, gk *GroupKey, gv *GroupValue, err error) {
	if len(key) < 2 {
		return nil, nil, nil, nil, fmt.Errorf("%w: key of %d bytes has no version", ErrBadRecord, len(key))
	}
	switch version := int16(binary.BigEndian.Uint16(key)); version {
	case offsetKeyVersion0, offsetKeyVersion:
		k, err := decodeOffsetKey(key[2:])
		if err != nil {
			return nil, nil, nil, nil, err
		}
		if value == nil {
			return k, nil, nil, nil, nil
		}
		v, err := decodeOffsetValue(value)
		if err != nil {
			return nil, nil, nil, nil, err
		}
		return k, v, nil, nil, nil
	case groupKeyVersion:
		k, err := decodeGroupKey(key[2:])
		if err != nil {
			return nil, nil, nil, nil, err
		}
		if value == nil {
			return nil, nil, k, nil, nil
		}
		v, err := decodeGroupValue(value)
		if err != nil {
			return nil, nil, nil, nil, err
		}
		return nil, nil, k, v, nil
	default:
		return nil, nil, nil, nil, fmt.Errorf("%w: key version %d", ErrUnknownRecord, version)
	}
}

func decodeOffsetKey(b []byte) (*OffsetKey, error) {
	r := recReader{b: b}
	k := &OffsetKey{Group: r.str(false), Topic: r.str(false), Partition: r.int32()}
	if err := r.finish("offset key", -1); err != nil {
		return nil, err
	}
	return k, nil
}

func decodeGroupKey(b []byte) (*GroupKey, error) {
	r := recReader{b: b}
	k := &GroupKey{Group: r.str(false)}
	if err := r.finish("group key", -1); err != nil {
		return nil, err
	}
	return k, nil
}

// valueVersion reads the version of a value and checks it against the highest one known.
func valueVersion(r *recReader, what string, highest int16) (int16, error) {
	version := r.int16()
	switch {
	case r.bad:
		return 0, fmt.Errorf("%w: %s of %d bytes has no version", ErrBadRecord, what, len(r.b))
	case version < 0:
		return 0, fmt.Errorf("%w: %s version %d", ErrBadRecord, what, version)
	case version > highest:
		return 0, fmt.Errorf("%w: %s version %d", ErrUnknownRecord, what, version)
	}
	return version, nil
}

func decodeOffsetValue(b []byte) (*OffsetValue, error) {
	r := recReader{b: b}
	version, err := valueVersion(&r, "offset value", maxOffsetValueVersion)
	if err != nil {
		return nil, err
	}
	flexible := version >= flexibleValueVersion
	v := &OffsetValue{LeaderEpoch: -1, ExpireTimestamp: -1}
	v.Offset = r.int64()
	if version >= 3 {
		v.LeaderEpoch = r.int32()
	}
	v.Metadata = r.str(flexible)
	v.CommitTimestamp = r.int64()
	// Version 1 is Kafka's (with expireTimestamp) or Thorstream's legacy value (without); what
	// remains after the commit timestamp tells which.
	if version == 1 && len(r.b) == 8 {
		v.ExpireTimestamp = r.int64()
	}
	if flexible {
		r.skipTaggedFields()
	}
	if err := r.finish("offset value", version); err != nil {
		return nil, err
	}
	return v, nil
}

// Fewest bytes one member takes in a group value of each version, so a member count can be
// checked against what remains before the members are allocated.
func minMemberBytes(version int16) int {
	switch {
	case version >= flexibleValueVersion:
		// memberId, instanceId, clientId, clientHost (1 each), two int32, two bytes (1 each), tags.
		return 4 + 8 + 2 + 1
	case version == 3:
		return 2 + 2 + 2 + 2 + 4 + 4 + 4 + 4
	case version >= 1:
		return 2 + 2 + 2 + 4 + 4 + 4 + 4
	default:
		return 2 + 2 + 2 + 4 + 4 + 4
	}
}

func decodeGroupValue(b []byte) (*GroupValue, error) {
	r := recReader{b: b}
	version, err := valueVersion(&r, "group value", maxGroupValueVersion)
	if err != nil {
		return nil, err
	}
	flexible := version >= flexibleValueVersion
	v := &GroupValue{CurrentStateTimestamp: -1}
	v.ProtocolType = r.str(flexible)
	v.Generation = r.int32()
	v.Protocol = r.nullableStr(flexible)
	v.Leader = r.nullableStr(flexible)
	if version >= 2 {
		v.CurrentStateTimestamp = r.int64()
	}
	count := r.arrayLen(flexible)
	if !r.bad && count > len(r.b)/minMemberBytes(version) {
		r.bad = true
	}
	if !r.bad && count > 0 {
		v.Members = make([]MemberValue, count)
	}
	for i := 0; i < count && !r.bad; i++ {
		m := &v.Members[i]
		m.MemberID = r.str(flexible)
		if version >= 3 {
			m.InstanceID = r.nullableStr(flexible)
		}
		m.ClientID = r.str(flexible)
		m.ClientHost = r.str(flexible)
		if version >= 1 {
			m.RebalanceTimeoutMs = r.int32()
		}
		m.SessionTimeoutMs = r.int32()
		if version == 0 {
			m.RebalanceTimeoutMs = m.SessionTimeoutMs
		}
		m.Subscription = r.bytes(flexible)
		m.Assignment = r.bytes(flexible)
		if flexible {
			r.skipTaggedFields()
		}
	}
	if flexible {
		r.skipTaggedFields()
	}
	if err := r.finish("group value", version); err != nil {
		return nil, err
	}
	return v, nil
}

// recReader reads the fields of one key or value. The first field that does not fit sets bad,
// and every later read returns zero values, so a decoder reads all its fields and checks once.
type recReader struct {
	b   []byte
	bad bool
}

// finish reports whether every field fitted and nothing is left over. what and version (-1 for
// keys) name the record in the error.
func (r *recReader) finish(what string, version int16) error {
	if !r.bad && len(r.b) == 0 {
		return nil
	}
	if version >= 0 {
		what = fmt.Sprintf("%s v%d", what, version)
	}
	if r.bad {
		return fmt.Errorf("%w: %s is truncated or malformed", ErrBadRecord, what)
	}
	return fmt.Errorf("%w: %d bytes after the %s", ErrBadRecord, len(r.b), what)
}

// take returns the next n bytes, or nil and marks the reader bad if fewer remain.
func (r *recReader) take(n int) []byte {
	if r.bad || n < 0 || n > len(r.b) {
		r.bad = true
		return nil
	}
	p := r.b[:n:n]
	r.b = r.b[n:]
	return p
}

func (r *recReader) int16() int16 {
	if p := r.take(2); p != nil {
		return int16(binary.BigEndian.Uint16(p))
	}
	return 0
}

func (r *recReader) int32() int32 {
	if p := r.take(4); p != nil {
		return int32(binary.BigEndian.Uint32(p))
	}
	return 0
}

func (r *recReader) int64() int64 {
	if p := r.take(8); p != nil {
		return int64(binary.BigEndian.Uint64(p))
	}
	return 0
}

// uvarint reads an unsigned varint of at most 32 bits, as Kafka's compact lengths and tags are.
func (r *recReader) uvarint() uint32 {
	if r.bad {
		return 0
	}
	var v uint32
	for i := 0; i < 5; i++ {
		if i >= len(r.b) {
			break
		}
		c := r.b[i]
		if i == 4 && c > 0x0f {
			break // more than 32 bits
		}
		v |= uint32(c&0x7f) << (7 * i)
		if c < 0x80 {
			r.b = r.b[i+1:]
			return v
		}
	}
	r.bad = true
	return 0
}

// length reads a length prefix: int16 or int32 in classic encodings, uvarint(length+1) in compact
// ones. It returns -1 for null. A length is never trusted beyond what remains: take checks it.
func (r *recReader) length(compact bool, classicBytes int) int {
	if compact {
		return int(r.uvarint()) - 1
	}
	if classicBytes == 2 {
		return int(r.int16())
	}
	return int(r.int32())
}

// nullableStr reads a nullable string; nil is null.
func (r *recReader) nullableStr(compact bool) *string {
	n := r.length(compact, 2)
	if r.bad || n < 0 {
		if n < -1 {
			r.bad = true
		}
		return nil
	}
	if n > MaxRecordStringBytes {
		r.bad = true
		return nil
	}
	p := r.take(n)
	if r.bad {
		return nil
	}
	s := string(p)
	return &s
}

// str reads a string that may not be null.
func (r *recReader) str(compact bool) string {
	n := r.length(compact, 2)
	if r.bad || n < 0 || n > MaxRecordStringBytes {
		r.bad = true
		return ""
	}
	return string(r.take(n))
}

// bytes reads bytes that may not be null, copied out of the record; empty is nil.
func (r *recReader) bytes(compact bool) []byte {
	n := r.length(compact, 4)
	if r.bad || n < 0 {
		r.bad = true
		return nil
	}
	p := r.take(n)
	if len(p) == 0 {
		return nil
	}
	return slices.Clone(p)
}

// arrayLen reads the count of an array that may not be null.
func (r *recReader) arrayLen(compact bool) int {
	n := r.length(compact, 4)
	if r.bad || n < 0 {
		r.bad = true
		return 0
	}
	return n
}

// skipTaggedFields skips a tagged-field section: none of the tags Kafka defines for these values
// (such as an offset's topic id) is needed here.
func (r *recReader) skipTaggedFields() {
	count := r.uvarint()
	for i := uint32(0); i < count && !r.bad; i++ {
		r.uvarint() // tag
		size := r.uvarint()
		if size > math.MaxInt32 {
			r.bad = true
			return
		}
		r.take(int(size))
	}
}
