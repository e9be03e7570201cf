package groups

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"math"
	"reflect"
	"runtime"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// unhexDump decodes a hex dump written for people: whitespace is ignored and "#" starts a comment
// that runs to the end of the line.
func unhexDump(t testing.TB, dump string) []byte {
	t.Helper()
	var clean strings.Builder
	for line := range strings.SplitSeq(dump, "\n") {
		line, _, _ = strings.Cut(line, "#")
		clean.WriteString(strings.Join(strings.Fields(line), ""))
	}
	b, err := hex.DecodeString(clean.String())
	if err != nil {
		t.Fatalf("bad hex dump: %v", err)
	}
	return b
}

func recordStr(s string) *string { return &s }

// decodedRecord is what DecodeRecord returns, gathered for comparison.
type decodedRecord struct {
	ok *OffsetKey
	ov *OffsetValue
	gk *GroupKey
	gv *GroupValue
}

func decodeRecordPair(key, value []byte) (decodedRecord, error) {
	ok, ov, gk, gv, err := DecodeRecord(key, value)
	return decodedRecord{ok, ov, gk, gv}, err
}

// String shows the decoded record in test failures.
func (d decodedRecord) String() string {
	b, err := json.Marshal(map[string]any{"offsetKey": d.ok, "offsetValue": d.ov, "groupKey": d.gk, "groupValue": d.gv})
	if err != nil {
		return err.Error()
	}
	return string(b)
}

// The records of the golden tests. Timestamps: 1700000000000 = 0x18bcfe56800 (commit, state),
// 1700000600000 = 0x18bcfee8fc0 (expiry).
const (
	goldenCommitMs = 1700000000000
	goldenExpireMs = 1700000600000
)

var (
	goldenOffsetKey = OffsetKey{Group: "g1", Topic: "t", Partition: 7}
	goldenGroupKey  = GroupKey{Group: "g1"}

	// A stable consumer group of two members: a static one with an assignment, a dynamic one the
	// leader gave nothing.
	goldenGroupV3 = GroupValue{
		ProtocolType:          "consumer",
		Generation:            3,
		Protocol:              recordStr("range"),
		Leader:                recordStr("m1"),
		CurrentStateTimestamp: goldenCommitMs,
		Members: []MemberValue{
			{MemberID: "m1", InstanceID: recordStr("i1"), ClientID: "c", ClientHost: "/h",
				RebalanceTimeoutMs: 60000, SessionTimeoutMs: 45000,
				Subscription: []byte{0xaa, 0xbb, 0xcc}, Assignment: []byte{0xdd, 0xee}},
			{MemberID: "m2", ClientID: "c", ClientHost: "/h",
				RebalanceTimeoutMs: 60000, SessionTimeoutMs: 45000,
				Subscription: []byte{0xaa}},
		},
	}
)

// groupAs is goldenGroupV3 as a value of an older version decodes: no instance ids before v3,
// no state timestamp before v2, the session timeout as rebalance timeout in v0.
func groupAs(version int) *GroupValue {
	g := goldenGroupV3
	g.Members = append([]MemberValue(nil), g.Members...)
	for i := range g.Members {
		m := &g.Members[i]
		if version < 3 {
			m.InstanceID = nil
		}
		if version < 1 {
			m.RebalanceTimeoutMs = m.SessionTimeoutMs
		}
	}
	if version < 2 {
		g.CurrentStateTimestamp = -1
	}
	return &g
}

// kmsgGroup is goldenGroupV3 in franz-go's types, as the given version encodes it.
func kmsgGroup(version int16) *kmsg.GroupMetadataValue {
	v := kmsg.NewGroupMetadataValue()
	v.Version = version
	v.ProtocolType = goldenGroupV3.ProtocolType
	v.Generation = goldenGroupV3.Generation
	v.Protocol = goldenGroupV3.Protocol
	v.Leader = goldenGroupV3.Leader
	v.CurrentStateTimestamp = goldenGroupV3.CurrentStateTimestamp
	for _, m := range goldenGroupV3.Members {
		km := kmsg.NewGroupMetadataValueMember()
		km.MemberID, km.InstanceID, km.ClientID, km.ClientHost = m.MemberID, m.InstanceID, m.ClientID, m.ClientHost
		km.RebalanceTimeoutMillis, km.SessionTimeoutMillis = m.RebalanceTimeoutMs, m.SessionTimeoutMs
		km.Subscription, km.Assignment = m.Subscription, m.Assignment
		v.Members = append(v.Members, km)
	}
	return &v
}

