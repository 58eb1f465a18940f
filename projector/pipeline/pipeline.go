// Package pipeline moves the events topic into the event store: each
// record decoded, appended to its stream through the KurrentDB client, its
// offset committed only after the store acknowledged; what cannot be
// decoded goes to the dead-letter topic. Records of one key stay in order;
// different keys are appended concurrently, so one partition keeps the
// store busy.
package pipeline

import (
	"context"
	"encoding/json"
	"errors"
	"hash/fnv"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"

	"github.com/flexstream/flexstream/internal/config"
	"github.com/flexstream/flexstream/internal/esstore"
	"github.com/flexstream/flexstream/internal/eventstore"
	"github.com/flexstream/flexstream/projector/decode"
	"github.com/flexstream/flexstream/projector/domain"
)

// Source is the consumer group the pipeline reads.
type Source interface {
	Fetch(ctx context.Context) (kafka.Message, error)
	Commit(ctx context.Context, msgs ...kafka.Message) error
}

// Appender is the event store.
type Appender interface {
	Append(ctx context.Context, stream string, exp eventstore.Expected, events ...eventstore.Event) (eventstore.AppendResult, error)
	// LastEvents calls fn for up to n of a stream's last events, the
	// newest first (eventstore.ErrStreamNotFound if none): after a
	// restart they say which records are already stored.
	LastEvents(ctx context.Context, stream string, n uint64, fn func(eventstore.RecordedEvent) error) error
}

// Publisher is the dead-letter producer.
type Publisher interface {
	Publish(ctx context.Context, msgs ...kafka.Message) error
}

// Decoder makes a record's event.
type Decoder interface {
	Decode(r decode.Record) (decode.Decoded, error)
}

// Dead-letter headers, beside the record's own.
const (
	HeaderDLQError     = "flexstream_dlq_error"
	HeaderDLQTopic     = "flexstream_dlq_topic"
	HeaderDLQPartition = "flexstream_dlq_partition"
	HeaderDLQOffset    = "flexstream_dlq_offset"
	HeaderDLQAt        = "flexstream_dlq_at"
)

// Config configures Run.
type Config struct {
	Source   Source
	Decoder  Decoder
	Store    Appender
	DLQ      Publisher
	DLQTopic string
	// DLQ publishes to the dead-letter topic (its producer's own topic);
	// DLQTopic is only for checks and logs.
	// Workers append concurrently; a key always goes to the same one.
	Workers int
	// MaxInFlight bounds records fetched and not yet committed.
	MaxInFlight int
	// CommitInterval is how often finished offsets are committed.
	CommitInterval time.Duration
	// RecheckRecords is how many records of each partition, after a
	// start, are checked against the store's last events (0: four times
	// MaxInFlight, at least 32,768): what an earlier run may have
	// appended without committing. Tests lower it.
	RecheckRecords int
	Registry       prometheus.Registerer
	// Counters, when set, are kept up to date for the caller (stats).
	Counters *Counters
	Logger   *zap.Logger
}

// Counters are the pipeline's running totals, safe to read concurrently.
type Counters struct {
	Appended     atomic.Int64
	DeadLettered atomic.Int64
	// LastPosition is the highest $all position an append returned.
	LastPosition atomic.Uint64
}

// Defaults.
const (
	DefaultWorkers        = 64
	DefaultMaxInFlight    = 8192
	DefaultCommitInterval = 200 * time.Millisecond
)

// Validate names the bad field; it applies the defaults first.
func (c *Config) Validate() error {
	if c.Workers == 0 {
		c.Workers = DefaultWorkers
	}
	if c.MaxInFlight == 0 {
		c.MaxInFlight = DefaultMaxInFlight
	}
	if c.CommitInterval == 0 {
		c.CommitInterval = DefaultCommitInterval
	}
	if c.RecheckRecords == 0 {
		c.RecheckRecords = recheckWindow(c.MaxInFlight)
	}
	if c.Logger == nil {
		c.Logger = zap.NewNop()
	}
	if c.Counters == nil {
		c.Counters = &Counters{}
	}
	switch {
	case c.Source == nil || c.Decoder == nil || c.Store == nil || c.DLQ == nil:
		return errors.New("pipeline: source, decoder, store and dead-letter publisher are required")
	case c.DLQTopic == "":
		return config.Errorf("kafka-topic", "no dead-letter topic")
	case c.Workers < 1 || c.Workers > 4096:
		return config.Errorf("projector-workers", "want 1..4096, got %d", c.Workers)
	case c.MaxInFlight < c.Workers:
		return config.Errorf("projector-max-in-flight", "want at least the workers (%d), got %d", c.Workers, c.MaxInFlight)
	case c.CommitInterval <= 0:
		return config.Errorf("projector-commit-interval", "must be positive")
	case c.RecheckRecords < 0:
		return config.Errorf("recheck-records", "must not be negative, got %d", c.RecheckRecords)
	}
	return nil
}

