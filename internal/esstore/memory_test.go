package esstore

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
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
	}, 0)
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

// A trim follows a request no sooner than the interval after the previous
// trim, so a burst of compactions costs one trim per interval.
func TestFreedMemoryWaitsTheIntervalBetweenTrims(t *testing.T) {
	const every = 100 * time.Millisecond
	at := make(chan time.Time, 2)
	f := newFreedMemory(func() { at <- time.Now() }, every)
	defer f.close()
	f.freed()
	first := <-at
	f.freed()
	f.freed()
	second := <-at
	if gap := second.Sub(first); gap < every {
		t.Fatalf("two trims %v apart, want at least %v", gap, every)
	}
	select {
	case third := <-at:
		t.Fatalf("a third trim at +%v: the requests after the first should have merged", third.Sub(first))
	case <-time.After(2 * every):
	}
}

// Each of the two events asks for a trim on its own.
func TestPebbleListenerAsksForTrims(t *testing.T) {
	cache := pebble.NewCache(1 << 20)
	defer cache.Unref()
	var asked int
	o := pebbleOptions(Options{}.withDefaults(), cache, vfs.NewMem(), func() { asked++ })
	o.EventListener.FlushEnd(pebble.FlushInfo{})
	if asked != 1 {
		t.Fatalf("after FlushEnd %d requests, want 1", asked)
	}
	o.EventListener.CompactionEnd(pebble.CompactionInfo{})
	if asked != 2 {
		t.Fatalf("after CompactionEnd %d requests, want 2", asked)
	}
}