type goldenRecord struct {
	name       string
	key, value string // hex dumps; value "" with tombstone set is a null value
	tombstone  bool
	want       decodedRecord
	// kafka, if set, is the same record encoded by franz-go's implementation of Kafka's
	// schemas: the hand-built dump must match it byte for byte.
	kafkaKey, kafkaValue func() []byte
	// written, if set, is how Thorstream writes this record: it must produce the dump exactly.
	writtenKey, writtenValue func() []byte
}

const (
	offsetKeyV1Hex = `
		0001                # key version 1: offset commit
		0002 6731           # group "g1"
		0001 74             # topic "t"
		00000007            # partition 7`
	groupKeyV2Hex = `
		0002                # key version 2: group metadata
		0002 6731           # group "g1"`
)

func goldenRecords(t testing.TB) []goldenRecord {
	offsetValue := func(version int16, epoch int32, expire int64) *OffsetValue {
		return &OffsetValue{Offset: 42, LeaderEpoch: epoch, Metadata: "m", CommitTimestamp: goldenCommitMs, ExpireTimestamp: expire}
	}
	kafkaOffsetKey := func(version int16) func() []byte {
		return func() []byte {
			k := kmsg.OffsetCommitKey{Version: version, Group: "g1", Topic: "t", Partition: 7}
			return k.AppendTo(nil)
		}
	}
	kafkaOffsetValue := func(version int16, withTags bool) func() []byte {
		return func() []byte {
			v := kmsg.NewOffsetCommitValue()
			v.Version, v.Offset, v.LeaderEpoch, v.Metadata = version, 42, 5, "m"
			v.CommitTimestamp, v.ExpireTimestamp = goldenCommitMs, goldenExpireMs
			if withTags {
				for i := range v.TopicID {
					v.TopicID[i] = byte(i + 1)
				}
				v.UnknownTags.Set(5, []byte{0xab, 0xcd})
			}
			return v.AppendTo(nil)
		}
	}
	kafkaGroupKey := func() []byte {
		k := kmsg.GroupMetadataKey{Version: 2, Group: "g1"}
		return k.AppendTo(nil)
	}
	kafkaGroupValue := func(version int16, withTags bool) func() []byte {
		return func() []byte {
			v := kmsgGroup(version)
			if withTags {
				v.UnknownTags.Set(1, []byte{0x01})
				v.Members[0].UnknownTags.Set(0, []byte{0x02, 0x03})
			}
			return v.AppendTo(nil)
		}
	}
	writtenOffsetKey := func() []byte { return AppendOffsetKey(nil, goldenOffsetKey) }
	writtenGroupKey := func() []byte { return AppendGroupKey(nil, goldenGroupKey) }

	return []goldenRecord{
		{
			name: "offset key v1, value v3", key: offsetKeyV1Hex, value: `
				0003                # value version 3
				000000000000002a    # offset 42
				00000005            # leader epoch 5
				0001 6d             # metadata "m"
				0000018bcfe56800    # commit timestamp`,
			want:       decodedRecord{ok: &goldenOffsetKey, ov: offsetValue(3, 5, -1)},
			kafkaKey:   kafkaOffsetKey(1),
			kafkaValue: kafkaOffsetValue(3, false),
			writtenKey: writtenOffsetKey,
			writtenValue: func() []byte {
				return AppendOffsetValue(nil, OffsetValue{Offset: 42, LeaderEpoch: 5, Metadata: "m",
					CommitTimestamp: goldenCommitMs, ExpireTimestamp: goldenExpireMs})
			},
		},
		{
			name: "offset key v0, value v0", key: `
				0000                # key version 0: offset commit
				0002 6731 0001 74 00000007`, value: `
				0000                # value version 0
				000000000000002a    # offset 42
				0001 6d             # metadata "m"
				0000018bcfe56800    # commit timestamp`,
			want:       decodedRecord{ok: &goldenOffsetKey, ov: offsetValue(0, -1, -1)},
			kafkaKey:   kafkaOffsetKey(0),
			kafkaValue: kafkaOffsetValue(0, false),
		},
		{
			name: "offset value v1 (Kafka)", key: offsetKeyV1Hex, value: `
				0001                # value version 1
				000000000000002a    # offset 42
				0001 6d             # metadata "m"
				0000018bcfe56800    # commit timestamp
				0000018bcfee8fc0    # expire timestamp`,
			want:       decodedRecord{ok: &goldenOffsetKey, ov: offsetValue(1, -1, goldenExpireMs)},
			kafkaValue: kafkaOffsetValue(1, false),
		},
		{
			name: "offset value v1 (Thorstream's earlier layout)", key: offsetKeyV1Hex, value: `
				0001                # value version 1
				000000000000002a    # offset 42
				0001 6d             # metadata "m"
				0000018bcfe56800    # commit timestamp, and no expire timestamp`,
			want: decodedRecord{ok: &goldenOffsetKey, ov: offsetValue(1, -1, -1)},
		},
		{
			name: "offset value v2", key: offsetKeyV1Hex, value: `
				0002                # value version 2
				000000000000002a    # offset 42
				0001 6d             # metadata "m"
				0000018bcfe56800    # commit timestamp`,
			want:       decodedRecord{ok: &goldenOffsetKey, ov: offsetValue(2, -1, -1)},
			kafkaValue: kafkaOffsetValue(2, false),
		},
		{
			name: "offset value v4 (flexible)", key: offsetKeyV1Hex, value: `
				0004                # value version 4
				000000000000002a    # offset 42
				00000005            # leader epoch 5
				02 6d               # metadata "m", compact: length+1
				0000018bcfe56800    # commit timestamp
				02                  # two tagged fields
				00 10 0102030405060708090a0b0c0d0e0f10  # tag 0 (topic id), 16 bytes
				05 02 abcd          # tag 5, unknown, 2 bytes`,
			want:       decodedRecord{ok: &goldenOffsetKey, ov: offsetValue(4, 5, -1)},
			kafkaValue: kafkaOffsetValue(4, true),
		},
		{
			name: "offset value v4 without tagged fields", key: offsetKeyV1Hex, value: `
				0004 000000000000002a 00000005 02 6d 0000018bcfe56800
				00                  # no tagged fields`,
			want:       decodedRecord{ok: &goldenOffsetKey, ov: offsetValue(4, 5, -1)},
			kafkaValue: kafkaOffsetValue(4, false),
		},
		{
			name: "offset tombstone", key: offsetKeyV1Hex, tombstone: true,
			want: decodedRecord{ok: &goldenOffsetKey},
		},
		{
			name: "group key v2, value v3", key: groupKeyV2Hex, value: `
				0003                # value version 3
				0008 636f6e73756d6572  # protocol type "consumer"
				00000003            # generation 3
				0005 72616e6765     # protocol "range"
				0002 6d31           # leader "m1"
				0000018bcfe56800    # current state timestamp
				00000002            # two members
				  0002 6d31         #   member id "m1"
				  0002 6931         #   group instance id "i1"
				  0001 63           #   client id "c"
				  0002 2f68         #   client host "/h"
				  0000ea60          #   rebalance timeout 60000
				  0000afc8          #   session timeout 45000
				  00000003 aabbcc   #   subscription
				  00000002 ddee     #   assignment
				  0002 6d32         #   member id "m2"
				  ffff              #   group instance id null
				  0001 63 0002 2f68 0000ea60 0000afc8
				  00000001 aa       #   subscription
				  00000000          #   assignment: empty`,
			want:         decodedRecord{gk: &goldenGroupKey, gv: groupAs(3)},
			kafkaKey:     kafkaGroupKey,
			kafkaValue:   kafkaGroupValue(3, false),
			writtenKey:   writtenGroupKey,
			writtenValue: func() []byte { return AppendGroupValue(nil, goldenGroupV3) },
		},
		{
			name: "group value v0", key: groupKeyV2Hex, value: `
				0000                # value version 0
				0008 636f6e73756d6572 00000003 0005 72616e6765 0002 6d31
				00000002            # two members (no state timestamp before v2)
				  0002 6d31 0001 63 0002 2f68  # member id, client id, client host (no instance id)
				  0000afc8          #   session timeout (no rebalance timeout before v1)
				  00000003 aabbcc 00000002 ddee
				  0002 6d32 0001 63 0002 2f68 0000afc8 00000001 aa 00000000`,
			want:       decodedRecord{gk: &goldenGroupKey, gv: groupAs(0)},
			kafkaValue: kafkaGroupValue(0, false),
		},
		{
			name: "group value v1", key: groupKeyV2Hex, value: `
				0001                # value version 1
				0008 636f6e73756d6572 00000003 0005 72616e6765 0002 6d31
				00000002
				  0002 6d31 0001 63 0002 2f68
				  0000ea60 0000afc8 # rebalance and session timeouts
				  00000003 aabbcc 00000002 ddee
				  0002 6d32 0001 63 0002 2f68 0000ea60 0000afc8 00000001 aa 00000000`,
			want:       decodedRecord{gk: &goldenGroupKey, gv: groupAs(1)},
			kafkaValue: kafkaGroupValue(1, false),
		},
		{
			name: "group value v2", key: groupKeyV2Hex, value: `
				0002                # value version 2
				0008 636f6e73756d6572 00000003 0005 72616e6765 0002 6d31
				0000018bcfe56800    # current state timestamp
				00000002
				  0002 6d31 0001 63 0002 2f68 0000ea60 0000afc8 00000003 aabbcc 00000002 ddee
				  0002 6d32 0001 63 0002 2f68 0000ea60 0000afc8 00000001 aa 00000000`,
			want:       decodedRecord{gk: &goldenGroupKey, gv: groupAs(2)},
			kafkaValue: kafkaGroupValue(2, false),
		},
		{
			name: "group value v4 (flexible)", key: groupKeyV2Hex, value: `
				0004                # value version 4
				09 636f6e73756d6572 # protocol type, compact
				00000003
				06 72616e6765       # protocol "range"
				03 6d31             # leader "m1"
				0000018bcfe56800
				03                  # two members, compact: count+1
				  03 6d31           #   member id
				  03 6931           #   group instance id "i1"
				  02 63 03 2f68     #   client id, client host
				  0000ea60 0000afc8
				  04 aabbcc         #   subscription, compact: length+1
				  03 ddee           #   assignment
				  01 00 02 0203     #   one tagged field: tag 0, 2 bytes
				  03 6d32
				  00                #   group instance id null
				  02 63 03 2f68 0000ea60 0000afc8
				  02 aa
				  01                #   assignment: empty
				  00                #   no tagged fields
				01 01 01 01         # one tagged field: tag 1, 1 byte`,
			want:       decodedRecord{gk: &goldenGroupKey, gv: groupAs(4)},
			kafkaValue: kafkaGroupValue(4, true),
		},
		{
			name: "group value v3 of an empty group", key: groupKeyV2Hex, value: `
				0003
				0008 636f6e73756d6572 # protocol type "consumer"
				00000005            # generation 5
				ffff                # protocol null
				ffff                # leader null
				0000018bcfe56800
				00000000            # no members`,
			want: decodedRecord{gk: &goldenGroupKey, gv: &GroupValue{ProtocolType: "consumer", Generation: 5,
				CurrentStateTimestamp: goldenCommitMs}},
			writtenValue: func() []byte {
				return AppendGroupValue(nil, GroupValue{ProtocolType: "consumer", Generation: 5,
					CurrentStateTimestamp: goldenCommitMs, Members: []MemberValue{}})
			},
			kafkaValue: func() []byte {
				v := kmsg.NewGroupMetadataValue()
				v.Version, v.ProtocolType, v.Generation, v.CurrentStateTimestamp = 3, "consumer", 5, goldenCommitMs
				return v.AppendTo(nil)
			},
		},
		{
			name: "group tombstone", key: groupKeyV2Hex, tombstone: true,
			want: decodedRecord{gk: &goldenGroupKey},
		},
	}
}

