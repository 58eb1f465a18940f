package main

import (
	"context"
	"flag"
	"fmt"
	"path/filepath"

	"go.uber.org/zap"

	"github.com/flexstream/flexstream/internal/datadir"
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
