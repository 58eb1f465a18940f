package api_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/flexstream/flexstream/projector/api"
)

// sse is a client of /v1/events.
type sse struct {
	t      *testing.T
	resp   *http.Response
	r      *bufio.Reader
	cancel context.CancelFunc
}

// sseEvent is one event or comment block of the stream.
type sseEvent struct {
	event, id, data string
	comments        []string
}

func (h *harness) openEvents() *sse {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, h.srv.URL()+"/v1/events", nil)
	if h.token != "" {
		req.Header.Set("Authorization", "Bearer "+h.token)
	}
	resp, err := h.client.Do(req)
	if err != nil {
		cancel()
		h.t.Fatal(err)
	}
	s := &sse{t: h.t, resp: resp, r: bufio.NewReader(resp.Body), cancel: cancel}
	h.t.Cleanup(s.close)
	if resp.StatusCode != http.StatusOK {
		h.t.Fatalf("/v1/events: %d", resp.StatusCode)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		h.t.Fatalf("Content-Type %q", ct)
	}
	// The subscription is live once the first comment is in.
	if e, err := s.next(); err != nil || len(e.comments) != 1 || e.comments[0] != "connected" {
		h.t.Fatalf("first block %+v, %v", e, err)
	}
	return s
}

func (s *sse) close() {
	s.cancel()
	s.resp.Body.Close()
}

// next reads one block (up to a blank line).
func (s *sse) next() (sseEvent, error) {
	var e sseEvent
	for {
		line, err := s.r.ReadString('\n')
		if err != nil {
			if err == io.EOF && line == "" && e.event == "" && e.comments == nil {
				return e, io.EOF
			}
			return e, fmt.Errorf("mid-block: %q: %w", line, err)
		}
		line = strings.TrimSuffix(line, "\n")
		switch {
		case line == "":
			return e, nil
		case strings.HasPrefix(line, ": "):
			e.comments = append(e.comments, strings.TrimPrefix(line, ": "))
		case strings.HasPrefix(line, "event: "):
			e.event = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "id: "):
			e.id = strings.TrimPrefix(line, "id: ")
		case strings.HasPrefix(line, "data: "):
			if e.data != "" {
				s.t.Errorf("data spans lines: %q", line)
			}
			e.data = strings.TrimPrefix(line, "data: ")
		default:
			s.t.Errorf("unexpected line %q", line)
		}
	}
}

// nextEvent skips heartbeats.
func (s *sse) nextEvent() sseEvent {
	s.t.Helper()
	for {
		e, err := s.next()
		if err != nil {
			s.t.Fatal(err)
		}
		if e.event != "" {
			return e
		}
	}
}

func TestEventsInOrder(t *testing.T) {
	h := newHarness(t, nil)
	a, b := h.openEvents(), h.openEvents()

	var changes []api.Change
	var want []sseEvent
	for i := 1; i <= 200; i++ {
		var c api.Change
		switch i % 3 {
		case 0:
			c = api.Change{Kind: api.KindConversation, SID: convSID(i), View: json.RawMessage(fmt.Sprintf("{\n  \"sid\": %q,\n  \"n\": %d\n}", convSID(i), i))}
		case 1:
			c = api.Change{Kind: api.KindTask, SID: taskSID(i), View: json.RawMessage(fmt.Sprintf(`{"sid":%q,"n":%d}`, taskSID(i), i))}
		case 2:
			c = api.Change{Kind: api.KindStats, View: json.RawMessage(fmt.Sprintf(`{"n": %d}`, i))}
		}
		changes = append(changes, c)
		want = append(want, sseEvent{event: c.Kind, id: fmt.Sprint(len(want) + 1), data: compact(t, c.View)})
		if i == 50 { // skipped: neither counted nor sent
			changes = append(changes, api.Change{Kind: "bogus\nevent: x", View: json.RawMessage(`{}`)},
				api.Change{Kind: api.KindStats, View: json.RawMessage(`{not json`)})
		}
	}
	h.publish(changes...)
	for _, s := range []*sse{a, b} {
		for i, w := range want {
			got := s.nextEvent()
			if got.event != w.event || got.id != w.id || got.data != w.data {
				t.Fatalf("event %d: got %+v, want %+v", i, got, w)
			}
		}
	}
	if h.logs.FilterMessage("feed change of unknown kind skipped").Len() != 2 ||
		h.logs.FilterMessage("feed change is not JSON; skipped").Len() != 2 {
		t.Error("skipped changes not logged (once per stream)")
	}
	body := string(h.get("/metrics").body)
	for _, m := range []string{"flexstream_api_event_streams 2", `flexstream_api_stream_events_total{kind="task"} 134`} {
		if !strings.Contains(body, m) {
			t.Errorf("/metrics lacks %q", m)
		}
	}
}

func TestEventsHeartbeat(t *testing.T) {
	h := newHarness(t, func(c *api.Config) { c.HeartbeatInterval = 20 * time.Millisecond })
	s := h.openEvents()
	for range 3 {
		e, err := s.next()
		if err != nil || e.event != "" || fmt.Sprint(e.comments) != "[heartbeat]" {
			t.Fatalf("%+v %v, want a heartbeat", e, err)
		}
	}
	h.publish(api.Change{Kind: api.KindStats, View: json.RawMessage(`{}`)})
	if e := s.nextEvent(); e.id != "1" || e.data != "{}" {
		t.Errorf("event after heartbeats: %+v", e)
	}
}

func TestEventsEndOnShutdown(t *testing.T) {
	h := newHarness(t, nil)
	s := h.openEvents()
	h.publish(api.Change{Kind: api.KindStats, View: json.RawMessage(`{"n":1}`)})
	if e := s.nextEvent(); e.data != `{"n":1}` {
		t.Fatalf("%+v", e)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	start := time.Now()
	if err := h.srv.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown with a stream open: %v", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("Shutdown took %s", d)
	}
	if e, err := s.next(); !errors.Is(err, io.EOF) {
		t.Fatalf("after Shutdown: %+v, %v; want the stream to end cleanly", e, err)
	}
	waitFor(t, "the feed subscription to end", func() bool { return h.feed.subscribers() == 0 })
}

func TestEventsEndWhenTheClientGoes(t *testing.T) {
	h := newHarness(t, nil)
	s := h.openEvents()
	if h.feed.subscribers() != 1 {
		t.Fatal("not subscribed")
	}
	s.close()
	waitFor(t, "the feed subscription to end", func() bool { return h.feed.subscribers() == 0 })
	waitFor(t, "the stream gauge to drop", func() bool {
		return strings.Contains(string(h.get("/metrics").body), "flexstream_api_event_streams 0")
	})
}

func TestEventsFeedUnavailable(t *testing.T) {
	h := newHarness(t, nil)
	h.feed.err = errors.New("feed closed")
	wantJSONError(t, h.get("/v1/events"), http.StatusServiceUnavailable, "live updates unavailable")
}

func TestEventsBehindAuth(t *testing.T) {
	const token = "another-token-0123456789"
	h := newHarness(t, func(c *api.Config) { c.BearerToken = token })
	wantJSONError(t, h.get("/v1/events"), http.StatusUnauthorized, "bearer")
	if h.feed.subscribers() != 0 {
		t.Error("subscribed without a token")
	}
	h.token = token
	s := h.openEvents()
	h.publish(api.Change{Kind: api.KindTask, View: json.RawMessage(`{"t":1}`)})
	if e := s.nextEvent(); e.event != "task" {
		t.Errorf("%+v", e)
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
