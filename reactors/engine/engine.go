// Package engine runs the reactors: it follows the event store for
// triggers (tasks that ended without serving their customer), decides
// with reactors/decide, and carries the plan out through reactors/act,
// exactly once (DESIGN §7).
//
// # Exactly once
//
// A reaction's stream, reaction-<task SID>, is both its record and its
// lock. The plan is appended with expected revision "no stream", so a
// second instance, or the same one after a restart, cannot plan twice.
// Each call to Twilio is preceded by ActionStarted and followed by its
// outcome, every append naming the revision it expects, so only one
// writer moves a reaction forward. After a crash the stream tells where
// the reaction stopped: an action started without an outcome may or may
// not have happened, so before calling again the engine asks Twilio
// (act.Actor.Done looks for the action's mark) and records "reconciled"
// instead of repeating a call that succeeded.
//
// # Where it starts
//
// Each instance keeps its own checkpoint (stream
// reactors-checkpoint-<instance>): the $all position up to which every
// trigger is answered. A first deployment has none and starts from the end
// of $all, writing that position first: the reactors never act on the
// history they find. After downtime a trigger older than its rule's
// deadline is recorded as expired, not acted on late.
package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/maphash"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/flexstream/flexstream/internal/config"
	"github.com/flexstream/flexstream/internal/eventstore"
	"github.com/flexstream/flexstream/projector/domain"
	"github.com/flexstream/flexstream/reactors/act"
	"github.com/flexstream/flexstream/reactors/decide"
	"github.com/flexstream/flexstream/reactors/policy"
)

// Store is what the engine needs of the event store
// (*eventstore.Client).
type Store interface {
	Append(ctx context.Context, stream string, exp eventstore.Expected, events ...eventstore.Event) (eventstore.AppendResult, error)
	ReadStream(ctx context.Context, stream string, from, max uint64, fn func(eventstore.RecordedEvent) error) error
	LastEvent(ctx context.Context, stream string) (eventstore.RecordedEvent, error)
	HeadPosition(ctx context.Context) (uint64, error)
	SubscribeAll(ctx context.Context, opts eventstore.SubscribeOptions, h eventstore.Handler) error
}

// Actor is what the engine needs of Twilio (*act.Actor).
type Actor interface {
	Precheck(ctx context.Context, a decide.Action) (needed bool, why string, err error)
	Done(ctx context.Context, a decide.Action, m act.Mark) (bool, act.Result, error)
	Do(ctx context.Context, a decide.Action, m act.Mark) (act.Result, error)
}

// TriggerTypes are the domain events that can end a task unserved.
var TriggerTypes = []string{domain.WorkflowTimedOut, domain.TaskCanceled, domain.TaskDeleted, domain.ReservationRejected}

// Defaults.
const (
	DefaultInstance    = "reactor"
	DefaultWorkers     = 16
	DefaultSettle      = 2 * time.Second
	DefaultLease       = 30 * time.Second
	DefaultMaxAttempts = 5
	DefaultMinBackoff  = 500 * time.Millisecond
	DefaultMaxBackoff  = 30 * time.Second
	DefaultCheckpoint  = time.Second
)

// Config configures an Engine.
type Config struct {
	Store  Store
	Actor  Actor // unused in a dry run
	Policy *policy.Policy
	// DryRun records decisions and calls nothing.
	DryRun bool
	// Instance names this reactor: unique among the running ones and the
	// same across its restarts (its checkpoint and its claims on
	// reactions carry it).
	Instance string
	// Workers answer triggers concurrently; triggers of one conversation
	// always go to the same worker, in order.
	Workers int
	// Settle is how long a trigger waits before it is decided, so that
	// the other events of the same moment (a task's cancel after its
	// workflow timeout, a rejected reservation) are in the store.
	Settle time.Duration
	// Lease: a reaction another instance is moving forward is left to it
	// unless it has written nothing for this long.
	Lease time.Duration
	// MaxAttempts bounds the calls per action.
	MaxAttempts int
	// Backoff between attempts, doubling from MinBackoff to MaxBackoff,
	// or Twilio's Retry-After when it says more.
	MinBackoff, MaxBackoff time.Duration
	// CheckpointEvery is how often the checkpoint is stored.
	CheckpointEvery time.Duration
	Registry        prometheus.Registerer
	Logger          *zap.Logger
	Now             func() time.Time

	// hook, in tests, runs at each step ("planned", "started", "called")
	// of each reaction; an error stops the reaction there as a crash
	// would, writing nothing more.
	hook func(step string, r *reaction) error
}

