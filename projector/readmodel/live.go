package readmodel

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
)

// Live is a read-model directory's current generation, as the projector
// serves and feeds it: View reads whichever generation is current, Run
// keeps it up to date and switches to a new generation when a replay
// flips the pointer.
type Live struct {
	dir string
	cur atomic.Pointer[generation]
}

type generation struct {
	n     int
	store *Store
	// mu is held shared by readers and exclusively to close: a reader
	// never meets a closed store.
	mu     sync.RWMutex
	closed bool
}

// OpenLive opens dir's current generation (generation 0, the directory
// itself, when it has no pointer: the old layout keeps working).
func OpenLive(dir string) (*Live, error) {
	n, path, err := CurrentGeneration(dir)
	if err != nil {
		return nil, err
	}
	s, err := Open(path)
	if err != nil {
		return nil, err
	}
	l := &Live{dir: dir}
	l.cur.Store(&generation{n: n, store: s})
	return l, nil
}

// Generation is the number of the generation served now.
func (l *Live) Generation() int { return l.cur.Load().n }

// View calls fn with the current generation's store, which stays open
// until fn returns.
func (l *Live) View(fn func(*Store) error) error {
	for {
		g := l.cur.Load()
		g.mu.RLock()
		if g.closed { // swapped out just now: the next one is current
			g.mu.RUnlock()
			continue
		}
		err := fn(g.store)
		g.mu.RUnlock()
		return err
	}
}

// Close closes the current generation (after Run has returned).
func (l *Live) Close() error {
	g := l.cur.Load()
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return nil
	}
	g.closed = true
	return g.store.Close()
}

// DefaultPollInterval is how often Run reads the generation pointer.
const DefaultPollInterval = time.Second

// Run runs the projection (Run) on the current generation until ctx ends.
// Every poll it reads the pointer; when it names another generation, the
// subscription stops (committing what it applied), the new generation
// opens and becomes the one View serves — one atomic switch: readers see
// the old views until then, the new ones after — the old one is closed
// and removed, and the subscription resumes from the new generation's
// checkpoint (behind the head if events came during the replay: it
// catches up). cfg.Store is ignored.
func (l *Live) Run(ctx context.Context, cfg RunConfig, poll time.Duration) error {
	if poll <= 0 {
		poll = DefaultPollInterval
	}
	log := zap.NewNop()
	if cfg.Logger != nil {
		log = cfg.Logger.Named("readmodel")
	}
	for {
		g := l.cur.Load()
		cfg.Store = g.store
		runCtx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- Run(runCtx, cfg) }()
		next, err := l.watch(ctx, done, poll, g.n, log)
		cancel()
		if next < 0 {
			return err
		}
		// The pointer moved: stop feeding the old generation.
		if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
			return err
		}
		if err := l.swap(next, log); err != nil {
			return err
		}
		if ctx.Err() != nil {
			return nil
		}
	}
}

// watch waits for the pointer to name a generation other than cur (its
// number) or for the run to end (-1 and its error).
func (l *Live) watch(ctx context.Context, done <-chan error, poll time.Duration, cur int, log *zap.Logger) (int, error) {
	t := time.NewTicker(poll)
	defer t.Stop()
	for {
		select {
		case err := <-done:
			if errors.Is(err, context.Canceled) && ctx.Err() != nil {
				err = nil
			}
			return -1, err
		case <-t.C:
			n, _, err := CurrentGeneration(l.dir)
			if err != nil {
				log.Warn("reading the generation pointer", zap.Error(err))
				continue
			}
			if n != cur {
				return n, nil
			}
		}
	}
}

func (l *Live) swap(next int, log *zap.Logger) error {
	s, err := Open(GenerationPath(l.dir, next))
	if err != nil {
		return fmt.Errorf("read model: switch to generation %d: %w", next, err)
	}
	old := l.cur.Swap(&generation{n: next, store: s})
	old.mu.Lock()
	old.closed = true
	cerr := old.store.Close()
	old.mu.Unlock()
	if cerr != nil {
		log.Warn("closing the old generation", zap.Int("generation", old.n), zap.Error(cerr))
	}
	if err := RemoveGeneration(l.dir, old.n); err != nil {
		log.Warn("removing the old generation", zap.Int("generation", old.n), zap.Error(err))
	}
	pos, _, _ := s.Checkpoint()
	log.Info("switched to a new read-model generation", zap.Int("generation", next), zap.Int("old", old.n), zap.Uint64("checkpoint", pos))
	return nil
}
