package esstore

import (
	"encoding/binary"
	"math/bits"
)

// recentIDs remembers the revisions of the events of the latest appends,
// every event of them, by (stream id, event id): the idempotency check's
// answer for an id that is not the first of its append, which the id index
// does not hold. It is KurrentDB's "recent events" idempotency cache:
// bounded, best effort. It forgets the oldest written entries first (a ring
// in write order; lookups do not refresh), so a retry of a part of an
// append that does not start at the append's first event is recognised only
// while that append is among the last entries written. Owned by the writer
// goroutine (no locking).
//
// Its memory is allocated once: the ring of entries (48 bytes each) and an
// open-addressing hash table of ring indexes (4 bytes per slot, at most
// half full), about 5.3 MiB for 100 000 entries. A Go map under this
// constant churn of inserts and deletes was measured at five times that.
type recentIDs struct {
	ring  []recentEntry // in write order; next is the oldest once full
	next  int
	table []int32 // ring index + 1; 0 is an empty slot; linear probing
	mask  uint64
	n     int    // live entries
	puts  uint64 // entries ever put
}

type recentEntry struct {
	sid  uint64
	id   ID
	rev  uint64
	hash uint64
	live bool // false once the key was written again at a later entry
}

func newRecentIDs(size int) *recentIDs {
	size = max(size, 1)
	tableSize := uint64(1) << bits.Len64(uint64(2*size-1)) // ≥ 2 × size
	return &recentIDs{ring: make([]recentEntry, size), table: make([]int32, tableSize), mask: tableSize - 1}
}

func recentHash(sid uint64, id ID) uint64 {
	h := sid*0x9e3779b97f4a7c15 ^ binary.LittleEndian.Uint64(id[:8])
	h = (h ^ h>>32) * 0xd6e8feb86659fd93
	h ^= binary.LittleEndian.Uint64(id[8:])
	h = (h ^ h>>32) * 0xd6e8feb86659fd93
	return h ^ h>>32
}

// find is the table slot holding (sid, id), or the empty slot where it
// would go, and whether it was found.
func (c *recentIDs) find(sid uint64, id ID, h uint64) (uint64, bool) {
	for i := h & c.mask; ; i = (i + 1) & c.mask {
		x := c.table[i]
		if x == 0 {
			return i, false
		}
		if e := &c.ring[x-1]; e.hash == h && e.sid == sid && e.id == id {
			return i, true
		}
	}
}

// remove empties table slot i, shifting back the entries of its probe run
// so that every entry stays reachable from its home slot.
func (c *recentIDs) remove(i uint64) {
	for j := (i + 1) & c.mask; c.table[j] != 0; j = (j + 1) & c.mask {
		home := c.ring[c.table[j]-1].hash & c.mask
		// The entry at j may move to i if its home is not in (i, j].
		if (j-home)&c.mask >= (j-i)&c.mask {
			c.table[i] = c.table[j]
			i = j
		}
	}
	c.table[i] = 0
}

// put records that the latest event of stream sid with this id is at rev.
func (c *recentIDs) put(sid uint64, id ID, rev uint64) {
	slot := c.next
	if old := &c.ring[slot]; old.live {
		if i, ok := c.find(old.sid, old.id, old.hash); ok {
			c.remove(i)
		}
		old.live = false
		c.n--
	}
	h := recentHash(sid, id)
	i, ok := c.find(sid, id, h)
	if ok {
		c.ring[c.table[i]-1].live = false
		c.n--
	}
	c.table[i] = int32(slot + 1)
	c.ring[slot] = recentEntry{sid: sid, id: id, rev: rev, hash: h, live: true}
	c.n++
	c.puts++
	if c.next++; c.next == len(c.ring) {
		c.next = 0
	}
}

// get is the revision of the latest event of stream sid with this id, if
// it is still remembered.
func (c *recentIDs) get(sid uint64, id ID) (uint64, bool) {
	i, ok := c.find(sid, id, recentHash(sid, id))
	if !ok {
		return 0, false
	}
	return c.ring[c.table[i]-1].rev, true
}

func (c *recentIDs) len() int { return c.n }

// mark is what streamRecord.recentFrom records for a stream created now,
// before any of its ids is put.
func (c *recentIDs) mark() uint64 { return c.puts + 1 }

// holdsSince reports whether every entry put since mark m is still
// remembered (none was pushed out of the ring), so that an id put since
// then that get does not find was never put. Entries overwritten by a
// later put of the same key count as remembered: that later put holds
// the id.
func (c *recentIDs) holdsSince(m uint64) bool {
	return m != 0 && c.puts-(m-1) <= uint64(len(c.ring))
}
