package api_test

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/flexstream/flexstream/projector/api"
)

func TestConversation(t *testing.T) {
	h := newHarness(t, nil)
	want := h.store.addConversation(convSID(1), "active", false, "pii-identity")

	r := h.get("/v1/conversations/" + convSID(1))
	if r.code != http.StatusOK || compact(t, r.body) != string(want) {
		t.Fatalf("got %d %s, want 200 %s", r.code, r.body, want)
	}
	if ct := r.header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q", ct)
	}
	wantJSONError(t, h.get("/v1/conversations/"+convSID(2)), http.StatusNotFound, "conversation not found")
	for _, bad := range []string{"CH123", taskSID(1), strings.ToUpper(convSID(0xabc)), convSID(1) + "0", "%20"} {
		m := wantJSONError(t, h.get("/v1/conversations/"+bad), http.StatusBadRequest, "sid")
		if m["parameter"] != "sid" {
			t.Errorf("%s: parameter %v", bad, m["parameter"])
		}
	}
}

func TestTask(t *testing.T) {
	h := newHarness(t, nil)
	h.store.tasks[taskSID(7)] = json.RawMessage(`{"sid":"` + taskSID(7) + `","status":"assigned"}`)

	r := h.get("/v1/tasks/" + taskSID(7))
	if r.code != http.StatusOK || !strings.Contains(string(r.body), `"status":"assigned"`) {
		t.Fatalf("got %d %s", r.code, r.body)
	}
	wantJSONError(t, h.get("/v1/tasks/"+taskSID(8)), http.StatusNotFound, "task not found")
	wantJSONError(t, h.get("/v1/tasks/"+convSID(7)), http.StatusBadRequest, "WT")
}

func TestStats(t *testing.T) {
	h := newHarness(t, nil)
	r := h.get("/v1/stats")
	if r.code != http.StatusOK || compact(t, r.body) != `{"active":1,"orphaned":0}` {
		t.Fatalf("got %d %s", r.code, r.body)
	}
}

func TestStoreFailureIsA500WithoutDetails(t *testing.T) {
	h := newHarness(t, nil)
	h.store.err = errors.New("pebble: disk on fire at /secret/path")
	for _, path := range []string{"/v1/conversations/" + convSID(1), "/v1/conversations", "/v1/tasks/" + taskSID(1), "/v1/stats"} {
		r := wantJSONError(t, h.get(path), http.StatusInternalServerError, "internal error")
		if strings.Contains(fmt.Sprint(r), "disk on fire") {
			t.Errorf("%s: store error leaked: %v", path, r)
		}
	}
	if n := h.logs.FilterMessage("read failed").Len(); n != 4 {
		t.Errorf("%d read failures logged, want 4", n)
	}
}

func TestViewThatIsNotJSONIsA500(t *testing.T) {
	h := newHarness(t, nil)
	h.store.stats = json.RawMessage(`{"broken"`)
	wantJSONError(t, h.get("/v1/stats"), http.StatusInternalServerError, "internal error")
	h.store.conversations[convSID(1)] = json.RawMessage(`nope`)
	wantJSONError(t, h.get("/v1/conversations"), http.StatusInternalServerError, "internal error")
}

type page struct {
	Items      []json.RawMessage `json:"items"`
	NextCursor *string           `json:"next_cursor"`
}

func (h *harness) page(query url.Values) page {
	h.t.Helper()
	r := h.get("/v1/conversations?" + query.Encode())
	if r.code != http.StatusOK {
		h.t.Fatalf("%s: %d %s", query.Encode(), r.code, r.body)
	}
	var p page
	if err := json.Unmarshal(r.body, &p); err != nil {
		h.t.Fatal(err)
	}
	if p.Items == nil {
		h.t.Fatalf("items missing or null: %s", r.body)
	}
	if p.NextCursor != nil && *p.NextCursor == "" {
		h.t.Fatalf("empty next_cursor: it must be left out at the end: %s", r.body)
	}
	return p
}

