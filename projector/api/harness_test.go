package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/flexstream/flexstream/projector/api"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func convSID(n int) string { return fmt.Sprintf("CH%032x", n) }
func taskSID(n int) string { return fmt.Sprintf("WT%032x", n) }

// memStore is an in-memory read-model store: conversation views keyed by
// SID, filtered on the fields the views carry, paged by the last SID.
type memStore struct {
	mu            sync.Mutex
	conversations map[string]json.RawMessage
	tasks         map[string]json.RawMessage
	stats         json.RawMessage
	err           error         // returned by every call when set
	block         chan struct{} // Conversation waits for it when set
	entered       chan struct{} // closed when a Conversation call is waiting on block
	queries       []api.ConversationQuery
}

func newMemStore() *memStore {
	return &memStore{conversations: map[string]json.RawMessage{}, tasks: map[string]json.RawMessage{},
		stats: json.RawMessage(`{"active":1,"orphaned":0}`)}
}

type convDoc struct {
	SID      string   `json:"sid"`
	State    string   `json:"state"`
	Orphaned bool     `json:"orphaned"`
	Flags    []string `json:"flags"`
}

func (m *memStore) addConversation(sid, state string, orphaned bool, flags ...string) json.RawMessage {
	if flags == nil {
		flags = []string{}
	}
	b, _ := json.Marshal(convDoc{SID: sid, State: state, Orphaned: orphaned, Flags: flags})
	m.mu.Lock()
	m.conversations[sid] = b
	m.mu.Unlock()
	return b
}

func (m *memStore) Conversation(ctx context.Context, sid string) (json.RawMessage, error) {
	m.mu.Lock()
	block, entered, err := m.block, m.entered, m.err
	v, ok := m.conversations[sid]
	m.mu.Unlock()
	if block != nil {
		close(entered)
		<-block
	}
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("conversation %s: %w", sid, api.ErrNotFound)
	}
	return v, nil
}

func (m *memStore) Conversations(ctx context.Context, q api.ConversationQuery) (api.ConversationPage, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.queries = append(m.queries, q)
	if m.err != nil {
		return api.ConversationPage{}, m.err
	}
	sids := make([]string, 0, len(m.conversations))
	for sid := range m.conversations {
		sids = append(sids, sid)
	}
	sort.Strings(sids)
	var page api.ConversationPage
	for _, sid := range sids {
		if sid <= q.Cursor {
			continue
		}
		var d convDoc
		if err := json.Unmarshal(m.conversations[sid], &d); err != nil {
			return page, err
		}
		if (q.State != "" && d.State != q.State) || (q.Orphaned != nil && d.Orphaned != *q.Orphaned) ||
			(q.Flag != "" && !slices.Contains(d.Flags, q.Flag)) {
			continue
		}
		if len(page.Items) == q.Limit {
			page.NextCursor = string(lastSID(page.Items))
			break
		}
		page.Items = append(page.Items, m.conversations[sid])
	}
	return page, nil
}

func lastSID(items []json.RawMessage) string {
	var d convDoc
	_ = json.Unmarshal(items[len(items)-1], &d)
	return d.SID
}

func (m *memStore) lastQuery() api.ConversationQuery {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.queries[len(m.queries)-1]
}

func (m *memStore) Task(ctx context.Context, sid string) (json.RawMessage, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.err != nil {
		return nil, m.err
	}
	v, ok := m.tasks[sid]
	if !ok {
		return nil, api.ErrNotFound
	}
	return v, nil
}

func (m *memStore) Stats(ctx context.Context) (json.RawMessage, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.stats, m.err
}

// memTimeline holds streams of events; fn is called as the API asks.
type memTimeline struct {
	mu      sync.Mutex
	streams map[string][]api.TimelineEvent
	asked   []string
	// after, when set, runs after each event handed to fn; an error
	// ends the read with it.
	after func(i int) error
}

func (t *memTimeline) Events(ctx context.Context, stream string, fn func(api.TimelineEvent) error) error {
	t.mu.Lock()
	t.asked = append(t.asked, stream)
	events, ok := t.streams[stream]
	after := t.after
	t.mu.Unlock()
	if !ok {
		return api.ErrNotFound
	}
	for i, e := range events {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := fn(e); err != nil {
			return err
		}
		if after != nil {
			if err := after(i); err != nil {
				return err
			}
		}
	}
	return nil
}

// memFeed fans changes out to its subscribers.
type memFeed struct {
	mu   sync.Mutex
	subs map[chan api.Change]context.Context
	err  error
}

