package esstore

import (
	"context"
	"sync"
	"testing"
	"time"
)

func closedWithin(ch <-chan struct{}, d time.Duration) bool {
	select {
	case <-ch:
		return true
	case <-time.After(d):
		return false
	}
}

func TestHeadNotifies(t *testing.T) {
	s := newTestStore(t)
	pos, next := s.Head()
	if pos != 0 {
		t.Fatalf("head of an empty store %d", pos)
	}
	if closedWithin(next, 10*time.Millisecond) {
		t.Fatal("head channel closed without a commit")
	}
	res := mustAppend(t, s, "h", Any(), evs(1, 2))
	if !closedWithin(next, time.Second) {
		t.Fatal("head channel not closed by the commit")
	}
	pos2, next2 := s.Head()
	if pos2 != res.Position || pos2 != 2 {
		t.Fatalf("head %d after append at %d", pos2, res.Position)
	}
	if closedWithin(next2, 10*time.Millisecond) {
		t.Fatal("the new head channel is already closed")
	}
	// Appends that write nothing do not move the head.
	mustAppend(t, s, "h", Any(), evs(1, 2))
	mustAppend(t, s, "h", Any(), nil)
	if _, err := s.Append(context.Background(), "h", NoStream(), evs(3)); errKind(err) != "wev" {
		t.Fatal(err)
	}
	if pos3, next3 := s.Head(); pos3 != 2 || next3 != next2 {
		t.Fatalf("head moved to %d without a write", pos3)
	}
}

// A follower that reads $all up to the head, then waits for the next
// commit, sees every position exactly once and in order while 8 writers
// append: appends become visible in position order, never out of it.
func TestHeadFollowerSeesEveryPosition(t *testing.T) {
	s := newTestStore(t)
	const writers, perWriter = 8, 200
	total := uint64(writers * perWriter * 2) // two events per append
	ctx := context.Background()

	var wg sync.WaitGroup
	for g := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range uint64(perWriter) {
				n := uint64(g)<<32 | i<<1
				res, err := s.Append(ctx, "w", Any(), evs(n, n+1))
				if err != nil {
					t.Error(err)
					return
				}
				// Acknowledged means readable.
				if h, _ := s.Head(); h < res.Position {
					t.Errorf("head %d behind acknowledged position %d", h, res.Position)
				}
			}
		}()
	}

	var last uint64
	deadline := time.After(30 * time.Second)
	for last < total {
		head, next := s.Head()
		err := s.ReadAll(ctx, last+1, true, func(e RecordedEvent) bool {
			if e.Position != last+1 {
				t.Fatalf("follower got position %d after %d", e.Position, last)
			}
			last = e.Position
			return true
		})
		if err != nil {
			t.Fatal(err)
		}
		if last < head {
			t.Fatalf("read up to %d, head was %d", last, head)
		}
		if last == head && last < total {
			select {
			case <-next:
			case <-deadline:
				t.Fatalf("stuck at %d of %d", last, total)
			}
		}
	}
	wg.Wait()
	if h, _ := s.Head(); h != total {
		t.Fatalf("head %d, want %d", h, total)
	}
}
