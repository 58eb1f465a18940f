package eventstore_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/google/uuid"
	"go.uber.org/goleak"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/flexstream/flexstream/internal/esserver"
	"github.com/flexstream/flexstream/internal/eventstore"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type server struct {
	t    *testing.T
	dir  string
	addr string
	srv  *esserver.Server
}

func startServer(t *testing.T, dir, addr string) *server {
	t.Helper()
	srv, err := esserver.Start(context.Background(), esserver.Config{Addr: addr, DataDir: dir, Logger: zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel))})
	if err != nil {
		t.Fatal(err)
	}
	s := &server{t: t, dir: dir, addr: srv.Addr(), srv: srv}
	t.Cleanup(func() { _ = s.srv.Close() })
	return s
}

func (s *server) restart() {
	s.t.Helper()
	if err := s.srv.Close(); err != nil {
		s.t.Fatal(err)
	}
	srv, err := esserver.Start(context.Background(), esserver.Config{Addr: s.addr, DataDir: s.dir, Logger: zaptest.NewLogger(s.t, zaptest.Level(zap.WarnLevel))})
	if err != nil {
		s.t.Fatal(err)
	}
	s.srv = srv
}

func connect(t *testing.T, ctx context.Context, conn string) *eventstore.Client {
	t.Helper()
	c, err := eventstore.Connect(ctx, eventstore.Config{ConnString: conn, Logger: zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func ev(i int) eventstore.Event {
	return eventstore.Event{ID: uuid.New(), Type: "Test", Data: []byte(fmt.Sprintf(`{"i":%d}`, i))}
}

func TestConfigValidate(t *testing.T) {
	for _, conn := range []string{"", "http://x", "esdb://h:2113?tls=maybe"} {
		c := eventstore.Config{ConnString: conn}
		if err := c.Validate(); err == nil {
			t.Errorf("%q accepted", conn)
		}
	}
}

// Connect retries until the store answers: a role started before its
// event store does not crash.
func TestConnectWaitsForTheServer(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	dir := t.TempDir()
	go func() {
		time.Sleep(700 * time.Millisecond)
		startServer(t, dir, addr)
	}()
	c := connect(t, ctx, "esdb://"+addr+"?tls=false")
	if _, err := c.Append(ctx, "s-1", eventstore.NoStream, ev(0)); err != nil {
		t.Fatal(err)
	}

	short, cancel2 := context.WithTimeout(ctx, time.Second)
	defer cancel2()
	_, err = eventstore.Connect(short, eventstore.Config{ConnString: "esdb://127.0.0.1:1?tls=false", ConnectTimeout: time.Second})
	if !errors.Is(err, eventstore.ErrUnavailable) {
		t.Fatalf("nothing listening: got %v, want ErrUnavailable", err)
	}
}

func TestTypedErrors(t *testing.T) {
	ctx := context.Background()
	s := startServer(t, t.TempDir(), "127.0.0.1:0")
	c := connect(t, ctx, s.srv.ConnectionString())

	if _, err := c.Append(ctx, "typed-1", eventstore.NoStream, ev(0)); err != nil {
		t.Fatal(err)
	}
	_, err := c.Append(ctx, "typed-1", eventstore.NoStream, ev(1))
	if !errors.Is(err, eventstore.ErrWrongExpectedVersion) {
		t.Fatalf("second no_stream append: %v", err)
	}
	var ee *esdb.Error
	if !errors.As(err, &ee) || ee.Code() != esdb.ErrorCodeWrongExpectedVersion {
		t.Fatalf("the client's error must stay reachable: %v", err)
	}
	err = c.ReadStream(ctx, "typed-missing", 0, 10, func(eventstore.RecordedEvent) error { return nil })
	if !errors.Is(err, eventstore.ErrStreamNotFound) {
		t.Fatalf("missing stream: %v", err)
	}
	if _, err := c.Raw().TombstoneStream(ctx, "typed-1", esdb.TombstoneStreamOptions{}); err != nil {
		t.Fatal(err)
	}
	err = c.ReadStream(ctx, "typed-1", 0, 10, func(eventstore.RecordedEvent) error { return nil })
	if !errors.Is(err, eventstore.ErrStreamDeleted) {
		t.Fatalf("tombstoned stream: %v", err)
	}
	stop := errors.New("stop here")
	if _, err := c.Append(ctx, "typed-2", eventstore.Any, ev(0), ev(1)); err != nil {
		t.Fatal(err)
	}
	if err := c.ReadStream(ctx, "typed-2", 0, 10, func(eventstore.RecordedEvent) error { return stop }); !errors.Is(err, stop) {
		t.Fatalf("callback error must come back as is: %v", err)
	}
}

// collector is a Handler that records positions and values.
type collector struct {
	mu   sync.Mutex
	seen map[string]int
	last uint64
	n    int
	ch   chan struct{}
}

func newCollector() *collector {
	return &collector{seen: map[string]int{}, ch: make(chan struct{}, 1<<16)}
}

func (c *collector) handle(_ context.Context, e eventstore.RecordedEvent) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e.Position <= c.last {
		return fmt.Errorf("position %d after %d", e.Position, c.last)
	}
	c.last = e.Position
	c.seen[string(e.Data)]++
	c.n++
	c.ch <- struct{}{}
	return nil
}

func (c *collector) waitFor(t *testing.T, n int) {
	t.Helper()
	deadline := time.After(30 * time.Second)
	for {
		c.mu.Lock()
		got := c.n
		c.mu.Unlock()
		if got >= n {
			return
		}
		select {
		case <-c.ch:
		case <-deadline:
			t.Fatalf("delivered %d of %d", got, n)
		}
	}
}

// The subscription helper rides over a server restart: the client's own
// subscription drops; the helper resubscribes from the last position and
// every event arrives exactly once.
func TestSubscribeAllResubscribesAcrossRestart(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s := startServer(t, t.TempDir(), "127.0.0.1:0")
	c := connect(t, ctx, s.srv.ConnectionString())
	for i := 0; i < 50; i++ {
		if _, err := c.Append(ctx, "sub-a", eventstore.Any, ev(i)); err != nil {
			t.Fatal(err)
		}
	}
	col := newCollector()
	caughtUp := make(chan struct{}, 10)
	done := make(chan error, 1)
	go func() {
		done <- c.SubscribeAll(ctx, eventstore.SubscribeOptions{
			Name: "test", MinBackoff: 50 * time.Millisecond, MaxBackoff: 200 * time.Millisecond,
			OnCaughtUp: func() { caughtUp <- struct{}{} },
		}, col.handle)
	}()
	col.waitFor(t, 50)
	<-caughtUp
	s.restart()
	for i := 50; i < 100; i++ {
		if _, err := c.Append(ctx, "sub-a", eventstore.Any, ev(i)); err != nil {
			t.Fatalf("append after restart: %v", err)
		}
	}
	col.waitFor(t, 100)
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("SubscribeAll ended with %v, want nil on cancel", err)
	}
	for i := 0; i < 100; i++ {
		if n := col.seen[fmt.Sprintf(`{"i":%d}`, i)]; n != 1 {
			t.Fatalf("event %d delivered %d times", i, n)
		}
	}
}

// From resumes after a stored checkpoint; FromEnd skips history; a
// filtered subscription reports checkpoints; a handler error ends it.
func TestSubscribeAllStartPointsFiltersAndErrors(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s := startServer(t, t.TempDir(), "127.0.0.1:0")
	c := connect(t, ctx, s.srv.ConnectionString())
	var positions []uint64
	for i := 0; i < 10; i++ {
		res, err := c.Append(ctx, "conversation-1", eventstore.Any, ev(i))
		if err != nil {
			t.Fatal(err)
		}
		positions = append(positions, res.Position)
	}

	run := func(opts eventstore.SubscribeOptions, want int) *collector {
		t.Helper()
		col := newCollector()
		sctx, scancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- c.SubscribeAll(sctx, opts, col.handle) }()
		col.waitFor(t, want)
		scancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		return col
	}

	from := positions[6]
	col := run(eventstore.SubscribeOptions{From: &from, Filter: &esdb.SubscriptionFilter{Type: esdb.StreamFilterType, Prefixes: []string{"conversation-"}}}, 3)
	if col.seen[`{"i":6}`] != 0 || col.seen[`{"i":7}`] != 1 || col.seen[`{"i":9}`] != 1 {
		t.Fatalf("resume after position of event 6: %v", col.seen)
	}

	// FromEnd: only what is appended after the start.
	col2 := newCollector()
	sctx, scancel := context.WithCancel(ctx)
	defer scancel()
	caught := make(chan struct{}, 1)
	go func() {
		_ = c.SubscribeAll(sctx, eventstore.SubscribeOptions{FromEnd: true, OnCaughtUp: func() { caught <- struct{}{} }}, col2.handle)
	}()
	<-caught
	if _, err := c.Append(ctx, "conversation-1", eventstore.Any, ev(100)); err != nil {
		t.Fatal(err)
	}
	col2.waitFor(t, 1)
	if col2.seen[`{"i":100}`] != 1 || len(col2.seen) != 1 {
		t.Fatalf("FromEnd delivered history: %v", col2.seen)
	}
	scancel()

	// Checkpoints arrive for a filter that matches nothing.
	for i := 0; i < 100; i++ {
		if _, err := c.Append(ctx, "other-1", eventstore.Any, ev(i)); err != nil {
			t.Fatal(err)
		}
	}
	cps := make(chan uint64, 100)
	cctx, ccancel := context.WithCancel(ctx)
	defer ccancel()
	go func() {
		_ = c.SubscribeAll(cctx, eventstore.SubscribeOptions{
			Filter:       &esdb.SubscriptionFilter{Type: esdb.StreamFilterType, Prefixes: []string{"nothing-"}},
			OnCheckpoint: func(_ context.Context, p uint64) error { cps <- p; return nil },
		}, func(context.Context, eventstore.RecordedEvent) error { return errors.New("nothing should match") })
	}()
	select {
	case p := <-cps:
		if p == 0 {
			t.Fatal("checkpoint at 0")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no checkpoint from a filtered subscription")
	}
	ccancel()

	boom := errors.New("boom")
	err := c.SubscribeAll(ctx, eventstore.SubscribeOptions{}, func(context.Context, eventstore.RecordedEvent) error { return boom })
	if !errors.Is(err, boom) {
		t.Fatalf("handler error: got %v", err)
	}
}

func TestLastEvent(t *testing.T) {
	ctx := context.Background()
	s := startServer(t, t.TempDir(), "127.0.0.1:0")
	c := connect(t, ctx, s.srv.ConnectionString())
	if _, err := c.LastEvent(ctx, "missing-1"); !errors.Is(err, eventstore.ErrStreamNotFound) {
		t.Fatalf("missing stream: %v", err)
	}
	var want eventstore.Event
	for i := 0; i < 3; i++ {
		want = ev(i)
		if _, err := c.Append(ctx, "last-1", eventstore.Any, want); err != nil {
			t.Fatal(err)
		}
	}
	got, err := c.LastEvent(ctx, "last-1")
	if err != nil || got.ID != want.ID || got.Revision != 2 {
		t.Fatalf("last event %+v, %v; want revision 2, id %s", got, err, want.ID)
	}
}
