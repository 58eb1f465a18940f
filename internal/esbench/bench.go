// Package esbench measures the embedded event store through the real
// client over loopback, next to the ceiling the client and gRPC impose: the
// same server with a store that keeps nothing. Figures are ratios to that
// ceiling, so they mean the same on any machine.
package esbench

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"runtime"
	"runtime/debug"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/google/uuid"
	"go.uber.org/zap"

	"github.com/flexstream/flexstream/internal/esserver"
	"github.com/flexstream/flexstream/internal/eventstore"
)

// Config sizes the run.
type Config struct {
	DataDir       string // for the real store; a fresh directory
	SingleWriters int    // concurrent single-event appenders (64)
	SingleAppends int    // appends per writer
	BatchWriters  int    // concurrent appenders of BatchSize events
	BatchSize     int    // events per append (100)
	BatchAppends  int    // appends per batch writer
	RSSEvents     int    // events written before reading resident memory (5,000,000); 0 skips
	Only          string // "null" or "store" runs one side only (for profiling)
	Rounds        int    // each phase runs this many times per side; medians are reported
	Logger        *zap.Logger
	Out           io.Writer
}

// Defaults are the targets' shapes, sized for a 2-core machine.
func Defaults() Config {
	return Config{SingleWriters: 64, SingleAppends: 300, BatchWriters: 8, BatchSize: 100, BatchAppends: 300, RSSEvents: 5_000_000, Rounds: 3}
}

// Result of one phase against one server.
type Result struct {
	Events  int
	Elapsed time.Duration
	CPU     time.Duration // the whole process's CPU time (user + system) during the phase
}

// CPUShare is the process's CPU time per second of the phase: how many
// cores it kept busy. Below the machine's core count, the phase waited on
// something other than the processor (the disk, or a hand-off between
// goroutines).
func (r Result) CPUShare() float64 { return r.CPU.Seconds() / r.Elapsed.Seconds() }

// CPUTime is the process's CPU time so far, user and system.
func CPUTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func (r Result) cpuPerEvent() float64 {
	return float64(r.CPU.Microseconds()) / float64(max(r.Events, 1))
}

// Rate is events per second.
func (r Result) Rate() float64 { return float64(r.Events) / r.Elapsed.Seconds() }

// Report is the whole run: per phase, one [null, store] pair per round.
type Report struct {
	Single, Batch, CatchUp [][2]Result
	RSSBytes               uint64
	RSSEvents              int
}

// payloads are about the size of a projected Twilio event with its
// metadata, each with its own SIDs, pseudonym, time and offset: the store
// compresses large appends, and identical events would flatter it.
var payloads, metas = func() ([][]byte, [][]byte) {
	const n = 1024
	rng := rand.New(rand.NewPCG(7, 11))
	hex := func(k int) string {
		const digits = "0123456789abcdef"
		b := make([]byte, k)
		for i := range b {
			b[i] = digits[rng.IntN(16)]
		}
		return string(b)
	}
	ps, ms := make([][]byte, n), make([][]byte, n)
	for i := range ps {
		ch := "CH" + hex(32)
		ps[i] = fmt.Appendf(nil, `{"conversationSid":"%s","taskSid":"WT%s","eventType":"reservation.accepted","workerSid":"WK%s","queue":"support","channel":"whatsapp","from":"ph:%s:%02d","at":"2026-11-25T03:%02d:%02d.%03dZ","attempt":%d}`,
			ch, hex(32), hex(32), hex(20), rng.IntN(100), rng.IntN(60), rng.IntN(60), rng.IntN(1000), 1+rng.IntN(3))
		ms[i] = fmt.Appendf(nil, `{"$correlationId":"%s","$causationId":"EV%s","kafka":"twilio.events.v1/%d@%d"}`, ch, hex(32), rng.IntN(6), rng.IntN(10_000_000))
	}
	return ps, ms
}()

