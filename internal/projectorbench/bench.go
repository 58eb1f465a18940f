// Package projectorbench measures the projector against the issue's
// targets, on the embedded servers `flexstream up` runs (the in-process
// Kafka broker with synchronous writes, one partition; the embedded event
// store with fsync):
//
//   - throughput: Kafka → event store through the real pipeline (consumer
//     group, decode, append, offset commits), as a ratio to the store's own
//     single-event append rate through the same client, with as many
//     concurrent writers, in the same run;
//   - fold: the pure fold of decoded events into in-memory views;
//   - latency: a signed webhook → ingest → Kafka → projector → event store
//     → read model → the query API's live feed, open loop;
//   - memory: resident memory of a read model holding a million
//     conversation views, filled through the real projection.
package projectorbench

import (
	"context"
	"fmt"
	"io"
	"math"
	"path/filepath"
	"slices"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/flexstream/flexstream/internal/config"
	"github.com/flexstream/flexstream/internal/logging"
	"github.com/flexstream/flexstream/projector/pipeline"
)

// Parts of the run, for Config.Only.
const (
	PartThroughput = "throughput"
	PartFold       = "fold"
	PartLatency    = "latency"
	PartMemory     = "memory"
)

// Parts are every part, in the order they run.
var Parts = []string{PartThroughput, PartFold, PartLatency, PartMemory}

// Config sizes the run.
type Config struct {
	DataDir    string // a fresh directory; each part works in a directory of its own under it
	SyncWrites bool   // the broker fsyncs each batch before acknowledging it (as `flexstream up`)
	Only       string // one part only; empty runs them all
	Rounds     int    // throughput and fold run this many times; medians are reported

	// Throughput.
	Events     int  // records per round (distinct conversations, full lifecycles)
	Writers    int  // the store's own rate: concurrent single-event appenders on distinct streams
	Workers    int  // the pipeline's workers (the projector's default)
	ReadModels bool // run the read models beside the pipeline, as the projector does

	// Fold.
	FoldConversations int           // conversations whose events are folded
	FoldDuration      time.Duration // time folded per round (at least one pass)

	// Latency.
	Rate                 float64       // webhooks per second, open loop
	Duration             time.Duration // how long they are sent
	Senders              int           // concurrent senders, enough to keep the schedule
	LatencyConversations int           // conversations the webhooks go to, in turn
	Drain                time.Duration // longest wait, after the last send, for the last changes to show

	// Memory.
	Conversations int // conversation views put in the read model

	// ChildCommand starts a process that runs the webhook senders and the
	// memory fill (with ChildEnv set it must call RunChild): senders apart
	// from the servers, as Twilio is, and a resident size that is the read
	// model's alone. Empty runs them in this process.
	ChildCommand []string
	Logger       *zap.Logger
	Out          io.Writer
}

// Defaults are the shapes, sized for a 2-core machine.
func Defaults() Config {
	return Config{
		SyncWrites: true, Rounds: 3,
		Events: 30_000, Writers: 64, Workers: pipeline.DefaultWorkers, ReadModels: true,
		FoldConversations: 2000, FoldDuration: 2 * time.Second,
		Rate: 2000, Duration: 10 * time.Second, Senders: 256, LatencyConversations: 2000, Drain: 15 * time.Second,
		Conversations: 1_000_000,
	}
}

// Validate names the bad field (as its command-line flag).
func (c Config) Validate() error {
	switch {
	case c.DataDir == "":
		return config.Errorf("data", "a directory is required")
	case c.Only != "" && !slices.Contains(Parts, c.Only):
		return config.Errorf("only", "want one of %v, got %q", Parts, c.Only)
	case c.Rounds < 1:
		return config.Errorf("rounds", "want at least 1, got %d", c.Rounds)
	case c.Events < 1:
		return config.Errorf("events", "want at least 1, got %d", c.Events)
	case c.Writers < 1 || c.Writers > 4096:
		return config.Errorf("writers", "want 1..4096, got %d", c.Writers)
	case c.Workers < 1 || c.Workers > 4096:
		return config.Errorf("projector-workers", "want 1..4096, got %d", c.Workers)
	case c.FoldConversations < 1:
		return config.Errorf("fold-conversations", "want at least 1, got %d", c.FoldConversations)
	case c.FoldDuration < 0:
		return config.Errorf("fold-duration", "want ≥ 0, got %s", c.FoldDuration)
	case c.Rate <= 0 || math.IsNaN(c.Rate) || math.IsInf(c.Rate, 0):
		return config.Errorf("rate", "want a positive rate, got %v", c.Rate)
	case c.Duration <= 0:
		return config.Errorf("duration", "must be positive, got %s", c.Duration)
	case c.Senders < 1 || c.Senders > 1024:
		return config.Errorf("senders", "want 1..1024 (ingest's in-flight limit), got %d", c.Senders)
	case c.LatencyConversations < 1:
		return config.Errorf("latency-conversations", "want at least 1, got %d", c.LatencyConversations)
	case c.Drain <= 0:
		return config.Errorf("drain", "must be positive, got %s", c.Drain)
	case c.Conversations < 1:
		return config.Errorf("conversations", "want at least 1, got %d", c.Conversations)
	}
	return nil
}

func (c Config) runs(part string) bool { return c.Only == "" || c.Only == part }

