package readmodel_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/flexstream/flexstream/internal/esserver"
	"github.com/flexstream/flexstream/internal/eventstore"
	"github.com/flexstream/flexstream/projector/domain"
	"github.com/flexstream/flexstream/projector/readmodel"
)

func startStore(t *testing.T) *eventstore.Client {
	t.Helper()
	ctx := context.Background()
	srv, err := esserver.Start(ctx, esserver.Config{Addr: "127.0.0.1:0", DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	es, err := eventstore.Connect(ctx, eventstore.Config{ConnString: srv.ConnectionString()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { es.Close() })
	return es
}

func workload(from, to int) []domain.Event {
	var evs []domain.Event
	for n := from; n < to; n++ {
		evs = append(evs, lifecycle(n, n%3 == 0)...)
	}
	return evs
}

func dump(t *testing.T, path string) map[string]string {
	t.Helper()
	s, err := readmodel.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	d, err := readmodel.Dump(s)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func sameDump(t *testing.T, got, want map[string]string) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%d keys, want %d", len(got), len(want))
	}
	for k, w := range want {
		if g, ok := got[k]; !ok || g != w {
			t.Errorf("%s:\n got %q\nwant %q", k, g, w)
		}
	}
}

// TestRebuildEqualsLiveFold: a rebuild from $all, in large batches, gives
// exactly the live subscription's store — every view, index entry, the
// stats and the checkpoint — in a new generation the pointer then names;
// the old layout (a store directly in the directory) is generation 0 and
// keeps its data.
func TestRebuildEqualsLiveFold(t *testing.T) {
	es := startStore(t)
	dir := t.TempDir()
	appendAll(t, es, workload(0, 40))
	appendAll(t, es, []domain.Event{{Type: domain.TwilioEvent, WorkerSid: sid("WK", 1), At: t0}}) // noise the filter leaves out
	appendAll(t, es, workload(40, 60))

	// The old layout: a store directly in dir, fed by the live path.
	store, err := readmodel.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	runUntilCaughtUp(t, store, es)
	store.Close()
	live := dump(t, dir)
	if n, path, err := readmodel.CurrentGeneration(dir); err != nil || n != 0 || path != dir {
		t.Fatalf("old layout: generation %d at %s, %v; want 0 at the directory", n, path, err)
	}

	var calls, lastDone, lastTotal uint64
	res, err := readmodel.Rebuild(context.Background(), readmodel.RebuildConfig{
		Dir: dir, Events: es, ReadBatch: 37, CommitEvery: 50, // small: many reads and commits
		Progress: func(done, total uint64) { calls++; lastDone, lastTotal = done, total },
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Generation != 1 || res.Read != 301 || res.Applied != 300 {
		t.Errorf("result %+v: want generation 1, 301 read, 300 applied", res)
	}
	if calls < 8 || lastDone != 301 || lastTotal != res.Head {
		t.Errorf("progress: %d calls, last %d/%d", calls, lastDone, lastTotal)
	}
	n, path, err := readmodel.CurrentGeneration(dir)
	if err != nil || n != 1 || path != filepath.Join(dir, "gen-1") {
		t.Fatalf("after the rebuild: generation %d at %s, %v", n, path, err)
	}
	sameDump(t, dump(t, path), live)
	// The old generation is still there for whoever holds it.
	sameDump(t, dump(t, dir), live)
	if err := readmodel.RemoveGeneration(dir, 0); err != nil {
		t.Fatal(err)
	}
	if m, _ := filepath.Glob(filepath.Join(dir, "MANIFEST-*")); len(m) != 0 {
		t.Errorf("generation 0 left %v", m)
	}
	sameDump(t, dump(t, path), live)
	// The next rebuild is generation 2.
	res, err = readmodel.Rebuild(context.Background(), readmodel.RebuildConfig{Dir: dir, Events: es})
	if err != nil || res.Generation != 2 {
		t.Fatalf("second rebuild: %+v, %v", res, err)
	}
	sameDump(t, dump(t, readmodel.GenerationPath(dir, 2)), live)
	// One event per read: each read after the first repeats the event
	// folded last, which must not end the rebuild.
	res, err = readmodel.Rebuild(context.Background(), readmodel.RebuildConfig{Dir: dir, Events: es, ReadBatch: 1})
	if err != nil || res.Read != 301 {
		t.Fatalf("rebuild reading one event at a time: %+v, %v", res, err)
	}
	sameDump(t, dump(t, readmodel.GenerationPath(dir, 3)), live)
}

// TestVerify: an unchanged fold reports nothing; a changed one (state
// changes dropped) reports exactly the conversations it changes; the
// temporary generation is never made current and is removed.
func TestVerify(t *testing.T) {
	es := startStore(t)
	dir := t.TempDir()
	appendAll(t, es, workload(0, 30))
	gen, err := readmodel.Rebuild(context.Background(), readmodel.RebuildConfig{Dir: dir, Events: es})
	if err != nil {
		t.Fatal(err)
	}
	liveStore, err := readmodel.Open(gen.Path)
	if err != nil {
		t.Fatal(err)
	}
	defer liveStore.Close()
	live := readmodel.StoreViews{Store: liveStore}
	diffs, _, err := readmodel.Verify(context.Background(), readmodel.VerifyConfig{Rebuild: readmodel.RebuildConfig{Dir: dir, Events: es}, Live: live})
	if err != nil || len(diffs) != 0 {
		t.Fatalf("unchanged fold: %d differences (%+v), %v", len(diffs), diffs, err)
	}
	diffs, _, err = readmodel.Verify(context.Background(), readmodel.VerifyConfig{
		Rebuild: readmodel.RebuildConfig{Dir: dir, Events: es, Drop: func(r eventstore.RecordedEvent) bool { return r.Type == domain.ConversationStateChanged }},
		Live:    live, Rounds: 1, Settle: time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{"stats/": true} // closed conversations are counted in the stats
	for n := 0; n < 30; n += 3 {
		want["conversation/"+sid("CH", n)] = true
	}
	if len(diffs) != len(want) {
		t.Errorf("%d differences, want %d: %+v", len(diffs), len(want), diffs)
	}
	for _, d := range diffs {
		if !want[d.Kind+"/"+d.SID] || d.Live == nil || d.Rebuilt == nil {
			t.Errorf("difference %s %s", d.Kind, d.SID)
		}
	}
	if n, _, _ := readmodel.CurrentGeneration(dir); n != gen.Generation {
		t.Errorf("verify made generation %d current", n)
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if e.Name() != "gen-1" && e.Name() != readmodel.PointerFile {
			t.Errorf("left in the directory: %s", e.Name())
		}
	}
}

// TestLiveSwitchesGeneration: a live projection on an old-layout
// directory keeps serving its views while a rebuild runs and events keep
// coming; when the pointer flips it switches, removes the old generation
// and catches up from the new one's checkpoint; no read ever fails.
func TestLiveSwitchesGeneration(t *testing.T) {
	es := startStore(t)
	dir := t.TempDir()
	appendAll(t, es, workload(0, 30))
	store, err := readmodel.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	runUntilCaughtUp(t, store, es)
	store.Close()

	l, err := readmodel.OpenLive(dir)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- l.Run(ctx, readmodel.RunConfig{Events: es}, 20*time.Millisecond) }()

	// Readers, all along: a conversation of the first batch is always there.
	var reads, fails atomic.Int64
	var firstErr atomic.Value
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				err := l.View(func(s *readmodel.Store) error {
					_, err := s.ConversationJSON(sid("CH", 7))
					if err == nil {
						_, err = s.Stats()
					}
					return err
				})
				reads.Add(1)
				if err != nil {
					fails.Add(1)
					firstErr.CompareAndSwap(nil, err)
				}
			}
		}()
	}
	appendAll(t, es, workload(30, 40))
	res, err := readmodel.Rebuild(ctx, readmodel.RebuildConfig{Dir: dir, Events: es})
	if err != nil {
		t.Fatal(err)
	}
	appendAll(t, es, workload(40, 50)) // after the rebuild's head: caught up after the switch
	deadline := time.Now().Add(20 * time.Second)
	for l.Generation() != res.Generation && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if l.Generation() != res.Generation {
		t.Fatalf("still on generation %d", l.Generation())
	}
	want := foldAll(workload(0, 50))
	for time.Now().Before(deadline) {
		var n int
		_ = l.View(func(s *readmodel.Store) error {
			st, err := s.Stats()
			n = st.Conversations
			return err
		})
		if n == len(want) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	close(stop)
	wg.Wait()
	if fails.Load() > 0 {
		t.Errorf("%d of %d reads failed: %v", fails.Load(), reads.Load(), firstErr.Load())
	}
	_ = l.View(func(s *readmodel.Store) error {
		for c := range want {
			if _, err := s.ConversationJSON(c); err != nil {
				t.Errorf("%s: %v", c, err)
			}
		}
		return nil
	})
	if m, _ := filepath.Glob(filepath.Join(dir, "MANIFEST-*")); len(m) != 0 {
		t.Errorf("the old generation was not removed: %v", m)
	}
	cancel()
	if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	// Reopened, it is the new generation.
	l, err = readmodel.OpenLive(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if l.Generation() != res.Generation {
		t.Errorf("reopened on generation %d", l.Generation())
	}
}
