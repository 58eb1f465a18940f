// Package ingestbench measures webhook ingest — signed TaskRouter
// callbacks over real HTTP, checked, normalised and produced through the
// real producer to the in-process Kafka broker — next to the ceiling the
// Kafka client imposes: kafka-go single-record synchronous produces of the
// same records, from as many goroutines, in the same run. Throughput is a
// ratio to that ceiling, so it means the same on any machine; latency is
// measured open-loop, from each request's scheduled send time.
package ingestbench

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/flexstream/flexstream/ingest"
	"github.com/flexstream/flexstream/internal/benchkit"
	"github.com/flexstream/flexstream/internal/config"
	"github.com/flexstream/flexstream/internal/embedkafka"
	"github.com/flexstream/flexstream/internal/kafkaio"
	"github.com/flexstream/flexstream/internal/logging"
	"github.com/flexstream/flexstream/internal/twiliotest"
	"github.com/flexstream/flexstream/schemas"
)

// Config sizes the run.
type Config struct {
	DataDir      string        // the broker's data directory; a fresh one
	SyncWrites   bool          // the broker fsyncs each batch before acknowledging it (as `flexstream up`)
	BatchTimeout time.Duration // the producer's, the same for both sides
	Partitions   int           // of the topic
	Requests     int           // distinct signed callbacks; webhooks (and raw records) per throughput phase
	Clients      int           // concurrent HTTP clients, and raw producer goroutines (64)
	Rounds       int           // each throughput phase runs this many times per side; medians are reported
	Rate         float64       // latency phase: webhooks per second, open loop (5,000); 0 skips the phase
	Duration     time.Duration // latency phase length
	Senders      int           // latency phase: concurrent senders, enough to keep the schedule
	// SenderCommand starts a process that runs the webhook senders (with
	// ChildEnv set, it must call RunSender); empty runs them in this
	// process, beside ingest.
	SenderCommand []string
	Logger        *zap.Logger
	Out           io.Writer
}

// Defaults are the shapes, sized for a 2-core machine.
func Defaults() Config {
	return Config{
		SyncWrites: true, BatchTimeout: kafkaio.DefaultBatchTimeout, Partitions: 1,
		Requests: 20_000, Clients: 64, Rounds: 3,
		Rate: 5000, Duration: 10 * time.Second, Senders: 256,
	}
}

// Validate names the bad field (as its command-line flag).
func (c Config) Validate() error {
	switch {
	case c.DataDir == "":
		return config.Errorf("data", "a directory is required")
	case c.BatchTimeout < 0 || c.BatchTimeout > time.Second:
		return config.Errorf("kafka-batch-timeout", "want 0..1s, got %s", c.BatchTimeout)
	case c.Partitions < 1:
		return config.Errorf("kafka-partitions", "want at least 1, got %d", c.Partitions)
	case c.Requests < 1:
		return config.Errorf("requests", "want at least 1, got %d", c.Requests)
	case c.Clients < 1 || c.Clients > ingest.DefaultMaxInFlight:
		return config.Errorf("clients", "want 1..%d (ingest's in-flight limit), got %d", ingest.DefaultMaxInFlight, c.Clients)
	case c.Rounds < 1:
		return config.Errorf("rounds", "want at least 1, got %d", c.Rounds)
	case c.Rate < 0 || math.IsNaN(c.Rate) || math.IsInf(c.Rate, 0):
		return config.Errorf("rate", "want a rate ≥ 0 (0 skips the latency phase), got %v", c.Rate)
	case c.Rate > 0 && c.Duration <= 0:
		return config.Errorf("duration", "must be positive, got %s", c.Duration)
	case c.Rate > 0 && (c.Senders < 1 || c.Senders > ingest.DefaultMaxInFlight):
		return config.Errorf("senders", "want 1..%d (ingest's in-flight limit), got %d", ingest.DefaultMaxInFlight, c.Senders)
	}
	return nil
}

