package readmodel

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/cockroachdb/pebble/v2"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/flexstream/flexstream/internal/eventstore"
	"github.com/flexstream/flexstream/projector/domain"
	"github.com/flexstream/flexstream/projector/fold"
)

// Change is a view that a commit changed, for live listeners.
type Change struct {
	Kind string // "conversation", "task" or "stats"
	SID  string
	View json.RawMessage
}

// Projection folds events into the store. Apply buffers; Commit writes
// every view changed since the last commit, their index entries, the stats
// and the checkpoint in one atomic batch.
type Projection struct {
	store *Store
	stats fold.Stats

	convs   map[string]*convEntry
	tasks   map[string]*fold.TaskView
	pending int
	lastPos uint64
	hasPos  bool
	lastAt  time.Time // Created of the last event applied

	// written, for a rebuild into an empty store, knows the views it
	// never committed: those are new without a lookup (nil otherwise).
	written *writtenFilter

	// scratch is where views are encoded; batchSize is the last commit's
	// batch, the next one's first guess: growing a batch of tens of
	// megabytes by doubling was a tenth of a rebuild's garbage.
	scratch   []byte
	batchSize int
}

// Kinds of view in writtenFilter.
const (
	writtenConversation = 'c'
	writtenTask         = 't'
)

// fresh tells a projection that its store was empty when it started and
// that it is the store's only writer, as in a rebuild: views it has not
// committed itself are then absent, and are not looked up. expectedViews
// sizes the memory of what it committed.
func (p *Projection) fresh(expectedViews uint64) { p.written = newWrittenFilter(expectedViews) }

type convEntry struct {
	before *fold.ConversationView // as stored; nil if new
	stored []byte                 // before's JSON, as stored
	view   *fold.ConversationView
}

// NewProjection loads the stats and checkpoint from store.
func NewProjection(store *Store) (*Projection, error) {
	st, err := store.Stats()
	if err != nil {
		return nil, err
	}
	pos, ok, err := store.Checkpoint()
	if err != nil {
		return nil, err
	}
	return &Projection{store: store, stats: st, lastPos: pos, hasPos: ok,
		convs: map[string]*convEntry{}, tasks: map[string]*fold.TaskView{}}, nil
}

// Checkpoint is the position of the last event applied (committed or not).
func (p *Projection) Checkpoint() (uint64, bool) { return p.lastPos, p.hasPos }

// Pending is the number of events applied since the last commit.
func (p *Projection) Pending() int { return p.pending }

// Apply folds one recorded event into the views it concerns.
func (p *Projection) Apply(r eventstore.RecordedEvent) error {
	var e domain.Event
	if err := decodeRecorded(&e, r); err != nil {
		return err
	}
	return p.ApplyDecoded(r, e)
}

func decodeRecorded(e *domain.Event, r eventstore.RecordedEvent) error {
	if err := domain.DecodeInto(e, r.Type, r.Data); err != nil {
		return fmt.Errorf("read model: event %s at %d: %w", r.ID, r.Position, err)
	}
	return nil
}

// ApplyDecoded is Apply of an event already decoded (a replay decodes on
// another goroutine than it folds).
func (p *Projection) ApplyDecoded(r eventstore.RecordedEvent, e domain.Event) error {
	id := r.ID.String()
	if e.ConversationSid != "" {
		c, err := p.conversation(e.ConversationSid)
		if err != nil {
			return err
		}
		c.view.Apply(e, id)
	}
	if e.TaskSid != "" {
		t, err := p.task(e.TaskSid)
		if err != nil {
			return err
		}
		t.Apply(e, id)
	}
	p.pending++
	p.lastPos, p.hasPos, p.lastAt = r.Position, true, r.Created
	return nil
}

// Skip moves the checkpoint past events the filter left out.
func (p *Projection) Skip(position uint64) {
	if !p.hasPos || position > p.lastPos {
		p.lastPos, p.hasPos = position, true
		p.pending++ // the checkpoint itself is worth writing
	}
}

func (p *Projection) conversation(sid string) (*convEntry, error) {
	if c, ok := p.convs[sid]; ok {
		return c, nil
	}
	c := &convEntry{}
	if p.written != nil && !p.written.mayHave(writtenConversation, sid) {
		c.view = &fold.ConversationView{Sid: sid}
		p.convs[sid] = c
		return c, nil
	}
	raw, err := p.store.ConversationJSON(sid)
	switch {
	case err == nil:
		// Decoded twice: Apply mutates the view's maps, and before must
		// stay as stored.
		c.before, c.view, c.stored = &fold.ConversationView{}, &fold.ConversationView{}, raw
		if err := json.Unmarshal(raw, c.before); err != nil {
			return nil, fmt.Errorf("read model: decode conversation %s: %w", sid, err)
		}
		if err := json.Unmarshal(raw, c.view); err != nil {
			return nil, fmt.Errorf("read model: decode conversation %s: %w", sid, err)
		}
	case err == ErrNotFound:
		c.view = &fold.ConversationView{Sid: sid}
	default:
		return nil, err
	}
	p.convs[sid] = c
	return c, nil
}

