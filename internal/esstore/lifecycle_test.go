package esstore

import (
	"context"
	"errors"
	"math"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"go.uber.org/zap"
)

func TestReopenKeepsEverything(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	s, err := Open(ctx, dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	mustAppend(t, s, "a", NoStream(), evs(1, 2))
	mustAppend(t, s, "b", NoStream(), evs(3))
	mustAppend(t, s, "$$a", Any(), evs(4))
	if _, err := s.Tombstone(ctx, "b", Any()); err != nil {
		t.Fatal(err)
	}
	mustAppend(t, s, "a", Revision(1), evs(5))
	before := readAll(t, s, 0, true)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s = openAt(t, dir, Options{})
	if h, _ := s.Head(); h != 6 {
		t.Fatalf("head after reopen %d, want 6", h)
	}
	after := readAll(t, s, 0, true)
	if len(after) != len(before) {
		t.Fatalf("%d events after reopen, %d before", len(after), len(before))
	}
	for i := range before {
		b, a := before[i], after[i]
		if a.Stream != b.Stream || a.Revision != b.Revision || a.Position != b.Position || a.ID != b.ID || a.Type != b.Type ||
			!a.Created.Equal(b.Created) || string(a.Data) != string(b.Data) || string(a.Metadata) != string(b.Metadata) {
			t.Fatalf("event %d: %+v after reopen, %+v before", i, a, b)
		}
	}
	if st := state(t, s, "a"); st != (StreamState{Exists: true, Revision: 2}) {
		t.Errorf("state of a: %+v", st)
	}
	if st := state(t, s, "b"); st != (StreamState{Exists: true, Revision: 0, Tombstoned: true}) {
		t.Errorf("state of b: %+v", st)
	}
	// The id index survived: retries are still recognised.
	if res := mustAppend(t, s, "a", Any(), evs(1, 2)); res != (AppendResult{Revision: 1, Position: 2, Idempotent: true}) {
		t.Errorf("retry after reopen: %+v", res)
	}
	if _, err := s.Append(ctx, "b", Any(), evs(9)); errKind(err) != "deleted" {
		t.Errorf("append to tombstoned stream after reopen: %v", err)
	}
	// New streams get new stream ids: the old streams' reads are unchanged.
	mustAppend(t, s, "c", NoStream(), evs(7))
	res := mustAppend(t, s, "a", Revision(2), evs(8))
	if res.Position != 8 || res.Revision != 3 {
		t.Errorf("append after reopen: %+v", res)
	}
	if got := idNums(readStream(t, s, "a", 0, true)); !slices.Equal(got, []uint64{1, 2, 5, 8}) {
		t.Errorf("stream a: %v", got)
	}
	if got := idNums(readStream(t, s, "c", 0, true)); !slices.Equal(got, []uint64{7}) {
		t.Errorf("stream c: %v", got)
	}
}

func TestOpenErrors(t *testing.T) {
	ctx := context.Background()
	if _, err := Open(ctx, "", Options{}); !errors.Is(err, ErrInvalid) {
		t.Errorf("Open of no directory: %v", err)
	}
	dir := t.TempDir()
	openAt(t, dir, Options{NoSync: true})
	if s, err := Open(ctx, dir, Options{}); err == nil {
		s.Close()
		t.Errorf("a second Open of the same directory succeeded")
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := Open(cancelled, t.TempDir(), Options{}); !errors.Is(err, context.Canceled) {
		t.Errorf("Open with a cancelled context: %v", err)
	}
	// A directory holding some other Pebble database is refused.
	foreign := t.TempDir()
	db, err := pebble.Open(foreign, &pebble.Options{Logger: pebbleLogger{zap.NewNop().Sugar()}})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Set([]byte("hello"), []byte("world"), pebble.Sync); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if s, err := Open(ctx, foreign, Options{}); err == nil {
		s.Close()
		t.Errorf("Open of a foreign database succeeded")
	}
}

func TestCloseRefusesEverything(t *testing.T) {
	s := newTestStore(t)
	mustAppend(t, s, "x", Any(), evs(1))
	_, next := s.Head()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	ctx := context.Background()
	if _, err := s.Append(ctx, "x", Any(), evs(2)); !errors.Is(err, ErrClosed) {
		t.Errorf("Append after Close: %v", err)
	}
	if _, err := s.Tombstone(ctx, "x", Any()); !errors.Is(err, ErrClosed) {
		t.Errorf("Tombstone after Close: %v", err)
	}
	if _, err := s.State(ctx, "x"); !errors.Is(err, ErrClosed) {
		t.Errorf("State after Close: %v", err)
	}
	if err := s.ReadStream(ctx, "x", 0, true, func(RecordedEvent) bool { return true }); !errors.Is(err, ErrClosed) {
		t.Errorf("ReadStream after Close: %v", err)
	}
	if err := s.ReadAll(ctx, 0, true, func(RecordedEvent) bool { return true }); !errors.Is(err, ErrClosed) {
		t.Errorf("ReadAll after Close: %v", err)
	}
	pos, after := s.Head()
	if pos != 1 || !closedWithin(next, time.Second) || !closedWithin(after, time.Second) {
		t.Errorf("Head after Close: %d, channels not closed", pos)
	}
}

// Appends racing with Close either succeed, and are then durable, or fail
// with ErrClosed; Close answers everything that was queued.
func TestCloseDuringAppends(t *testing.T) {
	dir := t.TempDir()
	st, err := Open(context.Background(), dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	acked := map[uint64]uint64{} // id -> position
	var wg sync.WaitGroup
	started := make(chan struct{}, 32)
	for g := range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := uint64(0); ; i++ {
				n := uint64(g)<<32 | i
				res, err := st.Append(context.Background(), streamName(uint64(g)), Any(), evs(n))
				if errors.Is(err, ErrClosed) {
					return
				}
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				acked[n] = res.Position
				mu.Unlock()
				if i == 10 {
					started <- struct{}{}
				}
			}
		}()
	}
	for range 32 {
		<-started
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()

	s := openAt(t, dir, Options{})
	found := 0
	for _, e := range readAll(t, s, 0, true) {
		if pos, ok := acked[idNums([]RecordedEvent{e})[0]]; ok {
			if pos != e.Position {
				t.Fatalf("event acknowledged at %d found at %d", pos, e.Position)
			}
			found++
		}
	}
	if found != len(acked) {
		t.Fatalf("%d of %d acknowledged events after reopen", found, len(acked))
	}
}

// A long read stops with ErrClosed when the store closes, and Close waits
// for it rather than pulling the engine from under it.
func TestCloseStopsLongRead(t *testing.T) {
	s := newTestStore(t)
	for i := range uint64(20) {
		ids := make([]uint64, 100)
		for k := range ids {
			ids[k] = i*100 + uint64(k)
		}
		mustAppend(t, s, "long", Any(), evs(ids...))
	}
	for _, name := range []string{"all", "stream"} {
		t.Run(name, func(t *testing.T) {
			s := s
			if name == "stream" {
				s = newTestStore(t)
				for i := range uint64(20) {
					ids := make([]uint64, 100)
					for k := range ids {
						ids[k] = i*100 + uint64(k)
					}
					mustAppend(t, s, "long", Any(), evs(ids...))
				}
			}
			first := make(chan struct{})
			errc := make(chan error, 1)
			n := 0
			go func() {
				fn := func(RecordedEvent) bool {
					n++
					if n == 1 {
						close(first)
					}
					time.Sleep(100 * time.Microsecond)
					return true
				}
				if name == "all" {
					errc <- s.ReadAll(context.Background(), 0, true, fn)
				} else {
					errc <- s.ReadStream(context.Background(), "long", 0, true, fn)
				}
			}()
			<-first
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			if err := <-errc; !errors.Is(err, ErrClosed) || n >= 2000 {
				t.Fatalf("read of %d events ended with %v", n, err)
			}
		})
	}
}

// State never reports a revision that is not durable: the engine shows a
// batch before its fsync, the store must not. (It may report one whose
// head publication is in progress.)
func TestStateNotAheadOfHead(t *testing.T) {
	s := openAt(t, t.TempDir(), Options{}) // fsync widens the window
	ctx := context.Background()
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range uint64(300) {
			if _, err := s.Append(ctx, "v", Any(), evs(i)); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	var lastRev uint64
	for running := true; running; {
		select {
		case <-done:
			running = false
		default:
		}
		st := state(t, s, "v")
		head, next := s.Head()
		if !st.Exists {
			continue
		}
		if st.Revision < lastRev {
			t.Fatalf("state went back from %d to %d", lastRev, st.Revision)
		}
		lastRev = st.Revision
		ev := readStream(t, s, "v", st.Revision, true)
		if len(ev) == 0 {
			t.Fatalf("state revision %d not readable", st.Revision)
		}
		// State may run ahead of the head only by the commit whose
		// publication is under way: the next one covers it.
		if ev[0].Position > head {
			<-next
			if head, _ = s.Head(); ev[0].Position > head {
				t.Fatalf("state revision %d at position %d, head %d after the next commit", st.Revision, ev[0].Position, head)
			}
		}
		backward := readStream(t, s, "v", math.MaxUint64, false)
		if backward[0].Revision < st.Revision {
			t.Fatalf("stream read ends at %d, state said %d", backward[0].Revision, st.Revision)
		}
	}
}
