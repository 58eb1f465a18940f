package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/flexstream/flexstream/internal/eventstore"
	"github.com/flexstream/flexstream/internal/twiliotest"
	"github.com/flexstream/flexstream/projector/domain"
	"github.com/flexstream/flexstream/projector/fold"
)

// webhook is one signed delivery to `up`.
type webhook struct {
	route string
	form  url.Values
	idem  string
}

func trHook(ids twiliotest.IDs, ev string, opts ...twiliotest.TaskRouterOpt) webhook {
	return webhook{"/webhooks/taskrouter", twiliotest.TaskRouterEvent(ids, ev, opts...), ""}
}

func convHook(ids twiliotest.IDs, ev string, opts ...twiliotest.ConversationsOpt) webhook {
	f := twiliotest.ConversationsEvent(ids, ev, opts...)
	// Conversations webhooks carry no event id; Twilio's idempotency token
	// is what a retry repeats, and differs from one webhook to the next:
	// two participants added to one conversation are two events.
	return webhook{"/webhooks/conversations", f, fmt.Sprintf("%s-%s-%s-%s", ids.Conversation, ev, f.Get("MessageSid"), f.Get("ParticipantSid"))}
}

type e2e struct {
	t      *testing.T
	p      *upProcess
	token  string
	client *http.Client
}

// newE2E signs webhooks with token, by default the local one `up` keeps
// in the data directory.
func newE2E(t *testing.T, p *upProcess, data string, token ...string) *e2e {
	c := &http.Client{Timeout: 20 * time.Second}
	t.Cleanup(c.CloseIdleConnections)
	if len(token) > 0 {
		return &e2e{t: t, p: p, token: token[0], client: c}
	}
	raw, err := os.ReadFile(filepath.Join(data, webhookTokenFile))
	if err != nil {
		t.Fatal(err)
	}
	return &e2e{t: t, p: p, token: strings.TrimSpace(string(raw)), client: c}
}

