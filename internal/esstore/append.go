package esstore

import (
	"context"
	"fmt"
)

// Append implements Store.
func (s *diskStore) Append(ctx context.Context, stream string, exp Expected, events []EventData) (AppendResult, error) {
	if err := validate(stream, exp); err != nil {
		return AppendResult{}, err
	}
	r := newAppendRequest(stream, exp, events, false)
	if size := r.size(); size > maxAppendBytes {
		return AppendResult{}, fmt.Errorf("esstore: append to %q: %d bytes, more than %d: %w", stream, size, maxAppendBytes, ErrInvalid)
	}
	if err := s.submit(ctx, r); err != nil {
		return AppendResult{}, fmt.Errorf("esstore: append to %q: %w", stream, err)
	}
	return r.res, r.err
}

// Tombstone implements Store.
func (s *diskStore) Tombstone(ctx context.Context, stream string, exp Expected) (uint64, error) {
	if err := validate(stream, exp); err != nil {
		return 0, err
	}
	r := newAppendRequest(stream, exp, nil, true)
	if err := s.submit(ctx, r); err != nil {
		return 0, fmt.Errorf("esstore: tombstone %q: %w", stream, err)
	}
	return r.res.Position, r.err
}

// maxAppendBytes bounds one append. The server enforces KurrentDB's much
// smaller limit; this one keeps a single request from exceeding what the
// engine accepts in a batch, which would fail the whole commit group.
const maxAppendBytes = 256 << 20

func validate(stream string, exp Expected) error {
	if stream == "" {
		return fmt.Errorf("esstore: empty stream name: %w", ErrInvalid)
	}
	if exp.Kind > ExpectRevision {
		return fmt.Errorf("esstore: stream %q: expected kind %d: %w", stream, exp.Kind, ErrInvalid)
	}
	return nil
}

// submit queues r and waits for the writer's answer. The caller's context
// can withdraw r while it waits in the queue; once the writer has taken it
// the commit is under way and its outcome is awaited, so that the caller's
// event buffers are never read after Append returns.
func (s *diskStore) submit(ctx context.Context, r *appendRequest) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := s.enqueue(ctx, r); err != nil {
		return err
	}
	select {
	case <-r.done:
		return nil
	case <-ctx.Done():
		if r.withdraw() {
			return ctx.Err()
		}
		<-r.done
		return nil
	}
}

func (s *diskStore) enqueue(ctx context.Context, r *appendRequest) error {
	s.qmu.RLock()
	defer s.qmu.RUnlock()
	if s.qclosed {
		return ErrClosed
	}
	select {
	case s.queue <- r:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-s.closing:
		return ErrClosed
	}
}
