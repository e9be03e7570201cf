package client

import (
	"bytes"
	"context"
	"fmt"
	"sort"

	"github.com/thorstream/thorstream/codec/errcode"
	"github.com/thorstream/thorstream/codec/proto"
)

// GroupListing is one consumer group in ListGroups' answer.
type GroupListing struct {
	Group string
	// ProtocolType is "consumer" for Kafka consumers and this package's; "" for a group that only
	// ever had offsets committed.
	ProtocolType string
	// State is Empty, PreparingRebalance, CompletingRebalance or Stable.
	State string
}

// GroupDescription is a consumer group as DescribeGroup finds it.
type GroupDescription struct {
	Group string
	// State is Empty, PreparingRebalance, CompletingRebalance or Stable (Dead groups are
	// answered with GROUP_ID_NOT_FOUND).
	State        string
	ProtocolType string
	// Protocol is the assignor the members agreed on, set only while Stable.
	Protocol string
	Members  []GroupMember
}

// GroupMember is one member of a GroupDescription. For ProtocolType "consumer", Metadata and
// Assignment hold Kafka's ConsumerProtocolSubscription and ConsumerProtocolAssignment.
type GroupMember struct {
	MemberID   string
	InstanceID string // a static member's group.instance.id; "" for a dynamic member
	ClientID   string
	ClientHost string
	Metadata   []byte // only while the group is Stable
	Assignment []byte
}

// ListGroups returns the consumer groups the broker coordinates, sorted by id; with states, only
// those in one of them (Empty, PreparingRebalance, CompletingRebalance, Stable).
func (c *Client) ListGroups(ctx context.Context, states ...string) ([]GroupListing, error) {
	req := proto.ListGroupsRequest{States: states}
	var out []GroupListing
	err := retry(ctx, adminAttempts, func() error {
		body, b, err := c.roundTripAny(ctx, proto.KeyListGroups, req.AppendTo)
		if err != nil {
			return err
		}
		var resp proto.ListGroupsResponse
		if err := resp.ReadFrom(body); err != nil {
			return b.brokerError(fmt.Errorf("%w: ListGroups: %v", errProtocol, err))
		}
		if resp.ErrorCode != 0 {
			return b.brokerError(&errcode.Error{Code: errcode.Code(resp.ErrorCode), Message: resp.ErrorMessage})
		}
		out = make([]GroupListing, 0, len(resp.Groups))
		for _, g := range resp.Groups {
			out = append(out, GroupListing{Group: g.Group, ProtocolType: g.ProtocolType, State: g.State})
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Group < out[j].Group })
	return out, nil
}

// DescribeGroup returns a consumer group's state and members. A group the broker does not have
// is an *errcode.Error with GROUP_ID_NOT_FOUND.
func (c *Client) DescribeGroup(ctx context.Context, group string) (*GroupDescription, error) {
	req := proto.DescribeGroupsRequest{Groups: []string{group}}
	var out *GroupDescription
	err := retry(ctx, adminAttempts, func() error {
		body, b, err := c.roundTripAny(ctx, proto.KeyDescribeGroups, req.AppendTo)
		if err != nil {
			return err
		}
		var resp proto.DescribeGroupsResponse
		if err := resp.ReadFrom(body); err != nil {
			return b.brokerError(fmt.Errorf("%w: DescribeGroups: %v", errProtocol, err))
		}
		if len(resp.Groups) != 1 || resp.Groups[0].Group != group {
			return b.brokerError(fmt.Errorf("%w: DescribeGroups: no answer for group %q", errProtocol, group))
		}
		g := &resp.Groups[0]
		if g.ErrorCode != 0 {
			return b.brokerError(&errcode.Error{Code: errcode.Code(g.ErrorCode), Message: g.ErrorMessage})
		}
		out = &GroupDescription{Group: g.Group, State: g.State, ProtocolType: g.ProtocolType, Protocol: g.Protocol,
			Members: make([]GroupMember, 0, len(g.Members))}
		for _, m := range g.Members {
			gm := GroupMember{MemberID: m.MemberID, ClientID: m.ClientID, ClientHost: m.ClientHost,
				// The response body is the connection's buffer: copy what is kept.
				Metadata: bytes.Clone(m.Metadata), Assignment: bytes.Clone(m.Assignment)}
			if m.InstanceID != nil {
				gm.InstanceID = *m.InstanceID
			}
			out.Members = append(out.Members, gm)
		}
		return nil
	})
	return out, err
}

// DeleteGroup deletes a consumer group and its committed offsets. Only a group without members
// can be deleted: NON_EMPTY_GROUP otherwise; GROUP_ID_NOT_FOUND for a group the broker does not
// have.
func (c *Client) DeleteGroup(ctx context.Context, group string) error {
	req := proto.DeleteGroupsRequest{Groups: []string{group}}
	return retry(ctx, adminAttempts, func() error {
		body, b, err := c.roundTripAny(ctx, proto.KeyDeleteGroups, req.AppendTo)
		if err != nil {
			return err
		}
		var resp proto.DeleteGroupsResponse
		if err := resp.ReadFrom(body); err != nil {
			return b.brokerError(fmt.Errorf("%w: DeleteGroups: %v", errProtocol, err))
		}
		for _, g := range resp.Topics {
			if g.Name == group {
				if g.ErrorCode != 0 {
					return b.brokerError(&errcode.Error{Code: errcode.Code(g.ErrorCode), Message: g.ErrorMessage})
				}
				return nil
			}
		}
		return b.brokerError(fmt.Errorf("%w: DeleteGroups: no answer for group %q", errProtocol, group))
	})
}

// FetchAllCommitted returns every offset group has committed (the next offset to consume, per
// partition); an unknown group has none.
func (c *Client) FetchAllCommitted(ctx context.Context, group string) (map[TopicPartition]int64, error) {
	req := proto.OffsetFetchRequest{Group: group, Topics: nil} // null: everything committed
	var out map[TopicPartition]int64
	err := retry(ctx, adminAttempts, func() error {
		body, b, err := c.roundTripAny(ctx, proto.KeyOffsetFetch, req.AppendTo)
		if err != nil {
			return err
		}
		var resp proto.OffsetFetchResponse
		if err := resp.ReadFrom(body); err != nil {
			return b.brokerError(fmt.Errorf("%w: OffsetFetch: %v", errProtocol, err))
		}
		out = make(map[TopicPartition]int64)
		for _, t := range resp.Topics {
			for _, p := range t.Partitions {
				if p.ErrorCode != 0 {
					return b.brokerError(&errcode.Error{Code: errcode.Code(p.ErrorCode),
						Message: fmt.Sprintf("%s/%d: %s", t.Name, p.Partition, p.ErrorMessage)})
				}
				if p.Offset >= 0 {
					out[TopicPartition{t.Name, p.Partition}] = p.Offset
				}
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}
