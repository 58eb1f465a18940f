package esstore

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"sync"
	"time"
)

var (
	_ Store = (*diskStore)(nil)
	_ Store = (*nullStore)(nil)
)

// nullStore stores nothing. It measures the ceiling that the client and
// gRPC impose: appends are acknowledged at once, without checks, and $all
// reads return synthetic events shaped like the last one appended.
type nullStore struct {
	mu     sync.Mutex
	revs   map[string]uint64 // next revision of each stream
	pos    uint64
	last   RecordedEvent // template for synthetic events
	closed bool
	head   headPublisher
}

// nullStreamLimit bounds the revision counters: past it they restart, which
// a benchmark does not notice and which keeps memory flat.
const nullStreamLimit = 1 << 20

// NewNull returns a store that keeps nothing (see nullStore).
func NewNull() Store {
	s := &nullStore{
		revs: make(map[string]uint64),
		last: RecordedEvent{
			Stream:      "null",
			Type:        "NullEvent",
			ContentType: contentTypeJSON,
			Metadata:    []byte{},
			Data:        append(append([]byte(`{"padding":"`), bytes.Repeat([]byte{'x'}, 300-14)...), `"}`...),
		},
	}
	s.head.init(0)
	return s
}

func (s *nullStore) Append(ctx context.Context, stream string, exp Expected, events []EventData) (AppendResult, error) {
	if err := ctx.Err(); err != nil {
		return AppendResult{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return AppendResult{}, fmt.Errorf("esstore: append to %q: %w", stream, ErrClosed)
	}
	next, ok := s.revs[stream]
	if len(events) == 0 {
		if !ok {
			return AppendResult{}, nil
		}
		return AppendResult{Revision: next - 1}, nil
	}
	if !ok && len(s.revs) >= nullStreamLimit {
		clear(s.revs)
	}
	next += uint64(len(events))
	s.revs[stream] = next
	s.pos += uint64(len(events))
	e := &events[len(events)-1]
	// Copies: the caller may reuse its buffers once Append returns.
	s.last = RecordedEvent{
		Stream:      stream,
		Type:        e.Type,
		ContentType: e.ContentType,
		Metadata:    bytes.Clone(e.Metadata),
		Data:        bytes.Clone(e.Data),
	}
	s.head.publish(s.pos)
	return AppendResult{Revision: next - 1, Position: s.pos}, nil
}

func (s *nullStore) Tombstone(ctx context.Context, stream string, _ Expected) (uint64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return 0, fmt.Errorf("esstore: tombstone %q: %w", stream, ErrClosed)
	}
	s.pos++
	s.head.publish(s.pos)
	return s.pos, nil
}

func (s *nullStore) State(ctx context.Context, stream string) (StreamState, error) {
	if err := ctx.Err(); err != nil {
		return StreamState{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return StreamState{}, fmt.Errorf("esstore: state of %q: %w", stream, ErrClosed)
	}
	next, ok := s.revs[stream]
	if !ok {
		return StreamState{}, nil
	}
	return StreamState{Exists: true, Revision: next - 1}, nil
}

// ReadStream reads nothing: no event is kept.
func (s *nullStore) ReadStream(ctx context.Context, _ string, _ uint64, _ bool, _ func(RecordedEvent) bool) error {
	return ctx.Err()
}

// ReadAllBorrowed implements Store: the null store's events are its own.
func (s *nullStore) ReadAllBorrowed(ctx context.Context, from uint64, forward bool, fn func(RecordedEvent) bool) error {
	return s.ReadAll(ctx, from, forward, fn)
}

// ReadAll returns a synthetic event for each position from..head. The
// events share the template's Data and Metadata: callers must not modify
// them (the real store gives each event its own).
func (s *nullStore) ReadAll(ctx context.Context, from uint64, forward bool, fn func(RecordedEvent) bool) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	tmpl, head, closed := s.last, s.pos, s.closed
	s.mu.Unlock()
	if closed {
		return fmt.Errorf("esstore: read $all: %w", ErrClosed)
	}
	tmpl.Created = time.Now().UTC()
	lo, hi := max(from, 1), head
	if !forward {
		lo, hi = 1, min(from, head)
	}
	for n := uint64(0); lo <= hi && n <= hi-lo; n++ {
		pos := lo + n
		if !forward {
			pos = hi - n
		}
		if n%checkEvery == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		e := tmpl
		e.Position = pos
		e.Revision = pos - 1
		binary.BigEndian.PutUint64(e.ID[8:], pos)
		if !fn(e) {
			return nil
		}
	}
	return nil
}

func (s *nullStore) Head() (uint64, <-chan struct{}) { return s.head.get() }

func (s *nullStore) Close() error {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	s.head.close()
	return nil
}