// walk reads every page of a query and returns the SIDs in order.
func (h *harness) walk(query url.Values) (sids []string, pages int) {
	h.t.Helper()
	q := url.Values{}
	for k, v := range query {
		q[k] = v
	}
	for {
		p := h.page(q)
		pages++
		for _, it := range p.Items {
			var d convDoc
			if err := json.Unmarshal(it, &d); err != nil {
				h.t.Fatal(err)
			}
			sids = append(sids, d.SID)
		}
		if p.NextCursor == nil {
			return sids, pages
		}
		if pages > 1000 {
			h.t.Fatal("pagination does not end")
		}
		q.Set("cursor", *p.NextCursor)
	}
}

func TestConversationsPagination(t *testing.T) {
	h := newHarness(t, nil)
	const n = 123
	for i := 1; i <= n; i++ {
		state := []string{"active", "inactive", "closed"}[i%3]
		var flags []string
		if i%5 == 0 {
			flags = []string{"no-close-timer"}
		}
		h.store.addConversation(convSID(i), state, i%7 == 0, flags...)
	}

	sids, pages := h.walk(url.Values{"limit": {"10"}})
	if len(sids) != n || pages != 13 {
		t.Fatalf("%d conversations in %d pages, want %d in 13", len(sids), pages, n)
	}
	for i, sid := range sids {
		if sid != convSID(i+1) {
			t.Fatalf("item %d is %s, want %s (in order, no gaps or repeats)", i, sid, convSID(i+1))
		}
	}
	if q := h.store.lastQuery(); q.Limit != 10 || q.Cursor != convSID(120) {
		t.Errorf("last query %+v: the store must see its own cursor back", q)
	}

	// The default page size, and one page when everything fits.
	p := h.page(url.Values{})
	if len(p.Items) != api.DefaultLimit || p.NextCursor == nil {
		t.Errorf("default page: %d items, next %v", len(p.Items), p.NextCursor)
	}
	if q := h.store.lastQuery(); q.Limit != api.DefaultLimit || q.Cursor != "" || q.State != "" || q.Flag != "" || q.Orphaned != nil {
		t.Errorf("unfiltered query %+v", q)
	}
	if p := h.page(url.Values{"limit": {"500"}}); len(p.Items) != n || p.NextCursor != nil {
		t.Errorf("limit 500: %d items, next %v", len(p.Items), p.NextCursor)
	}

	// Filters walk too, and combine.
	sids, _ = h.walk(url.Values{"state": {"closed"}, "orphaned": {"true"}, "limit": {"2"}})
	var want []string
	for i := 1; i <= n; i++ {
		if i%3 == 2 && i%7 == 0 {
			want = append(want, convSID(i))
		}
	}
	if fmt.Sprint(sids) != fmt.Sprint(want) {
		t.Errorf("closed orphans %v, want %v", sids, want)
	}
}

func TestConversationsFiltersPassedThrough(t *testing.T) {
	h := newHarness(t, nil)
	h.store.addConversation(convSID(1), "active", true, "pii-identity")
	cases := []struct {
		query string
		want  string // the query the store sees, as %+v with Orphaned dereferenced
	}{
		{"state=active", "active <nil> "},
		{"state=inactive&orphaned=false", "inactive false "},
		{"orphaned=true&flag=agent-without-invite&limit=7", " true agent-without-invite"},
		{"flag=pii-identity&state=closed", "closed <nil> pii-identity"},
		{"flag=no-close-timer", " <nil> no-close-timer"},
	}
	for _, c := range cases {
		if r := h.get("/v1/conversations?" + c.query); r.code != http.StatusOK {
			t.Fatalf("%s: %d %s", c.query, r.code, r.body)
		}
		q := h.store.lastQuery()
		o := "<nil>"
		if q.Orphaned != nil {
			o = fmt.Sprint(*q.Orphaned)
		}
		if got := q.State + " " + o + " " + q.Flag; got != c.want {
			t.Errorf("%s: store saw %q, want %q", c.query, got, c.want)
		}
		if strings.Contains(c.query, "limit=7") != (q.Limit == 7) {
			t.Errorf("%s: limit %d", c.query, q.Limit)
		}
	}
	p := h.page(url.Values{"state": {"active"}, "orphaned": {"true"}, "flag": {"pii-identity"}})
	if len(p.Items) != 1 {
		t.Errorf("filtered page: %d items", len(p.Items))
	}
}

