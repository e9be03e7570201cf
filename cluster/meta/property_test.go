package meta

import (
	"bytes"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"
)

// TestApplyRandomSequences applies random command sequences three ways: twice from Empty, and
// once through an image restored from its own snapshot encoding after every step. All three must
// give the same results and encode to the same bytes at every step (Apply is deterministic, and
// a restored image behaves as the original), and every step keeps the invariants the runner
// checks (leaders live and in sync, ISR within the replicas, epochs that only grow, producer-id
// blocks that never overlap, an input image left untouched).
func TestApplyRandomSequences(t *testing.T) {
	seeds := 60
	if testing.Short() {
		seeds = 10
	}
	for seed := range uint64(seeds) {
		rng := rand.New(rand.NewPCG(seed, 0x7468_6f72))
		data := make([]byte, 1500)
		for i := range data {
			data[i] = byte(rng.Uint32())
		}
		a, b, restored := newRunner(t), newRunner(t), newRunner(t)
		sa, sb, sr := &script{data: data}, &script{data: data}, &script{data: data}
		for step := 0; !sa.done(); step++ {
			ca, cb, cr := sa.next(a.img), sb.next(b.img), sr.next(restored.img)
			ra, rb, rr := a.apply(ca), b.apply(cb), restored.apply(cr)
			if !reflect.DeepEqual(ra, rb) || !reflect.DeepEqual(ra, rr) {
				t.Fatalf("seed %d step %d: %s gave %+v, %+v and (restored) %+v", seed, step, describe(ca), ra, rb, rr)
			}
			ea, eb := mustEncodeImage(t, a.img), mustEncodeImage(t, b.img)
			if !bytes.Equal(ea, eb) {
				t.Fatalf("seed %d step %d: two runs differ after %s:\n%s\n%s", seed, step, describe(ca), ea, eb)
			}
			img, err := DecodeImage(ea)
			if err != nil {
				t.Fatalf("seed %d step %d: DecodeImage(EncodeImage): %v", seed, step, err)
			}
			if !reflect.DeepEqual(img, a.img) {
				t.Fatalf("seed %d step %d: the decoded image differs:\n%+v\n%+v", seed, step, img, a.img)
			}
			if er := mustEncodeImage(t, restored.img); !bytes.Equal(ea, er) {
				t.Fatalf("seed %d step %d: the restored run differs after %s:\n%s\n%s", seed, step, describe(ca), ea, er)
			}
			restored.img = img
		}
	}
}

// TestApplyRandomSequencesDoSomething guards the random test against a script that stopped
// reaching the interesting cases: over all seeds, every command kind must succeed and be refused
// or be a no-op at least once, fences must move leaders, and registrations must take nodes out
// of ISRs, hand on leaderships and keep last ISR places.
func TestApplyRandomSequencesDoSomething(t *testing.T) {
	counts := map[string]int{}
	for seed := range uint64(20) {
		rng := rand.New(rand.NewPCG(seed, 1))
		data := make([]byte, 1500)
		for i := range data {
			data[i] = byte(rng.Uint32())
		}
		r, s := newRunner(t), &script{data: data}
		for !s.done() {
			cmd := s.next(r.img)
			before := r.img
			res := r.apply(cmd)
			kind := commandKind(cmd)
			switch {
			case res.Code != 0 || (len(res.Codes) > 0 && res.Codes[0] != 0):
				counts[kind+" refused"]++
			case res.Message != "":
				counts[kind+" no-op"]++
			default:
				counts[kind+" done"]++
			}
			if cmd.Register != nil && res.Code == 0 && res.Message == "" {
				for _, name := range before.Names {
					for _, p := range before.Topics[name].Partitions {
						switch id := cmd.Register.ID; {
						case len(p.ISR) > 1 && p.Leader == id:
							counts["register handed on a leadership"]++
						case len(p.ISR) > 1 && slices.Contains(p.ISR, id):
							counts["register left an ISR"]++
						case len(p.ISR) == 1 && p.ISR[0] == id:
							counts["register kept a last ISR place"]++
						}
					}
				}
			}
			if cmd.Fence != nil && res.Code == 0 && res.Message == "" {
				for _, name := range r.img.Names {
					if old := before.Topic(name); old != nil && old.Partitions[0].Leader != r.img.Topics[name].Partitions[0].Leader {
						counts["leader moved"]++
					}
				}
			}
		}
	}
	t.Logf("counts: %v", counts)
	for _, want := range []string{
		"init done", "init no-op", "register done", "fence done", "fence no-op", "unfence done",
		"unfence no-op", "create_topics done", "create_topics refused", "delete_topic done",
		"delete_topic refused", "alter_configs done", "alter_configs refused",
		"create_partitions done", "create_partitions refused", "alloc_producer_ids done",
		"alloc_producer_ids refused", "alter_partition done", "alter_partition refused",
		"alter_partition no-op", "empty refused", "leader moved", "register handed on a leadership",
		"register left an ISR", "register kept a last ISR place",
	} {
		if counts[want] == 0 {
			t.Errorf("no %q in the random sequences; counts: %v", want, counts)
		}
	}
}

func commandKind(cmd Command) string {
	switch {
	case commandFields(cmd) != 1:
		return "empty"
	case cmd.Init != nil:
		return "init"
	case cmd.Register != nil:
		return "register"
	case cmd.Fence != nil:
		return "fence"
	case cmd.Unfence != nil:
		return "unfence"
	case cmd.CreateTopics != nil:
		return "create_topics"
	case cmd.DeleteTopic != nil:
		return "delete_topic"
	case cmd.AlterConfigs != nil:
		return "alter_configs"
	case cmd.CreatePartitions != nil:
		return "create_partitions"
	case cmd.AlterPartition != nil:
		return "alter_partition"
	}
	return "alloc_producer_ids"
}

func mustEncodeImage(t testing.TB, img *Image) []byte {
	t.Helper()
	b, err := EncodeImage(img)
	if err != nil {
		t.Fatalf("EncodeImage: %v", err)
	}
	return b
}
