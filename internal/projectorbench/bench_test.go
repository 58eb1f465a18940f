package projectorbench

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

// TestMain doubles as the child process: the bench starts this test
// binary again with ChildEnv set.
func TestMain(m *testing.M) {
	if spec := os.Getenv(ChildEnv); spec != "" {
		if err := RunChild(context.Background(), spec, os.Stdout); err != nil {
			os.Exit(1)
		}
		os.Exit(0)
	}
	goleak.VerifyTestMain(m)
}

func small(t *testing.T) Config {
	cfg := Defaults()
	cfg.DataDir = t.TempDir()
	cfg.Rounds = 2 // both orders
	cfg.Events, cfg.Writers = 300, 16
	cfg.FoldConversations, cfg.FoldDuration = 50, 50*time.Millisecond
	cfg.Rate, cfg.Duration, cfg.Senders, cfg.LatencyConversations = 200, time.Second, 32, 50
	cfg.Conversations = 2000
	cfg.Logger = zaptest.NewLogger(t)
	return cfg
}

// TestRunSmall runs every part at a tiny size, the senders and the memory
// fill in a process of their own, and checks the report.
func TestRunSmall(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cfg := small(t)
	cfg.ChildCommand = []string{os.Args[0]}
	var out bytes.Buffer
	cfg.Out = &out
	rep, err := Run(ctx, cfg)
	if err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	if tp := rep.Throughput; tp == nil || tp.Store.Events != 300 || tp.Projector.Events != 300 || tp.Store.Rate() <= 0 || tp.Projector.Rate() <= 0 || tp.Ratio <= 0 {
		t.Fatalf("throughput: %+v", rep.Throughput)
	}
	if f := rep.Fold; f == nil || f.Events < 300 || f.Rate() <= 0 {
		t.Fatalf("fold: %+v", rep.Fold)
	}
	l := rep.Latency
	if l == nil || l.Requests != 200 || l.Failed != 0 || l.Lost != 0 || l.P99 <= 0 || l.P50 > l.P90 || l.P90 > l.P99 || l.P99 > l.Max {
		t.Fatalf("latency: %+v", rep.Latency)
	}
	if m := rep.Memory; m == nil || m.Conversations != 2000 || m.RSS == 0 || m.PeakRSS < m.RSS || m.DiskBytes == 0 || m.InProcess {
		t.Fatalf("memory: %+v", rep.Memory)
	}
	rep.Summary(&out)
	text := out.String()
	for _, want := range []string{"round 1 event store alone", "round 2 projector", "round 2 ratio", "round 1 fold", "latency, open loop", "memory, in a process of its own",
		"| Kafka → event store", "| fold, pure", "| webhook → visible", "| 2000 conversations in the read model"} {
		if !strings.Contains(text, want) {
			t.Errorf("output lacks %q:\n%s", want, text)
		}
	}
	t.Log("\n" + text)
}

// TestOnlyInProcess runs single parts with no child process.
func TestOnlyInProcess(t *testing.T) {
	for _, part := range []string{PartFold, PartMemory} {
		t.Run(part, func(t *testing.T) {
			cfg := small(t)
			cfg.Only, cfg.Rounds = part, 1
			var out bytes.Buffer
			cfg.Out = &out
			rep, err := Run(context.Background(), cfg)
			if err != nil {
				t.Fatalf("%v\n%s", err, out.String())
			}
			if rep.Throughput != nil || rep.Latency != nil || (rep.Fold == nil) != (part != PartFold) || (rep.Memory == nil) != (part != PartMemory) {
				t.Fatalf("parts run: %+v", rep)
			}
			if part == PartMemory && !rep.Memory.InProcess {
				t.Error("memory measured in a child process")
			}
		})
	}
}

// TestWorkloadDecodes checks the generated lifecycles: every record
// decodes, event ids are distinct, and the conversations' messages are
// counted as the latency part expects.
func TestWorkloadDecodes(t *testing.T) {
	dec, err := newDecoder()
	if err != nil {
		t.Fatal(err)
	}
	recs, err := records(webhooks(1, 1000), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	decoded, err := decodeAll(dec, "t", recs)
	if err != nil {
		t.Fatal(err)
	}
	ids := map[string]bool{}
	for _, d := range decoded {
		if ids[d.ID.String()] {
			t.Fatalf("duplicate event id %s (%s in %s)", d.ID, d.Event.Type, d.Stream)
		}
		ids[d.ID.String()] = true
	}
	cids := conversationIDs(seedLatency, 3)
	var hooks []webhook
	for i := range 7 {
		hooks = append(hooks, latencyHook(cids, i))
	}
	recs, err = records(hooks, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if decoded, err = decodeAll(dec, "t", recs); err != nil {
		t.Fatal(err)
	}
	for i, d := range decoded {
		if d.Event.ConversationSid != cids[i%3].Conversation || d.Event.Index != i/3 || d.Event.MessageSid == "" {
			t.Errorf("latency webhook %d: %+v", i, d.Event)
		}
	}
}

func TestValidateNamesTheFlag(t *testing.T) {
	for _, tt := range []struct {
		set  func(*Config)
		flag string
	}{
		{func(c *Config) { c.DataDir = "" }, "--data"},
		{func(c *Config) { c.Only = "everything" }, "--only"},
		{func(c *Config) { c.Rounds = 0 }, "--rounds"},
		{func(c *Config) { c.Events = 0 }, "--events"},
		{func(c *Config) { c.Workers = 0 }, "--projector-workers"},
		{func(c *Config) { c.Rate = 0 }, "--rate"},
		{func(c *Config) { c.Senders = 5000 }, "--senders"},
		{func(c *Config) { c.Conversations = 0 }, "--conversations"},
	} {
		c := Defaults()
		c.DataDir = "x"
		tt.set(&c)
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), tt.flag) {
			t.Errorf("want an error naming %s, got %v", tt.flag, err)
		}
	}
}
