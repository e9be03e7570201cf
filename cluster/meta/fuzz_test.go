package meta

import (
	"bytes"
	"errors"
	"reflect"
	"testing"
)

// The fuzz targets' seed corpora are under testdata/fuzz/<target>/: encodings of every command
// kind, of sample images and of command scripts.

func FuzzDecodeCommand(f *testing.F) {
	for _, cmd := range sampleCommands() {
		b, err := EncodeCommand(cmd)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`{}`))
	img := sampleImage(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		cmd, err := DecodeCommand(b)
		if err != nil {
			if !errors.Is(err, ErrBadCommand) {
				t.Fatalf("DecodeCommand: %v, not wrapping ErrBadCommand", err)
			}
			return
		}
		enc, err := EncodeCommand(cmd)
		if err != nil {
			t.Fatalf("EncodeCommand of a decoded command: %v", err)
		}
		again, err := DecodeCommand(enc)
		if err != nil {
			t.Fatalf("DecodeCommand(EncodeCommand(%s)): %v", b, err)
		}
		if enc2, _ := EncodeCommand(again); !bytes.Equal(enc, enc2) {
			t.Fatalf("the encoding is not stable:\n%s\n%s", enc, enc2)
		}
		if partitionsAsked(cmd) > 1000 {
			return // valid, but too large to apply thousands of times a second
		}
		before := img.Clone()
		next, _ := Apply(img, img.Index+1, cmd)
		if !reflect.DeepEqual(img, before) {
			t.Fatalf("Apply(%s) changed its input image", enc)
		}
		if err := checkInvariants(img, next, img.Index+1); err != nil {
			t.Fatalf("after %s: %v", enc, err)
		}
	})
}

// partitionsAsked is how many partitions cmd would create at most.
func partitionsAsked(cmd Command) int64 {
	var n int64
	if cmd.CreateTopics != nil {
		for _, t := range cmd.CreateTopics.Topics {
			n += int64(max(t.Partitions, 0))
		}
	}
	if cmd.CreatePartitions != nil {
		n += int64(max(cmd.CreatePartitions.Count, 0))
	}
	return n
}

func FuzzDecodeImage(f *testing.F) {
	f.Add(mustEncodeImage(f, Empty()))
	f.Add(mustEncodeImage(f, sampleImage(f)))
	f.Fuzz(func(t *testing.T, b []byte) {
		img, err := DecodeImage(b)
		if err != nil {
			if !errors.Is(err, ErrBadImage) {
				t.Fatalf("DecodeImage: %v, not wrapping ErrBadImage", err)
			}
			return
		}
		enc, err := EncodeImage(img)
		if err != nil {
			t.Fatalf("EncodeImage of a decoded image: %v", err)
		}
		again, err := DecodeImage(enc)
		if err != nil {
			t.Fatalf("DecodeImage(EncodeImage(%s)): %v", b, err)
		}
		if !reflect.DeepEqual(again, img) {
			t.Fatalf("round trip differs:\n%+v\n%+v", again, img)
		}
		if img.PartitionCount() > 1000 {
			return
		}
		// Apply must cope with any image that decodes, even one no command sequence makes
		// (a leader that is not registered, a fenced leader).
		before := img.Clone()
		cur := img
		for i, id := range img.NodeIDs {
			if i >= 4 {
				break
			}
			n := img.Nodes[id]
			for _, cmd := range []Command{
				{Fence: &FenceNode{ID: id, Incarnation: n.Incarnation}},
				{Unfence: &UnfenceNode{ID: id, Incarnation: n.Incarnation}},
				{Register: &RegisterNode{ID: id}},
			} {
				cur, _ = Apply(cur, cur.Index+1, cmd)
			}
		}
		for i, name := range img.Names {
			if i >= 4 {
				break
			}
			tp := img.Topics[name]
			p := cur.Topics[name].Partitions[0] // as the commands above left it
			var isr []ISRMember
			for _, r := range p.Replicas {
				if n := cur.Nodes[r]; n != nil {
					isr = append(isr, ISRMember{ID: r, Incarnation: n.Incarnation})
				}
			}
			for _, cmd := range []Command{
				{AlterPartition: &AlterPartition{Topic: name, ID: tp.ID, Leader: p.Leader, LeaderEpoch: p.LeaderEpoch, PartitionEpoch: p.PartitionEpoch, ISR: isr}},
				{CreatePartitions: &CreatePartitions{Name: name, ID: tp.ID, From: int32(len(tp.Partitions)), Count: int32(len(tp.Partitions)) + 2}},
				{AlterConfigs: &AlterConfigs{Name: name, ID: tp.ID}},
				{DeleteTopic: &DeleteTopic{Name: name, ID: tp.ID}},
			} {
				cur, _ = Apply(cur, cur.Index+1, cmd)
			}
		}
		cur, _ = Apply(cur, cur.Index+1, Command{CreateTopics: &CreateTopics{Topics: []NewTopic{{Name: "new", Partitions: 3, ReplicationFactor: 1}}}})
		Apply(cur, cur.Index+1, Command{AllocProducerIDs: &AllocProducerIDs{Count: 1 << 20}})
		if !reflect.DeepEqual(img, before) {
			t.Fatal("applying commands changed the decoded image")
		}
	})
}

// FuzzApply reads a script of commands from the bytes and applies it, checking every invariant
// after each command, and checks that a second run from a restored snapshot ends the same.
func FuzzApply(f *testing.F) {
	f.Add([]byte{0, 0, 0, 1, 1, 0, 0, 2, 0, 5, 0, 1, 4, 2, 0, 2, 0, 0, 0})
	f.Add(bytes.Repeat([]byte{0, 1, 5, 3, 0, 9, 9, 0, 4, 2, 3}, 8))
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) > 4096 {
			return
		}
		r, s := newRunner(t), &script{data: b}
		var mid []byte
		var rest *script
		for !s.done() {
			cmd := s.next(r.img)
			if enc, err := EncodeCommand(cmd); err == nil {
				dec, err := DecodeCommand(enc)
				if err != nil || !reflect.DeepEqual(dec, cmd) {
					t.Fatalf("command round trip of %s: %+v, %v", enc, dec, err)
				}
			}
			r.apply(cmd)
			if mid == nil && s.pos >= len(b)/2 {
				mid, rest = mustEncodeImage(t, r.img), &script{data: b, pos: s.pos}
			}
		}
		if mid == nil {
			return
		}
		img, err := DecodeImage(mid)
		if err != nil {
			t.Fatalf("DecodeImage: %v", err)
		}
		restored := &runner{t: t, img: img, index: img.Index}
		for !rest.done() {
			restored.apply(rest.next(restored.img))
		}
		if a, b := mustEncodeImage(t, r.img), mustEncodeImage(t, restored.img); !bytes.Equal(a, b) {
			t.Fatalf("the run restored halfway ends elsewhere:\n%s\n%s", a, b)
		}
	})
}