func (g goldenRecord) bytes(t testing.TB) (key, value []byte) {
	key = unhexDump(t, g.key)
	if !g.tombstone {
		value = unhexDump(t, g.value)
	}
	return key, value
}

func TestRecordsGolden(t *testing.T) {
	for _, g := range goldenRecords(t) {
		t.Run(g.name, func(t *testing.T) {
			key, value := g.bytes(t)
			got, err := decodeRecordPair(key, value)
			if err != nil {
				t.Fatalf("DecodeRecord: %v", err)
			}
			if !reflect.DeepEqual(got, g.want) {
				t.Fatalf("DecodeRecord:\ngot  %v\nwant %v", got, g.want)
			}
			check := func(what string, want []byte, f func() []byte) {
				if f == nil {
					return
				}
				if b := f(); !bytes.Equal(b, want) {
					t.Errorf("%s:\ngot  %x\nwant %x", what, b, want)
				}
			}
			check("franz-go's encoding of the key", key, g.kafkaKey)
			check("franz-go's encoding of the value", value, g.kafkaValue)
			check("Thorstream's encoding of the key", key, g.writtenKey)
			check("Thorstream's encoding of the value", value, g.writtenValue)
		})
	}
}

// TestRecordsReadByKafkaTools checks that what Thorstream writes reads back through franz-go's
// implementation of Kafka's schemas with every field in place.
func TestRecordsReadByKafkaTools(t *testing.T) {
	var ok kmsg.OffsetCommitKey
	if err := ok.ReadFrom(AppendOffsetKey(nil, goldenOffsetKey)); err != nil {
		t.Fatal(err)
	}
	if ok.Version != 1 || ok.Group != "g1" || ok.Topic != "t" || ok.Partition != 7 {
		t.Errorf("offset key read as %+v", ok)
	}
	var ov kmsg.OffsetCommitValue
	if err := ov.ReadFrom(AppendOffsetValue(nil, OffsetValue{Offset: 9, LeaderEpoch: 2, Metadata: "meta", CommitTimestamp: 77})); err != nil {
		t.Fatal(err)
	}
	if ov.Version != 3 || ov.Offset != 9 || ov.LeaderEpoch != 2 || ov.Metadata != "meta" || ov.CommitTimestamp != 77 {
		t.Errorf("offset value read as %+v", ov)
	}
	var gk kmsg.GroupMetadataKey
	if err := gk.ReadFrom(AppendGroupKey(nil, goldenGroupKey)); err != nil {
		t.Fatal(err)
	}
	if gk.Version != 2 || gk.Group != "g1" {
		t.Errorf("group key read as %+v", gk)
	}
	var gv kmsg.GroupMetadataValue
	if err := gv.ReadFrom(AppendGroupValue(nil, goldenGroupV3)); err != nil {
		t.Fatal(err)
	}
	want := goldenGroupV3
	if gv.Version != 3 || gv.ProtocolType != want.ProtocolType || gv.Generation != want.Generation ||
		!reflect.DeepEqual(gv.Protocol, want.Protocol) || !reflect.DeepEqual(gv.Leader, want.Leader) ||
		gv.CurrentStateTimestamp != want.CurrentStateTimestamp || len(gv.Members) != len(want.Members) {
		t.Fatalf("group value read as %+v", gv)
	}
	for i, m := range gv.Members {
		w := want.Members[i]
		if m.MemberID != w.MemberID || !reflect.DeepEqual(m.InstanceID, w.InstanceID) || m.ClientID != w.ClientID ||
			m.ClientHost != w.ClientHost || m.RebalanceTimeoutMillis != w.RebalanceTimeoutMs ||
			m.SessionTimeoutMillis != w.SessionTimeoutMs || !bytes.Equal(m.Subscription, w.Subscription) ||
			!bytes.Equal(m.Assignment, w.Assignment) {
			t.Errorf("member %d read as %+v", i, m)
		}
	}
}