func (p *Projection) task(sid string) (*fold.TaskView, error) {
	if t, ok := p.tasks[sid]; ok {
		return t, nil
	}
	if p.written != nil && !p.written.mayHave(writtenTask, sid) {
		t := &fold.TaskView{Sid: sid}
		p.tasks[sid] = t
		return t, nil
	}
	t, err := p.store.Task(sid)
	if err == ErrNotFound {
		t, err = &fold.TaskView{Sid: sid}, nil
	}
	if err != nil {
		return nil, err
	}
	p.tasks[sid] = t
	return t, nil
}

// encode returns v's JSON in a slice of its own length.
func (p *Projection) encode(v interface{ AppendJSON([]byte) ([]byte, error) }) ([]byte, error) {
	var err error
	if p.scratch, err = v.AppendJSON(p.scratch[:0]); err != nil {
		return nil, err
	}
	return bytes.Clone(p.scratch), nil
}

// Commit writes what Apply changed; it returns the changed views.
func (p *Projection) Commit() ([]Change, error) {
	if p.pending == 0 {
		return nil, nil
	}
	b := p.store.db.NewBatchWithSize(p.batchSize + p.batchSize/4)
	defer b.Close()
	var changes []Change
	for sid, c := range p.convs {
		data, err := p.encode(c.view)
		if err != nil {
			return nil, fmt.Errorf("read model: conversation %s: %w", sid, err)
		}
		if c.before != nil {
			if string(c.stored) == string(data) {
				continue
			}
			deleteIndexes(b, c.before)
		}
		_ = b.Set(key(prefixConversation, sid), data, nil)
		setIndexes(b, c.view)
		p.stats.Update(c.before, c.view)
		changes = append(changes, Change{Kind: "conversation", SID: sid, View: data})
	}
	for sid, t := range p.tasks {
		data, err := p.encode(t)
		if err != nil {
			return nil, fmt.Errorf("read model: task %s: %w", sid, err)
		}
		_ = b.Set(key(prefixTask, sid), data, nil)
		changes = append(changes, Change{Kind: "task", SID: sid, View: data})
	}
	stats, err := json.Marshal(p.stats)
	if err != nil {
		return nil, err
	}
	_ = b.Set(keyStats, stats, nil)
	var pos [8]byte
	binary.BigEndian.PutUint64(pos[:], p.lastPos)
	_ = b.Set(keyCheckpoint, pos[:], nil)
	// The batch is atomic; it need not be synced: after a crash the views
	// and the checkpoint are both from the same earlier commit, and the
	// subscription resumes from there.
	p.batchSize = len(b.Repr())
	if err := b.Commit(pebble.NoSync); err != nil {
		return nil, fmt.Errorf("read model: commit: %w", err)
	}
	if len(changes) > 0 {
		changes = append(changes, Change{Kind: "stats", View: stats})
	}
	if p.written != nil {
		for sid := range p.convs {
			p.written.add(writtenConversation, sid)
		}
		for sid := range p.tasks {
			p.written.add(writtenTask, sid)
		}
	}
	clear(p.convs)
	clear(p.tasks)
	p.pending = 0
	return changes, nil
}

func stateKey(v *fold.ConversationView) []byte {
	state := v.State
	if state == "" {
		state = "unknown"
	}
	return key(prefixState, state, v.Sid)
}

func deleteIndexes(b *pebble.Batch, v *fold.ConversationView) {
	_ = b.Delete(stateKey(v), nil)
	for _, f := range v.Flags() {
		_ = b.Delete(key(prefixFlag, f, v.Sid), nil)
	}
	_ = b.Delete(key(prefixOrphan, v.Sid), nil)
}

func setIndexes(b *pebble.Batch, v *fold.ConversationView) {
	_ = b.Set(stateKey(v), nil, nil)
	for _, f := range v.Flags() {
		_ = b.Set(key(prefixFlag, f, v.Sid), nil, nil)
	}
	if v.OrphanCandidate() && !v.LastActivity.IsZero() {
		var at [8]byte
		binary.BigEndian.PutUint64(at[:], uint64(v.LastActivity.UnixNano()))
		_ = b.Set(key(prefixOrphan, v.Sid), at[:], nil)
	}
}

// RunConfig configures Run.
type RunConfig struct {
	Store          *Store
	Events         *eventstore.Client
	Feed           *Feed
	CommitEvery    int           // events per commit at most (500)
	CommitInterval time.Duration // longest an applied event waits for its commit (20 ms)
	Registry       prometheus.Registerer
	Logger         *zap.Logger
	// CaughtUp is called after the first commit that follows catching up.
	CaughtUp func()
	// Progress, when set, is kept up to date for the caller (stats).
	Progress *Progress
}

// Progress is how far the read models are, safe to read concurrently.
type Progress struct {
	Applied       atomic.Int64 // events folded since start
	LastEventUnix atomic.Int64 // Created of the last event committed, Unix ns
	CaughtUp      atomic.Bool  // nothing was pending at the last check
	Checkpoint    atomic.Uint64
}

