package meta

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
)

// Encodings. A command is the JSON of Command, one field set: the payload of a raft log entry.
// An image is the JSON of imageWire: the applied state in a raft snapshot, nodes sorted by id
// and topics by name, so one image always encodes to the same bytes.

// ErrBadImage is an image encoding that does not decode or breaks the image's invariants.
var ErrBadImage = errors.New("meta: bad image")

// imageVersion is the version of the image encoding EncodeImage writes and DecodeImage reads.
const imageVersion = 1

type imageWire struct {
	Version        int     `json:"version"`
	Index          uint64  `json:"index"`
	ClusterID      string  `json:"cluster_id"`
	NextProducerID int64   `json:"next_producer_id"`
	Nodes          []Node  `json:"nodes"`
	Topics         []Topic `json:"topics"`
}

// EncodeCommand encodes cmd, which sets exactly one field.
func EncodeCommand(cmd Command) ([]byte, error) {
	if n := commandFields(cmd); n != 1 {
		return nil, fmt.Errorf("%w: %d fields set, not 1", ErrBadCommand, n)
	}
	b, err := json.Marshal(cmd)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadCommand, err)
	}
	return b, nil
}

// DecodeCommand decodes a command EncodeCommand encoded. Anything else, and a command with no
// field or more than one set (one from a newer version this one does not know, say), is an
// error wrapping ErrBadCommand.
func DecodeCommand(b []byte) (Command, error) {
	var cmd Command
	if err := json.Unmarshal(b, &cmd); err != nil {
		return Command{}, fmt.Errorf("%w: %w", ErrBadCommand, err)
	}
	if n := commandFields(cmd); n != 1 {
		return Command{}, fmt.Errorf("%w: %d fields set, not 1", ErrBadCommand, n)
	}
	return cmd, nil
}

// EncodeImage encodes img for a raft snapshot.
func EncodeImage(img *Image) ([]byte, error) {
	if img == nil {
		img = Empty()
	}
	w := imageWire{
		Version:        imageVersion,
		Index:          img.Index,
		ClusterID:      img.ClusterID,
		NextProducerID: img.NextProducerID,
		Nodes:          make([]Node, 0, len(img.NodeIDs)),
		Topics:         make([]Topic, 0, len(img.Names)),
	}
	for _, id := range img.NodeIDs {
		n := img.Nodes[id]
		if n == nil {
			return nil, fmt.Errorf("%w: node %d is listed but missing", ErrBadImage, id)
		}
		w.Nodes = append(w.Nodes, *n)
	}
	for _, name := range img.Names {
		t := img.Topics[name]
		if t == nil {
			return nil, fmt.Errorf("%w: topic %q is listed but missing", ErrBadImage, name)
		}
		w.Topics = append(w.Topics, *t)
	}
	if len(w.Nodes) != len(img.Nodes) || len(w.Topics) != len(img.Topics) {
		return nil, fmt.Errorf("%w: the sorted node ids or topic names do not match the maps", ErrBadImage)
	}
	b, err := json.Marshal(w)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadImage, err)
	}
	return b, nil
}

// DecodeImage decodes an image EncodeImage encoded, checking its invariants: unique node ids
// and topic names, every partition with at least one distinct replica, an ISR of replicas that
// is not empty, and a leader that is NoLeader or a replica. Anything else is an error wrapping
// ErrBadImage.
func DecodeImage(b []byte) (*Image, error) {
	var w imageWire
	if err := json.Unmarshal(b, &w); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadImage, err)
	}
	if w.Version != imageVersion {
		return nil, fmt.Errorf("%w: version %d, this node reads %d", ErrBadImage, w.Version, imageVersion)
	}
	if w.NextProducerID < 0 {
		return nil, fmt.Errorf("%w: next producer id %d is negative", ErrBadImage, w.NextProducerID)
	}
	img := Empty()
	img.Index, img.ClusterID, img.NextProducerID = w.Index, w.ClusterID, w.NextProducerID
	for i := range w.Nodes {
		n := &w.Nodes[i]
		if n.ID < 0 {
			return nil, fmt.Errorf("%w: node id %d is negative", ErrBadImage, n.ID)
		}
		if img.Nodes[n.ID] != nil {
			return nil, fmt.Errorf("%w: node %d appears twice", ErrBadImage, n.ID)
		}
		img.Nodes[n.ID] = n
		img.NodeIDs = append(img.NodeIDs, n.ID)
	}
	slices.Sort(img.NodeIDs)
	for i := range w.Topics {
		t := &w.Topics[i]
		if t.Name == "" {
			return nil, fmt.Errorf("%w: a topic has no name", ErrBadImage)
		}
		if img.Topics[t.Name] != nil {
			return nil, fmt.Errorf("%w: topic %q appears twice", ErrBadImage, t.Name)
		}
		if len(t.Partitions) == 0 {
			return nil, fmt.Errorf("%w: topic %q has no partitions", ErrBadImage, t.Name)
		}
		for p := range t.Partitions {
			if err := checkPartition(&t.Partitions[p]); err != nil {
				return nil, fmt.Errorf("%w: topic %q partition %d: %s", ErrBadImage, t.Name, p, err)
			}
		}
		t.Configs = copyConfigs(t.Configs)
		img.Topics[t.Name] = t
		img.Names = append(img.Names, t.Name)
	}
	slices.Sort(img.Names)
	return img, nil
}

// checkPartition says what is wrong with p, if anything.
func checkPartition(p *Partition) error {
	if len(p.Replicas) == 0 {
		return errors.New("no replicas")
	}
	replicas := slices.Sorted(slices.Values(p.Replicas))
	if replicas[0] < 0 {
		return fmt.Errorf("replica %d is negative", replicas[0])
	}
	if r, ok := duplicate(replicas); ok {
		return fmt.Errorf("replica %d appears twice", r)
	}
	if len(p.ISR) == 0 {
		return errors.New("the ISR is empty")
	}
	isr := slices.Sorted(slices.Values(p.ISR))
	if r, ok := duplicate(isr); ok {
		return fmt.Errorf("ISR member %d appears twice", r)
	}
	for _, r := range isr {
		if _, found := slices.BinarySearch(replicas, r); !found {
			return fmt.Errorf("ISR member %d is not a replica", r)
		}
	}
	if _, found := slices.BinarySearch(replicas, p.Leader); p.Leader != NoLeader && !found {
		return fmt.Errorf("leader %d is not a replica", p.Leader)
	}
	if p.LeaderEpoch < 0 || p.PartitionEpoch < 0 {
		return fmt.Errorf("negative epochs %d/%d", p.LeaderEpoch, p.PartitionEpoch)
	}
	return nil
}

// duplicate is an id that appears twice in sorted.
func duplicate(sorted []int32) (int32, bool) {
	for i := 1; i < len(sorted); i++ {
		if sorted[i] == sorted[i-1] {
			return sorted[i], true
		}
	}
	return 0, false
}