// TestRecordsMigrateOffsetsLog decodes commits as the committed-offset table that preceded the
// coordinator wrote them (its encoders are in legacy_test.go): the layout being migrated.
func TestRecordsMigrateOffsetsLog(t *testing.T) {
	for _, c := range []struct {
		metadata string
		offset   int64
	}{{"", 0}, {"m", 42}, {strings.Repeat("x", MaxMetadataBytes), math.MaxInt64}, {strings.Repeat("y", 8), -1}} {
		got, err := decodeRecordPair(encodeKey("orders-app", "orders", 11), encodeValue(c.offset, c.metadata, 1234))
		if err != nil {
			t.Fatalf("metadata of %d bytes: %v", len(c.metadata), err)
		}
		want := decodedRecord{
			ok: &OffsetKey{Group: "orders-app", Topic: "orders", Partition: 11},
			ov: &OffsetValue{Offset: c.offset, LeaderEpoch: -1, Metadata: c.metadata, CommitTimestamp: 1234, ExpireTimestamp: -1},
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("metadata of %d bytes:\ngot  %v\nwant %v", len(c.metadata), got, want)
		}
	}
}

func TestRecordsRoundTrip(t *testing.T) {
	offsets := []OffsetValue{
		{Offset: 0, LeaderEpoch: -1, CommitTimestamp: 0, ExpireTimestamp: -1},
		{Offset: math.MaxInt64, LeaderEpoch: math.MaxInt32, Metadata: strings.Repeat("é", 100), CommitTimestamp: math.MaxInt64, ExpireTimestamp: -1},
		{Offset: -1, LeaderEpoch: 0, Metadata: "\x00\xff", CommitTimestamp: -1, ExpireTimestamp: -1},
	}
	for _, v := range offsets {
		k := OffsetKey{Group: "group é", Topic: strings.Repeat("t", 249), Partition: math.MaxInt32}
		got, err := decodeRecordPair(AppendOffsetKey(nil, k), AppendOffsetValue(nil, v))
		if err != nil {
			t.Fatal(err)
		}
		if want := (decodedRecord{ok: &k, ov: &v}); !reflect.DeepEqual(got, want) {
			t.Errorf("round trip:\ngot  %v\nwant %v", got, want)
		}
	}

	// Version 3 has no expire timestamp: it reads back as none.
	got, err := decodeRecordPair(AppendOffsetKey(nil, goldenOffsetKey), AppendOffsetValue(nil, OffsetValue{Offset: 1, LeaderEpoch: -1, ExpireTimestamp: 99}))
	if err != nil || got.ov.ExpireTimestamp != -1 {
		t.Errorf("expire timestamp after a round trip: %v, %v; want -1", got, err)
	}

	groups := []GroupValue{
		goldenGroupV3,
		{CurrentStateTimestamp: -1}, // a group that only commits offsets
		{ProtocolType: "connect", Generation: math.MaxInt32, Protocol: recordStr(""), Leader: recordStr(""), CurrentStateTimestamp: 0,
			Members: []MemberValue{{MemberID: "", InstanceID: recordStr(""), RebalanceTimeoutMs: -1, SessionTimeoutMs: math.MinInt32,
				Subscription: bytes.Repeat([]byte{1}, 70000), Assignment: bytes.Repeat([]byte{2}, 3)}}},
	}
	for _, v := range groups {
		k := GroupKey{Group: strings.Repeat("g", 300)}
		got, err := decodeRecordPair(AppendGroupKey(nil, k), AppendGroupValue(nil, v))
		if err != nil {
			t.Fatal(err)
		}
		if want := (decodedRecord{gk: &k, gv: &v}); !reflect.DeepEqual(got, want) {
			t.Errorf("round trip:\ngot  %v\nwant %v", got, want)
		}
	}

	// Appending to a buffer keeps what it held.
	dst := AppendGroupKey([]byte("prefix"), goldenGroupKey)
	if !bytes.HasPrefix(dst, []byte("prefix")) || !bytes.Equal(dst[6:], AppendGroupKey(nil, goldenGroupKey)) {
		t.Errorf("AppendGroupKey to a non-empty buffer: %x", dst)
	}
}