// Result of one throughput phase.
type Result struct {
	Requests int // webhooks, or records
	Elapsed  time.Duration
}

// Rate is requests per second.
func (r Result) Rate() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.Requests) / r.Elapsed.Seconds()
}

// Latency is the open-loop phase: each latency runs from the request's
// scheduled send time to its answer, so a request sent late because the
// senders (or the machine) fell behind counts its wait too.
type Latency struct {
	Rate                     float64       // asked for, webhooks/s
	Requests                 int           // sent, every one answered 200
	Elapsed                  time.Duration // first scheduled send to last answer
	P50, P90, P99, P999, Max time.Duration
	// LagP99 and LagMax are how late sends started after their scheduled
	// time: what the client side (senders, timers, a busy CPU) added.
	LagP99, LagMax time.Duration
}

// Achieved is the answered rate, webhooks/s.
func (l Latency) Achieved() float64 {
	if l.Elapsed <= 0 {
		return 0
	}
	return float64(l.Requests) / l.Elapsed.Seconds()
}

// Report is the whole run.
type Report struct {
	Clients     int
	Raw, Ingest Result // medians over rounds
	Rounds      int    // rounds run
	// Ratio is the median over rounds of ingest's throughput over raw's in
	// the same round: phases next to each other in time share the
	// machine's drift, which medians taken side by side do not cancel.
	Ratio   float64
	Latency *Latency // nil when skipped
	// RawLatency is raw kafka-go's at the same rate: the floor under
	// ingest's.
	RawLatency *Latency
}

func sides(round int) []string {
	if round%2 == 0 {
		return []string{"ingest", "raw"}
	}
	return []string{"raw", "ingest"}
}

// Targets of the issue.
const (
	TargetRatio = 0.7
	TargetP99   = 10 * time.Millisecond
)

// callback is one signed TaskRouter callback and the record ingest makes
// of it.
type callback struct {
	body []byte
	sig  string
	rec  kafka.Message
}

