package meta

import (
	"fmt"
	"maps"

	"github.com/thorstream/thorstream/codec/errcode"
)

// Topic commands. Each carries the topic id its proposer saw, so a command proposed from a stale
// view (the topic deleted and created again meanwhile) is refused with
// UNKNOWN_TOPIC_OR_PARTITION instead of changing the new topic.

func (c *change) createTopics(cmd *CreateTopics) Result {
	var res Result
	seen := make(map[string]bool, len(cmd.Topics))
	for i := range cmd.Topics {
		code, msg := c.createTopic(&cmd.Topics[i], seen)
		res.Codes = append(res.Codes, int16(code))
		res.Messages = append(res.Messages, msg)
	}
	return res
}

// createTopic creates one topic of a CreateTopics; seen holds the names earlier in the command.
func (c *change) createTopic(nt *NewTopic, seen map[string]bool) (errcode.Code, string) {
	repeated := seen[nt.Name]
	seen[nt.Name] = true
	live := c.img.liveIDs()
	switch {
	case nt.Name == "":
		return errcode.InvalidTopic, "meta: the topic name is empty"
	case repeated:
		return errcode.TopicAlreadyExists, fmt.Sprintf("meta: topic %q is named twice in the request", nt.Name)
	case c.img.Topics[nt.Name] != nil:
		return errcode.TopicAlreadyExists, fmt.Sprintf("meta: topic %q already exists", nt.Name)
	}
	if code, msg := checkReplicationFactor(nt.ReplicationFactor, len(live)); code != errcode.None {
		return code, msg
	}
	if code, msg := checkPartitionCount(nt.Partitions); code != errcode.None {
		return code, msg
	}
	c.putTopic(&Topic{
		Name:              nt.Name,
		ID:                nt.ID,
		Internal:          nt.Internal,
		ReplicationFactor: nt.ReplicationFactor,
		Configs:           copyConfigs(nt.Configs),
		Partitions:        place(live, placementStart(c.img, len(live)), int(nt.Partitions), int(nt.ReplicationFactor)),
	})
	return errcode.None, ""
}

func (c *change) deleteTopicCmd(cmd *DeleteTopic) Result {
	if _, res, ok := c.topicWithID(cmd.Name, cmd.ID); !ok {
		return res
	}
	c.deleteTopic(cmd.Name)
	return Result{}
}

func (c *change) alterConfigs(cmd *AlterConfigs) Result {
	old, res, ok := c.topicWithID(cmd.Name, cmd.ID)
	if !ok {
		return res
	}
	t := *old
	t.Configs = copyConfigs(cmd.Configs)
	c.putTopic(&t)
	return Result{}
}

func (c *change) createPartitions(cmd *CreatePartitions) Result {
	old, res, ok := c.topicWithID(cmd.Name, cmd.ID)
	if !ok {
		return res
	}
	have := int32(len(old.Partitions))
	switch {
	case have != cmd.From:
		return refused(errcode.InvalidPartitions, "meta: topic %q has %d partitions, not %d", cmd.Name, have, cmd.From)
	case cmd.Count <= cmd.From:
		return refused(errcode.InvalidPartitions, "meta: topic %q has %d partitions, %d is not more", cmd.Name, have, cmd.Count)
	}
	if code, msg := checkPartitionCount(cmd.Count); code != errcode.None {
		return Result{Code: int16(code), Message: msg}
	}
	live := c.img.liveIDs()
	if code, msg := checkReplicationFactor(old.ReplicationFactor, len(live)); code != errcode.None {
		return Result{Code: int16(code), Message: msg}
	}
	added := place(live, placementStart(c.img, len(live)), int(cmd.Count-cmd.From), int(old.ReplicationFactor))
	t := *old
	t.Partitions = make([]Partition, 0, cmd.Count)
	t.Partitions = append(append(t.Partitions, old.Partitions...), added...)
	c.putTopic(&t)
	return Result{}
}

// topicWithID is topic name if its id is id; otherwise false and the refusal.
func (c *change) topicWithID(name string, id [16]byte) (*Topic, Result, bool) {
	t := c.img.Topics[name]
	switch {
	case t == nil:
		return nil, refused(errcode.UnknownTopicOrPartition, "meta: topic %q does not exist", name), false
	case t.ID != id:
		return nil, refused(errcode.UnknownTopicOrPartition, "meta: topic %q has another id (deleted and created again)", name), false
	}
	return t, Result{}, true
}

func checkReplicationFactor(rf int16, live int) (errcode.Code, string) {
	switch {
	case rf < 1:
		return errcode.InvalidReplicationFactor, fmt.Sprintf("meta: replication factor %d is below 1", rf)
	case int(rf) > live:
		return errcode.InvalidReplicationFactor, fmt.Sprintf("meta: replication factor %d is larger than the %d available nodes", rf, live)
	}
	return errcode.None, ""
}

func checkPartitionCount(n int32) (errcode.Code, string) {
	switch {
	case n < 1:
		return errcode.InvalidPartitions, fmt.Sprintf("meta: %d partitions, a topic has at least 1", n)
	case n > MaxPartitionsPerTopic:
		return errcode.InvalidPartitions, fmt.Sprintf("meta: %d partitions, a topic has at most %d", n, MaxPartitionsPerTopic)
	}
	return errcode.None, ""
}

// copyConfigs is a copy of configs, nil when empty (the form an image decodes to).
func copyConfigs(configs map[string]string) map[string]string {
	if len(configs) == 0 {
		return nil
	}
	return maps.Clone(configs)
}
