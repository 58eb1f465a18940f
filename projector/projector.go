// Package projector is the role that turns the raw topic into history and
// views: the pipeline (Kafka → event store), the read models (a
// checkpointed $all subscription → views on disk) and the query API that
// serves them.
package projector

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/flexstream/flexstream/internal/config"
	"github.com/flexstream/flexstream/internal/eventstore"
	"github.com/flexstream/flexstream/internal/kafkaio"
	"github.com/flexstream/flexstream/internal/pii"
	"github.com/flexstream/flexstream/projector/api"
	"github.com/flexstream/flexstream/projector/decode"
	"github.com/flexstream/flexstream/projector/fold"
	"github.com/flexstream/flexstream/projector/pipeline"
	"github.com/flexstream/flexstream/projector/readmodel"
	"github.com/flexstream/flexstream/schemas"
)

// Config configures a Projector.
type Config struct {
	Brokers []string
	Topic   string
	Group   string
	Events  *eventstore.Client // the event store; the caller owns it
	DataDir string             // the read models' directory
	APIAddr string
	// APIToken, when set, is required as a bearer token by the query API.
	APIToken string
	// Grace is how long a conversation with no task and no agent may be
	// idle before it counts as orphaned.
	Grace         time.Duration
	Pseudonymizer *pii.Pseudonymizer
	Workers       int
	Logger        *zap.Logger
	// GenerationPoll is how often the read models' generation pointer is
	// read, to switch to a replay's new generation (1s).
	GenerationPoll time.Duration
}

// Defaults.
const (
	DefaultGroup = "flexstream-projector"
	DefaultGrace = 5 * time.Minute
)

// Validate names the bad field; it applies the defaults first.
func (c *Config) Validate() error {
	if c.Group == "" {
		c.Group = DefaultGroup
	}
	if c.Topic == "" {
		c.Topic = schemas.DefaultTopic
	}
	if c.Grace == 0 {
		c.Grace = DefaultGrace
	}
	if c.Logger == nil {
		c.Logger = zap.NewNop()
	}
	switch {
	case c.Events == nil:
		return config.Errorf("store", "no event store")
	case c.Pseudonymizer == nil:
		return config.Errorf("FLEXSTREAM_PSEUDONYM_KEY", "a pseudonym key is required")
	case c.DataDir == "":
		return config.Errorf("data", "a directory for the read models is required")
	case c.Grace < time.Second:
		return config.Errorf("orphan-grace", "want at least 1s, got %s", c.Grace)
	}
	return config.CheckListenAddr(c.APIAddr)
}

// Projector runs the pipeline, the read models and the query API.
type Projector struct {
	cfg      Config
	log      *zap.Logger
	store    *readmodel.Live
	api      *api.Server
	consumer *kafkaio.Consumer
	dlq      *kafkaio.Producer
	cancel   context.CancelFunc
	wg       sync.WaitGroup
	caughtUp atomic.Bool
	counters pipeline.Counters
	progress readmodel.Progress
	errOnce  sync.Once
	err      error
	closed   sync.Once
}

// Start starts everything; Close stops it.
func Start(ctx context.Context, cfg Config) (*Projector, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	validator, err := schemas.DefaultValidator()
	if err != nil {
		return nil, err
	}
	// The read models are generations (a replay builds a new one and
	// flips the pointer); the API reads whichever is current.
	store, err := readmodel.OpenLive(cfg.DataDir)
	if err != nil {
		return nil, err
	}
	p := &Projector{cfg: cfg, log: cfg.Logger.Named("projector"), store: store}
	fail := func(err error) (*Projector, error) {
		p.closeParts()
		return nil, err
	}
	p.consumer, err = kafkaio.NewConsumer(kafkaio.ConsumerConfig{Brokers: cfg.Brokers, GroupID: cfg.Group, Topics: []string{cfg.Topic}, Logger: cfg.Logger})
	if err != nil {
		return fail(err)
	}
	p.dlq, err = kafkaio.NewProducer(kafkaio.ProducerConfig{Brokers: cfg.Brokers, Topic: cfg.Topic + schemas.DLQSuffix, Logger: cfg.Logger})
	if err != nil {
		return fail(err)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "flexstream_projection_lag_positions",
		Help: "$all positions between the projector's last append and the read models' checkpoint (events, on the embedded store)."},
		func() float64 { return float64(lag(p.counters.LastPosition.Load(), p.progress.Checkpoint.Load())) }))
	feed := readmodel.NewFeed()
	p.api, err = api.Start(api.Config{
		Addr: cfg.APIAddr, BearerToken: cfg.APIToken,
		Store: views{store: store, grace: cfg.Grace, counters: &p.counters, progress: &p.progress}, Timeline: timeline{cfg.Events}, Feed: feedAdapter{feed},
		Ready: p.ready, Registry: reg, Logger: cfg.Logger,
	})
	if err != nil {
		return fail(err)
	}
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	p.cancel = cancel
	p.wg.Add(2)
	go func() {
		defer p.wg.Done()
		err := pipeline.Run(runCtx, pipeline.Config{
			Source: p.consumer, Decoder: decode.New(cfg.Pseudonymizer, validator), Store: cfg.Events,
			DLQ: p.dlq, DLQTopic: cfg.Topic + schemas.DLQSuffix, Workers: cfg.Workers, Registry: reg, Counters: &p.counters, Logger: cfg.Logger,
		})
		p.fail("pipeline", err)
	}()
	go func() {
		defer p.wg.Done()
		err := store.Run(runCtx, readmodel.RunConfig{
			Events: cfg.Events, Feed: feed, Registry: reg, Logger: cfg.Logger,
			CaughtUp: func() { p.caughtUp.Store(true) }, Progress: &p.progress,
		}, cfg.GenerationPoll)
		p.fail("read models", err)
	}()
	p.log.Info("projector started", zap.String("api", p.api.URL()), zap.String("topic", cfg.Topic), zap.String("group", cfg.Group))
	return p, nil
}

