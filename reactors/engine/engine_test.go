package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/flexstream/flexstream/internal/esserver"
	"github.com/flexstream/flexstream/internal/eventstore"
	"github.com/flexstream/flexstream/internal/twilioapi"
	"github.com/flexstream/flexstream/internal/twiliostub"
	"github.com/flexstream/flexstream/projector/domain"
	"github.com/flexstream/flexstream/reactors/act"
	"github.com/flexstream/flexstream/reactors/decide"
	"github.com/flexstream/flexstream/reactors/policy"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// Operation ids of Twilio's specs.
const (
	opMessage = "CreateServiceConversationMessage"
	opInvite  = "CreateInteractionChannelInvite"
	opClose   = "UpdateInteractionChannel"
)

const (
	account = "AC0123456789abcdef0123456789abcdef"
	token   = "0123456789abcdef0123456789abcdef"
	space   = "WS0123456789abcdef0123456789abcdef"
	flow    = "WW0123456789abcdef0123456789abcdef"
	queue   = "WQ0123456789abcdef0123456789abcdef"
)

func sid(prefix string, n int) string { return fmt.Sprintf("%s%032x", prefix, n) }

// world is one event store, one Twilio stand-in, and the conversations
// the test puts in both.
type world struct {
	t     *testing.T
	es    *eventstore.Client
	stub  *twiliostub.Server
	actor *act.Actor
	n     atomic.Int64
}

func newWorld(t *testing.T) *world {
	t.Helper()
	ctx := context.Background()
	log := zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel))
	srv, err := esserver.Start(ctx, esserver.Config{Addr: "127.0.0.1:0", DataDir: t.TempDir(), Logger: log})
	require.NoError(t, err)
	es, err := eventstore.Connect(ctx, eventstore.Config{ConnString: srv.ConnectionString()})
	require.NoError(t, err)
	stub := twiliostub.New(twiliostub.WithCredentials(account, token))
	require.NoError(t, stub.Start())
	t.Cleanup(func() {
		_ = es.Close()
		_ = srv.Close()
		_ = stub.Close()
	})
	api, err := twilioapi.New(twilioapi.Config{AccountSid: account, AuthToken: token, BaseURL: stub.URL(), Timeout: 5 * time.Second})
	require.NoError(t, err)
	return &world{t: t, es: es, stub: stub, actor: act.New(api)}
}

// conv is one conversation of the test, in Twilio (the stand-in) and in
// the store (its domain events, as the projector writes them).
type conv struct {
	n                   int
	ch, is, kd, uo, cus string
	tasks               []string
}

// open makes an open WhatsApp conversation whose customer wrote a minute
// ago, with a first task, in both worlds.
func (w *world) open() *conv {
	n := int(w.n.Add(1))
	c := &conv{n: n, ch: sid("CH", n), is: sid("IS", 1), kd: sid("KD", n), uo: sid("UO", n), cus: "whatsapp:ph:customer" + fmt.Sprint(n)}
	w.stub.AddInteraction(twiliostub.InteractionFixture{
		InteractionSid: c.kd, ChannelSid: c.uo, ChannelType: "whatsapp", ChannelStatus: "active",
		ChatServiceSid: c.is, ConversationSid: c.ch, ConversationState: "active",
		Routing: map[string]any{"properties": map[string]any{
			"workspace_sid": space, "workflow_sid": flow, "task_channel_unique_name": "chat",
			"attributes": map[string]any{"from": "whatsapp:+15550000000", "conversationSid": c.ch, "customerName": "Ada"},
		}},
	})
	now := time.Now().UTC()
	w.store(c,
		domain.Event{Type: domain.ConversationAdded, ConversationSid: c.ch, ChatServiceSid: c.is, State: "active", At: now.Add(-2 * time.Minute)},
		domain.Event{Type: domain.ParticipantAdded, ConversationSid: c.ch, ChatServiceSid: c.is, ParticipantSid: sid("MB", n), Role: domain.RoleCustomer, Address: c.cus, ChannelType: "whatsapp", At: now.Add(-2 * time.Minute)},
		domain.Event{Type: domain.MessageAdded, ConversationSid: c.ch, ChatServiceSid: c.is, MessageSid: sid("IM", n), Author: c.cus, At: now.Add(-time.Minute)},
	)
	c.tasks = append(c.tasks, w.task(c, ""))
	return c
}

