package twiliostub

import (
	"testing"
	"time"

	conversations "github.com/twilio/twilio-go/rest/conversations/v1"
)

func TestCreateServiceConversationMessage(t *testing.T) {
	e := newEnv(t)
	fx := e.fixture()
	got, err := e.tw.ConversationsV1.CreateServiceConversationMessage(fx.ChatServiceSid, fx.ConversationSid,
		(&conversations.CreateServiceConversationMessageParams{}).
			SetXTwilioWebhookEnabled("true").
			SetAuthor("flexstream").
			SetBody("Still looking for an agent…").
			SetAttributes(`{"flexstream":{"reaction":"RX1"}}`))
	if err != nil {
		t.Fatal(err)
	}
	if deref(got.Body) != "Still looking for an agent…" || deref(got.ConversationSid) != fx.ConversationSid {
		t.Errorf("message = %+v", got)
	}
	msgs := e.stub.Messages(fx.ChatServiceSid, fx.ConversationSid)
	if len(msgs) != 1 {
		t.Fatalf("Messages() = %d, want 1", len(msgs))
	}
	m := msgs[0]
	if !m.WebhookEnabled || m.Author != "flexstream" || m.Attributes != `{"flexstream":{"reaction":"RX1"}}` ||
		m.Sid != deref(got.Sid) || m.ConversationState != "active" {
		t.Errorf("recorded message = %+v", m)
	}
	e.stub.RequireNoViolations(t)
}

// Outside WhatsApp's 24-hour window the product sends a content template.
func TestCreateServiceConversationMessageTemplate(t *testing.T) {
	e := newEnv(t)
	fx := e.fixture()
	_, err := e.tw.ConversationsV1.CreateServiceConversationMessage(fx.ChatServiceSid, fx.ConversationSid,
		(&conversations.CreateServiceConversationMessageParams{}).
			SetContentSid("HX"+"0123456789abcdef0123456789abcdef").
			SetContentVariables(`{"1":"Ada"}`))
	if err != nil {
		t.Fatal(err)
	}
	m := e.stub.Messages(fx.ChatServiceSid, fx.ConversationSid)[0]
	if m.ContentSid != "HX0123456789abcdef0123456789abcdef" || m.ContentVariables != `{"1":"Ada"}` || m.Body != "" || m.WebhookEnabled {
		t.Errorf("recorded message = %+v", m)
	}
	e.stub.RequireNoViolations(t)
}

func TestListServiceConversationMessage(t *testing.T) {
	e := newEnv(t)
	fx := e.fixture()
	base := time.Date(2025, 6, 2, 9, 30, 0, 0, time.UTC)
	for i, body := range []string{"hi", "anyone?", "hello??"} {
		e.stub.AddMessage(fx.ChatServiceSid, fx.ConversationSid, Message{
			Author: "whatsapp:+15550001111", Body: body, DateCreated: base.Add(time.Duration(i) * time.Minute),
		})
	}
	desc, err := e.tw.ConversationsV1.ListServiceConversationMessage(fx.ChatServiceSid, fx.ConversationSid,
		(&conversations.ListServiceConversationMessageParams{}).SetOrder("desc").SetPageSize(2))
	if err != nil {
		t.Fatal(err)
	}
	if len(desc) != 3 || deref(desc[0].Body) != "hello??" || deref(desc[2].Body) != "hi" || desc[0].Index != 2 {
		t.Errorf("desc = %v", bodies(desc))
	}
	if !deref(desc[0].DateCreated).Equal(base.Add(2 * time.Minute)) {
		t.Errorf("newest date_created = %v", deref(desc[0].DateCreated))
	}
	// One newest message is how a reactor asks "who spoke last?".
	last, err := e.tw.ConversationsV1.ListServiceConversationMessage(fx.ChatServiceSid, fx.ConversationSid,
		(&conversations.ListServiceConversationMessageParams{}).SetOrder("desc").SetLimit(1))
	if err != nil {
		t.Fatal(err)
	}
	if len(last) != 1 || deref(last[0].Body) != "hello??" {
		t.Errorf("last = %v", bodies(last))
	}
	asc, err := e.tw.ConversationsV1.ListServiceConversationMessage(fx.ChatServiceSid, fx.ConversationSid, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(asc) != 3 || deref(asc[0].Body) != "hi" {
		t.Errorf("asc = %v", bodies(asc))
	}
	e.stub.RequireNoViolations(t)
}

func bodies(ms []conversations.ConversationsV1ServiceConversationMessage) []string {
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = deref(m.Body)
	}
	return out
}

func TestFetchServiceConversation(t *testing.T) {
	e := newEnv(t)
	fx := e.stub.AddInteraction(InteractionFixture{ConversationState: "inactive"})
	got, err := e.tw.ConversationsV1.FetchServiceConversation(fx.ChatServiceSid, fx.ConversationSid)
	if err != nil {
		t.Fatal(err)
	}
	if deref(got.State) != "inactive" || deref(got.Sid) != fx.ConversationSid || deref(got.AccountSid) != testAccount {
		t.Errorf("conversation = %+v", got)
	}
	e.stub.RequireNoViolations(t)
}

func TestUpdateServiceConversation(t *testing.T) {
	e := newEnv(t)
	fx := e.fixture()
	got, err := e.tw.ConversationsV1.UpdateServiceConversation(fx.ChatServiceSid, fx.ConversationSid,
		(&conversations.UpdateServiceConversationParams{}).SetState("closed").SetTimersInactive("PT5M").SetTimersClosed("PT10M"))
	if err != nil {
		t.Fatal(err)
	}
	if deref(got.State) != "closed" {
		t.Errorf("state = %q", deref(got.State))
	}
	if timers := asMap(t, deref(got.Timers)); timers["date_inactive"] == nil || timers["date_closed"] == nil {
		t.Errorf("timers = %v", timers)
	}
	if st, _ := e.stub.Conversation(fx.ChatServiceSid, fx.ConversationSid); st != "closed" {
		t.Errorf("state = %q, want closed", st)
	}
	e.stub.RequireNoViolations(t)
}
