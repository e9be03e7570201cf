package fakebroker

import (
	"bytes"
	"sort"
	"strings"

	"github.com/thorstream/thorstream/codec/errcode"
	"github.com/thorstream/thorstream/codec/proto"
	"github.com/thorstream/thorstream/groups"
)

// Group administration (ListGroups, DescribeGroups, DeleteGroups). A group exists once offsets
// are committed for it (state Empty, no protocol type), while members are in it (the coordinator
// of membership.go describes it), or once a test describes it with SetGroup, which wins.

// SetGroup makes DescribeGroups answer d for the group d.Group (its ErrorCode is ignored), as if
// members had joined; a group with members cannot be deleted.
func (c *Cluster) SetGroup(d proto.DescribedGroup) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.described == nil {
		c.described = make(map[string]proto.DescribedGroup)
	}
	d.ErrorCode, d.ErrorMessage = 0, ""
	c.described[d.Group] = d
}

// liveGroups are the coordinator's groups that have, or had, members: not under mu (the
// coordinator answers on its own goroutine).
func (c *Cluster) liveGroups() map[string]proto.DescribedGroup {
	listed := make(chan []groups.ListedGroup, 1)
	c.coordinator.List(nil, func(gs []groups.ListedGroup, _ errcode.Code) { listed <- gs })
	gs, ok := await(c, listed)
	if !ok {
		return nil
	}
	out := make(map[string]proto.DescribedGroup, len(gs))
	for _, g := range gs {
		ch := make(chan groups.DescribedGroup, 1)
		c.coordinator.Describe(g.Group, func(d groups.DescribedGroup) { ch <- d })
		d, ok := await(c, ch)
		if !ok || d.ErrorCode != errcode.None {
			continue
		}
		pd := proto.DescribedGroup{Group: g.Group, State: d.State, ProtocolType: d.ProtocolType, Protocol: d.Protocol}
		for _, m := range d.Members {
			pd.Members = append(pd.Members, proto.DescribedMember{MemberID: m.MemberID, InstanceID: m.InstanceID, ClientID: m.ClientID,
				ClientHost: m.ClientHost, Metadata: bytes.Clone(m.Metadata), Assignment: bytes.Clone(m.Assignment)})
		}
		out[g.Group] = pd
	}
	return out
}

// describeLocked is the group as DescribeGroups answers it, live being liveGroups'.
func (c *Cluster) describeLocked(name string, live map[string]proto.DescribedGroup) proto.DescribedGroup {
	if d, ok := c.described[name]; ok {
		return d
	}
	if d, ok := live[name]; ok {
		return d
	}
	if _, ok := c.groups[name]; ok {
		return proto.DescribedGroup{Group: name, State: "Empty"}
	}
	return proto.DescribedGroup{ErrorCode: int16(errcode.GroupIDNotFound), ErrorMessage: "group does not exist", Group: name, State: "Dead"}
}

func (c *Cluster) listGroups(req *proto.ListGroupsRequest) *proto.ListGroupsResponse {
	live := c.liveGroups()
	c.mu.Lock()
	defer c.mu.Unlock()
	names := map[string]bool{}
	for g := range live {
		names[g] = true
	}
	for g := range c.groups {
		names[g] = true
	}
	for g := range c.described {
		names[g] = true
	}
	resp := &proto.ListGroupsResponse{}
	for g := range names {
		d := c.describeLocked(g, live)
		matches := len(req.States) == 0
		for _, s := range req.States {
			matches = matches || strings.EqualFold(s, d.State)
		}
		if matches {
			resp.Groups = append(resp.Groups, proto.ListedGroup{Group: g, ProtocolType: d.ProtocolType, State: d.State})
		}
	}
	sort.Slice(resp.Groups, func(i, j int) bool { return resp.Groups[i].Group < resp.Groups[j].Group })
	return resp
}

func (c *Cluster) describeGroups(req *proto.DescribeGroupsRequest) *proto.DescribeGroupsResponse {
	live := c.liveGroups()
	c.mu.Lock()
	defer c.mu.Unlock()
	resp := &proto.DescribeGroupsResponse{}
	for _, g := range req.Groups {
		resp.Groups = append(resp.Groups, c.describeLocked(g, live))
	}
	return resp
}

func (c *Cluster) deleteGroups(req *proto.DeleteGroupsRequest) *proto.DeleteGroupsResponse {
	live := c.liveGroups()
	c.mu.Lock()
	defer c.mu.Unlock()
	resp := &proto.DeleteGroupsResponse{}
	for _, g := range req.Groups {
		d := c.describeLocked(g, live)
		e := proto.TopicError{Name: g}
		switch {
		case d.ErrorCode != 0:
			e.ErrorCode, e.ErrorMessage = d.ErrorCode, d.ErrorMessage
		case len(d.Members) > 0:
			e.ErrorCode, e.ErrorMessage = int16(errcode.NonEmptyGroup), "group has members"
		default:
			delete(c.groups, g)
			delete(c.described, g)
			if _, ok := live[g]; ok {
				c.coordinator.DeleteGroup(g, func(errcode.Code) {}) // an Empty group: its membership state goes too
			}
		}
		resp.Topics = append(resp.Topics, e)
	}
	return resp
}