// task creates a pending task of the conversation (attrs: its attributes,
// "" for the first task's).
func (w *world) task(c *conv, attrs string) string {
	wt := sid("WT", c.n*100+len(c.tasks))
	if attrs == "" {
		attrs = fmt.Sprintf(`{"conversationSid":%q,"from":"whatsapp:ph:x"}`, c.ch)
	}
	w.store(c, domain.Event{Type: domain.TaskCreated, ConversationSid: c.ch, TaskSid: wt, InteractionSid: c.kd, ChannelSid: c.uo,
		WorkflowSid: flow, QueueSid: queue, TaskChannel: "chat", ChannelType: "whatsapp", AssignmentStatus: "pending",
		TaskAttributes: json.RawMessage(attrs), At: time.Now().UTC()})
	return wt
}

// end ends the conversation's task as Twilio would report it.
func (w *world) end(c *conv, wt string, types ...string) {
	for _, typ := range types {
		e := domain.Event{Type: typ, ConversationSid: c.ch, TaskSid: wt, InteractionSid: c.kd, ChannelSid: c.uo, WorkflowSid: flow, QueueSid: queue, At: time.Now().UTC()}
		switch typ {
		case domain.TaskCanceled:
			e.AssignmentStatus, e.CanceledReason = "canceled", "Workflow Timeout"
		case domain.TaskDeleted:
			e.AssignmentStatus = "canceled"
		}
		w.store(c, e)
	}
}

func (w *world) store(c *conv, evs ...domain.Event) {
	w.t.Helper()
	for _, e := range evs {
		data, err := json.Marshal(e)
		require.NoError(w.t, err)
		_, err = w.es.Append(context.Background(), "conversation-"+c.ch, eventstore.Any, eventstore.Event{ID: uuid.New(), Type: e.Type, Data: data, Metadata: []byte("{}")})
		require.NoError(w.t, err)
	}
}

// reaction reads a reaction stream's event types ("" list when missing).
func (w *world) reaction(wt string) []string {
	var types []string
	err := w.es.ReadStream(context.Background(), StreamPrefix+wt, 0, eventstore.All, func(e eventstore.RecordedEvent) error {
		types = append(types, e.Type)
		return nil
	})
	if err != nil && !errors.Is(err, eventstore.ErrStreamNotFound) {
		w.t.Fatal(err)
	}
	return types
}

// waitFinal waits for the reaction to the task to be final and returns
// its event types.
func (w *world) waitFinal(wt string) []string {
	w.t.Helper()
	var types []string
	require.Eventually(w.t, func() bool {
		types = w.reaction(wt)
		return len(types) > 0 && (types[len(types)-1] == EvCompleted || types[len(types)-1] == EvAbandoned)
	}, 30*time.Second, 20*time.Millisecond, "reaction to %s: %v", wt, types)
	return types
}

func (w *world) config(instance string) Config {
	return Config{
		Store: w.es, Actor: w.actor, Policy: policy.Default(), Instance: instance,
		Workers: 4, Settle: 50 * time.Millisecond, Lease: 2 * time.Second, MinBackoff: 20 * time.Millisecond, MaxBackoff: 200 * time.Millisecond,
		CheckpointEvery: 50 * time.Millisecond, Logger: zaptest.NewLogger(w.t, zaptest.Level(zap.WarnLevel)),
	}
}

// run starts an engine and waits until it is following the store; the
// returned stop ends it and returns Run's error.
func (w *world) run(cfg Config) (*Engine, func() error) {
	w.t.Helper()
	e, err := New(cfg)
	require.NoError(w.t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.Run(ctx) }()
	select {
	case <-e.Ready():
	case err := <-done:
		cancel()
		w.t.Fatalf("engine stopped before it was ready: %v", err)
	case <-time.After(30 * time.Second):
		cancel()
		w.t.Fatal("engine not ready in 30 s")
	}
	var once sync.Once
	var runErr error
	stop := func() error {
		once.Do(func() {
			cancel()
			runErr = <-done
		})
		return runErr
	}
	w.t.Cleanup(func() { _ = stop() })
	return e, stop
}