func (p *Projector) fail(part string, err error) {
	if err == nil || errors.Is(err, context.Canceled) {
		return
	}
	p.errOnce.Do(func() { p.err = fmt.Errorf("projector %s: %w", part, err) })
	p.log.Error("projector part stopped", zap.String("part", part), zap.Error(err))
}

func (p *Projector) ready() error {
	if p.err != nil {
		return p.err
	}
	if !p.caughtUp.Load() {
		return errors.New("read models catching up")
	}
	return nil
}

// APIURL is the query API's base URL.
func (p *Projector) APIURL() string { return p.api.URL() }

// Err is the first failure of a part, if any.
func (p *Projector) Err() error { return p.err }

// Close stops the API, the pipeline (committing what is done) and the
// read models (committing what is applied).
func (p *Projector) Close() error {
	var err error
	p.closed.Do(func() {
		err = p.closeParts()
	})
	return err
}

func (p *Projector) closeParts() error {
	var errs []error
	if p.api != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		errs = append(errs, p.api.Shutdown(ctx))
		cancel()
	}
	if p.cancel != nil {
		p.cancel()
	}
	p.wg.Wait()
	if p.consumer != nil {
		errs = append(errs, p.consumer.Close())
	}
	if p.dlq != nil {
		errs = append(errs, p.dlq.Close())
	}
	errs = append(errs, p.store.Close())
	return errors.Join(errs...)
}

// views serves the read models to the API: each call reads the current
// generation, which stays open until it returns.
type views struct {
	store    *readmodel.Live
	grace    time.Duration
	counters *pipeline.Counters
	progress *readmodel.Progress
}

func notFound(err error) error {
	if errors.Is(err, readmodel.ErrNotFound) {
		return api.ErrNotFound
	}
	return err
}

func (v views) Conversation(_ context.Context, sid string) (raw json.RawMessage, err error) {
	err = v.store.View(func(s *readmodel.Store) error {
		raw, err = s.ConversationJSON(sid)
		return err
	})
	return raw, notFound(err)
}

func (v views) Conversations(_ context.Context, q api.ConversationQuery) (page api.ConversationPage, err error) {
	err = v.store.View(func(s *readmodel.Store) error {
		page.Items, page.NextCursor, err = s.Conversations(readmodel.Query{State: q.State, Orphaned: q.Orphaned, Flag: q.Flag, After: q.Cursor, Limit: q.Limit, Now: time.Now(), Grace: v.grace})
		return err
	})
	return page, err
}

func (v views) Task(_ context.Context, sid string) (raw json.RawMessage, err error) {
	err = v.store.View(func(s *readmodel.Store) error {
		raw, err = s.TaskJSON(sid)
		return err
	})
	return raw, notFound(err)
}

func (v views) Stats(_ context.Context) (json.RawMessage, error) {
	var st fold.Stats
	var orphans int
	err := v.store.View(func(s *readmodel.Store) (err error) {
		if st, err = s.Stats(); err != nil {
			return err
		}
		orphans, err = s.OrphansNow(time.Now(), v.grace)
		return err
	})
	if err != nil {
		return nil, err
	}
	return json.Marshal(struct {
		Stats       any     `json:"views"`
		OrphansNow  int     `json:"orphansNow"`
		GraceSecond float64 `json:"orphanGraceSeconds"`
		// Since this projector started.
		Appended    int64   `json:"eventsAppended"`
		DeadLetters int64   `json:"deadLetters"`
		Applied     int64   `json:"eventsApplied"`
		LagSeconds  float64 `json:"projectionLagSeconds"`
		// $all positions between the last append and the views'
		// checkpoint: events, on the embedded store (one position each).
		LagPositions uint64 `json:"projectionLagPositions"`
		ProjectionOK bool   `json:"caughtUp"`
	}{st, orphans, v.grace.Seconds(), v.counters.Appended.Load(), v.counters.DeadLettered.Load(),
		v.progress.Applied.Load(), v.progress.LagSeconds(), lag(v.counters.LastPosition.Load(), v.progress.Checkpoint.Load()), v.progress.CaughtUp.Load()})
}

type timeline struct{ es *eventstore.Client }

func (t timeline) Events(ctx context.Context, stream string, fn func(api.TimelineEvent) error) error {
	err := t.es.ReadStream(ctx, stream, 0, eventstore.All, func(r eventstore.RecordedEvent) error {
		return fn(api.TimelineEvent{ID: r.ID.String(), Type: r.Type, Revision: r.Revision, Position: r.Position, Created: r.Created, Data: r.Data, Metadata: r.Metadata})
	})
	if errors.Is(err, eventstore.ErrStreamNotFound) {
		return api.ErrNotFound
	}
	return err
}

type feedAdapter struct{ f *readmodel.Feed }

func (a feedAdapter) Subscribe(ctx context.Context) (<-chan api.Change, error) {
	in := a.f.Subscribe(ctx)
	out := make(chan api.Change)
	go func() {
		defer close(out)
		for c := range in {
			select {
			case out <- api.Change{Kind: c.Kind, SID: c.SID, View: c.View}:
			case <-ctx.Done():
				for range in {
				}
				return
			}
		}
	}()
	return out, nil
}

func lag(appended, checkpoint uint64) uint64 {
	if appended > checkpoint {
		return appended - checkpoint
	}
	return 0
}
