package meta

import (
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/thorstream/thorstream/codec/errcode"
)

// newCluster is a runner whose image has nodes ids registered, at indexes 1, 2, ...
func newCluster(t testing.TB, ids ...int32) *runner {
	t.Helper()
	r := newRunner(t)
	for _, id := range ids {
		r.apply(Command{Register: &RegisterNode{ID: id, Binary: Endpoint{Host: "h", Port: 9000 + id}}})
	}
	return r
}

// createTopic creates a topic and fails the test if that is refused.
func (r *runner) createTopic(name string, partitions int32, rf int16) *Topic {
	r.t.Helper()
	res := r.apply(Command{CreateTopics: &CreateTopics{Topics: []NewTopic{{Name: name, ID: [16]byte{byte(len(name)), name[0]}, Partitions: partitions, ReplicationFactor: rf}}}})
	if res.Codes[0] != 0 {
		r.t.Fatalf("create %q: code %d: %s", name, res.Codes[0], res.Messages[0])
	}
	return r.img.Topic(name)
}

// wantNoChange fails unless applying cmd to r's image gives code 0 with a message and changes
// nothing but the index.
func wantNoChange(t *testing.T, r *runner, cmd Command) {
	t.Helper()
	before := r.img
	res := r.apply(cmd)
	if res.Code != 0 || res.Message == "" {
		t.Fatalf("%s: result %+v, want code 0 with a message", describe(cmd), res)
	}
	after := *r.img
	after.Index = before.Index
	if !reflect.DeepEqual(&after, before) {
		t.Fatalf("%s changed the image", describe(cmd))
	}
}

func TestApplyRefusesMalformedCommands(t *testing.T) {
	for _, tc := range []struct {
		name string
		cmd  Command
	}{
		{"no field", Command{}},
		{"two fields", Command{Init: &InitCluster{ClusterID: "c"}, AllocProducerIDs: &AllocProducerIDs{Count: 1}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			img, res := Apply(Empty(), 7, tc.cmd)
			if res.Code != int16(errcode.InvalidRequest) || res.Message == "" {
				t.Fatalf("result %+v, want INVALID_REQUEST with a message", res)
			}
			if img.Index != 7 {
				t.Fatalf("index %d, want 7: a refused entry is still applied", img.Index)
			}
		})
	}
}

func TestApplyNilImageIsEmpty(t *testing.T) {
	img, res := Apply(nil, 1, Command{Init: &InitCluster{ClusterID: "c"}})
	if res.Code != 0 || img.ClusterID != "c" || img.Index != 1 {
		t.Fatalf("Apply(nil): image %+v, result %+v", img, res)
	}
}

func TestInitCluster(t *testing.T) {
	r := newRunner(t)
	if res := r.apply(Command{Init: &InitCluster{ClusterID: ""}}); res.Code != int16(errcode.InvalidRequest) {
		t.Fatalf("empty cluster id: %+v, want INVALID_REQUEST", res)
	}
	r.apply(Command{AllocProducerIDs: &AllocProducerIDs{Count: 5000}})
	if res := r.apply(Command{Init: &InitCluster{ClusterID: "blue", NextProducerID: 1000}}); !reflect.DeepEqual(res, Result{}) {
		t.Fatalf("init: %+v", res)
	}
	if r.img.ClusterID != "blue" || r.img.NextProducerID != 5000 {
		t.Fatalf("cluster %q next producer id %d, want blue and 5000 (the larger)", r.img.ClusterID, r.img.NextProducerID)
	}
	wantNoChange(t, r, Command{Init: &InitCluster{ClusterID: "green", NextProducerID: 9000}})
	wantNoChange(t, r, Command{Init: &InitCluster{ClusterID: "blue", NextProducerID: 9000}})

	r = newRunner(t)
	r.apply(Command{Init: &InitCluster{ClusterID: "c", NextProducerID: 1 << 40}})
	if r.img.NextProducerID != 1<<40 {
		t.Fatalf("next producer id %d, want %d", r.img.NextProducerID, int64(1<<40))
	}
}

