package main

import (
	"context"
	"flag"
	"fmt"
	"path/filepath"
	"runtime"

	"go.uber.org/zap"

	"github.com/flexstream/flexstream/internal/datadir"
	"github.com/flexstream/flexstream/internal/esbench"
	"github.com/flexstream/flexstream/internal/esserver"
)

type storeServeConfig struct {
	Addr   string
	Data   string
	NoSync bool
}

func storeServeFlags(fs *flag.FlagSet, e env) func(context.Context, *zap.Logger) error {
	var c storeServeConfig
	fs.StringVar(&c.Addr, "addr", "127.0.0.1:2113", "address to serve KurrentDB's gRPC protocol on")
	fs.StringVar(&c.Data, "data", filepath.Join(datadir.Default(), "eventstore"), "directory of the event store")
	fs.BoolVar(&c.NoSync, "no-sync", false, "acknowledge appends before they are fsynced (benchmarks only: a crash loses acknowledged events)")
	return func(ctx context.Context, log *zap.Logger) error {
		cfg := esserver.Config{Addr: c.Addr, DataDir: c.Data, NoSync: c.NoSync, Logger: log}
		if err := cfg.Validate(); err != nil {
			return err
		}
		dir, err := datadir.Open(c.Data)
		if err != nil {
			return err
		}
		defer dir.Close()
		cfg.DataDir = dir.Path()
		srv, err := esserver.Start(ctx, cfg)
		if err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "flexstream store: KurrentDB protocol on %s (connection string %s)\n", srv.Addr(), srv.ConnectionString())
		<-ctx.Done()
		log.Info("shutting down")
		return srv.Close()
	}
}

func storeBenchFlags(fs *flag.FlagSet, e env) func(context.Context, *zap.Logger) error {
	c := esbench.Defaults()
	data := fs.String("data", "", "directory for the measured store (default: a temporary directory, removed afterwards)")
	fs.IntVar(&c.SingleWriters, "single-writers", c.SingleWriters, "concurrent single-event appenders, each on its own stream")
	fs.IntVar(&c.SingleAppends, "single-appends", c.SingleAppends, "appends per single-event writer")
	fs.IntVar(&c.BatchWriters, "batch-writers", c.BatchWriters, "concurrent batch appenders")
	fs.IntVar(&c.BatchSize, "batch-size", c.BatchSize, "events per batch append")
	fs.IntVar(&c.BatchAppends, "batch-appends", c.BatchAppends, "appends per batch writer")
	fs.IntVar(&c.RSSEvents, "rss-events", c.RSSEvents, "events in the store before resident memory is read (0 skips)")
	fs.IntVar(&c.Rounds, "rounds", c.Rounds, "times each phase runs on each side; medians are reported")
	check := fs.Bool("check", false, "exit non-zero when a target is not met")
	fs.StringVar(&c.Only, "only", "", "run one side only, null or store (for profiling; no ratios)")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the run to this file")
	return func(ctx context.Context, log *zap.Logger) error {
		dir, done, err := benchSetup(*data, "flexstream-bench", *cpuProfile)
		if err != nil {
			return err
		}
		defer done()
		c.DataDir, c.Logger, c.Out = dir, log, e.stdout
		fmt.Fprintf(e.stdout, "flexstream store bench: EventStore-Client-Go/v4 over loopback, %d cores, %s\n", runtime.NumCPU(), runtime.Version())
		rep, err := esbench.Run(ctx, c)
		if err != nil {
			return err
		}
		if c.Only != "" {
			return nil
		}
		if !rep.Summary(e.stdout) && *check {
			return fmt.Errorf("a target was not met")
		}
		return nil
	}
}
