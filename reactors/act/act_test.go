package act

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"go.uber.org/goleak"

	"github.com/flexstream/flexstream/internal/twilioapi"
	"github.com/flexstream/flexstream/internal/twiliostub"
	"github.com/flexstream/flexstream/reactors/decide"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const (
	account = "AC0123456789abcdef0123456789abcdef"
	token   = "0123456789abcdef0123456789abcdef"
	space   = "WS0123456789abcdef0123456789abcdef"
	flow    = "WW0123456789abcdef0123456789abcdef"
	other   = "WWfedcba9876543210fedcba9876543210"
	worker  = "WK0123456789abcdef0123456789abcdef"
)

func setup(t *testing.T, routing map[string]any) (*Actor, *twiliostub.Server, twiliostub.InteractionFixture) {
	t.Helper()
	stub := twiliostub.New(twiliostub.WithCredentials(account, token))
	if err := stub.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		stub.RequireNoViolations(t)
		if n := stub.TaskAPICalls(); n != 0 {
			t.Errorf("rule R2: %d Task API calls", n)
		}
		_ = stub.Close()
	})
	fx := stub.AddInteraction(twiliostub.InteractionFixture{ChannelStatus: "active", ConversationState: "active", Routing: routing})
	api, err := twilioapi.New(twilioapi.Config{AccountSid: account, AuthToken: token, BaseURL: stub.URL()})
	if err != nil {
		t.Fatal(err)
	}
	return New(api), stub, fx
}

func routing(attrs any) map[string]any {
	return map[string]any{"properties": map[string]any{
		"workspace_sid": space, "workflow_sid": flow, "task_channel_unique_name": "chat", "attributes": attrs,
	}}
}

// Each action: needed before, not done before, done after (found by its
// mark, or by the channel's status), and the live state makes it
// pointless afterwards.
func TestActionsAndTheirChecks(t *testing.T) {
	ctx := context.Background()
	a, stub, fx := setup(t, routing(`{"from":"whatsapp:+15550001111","conversationSid":"CH1"}`))
	mark := Mark{Reaction: "reaction-WT1", Action: 0, Attempt: 2, WorkerSid: worker}
	msg := decide.Action{Kind: decide.ActMessage, ChatServiceSid: fx.ChatServiceSid, ConversationSid: fx.ConversationSid, Body: "Still looking for an agent"}
	inv := decide.Action{Kind: decide.ActReinvite, InteractionSid: fx.InteractionSid, ChannelSid: fx.ChannelSid, WorkflowSid: other, WorkerSid: worker, Attempt: 2}
	cls := decide.Action{Kind: decide.ActClose, InteractionSid: fx.InteractionSid, ChannelSid: fx.ChannelSid}

	for _, act := range []decide.Action{msg, inv, cls} {
		needed, why, err := a.Precheck(ctx, act)
		if err != nil || !needed {
			t.Fatalf("%s precheck: %v %q %v", act.Kind, needed, why, err)
		}
		done, _, err := a.Done(ctx, act, mark)
		if err != nil || done {
			t.Fatalf("%s done before doing it: %v %v", act.Kind, done, err)
		}
	}

	res, err := a.Do(ctx, msg, mark)
	if err != nil || !strings.HasPrefix(res.Sid, "IM") {
		t.Fatalf("message: %+v %v", res, err)
	}
	if done, found, err := a.Done(ctx, msg, mark); err != nil || !done || found.Sid != res.Sid {
		t.Fatalf("message mark: %v %+v %v", done, found, err)
	}
	if done, _, _ := a.Done(ctx, msg, Mark{Reaction: "reaction-WT1", Action: 1}); done {
		t.Fatal("another action's mark must not match")
	}
	m := stub.Messages(fx.ChatServiceSid, fx.ConversationSid)
	if len(m) != 1 || !m[0].WebhookEnabled || m[0].Body != msg.Body {
		t.Fatalf("messages: %+v", m)
	}

	res, err = a.Do(ctx, inv, mark)
	if err != nil || !strings.HasPrefix(res.TaskSid, "WT") {
		t.Fatalf("invite: %+v %v", res, err)
	}
	if done, found, err := a.Done(ctx, inv, mark); err != nil || !done || found.TaskSid != res.TaskSid {
		t.Fatalf("invite mark: %v %+v %v", done, found, err)
	}
	invites := stub.Invites(fx.InteractionSid, fx.ChannelSid)
	props := invites[0].Routing["properties"].(map[string]any)
	attrs := taskAttrs(t, props["attributes"])
	if props["workflow_sid"] != other || props["worker_sid"] != worker || props["workspace_sid"] != space || attrs["from"] != "whatsapp:+15550001111" {
		t.Fatalf("invite routing: %v", props)
	}
	if fm, _ := attrs[MarkKey].(map[string]any); fm == nil || fm["attempt"] != 2.0 || fm["worker_sid"] != worker {
		t.Fatalf("invite mark in the attributes: %v", attrs)
	}

	if _, err := a.Do(ctx, cls, mark); err != nil {
		t.Fatal(err)
	}
	if done, _, err := a.Done(ctx, cls, mark); err != nil || !done {
		t.Fatalf("close: %v %v", done, err)
	}
	for _, act := range []decide.Action{msg, inv, cls} {
		needed, why, err := a.Precheck(ctx, act)
		if err != nil || needed || why == "" {
			t.Fatalf("%s after the close: needed %v (%q) %v", act.Kind, needed, why, err)
		}
	}
}

