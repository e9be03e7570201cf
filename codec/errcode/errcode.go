// Package errcode holds the numeric error codes that both of Thorstream's protocols speak.
//
// The binary protocol reuses Apache Kafka's error numbers, so a code means the same thing on
// either listener and the Kafka endpoint needs no translation table. Each code says whether a
// client may retry the request as it is.
package errcode

import (
	"errors"
	"fmt"
)

// Code is a protocol error code.
type Code int16

// The codes Thorstream sends. Numbers are Apache Kafka's.
const (
	UnknownServerError           Code = -1
	None                         Code = 0
	OffsetOutOfRange             Code = 1
	CorruptMessage               Code = 2
	UnknownTopicOrPartition      Code = 3
	InvalidFetchSize             Code = 4
	LeaderNotAvailable           Code = 5
	NotLeaderOrFollower          Code = 6
	RequestTimedOut              Code = 7
	MessageTooLarge              Code = 10
	OffsetMetadataTooLarge       Code = 12
	NetworkException             Code = 13
	CoordinatorLoadInProgress    Code = 14
	CoordinatorNotAvailable      Code = 15
	NotCoordinator               Code = 16
	InvalidTopic                 Code = 17
	RecordListTooLarge           Code = 18
	NotEnoughReplicas            Code = 19
	NotEnoughReplicasAfterAppend Code = 20
	InvalidRequiredAcks          Code = 21
	IllegalGeneration            Code = 22
	InconsistentGroupProtocol    Code = 23
	InvalidGroupID               Code = 24
	UnknownMemberID              Code = 25
	InvalidSessionTimeout        Code = 26
	RebalanceInProgress          Code = 27
	InvalidCommitOffsetSize      Code = 28
	InvalidTimestamp             Code = 32
	UnsupportedVersion           Code = 35
	TopicAlreadyExists           Code = 36
	InvalidPartitions            Code = 37
	InvalidReplicationFactor     Code = 38
	InvalidReplicaAssignment     Code = 39
	InvalidConfig                Code = 40
	NotController                Code = 41
	InvalidRequest               Code = 42
	PolicyViolation              Code = 44
	OutOfOrderSequenceNumber     Code = 45
	DuplicateSequenceNumber      Code = 46
	InvalidProducerEpoch         Code = 47
	KafkaStorageError            Code = 56
	UnknownProducerID            Code = 59
	NonEmptyGroup                Code = 68
	GroupIDNotFound              Code = 69
	FencedLeaderEpoch            Code = 74
	UnknownLeaderEpoch           Code = 75
	StaleBrokerEpoch             Code = 77
	OffsetNotAvailable           Code = 78
	MemberIDRequired             Code = 79
	GroupMaxSizeReached          Code = 81
	FencedInstanceID             Code = 82
	GroupSubscribedToTopic       Code = 86
	InvalidRecord                Code = 87
	UnstableOffsetCommit         Code = 88
	ThrottlingQuotaExceeded      Code = 89
	InvalidUpdateVersion         Code = 95
	UnknownTopicID               Code = 100
	InconsistentTopicID          Code = 103
	IneligibleReplica            Code = 107
)

type info struct {
	name      string
	retryable bool
}

