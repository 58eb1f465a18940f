package readmodel

import (
	"context"
	"sync"
)

// Feed fans committed changes out to live listeners (the API's Server-Sent
// Events). A listener that falls behind loses changes rather than slowing
// the projection: it can always re-read the views.
type Feed struct {
	mu   sync.Mutex
	subs map[chan Change]struct{}
}

// NewFeed returns an empty feed.
func NewFeed() *Feed { return &Feed{subs: map[chan Change]struct{}{}} }

// Subscribe returns a channel of changes, closed when ctx ends.
func (f *Feed) Subscribe(ctx context.Context) <-chan Change {
	ch := make(chan Change, 256)
	f.mu.Lock()
	f.subs[ch] = struct{}{}
	f.mu.Unlock()
	go func() {
		<-ctx.Done()
		f.mu.Lock()
		delete(f.subs, ch)
		close(ch)
		f.mu.Unlock()
	}()
	return ch
}

func (f *Feed) publish(changes []Change) {
	if len(changes) == 0 {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for ch := range f.subs {
		for _, c := range changes {
			select {
			case ch <- c:
			default:
			}
		}
	}
}
