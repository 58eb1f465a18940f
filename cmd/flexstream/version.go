package main

import (
	"context"
	"flag"
	"fmt"
	"runtime"
	"runtime/debug"

	"go.uber.org/zap"
)

// libraries whose versions an operator needs when reporting a problem.
var libraries = []string{
	"github.com/segmentio/kafka-go",
	"github.com/twmb/franz-go/pkg/kfake",
	"go.uber.org/zap",
}

func versionFlags(_ *flag.FlagSet, e env) func(context.Context, *zap.Logger) error {
	return func(context.Context, *zap.Logger) error {
		version, deps := "(devel)", map[string]string{}
		if bi, ok := debug.ReadBuildInfo(); ok {
			version = bi.Main.Version
			for _, s := range bi.Settings {
				if s.Key == "vcs.revision" {
					version += " " + s.Value
				}
			}
			for _, d := range bi.Deps {
				deps[d.Path] = d.Version
			}
		}
		fmt.Fprintf(e.stdout, "flexstream %s (%s)\n", version, runtime.Version())
		for _, l := range libraries {
			if v, ok := deps[l]; ok {
				fmt.Fprintf(e.stdout, "  %s %s\n", l, v)
			}
		}
		return nil
	}
}