func taskAttrs(t *testing.T, v any) map[string]any {
	t.Helper()
	switch x := v.(type) {
	case map[string]any:
		return x
	case string:
		m := map[string]any{}
		if err := jsonUnmarshal(x, &m); err != nil {
			t.Fatal(err)
		}
		return m
	}
	t.Fatalf("attributes: %T", v)
	return nil
}

// A refusal carries its status and whether it may be retried; an
// interaction whose routing names no workspace cannot be re-invited.
func TestErrors(t *testing.T) {
	ctx := context.Background()
	a, stub, fx := setup(t, map[string]any{"properties": map[string]any{"workflow_sid": flow}})
	cls := decide.Action{Kind: decide.ActClose, InteractionSid: fx.InteractionSid, ChannelSid: fx.ChannelSid}
	stub.FailNext("UpdateInteractionChannel", 1, 429, "2")
	_, err := a.Do(ctx, cls, Mark{})
	var ae *Error
	if !errors.As(err, &ae) || ae.Status() != 429 || !ae.Retryable() || ae.Ambiguous() || ae.Resp.RetryAfter.Seconds() != 2 {
		t.Fatalf("429: %#v", err)
	}
	stub.FailNext("UpdateInteractionChannel", 1, 500, "")
	if _, err := a.Do(ctx, cls, Mark{}); !errors.As(err, &ae) || ae.Retryable() || !ae.Ambiguous() {
		t.Fatalf("500: %v", err)
	}
	inv := decide.Action{Kind: decide.ActReinvite, InteractionSid: fx.InteractionSid, ChannelSid: fx.ChannelSid}
	if _, err := a.Do(ctx, inv, Mark{}); err == nil || !strings.Contains(err.Error(), "workspace_sid") {
		t.Fatalf("re-invite without a workspace: %v", err)
	}
	if _, err := a.Do(ctx, decide.Action{Kind: "fax"}, Mark{}); err == nil {
		t.Fatal("an unknown action must fail")
	}
	missing := decide.Action{Kind: decide.ActClose, InteractionSid: "KD" + strings.Repeat("0", 32), ChannelSid: "UO" + strings.Repeat("0", 32)}
	if _, _, err := a.Precheck(ctx, missing); !errors.As(err, &ae) || ae.Status() != 404 || ae.Retryable() {
		t.Fatalf("unknown channel: %v", err)
	}
}

func jsonUnmarshal(s string, v any) error { return json.Unmarshal([]byte(s), v) }