func TestConversationsBadParameters(t *testing.T) {
	h := newHarness(t, nil)
	for i := 1; i <= 3; i++ {
		h.store.addConversation(convSID(i), "active", false)
	}
	p := h.page(url.Values{"limit": {"1"}, "state": {"active"}})
	cursor := *p.NextCursor

	cases := []struct{ query, param string }{
		{"state=open", "state"},
		{"state=", "state"},
		{"orphaned=yes", "orphaned"},
		{"orphaned=1", "orphaned"},
		{"flag=pii", "flag"},
		{"limit=0", "limit"},
		{"limit=501", "limit"},
		{"limit=-1", "limit"},
		{"limit=ten", "limit"},
		{"cursor=", "cursor"},
		{"cursor=not-a-cursor", "cursor"},
		{"cursor=" + strings.Repeat("A", 2000), "cursor"},
		{"state=active&cursor=" + base64.RawURLEncoding.EncodeToString([]byte("c9\x00active,,\x00"+convSID(1))), "cursor"}, // other version
		{"state=active&cursor=" + base64.RawURLEncoding.EncodeToString([]byte("c1\x00active,,\x00")), "cursor"},            // empty
		{"state=active&cursor=" + url.QueryEscape(cursor+"!"), "cursor"},
		{"state=closed&cursor=" + url.QueryEscape(cursor), "cursor"}, // other filters
		{"cursor=" + url.QueryEscape(cursor), "cursor"},              // filter dropped
		{"orphan=true", "orphan"},
		{"state=active&state=closed", "state"},
	}
	for _, c := range cases {
		r := h.get("/v1/conversations?" + c.query)
		m := wantJSONError(t, r, http.StatusBadRequest, c.param)
		if m["parameter"] != c.param {
			t.Errorf("%s: parameter %v, want %s", c.query, m["parameter"], c.param)
		}
	}
	// The cursor is good with the filters it was made under.
	if p := h.page(url.Values{"limit": {"1"}, "state": {"active"}, "cursor": {cursor}}); len(p.Items) != 1 {
		t.Errorf("second page: %d items", len(p.Items))
	}
}

func TestParameterValuesAreNotEchoedOrLogged(t *testing.T) {
	h := newHarness(t, nil)
	const pii = "jane.doe@example.com"
	r := h.get("/v1/conversations?state=" + url.QueryEscape(pii))
	wantJSONError(t, r, http.StatusBadRequest, "state")
	r2 := h.get("/v1/conversations/" + url.PathEscape(pii))
	wantJSONError(t, r2, http.StatusBadRequest, "sid")
	h.get("/nowhere/" + url.PathEscape(pii))
	for _, body := range [][]byte{r.body, r2.body} {
		if strings.Contains(string(body), "jane") {
			t.Errorf("answer echoes the request: %s", body)
		}
	}
	if h.logs.Len() == 0 {
		t.Fatal("no logs at all")
	}
	for _, e := range h.logs.All() {
		if strings.Contains(fmt.Sprint(e.Message, e.ContextMap()), "jane") {
			t.Errorf("log carries the request's values: %s %v", e.Message, e.ContextMap())
		}
	}
}