// send posts a webhook and returns the status (0 when the request failed).
func (x *e2e) send(h webhook) int {
	req, err := twiliotest.FormRequest(x.token, x.p.ingest+h.route, h.form, h.idem)
	if err != nil {
		x.t.Fatal(err)
	}
	resp, err := x.client.Do(req)
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

func (x *e2e) get(path string, into any) int {
	resp, err := x.client.Get(x.p.api + path)
	if err != nil {
		x.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if into != nil && resp.StatusCode == http.StatusOK {
		if err := json.Unmarshal(b, into); err != nil {
			x.t.Fatalf("%s: %v: %s", path, err, b)
		}
	}
	return resp.StatusCode
}

// eventually polls cond for up to 30 s.
func eventually(t *testing.T, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		ok, state := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s; last: %s", what, state)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestEndToEndOrphanLifecycles: signed webhooks → ingest → Kafka →
// projector → event store → read model → query API, over real sockets,
// for a conversation whose task hit the workflow timeout, one whose
// known-agent invite was declined, and one handled and closed.
func TestEndToEndOrphanLifecycles(t *testing.T) {
	data := t.TempDir()
	p := startUp(t, data, freeAddr(t), "--orphan-grace", "1s")
	x := newE2E(t, p, data)
	timeout, declined, handled := twiliotest.NewIDs(101), twiliotest.NewIDs(102), twiliotest.NewIDs(103)
	hooks := []webhook{
		convHook(timeout, "onConversationAdded"), convHook(timeout, "onParticipantAdded"), convHook(timeout, "onMessageAdded"),
		trHook(timeout, "task.created"), trHook(timeout, "workflow.timeout"), trHook(timeout, "task.canceled", twiliotest.WithCanceledReason("Workflow Timeout")),

		convHook(declined, "onConversationAdded"), convHook(declined, "onParticipantAdded"), convHook(declined, "onMessageAdded"),
		trHook(declined, "task.created"), trHook(declined, "reservation.created"), trHook(declined, "reservation.rejected"),
		trHook(declined, "task.canceled", twiliotest.WithCanceledReason("Worker rejected the known-agent invite")),

		convHook(handled, "onConversationAdded"), convHook(handled, "onParticipantAdded"), convHook(handled, "onMessageAdded"),
		trHook(handled, "task.created"), trHook(handled, "reservation.created"), trHook(handled, "reservation.accepted"),
		convHook(handled, "onParticipantAdded", twiliotest.WithChatParticipant(handled, "agent.smith")),
		convHook(handled, "onMessageAdded", twiliotest.WithAuthor(handled, "agent.smith"), twiliotest.WithIndex(1), twiliotest.WithMessageSid(handled.SID("IM", "reply"))),
		trHook(handled, "task.wrapup"), trHook(handled, "task.completed"),
		convHook(handled, "onConversationStateUpdated", twiliotest.WithStateTo("closed")),
	}
	for i, h := range hooks {
		if code := x.send(h); code != http.StatusOK {
			t.Fatalf("webhook %d: %d", i, code)
		}
	}
	var v fold.ConversationView
	eventually(t, "the timed-out conversation's view", func() (bool, string) {
		v = fold.ConversationView{}
		code := x.get("/v1/conversations/"+timeout.Conversation, &v)
		return code == 200 && v.Tasks[timeout.Task].Status == fold.TaskCanceled && v.MessageCount == 1, fmt.Sprintf("%d %+v", code, v)
	})
	if v.State != fold.StateActive || v.AgentPresent || v.ChannelType != "whatsapp" || v.InteractionSid != timeout.Interaction || !v.OrphanCandidate() {
		t.Errorf("timed-out conversation: %+v", v)
	}
	var task fold.TaskView
	if code := x.get("/v1/tasks/"+timeout.Task, &task); code != 200 || !task.WorkflowTimedOut || task.Status != fold.TaskCanceled || task.CanceledReason != "Workflow Timeout" {
		t.Errorf("timed-out task: %d %+v", code, task)
	}
	eventually(t, "the declined conversation's view", func() (bool, string) {
		task = fold.TaskView{}
		code := x.get("/v1/tasks/"+declined.Task, &task)
		return code == 200 && task.Status == fold.TaskCanceled && task.Reservations[declined.Reservation].Outcome == fold.OutcomeRejected, fmt.Sprintf("%d %+v", code, task)
	})
	eventually(t, "the handled conversation closed", func() (bool, string) {
		v = fold.ConversationView{}
		code := x.get("/v1/conversations/"+handled.Conversation, &v)
		return code == 200 && v.State == fold.StateClosed && v.MessageCount == 2 && v.Tasks[handled.Task].Status == fold.TaskCompleted, fmt.Sprintf("%d %+v", code, v)
	})
	if v.Orphaned(time.Now(), time.Second) || v.AgentWithoutInvite || len(v.Participants) != 2 {
		t.Errorf("handled conversation (customer and agent): %+v", v)
	}
	// The orphans list: both failed conversations (their webhooks are
	// dated long ago, so past the 1 s grace), not the closed one.
	var page struct {
		Items []fold.ConversationView `json:"items"`
	}
	if code := x.get("/v1/conversations?orphaned=true", &page); code != 200 {
		t.Fatalf("orphans: %d", code)
	}
	got := map[string]bool{}
	for _, it := range page.Items {
		got[it.Sid] = true
	}
	if len(got) != 2 || !got[timeout.Conversation] || !got[declined.Conversation] {
		t.Errorf("orphaned conversations %v, want the timed-out and the declined one", got)
	}
	var stats struct {
		OrphansNow int `json:"orphansNow"`
		Views      struct {
			Conversations int            `json:"conversations"`
			ByState       map[string]int `json:"byState"`
		} `json:"views"`
	}
	x.get("/v1/stats", &stats)
	if stats.OrphansNow != 2 || stats.Views.Conversations != 3 || stats.Views.ByState["closed"] != 1 {
		t.Errorf("stats %+v", stats)
	}
	// The timeline comes from the event store, oldest first, pseudonyms only.
	resp, err := x.client.Get(p.api + "/v1/conversations/" + timeout.Conversation + "/timeline")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var tl struct {
		Events []struct {
			Type     string          `json:"type"`
			Metadata json.RawMessage `json:"metadata"`
		} `json:"events"`
	}
	if err := json.Unmarshal(body, &tl); err != nil || len(tl.Events) != 6 || tl.Events[0].Type != domain.ConversationAdded || tl.Events[5].Type != domain.TaskCanceled {
		t.Errorf("timeline: %v %s", err, body)
	}
	if strings.Contains(string(body), strings.TrimPrefix(timeout.CustomerPhone, "+")) || strings.Contains(string(body), twiliotest.DefaultBody) {
		t.Errorf("timeline holds PII: %s", body)
	}
	if code := x.get("/readyz", nil); code != http.StatusOK {
		t.Errorf("/readyz = %d after catching up", code)
	}
	resp, err = x.client.Get(p.api + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, m := range []string{`flexstream_projector_consumer_lag{partition="0"}`, "flexstream_projector_events_appended_total 24",
		"flexstream_projection_events_applied_total", "flexstream_projection_lag_seconds", "flexstream_projection_lag_positions", "flexstream_api_requests_total"} {
		if !strings.Contains(string(metrics), m) {
			t.Errorf("/metrics lacks %s:\n%s", m, grepLines(string(metrics), "flexstream_projector_"))
		}
	}
	if err := p.stop(t, syscall.SIGTERM); err != nil {
		t.Fatalf("SIGTERM: %v\n%s", err, p.Stderr)
	}
}

// TestEndToEndKill9MidStream: webhooks flow while `up` is killed with
// SIGKILL; it is started again, Twilio's retries of what got no 200 (and
// some of what did) are sent, and then every conversation's stream holds
// each webhook exactly once and its view equals a fold of that stream.
func TestEndToEndKill9MidStream(t *testing.T) {
	data := t.TempDir()
	addr := freeAddr(t)
	p := startUp(t, data, addr)
	x := newE2E(t, p, data)
	var hooks []webhook
	convs := map[string]int{}
	for c := int64(0); c < 150; c++ {
		ids := twiliotest.NewIDs(500 + c)
		lc := []webhook{convHook(ids, "onConversationAdded"), convHook(ids, "onParticipantAdded"), convHook(ids, "onMessageAdded"),
			trHook(ids, "task.created"), trHook(ids, "reservation.created"), trHook(ids, "reservation.rejected"), trHook(ids, "task.canceled")}
		hooks = append(hooks, lc...)
		convs[ids.Conversation] = len(lc)
	}
	var mu sync.Mutex
	acked := make([]bool, len(hooks))
	ackCount := 0
	var wg sync.WaitGroup
	next := make(chan int, len(hooks))
	for i := range hooks {
		next <- i
	}
	close(next)
	killed := make(chan struct{})
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				select {
				case <-killed:
					return
				default:
				}
				if x.send(hooks[i]) == http.StatusOK {
					mu.Lock()
					acked[i] = true
					ackCount++
					mu.Unlock()
				}
			}
		}()
	}
	// Kill it a third of the way through: webhooks in flight, records
	// on their way to the event store, views being committed.
	eventually(t, "a third of the webhooks", func() (bool, string) {
		mu.Lock()
		defer mu.Unlock()
		return ackCount >= len(hooks)/3, fmt.Sprint(ackCount)
	})
	if err := p.stop(t, syscall.SIGKILL); err == nil {
		t.Log("up ended before the kill")
	}
	close(killed)
	wg.Wait()
	n := 0
	for _, a := range acked {
		if a {
			n++
		}
	}
	t.Logf("%d of %d webhooks acknowledged before the kill", n, len(hooks))

	p = startUp(t, data, addr)
	x.p = p
	for i, h := range hooks {
		// Twilio retries what got no 2xx; resend every third acknowledged
		// one too, as a retry after a lost answer would.
		if !acked[i] || i%3 == 0 {
			if code := x.send(h); code != http.StatusOK {
				t.Fatalf("retry %d: %d", i, code)
			}
		}
	}
	connectCtx, cancelConnect := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancelConnect()
	es, err := eventstore.Connect(connectCtx, eventstore.Config{ConnString: p.store, ConnectTimeout: 20 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer es.Close()
	for sid, want := range convs {
		stream := "conversation-" + sid
		var events []eventstore.RecordedEvent
		eventually(t, stream, func() (bool, string) {
			events = events[:0]
			// Every call is bounded: a test must fail, never hang.
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_ = es.ReadStream(ctx, stream, 0, eventstore.All, func(r eventstore.RecordedEvent) error {
				events = append(events, r)
				return nil
			})
			return len(events) >= want, fmt.Sprintf("%d events", len(events))
		})
		if len(events) != want {
			t.Fatalf("%s: %d events, want %d: each webhook exactly once", stream, len(events), want)
		}
		folded := fold.ConversationView{Sid: sid}
		for _, r := range events {
			e, err := domain.Decode(r.Type, r.Data)
			if err != nil {
				t.Fatal(err)
			}
			folded.Apply(e, r.ID.String())
		}
		wantJSON, _ := json.Marshal(folded)
		eventually(t, "the view of "+sid, func() (bool, string) {
			var raw json.RawMessage
			x.get("/v1/conversations/"+sid, &raw)
			var v fold.ConversationView
			_ = json.Unmarshal(raw, &v)
			gotJSON, _ := json.Marshal(v)
			return string(gotJSON) == string(wantJSON), string(gotJSON) + "\nwant " + string(wantJSON)
		})
	}
	if err := p.stop(t, syscall.SIGTERM); err != nil {
		t.Fatalf("SIGTERM: %v\n%s", err, p.Stderr)
	}
}

// grepLines is the lines of s that contain sub, for a failure message.
func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) && !strings.HasPrefix(l, "#") {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