// LagSeconds is how old the last committed event was when committed, 0
// when caught up.
func (p *Progress) LagSeconds() float64 {
	if p.CaughtUp.Load() || p.LastEventUnix.Load() == 0 {
		return 0
	}
	return max(0, time.Since(time.Unix(0, p.LastEventUnix.Load())).Seconds())
}

// Run keeps the views up to date from a checkpointed, filtered $all
// subscription until ctx ends.
func Run(ctx context.Context, cfg RunConfig) error {
	if cfg.CommitEvery == 0 {
		cfg.CommitEvery = 500
	}
	if cfg.CommitInterval == 0 {
		cfg.CommitInterval = 20 * time.Millisecond
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	if cfg.Progress == nil {
		cfg.Progress = &Progress{}
	}
	log := cfg.Logger.Named("readmodel")
	p, err := NewProjection(cfg.Store)
	if err != nil {
		return err
	}
	applied := prometheus.NewCounter(prometheus.CounterOpts{Name: "flexstream_projection_events_applied_total", Help: "Events folded into the read models."})
	lagSeconds := prometheus.NewGauge(prometheus.GaugeOpts{Name: "flexstream_projection_lag_seconds", Help: "Age of the last event folded when it was committed; 0 when caught up."})
	if cfg.Registry != nil {
		// A second Run on the same registry (after a generation switch)
		// keeps counting on the first one's collectors.
		var err error
		if applied, err = register(cfg.Registry, applied); err != nil {
			return err
		}
		if lagSeconds, err = register(cfg.Registry, lagSeconds); err != nil {
			return err
		}
	}
	var mu sync.Mutex
	// oldest is when the oldest uncommitted event was applied: a commit is
	// due once it has waited CommitInterval, however busy the stream.
	var oldest time.Time
	caughtUp := false
	commit := func() error {
		changes, err := p.Commit()
		if err != nil {
			return err
		}
		oldest = time.Time{}
		if pos, ok := p.Checkpoint(); ok {
			cfg.Progress.Checkpoint.Store(pos)
		}
		if !p.lastAt.IsZero() {
			lagSeconds.Set(max(0, time.Since(p.lastAt).Seconds()))
			cfg.Progress.LastEventUnix.Store(p.lastAt.UnixNano())
		}
		if cfg.Feed != nil {
			cfg.Feed.publish(changes)
		}
		return nil
	}
	done := make(chan struct{})
	tickErr := make(chan error, 1)
	go func() {
		t := time.NewTicker(max(time.Millisecond, cfg.CommitInterval/5))
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				mu.Lock()
				var err error
				if p.Pending() > 0 && !oldest.IsZero() && time.Since(oldest) >= cfg.CommitInterval {
					err = commit()
				} else if p.Pending() == 0 && caughtUp {
					lagSeconds.Set(0)
					cfg.Progress.CaughtUp.Store(true)
				}
				mu.Unlock()
				if err != nil {
					tickErr <- err
					return
				}
			}
		}
	}()
	defer close(done)
	opts := eventstore.SubscribeOptions{
		Name:   "read-models",
		Filter: &esdb.SubscriptionFilter{Type: esdb.StreamFilterType, Prefixes: []string{domain.CategoryConversation + "-", domain.CategoryTask + "-"}},
		OnCheckpoint: func(_ context.Context, pos uint64) error {
			mu.Lock()
			defer mu.Unlock()
			p.Skip(pos)
			if oldest.IsZero() && p.Pending() > 0 {
				oldest = time.Now()
			}
			return nil
		},
		OnCaughtUp: func() {
			mu.Lock()
			defer mu.Unlock()
			if err := commit(); err != nil {
				log.Error("commit at catch-up", zap.Error(err))
				return
			}
			if !caughtUp {
				caughtUp = true
				log.Info("read models caught up", zap.Uint64("position", p.lastPos))
				if cfg.CaughtUp != nil {
					cfg.CaughtUp()
				}
			}
		},
	}
	if pos, ok := p.Checkpoint(); ok {
		opts.From = &pos
	}
	err = cfg.Events.SubscribeAll(ctx, opts, func(ctx context.Context, r eventstore.RecordedEvent) error {
		mu.Lock()
		defer mu.Unlock()
		if err := p.Apply(r); err != nil {
			return err
		}
		if oldest.IsZero() {
			oldest = time.Now()
		}
		applied.Inc()
		cfg.Progress.Applied.Add(1)
		cfg.Progress.CaughtUp.Store(false)
		if p.Pending() >= cfg.CommitEvery {
			return commit()
		}
		select {
		case err := <-tickErr:
			return err
		default:
		}
		return nil
	})
	mu.Lock()
	defer mu.Unlock()
	if cerr := commit(); cerr != nil && err == nil {
		err = cerr
	}
	return err
}

// register registers c, or returns the collector already registered as
// it.
func register[C prometheus.Collector](reg prometheus.Registerer, c C) (C, error) {
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing, nil
			}
		}
		return c, fmt.Errorf("read model: metrics: %w", err)
	}
	return c, nil
}
