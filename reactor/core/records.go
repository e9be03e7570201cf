package core

import (
	"errors"

	"github.com/thorstream/thorstream/codec/batch"
	"github.com/thorstream/thorstream/codec/compress"
)

// errStop ends a record walk early.
var errStop = errors.New("core: stop")

// maxDecompressedBatch bounds what decompressing one stored batch may produce.
const maxDecompressedBatch = 64 << 20

// recordsOf calls fn for each record of one batch, decompressing it first when needed.
func recordsOf(b []byte, fn func(*batch.Record) error) error {
	h, records, err := compress.DecompressBatch(b, nil, maxDecompressedBatch)
	if err == nil {
		err = batch.DecodeRecords(&h, records, fn)
	}
	if errors.Is(err, errStop) {
		return nil
	}
	return err
}

// lastNextOffset returns the offset after the last whole batch in b.
func lastNextOffset(b []byte) (int64, error) {
	var next int64 = -1
	err := batch.Split(b, func(one []byte) error {
		h, err := batch.ParseHeader(one)
		if err != nil {
			return err
		}
		next = h.NextOffset()
		return nil
	})
	if err != nil {
		return -1, err
	}
	if next < 0 {
		return -1, errors.New("core: no whole batch")
	}
	return next, nil
}
