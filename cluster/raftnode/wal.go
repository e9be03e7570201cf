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
	"strconv"
	"strings"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"go.uber.org/zap"
)

// Record types of a write-ahead file (see the package doc).
const (
	recStart     byte = 1
	recEntry     byte = 2
	recHardState byte = 3

	frameHeader = 8 // length uint32 + crc uint32
	// maxRecord bounds one record's length field, so a corrupt length is caught before it
	// sizes anything. Metadata entries are small; raft batches many per message.
	maxRecord = 256 << 20

	walPrefix = "wal-"
	walSuffix = ".log"
)

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// errBadRecord marks a record that is torn, fails its CRC or does not parse.
var errBadRecord = errors.New("bad record")

func walName(seq uint64) string { return fmt.Sprintf("%s%016x%s", walPrefix, seq, walSuffix) }

// parseWALName returns the sequence of a write-ahead file name, false for any other name.
func parseWALName(name string) (uint64, bool) {
	if !strings.HasPrefix(name, walPrefix) || !strings.HasSuffix(name, walSuffix) {
		return 0, false
	}
	hex := name[len(walPrefix) : len(name)-len(walSuffix)]
	if len(hex) != 16 {
		return 0, false
	}
	seq, err := strconv.ParseUint(hex, 16, 64)
	if err != nil {
		return 0, false
	}
	return seq, true
}

func beginRecord(dst []byte, typ byte) ([]byte, int) {
	start := len(dst)
	return append(dst, 0, 0, 0, 0, 0, 0, 0, 0, typ), start
}

func endRecord(dst []byte, start int) []byte {
	payload := dst[start+frameHeader:]
	binary.LittleEndian.PutUint32(dst[start:], uint32(len(payload)))
	binary.LittleEndian.PutUint32(dst[start+4:], crc32.Checksum(payload, crcTable))
	return dst
}

func appendStartRecord(dst []byte, index, term uint64) []byte {
	dst, start := beginRecord(dst, recStart)
	dst = binary.LittleEndian.AppendUint64(dst, index)
	dst = binary.LittleEndian.AppendUint64(dst, term)
	return endRecord(dst, start)
}

func appendEntryRecord(dst []byte, e *raftpb.Entry) []byte {
	dst, start := beginRecord(dst, recEntry)
	dst = binary.LittleEndian.AppendUint64(dst, e.GetTerm())
	dst = binary.LittleEndian.AppendUint64(dst, e.GetIndex())
	dst = append(dst, byte(e.GetType()))
	dst = append(dst, e.GetData()...)
	return endRecord(dst, start)
}

func appendHardStateRecord(dst []byte, hs *raftpb.HardState) []byte {
	dst, start := beginRecord(dst, recHardState)
	dst = binary.LittleEndian.AppendUint64(dst, hs.GetTerm())
	dst = binary.LittleEndian.AppendUint64(dst, hs.GetVote())
	dst = binary.LittleEndian.AppendUint64(dst, hs.GetCommit())
	return endRecord(dst, start)
}

// walRecord is one decoded record; which fields are set depends on typ.
type walRecord struct {
	typ   byte
	index uint64 // start
	term  uint64 // start
	entry *raftpb.Entry
	hs    *raftpb.HardState
}