// Run starts the broker, the producer and ingest, measures, and closes
// them all. Throughput phases alternate raw and ingest Rounds times, and
// each side's median is kept: this machine's speed drifts by tens of
// percent from one second to the next, and alternating exposes both sides
// to the same drift. The latency phase runs last.
func Run(ctx context.Context, cfg Config) (rep Report, err error) {
	if err := cfg.Validate(); err != nil {
		return rep, err
	}
	if cfg.Out == nil {
		cfg.Out = io.Discard
	}
	log := cfg.Logger
	if log == nil {
		log = zap.NewNop()
	}
	log = logging.AtLeast(log, zapcore.WarnLevel)

	broker, err := embedkafka.Start(embedkafka.Config{Addr: "127.0.0.1:0", DataDir: cfg.DataDir, SyncWrites: cfg.SyncWrites, Logger: log})
	if err != nil {
		return rep, err
	}
	defer broker.Close()
	brokers := []string{broker.Addr()}
	topic := schemas.DefaultTopic
	setup, cancel := context.WithTimeout(ctx, time.Minute)
	_, err = kafkaio.EnsureTopics(setup, brokers, []kafkaio.TopicSpec{{Name: topic, Partitions: cfg.Partitions, ReplicationFactor: 1}}, log)
	cancel()
	if errors.Is(err, kafkaio.ErrPartitionMismatch) {
		fmt.Fprintf(cfg.Out, "note: %v\n", err)
	} else if err != nil {
		return rep, err
	}
	producer, err := kafkaio.NewProducer(kafkaio.ProducerConfig{Brokers: brokers, Topic: topic, BatchTimeout: cfg.BatchTimeout, Logger: log})
	if err != nil {
		return rep, err
	}
	defer func() {
		if cerr := producer.Close(); cerr != nil {
			err = errors.Join(err, cerr)
		}
	}()
	srv, err := ingest.Start(ingest.Config{
		Addr:       "127.0.0.1:0",
		AuthTokens: []string{twiliotest.AuthToken},
		Publisher:  producer,
		Ping:       func(ctx context.Context) error { return kafkaio.Ping(ctx, brokers, topic) },
		Logger:     log,
	})
	if err != nil {
		return rep, err
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if serr := srv.Shutdown(sctx); serr != nil {
			err = errors.Join(err, serr)
		}
	}()
	client, closeClient := benchkit.HTTPClient(max(cfg.Clients, cfg.Senders))
	defer closeClient()
	webhookURL := srv.URL() + ingest.RouteTaskRouter.Path()

	cbs, err := callbacks(webhookURL, cfg.Requests, true)
	if err != nil {
		return rep, err
	}
	send := &senders{command: cfg.SenderCommand, url: webhookURL, cbs: cbs, client: client}
	// Warm up both paths (connections, metadata, buffers) unmeasured.
	warm := cbs[:min(len(cbs), cfg.Clients*8)]
	if _, err := rawPhase(ctx, producer, warm, cfg.Clients); err != nil {
		return rep, fmt.Errorf("warm-up: %w", err)
	}
	if _, err := send.throughput(ctx, len(warm), cfg.Clients); err != nil {
		return rep, fmt.Errorf("warm-up: %w", err)
	}

	var raws, ingests []Result
	var ratios []float64
	for round := 1; round <= cfg.Rounds; round++ {
		// Odd rounds measure raw first, even rounds ingest first, so that
		// neither side always runs on the fuller broker.
		var r, in Result
		for _, side := range sides(round) {
			switch side {
			case "raw":
				if r, err = rawPhase(ctx, producer, cbs, cfg.Clients); err != nil {
					return rep, err
				}
				fmt.Fprintf(cfg.Out, "round %d raw kafka-go, single-record sync produces, %d goroutines: %8.0f records/s\n", round, cfg.Clients, r.Rate())
			case "ingest":
				if in, err = send.throughput(ctx, len(cbs), cfg.Clients); err != nil {
					return rep, err
				}
				fmt.Fprintf(cfg.Out, "round %d ingest, signed TaskRouter callbacks over HTTP, %d clients: %8.0f webhooks/s\n", round, cfg.Clients, in.Rate())
			}
		}
		raws, ingests = append(raws, r), append(ingests, in)
		ratios = append(ratios, in.Rate()/r.Rate())
		fmt.Fprintf(cfg.Out, "round %d ratio ingest/raw: %.2f\n", round, ratios[len(ratios)-1])
	}
	rep = Report{Clients: cfg.Clients, Raw: median(raws), Ingest: median(ingests), Rounds: cfg.Rounds, Ratio: benchkit.MedianFloat(ratios)}

	if cfg.Rate > 0 {
		rl, err := latencyPhase(ctx, func(i int) error { return producer.Publish(ctx, cbs[i%len(cbs)].rec) }, cfg.Rate, cfg.Duration, cfg.Senders)
		if err != nil {
			return rep, err
		}
		rep.RawLatency = &rl
		fmt.Fprintf(cfg.Out, "raw kafka-go latency, open loop at %.0f records/s for %s: p50 %s p90 %s p99 %s p99.9 %s max %s\n",
			rl.Rate, cfg.Duration, ms(rl.P50), ms(rl.P90), ms(rl.P99), ms(rl.P999), ms(rl.Max))
		l, err := send.latency(ctx, cfg.Rate, cfg.Duration, cfg.Senders)
		if err != nil {
			return rep, err
		}
		rep.Latency = &l
		fmt.Fprintf(cfg.Out, "latency, open loop at %.0f webhooks/s for %s, %d senders: %d webhooks, achieved %.0f/s; p50 %s p90 %s p99 %s p99.9 %s max %s; send lag p99 %s max %s\n",
			l.Rate, cfg.Duration, cfg.Senders, l.Requests, l.Achieved(), ms(l.P50), ms(l.P90), ms(l.P99), ms(l.P999), ms(l.Max), ms(l.LagP99), ms(l.LagMax))
		if l.LagP99 > TargetP99 {
			fmt.Fprintf(cfg.Out, "note: sends started late (lag p99 %s): the %d senders were all waiting for answers, or starved of CPU; the latencies include that wait, as open-loop accounting requires\n", ms(l.LagP99), cfg.Senders)
		}
	}
	return rep, nil
}

