package meta

import (
	"fmt"
	"math"

	"github.com/thorstream/thorstream/codec/errcode"
)

// MaxPartitionsPerTopic bounds the partitions one topic may have. The proposer enforces its own,
// smaller limits; this one keeps a command that slipped past them from making every node of the
// cluster allocate without bound at the same log index.
const MaxPartitionsPerTopic = 100_000

// Apply applies cmd, the log entry at index, to img and returns the new image and what the
// command did. It is a pure function: img is never changed (the new image shares every node and
// topic cmd leaves alone), and the same image, index and command give the same result on every
// node. The new image's Index is index even when the command is refused or changes nothing: the
// entry was applied. A nil img is Empty().
//
// Outcomes are Kafka error codes in Result.Code (CreateTopics: Result.Codes, one per topic). A
// command that no longer applies (a stale incarnation, an already named cluster) is not an
// error: code 0, with Result.Message saying that nothing changed.
func Apply(img *Image, index uint64, cmd Command) (*Image, Result) {
	if img == nil {
		img = Empty()
	}
	c := begin(img, index)
	var res Result
	switch {
	case commandFields(cmd) != 1:
		res = refused(errcode.InvalidRequest, "meta: a command sets exactly one field, this one sets %d", commandFields(cmd))
	case cmd.Init != nil:
		res = c.initCluster(cmd.Init)
	case cmd.Register != nil:
		res = c.register(cmd.Register, index)
	case cmd.Fence != nil:
		res = c.fence(cmd.Fence)
	case cmd.Unfence != nil:
		res = c.unfence(cmd.Unfence)
	case cmd.CreateTopics != nil:
		res = c.createTopics(cmd.CreateTopics)
	case cmd.DeleteTopic != nil:
		res = c.deleteTopicCmd(cmd.DeleteTopic)
	case cmd.AlterConfigs != nil:
		res = c.alterConfigs(cmd.AlterConfigs)
	case cmd.CreatePartitions != nil:
		res = c.createPartitions(cmd.CreatePartitions)
	case cmd.AllocProducerIDs != nil:
		res = c.allocProducerIDs(cmd.AllocProducerIDs)
	case cmd.AlterPartition != nil:
		res = c.alterPartition(cmd.AlterPartition)
	}
	return c.img, res
}

// commandFields is the number of cmd's fields that are set.
func commandFields(cmd Command) int {
	n := 0
	for _, set := range []bool{
		cmd.Init != nil, cmd.Register != nil, cmd.Fence != nil, cmd.Unfence != nil,
		cmd.CreateTopics != nil, cmd.DeleteTopic != nil, cmd.AlterConfigs != nil,
		cmd.CreatePartitions != nil, cmd.AllocProducerIDs != nil, cmd.AlterPartition != nil,
	} {
		if set {
			n++
		}
	}
	return n
}

// refused is the result of a command refused with code.
func refused(code errcode.Code, format string, args ...any) Result {
	return Result{Code: int16(code), Message: fmt.Sprintf(format, args...)}
}

// unchanged is the result of a command that no longer applies: not an error.
func unchanged(format string, args ...any) Result {
	return Result{Message: fmt.Sprintf(format, args...)}
}

func (c *change) initCluster(cmd *InitCluster) Result {
	if cmd.ClusterID == "" {
		return refused(errcode.InvalidRequest, "meta: the cluster id is empty")
	}
	if c.img.ClusterID != "" {
		return unchanged("meta: nothing changed, the cluster is already named %q", c.img.ClusterID)
	}
	c.img.ClusterID = cmd.ClusterID
	c.img.NextProducerID = max(c.img.NextProducerID, cmd.NextProducerID)
	return Result{}
}

func (c *change) allocProducerIDs(cmd *AllocProducerIDs) Result {
	if cmd.Count <= 0 {
		return refused(errcode.InvalidRequest, "meta: a producer-id block of %d ids", cmd.Count)
	}
	start := c.img.NextProducerID
	if start < 0 || cmd.Count > math.MaxInt64-start {
		return refused(errcode.InvalidRequest, "meta: %d producer ids from %d run past the largest id", cmd.Count, start)
	}
	c.img.NextProducerID = start + cmd.Count
	return Result{ProducerIDStart: start}
}
