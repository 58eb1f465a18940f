package esstore

import (
	"context"
	"sync/atomic"
	"testing"
)

// The engine's freed memory is handed back after every flush and every
// compaction: without the hook, a cgo build's resident set drifts by tens
// of MiB from run to run (see trimCHeap).
func TestFreedMemoryIsReturnedAfterFlushAndCompaction(t *testing.T) {
	var trims atomic.Int64
	s := openAt(t, t.TempDir(), Options{NoSync: true, trim: func() { trims.Add(1) }})
	for i := uint64(0); i < 10; i++ {
		mustAppend(t, s, "trim-a", Any(), evs(2*i+1))
		mustAppend(t, s, "trim-b", Any(), evs(2*i+2))
		if err := s.db.Flush(); err != nil {
			t.Fatalf("Flush: %v", err)
		}
	}
	afterFlushes := trims.Load()
	if afterFlushes < 10 {
		t.Fatalf("after 10 flushes the freed memory was returned %d times, want 10 or more", afterFlushes)
	}
	if err := s.db.Compact(context.Background(), []byte{0}, []byte{0xff}, false); err != nil {
		t.Fatalf("Compact: %v", err)
	}
	if trims.Load() <= afterFlushes {
		t.Fatalf("a compaction did not return freed memory (%d calls before it, %d after)", afterFlushes, trims.Load())
	}
	// The real thing runs too, with cgo and without.
	trimCHeap()
	if got := readStream(t, s, "trim-b", 0, true); len(got) != 10 {
		t.Fatalf("trim-b holds %d events after the flushes and the compaction, want 10", len(got))
	}
}