func TestAllocProducerIDs(t *testing.T) {
	r := newRunner(t)
	r.apply(Command{Init: &InitCluster{ClusterID: "c", NextProducerID: 100}})
	for i, tc := range []struct {
		count     int64
		wantCode  errcode.Code
		wantStart int64
		wantNext  int64
	}{
		{1000, 0, 100, 1100},
		{1, 0, 1100, 1101},
		{0, errcode.InvalidRequest, 0, 1101},
		{-5, errcode.InvalidRequest, 0, 1101},
		{1 << 62, 0, 1101, 1101 + 1<<62},
		{1 << 62, errcode.InvalidRequest, 0, 1101 + 1<<62}, // past the largest id
		{1000, 0, 1101 + 1<<62, 2101 + 1<<62},
	} {
		res := r.apply(Command{AllocProducerIDs: &AllocProducerIDs{Node: 1, Count: tc.count}})
		if res.Code != int16(tc.wantCode) || res.ProducerIDStart != tc.wantStart || r.img.NextProducerID != tc.wantNext {
			t.Fatalf("%d: block of %d: result %+v, next %d; want code %d, start %d, next %d", i, tc.count, res, r.img.NextProducerID, tc.wantCode, tc.wantStart, tc.wantNext)
		}
		if tc.wantCode != 0 && res.Message == "" {
			t.Fatalf("%d: refused without a message", i)
		}
	}
}

// TestApplyLeavesInputAlone applies every kind of command to an image holding nodes and topics
// and checks that the image it was handed still deep-equals a copy taken before, and that the new
// image shares every node and topic the command did not change.
func TestApplyLeavesInputAlone(t *testing.T) {
	base := newCluster(t, 0, 1, 2)
	base.createTopic("a", 3, 3)
	base.createTopic("b", 2, 1)
	base.createTopic("c", 1, 2)
	img := base.img
	a, b, c := img.Topic("a"), img.Topic("b"), img.Topic("c")
	cmds := []struct {
		cmd       Command
		changed   []string // topics the command changes
		nodesSame bool     // the node map is the old one
	}{
		{Command{Init: &InitCluster{ClusterID: "x"}}, nil, true},
		{Command{Register: &RegisterNode{ID: 3}}, nil, false},
		{Command{Register: &RegisterNode{ID: 1}}, []string{"a", "b"}, false}, // node 1 leads a/1 and b/1
		{Command{Fence: &FenceNode{ID: 2, Incarnation: 3}}, []string{"a", "c"}, false},
		{Command{Fence: &FenceNode{ID: 2, Incarnation: 9}}, nil, true},
		{Command{CreateTopics: &CreateTopics{Topics: []NewTopic{{Name: "d", Partitions: 2, ReplicationFactor: 2}}}}, nil, true},
		{Command{DeleteTopic: &DeleteTopic{Name: "b", ID: b.ID}}, nil, true},
		{Command{AlterConfigs: &AlterConfigs{Name: "c", ID: c.ID, Configs: map[string]string{"retention.ms": "1"}}}, []string{"c"}, true},
		{Command{CreatePartitions: &CreatePartitions{Name: "a", ID: a.ID, From: 3, Count: 5}}, []string{"a"}, true},
		{Command{AllocProducerIDs: &AllocProducerIDs{Count: 10}}, nil, true},
	}
	for _, tc := range cmds {
		before := img.Clone()
		next, res := Apply(img, img.Index+1, tc.cmd)
		if res.Code != 0 {
			t.Fatalf("%s: %+v", describe(tc.cmd), res)
		}
		if !reflect.DeepEqual(img, before) {
			t.Fatalf("%s changed its input image", describe(tc.cmd))
		}
		for _, name := range img.Names {
			shared := next.Topic(name) == img.Topic(name)
			want := next.Topic(name) != nil && !slices.Contains(tc.changed, name)
			if shared != want {
				t.Errorf("%s: topic %q shared %v, want %v", describe(tc.cmd), name, shared, want)
			}
		}
		if same := reflect.ValueOf(next.Nodes).UnsafePointer() == reflect.ValueOf(img.Nodes).UnsafePointer(); same != tc.nodesSame {
			t.Errorf("%s: node map shared %v, want %v", describe(tc.cmd), same, tc.nodesSame)
		}
		for _, id := range img.NodeIDs {
			if id != 1 && id != 2 && next.Node(id) != img.Node(id) {
				t.Errorf("%s: node %d was copied", describe(tc.cmd), id)
			}
		}
	}
}

func TestNoOpMessagesSayNothingChanged(t *testing.T) {
	r := newCluster(t, 0)
	res := r.apply(Command{Fence: &FenceNode{ID: 0, Incarnation: 5}})
	if !strings.Contains(res.Message, "nothing changed") {
		t.Fatalf("message %q", res.Message)
	}
}
