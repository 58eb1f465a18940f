package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/flexstream/flexstream/internal/eventstore"
	"github.com/flexstream/flexstream/internal/twiliostub"
	"github.com/flexstream/flexstream/internal/twiliotest"
	"github.com/flexstream/flexstream/reactors/engine"
)

// TestEndToEndReactorsAnswerThroughTwilio is the product's reason to
// exist, over real sockets and the real binary: signed webhooks → ingest →
// Kafka → projector → event store → reactors → Twilio's REST API (a
// stand-in that checks every request against Twilio's OpenAPI specs).
// A workflow timeout gets a message and a re-invite carrying the original
// task attributes; a deleted task gets its channel closed; a handled
// conversation gets nothing; the Task API is never called.
func TestEndToEndReactorsAnswerThroughTwilio(t *testing.T) {
	const account, token = "AC0123456789abcdef0123456789abcdef", "0123456789abcdef0123456789abcdef"
	stub := twiliostub.New(twiliostub.WithCredentials(account, token))
	if err := stub.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = stub.Close() })

	timeout, deleted, handled := twiliotest.NewIDs(201), twiliotest.NewIDs(202), twiliotest.NewIDs(203)
	for _, ids := range []twiliotest.IDs{timeout, deleted, handled} {
		stub.AddInteraction(twiliostub.InteractionFixture{
			InteractionSid: ids.Interaction, ChannelSid: ids.Channel, ChannelType: "whatsapp", ChannelStatus: "active",
			ChatServiceSid: ids.ChatService, ConversationSid: ids.Conversation, ConversationState: "active",
			Routing: map[string]any{"properties": map[string]any{
				"workspace_sid": ids.Workspace, "workflow_sid": ids.Workflow, "task_channel_unique_name": "chat",
				"attributes": map[string]any{"from": "whatsapp:" + ids.CustomerPhone, "conversationSid": ids.Conversation},
			}},
		})
	}

	data := t.TempDir()
	p := startUpEnv(t, data, freeAddr(t), []string{"TWILIO_ACCOUNT_SID=" + account, "TWILIO_AUTH_TOKEN=" + token},
		"--twilio-api-url", stub.URL(), "--settle", "200ms")
	x := newE2E(t, p, data, token)

	now := time.Now().UTC().Truncate(time.Second)
	tr := func(ids twiliotest.IDs, ev string, s int, opts ...twiliotest.TaskRouterOpt) webhook {
		return trHook(ids, ev, append(opts, twiliotest.WithTimestamp(now.Add(time.Duration(s)*time.Second)))...)
	}
	cv := func(ids twiliotest.IDs, ev string, s int, opts ...twiliotest.ConversationsOpt) webhook {
		return convHook(ids, ev, append(opts, twiliotest.WithDate(now.Add(time.Duration(s)*time.Second)))...)
	}
	var hooks []webhook
	for _, ids := range []twiliotest.IDs{timeout, deleted, handled} {
		hooks = append(hooks, cv(ids, "onConversationAdded", -4), cv(ids, "onParticipantAdded", -4), cv(ids, "onMessageAdded", -3), tr(ids, "task.created", 0))
	}
	hooks = append(hooks,
		tr(timeout, "workflow.timeout", 1), tr(timeout, "task.canceled", 1, twiliotest.WithCanceledReason("Workflow Timeout")),
		tr(deleted, "task.deleted", 1),
		tr(handled, "reservation.created", 1), tr(handled, "reservation.accepted", 2),
		cv(handled, "onParticipantAdded", 2, twiliotest.WithChatParticipant(handled, "agent.smith")),
		tr(handled, "task.wrapup", 3), tr(handled, "task.completed", 4),
		cv(handled, "onConversationStateUpdated", 4, twiliotest.WithStateTo("closed")),
	)
	for i, h := range hooks {
		if code := x.send(h); code != http.StatusOK {
			t.Fatalf("webhook %d: %d", i, code)
		}
	}

	es, err := eventstore.Connect(context.Background(), eventstore.Config{ConnString: p.store, ConnectTimeout: 20 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer es.Close()
	final := func(task string) []string {
		var types []string
		eventually(t, "the reaction to "+task, func() (bool, string) {
			types = types[:0]
			err := es.ReadStream(context.Background(), engine.StreamPrefix+task, 0, eventstore.All, func(e eventstore.RecordedEvent) error {
				types = append(types, e.Type)
				return nil
			})
			if err != nil && !errors.Is(err, eventstore.ErrStreamNotFound) {
				t.Fatal(err)
			}
			n := len(types)
			return n > 0 && (types[n-1] == engine.EvCompleted || types[n-1] == engine.EvAbandoned), fmt.Sprint(types)
		})
		return types
	}
	if got := final(timeout.Task); got[len(got)-1] != engine.EvCompleted {
		t.Fatalf("workflow timeout: %v", got)
	}
	if got := final(deleted.Task); got[len(got)-1] != engine.EvCompleted {
		t.Fatalf("deleted task: %v", got)
	}

	msgs := stub.Messages(timeout.ChatService, timeout.Conversation)
	if len(msgs) != 1 || msgs[0].Body == "" || !msgs[0].WebhookEnabled {
		t.Fatalf("workflow timeout: want one message with the webhook enabled, got %+v", msgs)
	}
	invites := stub.Invites(timeout.Interaction, timeout.Channel)
	if len(invites) != 1 {
		t.Fatalf("workflow timeout: want one invite, got %+v", invites)
	}
	props, _ := invites[0].Routing["properties"].(map[string]any)
	raw, _ := json.Marshal(props["attributes"])
	if !strings.Contains(string(raw), timeout.CustomerPhone) || !strings.Contains(string(raw), `"attempt":1`) {
		t.Fatalf("the re-invite must re-send the original attributes and its mark: %s", raw)
	}
	if st, _ := stub.Channel(deleted.Interaction, deleted.Channel); st != "closed" {
		t.Fatalf("deleted task: channel %q, want closed", st)
	}
	// The handled conversation is left alone.
	if n := len(stub.Messages(handled.ChatService, handled.Conversation)) + len(stub.Invites(handled.Interaction, handled.Channel)); n != 0 {
		t.Fatalf("handled conversation got %d actions", n)
	}
	if st, _ := stub.Channel(handled.Interaction, handled.Channel); st != "active" {
		t.Fatalf("handled conversation's channel: %q", st)
	}
	stub.RequireNoViolations(t)
	if n := stub.TaskAPICalls(); n != 0 {
		t.Fatalf("rule R2: %d Task API calls", n)
	}
	// The reactors' metrics are served.
	resp, err := http.Get(p.reactors + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`flexstream_reactions_total{kind="workflow.timeout",outcome="completed"} 1`, `flexstream_reaction_trigger_to_action_seconds_count{action="close"} 1`} {
		if !strings.Contains(string(body), want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}

// TestEndToEndReactorsSurviveKill9 kills `up` with SIGKILL while the
// reactors are half-way through twenty reactions, some of them with calls
// in flight, and restarts it on the same data: every conversation ends
// with exactly one message and one re-invite.
func TestEndToEndReactorsSurviveKill9(t *testing.T) {
	const account, token = "AC0123456789abcdef0123456789abcdef", "0123456789abcdef0123456789abcdef"
	stub := twiliostub.New(twiliostub.WithCredentials(account, token))
	if err := stub.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = stub.Close() })
	// Slow answers keep calls in flight when the process dies.
	stub.Delay("CreateServiceConversationMessage", 100*time.Millisecond)
	stub.Delay("CreateInteractionChannelInvite", 100*time.Millisecond)

	const n = 20
	convs := make([]twiliotest.IDs, n)
	for i := range convs {
		ids := twiliotest.NewIDs(int64(300 + i))
		convs[i] = ids
		stub.AddInteraction(twiliostub.InteractionFixture{
			InteractionSid: ids.Interaction, ChannelSid: ids.Channel, ChannelType: "whatsapp", ChannelStatus: "active",
			ChatServiceSid: ids.ChatService, ConversationSid: ids.Conversation, ConversationState: "active",
			Routing: map[string]any{"properties": map[string]any{
				"workspace_sid": ids.Workspace, "workflow_sid": ids.Workflow, "task_channel_unique_name": "chat",
				"attributes": map[string]any{"from": "whatsapp:" + ids.CustomerPhone},
			}},
		})
	}
	env := []string{"TWILIO_ACCOUNT_SID=" + account, "TWILIO_AUTH_TOKEN=" + token}
	flags := []string{"--twilio-api-url", stub.URL(), "--settle", "100ms", "--reactor-workers", "4"}
	data, addr := t.TempDir(), freeAddr(t)
	p := startUpEnv(t, data, addr, env, flags...)
	x := newE2E(t, p, data, token)
	now := time.Now().UTC().Truncate(time.Second)
	for i, ids := range convs {
		for _, h := range []webhook{
			convHook(ids, "onConversationAdded", twiliotest.WithDate(now.Add(-4*time.Second))),
			convHook(ids, "onParticipantAdded", twiliotest.WithDate(now.Add(-4*time.Second))),
			convHook(ids, "onMessageAdded", twiliotest.WithDate(now.Add(-3*time.Second))),
			trHook(ids, "task.created", twiliotest.WithTimestamp(now)),
			trHook(ids, "workflow.timeout", twiliotest.WithTimestamp(now.Add(time.Second))),
			trHook(ids, "task.canceled", twiliotest.WithTimestamp(now.Add(time.Second)), twiliotest.WithCanceledReason("Workflow Timeout")),
		} {
			if code := x.send(h); code != http.StatusOK {
				t.Fatalf("conversation %d: webhook answered %d", i, code)
			}
		}
	}
	eventually(t, "some re-invites", func() (bool, string) {
		c := stub.CallsTo("CreateInteractionChannelInvite")
		return c >= 5, fmt.Sprint(c, " invites")
	})
	if err := p.stop(t, syscall.SIGKILL); err == nil {
		t.Fatal("a SIGKILLed process should not exit cleanly")
	}
	before := stub.CallsTo("CreateInteractionChannelInvite")
	restarted := startUpEnv(t, data, addr, env, flags...)

	for i, ids := range convs {
		eventually(t, fmt.Sprintf("conversation %d's message and invite", i), func() (bool, string) {
			m, inv := len(stub.Messages(ids.ChatService, ids.Conversation)), len(stub.Invites(ids.Interaction, ids.Channel))
			return m >= 1 && inv >= 1, fmt.Sprintf("%d messages, %d invites", m, inv)
		})
	}
	// Give a duplicate, if there were one, time to happen.
	time.Sleep(time.Second)
	for i, ids := range convs {
		if m, inv := len(stub.Messages(ids.ChatService, ids.Conversation)), len(stub.Invites(ids.Interaction, ids.Channel)); m != 1 || inv != 1 {
			t.Errorf("conversation %d: %d messages, %d invites; want exactly one of each", i, m, inv)
		}
	}
	t.Logf("invites before the kill: %d of %d", before, n)
	resp, err := http.Get(restarted.reactors + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("restarted reactors not ready: %d", resp.StatusCode)
	}
	stub.RequireNoViolations(t)
	if c := stub.TaskAPICalls(); c != 0 {
		t.Fatalf("rule R2: %d Task API calls", c)
	}
}