// Validate names the bad field; it applies the defaults first.
func (c *Config) Validate() error {
	if c.Instance == "" {
		c.Instance = DefaultInstance
	}
	if c.Workers == 0 {
		c.Workers = DefaultWorkers
	}
	if c.Settle == 0 {
		c.Settle = DefaultSettle
	}
	if c.Lease == 0 {
		c.Lease = DefaultLease
	}
	if c.MaxAttempts == 0 {
		c.MaxAttempts = DefaultMaxAttempts
	}
	if c.MinBackoff == 0 {
		c.MinBackoff = DefaultMinBackoff
	}
	if c.MaxBackoff == 0 {
		c.MaxBackoff = DefaultMaxBackoff
	}
	if c.CheckpointEvery == 0 {
		c.CheckpointEvery = DefaultCheckpoint
	}
	if c.Logger == nil {
		c.Logger = zap.NewNop()
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	switch {
	case c.Store == nil:
		return config.Errorf("store", "no event store")
	case c.Actor == nil && !c.DryRun:
		return config.Errorf("twilio", "no Twilio client (set credentials, or run with --dry-run)")
	case c.Policy == nil:
		return config.Errorf("policy", "no policy")
	case c.Workers < 1 || c.Workers > 1024:
		return config.Errorf("reactor-workers", "want 1..1024, got %d", c.Workers)
	case c.Settle < 0:
		return config.Errorf("settle", "want a duration ≥ 0, got %s", c.Settle)
	case c.Lease < time.Second:
		return config.Errorf("lease", "want at least 1s, got %s", c.Lease)
	case c.MaxAttempts < 1:
		return config.Errorf("max-attempts", "want at least 1, got %d", c.MaxAttempts)
	case c.MinBackoff < 0 || c.MaxBackoff < c.MinBackoff:
		return config.Errorf("backoff", "want 0 ≤ min ≤ max, got %s and %s", c.MinBackoff, c.MaxBackoff)
	}
	return nil
}

// Engine is a running reactor.
type Engine struct {
	cfg     Config
	log     *zap.Logger
	m       *metrics
	track   tracker
	seed    maphash.Seed
	ready   chan struct{}
	readyMu sync.Once
}

// New validates cfg and returns an Engine; Run starts it.
func New(cfg Config) (*Engine, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	m, err := newMetrics(cfg.Registry)
	if err != nil {
		return nil, err
	}
	return &Engine{cfg: cfg, log: cfg.Logger.With(zap.String("instance", cfg.Instance)), m: m, seed: maphash.MakeSeed(), ready: make(chan struct{})}, nil
}

// Ready is closed once the engine has caught up with the store.
func (e *Engine) Ready() <-chan struct{} { return e.ready }

// CheckpointStream is the instance's checkpoint stream.
func CheckpointStream(instance string) string { return "reactors-checkpoint-" + instance }

// checkpointType is the checkpoint event's type.
const checkpointType = "ReactorsCheckpoint"

type checkpoint struct {
	Position uint64 `json:"position"`
}

// trigger is one triggering event on its way to a worker.
type trigger struct {
	info     TriggerInfo
	key      string // the conversation, else the stream: the worker's key
	received time.Time
}

// Run follows the store until ctx ends (nil) or a failure it cannot
// survive (the error).
func (e *Engine) Run(ctx context.Context) error {
	from, err := e.start(ctx)
	if err != nil {
		return err
	}
	e.track.saw(from)
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)

	queues := make([]chan trigger, e.cfg.Workers)
	var wg sync.WaitGroup
	for i := range queues {
		queues[i] = make(chan trigger, 64)
		wg.Go(func() { e.worker(ctx, queues[i]) })
	}
	wg.Go(func() { e.checkpointer(ctx) })

	filter := &esdb.SubscriptionFilter{Type: esdb.EventFilterType, Regex: "^(" + joinTypes() + ")$"}
	err = e.cfg.Store.SubscribeAll(ctx, eventstore.SubscribeOptions{
		Name: "reactors", Filter: filter, From: &from,
		OnCheckpoint: func(_ context.Context, pos uint64) error { e.track.saw(pos); return nil },
		OnCaughtUp:   func() { e.readyMu.Do(func() { close(e.ready) }) },
	}, func(ctx context.Context, ev eventstore.RecordedEvent) error {
		t, ok := e.triggerOf(ev)
		if !ok {
			e.track.saw(ev.Position)
			return nil
		}
		e.track.add(ev.Position)
		e.m.inflight.Inc()
		q := queues[maphash.String(e.seed, t.key)%uint64(len(queues))]
		select {
		case q <- t:
			return nil
		case <-ctx.Done():
			return nil
		}
	})
	if err == nil {
		err = context.Cause(ctx)
		if errors.Is(err, context.Canceled) {
			err = nil
		}
	}
	cancel(nil)
	wg.Wait()
	e.saveCheckpoint(context.WithoutCancel(ctx)) // best effort: what is answered need not be looked at again
	return err
}