func (w *world) check() {
	w.t.Helper()
	w.stub.RequireNoViolations(w.t)
	require.Zero(w.t, w.stub.TaskAPICalls(), "rule R2: the Task API is never called")
}

// reinviteMark is the flexstream mark on an invite's task attributes.
func reinviteMark(t *testing.T, inv twiliostub.Invite) map[string]any {
	t.Helper()
	props, _ := inv.Routing["properties"].(map[string]any)
	require.NotNil(t, props, "invite routing: %v", inv.Routing)
	var attrs map[string]any
	switch a := props["attributes"].(type) {
	case map[string]any:
		attrs = a
	case string:
		require.NoError(t, json.Unmarshal([]byte(a), &attrs))
	}
	m, _ := attrs[act.MarkKey].(map[string]any)
	require.NotNil(t, m, "attributes: %v", attrs)
	require.Equal(t, "whatsapp:+15550000000", attrs["from"], "the original attributes are re-sent")
	return m
}

func TestWorkflowTimeoutMessagesAndReinvites(t *testing.T) {
	w := newWorld(t)
	reg := prometheus.NewRegistry()
	cfg := w.config("a")
	cfg.Registry = reg
	w.run(cfg)

	c := w.open()
	w.end(c, c.tasks[0], domain.WorkflowTimedOut, domain.TaskCanceled)
	types := w.waitFinal(c.tasks[0])
	require.Equal(t, []string{EvPlanned, EvStarted, EvSucceeded, EvStarted, EvSucceeded, EvCompleted}, types)

	msgs := w.stub.Messages(c.is, c.ch)
	require.Len(t, msgs, 1)
	require.NotEmpty(t, msgs[0].Body)
	require.True(t, msgs[0].WebhookEnabled, "the product must see its own message")
	invites := w.stub.Invites(c.kd, c.uo)
	require.Len(t, invites, 1)
	m := reinviteMark(t, invites[0])
	require.EqualValues(t, 1, m["attempt"])
	props := invites[0].Routing["properties"].(map[string]any)
	require.Equal(t, space, props["workspace_sid"])
	require.Equal(t, flow, props["workflow_sid"])
	w.check()

	require.Equal(t, 1.0, testutil.ToFloat64(w.metric(reg, "flexstream_reactions_total", "workflow.timeout", "completed")))
	require.Equal(t, 1.0, testutil.ToFloat64(w.metric(reg, "flexstream_reaction_actions_total", "reinvite", "workflow.timeout", "succeeded")))
}

// metric finds a metric by its label values, in the order of the label
// names sorted (as Gather gives them).
func (w *world) metric(reg *prometheus.Registry, name string, labels ...string) prometheus.Collector {
	w.t.Helper()
	mfs, err := reg.Gather()
	require.NoError(w.t, err)
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			match := len(m.GetLabel()) == len(labels)
			for i, l := range m.GetLabel() {
				match = match && l.GetValue() == labels[i]
			}
			if match {
				return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "x", Help: "x"}, func() float64 { return m.GetCounter().GetValue() })
			}
		}
	}
	w.t.Fatalf("no %s%v", name, labels)
	return nil
}

func TestTaskDeletedClosesTheChannel(t *testing.T) {
	w := newWorld(t)
	w.run(w.config("a"))
	c := w.open()
	w.end(c, c.tasks[0], domain.TaskDeleted)
	require.Equal(t, []string{EvPlanned, EvStarted, EvSucceeded, EvCompleted}, w.waitFinal(c.tasks[0]))
	st, _ := w.stub.Channel(c.kd, c.uo)
	require.Equal(t, "closed", st)
	require.Equal(t, 1, w.stub.CallsTo(opClose))
	w.check()
}

// A channel someone already closed is not closed again: the live state is
// checked before each call.
func TestClosedChannelIsNotClosedAgain(t *testing.T) {
	w := newWorld(t)
	w.run(w.config("a"))
	c := w.open()
	require.True(t, w.stub.SetChannelStatus(c.kd, c.uo, "closed"))
	w.end(c, c.tasks[0], domain.TaskDeleted)
	require.Equal(t, []string{EvPlanned, EvStarted, EvSkipped, EvCompleted}, w.waitFinal(c.tasks[0]))
	require.Zero(t, w.stub.CallsTo(opClose))
	w.check()
}

