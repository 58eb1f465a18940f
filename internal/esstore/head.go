package esstore

import (
	"sync"
	"sync/atomic"
)

// headState is one published head: the last committed position and the
// channel that is closed when a later head replaces it.
type headState struct {
	pos  uint64
	next chan struct{}
}

// headPublisher hands out the head without locks on the read side. A
// subscriber takes (pos, next), reads up to pos, then waits on next; since
// next is closed only after the following head is stored, no commit can be
// missed between the read and the wait.
type headPublisher struct {
	mu     sync.Mutex // orders publishers (the null store has many)
	cur    atomic.Pointer[headState]
	closed bool
}

func (h *headPublisher) init(pos uint64) {
	h.cur.Store(&headState{pos: pos, next: make(chan struct{})})
}

func (h *headPublisher) get() (uint64, <-chan struct{}) {
	s := h.cur.Load()
	return s.pos, s.next
}

func (h *headPublisher) position() uint64 { return h.cur.Load().pos }

// publish stores pos as the head, if it is ahead, and wakes the waiters.
func (h *headPublisher) publish(pos uint64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	old := h.cur.Load()
	if h.closed || pos <= old.pos {
		return
	}
	h.cur.Store(&headState{pos: pos, next: make(chan struct{})})
	close(old.next)
}

// close wakes every waiter for good: after it, Head returns an already
// closed channel, so a subscriber loop wakes, reads, and meets ErrClosed
// instead of sleeping forever.
func (h *headPublisher) close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return
	}
	h.closed = true
	old := h.cur.Load()
	done := make(chan struct{})
	close(done)
	h.cur.Store(&headState{pos: old.pos, next: done})
	close(old.next)
}
