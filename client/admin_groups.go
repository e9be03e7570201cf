package client

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"slices"
	"sort"
	"strconv"

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

// ListGroups returns the consumer groups of the cluster, sorted by id: every broker lists the
// groups it coordinates, and ListGroups asks each of them. With states, only those in one of them
// (Empty, PreparingRebalance, CompletingRebalance, Stable).
func (c *Client) ListGroups(ctx context.Context, states ...string) ([]GroupListing, error) {
	req := proto.ListGroupsRequest{States: states}
	addrs, err := c.brokerAddrs(ctx)
	if err != nil {
		return nil, err
	}
	var out []GroupListing
	seen := map[string]bool{}
	for _, addr := range addrs {
		var listed []GroupListing
		err := retry(ctx, adminAttempts, func() error {
			b, err := c.conn(addr)
			if err != nil {
				return err
			}
			body, err := b.roundTrip(ctx, proto.KeyListGroups, req.AppendTo, 0)
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
			listed = make([]GroupListing, 0, len(resp.Groups))
			for _, g := range resp.Groups {
				listed = append(listed, GroupListing{Group: g.Group, ProtocolType: g.ProtocolType, State: g.State})
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
		for _, g := range listed {
			// A group whose coordinator moved between two answers is listed once.
			if !seen[g.Group] {
				seen[g.Group] = true
				out = append(out, g)
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Group < out[j].Group })
	return out, nil
}

// brokerAddrs are the addresses of every broker of the cluster, from fresh metadata, sorted by
// node id.
func (c *Client) brokerAddrs(ctx context.Context) ([]string, error) {
	resp, err := c.refreshMetadata(ctx, []string{}, false)
	if err != nil {
		return nil, err
	}
	brokers := slices.Clone(resp.Brokers)
	sort.Slice(brokers, func(i, j int) bool { return brokers[i].NodeID < brokers[j].NodeID })
	addrs := make([]string, 0, len(brokers))
	for _, br := range brokers {
		addrs = append(addrs, net.JoinHostPort(br.Host, strconv.Itoa(int(br.Port))))
	}
	if len(addrs) == 0 {
		b, err := c.anyBroker(ctx)
		if err != nil {
			return nil, err
		}
		addrs = append(addrs, b.addr)
	}
	return addrs, nil
}

// coordinatorRoundTrip sends one request about group to the group's coordinator (the leader of
// its offsets partition). When the coordinator moved or cannot be reached, the offsets topic's
// metadata is dropped: the caller's next attempt looks the coordinator up again.
func (c *Client) coordinatorRoundTrip(ctx context.Context, group string, apiKey int16, body func([]byte) []byte) ([]byte, *brokerConn, error) {
	addr, err := c.coordinatorAddr(ctx, group)
	if err != nil {
		return nil, nil, err
	}
	b, err := c.conn(addr)
	if err != nil {
		return nil, nil, err
	}
	resp, err := b.roundTrip(ctx, apiKey, body, 0)
	if err != nil && coordinatorMoved(err) {
		c.invalidate(offsetsTopic)
	}
	return resp, b, err
}

// groupError is code from b's answer about a group, with msg. NOT_COORDINATOR and
// COORDINATOR_NOT_AVAILABLE drop the offsets topic's metadata: the coordinator is looked up
// again.
func (c *Client) groupError(b *brokerConn, code errcode.Code, msg string) error {
	if code == errcode.NotCoordinator || code == errcode.CoordinatorNotAvailable {
		c.invalidate(offsetsTopic)
	}
	return b.brokerError(&errcode.Error{Code: code, Message: msg})
}

// DescribeGroup returns a consumer group's state and members, from its coordinator. A group the
// coordinator does not have is an *errcode.Error with GROUP_ID_NOT_FOUND.
func (c *Client) DescribeGroup(ctx context.Context, group string) (*GroupDescription, error) {
	req := proto.DescribeGroupsRequest{Groups: []string{group}}
	var out *GroupDescription
	err := retry(ctx, adminAttempts, func() error {
		body, b, err := c.coordinatorRoundTrip(ctx, group, proto.KeyDescribeGroups, req.AppendTo)
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
			return c.groupError(b, errcode.Code(g.ErrorCode), g.ErrorMessage)
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

// DeleteGroup deletes a consumer group and its committed offsets, through its coordinator. Only a
// group without members can be deleted: NON_EMPTY_GROUP otherwise; GROUP_ID_NOT_FOUND for a group
// the coordinator does not have.
func (c *Client) DeleteGroup(ctx context.Context, group string) error {
	req := proto.DeleteGroupsRequest{Groups: []string{group}}
	return retry(ctx, adminAttempts, func() error {
		body, b, err := c.coordinatorRoundTrip(ctx, group, proto.KeyDeleteGroups, req.AppendTo)
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
					return c.groupError(b, errcode.Code(g.ErrorCode), g.ErrorMessage)
				}
				return nil
			}
		}
		return b.brokerError(fmt.Errorf("%w: DeleteGroups: no answer for group %q", errProtocol, group))
	})
}

// FetchAllCommitted returns every offset group has committed (the next offset to consume, per
// partition), from its coordinator; an unknown group has none.
func (c *Client) FetchAllCommitted(ctx context.Context, group string) (map[TopicPartition]int64, error) {
	req := proto.OffsetFetchRequest{Group: group, Topics: nil} // null: everything committed
	var out map[TopicPartition]int64
	err := retry(ctx, adminAttempts, func() error {
		body, b, err := c.coordinatorRoundTrip(ctx, group, proto.KeyOffsetFetch, req.AppendTo)
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
					return c.groupError(b, errcode.Code(p.ErrorCode), fmt.Sprintf("%s/%d: %s", t.Name, p.Partition, p.ErrorMessage))
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