// Run measures each phase against the null store and the real one back to
// back, Rounds times, and keeps every pair: this machine's speed drifts by
// tens of percent from one second to the next, and pairing exposes both
// sides of a ratio to the same speed. Memory is read last.
func Run(ctx context.Context, cfg Config) (Report, error) {
	var rep Report
	if cfg.Rounds < 1 {
		cfg.Rounds = 1
	}
	type side struct {
		srv *esserver.Server
		c   *esdb.Client
	}
	var sides [2]*side
	defer func() {
		for _, sd := range sides {
			if sd != nil {
				sd.c.Close()
				_ = sd.srv.Close()
			}
		}
	}()
	for i, null := range []bool{true, false} {
		if (cfg.Only == "null" && !null) || (cfg.Only == "store" && null) {
			continue
		}
		srv, err := esserver.Start(ctx, esserver.Config{Addr: "127.0.0.1:0", DataDir: cfg.DataDir, NullStore: null, Logger: cfg.Logger})
		if err != nil {
			return rep, err
		}
		c, err := client(srv.ConnectionString(), cfg.Logger)
		if err != nil {
			srv.Close()
			return rep, err
		}
		sides[i] = &side{srv, c}
	}
	names := [2]string{"null store", "pebble store"}
	// Each phase runs on both sides back to back, null first in odd
	// rounds and store first in even ones, so that a drift of the
	// machine's speed within a round favours neither side overall.
	phase := func(round int, rs *[][2]Result, label string, run func(c *esdb.Client) (Result, error)) error {
		var pair [2]Result
		order := [2]int{0, 1}
		if round%2 == 0 {
			order = [2]int{1, 0}
		}
		for _, i := range order {
			sd := sides[i]
			if sd == nil {
				continue
			}
			r, err := run(sd.c)
			if err != nil {
				return err
			}
			pair[i] = r
			fmt.Fprintf(cfg.Out, "round %d %-12s %-36s %8.0f events/s  (%.2f cores, %3.0f µs CPU/event)\n", round, names[i], label+":", r.Rate(), r.CPUShare(), r.cpuPerEvent())
		}
		*rs = append(*rs, pair)
		return nil
	}
	catchN := cfg.SingleWriters*cfg.SingleAppends + cfg.BatchWriters*cfg.BatchAppends*cfg.BatchSize
	for round := 1; round <= cfg.Rounds; round++ {
		if err := phase(round, &rep.Single, fmt.Sprintf("single-event appends, %d writers", cfg.SingleWriters), func(c *esdb.Client) (Result, error) {
			return appendPhase(ctx, c, cfg.SingleWriters, cfg.SingleAppends, 1, "single")
		}); err != nil {
			return rep, err
		}
		if err := phase(round, &rep.Batch, fmt.Sprintf("appends of %d, %d writers", cfg.BatchSize, cfg.BatchWriters), func(c *esdb.Client) (Result, error) {
			return appendPhase(ctx, c, cfg.BatchWriters, cfg.BatchAppends, cfg.BatchSize, "batch")
		}); err != nil {
			return rep, err
		}
		if err := phase(round, &rep.CatchUp, "$all catch-up", func(c *esdb.Client) (Result, error) {
			return catchUp(ctx, c, catchN)
		}); err != nil {
			return rep, err
		}
	}
	if sd := sides[1]; sd != nil && cfg.RSSEvents > 0 {
		rep.RSSEvents = cfg.RSSEvents
		have := cfg.Rounds * (cfg.SingleWriters*cfg.SingleAppends + cfg.BatchWriters*cfg.BatchAppends*cfg.BatchSize)
		if more := cfg.RSSEvents - have; more > 0 {
			per := cfg.BatchWriters * cfg.BatchSize
			if _, err := appendPhase(ctx, sd.c, cfg.BatchWriters, (more+per-1)/per, cfg.BatchSize, "rss"); err != nil {
				return rep, err
			}
		}
		// Resident after a collection that hands freed pages back to the
		// system: what the process holds, not garbage the runtime's
		// scavenger has yet to return.
		runtime.GC()
		debug.FreeOSMemory()
		rep.RSSBytes = rss()
		fmt.Fprintf(cfg.Out, "resident memory after %d events: %d MiB\n", cfg.RSSEvents, rep.RSSBytes>>20)
	}
	return rep, nil
}

// medianRate is the median rate of one side over the rounds.
func medianRate(pairs [][2]Result, side int) float64 {
	rates := make([]float64, len(pairs))
	for i, p := range pairs {
		rates[i] = p[side].Rate()
	}
	return medianOf(rates)
}

// PairedRatio is the median over the rounds of each round's store rate
// over its null rate. The two runs of a round are adjacent in time, so
// their ratio is what the machine's drift disturbs least; the medians of
// each side taken apart can come from rounds of different speeds.
func PairedRatio(pairs [][2]Result) float64 {
	ratios := make([]float64, len(pairs))
	for i, p := range pairs {
		ratios[i] = p[1].Rate() / p[0].Rate()
	}
	return medianOf(ratios)
}