func TestTimeline(t *testing.T) {
	h := newHarness(t, nil)
	created := time.Date(2026, 3, 1, 12, 0, 0, 123456789, time.FixedZone("x", 3600))
	h.timeline.streams["conversation-"+convSID(1)] = []api.TimelineEvent{
		{ID: "e1", Type: "ConversationAdded", Revision: 0, Position: 100, Created: created,
			Data: json.RawMessage(`{"a": 1}`), Metadata: json.RawMessage(`{"m":true}`)},
		{ID: "e2", Type: "MessageAdded", Revision: 1, Position: 250, Created: created.Add(time.Second)},
	}
	h.timeline.streams["conversation-"+convSID(2)] = []api.TimelineEvent{}

	r := h.get("/v1/conversations/" + convSID(1) + "/timeline")
	if r.code != http.StatusOK || r.header.Get("Content-Type") != "application/json" {
		t.Fatalf("%d %v %s", r.code, r.header, r.body)
	}
	want := `{"events":[` +
		`{"id":"e1","type":"ConversationAdded","revision":0,"position":100,"created":"2026-03-01T11:00:00.123456789Z","data":{"a":1},"metadata":{"m":true}},` +
		`{"id":"e2","type":"MessageAdded","revision":1,"position":250,"created":"2026-03-01T11:00:01.123456789Z","data":null,"metadata":null}]}`
	if got := compact(t, r.body); got != want {
		t.Errorf("timeline\n got %s\nwant %s", got, want)
	}
	if r := h.get("/v1/conversations/" + convSID(2) + "/timeline"); r.code != http.StatusOK || compact(t, r.body) != `{"events":[]}` {
		t.Errorf("empty stream: %d %s", r.code, r.body)
	}
	wantJSONError(t, h.get("/v1/conversations/"+convSID(3)+"/timeline"), http.StatusNotFound, "not found")
	wantJSONError(t, h.get("/v1/conversations/CHnope/timeline"), http.StatusBadRequest, "sid")
	h.timeline.mu.Lock()
	asked := fmt.Sprint(h.timeline.asked)
	h.timeline.mu.Unlock()
	if want := fmt.Sprint([]string{"conversation-" + convSID(1), "conversation-" + convSID(2), "conversation-" + convSID(3)}); asked != want {
		t.Errorf("streams read %s, want %s", asked, want)
	}
}

// TestTimelineStreams shows the events reach the client while the event
// store is still being read: the response is not built in memory.
func TestTimelineStreams(t *testing.T) {
	h := newHarness(t, nil)
	const n, pause = 2000, 500 // events; the read waits after this many
	big := json.RawMessage(`{"pad":"` + strings.Repeat("x", 1000) + `"}`)
	events := make([]api.TimelineEvent, n)
	for i := range events {
		events[i] = api.TimelineEvent{ID: fmt.Sprint(i), Type: "T", Revision: uint64(i), Data: big}
	}
	h.timeline.streams["conversation-"+convSID(1)] = events
	clientHasData := make(chan struct{})
	h.timeline.after = func(i int) error {
		if i != pause {
			return nil
		}
		select {
		case <-clientHasData:
			return nil
		case <-time.After(10 * time.Second):
			return errors.New("the client got nothing while the stream was being read")
		}
	}

	resp, err := h.client.Get(h.srv.URL() + "/v1/conversations/" + convSID(1) + "/timeline")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	head := make([]byte, 100_000)
	if _, err := io.ReadFull(br, head); err != nil {
		t.Fatalf("first 100 kB: %v", err)
	}
	close(clientHasData)
	rest, err := io.ReadAll(br)
	if err != nil {
		t.Fatal(err)
	}
	var tl struct {
		Events []struct {
			ID       string `json:"id"`
			Revision uint64 `json:"revision"`
		} `json:"events"`
	}
	if err := json.Unmarshal(append(head, rest...), &tl); err != nil {
		t.Fatal(err)
	}
	if len(tl.Events) != n || tl.Events[n-1].Revision != n-1 {
		t.Fatalf("%d events", len(tl.Events))
	}
}

