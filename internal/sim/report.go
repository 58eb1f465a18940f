package sim

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/flexstream/flexstream/internal/sim/model"
	"github.com/flexstream/flexstream/projector/fold"
)

// Report is the ground truth at the end of a run (DESIGN §11 names the
// first fields).
type Report struct {
	Scenario         string         `json:"scenario"`
	Seed             uint64         `json:"seed"`
	Seconds          float64        `json:"seconds"`
	Interactions     int            `json:"interactions"`
	Tasks            int            `json:"tasks"`
	Orphaned         int            `json:"orphaned"`
	OrphanedSids     []string       `json:"orphanedSids,omitempty"`
	DuplicateEffects int            `json:"duplicate_effects"`
	Violations       []string       `json:"violations"`
	Reactions        map[string]int `json:"reactions"`
	Hazards          map[string]int `json:"hazards,omitempty"`
	TaskAPICalls     int            `json:"taskApiCalls"`
	Webhooks         int64          `json:"webhooks"`
	WebhookRetries   int64          `json:"webhookRetries"`
	WebhookFailures  int64          `json:"webhookFailures"`
	// ReadModels compares the product's views with the truth; nil when
	// no query API was given.
	ReadModels *Diff `json:"readModels,omitempty"`
	// TimeToReaction: Twilio's trigger event → the reaction's first REST
	// call, as the simulator saw it.
	TimeToReaction *Percentiles `json:"timeToReaction,omitempty"`
}

// Percentiles of a duration, in milliseconds.
type Percentiles struct {
	Count int     `json:"count"`
	P50   float64 `json:"p50Ms"`
	P90   float64 `json:"p90Ms"`
	P99   float64 `json:"p99Ms"`
	Max   float64 `json:"maxMs"`
}

// Diff is where the product's read models and the simulator's truth
// disagree.
type Diff struct {
	Conversations int        `json:"conversations"` // the product's count
	Stats         fold.Stats `json:"stats"`
	Missing       []string   `json:"missing,omitempty"`   // in the truth, not in the product
	Unknown       []string   `json:"unknown,omitempty"`   // in the product, not in the truth
	States        []string   `json:"states,omitempty"`    // "CH…: product active, truth closed"
	Orphans       []string   `json:"orphans,omitempty"`   // "CH…: product orphaned, truth not" and the reverse
	StatsDiff     []string   `json:"statsDiff,omitempty"` // /v1/stats counts that differ from the truth's
	Error         string     `json:"error,omitempty"`     // the comparison could not be made
	Equal         bool       `json:"equal"`
}

// OK: no orphan, no duplicate effect, no violation, and read models equal
// to the truth (when compared).
func (r Report) OK() bool {
	return r.Orphaned == 0 && r.DuplicateEffects == 0 && len(r.Violations) == 0 && r.WebhookFailures == 0 &&
		(r.ReadModels == nil || r.ReadModels.Equal)
}

func (s *Sim) report(ctx context.Context, now time.Time) Report {
	s.mu.Lock()
	t := s.m.Truth(now)
	s.mu.Unlock()
	r := Report{
		Scenario: s.cfg.Scenario.Name, Seed: s.cfg.Seed, Seconds: now.Sub(s.start).Seconds(),
		Interactions: t.Interactions, Tasks: t.Tasks, Orphaned: t.Orphaned, OrphanedSids: t.OrphanedSids,
		DuplicateEffects: t.DuplicateEffects, Violations: slices.Clone(t.Violations), Reactions: t.Reactions, Hazards: t.Hazards,
		TaskAPICalls: s.stub.TaskAPICalls(), Webhooks: s.webhooks.Load(), WebhookRetries: s.retries.Load(), WebhookFailures: s.failures.Load(),
	}
	if r.Violations == nil {
		r.Violations = []string{}
	}
	if r.TaskAPICalls > 0 {
		r.Violations = append(r.Violations, fmt.Sprintf("the Task API was called %d times (rule R2)", r.TaskAPICalls))
	}
	for _, v := range s.stub.Violations() {
		r.Violations = append(r.Violations, "REST call does not match Twilio's API: "+v.String())
	}
	if n := s.stub.Unhandled(); n > 0 {
		r.Violations = append(r.Violations, fmt.Sprintf("%d REST calls the simulator does not model", n))
	}
	if len(t.ReactionDelays) > 0 {
		r.TimeToReaction = percentiles(t.ReactionDelays)
	}
	if s.api != "" {
		r.ReadModels = s.compare(ctx, t)
	}
	return r
}

func percentiles(ds []time.Duration) *Percentiles {
	s := slices.Clone(ds)
	slices.Sort(s)
	at := func(q float64) float64 {
		i := int(q * float64(len(s)-1))
		return float64(s[i]) / float64(time.Millisecond)
	}
	return &Percentiles{Count: len(s), P50: at(0.5), P90: at(0.9), P99: at(0.99), Max: at(1)}
}

