package partition

import (
	"sort"
)

// EpochEntry is one entry of the leader epoch cache: the first offset written in Epoch.
type EpochEntry struct {
	Epoch       int32
	StartOffset int64
}

// epochCache is the leader epoch cache (Kafka's LeaderEpochFileCache): entries with strictly
// increasing epochs and non-decreasing start offsets. Owned by the writer goroutine; the entries
// slice is replaced, never mutated in place, so readers holding an old one are safe.
type epochCache struct {
	entries []EpochEntry
}

func (c *epochCache) latest() int32 {
	if len(c.entries) == 0 {
		return -1
	}
	return c.entries[len(c.entries)-1].Epoch
}

// assign records that offset is the first of epoch, if epoch is newer than the latest.
func (c *epochCache) assign(epoch int32, offset int64) bool {
	if epoch < 0 || epoch <= c.latest() {
		return false
	}
	c.entries = append(c.entries, EpochEntry{Epoch: epoch, StartOffset: offset})
	return true
}

// truncateFromEnd drops the entries that start at or after endOffset (log truncated there).
func (c *epochCache) truncateFromEnd(endOffset int64) bool {
	i := sort.Search(len(c.entries), func(i int) bool { return c.entries[i].StartOffset >= endOffset })
	if i == len(c.entries) {
		return false
	}
	c.entries = append([]EpochEntry(nil), c.entries[:i]...)
	return true
}

// truncateFromStart drops the entries wholly below startOffset; the entry covering startOffset
// moves its start up to it (Kafka's truncateFromStart).
func (c *epochCache) truncateFromStart(startOffset int64) bool {
	i := sort.Search(len(c.entries), func(i int) bool { return c.entries[i].StartOffset > startOffset })
	if i == 0 {
		return false // every entry starts after startOffset
	}
	// entries[i-1] covers startOffset.
	if i-1 == 0 && c.entries[0].StartOffset == startOffset {
		return false
	}
	kept := append([]EpochEntry(nil), c.entries[i-1:]...)
	kept[0].StartOffset = startOffset
	c.entries = kept
	return true
}

// endOffsetFor implements OffsetsForLeaderEpoch: the end offset of the largest epoch <= the
// requested one, i.e. the start offset of the next epoch, or the log end offset for the latest.
func (c *epochCache) endOffsetFor(epoch int32, logEndOffset int64) (int64, int32) {
	const undefinedOffset, undefinedEpoch = -1, -1
	if epoch < 0 || len(c.entries) == 0 {
		return undefinedOffset, undefinedEpoch
	}
	if epoch == c.latest() {
		return logEndOffset, epoch
	}
	higher := sort.Search(len(c.entries), func(i int) bool { return c.entries[i].Epoch > epoch })
	if higher == len(c.entries) {
		return undefinedOffset, undefinedEpoch // newer than anything we know
	}
	if higher == 0 {
		// Older than our first epoch: the follower must truncate to our first offset.
		return c.entries[0].StartOffset, epoch
	}
	return c.entries[higher].StartOffset, c.entries[higher-1].Epoch
}

func (c *epochCache) lines() [][]int64 {
	out := make([][]int64, len(c.entries))
	for i, e := range c.entries {
		out[i] = []int64{int64(e.Epoch), e.StartOffset}
	}
	return out
}

// fromLines loads checkpoint entries, returning false if they are not ordered.
func (c *epochCache) fromLines(lines [][]int64) bool {
	entries := make([]EpochEntry, 0, len(lines))
	for _, l := range lines {
		e := EpochEntry{Epoch: int32(l[0]), StartOffset: l[1]}
		if e.Epoch < 0 || int64(e.Epoch) != l[0] || e.StartOffset < 0 {
			return false
		}
		if n := len(entries); n > 0 && (e.Epoch <= entries[n-1].Epoch || e.StartOffset < entries[n-1].StartOffset) {
			return false
		}
		entries = append(entries, e)
	}
	c.entries = entries
	return true
}