// A string longer than a record can hold is clipped, so the record stays readable.
func TestRecordsClipLongStrings(t *testing.T) {
	long := strings.Repeat("g", MaxRecordStringBytes+10)
	got, err := decodeRecordPair(AppendGroupKey(nil, GroupKey{Group: long}), AppendGroupValue(nil, GroupValue{Leader: &long,
		Members: []MemberValue{{MemberID: long, ClientHost: long}}}))
	if err != nil {
		t.Fatal(err)
	}
	clipped := long[:MaxRecordStringBytes]
	if got.gk.Group != clipped || *got.gv.Leader != clipped || got.gv.Members[0].MemberID != clipped || got.gv.Members[0].ClientHost != clipped {
		t.Errorf("long strings not clipped to %d bytes", MaxRecordStringBytes)
	}
}

// Decoded values own their memory: overwriting the record afterwards changes nothing.
func TestRecordsDoNotAliasInput(t *testing.T) {
	key, value := AppendGroupKey(nil, goldenGroupKey), AppendGroupValue(nil, goldenGroupV3)
	got, err := decodeRecordPair(key, value)
	if err != nil {
		t.Fatal(err)
	}
	for i := range key {
		key[i] = 0x5a
	}
	for i := range value {
		value[i] = 0x5a
	}
	if want := (decodedRecord{gk: &goldenGroupKey, gv: groupAs(3)}); !reflect.DeepEqual(got, want) {
		t.Errorf("decoded record changed with its input:\ngot  %v\nwant %v", got, want)
	}
}

