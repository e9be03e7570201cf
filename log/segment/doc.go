// Package segment stores one slice of a partition's log: a .log file of record batches and two
// sparse indexes, .index (offset → file position) and .timeindex (timestamp → offset).
//
// # Files
//
// A segment is named by its base offset, the offset of its first batch, written as 20 decimal
// digits so that a directory listing sorts in offset order (Kafka's naming):
//
//	00000000000000000000.log
//	00000000000000000000.index
//	00000000000000000000.timeindex
//
// # .log
//
// RecordBatch v2 batches back to back, exactly as the partition hands them over (baseOffset and
// partitionLeaderEpoch already patched). Nothing else: no segment header, no padding, so a Fetch
// can serve the bytes as they are. Offsets are contiguous: each batch's baseOffset is the previous
// batch's lastOffset+1, and the first batch's baseOffset is the segment's base offset.
//
//	+---------------------+---------------------+-----+
//	| batch 0 (12+len0 B) | batch 1 (12+len1 B) | ... |
//	+---------------------+---------------------+-----+
//	each batch: baseOffset int64 | batchLength int32 | partitionLeaderEpoch int32 | magic=2 | crc | ...
//
// # .index
//
// Sparse: one entry each time at least IndexIntervalBytes of log were written since the previous
// entry, for the batch that starts there. 8 bytes per entry, big endian, both fields increasing:
//
//	 0               4               8
//	+---------------+---------------+
//	| relOffset u32 | position u32  |   relOffset = batch baseOffset - segment base offset
//	+---------------+---------------+   position  = byte position of that batch in .log
//
// The first batch (position 0) never needs an entry. A lookup binary-searches the in-memory copy
// for the last entry at or below the wanted offset, then reads batch headers forward from its
// position: at most about IndexIntervalBytes of log, whatever the segment size.
//
// # .timeindex
//
// 12 bytes per entry, big endian. At each point where an .index entry is added, a .timeindex entry
// is added too if the segment's largest timestamp so far grew since the last one, so timestamps are
// strictly increasing (Kafka's semantics; producers' timestamps need not be):
//
//	 0                               8               12
//	+-------------------------------+---------------+
//	| maxTimestamp int64 (ms)       | relOffset u32 |   relOffset: the batch that holds maxTimestamp
//	+-------------------------------+---------------+
//
// # Durability
//
// Indexes are kept in memory and appended to their files with plain writes, never mmapped and
// not fsynced on each append: the .log is the only source of truth, and Recover rebuilds both
// indexes from it. Index files are synced with the log when a segment is rolled so that a
// segment below the partition's recovery point can be opened without a full scan.
//
// # Recovery
//
// Recover reads the .log batch by batch: the length must fit in the file, the header must parse,
// batch.Validate must pass (magic 2, CRC-32C, record count) and the baseOffset must follow the
// previous batch. The first failure marks the end of the valid prefix: the file is truncated
// there (a torn tail after a crash, or corruption; a corrupt batch is never served) and both
// indexes are recomputed and rewritten if they differ from the files.
package segment
