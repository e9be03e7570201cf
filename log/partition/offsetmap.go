package partition

import "hash/maphash"

// OffsetMap is the log cleaner's key → latest offset map, bounded by a byte budget (Kafka's
// log.cleaner.dedupe.buffer.size). Keys are not stored: each is reduced to a 128-bit hash from
// two independently seeded hashes, so an entry takes 24 bytes whatever the key's size, and two
// different keys share an entry with a probability below 2^-100 for a billion keys (a shared
// entry would make the cleaner drop the older one's record as if it were superseded). The seeds
// are random per map, so clients cannot choose keys that collide.
//
// Open addressing with linear probing; it is full at 90% of its slots. Reset empties it for the
// next pass without freeing its memory. Not safe for concurrent use: one cleaner thread owns it.
type OffsetMap struct {
	slots    []uint64 // 3 words per slot: hash high, hash low, offset+1 (0 = empty)
	capacity int      // slots
	limit    int      // entries allowed (90% of capacity)
	count    int
	seedA    maphash.Seed
	seedB    maphash.Seed
	maxBytes int64
}

// OffsetMapEntryBytes is what one entry of an OffsetMap costs.
const OffsetMapEntryBytes = 24

// NewOffsetMap returns a map that will use at most maxBytes (at least one entry's worth).
// Memory is allocated by Reserve, as a pass needs it.
func NewOffsetMap(maxBytes int64) *OffsetMap {
	return &OffsetMap{maxBytes: max(maxBytes, OffsetMapEntryBytes*2), seedA: maphash.MakeSeed(), seedB: maphash.MakeSeed()}
}

// MaxBytes is the map's budget.
func (m *OffsetMap) MaxBytes() int64 { return m.maxBytes }

// Bytes is the memory the map holds now.
func (m *OffsetMap) Bytes() int64 { return int64(len(m.slots)) * 8 }

// Reserve empties the map and sizes it for up to keys entries within its budget: a pass over a
// few records does not take the whole budget. The memory is kept for later passes.
func (m *OffsetMap) Reserve(keys int64) {
	want := int64(float64(keys)/0.9) + 16
	maxSlots := m.maxBytes / OffsetMapEntryBytes
	slots := int(min(want, maxSlots))
	if slots*3 > cap(m.slots) {
		m.slots = make([]uint64, slots*3)
	} else {
		m.slots = m.slots[:slots*3]
		clear(m.slots)
	}
	m.capacity = slots
	m.limit = max(int(float64(slots)*0.9), 1)
	m.count = 0
	m.seedA, m.seedB = maphash.MakeSeed(), maphash.MakeSeed()
}

// Len is the number of keys in the map.
func (m *OffsetMap) Len() int { return m.count }

func (m *OffsetMap) hash(key []byte) (hi, lo uint64) {
	return maphash.Bytes(m.seedA, key), maphash.Bytes(m.seedB, key)
}

// Put records offset as key's latest. It returns false, changing nothing, when key is new and the
// map is full.
func (m *OffsetMap) Put(key []byte, offset int64) bool {
	if m.capacity == 0 {
		return false
	}
	hi, lo := m.hash(key)
	i := int(hi % uint64(m.capacity))
	for {
		s := m.slots[i*3 : i*3+3]
		switch {
		case s[2] == 0:
			if m.count >= m.limit {
				return false
			}
			s[0], s[1], s[2] = hi, lo, uint64(offset)+1
			m.count++
			return true
		case s[0] == hi && s[1] == lo:
			if uint64(offset)+1 > s[2] {
				s[2] = uint64(offset) + 1
			}
			return true
		}
		if i++; i == m.capacity {
			i = 0
		}
	}
}

// Get returns key's latest offset, or -1 when the key is not in the map.
func (m *OffsetMap) Get(key []byte) int64 {
	if m.capacity == 0 {
		return -1
	}
	hi, lo := m.hash(key)
	i := int(hi % uint64(m.capacity))
	for {
		s := m.slots[i*3 : i*3+3]
		switch {
		case s[2] == 0:
			return -1
		case s[0] == hi && s[1] == lo:
			return int64(s[2]) - 1
		}
		if i++; i == m.capacity {
			i = 0
		}
	}
}
