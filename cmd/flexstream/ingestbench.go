package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"runtime"

	"go.uber.org/zap"

	"github.com/flexstream/flexstream/internal/ingestbench"
)

func ingestBenchFlags(fs *flag.FlagSet, e env) func(context.Context, *zap.Logger) error {
	c := ingestbench.Defaults()
	data := fs.String("data", "", "data directory of the in-process Kafka broker (default: a temporary directory, removed afterwards)")
	fs.BoolVar(&c.SyncWrites, "kafka-sync-writes", c.SyncWrites, "the broker fsyncs every produced batch before acknowledging it, as flexstream up does by default")
	fs.DurationVar(&c.BatchTimeout, "kafka-batch-timeout", c.BatchTimeout, "how long a produce waits for company in its batch (the same producer serves both sides)")
	fs.IntVar(&c.Partitions, "kafka-partitions", c.Partitions, "partitions of the topic")
	fs.IntVar(&c.Requests, "requests", c.Requests, "distinct signed callbacks, sent (and produced raw) in each throughput phase")
	fs.IntVar(&c.Clients, "clients", c.Clients, "concurrent HTTP clients, and raw producer goroutines")
	fs.IntVar(&c.Rounds, "rounds", c.Rounds, "times each throughput phase runs on each side; medians are reported")
	fs.Float64Var(&c.Rate, "rate", c.Rate, "latency phase: webhooks per second, open loop (0 skips the phase)")
	fs.DurationVar(&c.Duration, "duration", c.Duration, "latency phase length")
	fs.IntVar(&c.Senders, "senders", c.Senders, "latency phase: concurrent senders, enough that the schedule is kept")
	inProcess := fs.Bool("senders-in-process", false, "run the webhook senders in this process, beside ingest, instead of in a process of their own as Twilio is")
	check := fs.Bool("check", false, "exit non-zero when a target is not met")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the run to this file")
	return func(ctx context.Context, log *zap.Logger) error {
		if spec := os.Getenv(ingestbench.ChildEnv); spec != "" {
			// This process is the webhook senders of a running bench.
			return ingestbench.RunSender(ctx, spec, e.stdout)
		}
		if !*inProcess {
			cmd, err := selfCommand("ingest", "bench", "--log-level", "error")
			if err != nil {
				return err
			}
			c.SenderCommand = cmd
		}
		c.DataDir = "-" // checked below, once the flags are known good
		if err := c.Validate(); err != nil {
			return err
		}
		dir, done, err := benchSetup(*data, "flexstream-ingest-bench", *cpuProfile)
		if err != nil {
			return err
		}
		defer done()
		c.DataDir, c.Logger, c.Out = dir, log, e.stdout
		where := "their own process"
		if *inProcess {
			where = "this process"
		}
		fmt.Fprintf(e.stdout, "flexstream ingest bench: signed TaskRouter callbacks over loopback HTTP (senders in %s) -> ingest -> kafka-go -> in-process broker (sync writes %v, batch timeout %s, %d partitions), %d cores, %s\n",
			where, c.SyncWrites, c.BatchTimeout, c.Partitions, runtime.NumCPU(), runtime.Version())
		rep, err := ingestbench.Run(ctx, c)
		if err != nil {
			return err
		}
		if !rep.Summary(e.stdout) && *check {
			return fmt.Errorf("a target was not met")
		}
		return nil
	}
}
