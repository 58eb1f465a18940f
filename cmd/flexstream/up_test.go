package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"go.uber.org/goleak"

	"github.com/flexstream/flexstream/internal/eventstore"
	"github.com/flexstream/flexstream/internal/kafkaio"
	"github.com/flexstream/flexstream/internal/testutil"
)

// binary is the flexstream command built once for the process tests: they
// start it the way an operator does and send it real signals.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "flexstream-bin")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "flexstream")
	if out, err := exec.Command("go", "build", "-o", binary, ".").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build flexstream: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	if code == 0 {
		// goleak waits about 2 s for goroutines to end; under the race
		// detector on a busy 2-core machine a closing gRPC connection of an
		// in-process test can take longer, so look a few more times. A real
		// leak stays and fails.
		var err error
		for range 5 {
			if err = goleak.Find(); err == nil {
				break
			}
			time.Sleep(2 * time.Second)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "goroutine leak:", err)
			code = 1
		}
	}
	os.Exit(code)
}

type upProcess struct {
	*testutil.Process
	addr     string // where Kafka listens
	store    string // the event store's connection string
	ingest   string // base URL of the webhook endpoints
	api      string // base URL of the query API
	reactors string // base URL of the reactors' /metrics
}

var (
	listenLine  = regexp.MustCompile(`Kafka listening on (\S+)`)
	webhookLine = regexp.MustCompile(`Twilio webhooks on (http://[^/\s]+)/webhooks/`)
	apiLine     = regexp.MustCompile(`query API on (http://\S+)`)
	reactorLine = regexp.MustCompile(`reactors .*; metrics on (http://\S+)`)
)

// startUp runs `flexstream up` and waits for it to say where Kafka and the
// event store listen.
func startUp(t *testing.T, dataDir, addr string, extra ...string) *upProcess {
	t.Helper()
	return startUpEnv(t, dataDir, addr, nil, extra...)
}

// startUpEnv is startUp with environment variables (NAME=value) that
// override the test's clean defaults.
func startUpEnv(t *testing.T, dataDir, addr string, env []string, extra ...string) *upProcess {
	t.Helper()
	args := append([]string{"up", "--data", dataDir, "--kafka-addr", addr, "--store-addr", "127.0.0.1:0", "--ingest-addr", "127.0.0.1:0", "--api-addr", "127.0.0.1:0", "--reactors-addr", "127.0.0.1:0", "--sim=false", "--log-format", "json"}, extra...)
	cmd := exec.Command(binary, args...)
	cmd.Env = append(os.Environ(), "FLEXSTREAM_PSEUDONYM_KEY=", "TWILIO_ACCOUNT_SID=", "TWILIO_AUTH_TOKEN=", "TWILIO_AUTH_TOKEN_SECONDARY=", "FLEXSTREAM_API_TOKEN=")
	cmd.Env = append(cmd.Env, env...)
	p, got := testutil.Start(t, cmd, listenLine, storeLine, webhookLine, apiLine, reactorLine)
	return &upProcess{Process: p, addr: got[0], store: got[1], ingest: got[2], api: got[3], reactors: got[4]}
}

// stop sends sig and waits for the process to end.
func (p *upProcess) stop(t *testing.T, sig syscall.Signal) error {
	t.Helper()
	return p.Signal(t, sig)
}

func freeAddr(t *testing.T) string { return testutil.FreeAddr(t) }

func produce(t *testing.T, ctx context.Context, addr string, from, to int) {
	t.Helper()
	p, err := kafkaio.NewProducer(kafkaio.ProducerConfig{Brokers: []string{addr}, Topic: "twilio.events.v1"})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	for i := from; i < to; i++ {
		if err := p.Publish(ctx, kafka.Message{Key: []byte(fmt.Sprintf("CH%d", i%5)), Value: []byte(fmt.Sprintf("event-%d", i))}); err != nil {
			t.Fatalf("publish %d: %v", i, err)
		}
	}
}