// TestRecordsTruncated decodes every prefix and a one-byte extension of every golden key and
// value: each is malformed. The one exception is by design: Kafka's v1 offset value cut just
// before its expire timestamp is Thorstream's earlier layout.
func TestRecordsTruncated(t *testing.T) {
	for _, g := range goldenRecords(t) {
		t.Run(g.name, func(t *testing.T) {
			key, value := g.bytes(t)
			for i := range len(key) {
				if got, err := decodeRecordPair(key[:i], value); !errors.Is(err, ErrBadRecord) {
					t.Errorf("key cut to %d of %d bytes: %v, %v; want ErrBadRecord", i, len(key), got, err)
				}
			}
			if got, err := decodeRecordPair(append(bytes.Clone(key), 0), value); !errors.Is(err, ErrBadRecord) {
				t.Errorf("key with a trailing byte: %v, %v; want ErrBadRecord", got, err)
			}
			if value == nil {
				return
			}
			for i := range len(value) {
				got, err := decodeRecordPair(key, value[:i])
				if strings.Contains(g.name, "v1 (Kafka)") && i == len(value)-8 {
					if err != nil || got.ov.ExpireTimestamp != -1 {
						t.Errorf("Kafka's v1 value without its expire timestamp: %v, %v; want the earlier layout", got, err)
					}
					continue
				}
				if !errors.Is(err, ErrBadRecord) {
					t.Errorf("value cut to %d of %d bytes: %v, %v; want ErrBadRecord", i, len(value), got, err)
				}
			}
			if got, err := decodeRecordPair(key, append(bytes.Clone(value), 0)); !errors.Is(err, ErrBadRecord) {
				t.Errorf("value with a trailing byte: %v, %v; want ErrBadRecord", got, err)
			}
		})
	}
}

