package engine

import (
	"slices"
	"sync"
)

// tracker computes the checkpoint: the $all position up to which every
// trigger has been answered. Triggers are handled concurrently and finish
// in any order, so the checkpoint stops below the oldest one still open;
// a restart then sees every unanswered trigger again (and finds the
// answered ones' reaction streams finished).
type tracker struct {
	mu      sync.Mutex
	open    []uint64 // positions of triggers in flight, ascending (they arrive in order)
	seen    uint64   // highest position delivered or checkpointed by the server
	changed bool
}

// add registers a trigger at pos (positions arrive ascending).
func (t *tracker) add(pos uint64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.open = append(t.open, pos)
	t.seenLocked(pos)
}

// done marks the trigger at pos answered.
func (t *tracker) done(pos uint64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if i, ok := slices.BinarySearch(t.open, pos); ok {
		t.open = slices.Delete(t.open, i, i+1)
		t.changed = true
	}
}

// saw records a position the subscription passed (an event that is no
// trigger, or a server checkpoint).
func (t *tracker) saw(pos uint64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.seenLocked(pos)
}

func (t *tracker) seenLocked(pos uint64) {
	if pos > t.seen {
		t.seen = pos
		t.changed = true
	}
}

// safe returns the checkpoint and whether it moved since the last call.
func (t *tracker) safe() (uint64, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	ch := t.changed
	t.changed = false
	if len(t.open) > 0 {
		return t.open[0] - 1, ch
	}
	return t.seen, ch
}
