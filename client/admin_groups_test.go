package client

import (
	"reflect"
	"testing"

	"github.com/thorstream/thorstream/client/internal/fakebroker"
	"github.com/thorstream/thorstream/codec/errcode"
	"github.com/thorstream/thorstream/codec/proto"
)

// TestAdminGroups: ListGroups, DescribeGroup, DeleteGroup and FetchAllCommitted, with a
// coordinator that is still loading at first (retried) and the errors a caller acts on.
func TestAdminGroups(t *testing.T) {
	fc := newCluster(t, fakebroker.Options{})
	c := newClient(t, fc)
	ctx := testContext(t)
	mustCreate(t, fc, "orders", 2)

	if err := c.CommitOffsets(ctx, "archiver", map[TopicPartition]int64{{"orders", 1}: 9, {"orders", 0}: 3}); err != nil {
		t.Fatal(err)
	}
	instance := "app-1"
	fc.SetGroup(proto.DescribedGroup{Group: "billing", State: "Stable", ProtocolType: "consumer", Protocol: "range", Members: []proto.DescribedMember{
		{MemberID: "m-1", InstanceID: &instance, ClientID: "app", ClientHost: "/127.0.0.1", Metadata: []byte("sub"), Assignment: []byte("asg")},
		{MemberID: "m-2", ClientID: "app", ClientHost: "/127.0.0.2"},
	}})

	// Loading: COORDINATOR_LOAD_IN_PROGRESS is retried.
	loading := 2
	fc.Control(func(r *fakebroker.Request) *fakebroker.Action {
		if r.Key == proto.KeyListGroups && loading > 0 {
			loading--
			return &fakebroker.Action{Error: errcode.CoordinatorLoadInProgress}
		}
		return nil
	})
	groups, err := c.ListGroups(ctx)
	want := []GroupListing{{"archiver", "", "Empty"}, {"billing", "consumer", "Stable"}}
	if err != nil || !reflect.DeepEqual(groups, want) {
		t.Fatalf("ListGroups = %+v, %v; want %+v", groups, err, want)
	}
	if n := fc.Count(proto.KeyListGroups); n != 3 {
		t.Errorf("%d ListGroups requests, want 3 (two answered loading)", n)
	}
	if groups, err = c.ListGroups(ctx, "stable"); err != nil || len(groups) != 1 || groups[0].Group != "billing" {
		t.Fatalf("ListGroups(stable) = %+v, %v", groups, err)
	}

	d, err := c.DescribeGroup(ctx, "billing")
	wantD := &GroupDescription{Group: "billing", State: "Stable", ProtocolType: "consumer", Protocol: "range", Members: []GroupMember{
		{MemberID: "m-1", InstanceID: "app-1", ClientID: "app", ClientHost: "/127.0.0.1", Metadata: []byte("sub"), Assignment: []byte("asg")},
		{MemberID: "m-2", ClientID: "app", ClientHost: "/127.0.0.2"},
	}}
	if err != nil || !reflect.DeepEqual(d, wantD) {
		t.Fatalf("DescribeGroup = %+v, %v\nwant %+v", d, err, wantD)
	}
	if _, err := c.DescribeGroup(ctx, "nobody"); errcode.Of(err) != errcode.GroupIDNotFound {
		t.Fatalf("DescribeGroup(nobody): %v, want GROUP_ID_NOT_FOUND", err)
	}

	all, err := c.FetchAllCommitted(ctx, "archiver")
	if err != nil || !reflect.DeepEqual(all, map[TopicPartition]int64{{"orders", 0}: 3, {"orders", 1}: 9}) {
		t.Fatalf("FetchAllCommitted = %v, %v", all, err)
	}
	if all, err := c.FetchAllCommitted(ctx, "nobody"); err != nil || len(all) != 0 {
		t.Fatalf("FetchAllCommitted(nobody) = %v, %v", all, err)
	}

	if err := c.DeleteGroup(ctx, "billing"); errcode.Of(err) != errcode.NonEmptyGroup {
		t.Fatalf("DeleteGroup(billing): %v, want NON_EMPTY_GROUP", err)
	}
	if err := c.DeleteGroup(ctx, "archiver"); err != nil {
		t.Fatal(err)
	}
	if err := c.DeleteGroup(ctx, "archiver"); errcode.Of(err) != errcode.GroupIDNotFound {
		t.Fatalf("DeleteGroup twice: %v, want GROUP_ID_NOT_FOUND", err)
	}
	if all, err := c.FetchAllCommitted(ctx, "archiver"); err != nil || len(all) != 0 {
		t.Fatalf("offsets of the deleted group: %v, %v", all, err)
	}
}
