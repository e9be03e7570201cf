package fakebroker

import (
	"sort"
	"strings"

	"github.com/thorstream/thorstream/codec/errcode"
	"github.com/thorstream/thorstream/codec/proto"
)

// Group administration (ListGroups, DescribeGroups, DeleteGroups). A group exists once offsets
// are committed for it (state Empty, no protocol type) or once a test describes it with SetGroup.

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

// describeLocked is the group as DescribeGroups answers it.
func (c *Cluster) describeLocked(name string) proto.DescribedGroup {
	if d, ok := c.described[name]; ok {
		return d
	}
	if _, ok := c.groups[name]; ok {
		return proto.DescribedGroup{Group: name, State: "Empty"}
	}
	return proto.DescribedGroup{ErrorCode: int16(errcode.GroupIDNotFound), ErrorMessage: "group does not exist", Group: name, State: "Dead"}
}

func (c *Cluster) listGroups(req *proto.ListGroupsRequest) *proto.ListGroupsResponse {
	c.mu.Lock()
	defer c.mu.Unlock()
	names := map[string]bool{}
	for g := range c.groups {
		names[g] = true
	}
	for g := range c.described {
		names[g] = true
	}
	resp := &proto.ListGroupsResponse{}
	for g := range names {
		d := c.describeLocked(g)
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
	c.mu.Lock()
	defer c.mu.Unlock()
	resp := &proto.DescribeGroupsResponse{}
	for _, g := range req.Groups {
		resp.Groups = append(resp.Groups, c.describeLocked(g))
	}
	return resp
}

func (c *Cluster) deleteGroups(req *proto.DeleteGroupsRequest) *proto.DeleteGroupsResponse {
	c.mu.Lock()
	defer c.mu.Unlock()
	resp := &proto.DeleteGroupsResponse{}
	for _, g := range req.Groups {
		d := c.describeLocked(g)
		e := proto.TopicError{Name: g}
		switch {
		case d.ErrorCode != 0:
			e.ErrorCode, e.ErrorMessage = d.ErrorCode, d.ErrorMessage
		case len(d.Members) > 0:
			e.ErrorCode, e.ErrorMessage = int16(errcode.NonEmptyGroup), "group has members"
		default:
			delete(c.groups, g)
			delete(c.described, g)
		}
		resp.Topics = append(resp.Topics, e)
	}
	return resp
}