func medianOf(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	sort.Float64s(xs)
	if n := len(xs); n%2 == 0 {
		return (xs[n/2-1] + xs[n/2]) / 2
	}
	return xs[len(xs)/2]
}

// Targets of the issue, as ratios to the ceiling.
const (
	TargetSingle  = 0.6
	TargetBatch   = 0.7
	TargetCatchUp = 0.8
	TargetRSS     = 200 << 20
)

// Summary prints the figures against the targets and says whether all hold.
func (r Report) Summary(w io.Writer) bool {
	ok := true
	line := func(name string, pairs [][2]Result, target float64) {
		null, store := medianRate(pairs, 0), medianRate(pairs, 1)
		ratio := PairedRatio(pairs)
		pass := ratio >= target
		ok = ok && pass
		fmt.Fprintf(w, "| %-34s | %9.0f/s | %9.0f/s | %5.2f | %5.2f | ≥ %.1f | %s |\n", name, null, store, store/null, ratio, target, verdict(pass))
	}
	fmt.Fprintln(w, "| phase | ceiling (null store), median | pebble, fsync, median | ratio of medians | median of paired ratios | target | |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|")
	line("single-event appends, 64 writers", r.Single, TargetSingle)
	line("appends of 100", r.Batch, TargetBatch)
	line("$all catch-up", r.CatchUp, TargetCatchUp)
	if r.RSSEvents > 0 {
		pass := r.RSSBytes < TargetRSS
		ok = ok && pass
		fmt.Fprintf(w, "| resident memory after %d events | | %d MiB | | < 200 MiB | %s |\n", r.RSSEvents, r.RSSBytes>>20, verdict(pass))
	}
	return ok
}

func verdict(ok bool) string {
	if ok {
		return "met"
	}
	return "NOT met"
}

func client(conn string, log *zap.Logger) (*esdb.Client, error) {
	s, err := esdb.ParseConnectionString(conn)
	if err != nil {
		return nil, err
	}
	if log == nil {
		log = zap.NewNop()
	}
	s.Logger = eventstore.ZapLogging(log)
	return esdb.NewClient(s)
}

func appendPhase(ctx context.Context, c *esdb.Client, writers, appends, size int, tag string) (Result, error) {
	run := uuid.NewString()[:8]
	var wg sync.WaitGroup
	var failed atomic.Value
	start, cpu := time.Now(), CPUTime()
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			stream := fmt.Sprintf("bench%s-%s-%d", tag, run, w)
			events := make([]esdb.EventData, size)
			for i := 0; i < appends; i++ {
				for j := range events {
					k := (w*appends*size + i*size + j) % len(payloads)
					events[j] = esdb.EventData{EventID: uuid.New(), EventType: "ReservationAccepted", ContentType: esdb.ContentTypeJson, Data: payloads[k], Metadata: metas[k]}
				}
				if _, err := c.AppendToStream(ctx, stream, esdb.AppendToStreamOptions{}, events...); err != nil {
					failed.Store(err)
					return
				}
			}
		}(w)
	}
	wg.Wait()
	if err, ok := failed.Load().(error); ok {
		return Result{}, fmt.Errorf("%s appends: %w", tag, err)
	}
	return Result{Events: writers * appends * size, Elapsed: time.Since(start), CPU: CPUTime() - cpu}, nil
}

// catchUp subscribes to $all from the start and times the delivery of n
// events, the shape of a projection rebuilding its views.
func catchUp(ctx context.Context, c *esdb.Client, n int) (Result, error) {
	start, cpu := time.Now(), CPUTime()
	sub, err := c.SubscribeToAll(ctx, esdb.SubscribeToAllOptions{From: esdb.Start{}})
	if err != nil {
		return Result{}, err
	}
	defer sub.Close()
	got := 0
	for got < n {
		ev := sub.Recv()
		switch {
		case ev.EventAppeared != nil:
			got++
		case ev.SubscriptionDropped != nil:
			return Result{}, fmt.Errorf("catch-up dropped after %d events: %w", got, ev.SubscriptionDropped.Error)
		}
	}
	return Result{Events: got, Elapsed: time.Since(start), CPU: CPUTime() - cpu}, nil
}

// rss is this process's resident set size, from /proc.
func rss() uint64 {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, _ := strconv.ParseUint(f[1], 10, 64)
			return kb << 10
		}
	}
	return 0
}
