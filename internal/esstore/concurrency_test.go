package esstore

import (
	"context"
	"errors"
	"sort"
	"sync"
	"testing"
)

// 64 goroutines race to append to one stream, each expecting the revision
// it last saw: exactly one append wins each revision, and positions follow
// revisions.
func TestConcurrentExpectedRevision(t *testing.T) {
	s := openAt(t, t.TempDir(), Options{}) // with fsync: real group commits
	const goroutines, revisions = 64, 300
	ctx := context.Background()

	type win struct{ rev, pos, id uint64 }
	var (
		mu       sync.Mutex
		wins     []win
		conflict int
	)
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			exp := NoStream()
			for attempt := uint64(0); ; attempt++ {
				n := uint64(g)<<32 | attempt
				res, err := s.Append(ctx, "race", exp, evs(n))
				var wev *WrongExpectedVersionError
				switch {
				case err == nil:
					if res.Idempotent {
						t.Errorf("fresh id reported idempotent: %+v", res)
						return
					}
					mu.Lock()
					wins = append(wins, win{res.Revision, res.Position, n})
					mu.Unlock()
					exp = Revision(res.Revision)
				case errors.As(err, &wev):
					mu.Lock()
					conflict++
					mu.Unlock()
					if !wev.Current.Exists {
						t.Errorf("conflict on a stream with no event: %v", err)
						return
					}
					exp = Revision(wev.Current.Revision)
				default:
					t.Error(err)
					return
				}
				if exp.Kind == ExpectRevision && exp.Revision >= revisions-1 {
					return
				}
			}
		}()
	}
	wg.Wait()

	if len(wins) != revisions {
		t.Fatalf("%d appends won, want %d", len(wins), revisions)
	}
	sort.Slice(wins, func(i, j int) bool { return wins[i].rev < wins[j].rev })
	for i, w := range wins {
		if w.rev != uint64(i) {
			t.Fatalf("revision %d won %s", i, map[bool]string{true: "twice", false: "never"}[w.rev < uint64(i)])
		}
		if i > 0 && w.pos <= wins[i-1].pos {
			t.Fatalf("revision %d at position %d, revision %d at %d", i, w.pos, i-1, wins[i-1].pos)
		}
	}
	events := readStream(t, s, "race", 0, true)
	for i, e := range events {
		if e.Revision != wins[i].rev || e.Position != wins[i].pos || idNums(events[i : i+1])[0] != wins[i].id {
			t.Fatalf("stored %d/%d, the winner was %+v", e.Revision, e.Position, wins[i])
		}
	}
	t.Logf("%d revisions, %d conflicts", revisions, conflict)
}

// Appends from many goroutines to many streams get unique positions that
// match $all.
func TestConcurrentPositionsUnique(t *testing.T) {
	s := newTestStore(t)
	const goroutines, each = 64, 50
	ctx := context.Background()
	var mu sync.Mutex
	seen := map[uint64]uint64{} // position -> id
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range uint64(each) {
				n := uint64(g)<<32 | i
				res, err := s.Append(ctx, streamName(uint64(g)), Any(), evs(n))
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				if _, dup := seen[res.Position]; dup {
					t.Errorf("position %d given twice", res.Position)
				}
				seen[res.Position] = n
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	all := readAll(t, s, 0, true)
	if len(all) != goroutines*each {
		t.Fatalf("$all has %d events", len(all))
	}
	for i, e := range all {
		if e.Position != uint64(i+1) || seen[e.Position] != idNums(all[i : i+1])[0] {
			t.Fatalf("$all event %d: position %d, id %d, acknowledged id %d", i, e.Position, idNums(all[i : i+1])[0], seen[e.Position])
		}
	}
}