type metrics struct {
	appended     prometheus.Counter
	skipped      prometheus.Counter
	deadLettered prometheus.Counter
	appendTime   prometheus.Histogram
	committed    *prometheus.GaugeVec
	lag          *prometheus.GaugeVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		appended: prometheus.NewCounter(prometheus.CounterOpts{Name: "flexstream_projector_events_appended_total", Help: "Events the event store acknowledged."}),
		skipped: prometheus.NewCounter(prometheus.CounterOpts{Name: "flexstream_projector_records_already_stored_total",
			Help: "Records whose event the store already held: redelivered after a restart, or sent twice (found by Kafka offset or event id)."}),
		deadLettered: prometheus.NewCounter(prometheus.CounterOpts{Name: "flexstream_projector_dead_letters_total", Help: "Records sent to the dead-letter topic."}),
		appendTime: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "flexstream_projector_append_seconds", Help: "Time of one append to the event store.",
			Buckets: []float64{.0005, .001, .002, .005, .01, .02, .05, .1, .25, .5, 1}}),
		committed: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "flexstream_projector_committed_offset", Help: "Last offset committed, by partition."}, []string{"partition"}),
		lag: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "flexstream_projector_consumer_lag",
			Help: "Records behind the end of the partition at the last fetch, by partition."}, []string{"partition"}),
	}
	if reg != nil {
		reg.MustRegister(m.appended, m.skipped, m.deadLettered, m.appendTime, m.committed, m.lag)
	}
	return m
}

// Run processes records until ctx ends (nil) or Kafka or the store fails
// for good. What was appended but not yet committed when it returns is
// appended again after a restart, as the same event id: the store keeps
// one copy.
func Run(ctx context.Context, cfg Config) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	p := &pipeline{cfg: cfg, log: cfg.Logger.Named("projector"), m: newMetrics(cfg.Registry),
		offsets: map[int]*partitionQueue{}, slots: make(chan struct{}, cfg.MaxInFlight)}
	workCtx, cancelWork := context.WithCancel(ctx)
	defer cancelWork()
	queues := make([]chan *item, cfg.Workers)
	var wg sync.WaitGroup
	errc := make(chan error, cfg.Workers+2)
	for i := range queues {
		queues[i] = make(chan *item, cfg.MaxInFlight/cfg.Workers+1)
		wg.Add(1)
		go func(q <-chan *item) {
			defer wg.Done()
			batch := make([]*item, 0, maxBatch)
			stored := newStoredIDs(storedIDsPerWorker)
			for it := range q {
				// Take what else is already waiting: a conversation's
				// events that arrived together become one append.
				batch = append(batch[:0], it)
			more:
				for len(batch) < maxBatch {
					select {
					case next, ok := <-q:
						if !ok {
							break more
						}
						batch = append(batch, next)
					default:
						break more
					}
				}
				if err := p.processBatch(workCtx, batch, stored); err != nil {
					errc <- err
					cancelWork()
					// Drain without processing: nothing after a failed
					// record of a key may be appended before it.
					for range q {
					}
					return
				}
			}
		}(queues[i])
	}
	committerDone := make(chan struct{})
	go func() {
		defer close(committerDone)
		t := time.NewTicker(cfg.CommitInterval)
		defer t.Stop()
		for {
			select {
			case <-workCtx.Done():
				return
			case <-t.C:
				if err := p.commit(workCtx); err != nil && workCtx.Err() == nil {
					errc <- err
					cancelWork()
					return
				}
			}
		}
	}()
	fetchErr := p.fetchLoop(workCtx, queues)
	for _, q := range queues {
		close(q)
	}
	wg.Wait()
	cancelWork()
	<-committerDone
	// Commit what finished, even on the way out: it spares re-appends.
	final, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	commitErr := p.commit(final)
	select {
	case err := <-errc:
		return err
	default:
	}
	if fetchErr != nil && ctx.Err() == nil {
		return fetchErr
	}
	if commitErr != nil && ctx.Err() == nil {
		return commitErr
	}
	return nil
}

type pipeline struct {
	cfg   Config
	log   *zap.Logger
	m     *metrics
	slots chan struct{}

	mu      sync.Mutex
	offsets map[int]*partitionQueue
}