func joinTypes() string {
	s := ""
	for i, t := range TriggerTypes {
		if i > 0 {
			s += "|"
		}
		s += t
	}
	return s
}

// start reads the checkpoint, or on a first deployment stores the end of
// $all as one, so that a crash before the first checkpoint cannot make
// the next start skip what arrived in between.
func (e *Engine) start(ctx context.Context) (uint64, error) {
	stream := CheckpointStream(e.cfg.Instance)
	last, err := e.cfg.Store.LastEvent(ctx, stream)
	if err == nil {
		var c checkpoint
		if err := json.Unmarshal(last.Data, &c); err != nil {
			return 0, fmt.Errorf("reactors: checkpoint in %s: %w", stream, err)
		}
		e.log.Info("resuming from checkpoint", zap.Uint64("position", c.Position))
		return c.Position, nil
	}
	if !errors.Is(err, eventstore.ErrStreamNotFound) {
		return 0, fmt.Errorf("reactors: read checkpoint: %w", err)
	}
	head, err := e.cfg.Store.HeadPosition(ctx)
	if err != nil {
		return 0, fmt.Errorf("reactors: read the end of $all: %w", err)
	}
	if err := e.writeCheckpoint(ctx, head); err != nil {
		return 0, err
	}
	if mc, ok := e.cfg.Store.(interface {
		SetMaxCount(ctx context.Context, stream string, n uint64) error
	}); ok {
		// Only the latest checkpoint is ever read.
		if err := mc.SetMaxCount(ctx, stream, 16); err != nil {
			return 0, fmt.Errorf("reactors: checkpoint stream metadata: %w", err)
		}
	}
	e.log.Info("first start: acting only on triggers from now on", zap.Uint64("position", head))
	return head, nil
}

func (e *Engine) writeCheckpoint(ctx context.Context, pos uint64) error {
	data, _ := json.Marshal(checkpoint{Position: pos}) // a struct of a uint64 always marshals
	_, err := e.cfg.Store.Append(ctx, CheckpointStream(e.cfg.Instance), eventstore.Any, eventstore.Event{Type: checkpointType, Data: data})
	if err != nil {
		return fmt.Errorf("reactors: store checkpoint: %w", err)
	}
	e.m.position.Set(float64(pos))
	return nil
}

func (e *Engine) checkpointer(ctx context.Context) {
	t := time.NewTicker(e.cfg.CheckpointEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			e.saveCheckpoint(ctx)
		}
	}
}