// callbacks builds n distinct signed TaskRouter callbacks across many
// conversations — request i is conversation i mod c, the next event type
// of its lifecycle — and the record ingest makes of each. Signing and
// normalising happen here, outside the measurement.
func callbacks(webhookURL string, n int, records bool) ([]callback, error) {
	types := twiliotest.TaskRouterEventTypes()
	convs := max(1, (n+len(types)-1)/len(types))
	ids := make([]twiliotest.IDs, convs)
	for c := range ids {
		ids[c] = twiliotest.NewIDs(int64(c) + 1)
	}
	now := time.Now()
	out := make([]callback, n)
	for i := range out {
		c := i % convs
		typ := types[(i/convs)%len(types)]
		form := twiliotest.TaskRouterEvent(ids[c], typ, twiliotest.WithEventSid(ids[c].SID(twiliotest.PrefixEvent, fmt.Sprintf("%s/%d", typ, i))))
		body := []byte(form.Encode())
		out[i] = callback{body: body, sig: twiliotest.Sign(twiliotest.AuthToken, webhookURL, form)}
		if !records {
			continue
		}
		norm, err := ingest.Normalise(ingest.Delivery{Route: ingest.RouteTaskRouter, Body: body, Traceparent: traceparent(), ReceivedAt: now})
		if err != nil {
			return nil, fmt.Errorf("callback %d (%s): %w", i, typ, err)
		}
		if len(norm.Records) != 1 {
			return nil, fmt.Errorf("callback %d (%s): %d records, want 1", i, typ, len(norm.Records))
		}
		out[i].rec = norm.Records[0]
	}
	return out, nil
}

// traceparent is a fresh W3C trace context, as ingest makes for a request
// without one.
func traceparent() string {
	var b [24]byte
	_, _ = rand.Read(b[:])
	return "00-" + hex.EncodeToString(b[:16]) + "-" + hex.EncodeToString(b[16:]) + "-01"
}

// parallel runs do(i) for every i < n from workers goroutines, and stops at
// the first error.
func parallel(n, workers int, do func(i int) error) (Result, error) {
	var next atomic.Int64
	var failed atomic.Bool
	var once sync.Once
	var first error
	var wg sync.WaitGroup
	start := time.Now()
	for range min(workers, n) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !failed.Load() {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				if err := do(i); err != nil {
					once.Do(func() { first = err })
					failed.Store(true)
					return
				}
			}
		}()
	}
	wg.Wait()
	if first != nil {
		return Result{}, first
	}
	return Result{Requests: n, Elapsed: time.Since(start)}, nil
}

func rawPhase(ctx context.Context, p ingest.Publisher, cbs []callback, workers int) (Result, error) {
	r, err := parallel(len(cbs), workers, func(i int) error { return p.Publish(ctx, cbs[i].rec) })
	if err != nil {
		return r, fmt.Errorf("raw produce: %w", err)
	}
	return r, nil
}

func ingestPhase(ctx context.Context, c *http.Client, webhookURL string, cbs []callback, clients int) (Result, error) {
	return parallel(len(cbs), clients, func(i int) error { return post(ctx, c, webhookURL, cbs[i]) })
}

// post sends one callback as Twilio does and wants 200.
func post(ctx context.Context, c *http.Client, webhookURL string, cb callback) error {
	return benchkit.PostWebhook(ctx, c, webhookURL, cb.body, cb.sig, "")
}