// storedTail is the Kafka origin of a stream's last event at the start.
type storedTail struct {
	Topic     string `json:"kafkaTopic"`
	Partition int    `json:"kafkaPartition"`
	Offset    int64  `json:"kafkaOffset"`
}

// recheckWindow is how many records of a partition, after a start, are
// checked against the store: four times the in-flight bound, and never
// less than the default's, so a restart with a smaller bound still
// covers what an earlier run may have left uncommitted.
func recheckWindow(maxInFlight int) int { return 4 * max(maxInFlight, DefaultMaxInFlight) }

// maxBatch bounds the records a worker takes at once, and so the events
// of one append: a conversation's events that arrive together share one.
// It matches the embedded store's IndexEveryIDUpTo: a store finds every id
// of such an append exactly, so Twilio's retry of a webhook whose event
// sat in the middle of an earlier append is recognised even after a store
// restart (TestEndToEndKill9MidStream). KurrentDB finds ids other than an
// append's first one only in its cache of recent events.
const maxBatch = esstore.IndexEveryIDUpTo

// item is a fetched record on its way.
type item struct {
	msg     kafka.Message
	done    bool
	recheck bool // may have been appended before a restart
}

// partitionQueue holds a partition's records in fetch (offset) order
// until they and all before them are done.
type partitionQueue struct {
	items   []*item
	fetched int // records fetched since start
}

