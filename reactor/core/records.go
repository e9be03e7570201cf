package core

import (
	"errors"

	"github.com/thorstream/thorstream/codec/batch"
)

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