var infos = map[Code]info{
	UnknownServerError:           {"UNKNOWN_SERVER_ERROR", false},
	None:                         {"NONE", false},
	OffsetOutOfRange:             {"OFFSET_OUT_OF_RANGE", false},
	CorruptMessage:               {"CORRUPT_MESSAGE", true},
	UnknownTopicOrPartition:      {"UNKNOWN_TOPIC_OR_PARTITION", true},
	InvalidFetchSize:             {"INVALID_FETCH_SIZE", false},
	LeaderNotAvailable:           {"LEADER_NOT_AVAILABLE", true},
	NotLeaderOrFollower:          {"NOT_LEADER_OR_FOLLOWER", true},
	RequestTimedOut:              {"REQUEST_TIMED_OUT", true},
	MessageTooLarge:              {"MESSAGE_TOO_LARGE", false},
	OffsetMetadataTooLarge:       {"OFFSET_METADATA_TOO_LARGE", false},
	NetworkException:             {"NETWORK_EXCEPTION", true},
	CoordinatorLoadInProgress:    {"COORDINATOR_LOAD_IN_PROGRESS", true},
	CoordinatorNotAvailable:      {"COORDINATOR_NOT_AVAILABLE", true},
	NotCoordinator:               {"NOT_COORDINATOR", true},
	InvalidTopic:                 {"INVALID_TOPIC_EXCEPTION", false},
	RecordListTooLarge:           {"RECORD_LIST_TOO_LARGE", false},
	NotEnoughReplicas:            {"NOT_ENOUGH_REPLICAS", true},
	NotEnoughReplicasAfterAppend: {"NOT_ENOUGH_REPLICAS_AFTER_APPEND", true},
	InvalidRequiredAcks:          {"INVALID_REQUIRED_ACKS", false},
	IllegalGeneration:            {"ILLEGAL_GENERATION", false},
	InconsistentGroupProtocol:    {"INCONSISTENT_GROUP_PROTOCOL", false},
	InvalidGroupID:               {"INVALID_GROUP_ID", false},
	UnknownMemberID:              {"UNKNOWN_MEMBER_ID", false},
	InvalidSessionTimeout:        {"INVALID_SESSION_TIMEOUT", false},
	RebalanceInProgress:          {"REBALANCE_IN_PROGRESS", false},
	InvalidCommitOffsetSize:      {"INVALID_COMMIT_OFFSET_SIZE", false},
	InvalidTimestamp:             {"INVALID_TIMESTAMP", false},
	UnsupportedVersion:           {"UNSUPPORTED_VERSION", false},
	TopicAlreadyExists:           {"TOPIC_ALREADY_EXISTS", false},
	InvalidPartitions:            {"INVALID_PARTITIONS", false},
	InvalidReplicationFactor:     {"INVALID_REPLICATION_FACTOR", false},
	InvalidReplicaAssignment:     {"INVALID_REPLICA_ASSIGNMENT", false},
	InvalidConfig:                {"INVALID_CONFIG", false},
	NotController:                {"NOT_CONTROLLER", true},
	InvalidRequest:               {"INVALID_REQUEST", false},
	PolicyViolation:              {"POLICY_VIOLATION", false},
	OutOfOrderSequenceNumber:     {"OUT_OF_ORDER_SEQUENCE_NUMBER", false},
	DuplicateSequenceNumber:      {"DUPLICATE_SEQUENCE_NUMBER", false},
	InvalidProducerEpoch:         {"INVALID_PRODUCER_EPOCH", false},
	KafkaStorageError:            {"KAFKA_STORAGE_ERROR", true},
	UnknownProducerID:            {"UNKNOWN_PRODUCER_ID", false},
	NonEmptyGroup:                {"NON_EMPTY_GROUP", false},
	GroupIDNotFound:              {"GROUP_ID_NOT_FOUND", false},
	FencedLeaderEpoch:            {"FENCED_LEADER_EPOCH", true},
	UnknownLeaderEpoch:           {"UNKNOWN_LEADER_EPOCH", true},
	StaleBrokerEpoch:             {"STALE_BROKER_EPOCH", false},
	OffsetNotAvailable:           {"OFFSET_NOT_AVAILABLE", true},
	MemberIDRequired:             {"MEMBER_ID_REQUIRED", false},
	GroupMaxSizeReached:          {"GROUP_MAX_SIZE_REACHED", false},
	FencedInstanceID:             {"FENCED_INSTANCE_ID", false},
	GroupSubscribedToTopic:       {"GROUP_SUBSCRIBED_TO_TOPIC", false},
	InvalidRecord:                {"INVALID_RECORD", false},
	UnstableOffsetCommit:         {"UNSTABLE_OFFSET_COMMIT", true},
	ThrottlingQuotaExceeded:      {"THROTTLING_QUOTA_EXCEEDED", true},
	InvalidUpdateVersion:         {"INVALID_UPDATE_VERSION", false},
	UnknownTopicID:               {"UNKNOWN_TOPIC_ID", true},
	InconsistentTopicID:          {"INCONSISTENT_TOPIC_ID", true},
	IneligibleReplica:            {"INELIGIBLE_REPLICA", false},
}

// String is the Kafka name of the code, e.g. "NOT_LEADER_OR_FOLLOWER".
func (c Code) String() string {
	if in, ok := infos[c]; ok {
		return in.name
	}
	return fmt.Sprintf("ERROR_%d", int16(c))
}

// Retryable reports whether a client may send the same request again and expect it to work.
func (c Code) Retryable() bool { return infos[c].retryable }

// Error is a protocol error: a code and a human-readable message.
type Error struct {
	Code    Code
	Message string
}

// New returns an *Error with a formatted message.
func New(c Code, format string, args ...any) *Error {
	return &Error{Code: c, Message: fmt.Sprintf(format, args...)}
}

func (e *Error) Error() string {
	if e.Message == "" {
		return e.Code.String()
	}
	return e.Code.String() + ": " + e.Message
}

// Is lets errors.Is match any *Error with the same code: errors.Is(err, &Error{Code: c}).
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Code == e.Code
}

// Of returns the code carried by err: None for nil, the code of an *Error found with errors.As,
// UnknownServerError otherwise.
func Of(err error) Code {
	if err == nil {
		return None
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return UnknownServerError
}