// decodeRecord decodes the record at the start of b and returns it and its size. Any
// failure (short, zero or oversized length, CRC mismatch, malformed body) is errBadRecord.
func decodeRecord(b []byte) (walRecord, int, error) {
	if len(b) < frameHeader {
		return walRecord{}, 0, fmt.Errorf("%w: %d bytes left, header needs %d", errBadRecord, len(b), frameHeader)
	}
	n := binary.LittleEndian.Uint32(b)
	if n == 0 || n > maxRecord {
		return walRecord{}, 0, fmt.Errorf("%w: length %d", errBadRecord, n)
	}
	if uint64(n) > uint64(len(b)-frameHeader) {
		return walRecord{}, 0, fmt.Errorf("%w: length %d, %d bytes left", errBadRecord, n, len(b)-frameHeader)
	}
	payload := b[frameHeader : frameHeader+int(n)]
	if crc32.Checksum(payload, crcTable) != binary.LittleEndian.Uint32(b[4:]) {
		return walRecord{}, 0, fmt.Errorf("%w: crc mismatch", errBadRecord)
	}
	rec := walRecord{typ: payload[0]}
	body := payload[1:]
	switch rec.typ {
	case recStart:
		if len(body) != 16 {
			return walRecord{}, 0, fmt.Errorf("%w: start record of %d bytes", errBadRecord, len(body))
		}
		rec.index = binary.LittleEndian.Uint64(body)
		rec.term = binary.LittleEndian.Uint64(body[8:])
	case recEntry:
		if len(body) < 17 {
			return walRecord{}, 0, fmt.Errorf("%w: entry record of %d bytes", errBadRecord, len(body))
		}
		typ := raftpb.EntryType(body[16])
		if _, ok := raftpb.EntryType_name[int32(typ)]; !ok {
			return walRecord{}, 0, fmt.Errorf("%w: entry type %d", errBadRecord, typ)
		}
		e := &raftpb.Entry{
			Term:  new(binary.LittleEndian.Uint64(body)),
			Index: new(binary.LittleEndian.Uint64(body[8:])),
			Type:  typ.Enum(),
		}
		if len(body) > 17 {
			e.Data = slices.Clone(body[17:])
		}
		rec.entry = e
	case recHardState:
		if len(body) != 24 {
			return walRecord{}, 0, fmt.Errorf("%w: hard state record of %d bytes", errBadRecord, len(body))
		}
		rec.hs = &raftpb.HardState{
			Term:   new(binary.LittleEndian.Uint64(body)),
			Vote:   new(binary.LittleEndian.Uint64(body[8:])),
			Commit: new(binary.LittleEndian.Uint64(body[16:])),
		}
	default:
		return walRecord{}, 0, fmt.Errorf("%w: record type %d", errBadRecord, rec.typ)
	}
	return rec, frameHeader + int(n), nil
}

// loadedState is what a directory holds: the snapshot (nil: none), the hard state (nil:
// none) and the entries after the snapshot, contiguous.
type loadedState struct {
	snap *raftpb.Snapshot
	hs   *raftpb.HardState
	ents []*raftpb.Entry
}

// disk is the durable half of a node: the current write-ahead file and the snapshot file.
// It is used only by the node's loop goroutine (and by Start before the loop runs).
type disk struct {
	dir string
	log *zap.Logger
	f   *os.File // current write-ahead file, appended
	seq uint64   // its sequence
	hs  *raftpb.HardState
	buf []byte // record encoding scratch, reused
}

// openDisk loads the state in dir (creating dir), repairs a torn tail and starts a fresh
// write-ahead file holding exactly the loaded state.
func openDisk(dir string, log *zap.Logger) (*disk, *loadedState, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, nil, fmt.Errorf("raftnode: create %s: %w", dir, err)
	}
	snap, err := readSnapshotFile(dir)
	if err != nil {
		return nil, nil, err
	}
	seqs, err := listWAL(dir)
	if err != nil {
		return nil, nil, err
	}
	ls, err := replayWAL(dir, seqs, snap, log)
	if err != nil {
		return nil, nil, err
	}
	d := &disk{dir: dir, log: log, hs: ls.hs}
	var next uint64 = 1
	if len(seqs) > 0 {
		next = seqs[len(seqs)-1] + 1
	}
	var si, st uint64
	if snap != nil {
		si, st = snap.GetMetadata().GetIndex(), snap.GetMetadata().GetTerm()
	}
	if err := d.rotate(next, si, st, ls.hs, ls.ents, seqs); err != nil {
		return nil, nil, err
	}
	return d, ls, nil
}

func listWAL(dir string) ([]uint64, error) {
	des, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("raftnode: read %s: %w", dir, err)
	}
	var seqs []uint64
	for _, de := range des {
		if seq, ok := parseWALName(de.Name()); ok && de.Type().IsRegular() {
			seqs = append(seqs, seq)
		}
	}
	slices.Sort(seqs)
	return seqs, nil
}

