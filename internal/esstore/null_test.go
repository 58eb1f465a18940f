package esstore

import (
	"context"
	"errors"
	"math"
	"slices"
	"testing"
	"time"
)

func TestNullStore(t *testing.T) {
	ctx := context.Background()
	s := NewNull()
	defer s.Close()

	// Before any append: nothing, and the default template.
	if got := readAll(t, s, 0, true); len(got) != 0 {
		t.Fatalf("ReadAll of an empty null store: %d events", len(got))
	}
	pos, next := s.Head()
	if pos != 0 {
		t.Fatalf("head %d", pos)
	}

	// Appends check nothing and count.
	res := mustAppend(t, s, "a", Revision(42), evs(1, 2))
	if res != (AppendResult{Revision: 1, Position: 2}) {
		t.Fatalf("append: %+v", res)
	}
	if !closedWithin(next, time.Second) {
		t.Fatal("head channel not closed by an append")
	}
	if res := mustAppend(t, s, "b", NoStream(), evs(3)); res != (AppendResult{Revision: 0, Position: 3}) {
		t.Fatalf("append to b: %+v", res)
	}
	if res := mustAppend(t, s, "a", NoStream(), evs(1, 2)); res != (AppendResult{Revision: 3, Position: 5}) {
		t.Fatalf("second append to a: %+v", res)
	}
	if res := mustAppend(t, s, "a", Any(), nil); res != (AppendResult{Revision: 3}) {
		t.Fatalf("empty append: %+v", res)
	}
	if st := state(t, s, "a"); st != (StreamState{Exists: true, Revision: 3}) {
		t.Fatalf("state: %+v", st)
	}
	if p, err := s.Tombstone(ctx, "a", Any()); err != nil || p != 6 {
		t.Fatalf("tombstone: %d, %v", p, err)
	}

	// ReadAll: synthetic events shaped like the last appended one.
	last := evs(2)[0]
	all := readAll(t, s, 0, true)
	if got := positions(all); !slices.Equal(got, []uint64{1, 2, 3, 4, 5, 6}) {
		t.Fatalf("positions %v", got)
	}
	for _, e := range all {
		if e.Type != last.Type || e.ContentType != last.ContentType || string(e.Data) != string(last.Data) || string(e.Metadata) != string(last.Metadata) {
			t.Fatalf("synthetic event %+v", e)
		}
	}
	if got := positions(readAll(t, s, 4, true)); !slices.Equal(got, []uint64{4, 5, 6}) {
		t.Errorf("forward from 4: %v", got)
	}
	if got := positions(readAll(t, s, math.MaxUint64, false)); !slices.Equal(got, []uint64{6, 5, 4, 3, 2, 1}) {
		t.Errorf("backward from the end: %v", got)
	}
	if got := positions(readAll(t, s, 2, false)); !slices.Equal(got, []uint64{2, 1}) {
		t.Errorf("backward from 2: %v", got)
	}
	if got := positions(readAll(t, s, 0, false)); len(got) != 0 {
		t.Errorf("backward from 0: %v", got)
	}
	if got := readStream(t, s, "a", 0, true); len(got) != 0 {
		t.Errorf("ReadStream returned %d events", len(got))
	}

	// Cancellation and Close.
	cctx, cancel := context.WithCancel(ctx)
	n := 0
	err := s.ReadAll(cctx, 0, true, func(RecordedEvent) bool { n++; cancel(); return true })
	if n != 6 && !errors.Is(err, context.Canceled) {
		t.Errorf("ReadAll after cancel: %d events, %v", n, err)
	}
	_, next = s.Head()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if !closedWithin(next, time.Second) {
		t.Error("Close did not wake head waiters")
	}
	if _, err := s.Append(ctx, "a", Any(), evs(9)); !errors.Is(err, ErrClosed) {
		t.Errorf("Append after Close: %v", err)
	}
	if err := s.ReadAll(ctx, 0, true, func(RecordedEvent) bool { return true }); !errors.Is(err, ErrClosed) {
		t.Errorf("ReadAll after Close: %v", err)
	}
}

func TestNullStoreDefaultEvent(t *testing.T) {
	s := NewNull()
	defer s.Close()
	if _, err := s.Tombstone(context.Background(), "x", Any()); err != nil {
		t.Fatal(err)
	}
	all := readAll(t, s, 0, true)
	if len(all) != 1 || len(all[0].Data) != 300 || all[0].ContentType != "application/json" {
		t.Fatalf("default synthetic event: %+v", all)
	}
}

func TestNullStoreCancelledScan(t *testing.T) {
	s := NewNull()
	defer s.Close()
	events := make([]EventData, 1000)
	mustAppend(t, s, "x", Any(), events)
	ctx, cancel := context.WithCancel(context.Background())
	n := 0
	err := s.ReadAll(ctx, 0, true, func(RecordedEvent) bool {
		n++
		if n == 10 {
			cancel()
		}
		return true
	})
	if !errors.Is(err, context.Canceled) || n > 10+checkEvery {
		t.Fatalf("read %d events after cancel: %v", n, err)
	}
}
