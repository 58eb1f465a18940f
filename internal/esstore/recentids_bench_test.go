package esstore

import (
	"encoding/binary"
	"testing"
)

// BenchmarkRecentIDsPut is the writer's cost per event of an append of
// 100: a put into the full memory, which evicts the oldest entry.
func BenchmarkRecentIDsPut(b *testing.B) {
	c := newRecentIDs(100_000)
	var x ID
	put := func(i uint64) {
		binary.BigEndian.PutUint64(x[:8], i*0x9e3779b97f4a7c15)
		binary.BigEndian.PutUint64(x[8:], i)
		c.put(1+i/100, x, i)
	}
	for i := range uint64(200_000) { // full, and wrapped once
		put(i)
	}
	b.ResetTimer()
	for i := range uint64(b.N) {
		put(200_000 + i)
	}
}