// replayWAL reads the write-ahead files in order and reconciles them with the snapshot.
func replayWAL(dir string, seqs []uint64, snap *raftpb.Snapshot, log *zap.Logger) (*loadedState, error) {
	var (
		baseIndex, baseTerm uint64
		ents                []*raftpb.Entry // baseIndex+1, baseIndex+2, ...
		hs                  *raftpb.HardState
	)
	for i, seq := range seqs {
		path := filepath.Join(dir, walName(seq))
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("raftnode: read %s: %w", path, err)
		}
		last := i == len(seqs)-1
		off := 0
		for off < len(b) {
			rec, n, err := decodeRecord(b[off:])
			if err == nil && off == 0 && rec.typ != recStart {
				err = fmt.Errorf("%w: file does not begin with a start record", errBadRecord)
			}
			if err == nil && rec.typ == recEntry {
				idx := rec.entry.GetIndex()
				if idx > baseIndex+uint64(len(ents))+1 {
					err = fmt.Errorf("%w: entry %d leaves a gap after %d", errBadRecord, idx, baseIndex+uint64(len(ents)))
				}
			}
			if err != nil {
				if !last {
					return nil, fmt.Errorf("%w: %s at offset %d: %w", ErrCorrupt, path, off, err)
				}
				if err := cutTail(path, b, off, log, err); err != nil {
					return nil, err
				}
				break
			}
			switch rec.typ {
			case recStart:
				// A file repeats everything after its start, superseding older files.
				baseIndex, baseTerm, ents = rec.index, rec.term, nil
			case recEntry:
				idx := rec.entry.GetIndex()
				if idx <= baseIndex {
					break // already covered by the snapshot this file follows
				}
				// Raft overwrote a conflicting suffix: drop every entry at idx or above.
				ents = append(ents[:idx-baseIndex-1], rec.entry)
			case recHardState:
				hs = rec.hs
			}
			off += n
		}
	}

	var si, st uint64
	if snap != nil {
		si, st = snap.GetMetadata().GetIndex(), snap.GetMetadata().GetTerm()
	}
	switch {
	case baseIndex > si:
		return nil, fmt.Errorf("%w: write-ahead log follows index %d but the snapshot is at %d", ErrCorrupt, baseIndex, si)
	case baseIndex < si:
		// The snapshot became durable but its write-ahead file did not (a crash in between).
		// The old log continues after the snapshot only if it holds the snapshot's entry.
		keep := false
		if si <= baseIndex+uint64(len(ents)) {
			keep = ents[si-baseIndex-1].GetTerm() == st
		}
		if keep {
			ents = ents[si-baseIndex:]
		} else {
			if n := baseIndex + uint64(len(ents)); n > si {
				log.Warn("raftnode: dropped write-ahead entries that do not follow the snapshot",
					zap.Uint64("snapshot_index", si), zap.Uint64("snapshot_term", st),
					zap.Uint64("dropped", n-si))
			}
			ents = nil
		}
	default:
		if baseTerm != st {
			return nil, fmt.Errorf("%w: write-ahead log follows term %d at index %d, the snapshot has term %d", ErrCorrupt, baseTerm, si, st)
		}
	}

	last := si + uint64(len(ents))
	if hs != nil {
		hs = &raftpb.HardState{Term: new(hs.GetTerm()), Vote: new(hs.GetVote()), Commit: new(hs.GetCommit())}
		if hs.GetCommit() < si {
			hs.Commit = new(si) // the snapshot holds only committed state
		}
		if hs.GetTerm() < st {
			// The hard state of the snapshot's term was not written yet; no vote in that
			// term reached the disk, so none was sent.
			hs.Term, hs.Vote = new(st), new(uint64(0))
		}
		if hs.GetCommit() > last {
			return nil, fmt.Errorf("%w: commit index %d beyond the last entry %d", ErrCorrupt, hs.GetCommit(), last)
		}
	} else if snap != nil {
		hs = &raftpb.HardState{Term: new(st), Vote: new(uint64(0)), Commit: new(si)}
	}
	if snap == nil && len(ents) == 0 && !raft.IsEmptyHardState(hs) {
		return nil, fmt.Errorf("%w: hard state without a log", ErrCorrupt)
	}
	return &loadedState{snap: snap, hs: hs, ents: ents}, nil
}

// cutTail moves the bytes of path from off on into a .dropped-<n> file beside it and
// truncates path to off.
func cutTail(path string, b []byte, off int, log *zap.Logger, cause error) error {
	var dropped string
	for n := 1; ; n++ {
		dropped = fmt.Sprintf("%s.dropped-%d", path, n)
		if _, err := os.Lstat(dropped); errors.Is(err, fs.ErrNotExist) {
			break
		} else if err != nil {
			return fmt.Errorf("raftnode: stat %s: %w", dropped, err)
		}
	}
	if err := writeFileSync(dropped, b[off:]); err != nil {
		return err
	}
	if err := os.Truncate(path, int64(off)); err != nil {
		return fmt.Errorf("raftnode: truncate %s: %w", path, err)
	}
	if err := syncDir(filepath.Dir(path)); err != nil {
		return err
	}
	log.Warn("raftnode: cut the write-ahead log at its last valid record",
		zap.String("file", path), zap.Int("valid_bytes", off), zap.Int("cut_bytes", len(b)-off),
		zap.String("kept_in", dropped), zap.NamedError("cause", cause))
	return nil
}

