package projectorbench

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime/pprof"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/flexstream/flexstream/internal/benchkit"
	"github.com/flexstream/flexstream/internal/embedkafka"
	"github.com/flexstream/flexstream/internal/esserver"
	"github.com/flexstream/flexstream/internal/eventstore"
	"github.com/flexstream/flexstream/internal/kafkaio"
	"github.com/flexstream/flexstream/internal/logging"
	"github.com/flexstream/flexstream/projector/decode"
	"github.com/flexstream/flexstream/projector/pipeline"
	"github.com/flexstream/flexstream/projector/readmodel"
	"github.com/flexstream/flexstream/schemas"
)

// Throughput is Kafka → event store against the store alone.
type Throughput struct {
	Events, Writers, Workers, Rounds int
	ReadModels                       bool
	Store, Projector                 Result // medians over rounds
	// Ratio is the median over rounds of the projector's rate over the
	// store's in the same round: phases next to each other in time share
	// the machine's drift, which medians taken side by side do not cancel.
	Ratio float64
}

// servers are the embedded broker and event store, as `up` runs them.
type servers struct {
	broker  *embedkafka.Broker
	brokers []string
	store   *esserver.Server
	es      *eventstore.Client
}

func startServers(ctx context.Context, cfg Config, dir string) (*servers, error) {
	for _, sub := range []string{"kafka", "eventstore"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o700); err != nil {
			return nil, err
		}
	}
	s := &servers{}
	var err error
	s.broker, err = embedkafka.Start(embedkafka.Config{Addr: "127.0.0.1:0", DataDir: filepath.Join(dir, "kafka"), SyncWrites: cfg.SyncWrites, Logger: cfg.Logger})
	if err != nil {
		return nil, err
	}
	s.brokers = []string{s.broker.Addr()}
	s.store, err = esserver.Start(ctx, esserver.Config{Addr: "127.0.0.1:0", DataDir: filepath.Join(dir, "eventstore"), Logger: cfg.Logger})
	if err != nil {
		s.close()
		return nil, err
	}
	// The client warns of every subscription the bench ends on purpose.
	s.es, err = eventstore.Connect(ctx, eventstore.Config{ConnString: s.store.ConnectionString(), ConnectTimeout: 30 * time.Second, Logger: logging.AtLeast(cfg.Logger, zapcore.ErrorLevel)})
	if err != nil {
		s.close()
		return nil, err
	}
	return s, nil
}

func (s *servers) topics(ctx context.Context, topic string, log *zap.Logger) error {
	setup, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	_, err := kafkaio.EnsureTopics(setup, s.brokers, []kafkaio.TopicSpec{
		{Name: topic, Partitions: 1, ReplicationFactor: 1},
		{Name: topic + schemas.DLQSuffix, Partitions: 1, ReplicationFactor: 1},
	}, log)
	return err
}

func (s *servers) close() {
	if s.es != nil {
		_ = s.es.Close()
	}
	if s.store != nil {
		_ = s.store.Close()
	}
	if s.broker != nil {
		s.broker.Close()
	}
}

func sides(round int) []string {
	if round%2 == 0 {
		return []string{"projector", "store"}
	}
	return []string{"store", "projector"}
}

// runThroughput alternates the store alone and the projector, Rounds
// times, each on a workload of its own (fresh conversations, fresh topic
// and consumer group): the same event store serves both, so both see it
// growing.
func runThroughput(ctx context.Context, cfg Config, dir string) (Throughput, error) {
	t := Throughput{Events: cfg.Events, Writers: cfg.Writers, Workers: cfg.Workers, Rounds: cfg.Rounds, ReadModels: cfg.ReadModels}
	srv, err := startServers(ctx, cfg, dir)
	if err != nil {
		return t, err
	}
	defer srv.close()
	dec, err := newDecoder()
	if err != nil {
		return t, err
	}
	rmDir := filepath.Join(dir, "readmodel") // kept across rounds, as the projector's
	var stores, projs []Result
	var ratios []float64
	for round := 1; round <= cfg.Rounds; round++ {
		var st, pr Result
		for _, side := range sides(round) {
			seed := int64(round)*100_000_000 + 1
			if side == "projector" {
				seed += 50_000_000
			}
			topic := fmt.Sprintf("%s.bench-r%d", schemas.DefaultTopic, round)
			var recs []kafka.Message
			var decoded []decode.Decoded
			setup(ctx, func() {
				if recs, err = records(webhooks(seed, cfg.Events), time.Now()); err == nil {
					decoded, err = decodeAll(dec, topic, recs)
				}
			})
			if err != nil {
				return t, err
			}
			switch side {
			case "store":
				if st, err = storePhase(ctx, srv.es, decoded, cfg.Writers, fmt.Sprintf("r%d", round)); err != nil {
					return t, err
				}
				fmt.Fprintf(cfg.Out, "round %d event store alone, single-event appends, %d writers: %8.0f events/s; %s CPU/event, %.2f cores busy\n", round, cfg.Writers, st.Rate(), us(st.CPUPerEvent()), st.Cores())
			case "projector":
				want := 0
				for _, d := range decoded {
					if projected(d.Stream) {
						want++
					}
				}
				var rm time.Duration
				if pr, rm, err = projectorPhase(ctx, cfg, srv, dec, recs, topic, fmt.Sprintf("flexstream-bench-r%d", round), rmDir, want); err != nil {
					return t, err
				}
				extra := ""
				if cfg.ReadModels {
					extra = fmt.Sprintf(" (read models: %d events folded %s after the first fetch)", want, rm.Round(time.Millisecond))
				}
				fmt.Fprintf(cfg.Out, "round %d projector, Kafka → event store, %d workers:          %8.0f events/s; %s CPU/event, %.2f cores busy%s\n", round, cfg.Workers, pr.Rate(), us(pr.CPUPerEvent()), pr.Cores(), extra)
			}
		}
		stores, projs = append(stores, st), append(projs, pr)
		ratios = append(ratios, pr.Rate()/st.Rate())
		fmt.Fprintf(cfg.Out, "round %d ratio projector/store: %.3f\n", round, ratios[len(ratios)-1])
	}
	t.Store, t.Projector, t.Ratio = median(stores), median(projs), benchkit.MedianFloat(ratios)
	return t, nil
}