func newMemFeed() *memFeed { return &memFeed{subs: map[chan api.Change]context.Context{}} }

func (f *memFeed) Subscribe(ctx context.Context) (<-chan api.Change, error) {
	if f.err != nil {
		return nil, f.err
	}
	ch := make(chan api.Change)
	f.mu.Lock()
	f.subs[ch] = ctx
	f.mu.Unlock()
	go func() {
		<-ctx.Done()
		f.mu.Lock()
		delete(f.subs, ch)
		f.mu.Unlock()
		close(ch)
	}()
	return ch, nil
}

// publish hands every change to every subscriber, in order, waiting for
// each (unlike the real feed, which drops for slow listeners).
func (f *memFeed) publish(changes ...api.Change) error {
	f.mu.Lock()
	subs := make(map[chan api.Change]context.Context, len(f.subs))
	for ch, ctx := range f.subs {
		subs[ch] = ctx
	}
	f.mu.Unlock()
	if len(subs) == 0 {
		return errors.New("publish: no subscriber")
	}
	for _, c := range changes {
		for ch, ctx := range subs {
			select {
			case ch <- c:
			case <-ctx.Done():
			case <-time.After(10 * time.Second):
				return errors.New("publish: a subscriber does not take changes")
			}
		}
	}
	return nil
}

// publish publishes in the background (the stream is read meanwhile);
// the test waits for it at the end.
func (h *harness) publish(changes ...api.Change) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := h.feed.publish(changes...); err != nil {
			h.t.Error(err)
		}
	}()
	h.t.Cleanup(func() { <-done })
}

func (f *memFeed) subscribers() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.subs)
}

// harness is the API over real HTTP on loopback.
type harness struct {
	t        *testing.T
	store    *memStore
	timeline *memTimeline
	feed     *memFeed
	srv      *api.Server
	logs     *observer.ObservedLogs
	client   *http.Client
	token    string // sent as a bearer token when set
	// shutdownErrOK: the test shut the server down past a deadline.
	shutdownErrOK bool
}

func newHarness(t *testing.T, configure func(*api.Config)) *harness {
	t.Helper()
	core, logs := observer.New(zapcore.DebugLevel)
	h := &harness{t: t, store: newMemStore(), timeline: &memTimeline{streams: map[string][]api.TimelineEvent{}},
		feed: newMemFeed(), logs: logs}
	tr := &http.Transport{}
	h.client = &http.Client{Transport: tr}
	cfg := api.Config{
		Addr: "127.0.0.1:0", Store: h.store, Timeline: h.timeline, Feed: h.feed,
		Logger: zap.New(core), HeartbeatInterval: time.Hour,
	}
	if configure != nil {
		configure(&cfg)
	}
	srv, err := api.Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	h.srv = srv
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil && !h.shutdownErrOK {
			t.Errorf("shutdown: %v", err)
		}
		tr.CloseIdleConnections()
	})
	return h
}

type response struct {
	code   int
	header http.Header
	body   []byte
}

func (r response) json(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatalf("body is not a JSON object: %v: %q", err, r.body)
	}
	return m
}

func (h *harness) do(method, path string, header http.Header) response {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, h.srv.URL()+path, nil)
	if err != nil {
		h.t.Fatal(err)
	}
	if h.token != "" {
		req.Header.Set("Authorization", "Bearer "+h.token)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := h.client.Do(req)
	if err != nil {
		h.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		h.t.Fatalf("%s %s: read body: %v", method, path, err)
	}
	return response{code: resp.StatusCode, header: resp.Header, body: body}
}

func (h *harness) get(path string) response {
	h.t.Helper()
	return h.do(http.MethodGet, path, nil)
}

// wantJSONError checks a JSON error answer.
func wantJSONError(t *testing.T, r response, code int, contains string) map[string]any {
	t.Helper()
	if r.code != code {
		t.Fatalf("status %d, want %d: %s", r.code, code, r.body)
	}
	if ct := r.header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q", ct)
	}
	m := r.json(t)
	msg, _ := m["error"].(string)
	if msg == "" || !strings.Contains(msg, contains) {
		t.Errorf("error %q, want it to mention %q", msg, contains)
	}
	return m
}

func compact(t *testing.T, b []byte) string {
	t.Helper()
	var buf bytes.Buffer
	if err := json.Compact(&buf, b); err != nil {
		t.Fatalf("not JSON: %v: %q", err, b)
	}
	return buf.String()
}
