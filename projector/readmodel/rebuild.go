package readmodel

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"github.com/flexstream/flexstream/internal/eventstore"
	"github.com/flexstream/flexstream/projector/domain"
)

// RebuildConfig configures Rebuild and Verify.
type RebuildConfig struct {
	Dir    string // the read-model directory
	Events *eventstore.Client
	// ReadBatch is how many events one ReadAll reads (10,000).
	ReadBatch uint64
	// CommitEvery is how many events one commit writes at most (50,000):
	// what bounds the memory of a rebuild.
	CommitEvery int
	// To is the last $all position to fold; 0: the head when the rebuild
	// starts.
	To uint64
	// Progress, when set, is called after each batch read: events read
	// so far and the head's position (≈ events in $all on the embedded
	// store, where each event has a position of its own).
	Progress func(done, total uint64)
	// Drop, for tests: events it returns true for are not folded — a
	// deliberately changed fold.
	Drop func(eventstore.RecordedEvent) bool
}

// RebuildResult says what a rebuild made.
type RebuildResult struct {
	Generation int
	Path       string
	Head       uint64 // the last position folded
	Read       uint64 // events read from $all
	Applied    uint64 // events folded (the views' streams)
	Elapsed    time.Duration
}

// projected reports whether the live subscription folds events of this
// stream (its filter, applied here to $all).
func projected(stream string) bool {
	return strings.HasPrefix(stream, domain.CategoryConversation+"-") || strings.HasPrefix(stream, domain.CategoryTask+"-")
}

// Rebuild builds a fresh generation of the read models in cfg.Dir from
// $all position 0 up to the head at its start, with the same Projection
// the live subscription folds with (so a replay equals the live fold),
// committing every CommitEvery events, and makes it the current
// generation: a running projector switches to it within a poll. The old
// generation is left to whoever has it open (Live.Run removes it); the
// caller removes it when nothing does. Reactors are not involved: they
// follow the event store, not the read models.
func Rebuild(ctx context.Context, cfg RebuildConfig) (RebuildResult, error) {
	res, store, err := build(ctx, cfg)
	if err != nil {
		return res, err
	}
	if err := store.Close(); err != nil {
		_ = RemoveGeneration(cfg.Dir, res.Generation)
		return res, fmt.Errorf("read model: close the new generation: %w", err)
	}
	if err := SetCurrentGeneration(cfg.Dir, res.Generation); err != nil {
		_ = RemoveGeneration(cfg.Dir, res.Generation)
		return res, err
	}
	return res, nil
}

// build folds $all into a new generation, leaving it open and synced; on
// error the generation is removed.
func build(ctx context.Context, cfg RebuildConfig) (res RebuildResult, store *Store, err error) {
	start := time.Now()
	if cfg.ReadBatch == 0 {
		cfg.ReadBatch = 10_000
	}
	if cfg.CommitEvery <= 0 {
		cfg.CommitEvery = 50_000
	}
	head := cfg.To
	if head == 0 {
		if head, err = cfg.Events.HeadPosition(ctx); err != nil {
			return res, nil, err
		}
	}
	res.Head = head
	res.Generation, res.Path, err = NewGeneration(cfg.Dir)
	if err != nil {
		return res, nil, err
	}
	store, err = openBulk(res.Path)
	if err != nil {
		_ = RemoveGeneration(cfg.Dir, res.Generation)
		return res, nil, err
	}
	defer func() {
		if err != nil {
			_ = store.Close()
			_ = RemoveGeneration(cfg.Dir, res.Generation)
			store = nil
		}
	}()
	p, err := NewProjection(store)
	if err != nil {
		return res, nil, err
	}
	// The generation is new and only this fold writes it. The filter is
	// sized for one view per two events; realistic lifecycles make about
	// one per five, and more views only make it less exact.
	p.fresh(head / 2)
	if err := catchUp(ctx, p, cfg, head, &res); err != nil {
		return res, nil, err
	}
	if err := store.sync(); err != nil {
		return res, nil, err
	}
	res.Elapsed = time.Since(start)
	return res, store, nil
}

var errPastHead = errors.New("past the head")

// catchUp folds $all from p's checkpoint (exclusive) to head (inclusive)
// into p, committing as it goes and at the end.
func catchUp(ctx context.Context, p *Projection, cfg RebuildConfig, head uint64, res *RebuildResult) error {
	if cfg.ReadBatch == 0 {
		cfg.ReadBatch = 10_000
	}
	if cfg.CommitEvery <= 0 {
		cfg.CommitEvery = 50_000
	}
	from, started := p.Checkpoint()
	if started && from >= head {
		return nil
	}
	// Reading (and decoding) and folding overlap: one goroutine reads
	// batches from the store and decodes them while this one folds the
	// previous batch and commits. Both cores work; memory stays bounded by
	// the batch in the channel.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	batches := make(chan []decoded, 1)
	// Folded batches go back to the reader: three are ever in use (read,
	// waiting, folded), and a batch is ten thousand events of ≈ 700 bytes
	// each before their payloads.
	free := make(chan []decoded, 2)
	readErr := make(chan error, 1)
	go func() {
		defer close(batches)
		readErr <- readBatches(ctx, cfg, from, started, head, batches, free)
	}()
	for batch := range batches {
		for i := range batch {
			d := &batch[i]
			res.Read++
			if !d.applied {
				p.Skip(d.r.Position)
				continue
			}
			res.Applied++
			if err := p.ApplyDecoded(d.r, d.e); err != nil {
				cancel()
				for range batches { // let the reader end
				}
				<-readErr
				return err
			}
		}
		if p.Pending() >= cfg.CommitEvery {
			if _, err := p.Commit(); err != nil {
				cancel()
				for range batches {
				}
				<-readErr
				return err
			}
		}
		if cfg.Progress != nil {
			cfg.Progress(res.Read, head)
		}
		select {
		case free <- batch[:0]:
		default:
		}
	}
	if err := <-readErr; err != nil {
		return err
	}
	_, err := p.Commit()
	return err
}

