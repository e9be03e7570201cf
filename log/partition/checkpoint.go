package partition

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/thorstream/thorstream/log/vfs"
)

// Checkpoint files of a partition directory. All share Kafka's text layout:
//
//	0            version
//	N            number of entries
//	entry 1      one line per entry, fields separated by one space
//	...
const (
	leaderEpochCheckpoint   = "leader-epoch-checkpoint"     // entries "epoch startOffset"
	logStartCheckpoint      = "log-start-offset-checkpoint" // one entry "offset"
	recoveryPointCheckpoint = "recovery-point-offset-checkpoint"
	checkpointVersion       = 0
	tmpSuffix               = ".tmp"
)

var errBadCheckpoint = errors.New("log/partition: malformed checkpoint")

// writeCheckpoint replaces dir/name atomically and durably: write a temporary file, fsync it,
// rename it over the old one, fsync the directory. A crash leaves either the old or the new file.
func writeCheckpoint(fs vfs.FS, dir, name string, lines [][]int64) error {
	var buf bytes.Buffer
	fmt.Fprintf(&buf, "%d\n%d\n", checkpointVersion, len(lines))
	for _, fields := range lines {
		for i, f := range fields {
			if i > 0 {
				buf.WriteByte(' ')
			}
			buf.WriteString(strconv.FormatInt(f, 10))
		}
		buf.WriteByte('\n')
	}
	path := filepath.Join(dir, name)
	tmp := path + tmpSuffix
	f, err := fs.Create(tmp)
	if err != nil {
		return err
	}
	if _, err := f.WriteAt(buf.Bytes(), 0); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := fs.Rename(tmp, path); err != nil {
		return err
	}
	return fs.SyncDir(dir)
}

// readCheckpoint reads dir/name; each entry must have fieldsPerLine fields. A missing file
// returns os.ErrNotExist (wrapped); a malformed one errBadCheckpoint.
func readCheckpoint(fs vfs.FS, dir, name string, fieldsPerLine int) ([][]int64, error) {
	f, err := fs.Open(filepath.Join(dir, name))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	size, err := f.Size()
	if err != nil {
		return nil, err
	}
	raw := make([]byte, size)
	if n, err := f.ReadAt(raw, 0); n != len(raw) {
		return nil, err
	}
	sc := bufio.NewScanner(bytes.NewReader(raw))
	next := func() (string, bool) {
		if !sc.Scan() {
			return "", false
		}
		return sc.Text(), true
	}
	bad := func(why string) error { return fmt.Errorf("%w: %s: %s", errBadCheckpoint, name, why) }
	line, ok := next()
	if !ok || strings.TrimSpace(line) != strconv.Itoa(checkpointVersion) {
		return nil, bad("version")
	}
	line, ok = next()
	count, err := strconv.Atoi(strings.TrimSpace(line))
	if !ok || err != nil || count < 0 || count > len(raw) {
		return nil, bad("count")
	}
	out := make([][]int64, 0, count)
	for i := 0; i < count; i++ {
		line, ok = next()
		fields := strings.Fields(line)
		if !ok || len(fields) != fieldsPerLine {
			return nil, bad(fmt.Sprintf("entry %d", i))
		}
		entry := make([]int64, fieldsPerLine)
		for j, fld := range fields {
			if entry[j], err = strconv.ParseInt(fld, 10, 64); err != nil {
				return nil, bad(fmt.Sprintf("entry %d", i))
			}
		}
		out = append(out, entry)
	}
	return out, nil
}

// readOffsetCheckpoint reads a one-entry offset checkpoint; ok=false if missing or malformed.
func readOffsetCheckpoint(fs vfs.FS, dir, name string) (offset int64, ok bool, err error) {
	lines, err := readCheckpoint(fs, dir, name, 1)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) || errors.Is(err, errBadCheckpoint) {
			return 0, false, nil
		}
		return 0, false, err
	}
	if len(lines) != 1 || lines[0][0] < 0 {
		return 0, false, nil
	}
	return lines[0][0], true, nil
}

func writeOffsetCheckpoint(fs vfs.FS, dir, name string, offset int64) error {
	return writeCheckpoint(fs, dir, name, [][]int64{{offset}})
}

// WriteStateCheckpoint replaces the partition's checkpoint file name (atomically and durably)
// with lines of integers. Owners of state kept beside the log (producer sequence numbers) use it
// for snapshots. Writer goroutine only.
func (l *Log) WriteStateCheckpoint(name string, lines [][]int64) error {
	return writeCheckpoint(l.fs, l.dir, name, lines)
}

// ReadStateCheckpoint reads a checkpoint written by WriteStateCheckpoint; every line must have
// fieldsPerLine fields. A missing file gives an error wrapping os.ErrNotExist.
func (l *Log) ReadStateCheckpoint(name string, fieldsPerLine int) ([][]int64, error) {
	return readCheckpoint(l.fs, l.dir, name, fieldsPerLine)
}
