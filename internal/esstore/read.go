package esstore

import (
	"context"
	"errors"
	"fmt"

	"github.com/cockroachdb/pebble/v2"
)

// checkEvery is how many events a read delivers between checks of its
// context and of Close.
const checkEvery = 64

// State implements Store.
func (s *diskStore) State(ctx context.Context, stream string) (StreamState, error) {
	if err := s.beginRead(ctx, stream); err != nil {
		return StreamState{}, err
	}
	defer s.reads.exit()
	rec, err := s.committedRecord(stream)
	return rec.state(), err
}

// ReadStream implements Store. It reads the stream as of its committed
// record: revisions being committed are not visible yet. A tombstoned
// stream still reads its events (the tombstone is not one of them); the
// caller decides what a tombstone means for the read, through State.
func (s *diskStore) ReadStream(ctx context.Context, stream string, from uint64, forward bool, fn func(RecordedEvent) bool) error {
	if err := s.beginRead(ctx, stream); err != nil {
		return err
	}
	defer s.reads.exit()
	rec, err := s.committedRecord(stream)
	if err != nil || !rec.exists {
		return err
	}
	if !forward && from > rec.lastRev {
		from = rec.lastRev
	}
	if forward && from > rec.lastRev {
		return nil
	}
	// The revision index bounds the read to committed revisions; each
	// entry points into the log, where the append's events are.
	revs, err := s.db.NewIter(&pebble.IterOptions{
		LowerBound: revKey(nil, rec.sid, 0),
		UpperBound: revKey(nil, rec.sid, rec.lastRev+1), // lastRev < MaxInt64: no wrap
	})
	if err != nil {
		return fmt.Errorf("esstore: read %q: %w", stream, err)
	}
	logs, err := s.db.NewIter(&pebble.IterOptions{LowerBound: []byte{prefixLog}, UpperBound: []byte{prefixLog + 1}})
	if err != nil {
		_ = revs.Close()
		return fmt.Errorf("esstore: read %q: %w", stream, err)
	}
	err = s.readStream(ctx, stream, rec.sid, rec.lastRev, revs, logs, from, forward, fn)
	err = errors.Join(err, revs.Close(), logs.Close())
	if err != nil {
		return fmt.Errorf("esstore: read %q: %w", stream, err)
	}
	return nil
}

// readStream walks the stream's revision keys, one per append, from the
// one that holds from, and reads each append's log record: the events of
// the record in the range asked for are delivered, up to lastRev.
func (s *diskStore) readStream(ctx context.Context, stream string, sid uint64, lastRev uint64, revs, logs *pebble.Iterator, from uint64, forward bool, fn func(RecordedEvent) bool) error {
	var dec eventDecoder
	// The append that holds from has the greatest first revision ≤ from.
	ok := revs.SeekLT(revKey(nil, sid, from+1)) // from ≤ lastRev < MaxInt64
	if !ok && forward && revs.Error() == nil {
		ok = revs.First()
	}
	var key []byte
	n := 0
	for ok {
		firstRev, validKey := revisionOfRevKey(revs.Key())
		pos, count, valid := decodeRevValue(revs.Value())
		if !valid || !validKey {
			return fmt.Errorf("%w: revision index entry %x", errCorrupt, revs.Key())
		}
		key = logKey(key[:0], pos)
		if !logs.SeekGE(key) || string(logs.Key()) != string(key) {
			if err := logs.Error(); err != nil {
				return err
			}
			return fmt.Errorf("%w: revision %d of %q points at missing position %d", errCorrupt, firstRev, stream, pos)
		}
		if err := parseLogRecord(&dec, logs); err != nil {
			return err
		}
		h := &dec.rec.hdr
		if h.firstRev != firstRev || h.count != count || string(h.stream) != stream {
			return fmt.Errorf("%w: revision %d of %q points at position %d, another append", errCorrupt, firstRev, stream, pos)
		}
		// Revisions of the record to deliver: lo..hi, inclusive.
		lo, hi := firstRev, firstRev+count-1
		if forward {
			lo = max(lo, from)
		} else {
			hi = min(hi, from)
		}
		hi = min(hi, lastRev)
		for k := uint64(0); lo <= hi && k <= hi-lo; k++ {
			rev := lo + k
			if !forward {
				rev = hi - k
			}
			if n%checkEvery == 0 {
				if err := s.interrupted(ctx); err != nil {
					return err
				}
			}
			n++
			if !fn(dec.event(int(rev - firstRev))) {
				return nil
			}
		}
		if forward {
			ok = revs.Next()
		} else {
			ok = revs.Prev()
		}
	}
	return revs.Error()
}

// parseLogRecord decodes the log record at it into dec.rec.
func parseLogRecord(dec *eventDecoder, it *pebble.Iterator) error {
	first, valid := positionOfLogKey(it.Key())
	if !valid || first == 0 {
		return fmt.Errorf("%w: log key %x", errCorrupt, it.Key())
	}
	v, err := it.ValueAndErr()
	if err != nil {
		return err
	}
	return dec.parse(first, v)
}