// TestTimelineCutShort: a read that fails once events are out cuts the
// response, so the client cannot take it for the whole timeline.
func TestTimelineCutShort(t *testing.T) {
	h := newHarness(t, nil)
	// Big enough that the status line and the first events are out
	// before the read fails.
	big := json.RawMessage(`"` + strings.Repeat("x", 10_000) + `"`)
	events := make([]api.TimelineEvent, 10)
	for i := range events {
		events[i] = api.TimelineEvent{ID: fmt.Sprint(i), Type: "T", Revision: uint64(i), Data: big}
	}
	h.timeline.streams["conversation-"+convSID(1)] = events
	h.timeline.after = func(i int) error {
		if i == 4 {
			return errors.New("event store connection lost")
		}
		return nil
	}
	resp, err := h.client.Get(h.srv.URL() + "/v1/conversations/" + convSID(1) + "/timeline")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d: the cut should come mid-body", resp.StatusCode)
	}
	body, err := io.ReadAll(resp.Body)
	if err == nil {
		t.Fatalf("body read in full: %d bytes", len(body))
	}
	if json.Valid(body) {
		t.Fatalf("a cut timeline parses: %d bytes", len(body))
	}
	if h.logs.FilterMessage("timeline cut short").Len() != 1 {
		t.Error("cut not logged")
	}

	// Data that is not JSON, on the first event: a plain 500.
	h.timeline.after = nil
	h.timeline.streams["conversation-"+convSID(2)] = []api.TimelineEvent{{ID: "x", Data: json.RawMessage("{")}}
	wantJSONError(t, h.get("/v1/conversations/"+convSID(2)+"/timeline"), http.StatusInternalServerError, "internal error")
}

func TestMethodsAndUnknownRoutes(t *testing.T) {
	h := newHarness(t, nil)
	for _, path := range []string{"/v1/conversations", "/v1/conversations/" + convSID(1), "/v1/conversations/" + convSID(1) + "/timeline",
		"/v1/tasks/" + taskSID(1), "/v1/stats", "/v1/events", "/openapi.json", "/healthz", "/readyz", "/metrics"} {
		for _, method := range []string{http.MethodPost, http.MethodPut, http.MethodDelete, http.MethodHead} {
			r := h.do(method, path, nil)
			if r.code != http.StatusMethodNotAllowed || r.header.Get("Allow") != http.MethodGet {
				t.Errorf("%s %s: %d Allow %q", method, path, r.code, r.header.Get("Allow"))
			}
			if method != http.MethodHead {
				wantJSONError(t, r, http.StatusMethodNotAllowed, "GET")
			}
		}
	}
	r := h.get("/v1/conversations/")
	if r.code != http.StatusNotFound && r.code != http.StatusBadRequest {
		t.Errorf("/v1/conversations/: %d", r.code)
	}
	for _, path := range []string{"/", "/v1", "/v1/conversations/" + convSID(1) + "/other", "/v1/stats/", "/v2/stats"} {
		wantJSONError(t, h.get(path), http.StatusNotFound, "no such route")
	}
}

func TestBearerAuth(t *testing.T) {
	const token = "s3cret-token-0123456789"
	h := newHarness(t, func(c *api.Config) { c.BearerToken = token })
	h.store.addConversation(convSID(1), "active", false)
	protected := []string{"/v1/conversations", "/v1/conversations/" + convSID(1), "/v1/stats", "/openapi.json", "/nowhere"}

	for _, path := range protected {
		r := h.get(path)
		wantJSONError(t, r, http.StatusUnauthorized, "bearer token required")
		if got := r.header.Get("WWW-Authenticate"); !strings.HasPrefix(got, "Bearer") {
			t.Errorf("%s: WWW-Authenticate %q", path, got)
		}
		for _, auth := range []string{"Bearer wrong-token-0123456789", "Bearer " + token + "x", "Bearer", "Basic " + token, token} {
			r := h.do(http.MethodGet, path, http.Header{"Authorization": {auth}})
			if r.code != http.StatusUnauthorized || !strings.HasPrefix(r.header.Get("WWW-Authenticate"), "Bearer") {
				t.Errorf("%s with %q: %d", path, auth, r.code)
			}
		}
		// Auth comes before the method check: nothing about the route
		// for strangers.
		if r := h.do(http.MethodPost, path, nil); r.code != http.StatusUnauthorized {
			t.Errorf("POST %s without token: %d", path, r.code)
		}
	}
	for _, path := range []string{"/healthz", "/readyz", "/metrics"} {
		if r := h.get(path); r.code != http.StatusOK {
			t.Errorf("%s without token: %d", path, r.code)
		}
	}
	h.token = token
	for _, path := range protected[:4] {
		if r := h.get(path); r.code != http.StatusOK {
			t.Errorf("%s with token: %d %s", path, r.code, r.body)
		}
	}
	if r := h.do(http.MethodGet, "/v1/stats", http.Header{"Authorization": {"bearer " + token}}); r.code != http.StatusOK {
		t.Errorf("lower-case scheme: %d", r.code)
	}
	for _, e := range h.logs.All() {
		if strings.Contains(fmt.Sprint(e.Message, e.ContextMap()), token) {
			t.Errorf("token logged: %s", e.Message)
		}
	}
}

