package errcode

import (
	"errors"
	"fmt"
	"io"
	"testing"
)

// codes is every code with its Kafka name and whether a client may retry, as Apache Kafka
// defines them (org.apache.kafka.common.protocol.Errors).
var codes = []struct {
	code      Code
	number    int16
	name      string
	retryable bool
}{
	{UnknownServerError, -1, "UNKNOWN_SERVER_ERROR", false},
	{None, 0, "NONE", false},
	{OffsetOutOfRange, 1, "OFFSET_OUT_OF_RANGE", false},
	{CorruptMessage, 2, "CORRUPT_MESSAGE", true},
	{UnknownTopicOrPartition, 3, "UNKNOWN_TOPIC_OR_PARTITION", true},
	{InvalidFetchSize, 4, "INVALID_FETCH_SIZE", false},
	{LeaderNotAvailable, 5, "LEADER_NOT_AVAILABLE", true},
	{NotLeaderOrFollower, 6, "NOT_LEADER_OR_FOLLOWER", true},
	{RequestTimedOut, 7, "REQUEST_TIMED_OUT", true},
	{MessageTooLarge, 10, "MESSAGE_TOO_LARGE", false},
	{OffsetMetadataTooLarge, 12, "OFFSET_METADATA_TOO_LARGE", false},
	{NetworkException, 13, "NETWORK_EXCEPTION", true},
	{CoordinatorLoadInProgress, 14, "COORDINATOR_LOAD_IN_PROGRESS", true},
	{CoordinatorNotAvailable, 15, "COORDINATOR_NOT_AVAILABLE", true},
	{NotCoordinator, 16, "NOT_COORDINATOR", true},
	{InvalidTopic, 17, "INVALID_TOPIC_EXCEPTION", false},
	{RecordListTooLarge, 18, "RECORD_LIST_TOO_LARGE", false},
	{NotEnoughReplicas, 19, "NOT_ENOUGH_REPLICAS", true},
	{NotEnoughReplicasAfterAppend, 20, "NOT_ENOUGH_REPLICAS_AFTER_APPEND", true},
	{InvalidRequiredAcks, 21, "INVALID_REQUIRED_ACKS", false},
	{IllegalGeneration, 22, "ILLEGAL_GENERATION", false},
	{InconsistentGroupProtocol, 23, "INCONSISTENT_GROUP_PROTOCOL", false},
	{InvalidGroupID, 24, "INVALID_GROUP_ID", false},
	{UnknownMemberID, 25, "UNKNOWN_MEMBER_ID", false},
	{InvalidSessionTimeout, 26, "INVALID_SESSION_TIMEOUT", false},
	{RebalanceInProgress, 27, "REBALANCE_IN_PROGRESS", false},
	{InvalidCommitOffsetSize, 28, "INVALID_COMMIT_OFFSET_SIZE", false},
	{InvalidTimestamp, 32, "INVALID_TIMESTAMP", false},
	{UnsupportedVersion, 35, "UNSUPPORTED_VERSION", false},
	{TopicAlreadyExists, 36, "TOPIC_ALREADY_EXISTS", false},
	{InvalidPartitions, 37, "INVALID_PARTITIONS", false},
	{InvalidReplicationFactor, 38, "INVALID_REPLICATION_FACTOR", false},
	{InvalidReplicaAssignment, 39, "INVALID_REPLICA_ASSIGNMENT", false},
	{InvalidConfig, 40, "INVALID_CONFIG", false},
	{NotController, 41, "NOT_CONTROLLER", true},
	{InvalidRequest, 42, "INVALID_REQUEST", false},
	{PolicyViolation, 44, "POLICY_VIOLATION", false},
	{OutOfOrderSequenceNumber, 45, "OUT_OF_ORDER_SEQUENCE_NUMBER", false},
	{DuplicateSequenceNumber, 46, "DUPLICATE_SEQUENCE_NUMBER", false},
	{InvalidProducerEpoch, 47, "INVALID_PRODUCER_EPOCH", false},
	{KafkaStorageError, 56, "KAFKA_STORAGE_ERROR", true},
	{UnknownProducerID, 59, "UNKNOWN_PRODUCER_ID", false},
	{NonEmptyGroup, 68, "NON_EMPTY_GROUP", false},
	{GroupIDNotFound, 69, "GROUP_ID_NOT_FOUND", false},
	{FencedLeaderEpoch, 74, "FENCED_LEADER_EPOCH", true},
	{UnknownLeaderEpoch, 75, "UNKNOWN_LEADER_EPOCH", true},
	{StaleBrokerEpoch, 77, "STALE_BROKER_EPOCH", false},
	{OffsetNotAvailable, 78, "OFFSET_NOT_AVAILABLE", true},
	{MemberIDRequired, 79, "MEMBER_ID_REQUIRED", false},
	{GroupMaxSizeReached, 81, "GROUP_MAX_SIZE_REACHED", false},
	{FencedInstanceID, 82, "FENCED_INSTANCE_ID", false},
	{GroupSubscribedToTopic, 86, "GROUP_SUBSCRIBED_TO_TOPIC", false},
	{InvalidRecord, 87, "INVALID_RECORD", false},
	{UnstableOffsetCommit, 88, "UNSTABLE_OFFSET_COMMIT", true},
	{ThrottlingQuotaExceeded, 89, "THROTTLING_QUOTA_EXCEEDED", true},
	{InvalidUpdateVersion, 95, "INVALID_UPDATE_VERSION", false},
	{UnknownTopicID, 100, "UNKNOWN_TOPIC_ID", true},
	{InconsistentTopicID, 103, "INCONSISTENT_TOPIC_ID", true},
	{IneligibleReplica, 107, "INELIGIBLE_REPLICA", false},
}

