package readmodel_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"
	"go.uber.org/goleak"

	"github.com/flexstream/flexstream/internal/esserver"
	"github.com/flexstream/flexstream/internal/eventstore"
	"github.com/flexstream/flexstream/projector/domain"
	"github.com/flexstream/flexstream/projector/fold"
	"github.com/flexstream/flexstream/projector/readmodel"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func sid(prefix string, n int) string { return fmt.Sprintf("%s%032x", prefix, n) }

var t0 = time.Date(2026, 11, 25, 8, 0, 0, 0, time.UTC)

// lifecycle is conversation n's events; closed ones end closed, the others
// are left with a canceled task (orphans).
func lifecycle(n int, closed bool) []domain.Event {
	c, task := sid("CH", n), sid("WT", n)
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	evs := []domain.Event{
		{Type: domain.ConversationAdded, ConversationSid: c, State: "active", At: at(0)},
		{Type: domain.ParticipantAdded, ConversationSid: c, ParticipantSid: sid("MB", n), Role: domain.RoleCustomer, Address: "whatsapp:ph:x:12", ChannelType: "whatsapp", At: at(1)},
		{Type: domain.MessageAdded, ConversationSid: c, MessageSid: sid("IM", n), Index: 0, At: at(2)},
		{Type: domain.TaskCreated, ConversationSid: c, TaskSid: task, AssignmentStatus: "pending", At: at(3)},
	}
	if closed {
		evs = append(evs, domain.Event{Type: domain.ConversationStateChanged, ConversationSid: c, State: "closed", StateFrom: "active", At: at(4)})
	} else {
		evs = append(evs, domain.Event{Type: domain.TaskCanceled, ConversationSid: c, TaskSid: task, CanceledReason: "Task TTL Exceeded", At: at(4)})
	}
	return evs
}

func appendAll(t *testing.T, es *eventstore.Client, evs []domain.Event) {
	t.Helper()
	for _, e := range evs {
		data, _ := json.Marshal(e)
		stream := domain.StreamFor(e, "x")
		if _, err := es.Append(context.Background(), stream, eventstore.Any, eventstore.Event{ID: uuid.New(), Type: e.Type, Data: data, Metadata: []byte("{}")}); err != nil {
			t.Fatal(err)
		}
	}
}

// runUntilCaughtUp runs the projection until it has caught up, then stops it.
func runUntilCaughtUp(t *testing.T, store *readmodel.Store, es *eventstore.Client) *readmodel.Progress {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	prog := &readmodel.Progress{}
	caught := make(chan struct{}, 1)
	done := make(chan error, 1)
	go func() {
		done <- readmodel.Run(ctx, readmodel.RunConfig{Store: store, Events: es, Progress: prog, CaughtUp: func() { caught <- struct{}{} }})
	}()
	select {
	case <-caught:
	case err := <-done:
		t.Fatalf("run ended: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("never caught up")
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	return prog
}

func foldAll(evs []domain.Event) map[string]string {
	views := map[string]*fold.ConversationView{}
	for i, e := range evs {
		v := views[e.ConversationSid]
		if v == nil {
			v = &fold.ConversationView{Sid: e.ConversationSid}
			views[e.ConversationSid] = v
		}
		v.Apply(e, fmt.Sprint(i))
	}
	out := map[string]string{}
	for k, v := range views {
		b, _ := json.Marshal(v)
		out[k] = string(b)
	}
	return out
}

// TestProjectionResumesExactly: a second run starts after the checkpoint
// (it applies only the new events) and the views equal a fold of all the
// events; queries filter, page and count orphans from the indexes.
func TestProjectionResumesExactly(t *testing.T) {
	ctx := context.Background()
	srv, err := esserver.Start(ctx, esserver.Config{Addr: "127.0.0.1:0", DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	es, err := eventstore.Connect(ctx, eventstore.Config{ConnString: srv.ConnectionString()})
	if err != nil {
		t.Fatal(err)
	}
	defer es.Close()
	dir := t.TempDir()
	var first, second []domain.Event
	for n := 0; n < 30; n++ {
		first = append(first, lifecycle(n, n%3 == 0)...)
	}
	for n := 30; n < 45; n++ {
		second = append(second, lifecycle(n, n%3 == 0)...)
	}
	appendAll(t, es, first)
	// Noise the filter must leave out.
	appendAll(t, es, []domain.Event{{Type: domain.TwilioEvent, WorkerSid: sid("WK", 1), At: t0}})

	store, err := readmodel.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	p1 := runUntilCaughtUp(t, store, es)
	store.Close()
	if got := p1.Applied.Load(); got != int64(len(first)) {
		t.Fatalf("first run applied %d, want %d", got, len(first))
	}
	appendAll(t, es, second)
	store, err = readmodel.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	p2 := runUntilCaughtUp(t, store, es)
	if got := p2.Applied.Load(); got != int64(len(second)) {
		t.Fatalf("second run applied %d, want only the %d new events", got, len(second))
	}
	want := foldAll(append(append([]domain.Event(nil), first...), second...))
	for c, w := range want {
		raw, err := store.ConversationJSON(c)
		if err != nil {
			t.Fatal(err)
		}
		var v fold.ConversationView
		_ = json.Unmarshal(raw, &v)
		got, _ := json.Marshal(v)
		if string(got) != w {
			t.Fatalf("%s:\n got %s\nwant %s", c, got, w)
		}
	}
	st, err := store.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if st.Conversations != 45 || st.ByState["closed"] != 15 || st.ByState["active"] != 30 {
		t.Errorf("stats %+v", st)
	}
	now := t0.Add(time.Hour)
	if n, err := store.OrphansNow(now, time.Minute); err != nil || n != 30 {
		t.Errorf("orphans now %d, %v; want 30", n, err)
	}
	if n, _ := store.OrphansNow(t0.Add(10*time.Second), time.Minute); n != 0 {
		t.Errorf("orphans within the grace: %d, want 0", n)
	}
	// Paging through the orphans, 7 at a time, gives each once.
	yes := true
	seen := map[string]bool{}
	cursor := ""
	for pages := 0; ; pages++ {
		items, next, err := store.Conversations(readmodel.Query{Orphaned: &yes, After: cursor, Limit: 7, Now: now, Grace: time.Minute})
		if err != nil {
			t.Fatal(err)
		}
		for _, it := range items {
			var v fold.ConversationView
			_ = json.Unmarshal(it, &v)
			if seen[v.Sid] || v.State == "closed" {
				t.Fatalf("page %d: %s twice or closed", pages, v.Sid)
			}
			seen[v.Sid] = true
		}
		if next == "" {
			break
		}
		cursor = next
	}
	if len(seen) != 30 {
		t.Errorf("paged %d orphans, want 30", len(seen))
	}
	items, _, err := store.Conversations(readmodel.Query{State: "closed", Limit: 100, Now: now})
	if err != nil || len(items) != 15 {
		t.Errorf("closed: %d, %v", len(items), err)
	}
	items, _, _ = store.Conversations(readmodel.Query{Flag: fold.FlagNoCloseTimer, Limit: 100, Now: now})
	if len(items) != 30 {
		t.Errorf("no-close-timer flag: %d, want the 30 open ones", len(items))
	}
}