func TestNoAuthByDefault(t *testing.T) {
	h := newHarness(t, nil)
	for _, path := range []string{"/v1/conversations", "/v1/stats", "/openapi.json", "/healthz", "/readyz", "/metrics"} {
		if r := h.get(path); r.code != http.StatusOK {
			t.Errorf("%s: %d", path, r.code)
		}
	}
}

func TestReadiness(t *testing.T) {
	var notReady atomic.Pointer[error]
	h := newHarness(t, func(c *api.Config) {
		c.Ready = func() error {
			if p := notReady.Load(); p != nil {
				return *p
			}
			return nil
		}
	})
	err := errors.New("catching up: 1200 events behind")
	notReady.Store(&err)
	wantJSONError(t, h.get("/readyz"), http.StatusServiceUnavailable, "catching up: 1200 events behind")
	if r := h.get("/healthz"); r.code != http.StatusOK || compact(t, r.body) != `{"status":"ok"}` {
		t.Errorf("healthz while not ready: %d %s", r.code, r.body)
	}
	notReady.Store(nil)
	if r := h.get("/readyz"); r.code != http.StatusOK || compact(t, r.body) != `{"status":"ready"}` {
		t.Errorf("readyz: %d %s", r.code, r.body)
	}

	h2 := newHarness(t, nil) // no Ready: ready once serving
	if r := h2.get("/readyz"); r.code != http.StatusOK {
		t.Errorf("readyz without Ready: %d", r.code)
	}
}

