package main

import (
	"bufio"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/thorstream/thorstream/codec/batch"
	"github.com/thorstream/thorstream/codec/compress"
	"github.com/thorstream/thorstream/log/vfs"
)

// maxRecordsSection bounds the uncompressed records section of one dumped batch, as the client
// bounds a fetched one: a batch claiming more is reported, not decompressed.
const maxRecordsSection = 256 << 20

// recordTimeFormat is RFC 3339 with milliseconds always shown, so record lines align.
const recordTimeFormat = "2006-01-02T15:04:05.000Z07:00"

// recordDumper prints the records of a segment's batches, one batch at a time: it holds the
// bytes of one batch and its decompressed records, reused from batch to batch, so its memory is
// bounded by the largest batch of the file, whatever the file's size.
type recordDumper struct {
	file       vfs.File
	out        *bufio.Writer
	forceHex   bool
	raw        []byte // the batch being dumped, read from the file
	scratch    []byte // its decompressed records section, for compressed batches
	badBatches int
}

func openRecordDumper(path string, out *bufio.Writer, forceHex bool) (*recordDumper, error) {
	f, err := vfs.Default.Open(path)
	if err != nil {
		return nil, err
	}
	return &recordDumper{file: f, out: out, forceHex: forceHex}, nil
}

func (d *recordDumper) close() { d.file.Close() }

// dump prints the records of the valid batch with header h at pos. A batch whose records do not
// decode (its CRC holds, so a producer wrote it that way) gets a BAD line and is counted; the
// dump goes on. Only I/O errors are returned.
func (d *recordDumper) dump(pos int64, h *batch.Header) error {
	size := h.Size()
	if cap(d.raw) < size {
		d.raw = make([]byte, size)
	}
	raw := d.raw[:size]
	if n, err := d.file.ReadAt(raw, pos); n != size {
		if err == nil || errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF // the file shrank since the scan read it
		}
		return fmt.Errorf("reading the batch at position %d: %w", pos, err)
	}
	hdr, records, err := compress.DecompressBatch(raw, d.scratch, maxRecordsSection)
	if err == nil {
		if hdr.Codec() != batch.CodecNone {
			d.scratch = records[:0] // keep the grown buffer for the next batch
		}
		err = batch.DecodeRecords(&hdr, records, func(r *batch.Record) error {
			d.writeRecord(r)
			return nil
		})
	}
	if err != nil {
		d.badBatches++
		fmt.Fprintf(d.out, "  BAD records of the batch at position %d: %v\n", pos, err)
	}
	return nil
}

// writeRecord prints one record:
//
//	offset=3 timestamp=2023-11-14T22:13:20.001Z key="user-1" value="hello" headers="trace":"ab12","bin":0x00ff
func (d *recordDumper) writeRecord(r *batch.Record) {
	w := d.out
	fmt.Fprintf(w, "  offset=%d timestamp=%s key=", r.Offset, time.UnixMilli(r.Timestamp).UTC().Format(recordTimeFormat))
	writeBytes(w, r.Key, d.forceHex)
	w.WriteString(" value=")
	writeBytes(w, r.Value, d.forceHex)
	if len(r.Headers) > 0 {
		w.WriteString(" headers=")
		for i, h := range r.Headers {
			if i > 0 {
				w.WriteByte(',')
			}
			writeBytes(w, []byte(h.Key), false)
			w.WriteByte(':')
			writeBytes(w, h.Value, d.forceHex)
		}
	}
	w.WriteByte('\n')
}

// writeBytes prints b as null, a quoted string when it is printable UTF-8 (and forceHex is not
// set), else 0x followed by its hex digits.
func writeBytes(w *bufio.Writer, b []byte, forceHex bool) {
	switch {
	case b == nil:
		w.WriteString("null")
	case !forceHex && isPrintableText(b):
		w.WriteString(strconv.Quote(string(b)))
	default:
		w.WriteString("0x")
		var buf [512]byte
		for len(b) > 0 {
			n := min(len(b), len(buf)/2)
			hex.Encode(buf[:], b[:n])
			w.Write(buf[:2*n])
			b = b[n:]
		}
	}
}

// isPrintableText reports whether b is valid UTF-8 made of printable characters, spaces, tabs
// and line breaks.
func isPrintableText(b []byte) bool {
	for len(b) > 0 {
		r, n := utf8.DecodeRune(b)
		if r == utf8.RuneError && n <= 1 {
			return false
		}
		if !unicode.IsPrint(r) && r != '\t' && r != '\n' && r != '\r' {
			return false
		}
		b = b[n:]
	}
	return true
}