// 429 and 503 are retried, honouring Retry-After; the reaction then
// completes with one effect.
func TestRetriesHonourRetryAfter(t *testing.T) {
	w := newWorld(t)
	w.run(w.config("a"))
	c := w.open()
	w.stub.FailNext(opClose, 1, 429, "1")
	w.stub.FailNext(opClose, 1, 503, "")
	start := time.Now()
	w.end(c, c.tasks[0], domain.TaskDeleted)
	types := w.waitFinal(c.tasks[0])
	require.Equal(t, []string{EvPlanned, EvStarted, EvFailed, EvStarted, EvFailed, EvStarted, EvSucceeded, EvCompleted}, types)
	require.GreaterOrEqual(t, time.Since(start), time.Second, "Retry-After: 1 was honoured")
	require.Equal(t, 3, w.stub.CallsTo(opClose))
	var statuses []int
	require.NoError(t, w.es.ReadStream(context.Background(), StreamPrefix+c.tasks[0], 0, eventstore.All, func(e eventstore.RecordedEvent) error {
		if e.Type == EvFailed {
			var s Step
			require.NoError(t, json.Unmarshal(e.Data, &s))
			statuses = append(statuses, s.Status)
		}
		return nil
	}))
	require.Equal(t, []int{429, 503}, statuses)
	w.check()
}

// After MaxAttempts the reaction is abandoned and counted; a refusal that
// retrying cannot fix abandons it at once.
func TestAbandoned(t *testing.T) {
	w := newWorld(t)
	reg := prometheus.NewRegistry()
	cfg := w.config("a")
	cfg.Registry, cfg.MaxAttempts = reg, 3
	w.run(cfg)

	c := w.open()
	w.stub.FailNext(opClose, 3, 503, "") // exactly MaxAttempts: none left for the next conversation
	w.end(c, c.tasks[0], domain.TaskDeleted)
	types := w.waitFinal(c.tasks[0])
	require.Equal(t, EvAbandoned, types[len(types)-1])
	require.Equal(t, 3, w.stub.CallsTo(opClose))

	d := w.open()
	w.stub.FailNext(opClose, 1, 400, "")
	w.end(d, d.tasks[0], domain.TaskDeleted)
	types = w.waitFinal(d.tasks[0])
	require.Equal(t, []string{EvPlanned, EvStarted, EvFailed, EvAbandoned}, types)
	require.Equal(t, 2.0, testutil.ToFloat64(w.metric(reg, "flexstream_reactions_abandoned_total", "task.deleted")))
	w.check()
}

func TestDryRunCallsNothing(t *testing.T) {
	w := newWorld(t)
	cfg := w.config("a")
	cfg.DryRun, cfg.Actor = true, nil
	w.run(cfg)
	c := w.open()
	w.end(c, c.tasks[0], domain.WorkflowTimedOut, domain.TaskCanceled)
	require.Equal(t, []string{EvPlanned, EvCompleted}, w.waitFinal(c.tasks[0]))
	require.Empty(t, w.stub.Calls())

	var p Planned
	require.NoError(t, w.es.ReadStream(context.Background(), StreamPrefix+c.tasks[0], 0, 1, func(e eventstore.RecordedEvent) error {
		return json.Unmarshal(e.Data, &p)
	}))
	require.True(t, p.DryRun)
	require.Len(t, p.Plan.Actions, 2, "the decision is recorded in full")
}

// A first deployment starts from "now": triggers already in the store are
// history and are not acted on; the checkpoint then carries the position
// across restarts.
func TestFirstStartIgnoresHistory(t *testing.T) {
	w := newWorld(t)
	old := w.open()
	w.end(old, old.tasks[0], domain.TaskDeleted)

	_, stop := w.run(w.config("a"))
	c := w.open()
	w.end(c, c.tasks[0], domain.TaskDeleted)
	w.waitFinal(c.tasks[0])
	require.NoError(t, stop())
	require.Empty(t, w.reaction(old.tasks[0]), "history is not acted on")

	// Stopped, a trigger arrives; the restart answers it (and nothing twice).
	d := w.open()
	w.end(d, d.tasks[0], domain.TaskDeleted)
	w.run(w.config("a"))
	w.waitFinal(d.tasks[0])
	require.Empty(t, w.reaction(old.tasks[0]))
	require.Equal(t, 2, w.stub.CallsTo(opClose))
	w.check()
}