func (e *Engine) saveCheckpoint(ctx context.Context) {
	pos, changed := e.track.safe()
	if !changed {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := e.writeCheckpoint(ctx, pos); err != nil && ctx.Err() == nil {
		e.log.Warn("storing the checkpoint failed; will retry", zap.Error(err))
		e.track.mu.Lock()
		e.track.changed = true
		e.track.mu.Unlock()
	}
}

// triggerOf reads a subscription event as a trigger.
func (e *Engine) triggerOf(ev eventstore.RecordedEvent) (trigger, bool) {
	d, err := domain.Decode(ev.Type, ev.Data)
	if err != nil || d.TaskSid == "" {
		if err != nil {
			e.log.Warn("undecodable trigger event skipped", zap.String("stream", ev.Stream), zap.Uint64("position", ev.Position), zap.Error(err))
		}
		return trigger{}, false
	}
	key := ev.Stream
	if d.ConversationSid != "" {
		key = d.ConversationSid
	}
	return trigger{
		info: TriggerInfo{EventID: ev.ID.String(), EventType: ev.Type, Stream: ev.Stream, Position: ev.Position, TaskSid: d.TaskSid, At: d.At},
		key:  key, received: e.cfg.Now(),
	}, true
}

// worker answers its triggers in order. A failure of the store is not
// the trigger's fault: the trigger is tried again with backoff, and its
// position holds the checkpoint back meanwhile.
func (e *Engine) worker(ctx context.Context, q <-chan trigger) {
	for {
		var t trigger
		select {
		case <-ctx.Done():
			return
		case t = <-q:
		}
		if !sleep(ctx, t.received.Add(e.cfg.Settle).Sub(e.cfg.Now())) {
			return
		}
		b := e.cfg.MinBackoff
		for {
			err := e.handle(ctx, t.info)
			if err == nil {
				break
			}
			if ctx.Err() != nil {
				return
			}
			if errors.Is(err, errCrash) {
				return // a test's simulated crash: this worker stops here
			}
			e.log.Warn("reaction interrupted; retrying", zap.String("task", t.info.TaskSid), zap.Duration("in", b), zap.Error(err))
			if !sleep(ctx, b) {
				return
			}
			b = min(2*b, e.cfg.MaxBackoff)
		}
		e.track.done(t.info.Position)
		e.m.inflight.Dec()
	}
}

// errCrash stops a reaction where a test's hook says, as a crash would.
var errCrash = errors.New("reactors: simulated crash")

// handle answers one trigger: it plans unless a plan exists, then moves
// the reaction forward until it is final. It returns nil once the
// reaction is final (or was never needed).
func (e *Engine) handle(ctx context.Context, t TriggerInfo) error {
	stream := StreamPrefix + t.TaskSid
	for {
		r, err := e.load(ctx, stream)
		if err != nil {
			return err
		}
		if r.final != "" {
			return nil
		}
		if r.planned == nil {
			done, err := e.plan(ctx, stream, t)
			if err != nil || done {
				return err
			}
			continue
		}
		if r.lastOwner != e.cfg.Instance && e.cfg.Now().Sub(r.lastAt) < e.cfg.Lease {
			// Someone else is on it; look again when its lease could
			// have run out.
			wait := min(e.cfg.Lease-e.cfg.Now().Sub(r.lastAt)+10*time.Millisecond, e.cfg.Lease/4)
			if !sleep(ctx, wait) {
				return ctx.Err()
			}
			continue
		}
		if err := e.step(ctx, stream, r); err != nil {
			if errors.Is(err, eventstore.ErrWrongExpectedVersion) {
				continue // someone moved it: read it again
			}
			return err
		}
	}
}

// load reads a reaction stream.
func (e *Engine) load(ctx context.Context, stream string) (*reaction, error) {
	r := &reaction{}
	err := e.cfg.Store.ReadStream(ctx, stream, 0, eventstore.All, func(ev eventstore.RecordedEvent) error {
		if err := r.apply(ev.Revision, ev.Type, ev.Data); err != nil {
			return fmt.Errorf("reactors: %s revision %d: %w", stream, ev.Revision, err)
		}
		return nil
	})
	if err != nil && !errors.Is(err, eventstore.ErrStreamNotFound) {
		return nil, err
	}
	return r, nil
}

// plan decides and appends the plan. It reports done when nothing more
// is to happen for this trigger now.
func (e *Engine) plan(ctx context.Context, stream string, t TriggerInfo) (bool, error) {
	st, err := e.state(ctx, t.Stream)
	if err != nil {
		return false, err
	}
	now := e.cfg.Now()
	p := decide.Decide(decide.Trigger{EventID: t.EventID, EventType: t.EventType, TaskSid: t.TaskSid, At: t.At}, st, e.cfg.Policy, now)
	log := e.log.With(zap.String("task", t.TaskSid), zap.String("kind", p.Kind), zap.String("rule", p.Rule))
	if p.Skip == decide.SkipTaskLive || p.Skip == decide.SkipNotTargeted {
		// The task has not ended (a rejected reservation it survives):
		// nothing is claimed, so its real end can still be answered.
		log.Debug("not a trigger yet", zap.String("skip", p.Skip))
		return true, nil
	}
	planned := Planned{Trigger: t, Plan: p, Owner: e.cfg.Instance, DryRun: e.cfg.DryRun, At: now}
	events := []eventstore.Event{event(EvPlanned, planned)}
	final := len(p.Actions) == 0 || e.cfg.DryRun
	if final {
		events = append(events, event(EvCompleted, Step{Owner: e.cfg.Instance, At: now, Reason: p.Reason, DryRun: e.cfg.DryRun}))
	}
	if _, err := e.cfg.Store.Append(ctx, stream, eventstore.NoStream, events...); err != nil {
		if errors.Is(err, eventstore.ErrWrongExpectedVersion) {
			return false, nil // planned by another instance (or an earlier trigger of the task): follow its plan
		}
		return false, err
	}
	switch {
	case len(p.Actions) == 0:
		e.m.reactions.WithLabelValues(p.Kind, "skipped-"+p.Skip).Inc()
		log.Info("decided to do nothing", zap.String("skip", p.Skip), zap.String("reason", p.Reason))
	case e.cfg.DryRun:
		e.m.reactions.WithLabelValues(p.Kind, "dry-run").Inc()
		for _, a := range p.Actions {
			e.m.actions.WithLabelValues(p.Kind, a.Kind, "dry-run").Inc()
		}
		log.Info("dry run: would act", zap.Int("actions", len(p.Actions)), zap.String("reason", p.Reason))
	default:
		log.Info("planned", zap.Int("actions", len(p.Actions)), zap.String("reason", p.Reason))
	}
	if e.cfg.hook != nil {
		if err := e.cfg.hook("planned", nil); err != nil {
			return false, err
		}
	}
	return final, nil
}

// state folds the trigger's stream (its conversation's, else its task's).
func (e *Engine) state(ctx context.Context, stream string) (decide.State, error) {
	var evs []decide.StoredEvent
	err := e.cfg.Store.ReadStream(ctx, stream, 0, eventstore.All, func(ev eventstore.RecordedEvent) error {
		d, err := domain.Decode(ev.Type, ev.Data)
		if err != nil {
			return nil // not a domain event this fold knows: it does not change the state
		}
		evs = append(evs, decide.StoredEvent{ID: ev.ID.String(), Type: ev.Type, Event: d})
		return nil
	})
	if err != nil {
		return decide.State{}, fmt.Errorf("reactors: read %s: %w", stream, err)
	}
	return decide.StateFrom(evs), nil
}

// step moves a planned reaction one action forward (or finishes it).
func (e *Engine) step(ctx context.Context, stream string, r *reaction) error {
	p := r.planned
	kind := p.Plan.Kind
	now := e.cfg.Now()
	i := r.next()
	if i < 0 {
		return e.finish(ctx, stream, r, EvCompleted, "every action done")
	}
	a := p.Plan.Actions[i]
	as := r.actions[i]
	if !p.Plan.Deadline.IsZero() && now.After(p.Plan.Deadline) {
		return e.finish(ctx, stream, r, EvAbandoned, fmt.Sprintf("deadline %s passed before %s (action %d) was done", p.Plan.Deadline.Format(time.RFC3339), a.Kind, i))
	}
	if as.attempts >= e.cfg.MaxAttempts {
		return e.finish(ctx, stream, r, EvAbandoned, fmt.Sprintf("%s (action %d) failed %d times", a.Kind, i, as.attempts))
	}
	// Claim the attempt: only one writer gets this revision.
	attempt := as.attempts + 1
	rev, err := e.appendStep(ctx, stream, r.lastRev, EvStarted, Step{Action: i, Attempt: attempt, Owner: e.cfg.Instance, At: now})
	if err != nil {
		return err
	}
	if e.cfg.hook != nil {
		if err := e.cfg.hook("started", r); err != nil {
			return err
		}
	}
	mark := act.Mark{Reaction: stream, Action: i, Attempt: a.Attempt, WorkerSid: a.WorkerSid}
	log := e.log.With(zap.String("reaction", stream), zap.String("action", a.Kind), zap.Int("attempt", attempt))
	if as.attempts > 0 {
		// An earlier attempt may have reached Twilio (a crash, a lost
		// answer): ask Twilio before calling again.
		done, res, err := e.cfg.Actor.Done(ctx, a, mark)
		if err != nil {
			return e.failed(ctx, stream, rev, r, i, attempt, err, log)
		}
		if done {
			log.Info("found done by an earlier attempt")
			e.m.actions.WithLabelValues(kind, a.Kind, "reconciled").Inc()
			_, err := e.appendStep(ctx, stream, rev, EvSucceeded, Step{Action: i, Attempt: attempt, Owner: e.cfg.Instance, At: e.cfg.Now(), Result: &res, Reconciled: true})
			return err
		}
	}
	needed, why, err := e.cfg.Actor.Precheck(ctx, a)
	if err != nil {
		return e.failed(ctx, stream, rev, r, i, attempt, err, log)
	}
	if !needed {
		log.Info("action not needed any more", zap.String("why", why))
		e.m.actions.WithLabelValues(kind, a.Kind, "skipped").Inc()
		_, err := e.appendStep(ctx, stream, rev, EvSkipped, Step{Action: i, Attempt: attempt, Owner: e.cfg.Instance, At: e.cfg.Now(), Reason: why})
		return err
	}
	res, err := e.cfg.Actor.Do(ctx, a, mark)
	if err != nil {
		return e.failed(ctx, stream, rev, r, i, attempt, err, log)
	}
	if e.cfg.hook != nil {
		if err := e.cfg.hook("called", r); err != nil {
			return err
		}
	}
	at := e.cfg.Now()
	e.m.actions.WithLabelValues(kind, a.Kind, "succeeded").Inc()
	e.m.latency.WithLabelValues(a.Kind).Observe(at.Sub(p.Trigger.At).Seconds())
	log.Info("action done", zap.String("sid", res.Sid), zap.String("newTask", res.TaskSid))
	_, err = e.appendStep(ctx, stream, rev, EvSucceeded, Step{Action: i, Attempt: attempt, Owner: e.cfg.Instance, At: at, Result: &res})
	return err
}

// failed records a failed attempt, then waits before the next one, or
// abandons the reaction when Twilio refused in a way retrying cannot fix.
func (e *Engine) failed(ctx context.Context, stream string, rev uint64, r *reaction, i, attempt int, callErr error, log *zap.Logger) error {
	if ctx.Err() != nil {
		return ctx.Err() // stopping: the next start finds the attempt open and checks Twilio
	}
	s := Step{Action: i, Attempt: attempt, Owner: e.cfg.Instance, At: e.cfg.Now(), Error: callErr.Error()}
	retry := true
	var ae *act.Error
	if errors.As(callErr, &ae) {
		s.Status, s.RetryAfter = ae.Status(), ae.Resp.RetryAfter
		retry = ae.Retryable() || ae.Ambiguous()
	}
	kind, a := r.planned.Plan.Kind, r.planned.Plan.Actions[i]
	e.m.actions.WithLabelValues(kind, a.Kind, "failed").Inc()
	rev, err := e.appendStep(ctx, stream, rev, EvFailed, s)
	if err != nil {
		return err
	}
	if !retry {
		log.Warn("Twilio refused the action; abandoning the reaction", zap.Int("status", s.Status), zap.Error(callErr))
		r.lastRev = rev
		return e.finish(ctx, stream, r, EvAbandoned, fmt.Sprintf("%s (action %d) refused: %v", a.Kind, i, callErr))
	}
	wait := min(e.cfg.MinBackoff<<min(attempt-1, 20), e.cfg.MaxBackoff)
	wait = wait/2 + rand.N(wait/2+1) // jitter: instances retrying together spread out
	wait = max(wait, s.RetryAfter)
	log.Warn("action failed; retrying", zap.Int("status", s.Status), zap.Duration("in", wait), zap.Error(callErr))
	if !sleep(ctx, wait) {
		return ctx.Err()
	}
	return nil
}

// finish appends the final event.
func (e *Engine) finish(ctx context.Context, stream string, r *reaction, typ, reason string) error {
	if _, err := e.appendStep(ctx, stream, r.lastRev, typ, Step{Owner: e.cfg.Instance, At: e.cfg.Now(), Reason: reason}); err != nil {
		return err
	}
	kind := r.planned.Plan.Kind
	if typ == EvAbandoned {
		e.m.abandoned.WithLabelValues(kind).Inc()
		e.m.reactions.WithLabelValues(kind, "abandoned").Inc()
		e.log.Warn("reaction abandoned", zap.String("reaction", stream), zap.String("reason", reason))
	} else {
		e.m.reactions.WithLabelValues(kind, "completed").Inc()
	}
	return nil
}

func (e *Engine) appendStep(ctx context.Context, stream string, rev uint64, typ string, s Step) (uint64, error) {
	res, err := e.cfg.Store.Append(ctx, stream, eventstore.Revision(rev), event(typ, s))
	if err != nil {
		return 0, err
	}
	return res.NextRevision, nil
}

// event makes a store event of v (types of this package, which always
// marshal).
func event(typ string, v any) eventstore.Event {
	data, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("reactors: marshal %s: %v", typ, err))
	}
	return eventstore.Event{ID: uuid.New(), Type: typ, Data: data}
}

// sleep waits d; false if ctx ended first.
func sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