func TestMetricsShareTheCallersRegistry(t *testing.T) {
	reg := prometheus.NewRegistry()
	projected := prometheus.NewCounter(prometheus.CounterOpts{Name: "flexstream_projector_events_total", Help: "test"})
	reg.MustRegister(projected)
	projected.Add(3)
	h := newHarness(t, func(c *api.Config) { c.Registry = reg })
	h.get("/v1/stats")
	h.get("/v1/conversations/nope")
	h.get("/v1/conversations/" + convSID(1))
	h.get("/nowhere")

	body := string(h.get("/metrics").body)
	for _, want := range []string{
		"flexstream_projector_events_total 3",
		`flexstream_api_requests_total{code="200",route="/v1/stats"} 1`,
		`flexstream_api_requests_total{code="400",route="/v1/conversations/{sid}"} 1`,
		`flexstream_api_requests_total{code="404",route="/v1/conversations/{sid}"} 1`,
		`flexstream_api_requests_total{code="404",route="unmatched"} 1`,
		`flexstream_api_request_seconds_count{code="200",route="/v1/stats"} 1`,
		"flexstream_api_event_streams 0",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	if strings.Contains(body, "go_goroutines") {
		t.Error("the API added Go collectors to the caller's registry")
	}

	// A second server on the same registry (a restart) keeps counting.
	h2 := newHarness(t, func(c *api.Config) { c.Registry = reg })
	h2.get("/v1/stats")
	if body := string(h2.get("/metrics").body); !strings.Contains(body, `flexstream_api_requests_total{code="200",route="/v1/stats"} 2`) {
		t.Errorf("second server does not share the counter:\n%s", body)
	}
}

func TestMetricsOwnRegistry(t *testing.T) {
	h := newHarness(t, nil)
	h.get("/v1/stats")
	body := string(h.get("/metrics").body)
	for _, want := range []string{"go_goroutines", `flexstream_api_requests_total{code="200",route="/v1/stats"} 1`} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}

func TestShutdownWaitsForRequestsInFlight(t *testing.T) {
	h := newHarness(t, nil)
	h.store.addConversation(convSID(1), "active", false)
	release := make(chan struct{})
	entered := make(chan struct{})
	h.store.mu.Lock()
	h.store.block, h.store.entered = release, entered
	h.store.mu.Unlock()

	got := make(chan response, 1)
	go func() {
		resp, err := h.client.Get(h.srv.URL() + "/v1/conversations/" + convSID(1))
		if err != nil {
			got <- response{code: -1, body: []byte(err.Error())}
			return
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		got <- response{code: resp.StatusCode, body: b}
	}()
	<-entered
	done := make(chan error, 1)
	go func() { done <- h.srv.Shutdown(context.Background()) }()
	select {
	case err := <-done:
		t.Fatalf("Shutdown returned (%v) with a request in flight", err)
	case <-time.After(200 * time.Millisecond):
	}
	close(release)
	if r := <-got; r.code != http.StatusOK {
		t.Errorf("in-flight request: %d %s", r.code, r.body)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if _, err := h.client.Get(h.srv.URL() + "/healthz"); err == nil {
		t.Error("served after Shutdown")
	}
}

func TestShutdownDeadline(t *testing.T) {
	h := newHarness(t, nil)
	release := make(chan struct{})
	h.store.mu.Lock()
	h.store.block, h.store.entered = release, make(chan struct{})
	entered := h.store.entered
	h.store.mu.Unlock()
	defer close(release)
	errc := make(chan error, 1)
	go func() {
		resp, err := h.client.Get(h.srv.URL() + "/v1/conversations/" + convSID(1))
		if err == nil {
			resp.Body.Close()
		}
		errc <- err
	}()
	<-entered
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	h.shutdownErrOK = true
	if err := h.srv.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Shutdown past its deadline: %v", err)
	}
	if err := <-errc; err == nil {
		t.Error("the request stuck past the deadline was answered; its connection should be closed")
	}
}

func TestOpenAPIServed(t *testing.T) {
	h := newHarness(t, nil)
	r := h.get("/openapi.json")
	if r.code != http.StatusOK || r.header.Get("Content-Type") != "application/json" {
		t.Fatalf("%d %v", r.code, r.header)
	}
	doc := r.json(t)
	if doc["openapi"] != "3.1.0" {
		t.Errorf("openapi %v", doc["openapi"])
	}
	paths, _ := doc["paths"].(map[string]any)
	// Every documented path answers something other than "no such route".
	for p := range paths {
		path := strings.ReplaceAll(p, "{sid}", convSID(1))
		if strings.HasPrefix(p, "/v1/tasks/") {
			path = strings.ReplaceAll(p, "{sid}", taskSID(1))
		}
		if p == "/v1/events" {
			continue // a stream; TestEvents covers it
		}
		if r := h.get(path); strings.Contains(string(r.body), "no such route") {
			t.Errorf("documented %s is not served", p)
		}
	}
}

func TestStartRefusesBadConfig(t *testing.T) {
	if _, err := api.Start(api.Config{Addr: "nope"}); err == nil {
		t.Fatal("started on a bad address")
	}
	h := newHarness(t, nil)
	_, err := api.Start(api.Config{Addr: h.srv.Addr(), Store: h.store, Timeline: h.timeline, Feed: h.feed})
	if err == nil || !strings.Contains(err.Error(), "listen") {
		t.Fatalf("second server on a busy port: %v", err)
	}
}