func TestRecordsErrors(t *testing.T) {
	offsetValueV3 := "0003 000000000000002a 00000005 0001 6d 0000018bcfe56800"
	f := func(name, key, value string, tombstone bool, want error) {
		t.Helper()
		k := unhexDump(t, key)
		var v []byte
		if !tombstone {
			v = unhexDump(t, value)
		}
		got, err := decodeRecordPair(k, v)
		if !errors.Is(err, want) {
			t.Errorf("%s: %v, %v; want %v", name, got, err, want)
		}
		if got != (decodedRecord{}) {
			t.Errorf("%s: results set with an error: %v", name, got)
		}
		if err != nil && !strings.HasPrefix(err.Error(), "groups: ") {
			t.Errorf("%s: error %q lacks the package prefix", name, err)
		}
	}
	// Record types of newer Kafka releases and nonsense versions are skipped, not fatal.
	for _, version := range []string{"0003", "0004", "0005", "000a", "7fff", "ffff", "8000"} {
		f("key version "+version, version+"0002 6731", offsetValueV3, false, ErrUnknownRecord)
		f("key version "+version+" tombstone", version, "", true, ErrUnknownRecord)
	}
	f("offset value v5", offsetKeyV1Hex, "0005"+offsetValueV3[4:], false, ErrUnknownRecord)
	f("group value v5", groupKeyV2Hex, "0005 0000 00000000 ffff ffff 00000000", false, ErrUnknownRecord)

	f("nil key", "", "", true, ErrBadRecord)
	f("one-byte key", "00", "", true, ErrBadRecord)
	f("empty value", offsetKeyV1Hex, "", false, ErrBadRecord)
	f("one-byte value", offsetKeyV1Hex, "00", false, ErrBadRecord)
	f("negative offset value version", offsetKeyV1Hex, "ffff"+offsetValueV3[4:], false, ErrBadRecord)
	f("negative group value version", groupKeyV2Hex, "8000 0000 00000000 ffff ffff 00000000", false, ErrBadRecord)
	f("null group in key", "0001 ffff 0001 74 00000007", "", true, ErrBadRecord)
	f("negative string length in key", "0002 fffe", "", true, ErrBadRecord)
	f("string longer than the key", "0002 7fff 6731", "", true, ErrBadRecord)
	f("null metadata", offsetKeyV1Hex, "0003 000000000000002a 00000005 ffff 0000018bcfe56800", false, ErrBadRecord)
	f("null compact metadata", offsetKeyV1Hex, "0004 000000000000002a 00000005 00 0000018bcfe56800 00", false, ErrBadRecord)
	f("offset value v1 with 4 extra bytes", offsetKeyV1Hex, "0001 000000000000002a 0001 6d 0000018bcfe56800 00000000", false, ErrBadRecord)
	f("tagged field longer than the value", offsetKeyV1Hex, "0004 000000000000002a 00000005 02 6d 0000018bcfe56800 01 00 10 0102", false, ErrBadRecord)
	f("tag count larger than the value", offsetKeyV1Hex, "0004 000000000000002a 00000005 02 6d 0000018bcfe56800 ffffffff0f", false, ErrBadRecord)
	f("varint of six bytes", offsetKeyV1Hex, "0004 000000000000002a 00000005 8080808080 00 0000018bcfe56800 00", false, ErrBadRecord)
	f("varint over 32 bits", offsetKeyV1Hex, "0004 000000000000002a 00000005 ffffffff1f 0000018bcfe56800 00", false, ErrBadRecord)
	f("compact string over 32767 bytes", offsetKeyV1Hex, "0004 000000000000002a 00000005 818002"+strings.Repeat("61", 32768)+"0000018bcfe56800 00", false, ErrBadRecord)
	f("null protocol type", groupKeyV2Hex, "0003 ffff 00000000 ffff ffff 0000018bcfe56800 00000000", false, ErrBadRecord)
	f("null members", groupKeyV2Hex, "0003 0000 00000000 ffff ffff 0000018bcfe56800 ffffffff", false, ErrBadRecord)
	f("null compact members", groupKeyV2Hex, "0004 01 00000000 00 00 0000018bcfe56800 00 00", false, ErrBadRecord)
	f("member count beyond the value", groupKeyV2Hex, "0003 0000 00000000 ffff ffff 0000018bcfe56800 7fffffff 0000", false, ErrBadRecord)
	f("null subscription", groupKeyV2Hex, "0003 0000 00000000 ffff ffff 0000018bcfe56800 00000001 0000 ffff 0000 0000 00000000 00000000 ffffffff 00000000", false, ErrBadRecord)
	f("subscription beyond the value", groupKeyV2Hex, "0003 0000 00000000 ffff ffff 0000018bcfe56800 00000001 0000 ffff 0000 0000 00000000 00000000 7fffffff 00000000", false, ErrBadRecord)
	f("negative instance id length", groupKeyV2Hex, "0003 0000 00000000 ffff ffff 0000018bcfe56800 00000001 0000 fffe 0000 0000 00000000 00000000 00000000 00000000", false, ErrBadRecord)
}

