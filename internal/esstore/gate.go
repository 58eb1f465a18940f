package esstore

import "sync"

// readGate lets Close wait for the reads in progress before closing the
// storage engine (whose iterators must all be closed first), and refuses
// new ones after. Unlike an RWMutex it never blocks on entry, so a read
// started from inside another read's callback (the server reads stream
// metadata while reading $all) cannot deadlock against a pending Close.
type readGate struct {
	mu     sync.Mutex
	n      int
	closed bool
	idle   *sync.Cond
}

func (g *readGate) enter() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return false
	}
	g.n++
	return true
}

func (g *readGate) exit() {
	g.mu.Lock()
	g.n--
	if g.n == 0 && g.idle != nil {
		g.idle.Broadcast()
	}
	g.mu.Unlock()
}

// close refuses new reads and waits for the current ones to end.
func (g *readGate) close() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.closed = true
	if g.idle == nil {
		g.idle = sync.NewCond(&g.mu)
	}
	for g.n > 0 {
		g.idle.Wait()
	}
}
