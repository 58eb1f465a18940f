package twiliostub

import (
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	conversations "github.com/twilio/twilio-go/rest/conversations/v1"
	flex "github.com/twilio/twilio-go/rest/flex/v1"
)

func closeParams() *flex.UpdateInteractionChannelParams {
	return (&flex.UpdateInteractionChannelParams{}).SetStatus("closed").SetRouting(map[string]any{"status": "closed"})
}

func TestFailNextAnswersWithoutEffect(t *testing.T) {
	e := newEnv(t)
	fx := e.fixture()
	e.stub.FailNext("UpdateInteractionChannel", 1, http.StatusTooManyRequests, "3")
	e.stub.FailNext("UpdateInteractionChannel", 1, http.StatusServiceUnavailable, "")

	_, err := e.tw.FlexV1.UpdateInteractionChannel(fx.InteractionSid, fx.ChannelSid, closeParams())
	te := requireStatus(t, err, http.StatusTooManyRequests)
	if te.Code != 20429 {
		t.Errorf("code = %d, want 20429", te.Code)
	}
	if got := e.last().RetryAfter; got != 3*time.Second {
		t.Errorf("Retry-After = %s, want 3s", got)
	}
	if st, _ := e.stub.Channel(fx.InteractionSid, fx.ChannelSid); st != "active" {
		t.Fatalf("channel status = %q after a failed call, want active", st)
	}

	_, err = e.tw.FlexV1.UpdateInteractionChannel(fx.InteractionSid, fx.ChannelSid, closeParams())
	requireStatus(t, err, http.StatusServiceUnavailable)
	if got := e.last().RetryAfter; got != 0 {
		t.Errorf("Retry-After = %s, want none", got)
	}

	if _, err := e.tw.FlexV1.UpdateInteractionChannel(fx.InteractionSid, fx.ChannelSid, closeParams()); err != nil {
		t.Fatalf("third call: %v", err)
	}
	if st, _ := e.stub.Channel(fx.InteractionSid, fx.ChannelSid); st != "closed" {
		t.Errorf("channel status = %q, want closed", st)
	}
	var statuses []int
	for _, c := range e.stub.Calls() {
		statuses = append(statuses, c.Status)
	}
	if len(statuses) != 3 || statuses[0] != 429 || statuses[1] != 503 || statuses[2] != 200 {
		t.Errorf("answered %v, want [429 503 200]", statuses)
	}
	e.stub.RequireNoViolations(t)
}

// A fault never hides a violation: the spec check comes first.
func TestFailNextAfterSpecCheck(t *testing.T) {
	e := newEnv(t)
	fx := e.fixture()
	e.stub.FailNext("UpdateInteractionChannel", 1, http.StatusTooManyRequests, "1")
	_, err := e.tw.FlexV1.UpdateInteractionChannel(fx.InteractionSid, fx.ChannelSid,
		(&flex.UpdateInteractionChannelParams{}).SetStatus("bogus"))
	requireStatus(t, err, http.StatusBadRequest)
	if len(e.stub.Violations()) != 1 {
		t.Errorf("violations = %v", e.stub.Violations())
	}
	// The fault is still pending for the next valid call.
	_, err = e.tw.FlexV1.UpdateInteractionChannel(fx.InteractionSid, fx.ChannelSid, closeParams())
	requireStatus(t, err, http.StatusTooManyRequests)
}