// TestRecordsHostileLengthsAllocateNothing checks that counts and lengths far beyond the record
// are refused before anything is allocated for them.
func TestRecordsHostileLengthsAllocateNothing(t *testing.T) {
	key := unhexDump(t, groupKeyV2Hex)
	for name, value := range map[string][]byte{
		"members":       unhexDump(t, "0003 0000 00000000 ffff ffff 0000018bcfe56800 7fffffff"+strings.Repeat("00", 64)),
		"compact count": unhexDump(t, "0004 01 00000000 00 00 0000018bcfe56800 ffffffff0f"+strings.Repeat("00", 64)),
		"subscription":  unhexDump(t, "0003 0000 00000000 ffff ffff 0000018bcfe56800 00000001 0000 ffff 0000 0000 00000000 00000000 7fffffff"+strings.Repeat("00", 64)),
		"tag":           unhexDump(t, "0004 01 00000000 00 00 0000018bcfe56800 01 01 00 ffffffff07"+strings.Repeat("00", 64)),
	} {
		var err error
		decodeIt := func() { _, _, _, _, err = DecodeRecord(key, value) }
		allocs := testing.AllocsPerRun(100, decodeIt)
		if !errors.Is(err, ErrBadRecord) {
			t.Errorf("%s: %v; want ErrBadRecord", name, err)
		}
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		for range 100 {
			decodeIt()
		}
		runtime.ReadMemStats(&after)
		// A few small objects (the key, the error and its message), nothing the size of the
		// claimed length.
		if perRun := (after.TotalAlloc - before.TotalAlloc) / 100; allocs > 16 || perRun > 4096 {
			t.Errorf("%s: %v allocations of %d bytes to refuse a hostile length", name, allocs, perRun)
		}
	}
}

// recordFootprint is about how many bytes of memory a decoded record holds.
func recordFootprint(d decodedRecord) int {
	n := 0
	if d.ok != nil {
		n += int(reflect.TypeFor[OffsetKey]().Size()) + len(d.ok.Group) + len(d.ok.Topic)
	}
	if d.ov != nil {
		n += int(reflect.TypeFor[OffsetValue]().Size()) + len(d.ov.Metadata)
	}
	if d.gk != nil {
		n += int(reflect.TypeFor[GroupKey]().Size()) + len(d.gk.Group)
	}
	if d.gv != nil {
		v := d.gv
		n += int(reflect.TypeFor[GroupValue]().Size()) + len(v.ProtocolType)
		for _, s := range []*string{v.Protocol, v.Leader} {
			if s != nil {
				n += 16 + len(*s)
			}
		}
		n += cap(v.Members) * int(reflect.TypeFor[MemberValue]().Size())
		for _, m := range v.Members {
			n += len(m.MemberID) + len(m.ClientID) + len(m.ClientHost) + cap(m.Subscription) + cap(m.Assignment)
			if m.InstanceID != nil {
				n += 16 + len(*m.InstanceID)
			}
		}
	}
	return n
}

// maxFootprint bounds the memory a decoded record may hold for its size: a member takes at least
// 15 bytes of a record and about 130 bytes of memory, everything else is about its own size.
func maxFootprint(key, value []byte) int { return 256 + 10*(len(key)+len(value)) }

func TestRecordsFootprintBound(t *testing.T) {
	// The densest records: many members of the fewest bytes each.
	many := GroupValue{Members: make([]MemberValue, 1000)}
	flexible := unhexDump(t, "0004 01 00000000 00 00 ffffffffffffffff e907"+strings.Repeat("01 01 01 01 00000000 00000000 01 01 00", 1000)+"00")
	for name, value := range map[string][]byte{"v3": AppendGroupValue(nil, many), "v4": flexible} {
		key := AppendGroupKey(nil, GroupKey{})
		got, err := decodeRecordPair(key, value)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if len(got.gv.Members) != 1000 {
			t.Fatalf("%s: %d members", name, len(got.gv.Members))
		}
		if fp, limit := recordFootprint(got), maxFootprint(key, value); fp > limit {
			t.Errorf("%s: %d bytes decoded from %d; limit %d", name, fp, len(key)+len(value), limit)
		}
	}
}

func BenchmarkDecodeGroupValue(b *testing.B) {
	key, value := AppendGroupKey(nil, goldenGroupKey), AppendGroupValue(nil, goldenGroupV3)
	b.ReportAllocs()
	b.SetBytes(int64(len(key) + len(value)))
	for b.Loop() {
		if _, _, _, _, err := DecodeRecord(key, value); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkAppendOffsetRecord(b *testing.B) {
	var buf []byte
	v := OffsetValue{Offset: 42, LeaderEpoch: 5, Metadata: "m", CommitTimestamp: goldenCommitMs}
	b.ReportAllocs()
	for b.Loop() {
		buf = AppendOffsetKey(buf[:0], goldenOffsetKey)
		buf = AppendOffsetValue(buf, v)
	}
}