// A trigger older than its rule's deadline (the reactor was down) is
// recorded as expired, not acted on late.
func TestExpiredTriggerIsNotActedOn(t *testing.T) {
	w := newWorld(t)
	w.run(w.config("a"))
	c := w.open()
	e := domain.Event{Type: domain.TaskDeleted, ConversationSid: c.ch, TaskSid: c.tasks[0], InteractionSid: c.kd, ChannelSid: c.uo, AssignmentStatus: "canceled", At: time.Now().UTC().Add(-24 * time.Hour)}
	w.store(c, e)
	require.Equal(t, []string{EvPlanned, EvCompleted}, w.waitFinal(c.tasks[0]))
	require.Empty(t, w.stub.Calls())
}

// The crash tests stop a reaction at a step, as kill -9 would (nothing
// more is written), then start a new engine of the same instance on the
// same store: each action happens exactly once.
func TestCrashRecovery(t *testing.T) {
	for _, tc := range []struct {
		step  string // where the first engine dies
		which int    // on which occurrence of the step (1-based)
	}{
		{"planned", 1},
		{"started", 1}, // claimed the message, did not call
		{"called", 1},  // sent the message, did not record it
		{"started", 2}, // message recorded, claimed the invite
		{"called", 2},  // invited, did not record it
	} {
		t.Run(fmt.Sprintf("%s-%d", tc.step, tc.which), func(t *testing.T) {
			w := newWorld(t)
			cfg := w.config("a")
			var seen atomic.Int32
			crashed := make(chan struct{})
			cfg.hook = func(step string, _ *reaction) error {
				if step == tc.step && int(seen.Add(1)) == tc.which {
					close(crashed)
					return errCrash
				}
				return nil
			}
			_, stop := w.run(cfg)
			c := w.open()
			w.end(c, c.tasks[0], domain.WorkflowTimedOut, domain.TaskCanceled)
			select {
			case <-crashed:
			case <-time.After(30 * time.Second):
				t.Fatal("the reaction never reached the crash point")
			}
			require.NoError(t, stop())
			require.NotContains(t, w.reaction(c.tasks[0]), EvCompleted)

			w.run(w.config("a")) // the same instance, restarted
			types := w.waitFinal(c.tasks[0])
			require.Equal(t, EvCompleted, types[len(types)-1], "%v", types)
			require.Len(t, w.stub.Messages(c.is, c.ch), 1, "exactly one message")
			require.Len(t, w.stub.Invites(c.kd, c.uo), 1, "exactly one invite")
			if tc.step == "called" {
				require.Contains(t, reconciled(t, w, c.tasks[0]), true, "the restart found the call done instead of repeating it")
			}
			w.check()
		})
	}
}

func reconciled(t *testing.T, w *world, wt string) []bool {
	var out []bool
	require.NoError(t, w.es.ReadStream(context.Background(), StreamPrefix+wt, 0, eventstore.All, func(e eventstore.RecordedEvent) error {
		if e.Type == EvSucceeded {
			var s Step
			require.NoError(t, json.Unmarshal(e.Data, &s))
			out = append(out, s.Reconciled)
		}
		return nil
	}))
	return out
}

// Twilio acted but its answer was lost (a 500 after the effect): the
// next attempt finds the mark and does not repeat the call.
func TestLostAnswerIsReconciled(t *testing.T) {
	w := newWorld(t)
	w.run(w.config("a"))
	c := w.open()
	w.stub.FailAfterEffect(opMessage, 1, 500)
	w.end(c, c.tasks[0], domain.WorkflowTimedOut, domain.TaskCanceled)
	types := w.waitFinal(c.tasks[0])
	require.Equal(t, EvCompleted, types[len(types)-1])
	require.Equal(t, 1, w.stub.CallsTo(opMessage))
	require.Len(t, w.stub.Messages(c.is, c.ch), 1)
	require.Contains(t, reconciled(t, w, c.tasks[0]), true)
	w.check()
}