// compare reads every conversation view of the product and holds it
// against the truth.
func (s *Sim) compare(ctx context.Context, t modelTruth) *Diff {
	d := &Diff{}
	views := map[string]fold.ConversationView{}
	orphaned := map[string]bool{}
	for _, q := range []string{"", "orphaned=true"} {
		cursor := ""
		for {
			v := url.Values{"limit": {"500"}}
			if q != "" {
				v.Set("orphaned", "true")
			}
			if cursor != "" {
				v.Set("cursor", cursor)
			}
			var page struct {
				Items      []fold.ConversationView `json:"items"`
				NextCursor string                  `json:"next_cursor"`
			}
			if err := s.get(ctx, "/v1/conversations?"+v.Encode(), &page); err != nil {
				d.Error = err.Error()
				return d
			}
			for _, it := range page.Items {
				if q == "" {
					views[it.Sid] = it
				} else {
					orphaned[it.Sid] = true
				}
			}
			if page.NextCursor == "" {
				break
			}
			cursor = page.NextCursor
		}
	}
	var stats struct {
		Views fold.Stats `json:"views"`
	}
	if err := s.get(ctx, "/v1/stats", &stats); err != nil {
		d.Error = err.Error()
		return d
	}
	d.Stats = stats.Views
	d.Conversations = len(views)
	truthOrphans := map[string]bool{}
	for _, sid := range t.OrphanedSids {
		truthOrphans[sid] = true
	}
	for sid, c := range t.Conversations {
		v, ok := views[sid]
		if !ok {
			d.Missing = append(d.Missing, sid)
			continue
		}
		if v.State != c.State {
			d.States = append(d.States, fmt.Sprintf("%s: product %q, truth %q", sid, v.State, c.State))
		}
		if orphaned[sid] != truthOrphans[sid] {
			d.Orphans = append(d.Orphans, fmt.Sprintf("%s: product orphaned=%t, truth orphaned=%t", sid, orphaned[sid], truthOrphans[sid]))
		}
	}
	for sid := range views {
		if _, ok := t.Conversations[sid]; !ok {
			d.Unknown = append(d.Unknown, sid)
		}
	}
	// /v1/stats, the dashboards' numbers, must count what the truth counts.
	byState := map[string]int{}
	for _, c := range t.Conversations {
		byState[c.State]++
	}
	if d.Stats.Conversations != len(t.Conversations) {
		d.StatsDiff = append(d.StatsDiff, fmt.Sprintf("conversations: product %d, truth %d", d.Stats.Conversations, len(t.Conversations)))
	}
	for _, st := range []string{"active", "inactive", "closed"} {
		if d.Stats.ByState[st] != byState[st] {
			d.StatsDiff = append(d.StatsDiff, fmt.Sprintf("%s: product %d, truth %d", st, d.Stats.ByState[st], byState[st]))
		}
	}
	for _, l := range [][]string{d.Missing, d.Unknown, d.States, d.Orphans} {
		sort.Strings(l)
	}
	d.Equal = len(d.Missing)+len(d.Unknown)+len(d.States)+len(d.Orphans)+len(d.StatsDiff) == 0
	return d
}

func (s *Sim) get(ctx context.Context, path string, into any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(s.api, "/")+path, nil)
	if err != nil {
		return err
	}
	if s.cfg.APIToken != "" {
		req.Header.Set("Authorization", "Bearer "+s.cfg.APIToken)
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return fmt.Errorf("sim: read the product's %s: %w", path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return fmt.Errorf("sim: read the product's %s: %w", path, err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("sim: the product's %s answered %d: %.200s", path, resp.StatusCode, body)
	}
	if err := json.Unmarshal(body, into); err != nil {
		return fmt.Errorf("sim: the product's %s: %w", path, err)
	}
	return nil
}

// Summary is the report in a few human lines.
func (r Report) Summary() string {
	var b strings.Builder
	verdict := "OK"
	if !r.OK() {
		verdict = "FAILED"
	}
	fmt.Fprintf(&b, "scenario %s (seed %d): %s in %.1f s\n", r.Scenario, r.Seed, verdict, r.Seconds)
	fmt.Fprintf(&b, "  interactions %d, tasks %d, webhooks %d (retried %d, undelivered %d)\n", r.Interactions, r.Tasks, r.Webhooks, r.WebhookRetries, r.WebhookFailures)
	fmt.Fprintf(&b, "  reactions: %s\n", counts(r.Reactions))
	if len(r.Hazards) > 0 {
		fmt.Fprintf(&b, "  hazards: %s\n", counts(r.Hazards))
	}
	fmt.Fprintf(&b, "  orphaned %d, duplicate effects %d, violations %d, Task API calls %d\n", r.Orphaned, r.DuplicateEffects, len(r.Violations), r.TaskAPICalls)
	if p := r.TimeToReaction; p != nil {
		fmt.Fprintf(&b, "  trigger → reaction: p50 %.0f ms, p90 %.0f ms, p99 %.0f ms, max %.0f ms (%d)\n", p.P50, p.P90, p.P99, p.Max, p.Count)
	}
	if d := r.ReadModels; d != nil {
		switch {
		case d.Error != "":
			fmt.Fprintf(&b, "  read models: not compared: %s\n", d.Error)
		case d.Equal:
			fmt.Fprintf(&b, "  read models: equal to the truth (%d conversations; /v1/stats by state %v)\n", d.Conversations, d.Stats.ByState)
		default:
			fmt.Fprintf(&b, "  read models: differ: %d missing, %d unknown, %d states, %d orphan flags, stats %v\n", len(d.Missing), len(d.Unknown), len(d.States), len(d.Orphans), d.StatsDiff)
		}
	}
	for i, v := range r.Violations {
		if i == 5 {
			fmt.Fprintf(&b, "  … %d more violations\n", len(r.Violations)-5)
			break
		}
		fmt.Fprintf(&b, "  violation: %s\n", v)
	}
	return b.String()
}

func counts(m map[string]int) string {
	if len(m) == 0 {
		return "none"
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s %d", k, m[k])
	}
	return strings.Join(parts, ", ")
}

// modelTruth is the model's Truth (an alias keeps the comparison's
// signature short).
type modelTruth = model.Truth
