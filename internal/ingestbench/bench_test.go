package ingestbench

import (
	"bytes"
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
	"go.uber.org/zap/zaptest"
)

// TestMain doubles as the sender process: the bench starts this test
// binary again with ChildEnv set.
func TestMain(m *testing.M) {
	if spec := os.Getenv(ChildEnv); spec != "" {
		if err := RunSender(context.Background(), spec, os.Stdout); err != nil {
			os.Exit(1)
		}
		os.Exit(0)
	}
	goleak.VerifyTestMain(m)
}

// TestRunSmall runs every phase (two rounds, so both orders) at a tiny size and checks the report.
func TestRunSmall(t *testing.T) {
	t.Run("senders in their own process", func(t *testing.T) { runSmall(t, []string{os.Args[0]}) })
	t.Run("senders in this process", func(t *testing.T) { runSmall(t, nil) })
}

func runSmall(t *testing.T, senderCommand []string) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cfg := Defaults()
	cfg.DataDir = t.TempDir()
	cfg.Requests, cfg.Clients, cfg.Rounds = 200, 16, 2
	cfg.Rate, cfg.Duration, cfg.Senders = 200, time.Second, 32
	var out bytes.Buffer
	cfg.Out = &out
	cfg.Logger = zaptest.NewLogger(t)
	cfg.SenderCommand = senderCommand
	rep, err := Run(ctx, cfg)
	if err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	if rep.Raw.Requests != 200 || rep.Ingest.Requests != 200 || rep.Raw.Rate() <= 0 || rep.Ingest.Rate() <= 0 || rep.Ratio <= 0 {
		t.Fatalf("throughput: %+v", rep)
	}
	l := rep.Latency
	if l == nil {
		t.Fatal("latency phase did not run")
	}
	if l.Requests != 200 || l.Achieved() <= 0 || l.P99 <= 0 || l.P50 > l.P90 || l.P90 > l.P99 || l.P99 > l.P999 || l.P999 > l.Max {
		t.Fatalf("latency: %+v", *l)
	}
	// The schedule stretches over the phase: 200 at 200/s take about 1 s.
	if l.Elapsed < 900*time.Millisecond {
		t.Fatalf("latency phase took %s, want about 1s", l.Elapsed)
	}
	rep.Summary(&out)
	text := out.String()
	for _, want := range []string{"round 1 raw", "round 1 ingest", "round 2 ratio", "latency, open loop", "| throughput", "| p99 latency"} {
		if !strings.Contains(text, want) {
			t.Errorf("output lacks %q:\n%s", want, text)
		}
	}
	t.Log("\n" + text)
}

func TestValidateNamesTheFlag(t *testing.T) {
	for _, tt := range []struct {
		set  func(*Config)
		flag string
	}{
		{func(c *Config) { c.DataDir = "" }, "--data"},
		{func(c *Config) { c.Requests = 0 }, "--requests"},
		{func(c *Config) { c.Clients = 0 }, "--clients"},
		{func(c *Config) { c.Rounds = 0 }, "--rounds"},
		{func(c *Config) { c.Rate = -1 }, "--rate"},
		{func(c *Config) { c.Duration = 0 }, "--duration"},
		{func(c *Config) { c.Senders = 5000 }, "--senders"},
		{func(c *Config) { c.BatchTimeout = 2 * time.Second }, "--kafka-batch-timeout"},
	} {
		c := Defaults()
		c.DataDir = "x"
		tt.set(&c)
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), tt.flag) {
			t.Errorf("want an error naming %s, got %v", tt.flag, err)
		}
	}
}
