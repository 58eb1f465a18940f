package esstore

import (
	"context"
	"sync/atomic"
	"testing"
	"time"
)

// The engine's freed memory is handed back after every flush and every
// compaction: without that, a cgo build's resident set drifts by tens of
// MiB from run to run (see trimCHeap).
func TestFreedMemoryIsReturnedAfterFlushAndCompaction(t *testing.T) {
	var trims atomic.Int64
	s := openAt(t, t.TempDir(), Options{NoSync: true, trim: func() { trims.Add(1) }})
	// A trim runs after the event, on its own goroutine.
	trimmedSince := func(what string, before int64) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for trims.Load() <= before {
			if time.Now().After(deadline) {
				t.Fatalf("no trim after %s (%d trims in all)", what, trims.Load())
			}
			time.Sleep(time.Millisecond)
		}
	}
	for i := uint64(0); i < 5; i++ {
		mustAppend(t, s, "trim-a", Any(), evs(2*i+1))
		mustAppend(t, s, "trim-b", Any(), evs(2*i+2))
		before := trims.Load()
		if err := s.db.Flush(); err != nil {
			t.Fatalf("Flush: %v", err)
		}
		trimmedSince("a flush", before)
	}
	before := trims.Load()
	if err := s.db.Compact(context.Background(), []byte{0}, []byte{0xff}, false); err != nil {
		t.Fatalf("Compact: %v", err)
	}
	trimmedSince("a compaction", before)
	// The real thing runs too, with cgo and without.
	trimCHeap()
	if got := readStream(t, s, "trim-b", 0, true); len(got) != 5 {
		t.Fatalf("trim-b holds %d events after the flushes and the compaction, want 5", len(got))
	}
}

// Requests made while a trim runs are merged into one trim after it, and
// a request never blocks the engine's goroutine that makes it.
func TestFreedMemoryMergesRequests(t *testing.T) {
	started := make(chan struct{})
	release := make(chan struct{})
	var trims atomic.Int64
	f := newFreedMemory(func() {
		if trims.Add(1) == 1 {
			close(started)
			<-release
		}
	})
	f.freed()
	<-started
	for range 100 {
		f.freed() // the first is queued, the others merged; none blocks
	}
	close(release)
	deadline := time.Now().Add(10 * time.Second)
	for trims.Load() < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("the queued trim did not run: %d trims", trims.Load())
		}
		time.Sleep(time.Millisecond)
	}
	f.close()
	if n := trims.Load(); n != 2 {
		t.Fatalf("%d trims, want 2: the first and one for the 100 requests made during it", n)
	}
}
