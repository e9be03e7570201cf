package client

import (
	"github.com/thorstream/thorstream/codec/batch"
	"github.com/thorstream/thorstream/codec/compress"
)

// maxDecompressed bounds the uncompressed records section of one fetched batch.
const maxDecompressed = 256 << 20

// decompress returns the uncompressed records section of the compressed batch raw, in a new
// buffer: decoded records alias it, and it lives as long as they do.
func decompress(_ *batch.Header, raw []byte) ([]byte, error) {
	_, records, err := compress.DecompressBatch(raw, nil, maxDecompressed)
	return records, err
}