// storePhase appends the decoded events' data and metadata, one event per
// append, from writers goroutines each on a stream of its own.
func storePhase(ctx context.Context, es *eventstore.Client, decoded []decode.Decoded, writers int, run string) (Result, error) {
	events := make([]eventstore.Event, len(decoded))
	for i, d := range decoded {
		e, err := StoreEvent(d)
		if err != nil {
			return Result{}, err
		}
		e.ID = uuid.New()
		events[i] = e
	}
	var next atomic.Int64
	var failed atomic.Value
	var wg sync.WaitGroup
	start, cpu := time.Now(), cpuTime()
	for w := range min(writers, len(events)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			stream := fmt.Sprintf("benchstore-%s-%d", run, w)
			for failed.Load() == nil {
				i := int(next.Add(1) - 1)
				if i >= len(events) {
					return
				}
				if _, err := es.Append(ctx, stream, eventstore.Any, events[i]); err != nil {
					failed.Store(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if err, ok := failed.Load().(error); ok {
		return Result{}, fmt.Errorf("store appends: %w", err)
	}
	return Result{Events: len(events), Elapsed: time.Since(start), CPU: cpuTime() - cpu}, nil
}

// timedSource notes when the first record was fetched.
type timedSource struct {
	pipeline.Source
	first    atomic.Int64 // unix ns
	firstCPU atomic.Int64
}

func (s *timedSource) Fetch(ctx context.Context) (kafka.Message, error) {
	m, err := s.Source.Fetch(ctx)
	if err == nil && s.first.CompareAndSwap(0, time.Now().UnixNano()) {
		s.firstCPU.Store(int64(cpuTime()))
	}
	return m, err
}

// countingStore notes when the n-th append was acknowledged.
type countingStore struct {
	pipeline.Appender
	n       int64
	count   atomic.Int64
	last    atomic.Int64 // unix ns
	lastCPU atomic.Int64
	done    chan struct{}
	once    sync.Once
}

func (s *countingStore) Append(ctx context.Context, stream string, exp eventstore.Expected, events ...eventstore.Event) (eventstore.AppendResult, error) {
	r, err := s.Appender.Append(ctx, stream, exp, events...)
	// Events, not appends: one append may carry several of a stream's.
	if err == nil && s.count.Add(int64(len(events))) >= s.n {
		s.once.Do(func() {
			s.last.Store(time.Now().UnixNano())
			s.lastCPU.Store(int64(cpuTime()))
			close(s.done)
		})
	}
	return r, err
}

// countingDLQ counts dead letters: there must be none.
type countingDLQ struct {
	pipeline.Publisher
	n atomic.Int64
}

func (d *countingDLQ) Publish(ctx context.Context, msgs ...kafka.Message) error {
	d.n.Add(int64(len(msgs)))
	return d.Publisher.Publish(ctx, msgs...)
}

// projectorPhase produces recs to a fresh topic, then runs the pipeline
// (and the read models, when asked) as the projector wires them, and times
// from the first record fetched to the last append acknowledged. The read
// models' time to fold every projected event is returned beside.
func projectorPhase(ctx context.Context, cfg Config, srv *servers, dec *decode.Decoder, recs []kafka.Message, topic, group, rmDir string, projectedEvents int) (Result, time.Duration, error) {
	if err := srv.topics(ctx, topic, cfg.Logger); err != nil {
		return Result{}, 0, err
	}
	if err := produce(ctx, srv.brokers, topic, recs, cfg.Logger); err != nil {
		return Result{}, 0, err
	}
	consumer, err := kafkaio.NewConsumer(kafkaio.ConsumerConfig{Brokers: srv.brokers, GroupID: group, Topics: []string{topic}, Logger: cfg.Logger})
	if err != nil {
		return Result{}, 0, err
	}
	defer consumer.Close()
	dlqProducer, err := kafkaio.NewProducer(kafkaio.ProducerConfig{Brokers: srv.brokers, Topic: topic + schemas.DLQSuffix, Logger: cfg.Logger})
	if err != nil {
		return Result{}, 0, err
	}
	defer dlqProducer.Close()
	src := &timedSource{Source: consumer}
	store := &countingStore{Appender: srv.es, n: int64(len(recs)), done: make(chan struct{})}
	dlq := &countingDLQ{Publisher: dlqProducer}

	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	errc := make(chan error, 2)
	var applied *gathered
	if cfg.ReadModels {
		rm, err := readmodel.Open(rmDir)
		if err != nil {
			return Result{}, 0, err
		}
		defer rm.Close()
		reg := prometheus.NewRegistry()
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := readmodel.Run(runCtx, readmodel.RunConfig{Store: rm, Events: srv.es, Feed: readmodel.NewFeed(), Registry: reg, Logger: cfg.Logger}); err != nil && runCtx.Err() == nil {
				errc <- fmt.Errorf("read models: %w", err)
			}
		}()
		applied = &gathered{reg: reg, name: "flexstream_projection_events_applied_total"}
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		err := pipeline.Run(runCtx, pipeline.Config{
			Source: src, Decoder: dec, Store: store, DLQ: dlq, DLQTopic: topic + schemas.DLQSuffix,
			Workers: cfg.Workers, Logger: cfg.Logger,
		})
		if err != nil {
			errc <- fmt.Errorf("pipeline: %w", err)
		}
	}()
	stop := func() {
		cancel()
		wg.Wait()
	}
	timeout := time.NewTimer(max(2*time.Minute, time.Duration(len(recs))*5*time.Millisecond))
	defer timeout.Stop()
	select {
	case <-store.done:
	case err := <-errc:
		stop()
		return Result{}, 0, err
	case <-timeout.C:
		stop()
		return Result{}, 0, fmt.Errorf("pipeline: %d of %d events appended before the time ran out", store.count.Load(), len(recs))
	case <-ctx.Done():
		stop()
		return Result{}, 0, ctx.Err()
	}
	res := Result{Events: len(recs), Elapsed: time.Duration(store.last.Load() - src.first.Load()), CPU: time.Duration(store.lastCPU.Load() - src.firstCPU.Load())}
	var rmTime time.Duration
	if applied != nil {
		// Untimed for the pipeline, but the next phase must not share the
		// machine with a read model still catching up.
		for {
			n := applied.value()
			if n >= float64(projectedEvents) {
				rmTime = time.Since(time.Unix(0, src.first.Load()))
				break
			}
			select {
			case err := <-errc:
				stop()
				return Result{}, 0, err
			case <-timeout.C:
				stop()
				return Result{}, 0, fmt.Errorf("read models: %.0f of %d events folded before the time ran out", n, projectedEvents)
			case <-time.After(5 * time.Millisecond):
			}
		}
	}
	stop()
	select {
	case err := <-errc:
		return Result{}, 0, err
	default:
	}
	if n := dlq.n.Load(); n > 0 {
		return Result{}, 0, fmt.Errorf("pipeline: %d records dead-lettered", n)
	}
	return res, rmTime, nil
}

// setup runs the bench's own preparation with the profiler label
// phase=setup, so that a profile can leave it out (pprof -tagignore
// phase=setup).
func setup(ctx context.Context, fn func()) {
	pprof.Do(ctx, pprof.Labels("phase", "setup"), func(context.Context) { fn() })
}

func us(d time.Duration) string { return fmt.Sprintf("%.0f µs", float64(d)/float64(time.Microsecond)) }

// gathered reads a counter from a registry by name (0 until registered).
type gathered struct {
	reg  *prometheus.Registry
	name string
}

func (g *gathered) value() float64 {
	mfs, err := g.reg.Gather()
	if err != nil {
		return 0
	}
	for _, mf := range mfs {
		if mf.GetName() == g.name && len(mf.GetMetric()) > 0 {
			return mf.GetMetric()[0].GetCounter().GetValue()
		}
	}
	return 0
}

// produce writes recs to topic, in order, in batches.
func produce(ctx context.Context, brokers []string, topic string, recs []kafka.Message, log *zap.Logger) (err error) {
	p, err := kafkaio.NewProducer(kafkaio.ProducerConfig{Brokers: brokers, Topic: topic, Logger: log})
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, p.Close()) }()
	const batch = 1000
	for i := 0; i < len(recs); i += batch {
		if err := p.Publish(ctx, recs[i:min(i+batch, len(recs))]...); err != nil {
			return fmt.Errorf("produce: %w", err)
		}
	}
	return nil
}