// Twilio acted, the answer was lost: the crash/reconcile case.
func TestFailAfterEffectApplies(t *testing.T) {
	e := newEnv(t)
	fx := e.fixture()
	e.stub.FailAfterEffect("CreateInteractionChannelInvite", 1, http.StatusInternalServerError)
	routing := map[string]any{"properties": map[string]any{
		"workspace_sid": "WS11111111111111111111111111111111",
		"workflow_sid":  "WW22222222222222222222222222222222",
	}}
	_, err := e.tw.FlexV1.CreateInteractionChannelInvite(fx.InteractionSid, fx.ChannelSid,
		(&flex.CreateInteractionChannelInviteParams{}).SetRouting(routing))
	requireStatus(t, err, http.StatusInternalServerError)
	invites := e.stub.Invites(fx.InteractionSid, fx.ChannelSid)
	if len(invites) != 1 {
		t.Fatalf("invites = %d, want the one created before the lost answer", len(invites))
	}
	// Reconciling by listing finds it.
	list, err := e.tw.FlexV1.ListInteractionChannelInvite(fx.InteractionSid, fx.ChannelSid, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 1 || deref(list[0].Sid) != invites[0].Sid {
		t.Errorf("listed %v, want %s", list, invites[0].Sid)
	}
	e.stub.RequireNoViolations(t)
}

func TestFailAfterEffectOnClose(t *testing.T) {
	e := newEnv(t)
	fx := e.fixture()
	e.stub.FailAfterEffect("UpdateInteractionChannel", 1, http.StatusBadGateway)
	_, err := e.tw.FlexV1.UpdateInteractionChannel(fx.InteractionSid, fx.ChannelSid, closeParams())
	requireStatus(t, err, http.StatusBadGateway)
	if st, _ := e.stub.Channel(fx.InteractionSid, fx.ChannelSid); st != "closed" {
		t.Errorf("channel status = %q, want closed", st)
	}
}

// A caller that gives up during a delay gets nothing and changes nothing.
func TestDelayOutlastsClientTimeout(t *testing.T) {
	e := newEnvTimeout(t, 100*time.Millisecond)
	fx := e.fixture()
	e.stub.Delay("CreateServiceConversationMessage", 5*time.Second)
	params := (&conversations.CreateServiceConversationMessageParams{}).SetBody("hello")
	start := time.Now()
	if _, err := e.tw.ConversationsV1.CreateServiceConversationMessage(fx.ChatServiceSid, fx.ConversationSid, params); err == nil {
		t.Fatal("want a timeout")
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("took %v", d)
	}
	waitFor(t, func() bool { return len(e.stub.Calls()) == 1 })
	if c := e.stub.Calls()[0]; c.Status != 0 || c.Operation != "CreateServiceConversationMessage" {
		t.Errorf("call = %+v, want status 0", c)
	}
	if n := len(e.stub.Messages(fx.ChatServiceSid, fx.ConversationSid)); n != 0 {
		t.Errorf("messages = %d, want 0", n)
	}

	e.stub.Delay("CreateServiceConversationMessage", 20*time.Millisecond)
	if _, err := e.tw.ConversationsV1.CreateServiceConversationMessage(fx.ChatServiceSid, fx.ConversationSid, params); err != nil {
		t.Fatalf("short delay: %v", err)
	}
	e.stub.Delay("CreateServiceConversationMessage", 0)
	if n := len(e.stub.Messages(fx.ChatServiceSid, fx.ConversationSid)); n != 1 {
		t.Errorf("messages = %d, want 1", n)
	}
	e.stub.RequireNoViolations(t)
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met in 5s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// WithEffects reports what each successful call changed, before its
// answer, and nothing for a failed one.
func TestEffectsAreReported(t *testing.T) {
	var mu sync.Mutex
	var got []Effect
	e := newEnv(t, WithEffects(func(ef Effect) {
		mu.Lock()
		got = append(got, ef)
		mu.Unlock()
	}))
	fx := e.fixture()
	e.stub.FailNext("UpdateInteractionChannel", 1, http.StatusServiceUnavailable, "")
	if _, err := e.tw.FlexV1.UpdateInteractionChannel(fx.InteractionSid, fx.ChannelSid, closeParams()); err == nil {
		t.Fatal("want the injected 503")
	}
	routing := map[string]any{"properties": map[string]any{"workspace_sid": "WS" + strings.Repeat("1", 32), "workflow_sid": "WW" + strings.Repeat("3", 32)}}
	inv, err := e.tw.FlexV1.CreateInteractionChannelInvite(fx.InteractionSid, fx.ChannelSid, (&flex.CreateInteractionChannelInviteParams{}).SetRouting(routing))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.tw.FlexV1.UpdateInteractionChannel(fx.InteractionSid, fx.ChannelSid, closeParams()); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 2 {
		t.Fatalf("effects: %+v, want the invite and the close", got)
	}
	task, _ := asMap(t, deref(inv.Routing), "properties")["sid"].(string)
	if got[0].Operation != "CreateInteractionChannelInvite" || got[0].TaskSid != task || got[0].ConversationSid != fx.ConversationSid || got[0].Routing["properties"] == nil {
		t.Errorf("invite effect: %+v", got[0])
	}
	if got[1].Operation != "UpdateInteractionChannel" || got[1].Status != "closed" || got[1].ChannelSid != fx.ChannelSid {
		t.Errorf("close effect: %+v", got[1])
	}
}