// Two instances follow the same store: every trigger is acted on once.
func TestTwoInstancesActOnce(t *testing.T) {
	w := newWorld(t)
	w.run(w.config("a"))
	w.run(w.config("b"))
	const n = 12
	convs := make([]*conv, n)
	for i := range convs {
		convs[i] = w.open()
		if i%2 == 0 {
			w.end(convs[i], convs[i].tasks[0], domain.WorkflowTimedOut, domain.TaskCanceled)
		} else {
			w.end(convs[i], convs[i].tasks[0], domain.TaskDeleted)
		}
	}
	owners := map[string]int{}
	for i, c := range convs {
		w.waitFinal(c.tasks[0])
		if i%2 == 0 {
			require.Len(t, w.stub.Messages(c.is, c.ch), 1, "conversation %d", i)
			require.Len(t, w.stub.Invites(c.kd, c.uo), 1, "conversation %d", i)
		} else {
			st, _ := w.stub.Channel(c.kd, c.uo)
			require.Equal(t, "closed", st)
		}
		require.NoError(t, w.es.ReadStream(context.Background(), StreamPrefix+c.tasks[0], 0, 1, func(e eventstore.RecordedEvent) error {
			var p Planned
			require.NoError(t, json.Unmarshal(e.Data, &p))
			owners[p.Owner]++
			return nil
		}))
	}
	require.Equal(t, n/2, w.stub.CallsTo(opMessage))
	require.Equal(t, n/2, w.stub.CallsTo(opInvite))
	require.Equal(t, n/2, w.stub.CallsTo(opClose))
	t.Logf("plans by instance: %v", owners)
	w.check()
}

// A reaction whose owner died mid-way is taken over by another instance
// once the owner's lease has run out.
func TestLeaseTakeover(t *testing.T) {
	w := newWorld(t)
	cfg := w.config("a")
	crashed := make(chan struct{})
	var once sync.Once
	cfg.hook = func(step string, _ *reaction) error {
		if step == "started" {
			once.Do(func() { close(crashed) })
			return errCrash
		}
		return nil
	}
	_, stopA := w.run(cfg)
	c := w.open()
	w.end(c, c.tasks[0], domain.TaskDeleted)
	<-crashed
	require.NoError(t, stopA())

	// b sees the trigger only if it was running: start it from a's
	// checkpoint position by replaying the trigger to it.
	b := w.config("b")
	_, _ = w.run(b)
	w.end(c, c.tasks[0], domain.TaskCanceled) // a later event of the same task reaches b
	types := w.waitFinal(c.tasks[0])
	require.Equal(t, EvCompleted, types[len(types)-1])
	require.Equal(t, 1, w.stub.CallsTo(opClose))
	w.check()
}

func TestConfigValidate(t *testing.T) {
	w := &world{}
	_ = w
	for _, tc := range []struct {
		mod   func(*Config)
		field string
	}{
		{func(c *Config) { c.Store = nil }, "store"},
		{func(c *Config) { c.Actor = nil }, "twilio"},
		{func(c *Config) { c.Policy = nil }, "policy"},
		{func(c *Config) { c.Workers = -1 }, "reactor-workers"},
		{func(c *Config) { c.Lease = time.Millisecond }, "lease"},
		{func(c *Config) { c.MaxAttempts = -2 }, "max-attempts"},
		{func(c *Config) { c.MinBackoff, c.MaxBackoff = time.Second, time.Millisecond }, "backoff"},
	} {
		cfg := Config{Store: fakeStore{}, Actor: &act.Actor{}, Policy: policy.Default()}
		tc.mod(&cfg)
		err := cfg.Validate()
		require.Error(t, err)
		require.True(t, strings.Contains(err.Error(), tc.field), "%v", err)
	}
	ok := Config{Store: fakeStore{}, Policy: policy.Default(), DryRun: true}
	require.NoError(t, ok.Validate())
	require.Equal(t, DefaultWorkers, ok.Workers)
}

type fakeStore struct{ Store }

var _ = decide.KindTaskDeleted