// ReadAll implements Store. It reads up to the head as it is when the read
// starts: what is committed later is for the next read.
func (s *diskStore) ReadAll(ctx context.Context, from uint64, forward bool, fn func(RecordedEvent) bool) error {
	return s.readAllFrom(ctx, from, forward, false, fn)
}

// ReadAllBorrowed implements Store.
func (s *diskStore) ReadAllBorrowed(ctx context.Context, from uint64, forward bool, fn func(RecordedEvent) bool) error {
	return s.readAllFrom(ctx, from, forward, true, fn)
}

func (s *diskStore) readAllFrom(ctx context.Context, from uint64, forward, borrow bool, fn func(RecordedEvent) bool) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if !s.reads.enter() {
		return fmt.Errorf("esstore: read $all: %w", ErrClosed)
	}
	defer s.reads.exit()
	head := s.head.position()
	lo, hi := max(from, 1), head // inclusive range of positions to read
	if !forward {
		lo, hi = 1, min(from, head)
	}
	if lo > hi {
		return nil
	}
	// A record holds the events of one append from the position of its
	// key: the read starts at the record that holds lo (or hi).
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: []byte{prefixLog}, UpperBound: logKey(nil, hi+1)}) // hi ≤ head < MaxUint64
	if err != nil {
		return fmt.Errorf("esstore: read $all: %w", err)
	}
	err = errors.Join(s.readAll(ctx, it, lo, hi, forward, borrow, fn), it.Close())
	if err != nil {
		return fmt.Errorf("esstore: read $all: %w", err)
	}
	return nil
}

// readAll calls fn for the events at positions lo..hi (inclusive). The
// record's value stays valid until the iterator moves, after fn returns:
// a borrowed event's payloads point into it.
func (s *diskStore) readAll(ctx context.Context, it *pebble.Iterator, lo, hi uint64, forward, borrow bool, fn func(RecordedEvent) bool) error {
	var dec eventDecoder
	var ok bool
	if forward {
		if ok = it.SeekLT(logKey(nil, lo+1)); !ok && it.Error() == nil { // lo ≤ hi < MaxUint64
			ok = it.First()
		}
	} else {
		ok = it.Last()
	}
	n := 0
	for ok {
		if err := parseLogRecord(&dec, it); err != nil {
			return err
		}
		rec := &dec.rec
		first := rec.first
		// emit hands event i to fn; done says the read is over.
		emit := func(i int) (done bool, err error) {
			if n%checkEvery == 0 {
				if err := s.interrupted(ctx); err != nil {
					return true, err
				}
			}
			n++
			if borrow {
				return !fn(dec.borrowed(i)), nil
			}
			return !fn(dec.event(i)), nil
		}
		if forward {
			for i := range rec.events {
				if pos := first + uint64(i); pos < lo {
					continue
				} else if pos > hi {
					return nil
				}
				if done, err := emit(i); done {
					return err
				}
			}
			ok = it.Next()
		} else {
			for i := len(rec.events) - 1; i >= 0; i-- {
				if pos := first + uint64(i); pos > hi {
					continue
				} else if pos < lo {
					return nil
				}
				if done, err := emit(i); done {
					return err
				}
			}
			if first <= lo {
				return nil
			}
			ok = it.Prev()
		}
	}
	return it.Error()
}

func (s *diskStore) beginRead(ctx context.Context, stream string) error {
	if stream == "" {
		return fmt.Errorf("esstore: empty stream name: %w", ErrInvalid)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if !s.reads.enter() {
		return fmt.Errorf("esstore: read %q: %w", stream, ErrClosed)
	}
	return nil
}

// interrupted stops a long read when its caller goes away or the store
// closes (Close waits for reads).
func (s *diskStore) interrupted(ctx context.Context) error {
	select {
	case <-s.closing:
		return ErrClosed
	default:
		return ctx.Err()
	}
}

// committedRecord is the stream's record as of the last commit.
func (s *diskStore) committedRecord(name string) (streamRecord, error) {
	return s.inflight.lookup(name, func() (streamRecord, error) {
		return readStreamRecord(s.db, streamKey(nil, name), name)
	})
}

func readStreamRecord(db *pebble.DB, key []byte, name string) (streamRecord, error) {
	v, closer, err := db.Get(key)
	if errors.Is(err, pebble.ErrNotFound) {
		return streamRecord{}, nil
	}
	if err != nil {
		return streamRecord{}, fmt.Errorf("esstore: read stream %q: %w", name, err)
	}
	defer closer.Close()
	rec, err := decodeStreamRecord(v)
	if err != nil {
		return streamRecord{}, fmt.Errorf("stream %q: %w", name, err)
	}
	return rec, nil
}
