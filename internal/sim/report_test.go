package sim

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/flexstream/flexstream/internal/sim/model"
	"github.com/flexstream/flexstream/projector/fold"
)

// fakeAPI serves /v1/conversations (two pages, and the orphaned filter)
// and /v1/stats from the given views, as the product's query API does.
func fakeAPI(t *testing.T, views []fold.ConversationView, orphaned []string) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/v1/stats":
			st := fold.Stats{Conversations: len(views), ByState: map[string]int{}}
			for _, v := range views {
				st.ByState[v.State]++
			}
			_ = json.NewEncoder(w).Encode(map[string]any{"views": st})
		case "/v1/conversations":
			var items []fold.ConversationView
			if r.URL.Query().Get("orphaned") == "true" {
				for _, sid := range orphaned {
					items = append(items, fold.ConversationView{Sid: sid})
				}
				_ = json.NewEncoder(w).Encode(map[string]any{"items": items})
				return
			}
			// Two pages, to follow the cursor.
			page := views[:len(views)/2]
			next := "p2"
			if r.URL.Query().Get("cursor") == "p2" {
				page, next = views[len(views)/2:], ""
			}
			_ = json.NewEncoder(w).Encode(map[string]any{"items": page, "next_cursor": next})
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	return srv
}

func truth(states map[string]string, orphans ...string) model.Truth {
	t := model.Truth{Conversations: map[string]model.ConvTruth{}, OrphanedSids: orphans, Orphaned: len(orphans)}
	for sid, st := range states {
		t.Conversations[sid] = model.ConvTruth{State: st}
	}
	return t
}

// The comparison finds every kind of difference, and only those: it
// cannot call a product equal that is not.
func TestCompareWithTheReadModels(t *testing.T) {
	tr := truth(map[string]string{"CH1": "closed", "CH2": "active", "CH3": "closed", "CH4": "active"}, "CH2")
	views := []fold.ConversationView{{Sid: "CH1", State: "closed"}, {Sid: "CH2", State: "active"}, {Sid: "CH3", State: "closed"}, {Sid: "CH4", State: "active"}}
	s := &Sim{client: &http.Client{Timeout: 5 * time.Second}}

	s.api = fakeAPI(t, views, []string{"CH2"}).URL
	d := s.compare(context.Background(), tr)
	if !d.Equal || d.Conversations != 4 || d.Error != "" {
		t.Fatalf("equal read models: %+v", d)
	}

	bad := []fold.ConversationView{{Sid: "CH1", State: "active"}, {Sid: "CH2", State: "active"}, {Sid: "CH4", State: "active"}, {Sid: "CH9", State: "closed"}}
	s.api = fakeAPI(t, bad, []string{"CH4"}).URL
	d = s.compare(context.Background(), tr)
	if d.Equal {
		t.Fatal("different read models called equal")
	}
	if strings.Join(d.Missing, ",") != "CH3" || strings.Join(d.Unknown, ",") != "CH9" || len(d.States) != 1 || !strings.HasPrefix(d.States[0], "CH1:") {
		t.Fatalf("diff: %+v", d)
	}
	if len(d.Orphans) != 2 { // CH2 orphaned only in the truth, CH4 only in the product
		t.Fatalf("orphan flags: %v", d.Orphans)
	}
	if len(d.StatsDiff) == 0 {
		t.Fatalf("stats: %+v", d.Stats)
	}

	s.api = "http://127.0.0.1:1" // nothing listens
	if d := s.compare(context.Background(), tr); d.Equal || d.Error == "" {
		t.Fatalf("an unreachable API: %+v", d)
	}
}

func TestReportOKAndSummary(t *testing.T) {
	r := Report{Scenario: "smoke", Seed: 7, Interactions: 3, Violations: []string{}, Reactions: map[string]int{"close": 1},
		ReadModels: &Diff{Equal: true, Conversations: 3}, TimeToReaction: percentiles([]time.Duration{3 * time.Millisecond, time.Millisecond, 2 * time.Millisecond})}
	if !r.OK() || !strings.Contains(r.Summary(), "OK") || r.TimeToReaction.P50 != 2 || r.TimeToReaction.Max != 3 {
		t.Fatalf("%+v\n%s", r, r.Summary())
	}
	for name, mutate := range map[string]func(*Report){
		"orphan":      func(r *Report) { r.Orphaned = 1 },
		"duplicate":   func(r *Report) { r.DuplicateEffects = 1 },
		"violation":   func(r *Report) { r.Violations = []string{"the Task API was called"} },
		"undelivered": func(r *Report) { r.WebhookFailures = 1 },
		"read models": func(r *Report) { r.ReadModels = &Diff{Missing: []string{"CH1"}} },
	} {
		bad := r
		mutate(&bad)
		if bad.OK() || !strings.Contains(bad.Summary(), "FAILED") {
			t.Errorf("%s: reported OK", name)
		}
	}
}
