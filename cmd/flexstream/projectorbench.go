package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"runtime"

	"go.uber.org/zap"

	"github.com/flexstream/flexstream/internal/projectorbench"
)

func projectorBenchFlags(fs *flag.FlagSet, e env) func(context.Context, *zap.Logger) error {
	c := projectorbench.Defaults()
	data := fs.String("data", "", "directory for the servers and read models of the run (default: a temporary directory, removed afterwards)")
	fs.BoolVar(&c.SyncWrites, "kafka-sync-writes", c.SyncWrites, "the broker fsyncs every produced batch before acknowledging it, as flexstream up does by default")
	fs.StringVar(&c.Only, "only", "", "run one part only: throughput, fold, latency or memory")
	fs.IntVar(&c.Rounds, "rounds", c.Rounds, "times the throughput phases (each side) and the fold run; medians are reported")
	fs.IntVar(&c.Events, "events", c.Events, "throughput: records per round, full lifecycles of distinct conversations")
	fs.IntVar(&c.Writers, "writers", c.Writers, "throughput: concurrent single-event appenders, each on its own stream, measuring the store alone")
	fs.IntVar(&c.Workers, "projector-workers", c.Workers, "the pipeline's concurrent appends (the projector's default)")
	fs.BoolVar(&c.ReadModels, "read-models", c.ReadModels, "throughput: run the read models beside the pipeline, as the projector does")
	fs.IntVar(&c.FoldConversations, "fold-conversations", c.FoldConversations, "fold: conversations whose events are folded")
	fs.DurationVar(&c.FoldDuration, "fold-duration", c.FoldDuration, "fold: time folded per round")
	fs.Float64Var(&c.Rate, "rate", c.Rate, "latency: webhooks per second, open loop")
	fs.DurationVar(&c.Duration, "duration", c.Duration, "latency: how long webhooks are sent")
	fs.IntVar(&c.Senders, "senders", c.Senders, "latency: concurrent senders, enough that the schedule is kept")
	fs.IntVar(&c.LatencyConversations, "latency-conversations", c.LatencyConversations, "latency: conversations the webhooks go to in turn, one new message each")
	fs.DurationVar(&c.Drain, "drain", c.Drain, "latency: longest wait after the last send for the last messages to show")
	fs.IntVar(&c.Conversations, "conversations", c.Conversations, "memory: conversation views put in the read model")
	inProcess := fs.Bool("in-process", false, "run the webhook senders and the memory fill in this process instead of a process of their own")
	check := fs.Bool("check", false, "exit non-zero when a target is not met")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of this process to this file (the sender and memory processes are not in it; see --in-process)")
	return func(ctx context.Context, log *zap.Logger) error {
		if spec := os.Getenv(projectorbench.ChildEnv); spec != "" {
			// This process is the senders, or the memory fill, of a running bench.
			return projectorbench.RunChild(ctx, spec, e.stdout)
		}
		if !*inProcess {
			cmd, err := selfCommand("projector", "bench", "--log-level", "error")
			if err != nil {
				return err
			}
			c.ChildCommand = cmd
		}
		c.DataDir = "-" // checked below, once the flags are known good
		if err := c.Validate(); err != nil {
			return err
		}
		dir, done, err := benchSetup(*data, "flexstream-projector-bench", *cpuProfile)
		if err != nil {
			return err
		}
		defer done()
		c.DataDir, c.Logger, c.Out = dir, log, e.stdout
		fmt.Fprintf(e.stdout, "flexstream projector bench: in-process broker (sync writes %v, 1 partition), embedded event store (fsync), %d cores, %s\n",
			c.SyncWrites, runtime.NumCPU(), runtime.Version())
		rep, err := projectorbench.Run(ctx, c)
		if err != nil {
			return err
		}
		if !rep.Summary(e.stdout) && *check {
			return fmt.Errorf("a target was not met")
		}
		return nil
	}
}