// consume reads n records as group, committing each, and returns their values.
func consume(t *testing.T, ctx context.Context, addr, group string, n int) map[string]bool {
	t.Helper()
	c, err := kafkaio.NewConsumer(kafkaio.ConsumerConfig{Brokers: []string{addr}, GroupID: group, Topics: []string{"twilio.events.v1"},
		SessionTimeout: 10 * time.Second, HeartbeatInterval: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	got := map[string]bool{}
	for len(got) < n {
		m, err := c.Fetch(ctx)
		if err != nil {
			t.Fatalf("after %d of %d records: %v", len(got), n, err)
		}
		if got[string(m.Value)] {
			t.Fatalf("%s delivered twice", m.Value)
		}
		got[string(m.Value)] = true
		if err := c.Commit(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	return got
}

func wantEvents(t *testing.T, got map[string]bool, from, to int) {
	t.Helper()
	for i := from; i < to; i++ {
		if !got[fmt.Sprintf("event-%d", i)] {
			t.Fatalf("event-%d missing; have %d records", i, len(got))
		}
	}
}

// TestUpKeepsRecordsAcrossRestarts is the operator's view: start, produce
// and consume with an ordinary Kafka client, stop with SIGTERM (exit 0),
// start again on the same data: records and committed offsets are there.
// Then the same after kill -9: with sync writes on (the default) an
// acknowledged record survives a crash too.
func TestUpKeepsRecordsAcrossRestarts(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	data := t.TempDir()
	addr := freeAddr(t)

	p := startUp(t, data, addr)
	if p.addr != addr {
		t.Fatalf("listening on %s, asked for %s", p.addr, addr)
	}
	produce(t, ctx, addr, 0, 50)
	first := consume(t, ctx, addr, "resume", 20)
	es, err := eventstore.Connect(ctx, eventstore.Config{ConnString: p.store})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := es.Append(ctx, "conversation-CHup", eventstore.NoStream, eventstore.Event{Type: "ConversationAdded", Data: []byte(`{}`)}); err != nil {
		t.Fatal(err)
	}
	es.Close()
	if err := p.stop(t, syscall.SIGTERM); err != nil {
		t.Fatalf("SIGTERM: exit %v, want 0\n%s", err, p.Stderr)
	}
	if !strings.Contains(p.Stderr.String(), "state flushed to disk") {
		t.Fatalf("no clean shutdown in the log:\n%s", p.Stderr)
	}

	p = startUp(t, data, addr)
	wantEvents(t, consume(t, ctx, addr, "everything", 50), 0, 50)
	es, err = eventstore.Connect(ctx, eventstore.Config{ConnString: p.store})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := es.Append(ctx, "conversation-CHup", eventstore.Revision(0), eventstore.Event{Type: "ConversationStateUpdated", Data: []byte(`{}`)}); err != nil {
		t.Fatal(err)
	}
	es.Close()
	// The group committed 20 before the restart and goes on from there.
	for v := range consume(t, ctx, addr, "resume", 30) {
		if first[v] {
			t.Fatalf("%s was committed before the restart and delivered again", v)
		}
		first[v] = true
	}
	wantEvents(t, first, 0, 50)
	produce(t, ctx, addr, 50, 80)
	if err := p.stop(t, syscall.SIGKILL); err == nil {
		t.Fatal("kill -9 should end the process with an error status")
	}

	p = startUp(t, data, addr)
	wantEvents(t, consume(t, ctx, addr, "after-crash", 80), 0, 80)
	// The embedded event store kept what it acknowledged through both
	// restarts, too.
	es, err = eventstore.Connect(ctx, eventstore.Config{ConnString: p.store})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	if err := es.ReadStream(ctx, "conversation-CHup", 0, 10, func(e eventstore.RecordedEvent) error { got = append(got, e.Type); return nil }); err != nil {
		t.Fatal(err)
	}
	es.Close()
	if strings.Join(got, ",") != "ConversationAdded,ConversationStateUpdated" {
		t.Fatalf("event store after restarts: %v", got)
	}
	if err := p.stop(t, syscall.SIGINT); err != nil {
		t.Fatalf("Ctrl-C: exit %v, want 0\n%s", err, p.Stderr)
	}
}

func TestUpRefusesABusyDataDirectory(t *testing.T) {
	data := t.TempDir()
	p := startUp(t, data, freeAddr(t))
	out, err := exec.Command(binary, "up", "--data", data, "--kafka-addr", freeAddr(t), "--store-addr", "127.0.0.1:0", "--ingest-addr", "127.0.0.1:0", "--api-addr", "127.0.0.1:0", "--reactors-addr", "127.0.0.1:0").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "in use by another flexstream process") {
		t.Fatalf("second up on the same data: %v\n%s", err, out)
	}
	if err := p.stop(t, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
}

func TestUpRefusesATakenPort(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	out, err := exec.Command(binary, "up", "--data", t.TempDir(), "--kafka-addr", l.Addr().String(), "--store-addr", "127.0.0.1:0", "--ingest-addr", "127.0.0.1:0", "--api-addr", "127.0.0.1:0", "--reactors-addr", "127.0.0.1:0").CombinedOutput()
	if err == nil || !strings.Contains(string(out), l.Addr().String()) {
		t.Fatalf("up on a taken port: %v\n%s", err, out)
	}
}