// Result of one timed phase.
type Result struct {
	Events  int
	Elapsed time.Duration
	CPU     time.Duration // this process's CPU time over Elapsed (servers included)
}

// CPUPerEvent is the CPU time the whole process spent per event.
func (r Result) CPUPerEvent() time.Duration {
	if r.Events == 0 {
		return 0
	}
	return r.CPU / time.Duration(r.Events)
}

// Cores is how many cores were busy on average.
func (r Result) Cores() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return r.CPU.Seconds() / r.Elapsed.Seconds()
}

// Rate is events per second.
func (r Result) Rate() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.Events) / r.Elapsed.Seconds()
}

// Report is the whole run; a part not run is nil.
type Report struct {
	Throughput *Throughput
	Fold       *Fold
	Latency    *Latency
	Memory     *Memory
}

// Targets of the issue.
const (
	TargetThroughputRatio = 0.7
	TargetFoldRate        = 200_000
	TargetLatencyP99      = 100 * time.Millisecond
	TargetRSS             = 1 << 30
)

// Run runs the parts Config selects, each on servers of its own, closed
// before the next part starts.
func Run(ctx context.Context, cfg Config) (Report, error) {
	var rep Report
	if err := cfg.Validate(); err != nil {
		return rep, err
	}
	if cfg.Out == nil {
		cfg.Out = io.Discard
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	cfg.Logger = logging.AtLeast(cfg.Logger, zapcore.WarnLevel)
	if cfg.runs(PartThroughput) {
		t, err := runThroughput(ctx, cfg, filepath.Join(cfg.DataDir, PartThroughput))
		if err != nil {
			return rep, fmt.Errorf("throughput: %w", err)
		}
		rep.Throughput = &t
	}
	if cfg.runs(PartFold) {
		f, err := runFold(cfg)
		if err != nil {
			return rep, fmt.Errorf("fold: %w", err)
		}
		rep.Fold = &f
	}
	if cfg.runs(PartLatency) {
		l, err := runLatency(ctx, cfg, filepath.Join(cfg.DataDir, PartLatency))
		if err != nil {
			return rep, fmt.Errorf("latency: %w", err)
		}
		rep.Latency = &l
	}
	if cfg.runs(PartMemory) {
		m, err := runMemory(ctx, cfg, filepath.Join(cfg.DataDir, PartMemory))
		if err != nil {
			return rep, fmt.Errorf("memory: %w", err)
		}
		rep.Memory = &m
	}
	return rep, nil
}

// Summary prints the figures against the targets and says whether all hold.
func (r Report) Summary(w io.Writer) bool {
	ok := true
	check := func(pass bool) string {
		ok = ok && pass
		if pass {
			return "met"
		}
		return "NOT met"
	}
	fmt.Fprintln(w, "| measure | reference | projector | ratio | target | |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|")
	if t := r.Throughput; t != nil {
		with := "pipeline alone"
		if t.ReadModels {
			with = "read models running beside"
		}
		fmt.Fprintf(w, "| Kafka → event store, %d events, %d workers, %s (median of %d) | store alone, %d writers: %.0f events/s | %.0f events/s | %.3f | ≥ %.1f | %s |\n",
			t.Events, t.Workers, with, t.Rounds, t.Writers, t.Store.Rate(), t.Projector.Rate(), t.Ratio, TargetThroughputRatio, check(t.Ratio >= TargetThroughputRatio))
	}
	if f := r.Fold; f != nil {
		fmt.Fprintf(w, "| fold, pure, in memory (median of %d) | | %.0f events/s (%.0f ns/event) | | ≥ %d/s | %s |\n",
			f.Rounds, f.Rate(), 1e9/f.Rate(), TargetFoldRate, check(f.Rate() >= TargetFoldRate))
	}
	if l := r.Latency; l != nil {
		fmt.Fprintf(w, "| webhook → visible in the query API, p99, at %.0f webhooks/s for %s | HTTP answer p99 %s | %s | | < %s | %s |\n",
			l.Rate, l.Duration, ms(l.AnswerP99), ms(l.P99), ms(TargetLatencyP99), check(l.P99 < TargetLatencyP99 && l.Lost == 0 && l.Failed == 0))
		fmt.Fprintf(w, "| p50 / p90 / p99.9 / max; not seen, failed | | %s / %s / %s / %s; %d, %d | | | |\n",
			ms(l.P50), ms(l.P90), ms(l.P999), ms(l.Max), l.Lost, l.Failed)
	}
	if m := r.Memory; m != nil {
		fmt.Fprintf(w, "| %d conversations in the read model: resident after GC | peak %d MiB; on disk %d MiB | %d MiB | | < %d MiB | %s |\n",
			m.Conversations, m.PeakRSS>>20, m.DiskBytes>>20, m.RSS>>20, TargetRSS>>20, check(m.RSS < TargetRSS))
	}
	return ok
}

func median(rs []Result) Result {
	if len(rs) == 0 {
		return Result{}
	}
	sorted := slices.Clone(rs)
	slices.SortFunc(sorted, func(a, b Result) int { return cmpFloat(a.Rate(), b.Rate()) })
	return sorted[len(sorted)/2]
}

func cmpFloat(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func ms(d time.Duration) string {
	if d == math.MaxInt64 {
		return "∞"
	}
	return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond))
}