// rotate writes a new write-ahead file seq holding the start (index, term), hs and ents,
// makes it durable, switches to it and deletes the files in old.
func (d *disk) rotate(seq, index, term uint64, hs *raftpb.HardState, ents []*raftpb.Entry, old []uint64) error {
	d.buf = appendStartRecord(d.buf[:0], index, term)
	if !raft.IsEmptyHardState(hs) {
		d.buf = appendHardStateRecord(d.buf, hs)
	}
	for _, e := range ents {
		d.buf = appendEntryRecord(d.buf, e)
	}
	path := filepath.Join(d.dir, walName(seq))
	if err := writeFileSync(path+".tmp", d.buf); err != nil {
		return err
	}
	if err := os.Rename(path+".tmp", path); err != nil {
		return fmt.Errorf("raftnode: rename %s: %w", path, err)
	}
	if err := syncDir(d.dir); err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return fmt.Errorf("raftnode: open %s: %w", path, err)
	}
	if d.f != nil {
		if err := d.f.Close(); err != nil {
			d.log.Warn("raftnode: close write-ahead file", zap.Error(err))
		}
	}
	d.f, d.seq, d.hs = f, seq, hs
	removed := false
	for _, s := range old {
		if s == seq {
			continue
		}
		p := filepath.Join(d.dir, walName(s))
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			// Harmless: the new file supersedes it on every reload.
			d.log.Warn("raftnode: remove old write-ahead file", zap.String("file", p), zap.Error(err))
			continue
		}
		removed = true
	}
	if removed {
		return syncDir(d.dir)
	}
	return nil
}

// save appends ents and hs (nil: unchanged) to the write-ahead file; sync fsyncs it.
func (d *disk) save(hs *raftpb.HardState, ents []*raftpb.Entry, sync bool) error {
	d.buf = d.buf[:0]
	for _, e := range ents {
		d.buf = appendEntryRecord(d.buf, e)
	}
	if !raft.IsEmptyHardState(hs) {
		d.buf = appendHardStateRecord(d.buf, hs)
	}
	if len(d.buf) == 0 {
		return nil
	}
	if _, err := d.f.Write(d.buf); err != nil {
		return fmt.Errorf("raftnode: write %s: %w", d.f.Name(), err)
	}
	if sync {
		if err := d.f.Sync(); err != nil {
			return fmt.Errorf("raftnode: fsync %s: %w", d.f.Name(), err)
		}
	}
	if !raft.IsEmptyHardState(hs) {
		d.hs = hs
	}
	return nil
}

// saveSnapshot makes snap durable and starts a new write-ahead file after it holding hs
// (nil: the last one saved) and ents (the entries after the snapshot), then deletes the
// previous file.
func (d *disk) saveSnapshot(snap *raftpb.Snapshot, hs *raftpb.HardState, ents []*raftpb.Entry) error {
	if err := writeSnapshotFile(d.dir, snap); err != nil {
		return err
	}
	if raft.IsEmptyHardState(hs) {
		hs = d.hs
	}
	md := snap.GetMetadata()
	return d.rotate(d.seq+1, md.GetIndex(), md.GetTerm(), hs, ents, []uint64{d.seq})
}

// close fsyncs and closes the write-ahead file.
func (d *disk) close() error {
	if d.f == nil {
		return nil
	}
	err := d.f.Sync()
	if cerr := d.f.Close(); err == nil {
		err = cerr
	}
	d.f = nil
	if err != nil {
		return fmt.Errorf("raftnode: close write-ahead file: %w", err)
	}
	return nil
}

// writeFileSync writes b to path (truncating it) and fsyncs it.
func writeFileSync(path string, b []byte) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o644)
	if err != nil {
		return fmt.Errorf("raftnode: create %s: %w", path, err)
	}
	if _, err := f.Write(b); err != nil {
		_ = f.Close()
		return fmt.Errorf("raftnode: write %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		_ = f.Close()
		return fmt.Errorf("raftnode: fsync %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("raftnode: close %s: %w", path, err)
	}
	return nil
}

func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("raftnode: open %s: %w", dir, err)
	}
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("raftnode: fsync %s: %w", dir, err)
	}
	return nil
}
