// Package raftnode runs one member of an etcd raft group (go.etcd.io/raft/v3) with durable
// storage, for Thorstream's cluster metadata. Every member is a voter and membership is
// static: a node bootstraps with the full peer list on an empty directory and restarts from
// its directory afterwards.
//
// # The Ready loop
//
// One goroutine owns the raft node. It ticks on a ticker, feeds inbound messages from a
// bounded queue (Step never blocks; a full queue drops, raft retransmits), and handles each
// Ready in the order etcd raft's README gives:
//
//  1. persist the snapshot, the entries and the HardState, fsync;
//  2. hand the messages to the Transport (which never blocks) and report every MsgSnap as
//     sent (raft probes the follower and sends again if it never arrived);
//  3. restore the state machine from the snapshot, apply the committed entries in log order
//     (conf changes through ApplyConfChange);
//  4. every Config.SnapshotEntries applied entries, take a state-machine snapshot, persist
//     it, compact the in-memory log keeping Config.CatchUpEntries entries for slow followers
//     and start a new write-ahead file;
//  5. Advance.
//
// # Proposals
//
// A proposal's entry is framed as
//
//	+------------------+------------------+-----------+
//	| proposer uint64  | sequence uint64  | payload   |
//	+------------------+------------------+-----------+
//	  big endian         big endian
//
// so the proposing node recognises its own entries when it applies them and hands the state
// machine's result to the waiting caller. The sequence starts at a random value on every
// start, so entries replayed from an earlier run never match a new caller. Entries proposed
// elsewhere are applied without a waiter.
//
// # On-disk format
//
// The directory holds one snapshot file and write-ahead files:
//
//	snapshot             the latest snapshot, replaced atomically (tmp file, fsync, rename, dir fsync)
//	wal-<seq>.log        write-ahead files, <seq> 16 hex digits, increasing; normally exactly one
//	wal-<seq>.log.dropped-<n>  bytes cut from a torn or corrupt WAL tail, kept for inspection
//
// A write-ahead file is a sequence of records:
//
//	+-------------+-------------+--------+-------------------+
//	| len uint32  | crc uint32  | type u8| body (len-1 bytes)|
//	+-------------+-------------+--------+-------------------+
//	  little endian; crc is CRC-32C over type and body
//
//	type 1 start:      index uint64, term uint64   (first record; the log continues after it)
//	type 2 entry:      term uint64, index uint64, entry type u8, data
//	type 3 hard state: term uint64, vote uint64, commit uint64
//
// Every file begins with a start record naming the snapshot it follows and repeats the hard
// state and every entry after that snapshot, so a new file supersedes all older ones; older
// files are deleted only once the new file (written as a tmp file, fsynced and renamed) and
// the snapshot are durable. On reload an entry record at index i replaces every loaded entry
// at i or above (raft overwrote a conflicting suffix). A record that is torn or fails its CRC
// at the tail of the newest file is cut there: the cut bytes go to a .dropped-<n> file beside
// it and a log line says so. Damage anywhere else, or a corrupt snapshot file, is ErrCorrupt.
//
// The snapshot file:
//
//	+----------+------------+------------+---------------------------------------------+
//	| "TSRSNP1"| len uint32 | crc uint32 | body: index u64, term u64, auto-leave u8,     |
//	|  + 0x00  |            |  CRC-32C   | voters, learners, voters outgoing,            |
//	|          |            |  of body   | learners next (each count u32 + ids u64),     |
//	|          |            |            | data (rest)                                   |
//	+----------+------------+------------+---------------------------------------------+
//	  little endian
package raftnode