// decoded is an event read for a rebuild, with its domain event when the
// read models fold it.
type decoded struct {
	r       eventstore.RecordedEvent
	e       domain.Event
	applied bool
}

// readBatches reads $all after from (inclusive of nothing already folded)
// up to head, decodes what the read models fold, and sends it in batches,
// reusing those that come back on free.
func readBatches(ctx context.Context, cfg RebuildConfig, from uint64, started bool, head uint64, out chan<- []decoded, free <-chan []decoded) error {
	for {
		var batch []decoded
		select {
		case batch = <-free:
		default:
			batch = make([]decoded, 0, cfg.ReadBatch)
		}
		last := from
		n := cfg.ReadBatch
		if started {
			n++ // the read repeats the event folded last
		}
		err := cfg.Events.ReadAll(ctx, from, n, func(r eventstore.RecordedEvent) error {
			if started && r.Position <= from {
				return nil // the checkpoint's own event: read from it inclusively, folded already
			}
			if r.Position > head {
				return errPastHead
			}
			last = r.Position
			batch = append(batch, decoded{r: r})
			d := &batch[len(batch)-1]
			if projected(r.Stream) && (cfg.Drop == nil || !cfg.Drop(r)) {
				if err := decodeRecorded(&d.e, r); err != nil {
					return err
				}
				d.applied = true
			}
			// The fold needs the decoded event, not the payloads: they
			// go now rather than when the batch is next reused.
			d.r.Data, d.r.Metadata = nil, nil
			return nil
		})
		if err != nil && !errors.Is(err, errPastHead) {
			return err
		}
		if len(batch) > 0 {
			select {
			case out <- batch:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		if len(batch) == 0 || errors.Is(err, errPastHead) || last >= head {
			return nil
		}
		from, started = last, true
		if err := ctx.Err(); err != nil {
			return err
		}
	}
}

// sync makes what was committed durable. A bulk store has no write-ahead
// log: its memtables are flushed to synced tables instead.
func (s *Store) sync() error {
	if s.bulk {
		if err := s.db.Flush(); err != nil {
			return fmt.Errorf("read model: sync: %w", err)
		}
		return nil
	}
	if err := s.db.LogData(nil, pebble.Sync); err != nil {
		return fmt.Errorf("read model: sync: %w", err)
	}
	return nil
}

// LiveViews are the views a verification compares a rebuild with: a
// running projector's (through its query API) or a store's.
type LiveViews interface {
	// EachConversation calls fn with every conversation view.
	EachConversation(ctx context.Context, fn func(sid string, view json.RawMessage) error) error
	// Conversation and Task return one view, or ErrNotFound.
	Conversation(ctx context.Context, sid string) (json.RawMessage, error)
	Task(ctx context.Context, sid string) (json.RawMessage, error)
	// Stats returns the views' running totals (fold.Stats).
	Stats(ctx context.Context) (json.RawMessage, error)
}

// StoreViews are a store's views as LiveViews.
type StoreViews struct{ Store *Store }

// EachConversation implements LiveViews.
func (v StoreViews) EachConversation(_ context.Context, fn func(string, json.RawMessage) error) error {
	return v.Store.scan(prefixConversation, "", func(sid string, raw []byte) (bool, error) {
		return true, fn(sid, slices.Clone(raw))
	})
}

// Conversation implements LiveViews.
func (v StoreViews) Conversation(_ context.Context, sid string) (json.RawMessage, error) {
	return v.Store.ConversationJSON(sid)
}

// Task implements LiveViews.
func (v StoreViews) Task(_ context.Context, sid string) (json.RawMessage, error) {
	return v.Store.TaskJSON(sid)
}

// Stats implements LiveViews.
func (v StoreViews) Stats(context.Context) (json.RawMessage, error) { return v.Store.statsJSON() }

func (s *Store) statsJSON() (json.RawMessage, error) {
	st, err := s.Stats()
	if err != nil {
		return nil, err
	}
	return json.Marshal(st)
}

// Difference is a view the rebuild and the live views disagree on.
type Difference struct {
	Kind    string          `json:"kind"` // conversation, task, or stats (no SID)
	SID     string          `json:"sid"`
	Live    json.RawMessage `json:"live,omitempty"`    // absent: not in the live views
	Rebuilt json.RawMessage `json:"rebuilt,omitempty"` // absent: not in the rebuild
}

// VerifyConfig configures Verify.
type VerifyConfig struct {
	Rebuild RebuildConfig
	Live    LiveViews
	// Rounds is how many times views that differ are checked again after
	// folding what came since (the live views move on while the rebuild
	// runs): 3.
	Rounds int
	// Settle is how long to let the live projector commit before each
	// new round: 200 ms.
	Settle time.Duration
}

// Verify rebuilds the read models into a temporary generation — never
// made current — and compares every conversation and task view with the
// live ones. The live views may be ahead of the rebuild's head: a view
// that differs is checked again after the rebuild folds the events that
// came since, Rounds times; what still differs is returned. The
// temporary generation is removed.
func Verify(ctx context.Context, cfg VerifyConfig) ([]Difference, RebuildResult, error) {
	if cfg.Rounds <= 0 {
		cfg.Rounds = 3
	}
	if cfg.Settle <= 0 {
		cfg.Settle = 200 * time.Millisecond
	}
	res, store, err := build(ctx, cfg.Rebuild)
	if err != nil {
		return nil, res, err
	}
	defer func() {
		_ = store.Close()
		_ = RemoveGeneration(cfg.Rebuild.Dir, res.Generation)
	}()
	type key struct{ kind, sid string }
	// The stats are compared like a view: the totals a dashboard shows
	// must come out of a replay as they are live.
	suspects := map[key]bool{{"stats", ""}: true}
	seen := map[string]bool{}
	err = cfg.Live.EachConversation(ctx, func(sid string, live json.RawMessage) error {
		seen[sid] = true
		rebuilt, err := store.ConversationJSON(sid)
		if err != nil && !errors.Is(err, ErrNotFound) {
			return err
		}
		if !sameJSON(live, rebuilt) {
			suspects[key{"conversation", sid}] = true
		}
		return nil
	})
	if err != nil {
		return nil, res, fmt.Errorf("read model: verify: the live views: %w", err)
	}
	err = store.scan(prefixConversation, "", func(sid string, _ []byte) (bool, error) {
		if !seen[sid] {
			suspects[key{"conversation", sid}] = true
		}
		return true, nil
	})
	if err != nil {
		return nil, res, err
	}
	seen = nil
	err = store.scan(prefixTask, "", func(sid string, rebuilt []byte) (bool, error) {
		live, err := cfg.Live.Task(ctx, sid)
		if err != nil && !errors.Is(err, ErrNotFound) {
			return false, err
		}
		if !sameJSON(live, rebuilt) {
			suspects[key{"task", sid}] = true
		}
		return true, nil
	})
	if err != nil {
		return nil, res, fmt.Errorf("read model: verify: the live views: %w", err)
	}
	p, err := NewProjection(store)
	if err != nil {
		return nil, res, err
	}
	var diffs []Difference
	for round := 0; ; round++ {
		diffs = diffs[:0]
		for k := range suspects {
			get := store.ConversationJSON
			liveGet := cfg.Live.Conversation
			switch k.kind {
			case "task":
				get, liveGet = store.TaskJSON, cfg.Live.Task
			case "stats":
				get = func(string) (json.RawMessage, error) { return store.statsJSON() }
				liveGet = func(ctx context.Context, _ string) (json.RawMessage, error) { return cfg.Live.Stats(ctx) }
			}
			rebuilt, err := get(k.sid)
			if err != nil && !errors.Is(err, ErrNotFound) {
				return nil, res, err
			}
			live, err := liveGet(ctx, k.sid)
			if err != nil && !errors.Is(err, ErrNotFound) {
				return nil, res, err
			}
			if sameJSON(live, rebuilt) {
				delete(suspects, k)
				continue
			}
			diffs = append(diffs, Difference{Kind: k.kind, SID: k.sid, Live: live, Rebuilt: rebuilt})
		}
		if len(diffs) == 0 || round == cfg.Rounds || cfg.Rebuild.To != 0 {
			break
		}
		// The live views may have moved on: fold what came since, then
		// look again.
		select {
		case <-ctx.Done():
			return nil, res, ctx.Err()
		case <-time.After(cfg.Settle):
		}
		head, err := cfg.Rebuild.Events.HeadPosition(ctx)
		if err != nil {
			return nil, res, err
		}
		if err := catchUp(ctx, p, cfg.Rebuild, head, &res); err != nil {
			return nil, res, err
		}
		res.Head = head
	}
	slices.SortFunc(diffs, func(a, b Difference) int {
		return strings.Compare(a.Kind+"/"+a.SID, b.Kind+"/"+b.SID)
	})
	return diffs, res, nil
}

// sameJSON: equal views (nil: no view).
func sameJSON(a, b []byte) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	var ca, cb bytes.Buffer
	if json.Compact(&ca, a) != nil || json.Compact(&cb, b) != nil {
		return bytes.Equal(a, b)
	}
	return bytes.Equal(ca.Bytes(), cb.Bytes())
}
