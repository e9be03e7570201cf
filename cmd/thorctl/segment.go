package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/thorstream/thorstream/codec/batch"
	"github.com/thorstream/thorstream/log/partition"
	"github.com/thorstream/thorstream/log/segment"
	"github.com/thorstream/thorstream/log/vfs"
)

var codecNames = map[int]string{
	batch.CodecNone: "none", batch.CodecGzip: "gzip", batch.CodecSnappy: "snappy",
	batch.CodecLZ4: "lz4", batch.CodecZstd: "zstd",
}

// segmentDump prints one line per batch of a .log file and stops at the first bad batch; with
// --records, each batch is followed by a line per record. A file of bytes recovery cut off
// (*.log.dropped-*) is salvaged instead: every valid batch in it is listed, with a line for each
// damaged stretch.
func segmentDump(args []string, _ string, e *env) error {
	fset := flag.NewFlagSet("segment dump", flag.ContinueOnError)
	withRecords := fset.Bool("records", false, "after each batch, print its records: offset, timestamp, key, value and headers")
	forceHex := fset.Bool("hex", false, "print keys, values and header values in hex even when they are text (implies --records)")
	pos, err := parseArgs(fset, args, "FILE.log")
	if err != nil {
		return err
	}
	path := pos[0]
	out := bufio.NewWriterSize(e.stdout, 64<<10)
	defer out.Flush()
	var records *recordDumper
	if *withRecords || *forceHex {
		if records, err = openRecordDumper(path, out, *forceHex); err != nil {
			return fmt.Errorf("segment dump %s: %w", path, err)
		}
		defer records.close()
	}
	var bad error
	batches := 0
	scan := segment.Scan
	if partition.Compacted(vfs.Default, path) {
		scan = segment.ScanCompacted // the cleaner removed batches: offsets skip
	}
	_, salvage := segment.IsDroppedFile(filepath.Base(path))
	if salvage {
		// Bytes recovery cut off: damage may be anywhere, so list every valid batch in it.
		scan = segment.Salvage
	}
	err = scan(vfs.Default, path, func(p int64, h batch.Header, err error) error {
		if err != nil {
			bad = err
			fmt.Fprintf(out, "position=%d BAD: %v\n", p, err)
			return nil
		}
		batches++
		fmt.Fprintln(out, formatBatch(p, &h))
		if records != nil {
			return records.dump(p, &h)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("segment dump %s: %w", path, err)
	}
	if salvage {
		fmt.Fprintf(out, "%d valid batches in bytes cut off by recovery\n", batches)
	}
	if err := out.Flush(); err != nil {
		return fmt.Errorf("segment dump %s: %w", path, err)
	}
	if records != nil && records.badBatches > 0 {
		return fmt.Errorf("segment dump %s: the records of %d of %d valid batches do not decode", path, records.badBatches, batches)
	}
	if bad != nil && !salvage {
		return fmt.Errorf("segment dump %s: %d valid batches, then: %w", path, batches, bad)
	}
	return nil
}

// formatBatch is one line of `segment dump`.
func formatBatch(pos int64, h *batch.Header) string {
	codec := codecNames[h.Codec()]
	if codec == "" {
		codec = fmt.Sprintf("codec%d", h.Codec())
	}
	var flags []string
	if h.IsTransactional() {
		flags = append(flags, "transactional")
	}
	if h.IsControl() {
		flags = append(flags, "control")
	}
	if h.LogAppendTime() {
		flags = append(flags, "logAppendTime")
	}
	s := fmt.Sprintf("position=%d baseOffset=%d lastOffset=%d count=%d size=%d leaderEpoch=%d crc=%08x codec=%s maxTimestamp=%s",
		pos, h.BaseOffset, h.LastOffset(), h.RecordCount, h.Size(), h.PartitionLeaderEpoch, h.CRC, codec,
		time.UnixMilli(h.MaxTimestamp).UTC().Format(time.RFC3339Nano))
	if h.ProducerID >= 0 {
		s += fmt.Sprintf(" producerId=%d producerEpoch=%d baseSequence=%d", h.ProducerID, h.ProducerEpoch, h.BaseSequence)
	}
	if len(flags) > 0 {
		s += " flags=" + strings.Join(flags, ",")
	}
	return s
}

// segmentVerify checks a .log file, or every .log file under a directory.
func segmentVerify(args []string, _ string, e *env) error {
	fset := flag.NewFlagSet("segment verify", flag.ContinueOnError)
	pos, err := parseArgs(fset, args, "PATH")
	if err != nil {
		return err
	}
	root := pos[0]
	st, err := os.Stat(root)
	if err != nil {
		return fmt.Errorf("segment verify: %w", err)
	}
	var files []string
	if st.IsDir() {
		err = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if !d.IsDir() && strings.HasSuffix(p, segment.LogSuffix) {
				files = append(files, p)
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("segment verify %s: %w", root, err)
		}
		if len(files) == 0 {
			return fmt.Errorf("segment verify %s: no %s files", root, segment.LogSuffix)
		}
	} else {
		files = []string{root}
	}
	bad := 0
	for _, f := range files {
		verify := segment.Verify
		if partition.Compacted(vfs.Default, f) {
			verify = segment.VerifyCompacted
		}
		res, err := verify(vfs.Default, f)
		if err != nil {
			return fmt.Errorf("segment verify %s: %w", f, err)
		}
		fmt.Fprintln(e.stdout, formatVerify(f, res))
		if res.BadPosition >= 0 {
			bad++
		}
	}
	if bad > 0 {
		return fmt.Errorf("segment verify %s: %d of %d files bad", root, bad, len(files))
	}
	return nil
}

// formatVerify is one line of `segment verify`.
func formatVerify(path string, r segment.VerifyResult) string {
	if r.BadPosition < 0 {
		return fmt.Sprintf("%s: ok, %d batches, %d bytes, next offset %d", path, r.Batches, r.Size, r.NextOffset)
	}
	kind := "corrupt"
	if errors.Is(r.Reason, segment.ErrTorn) {
		kind = "torn"
	}
	return fmt.Sprintf("%s: BAD (%s) at position %d: %v; valid prefix %d of %d bytes, %d batches, next offset %d",
		path, kind, r.BadPosition, r.Reason, r.ValidBytes, r.Size, r.Batches, r.NextOffset)
}