func TestCodes(t *testing.T) {
	if len(codes) != len(infos) {
		t.Fatalf("the table knows %d codes, the package %d", len(codes), len(infos))
	}
	for _, c := range codes {
		if int16(c.code) != c.number {
			t.Errorf("%s = %d, want %d", c.name, c.code, c.number)
		}
		if got := c.code.String(); got != c.name {
			t.Errorf("Code(%d).String() = %q, want %q", c.number, got, c.name)
		}
		if got := c.code.Retryable(); got != c.retryable {
			t.Errorf("%s.Retryable() = %v, want %v", c.name, got, c.retryable)
		}
	}
}

func TestUnknownCode(t *testing.T) {
	for _, c := range []Code{8, 9, 34, 200, -2, 32767, -32768} {
		if got, want := c.String(), fmt.Sprintf("ERROR_%d", int16(c)); got != want {
			t.Errorf("String() = %q, want %q", got, want)
		}
		if c.Retryable() {
			t.Errorf("unknown code %d is retryable", c)
		}
	}
}

func TestError(t *testing.T) {
	f := func(err *Error, want string) {
		t.Helper()
		if got := err.Error(); got != want {
			t.Errorf("Error() = %q, want %q", got, want)
		}
	}
	f(&Error{Code: NotLeaderOrFollower}, "NOT_LEADER_OR_FOLLOWER")
	f(New(UnknownTopicOrPartition, "topic %q partition %d", "orders", 3), `UNKNOWN_TOPIC_OR_PARTITION: topic "orders" partition 3`)
	f(New(42, "no format args"), "INVALID_REQUEST: no format args")
	f(New(9, "x"), "ERROR_9: x")
}

func TestOf(t *testing.T) {
	f := func(err error, want Code) {
		t.Helper()
		if got := Of(err); got != want {
			t.Errorf("Of(%v) = %v, want %v", err, got, want)
		}
	}
	f(nil, None)
	f(io.EOF, UnknownServerError)
	f(errors.New("plain"), UnknownServerError)
	f(New(NotCoordinator, "moved"), NotCoordinator)
	f(fmt.Errorf("commit: %w", New(RebalanceInProgress, "")), RebalanceInProgress)
	f(fmt.Errorf("outer: %w", fmt.Errorf("inner: %w", &Error{Code: KafkaStorageError})), KafkaStorageError)
	f(errors.Join(io.EOF, New(RequestTimedOut, "")), RequestTimedOut)
	// An *Error carrying None is still None: Of reports what the error says.
	f(&Error{Code: None}, None)
}

func TestIs(t *testing.T) {
	err := fmt.Errorf("produce orders-3: %w", New(NotLeaderOrFollower, "leader is 2"))
	if !errors.Is(err, &Error{Code: NotLeaderOrFollower}) {
		t.Error("errors.Is does not match the same code through a wrap")
	}
	if !errors.Is(err, New(NotLeaderOrFollower, "a different message")) {
		t.Error("errors.Is compares messages, want codes only")
	}
	if errors.Is(err, &Error{Code: LeaderNotAvailable}) {
		t.Error("errors.Is matches a different code")
	}
	if errors.Is(err, io.EOF) {
		t.Error("errors.Is mixes *Error and other errors")
	}
	var target *Error
	if !errors.As(err, &target) || target.Code != NotLeaderOrFollower || target.Message != "leader is 2" {
		t.Errorf("errors.As = %+v", target)
	}
}
