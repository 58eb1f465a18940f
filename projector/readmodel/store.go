// Package readmodel keeps the projector's views on disk (Pebble): the
// conversation and task views, the indexes the query API filters by, the
// running stats and the $all checkpoint, all written in one batch, so a
// restart resumes exactly where the views are and nothing is applied
// twice. Memory stays bounded however many conversations there are: views
// live on disk, with a bounded cache in front.
package readmodel

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"github.com/flexstream/flexstream/projector/fold"
)

// Key layout.
var (
	prefixConversation = []byte("c/")
	prefixTask         = []byte("t/")
	prefixState        = []byte("i/s/") // + state + "/" + sid
	prefixFlag         = []byte("i/f/") // + flag + "/" + sid
	prefixOrphan       = []byte("i/o/") // + sid → last activity, Unix ns
	keyCheckpoint      = []byte("m/checkpoint")
	keyStats           = []byte("m/stats")
)

// ErrNotFound: no such view.
var ErrNotFound = errors.New("not found")

// Store is the views' database.
type Store struct {
	db *pebble.DB
	// bulk: opened for a rebuild, without a write-ahead log (sync flushes).
	bulk bool
}

// Open opens (or creates) the store in dir.
func Open(dir string) (*Store, error) { return open(dir, false) }

// openBulk opens a fresh generation for a rebuild as a bulk load: no
// write-ahead log (a rebuild that fails is removed and starts over, so
// the log would only be written and thrown away), and larger memtables,
// so that fewer flushes and compactions happen while it folds and more of
// the views it reads back are still in memory. Measured on the replay
// bench (1,000,000 events): see the README.
func openBulk(dir string) (*Store, error) { return open(dir, true) }

func open(dir string, bulk bool) (*Store, error) {
	// Pebble charges its memtables to the block cache: a cache no larger
	// than two memtables holds no blocks, and every view read goes to the
	// files (measured in a replay: 13 % of the CPU in block reads).
	memTable := uint64(16 << 20)
	if bulk {
		memTable = 64 << 20
	}
	cache := pebble.NewCache(32<<20 + 2*int64(memTable))
	defer cache.Unref() // the DB holds its own reference
	db, err := pebble.Open(dir, &pebble.Options{
		Cache:        cache,
		MemTableSize: memTable,
		DisableWAL:   bulk,
		Logger:       quietLogger{},
	})
	if err != nil {
		return nil, fmt.Errorf("read model: open %s: %w", dir, err)
	}
	return &Store{db: db, bulk: bulk}, nil
}

// Close closes the store.
func (s *Store) Close() error { return s.db.Close() }

// Checkpoint is the $all position of the last event applied, and whether
// there is one.
func (s *Store) Checkpoint() (uint64, bool, error) {
	v, closer, err := s.db.Get(keyCheckpoint)
	if errors.Is(err, pebble.ErrNotFound) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("read model: checkpoint: %w", err)
	}
	defer closer.Close()
	if len(v) != 8 {
		return 0, false, fmt.Errorf("read model: checkpoint of %d bytes", len(v))
	}
	return binary.BigEndian.Uint64(v), true, nil
}

func (s *Store) getJSON(key []byte, into any) error {
	v, closer, err := s.db.Get(key)
	if errors.Is(err, pebble.ErrNotFound) {
		return ErrNotFound
	}
	if err != nil {
		return fmt.Errorf("read model: get %s: %w", key, err)
	}
	defer closer.Close()
	if err := json.Unmarshal(v, into); err != nil {
		return fmt.Errorf("read model: decode %s: %w", key, err)
	}
	return nil
}

func (s *Store) getRaw(key []byte) (json.RawMessage, error) {
	v, closer, err := s.db.Get(key)
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("read model: get %s: %w", key, err)
	}
	defer closer.Close()
	return append(json.RawMessage(nil), v...), nil
}

// Conversation returns a conversation's view.
func (s *Store) Conversation(sid string) (*fold.ConversationView, error) {
	var v fold.ConversationView
	if err := s.getJSON(key(prefixConversation, sid), &v); err != nil {
		return nil, err
	}
	return &v, nil
}

// ConversationJSON returns a conversation's view as stored.
func (s *Store) ConversationJSON(sid string) (json.RawMessage, error) {
	return s.getRaw(key(prefixConversation, sid))
}

// Task returns a task's view.
func (s *Store) Task(sid string) (*fold.TaskView, error) {
	var v fold.TaskView
	if err := s.getJSON(key(prefixTask, sid), &v); err != nil {
		return nil, err
	}
	return &v, nil
}

// TaskJSON returns a task's view as stored.
func (s *Store) TaskJSON(sid string) (json.RawMessage, error) {
	return s.getRaw(key(prefixTask, sid))
}

// Stats returns the running stats.
func (s *Store) Stats() (fold.Stats, error) {
	var st fold.Stats
	if err := s.getJSON(keyStats, &st); err != nil && !errors.Is(err, ErrNotFound) {
		return st, err
	}
	return st, nil
}

// Page lists conversation SIDs from an index, after cursor (exclusive),
// calling fn with each until it returns false.
func (s *Store) scan(prefix []byte, after string, fn func(sid string, value []byte) (bool, error)) error {
	lower := append(append([]byte(nil), prefix...), after...)
	if after != "" {
		lower = append(lower, 0) // strictly after
	}
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: prefixEnd(prefix)})
	if err != nil {
		return fmt.Errorf("read model: scan: %w", err)
	}
	defer it.Close()
	for ok := it.First(); ok; ok = it.Next() {
		sid := string(it.Key()[len(prefix):])
		more, err := fn(sid, it.Value())
		if err != nil || !more {
			return err
		}
	}
	return it.Error()
}

// OrphansNow counts conversations orphaned at now with this grace.
func (s *Store) OrphansNow(now time.Time, grace time.Duration) (int, error) {
	n := 0
	cutoff := now.Add(-grace).UnixNano()
	err := s.scan(prefixOrphan, "", func(_ string, v []byte) (bool, error) {
		if len(v) == 8 && int64(binary.BigEndian.Uint64(v)) < cutoff {
			n++
		}
		return true, nil
	})
	return n, err
}

func key(prefix []byte, parts ...string) []byte {
	k := append([]byte(nil), prefix...)
	for i, p := range parts {
		if i > 0 {
			k = append(k, '/')
		}
		k = append(k, p...)
	}
	return k
}

func prefixEnd(p []byte) []byte {
	end := append([]byte(nil), p...)
	for i := len(end) - 1; i >= 0; i-- {
		if end[i] < 0xff {
			end[i]++
			return end[:i+1]
		}
	}
	return nil
}

type quietLogger struct{}

func (quietLogger) Infof(string, ...any)  {}
func (quietLogger) Errorf(string, ...any) {}
func (quietLogger) Fatalf(format string, args ...any) {
	panic(fmt.Sprintf(format, args...))
}
