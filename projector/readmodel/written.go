package readmodel

import (
	"hash/maphash"
	"math/bits"
)

// writtenFilter remembers which views a rebuild has committed, so that the
// fold can tell a view it never wrote, which is absent from the fresh
// store, without looking it up. Almost every lookup of a rebuild is for a
// new view (a conversation's later events find it among the views not yet
// committed), and an absent key costs the store a search of every level:
// measured on the replay bench, 204,000 lookups of which 24 found a view,
// ≈ 9 % of the replay's CPU. It is a Bloom filter: a false positive only
// costs the lookup it would have made anyway, and there are no false
// negatives.
type writtenFilter struct {
	words []uint64
	mask  uint64 // bits - 1
}

// writtenBitsPerView and maxWrittenBits size the filter: 10 bits per
// expected view give ≈ 1 % false positives with writtenHashes probes; the
// cap bounds its memory (32 MiB) on a very long history, where it only
// grows less exact.
const (
	writtenBitsPerView = 10
	writtenHashes      = 6
	maxWrittenBits     = 1 << 28
)

var writtenSeed = maphash.MakeSeed()

func newWrittenFilter(expectedViews uint64) *writtenFilter {
	n := min(max(expectedViews*writtenBitsPerView, 1<<16), maxWrittenBits)
	size := uint64(1) << bits.Len64(n-1) // a power of two ≥ n
	return &writtenFilter{words: make([]uint64, size/64), mask: size - 1}
}

// probes derives the filter's probe positions from one 64-bit hash
// (double hashing: h1 + i·h2).
func (f *writtenFilter) probes(kind byte, sid string, visit func(bit uint64) bool) bool {
	var h maphash.Hash
	h.SetSeed(writtenSeed)
	_ = h.WriteByte(kind)
	_, _ = h.WriteString(sid)
	sum := h.Sum64()
	h1, h2 := sum, sum>>33|1
	for i := uint64(0); i < writtenHashes; i++ {
		if !visit((h1 + i*h2) & f.mask) {
			return false
		}
	}
	return true
}

func (f *writtenFilter) add(kind byte, sid string) {
	f.probes(kind, sid, func(b uint64) bool {
		f.words[b/64] |= 1 << (b % 64)
		return true
	})
}

// mayHave is false only for a view that was never added.
func (f *writtenFilter) mayHave(kind byte, sid string) bool {
	return f.probes(kind, sid, func(b uint64) bool { return f.words[b/64]&(1<<(b%64)) != 0 })
}