func (p *pipeline) fetchLoop(ctx context.Context, queues []chan *item) error {
	for {
		select {
		case p.slots <- struct{}{}:
		case <-ctx.Done():
			return nil
		}
		m, err := p.cfg.Source.Fetch(ctx)
		if err != nil {
			<-p.slots
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		p.m.lag.WithLabelValues(strconv.Itoa(m.Partition)).Set(float64(max(0, m.HighWaterMark-m.Offset-1)))
		it := &item{msg: m}
		p.mu.Lock()
		q := p.offsets[m.Partition]
		if q == nil {
			q = &partitionQueue{}
			p.offsets[m.Partition] = q
		}
		q.items = append(q.items, it)
		// A crash leaves at most MaxInFlight records of a partition
		// appended but not committed: only the first ones fetched after a
		// start can already be in the store.
		it.recheck = q.fetched < p.cfg.RecheckRecords
		q.fetched++
		p.mu.Unlock()
		h := fnv.New32a()
		h.Write(m.Key)
		select {
		case queues[int(h.Sum32()%uint32(len(queues)))] <- it:
		case <-ctx.Done():
			return nil
		}
	}
}

// commit stores, per partition, the offset of the last record before the
// first one not yet done.
func (p *pipeline) commit(ctx context.Context) error {
	var msgs []kafka.Message
	released := 0
	p.mu.Lock()
	for _, q := range p.offsets {
		n := 0
		for n < len(q.items) && q.items[n].done {
			n++
		}
		if n == 0 {
			continue
		}
		msgs = append(msgs, q.items[n-1].msg)
		clear(q.items[:n])
		q.items = q.items[n:]
		released += n
	}
	p.mu.Unlock()
	if len(msgs) == 0 {
		return nil
	}
	if err := p.cfg.Source.Commit(ctx, msgs...); err != nil {
		return err
	}
	for _, m := range msgs {
		p.m.committed.WithLabelValues(strconv.Itoa(m.Partition)).Set(float64(m.Offset))
	}
	for range released {
		<-p.slots
	}
	return nil
}

func (p *pipeline) markDone(it *item) {
	p.mu.Lock()
	it.done = true
	p.mu.Unlock()
}

// processBatch appends a worker's records: those of one stream together,
// in their order, as one append; what cannot be decoded is dead-lettered.
// A store that does not answer is retried, with backoff, for as long as
// ctx lasts: the records' keys wait, and so do their offsets.
func (p *pipeline) processBatch(ctx context.Context, items []*item, stored *storedIDs) error {
	type group struct {
		stream  string
		items   []*item
		events  []eventstore.Event
		ids     map[uuid.UUID]bool
		dups    []*item // records of an event already in the group
		recheck bool
	}
	var groups []*group
	byStream := map[string]*group{}
	for _, it := range items {
		m := it.msg
		rec := decode.Record{Topic: m.Topic, Partition: m.Partition, Offset: m.Offset, Key: m.Key, Value: m.Value, Headers: make(map[string]string, len(m.Headers))}
		for _, h := range m.Headers {
			rec.Headers[h.Key] = string(h.Value)
		}
		d, err := p.cfg.Decoder.Decode(rec)
		if err != nil {
			if err := p.deadLetter(ctx, m, err); err != nil {
				return err
			}
			p.markDone(it)
			continue
		}
		data, meta, err := domain.Encode(d.Event, d.Meta)
		if err != nil {
			return err
		}
		g := byStream[d.Stream]
		if g == nil {
			g = &group{stream: d.Stream, ids: map[uuid.UUID]bool{}}
			byStream[d.Stream] = g
			groups = append(groups, g)
		}
		if g.ids[d.ID] || stored.has(d.ID) {
			// The same Twilio event twice in one batch (a redelivery, or a
			// producer that sent it again), or one this worker stored
			// lately: the store checks an append's first id only, so
			// behind a new event of its stream it would be written again.
			g.dups = append(g.dups, it)
			continue
		}
		g.ids[d.ID] = true
		g.items = append(g.items, it)
		g.events = append(g.events, eventstore.Event{ID: d.ID, Type: d.Event.Type, Data: data, Metadata: meta})
		g.recheck = g.recheck || it.recheck
	}
	for _, g := range groups {
		if g.recheck {
			if err := p.dropStored(ctx, g.stream, &g.items, &g.events, stored); err != nil {
				return err
			}
		}
		if len(g.events) > 0 {
			if ok, err := p.appendGroup(ctx, g.stream, g.items, g.events, stored); err != nil || !ok {
				return err
			}
		}

		for _, it := range g.dups {
			p.markDone(it)
			p.m.skipped.Inc()
		}
		for _, it := range g.items {
			p.markDone(it)
		}
	}
	return nil
}

// recentStored is how many of a stream's last events dropStored compares
// a rechecked group with: twice what one append holds, so the group's
// records and the ones an earlier run appended just before them are all
// in view.
const recentStored = 2 * maxBatch

// dropStored removes the records the stream already holds. Two rules, on
// the stream's last events read now:
//   - by origin: its newest event's Kafka offset says how far an earlier
//     run got in this partition, and each key's records are appended in
//     order, so everything up to that offset is in;
//   - by event id: a record sent twice (a producer's retry, at a new
//     offset) is the event already stored. The store would ignore such a
//     record only as the first of an append: in a group after a new
//     event, KurrentDB (and the embedded store alike) would write it
//     again.
func (p *pipeline) dropStored(ctx context.Context, stream string, items *[]*item, events *[]eventstore.Event, seen *storedIDs) error {
	tail := storedTail{Offset: -1}
	stored := make(map[uuid.UUID]bool, recentStored)
	backoff := 50 * time.Millisecond
	for {
		clear(stored)
		newest := true
		err := p.cfg.Store.LastEvents(ctx, stream, recentStored, func(r eventstore.RecordedEvent) error {
			if newest {
				_ = json.Unmarshal(r.Metadata, &tail) // no origin: nothing is dropped by offset
				newest = false
			}
			stored[r.ID] = true
			return nil
		})
		if err == nil || errors.Is(err, eventstore.ErrStreamNotFound) || errors.Is(err, eventstore.ErrStreamDeleted) {
			break
		}
		if ctx.Err() != nil {
			return nil
		}
		p.log.Warn("reading a stream's last events failed; retrying", zap.String("stream", stream), zap.Error(err))
		select {
		case <-time.After(backoff):
		case <-ctx.Done():
			return nil
		}
		backoff = min(backoff*2, 5*time.Second)
	}
	keepItems, keepEvents := (*items)[:0:0], (*events)[:0:0]
	for i, it := range *items {
		m := it.msg
		if (m.Topic == tail.Topic && m.Partition == tail.Partition && m.Offset <= tail.Offset) || stored[(*events)[i].ID] {
			p.markDone(it) // already stored
			p.m.skipped.Inc()
			seen.add((*events)[i].ID)
			continue
		}
		keepItems, keepEvents = append(keepItems, it), append(keepEvents, (*events)[i])
	}
	*items, *events = keepItems, keepEvents
	return nil
}

// appendGroup appends one stream's events; false when ctx ended first.
func (p *pipeline) appendGroup(ctx context.Context, stream string, items []*item, events []eventstore.Event, stored *storedIDs) (bool, error) {
	backoff := 50 * time.Millisecond
	for {
		start := time.Now()
		res, err := p.cfg.Store.Append(ctx, stream, eventstore.Any, events...)
		p.m.appendTime.Observe(time.Since(start).Seconds())
		switch {
		case err == nil:
			for _, e := range events {
				stored.add(e.ID)
			}
			p.m.appended.Add(float64(len(events)))
			p.cfg.Counters.Appended.Add(int64(len(events)))
			for {
				last := p.cfg.Counters.LastPosition.Load()
				if res.Position <= last || p.cfg.Counters.LastPosition.CompareAndSwap(last, res.Position) {
					break
				}
			}
			return true, nil
		case errors.Is(err, eventstore.ErrStreamDeleted):
			// The stream was tombstoned on purpose; the records cannot go
			// there, and must not block their partition.
			for _, it := range items {
				if err := p.deadLetter(ctx, it.msg, err); err != nil {
					return false, err
				}
			}
			return true, nil
		case errors.Is(err, eventstore.ErrWrongExpectedVersion) && len(events) > 1:
			// The store matched the first event id to an earlier append
			// that differs from this one (a redelivery cut into other
			// batches): one at a time, each is recognised or written.
			for i := range events {
				if ok, err := p.appendGroup(ctx, stream, items[i:i+1], events[i:i+1], stored); err != nil || !ok {
					return ok, err
				}
			}
			return true, nil
		case ctx.Err() != nil:
			return false, nil
		}
		p.log.Warn("append failed; retrying", zap.String("stream", stream), zap.Int("events", len(events)), zap.Duration("backoff", backoff), zap.Error(err))
		select {
		case <-time.After(backoff):
		case <-ctx.Done():
			return false, nil
		}
		backoff = min(backoff*2, 5*time.Second)
	}
}

// storedIDsPerWorker is how many of the event ids it stored last a worker
// remembers (16 bytes each, and a map entry): a producer's retry comes
// within seconds, and a record sent again after a restart is found in
// the store instead (dropStored).
const storedIDsPerWorker = 4096

// storedIDs is a worker's memory of the event ids it stored last, oldest
// forgotten first. Records with one key go to one worker, so a record
// sent twice meets the memory of its first copy.
type storedIDs struct {
	ring []uuid.UUID
	next int
	set  map[uuid.UUID]struct{}
}

func newStoredIDs(n int) *storedIDs {
	return &storedIDs{ring: make([]uuid.UUID, 0, n), set: make(map[uuid.UUID]struct{}, n)}
}

func (s *storedIDs) has(id uuid.UUID) bool {
	_, ok := s.set[id]
	return ok
}

func (s *storedIDs) add(id uuid.UUID) {
	if s.has(id) {
		return
	}
	if len(s.ring) < cap(s.ring) {
		s.ring = append(s.ring, id)
	} else {
		delete(s.set, s.ring[s.next])
		s.ring[s.next] = id
		s.next = (s.next + 1) % len(s.ring)
	}
	s.set[id] = struct{}{}
}

// deadLetter publishes the record unchanged to the dead-letter topic, with
// why and where it came from; it returns only once Kafka has it.
func (p *pipeline) deadLetter(ctx context.Context, m kafka.Message, cause error) error {
	headers := append([]kafka.Header(nil), m.Headers...)
	reason := cause.Error()
	if len(reason) > 1000 {
		reason = reason[:1000]
	}
	headers = append(headers,
		kafka.Header{Key: HeaderDLQError, Value: []byte(reason)},
		kafka.Header{Key: HeaderDLQTopic, Value: []byte(m.Topic)},
		kafka.Header{Key: HeaderDLQPartition, Value: []byte(strconv.Itoa(m.Partition))},
		kafka.Header{Key: HeaderDLQOffset, Value: []byte(strconv.FormatInt(m.Offset, 10))},
		kafka.Header{Key: HeaderDLQAt, Value: []byte(time.Now().UTC().Format(time.RFC3339Nano))},
	)
	backoff := 50 * time.Millisecond
	for {
		err := p.cfg.DLQ.Publish(ctx, kafka.Message{Key: m.Key, Value: m.Value, Headers: headers})
		if err == nil {
			p.m.deadLettered.Inc()
			p.cfg.Counters.DeadLettered.Add(1)
			p.log.Warn("record dead-lettered", zap.String("dlq", p.cfg.DLQTopic), zap.String("topic", m.Topic), zap.Int("partition", m.Partition), zap.Int64("offset", m.Offset), zap.String("reason", reason))
			return nil
		}
		if ctx.Err() != nil {
			return nil
		}
		p.log.Warn("dead-letter publish failed; retrying", zap.Error(err))
		select {
		case <-time.After(backoff):
		case <-ctx.Done():
			return nil
		}
		backoff = min(backoff*2, 5*time.Second)
	}
}