// latencyPhase sends rate webhooks/s for d on a fixed schedule: request i
// is due at start + i/rate whatever happened to the others, and its
// latency runs from then. Each sender takes the next request, waits for
// its time and sends it; with enough senders, one slow answer never delays
// the next send (no coordinated omission), and when they all are busy the
// wait is counted.
func latencyPhase(ctx context.Context, send func(i int) error, rate float64, d time.Duration, senders int) (Latency, error) {
	n := max(1, int(rate*d.Seconds()))
	lat := make([]time.Duration, n)
	lag := make([]time.Duration, n)
	interval := float64(time.Second) / rate
	start := time.Now().Add(10 * time.Millisecond)
	var last atomic.Int64 // unix nanoseconds of the last answer
	r, err := parallel(n, senders, func(i int) error {
		at := start.Add(time.Duration(float64(i) * interval))
		if wait := time.Until(at); wait > 0 {
			t := time.NewTimer(wait)
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
				return ctx.Err()
			}
		}
		lag[i] = time.Since(at)
		if err := send(i); err != nil {
			return fmt.Errorf("latency phase, request %d: %w", i, err)
		}
		now := time.Now()
		lat[i] = now.Sub(at)
		for {
			prev := last.Load()
			if now.UnixNano() <= prev || last.CompareAndSwap(prev, now.UnixNano()) {
				break
			}
		}
		return nil
	})
	if err != nil {
		return Latency{}, err
	}
	slices.Sort(lat)
	slices.Sort(lag)
	return Latency{
		Rate: rate, Requests: r.Requests, Elapsed: time.Unix(0, last.Load()).Sub(start),
		P50: benchkit.Quantile(lat, 0.50), P90: benchkit.Quantile(lat, 0.90), P99: benchkit.Quantile(lat, 0.99), P999: benchkit.Quantile(lat, 0.999), Max: lat[n-1],
		LagP99: benchkit.Quantile(lag, 0.99), LagMax: lag[n-1],
	}, nil
}

func median(rs []Result) Result {
	if len(rs) == 0 {
		return Result{}
	}
	sorted := append([]Result(nil), rs...)
	sort.Slice(sorted, func(a, b int) bool { return sorted[a].Rate() < sorted[b].Rate() })
	return sorted[len(sorted)/2]
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2f ms", float64(d)/float64(time.Millisecond)) }

// Summary prints the figures against the targets and says whether all hold.
func (r Report) Summary(w io.Writer) bool {
	ok := true
	fmt.Fprintln(w, "| measure | raw kafka-go | ingest | ratio (median of rounds) | target | |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|")
	pass := r.Ratio >= TargetRatio
	ok = ok && pass
	fmt.Fprintf(w, "| throughput, %d concurrent (median of %d) | %.0f records/s | %.0f webhooks/s | %.3f | ≥ %.1f | %s |\n",
		r.Clients, r.Rounds, r.Raw.Rate(), r.Ingest.Rate(), r.Ratio, TargetRatio, verdict(pass))
	if l := r.Latency; l != nil {
		pass := l.P99 < TargetP99
		ok = ok && pass
		raw99, rawRest := "", ""
		if rl := r.RawLatency; rl != nil {
			raw99 = ms(rl.P99)
			rawRest = fmt.Sprintf("%s / %s / %s / %s", ms(rl.P50), ms(rl.P90), ms(rl.P999), ms(rl.Max))
		}
		fmt.Fprintf(w, "| p99 latency at %.0f webhooks/s (achieved %.0f/s) | %s | %s | | < %s | %s |\n", l.Rate, l.Achieved(), raw99, ms(l.P99), ms(TargetP99), verdict(pass))
		fmt.Fprintf(w, "| p50 / p90 / p99.9 / max | %s | %s / %s / %s / %s | | | |\n", rawRest, ms(l.P50), ms(l.P90), ms(l.P999), ms(l.Max))
	}
	return ok
}

func verdict(ok bool) string {
	if ok {
		return "met"
	}
	return "NOT met"
}
