package raftnode

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io/fs"
	"os"
	"path/filepath"
	"slices"

	"go.etcd.io/raft/v3/raftpb"
)

const (
	snapFile   = "snapshot"
	snapMagic  = "TSRSNP1\x00"
	snapHeader = len(snapMagic) + 8 // magic, length uint32, crc uint32
)

func encodeSnapshot(snap *raftpb.Snapshot) []byte {
	md := snap.GetMetadata()
	cs := md.GetConfState()
	b := make([]byte, snapHeader, snapHeader+64+len(snap.GetData()))
	copy(b, snapMagic)
	b = binary.LittleEndian.AppendUint64(b, md.GetIndex())
	b = binary.LittleEndian.AppendUint64(b, md.GetTerm())
	var autoLeave byte
	if cs.GetAutoLeave() {
		autoLeave = 1
	}
	b = append(b, autoLeave)
	for _, ids := range [][]uint64{cs.GetVoters(), cs.GetLearners(), cs.GetVotersOutgoing(), cs.GetLearnersNext()} {
		b = binary.LittleEndian.AppendUint32(b, uint32(len(ids)))
		for _, id := range ids {
			b = binary.LittleEndian.AppendUint64(b, id)
		}
	}
	b = append(b, snap.GetData()...)
	body := b[snapHeader:]
	binary.LittleEndian.PutUint32(b[len(snapMagic):], uint32(len(body)))
	binary.LittleEndian.PutUint32(b[len(snapMagic)+4:], crc32.Checksum(body, crcTable))
	return b
}

func decodeSnapshot(b []byte) (*raftpb.Snapshot, error) {
	if len(b) < snapHeader || string(b[:len(snapMagic)]) != snapMagic {
		return nil, errors.New("not a snapshot file")
	}
	body := b[snapHeader:]
	if n := binary.LittleEndian.Uint32(b[len(snapMagic):]); uint64(n) != uint64(len(body)) {
		return nil, fmt.Errorf("length %d, file holds %d", n, len(body))
	}
	if crc32.Checksum(body, crcTable) != binary.LittleEndian.Uint32(b[len(snapMagic)+4:]) {
		return nil, errors.New("crc mismatch")
	}
	if len(body) < 17 {
		return nil, errors.New("short body")
	}
	index := binary.LittleEndian.Uint64(body)
	term := binary.LittleEndian.Uint64(body[8:])
	autoLeave := body[16] == 1
	rest := body[17:]
	var lists [4][]uint64
	for i := range lists {
		if len(rest) < 4 {
			return nil, errors.New("short conf state")
		}
		n := binary.LittleEndian.Uint32(rest)
		rest = rest[4:]
		if uint64(n) > uint64(len(rest)/8) {
			return nil, fmt.Errorf("conf state list of %d ids, %d bytes left", n, len(rest))
		}
		ids := make([]uint64, n)
		for j := range ids {
			ids[j] = binary.LittleEndian.Uint64(rest[8*j:])
		}
		lists[i] = ids
		rest = rest[8*int(n):]
	}
	if index == 0 {
		return nil, errors.New("snapshot at index 0")
	}
	return &raftpb.Snapshot{
		Data: slices.Clone(rest),
		Metadata: &raftpb.SnapshotMetadata{
			Index: new(index),
			Term:  new(term),
			ConfState: &raftpb.ConfState{
				Voters:         lists[0],
				Learners:       lists[1],
				VotersOutgoing: lists[2],
				LearnersNext:   lists[3],
				AutoLeave:      new(autoLeave),
			},
		},
	}, nil
}

// writeSnapshotFile replaces dir's snapshot file atomically and durably.
func writeSnapshotFile(dir string, snap *raftpb.Snapshot) error {
	path := filepath.Join(dir, snapFile)
	if err := writeFileSync(path+".tmp", encodeSnapshot(snap)); err != nil {
		return err
	}
	if err := os.Rename(path+".tmp", path); err != nil {
		return fmt.Errorf("raftnode: rename %s: %w", path, err)
	}
	return syncDir(dir)
}

// readSnapshotFile returns dir's snapshot, nil if there is none.
func readSnapshotFile(dir string) (*raftpb.Snapshot, error) {
	path := filepath.Join(dir, snapFile)
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("raftnode: read %s: %w", path, err)
	}
	snap, err := decodeSnapshot(b)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrCorrupt, path, err)
	}
	return snap, nil
}
