package twiliostub

import (
	"regexp"
	"testing"

	flex "github.com/twilio/twilio-go/rest/flex/v1"
)

var (
	taskSidRE   = regexp.MustCompile(`^WT[0-9a-f]{32}$`)
	inviteSidRE = regexp.MustCompile(`^KG[0-9a-f]{32}$`)
)

func TestFetchInteraction(t *testing.T) {
	e := newEnv(t)
	fx := e.fixture()

	got, err := e.tw.FlexV1.FetchInteraction(fx.InteractionSid)
	if err != nil {
		t.Fatal(err)
	}
	if deref(got.Sid) != fx.InteractionSid {
		t.Errorf("sid = %q, want %q", deref(got.Sid), fx.InteractionSid)
	}
	if ch := asMap(t, deref(got.Channel)); ch["sid"] != fx.ChannelSid || ch["type"] != "whatsapp" {
		t.Errorf("channel = %v", ch)
	}
	props := asMap(t, deref(got.Routing), "properties")
	want := fx.Routing["properties"].(map[string]any)
	for _, k := range []string{"workspace_sid", "workflow_sid", "task_channel_unique_name"} {
		if props[k] != want[k] {
			t.Errorf("routing.properties.%s = %v, want %v", k, props[k], want[k])
		}
	}
	if a := asMap(t, props, "attributes"); a["from"] != "whatsapp:+15550001111" {
		t.Errorf("routing.properties.attributes = %v", a)
	}
	e.stub.RequireNoViolations(t)
}

func TestFetchInteractionDefaultRouting(t *testing.T) {
	e := newEnv(t)
	fx := e.stub.AddInteraction(InteractionFixture{})
	got, err := e.tw.FlexV1.FetchInteraction(fx.InteractionSid)
	if err != nil {
		t.Fatal(err)
	}
	props := asMap(t, deref(got.Routing), "properties")
	if a := asMap(t, props, "attributes"); a["conversationSid"] != fx.ConversationSid {
		t.Errorf("default attributes = %v, want conversationSid %s", a, fx.ConversationSid)
	}
	e.stub.RequireNoViolations(t)
}

func TestFetchInteractionChannel(t *testing.T) {
	e := newEnv(t)
	fx := e.fixture()
	got, err := e.tw.FlexV1.FetchInteractionChannel(fx.InteractionSid, fx.ChannelSid)
	if err != nil {
		t.Fatal(err)
	}
	if deref(got.Status) != "active" || deref(got.Sid) != fx.ChannelSid || deref(got.InteractionSid) != fx.InteractionSid {
		t.Errorf("channel = %+v", got)
	}
	e.stub.RequireNoViolations(t)
}

func TestFetchUnknownInteractionIs404NotViolation(t *testing.T) {
	e := newEnv(t)
	_, err := e.tw.FlexV1.FetchInteraction("KD" + "00000000000000000000000000000000")
	requireStatus(t, err, 404)
	e.stub.RequireNoViolations(t)
}

// Closing is Status=closed with Routing {"status":"closed"} (DESIGN §7).
func TestUpdateInteractionChannelCloses(t *testing.T) {
	e := newEnv(t)
	fx := e.fixture()
	got, err := e.tw.FlexV1.UpdateInteractionChannel(fx.InteractionSid, fx.ChannelSid,
		(&flex.UpdateInteractionChannelParams{}).SetStatus("closed").SetRouting(map[string]any{"status": "closed"}))
	if err != nil {
		t.Fatal(err)
	}
	if deref(got.Status) != "closed" {
		t.Errorf("response status = %q", deref(got.Status))
	}
	if st, _ := e.stub.Channel(fx.InteractionSid, fx.ChannelSid); st != "closed" {
		t.Errorf("channel status = %q, want closed", st)
	}
	if st, _ := e.stub.Conversation(fx.ChatServiceSid, fx.ConversationSid); st != "closed" {
		t.Errorf("conversation state = %q, want closed", st)
	}
	calls := e.stub.Calls()
	if len(calls) != 1 || calls[0].Form.Get("Routing") != `{"status":"closed"}` || calls[0].Form.Get("Status") != "closed" {
		t.Errorf("calls = %+v", calls)
	}
	e.stub.RequireNoViolations(t)
}

func TestUpdateInteractionChannelInactive(t *testing.T) {
	e := newEnv(t)
	fx := e.fixture()
	_, err := e.tw.FlexV1.UpdateInteractionChannel(fx.InteractionSid, fx.ChannelSid,
		(&flex.UpdateInteractionChannelParams{}).SetStatus("inactive").SetRouting(map[string]any{"status": "closed"}))
	if err != nil {
		t.Fatal(err)
	}
	if st, _ := e.stub.Channel(fx.InteractionSid, fx.ChannelSid); st != "inactive" {
		t.Errorf("channel status = %q, want inactive", st)
	}
	if st, _ := e.stub.Conversation(fx.ChatServiceSid, fx.ConversationSid); st != "active" {
		t.Errorf("conversation state = %q, want it left active", st)
	}
	e.stub.RequireNoViolations(t)
}

// An invite creates a task; its SID is routing.properties.sid (DESIGN §7).
func TestCreateAndListInteractionChannelInvites(t *testing.T) {
	e := newEnv(t)
	fx := e.fixture()
	routing := map[string]any{"properties": map[string]any{
		"workspace_sid":            "WS" + "11111111111111111111111111111111",
		"workflow_sid":             "WW" + "33333333333333333333333333333333",
		"task_channel_unique_name": "chat",
		"attributes":               map[string]any{"from": "whatsapp:+15550001111", "reinvite": 1},
	}}
	var taskSids []string
	for range 3 {
		inv, err := e.tw.FlexV1.CreateInteractionChannelInvite(fx.InteractionSid, fx.ChannelSid,
			(&flex.CreateInteractionChannelInviteParams{}).SetRouting(routing))
		if err != nil {
			t.Fatal(err)
		}
		if !inviteSidRE.MatchString(deref(inv.Sid)) {
			t.Errorf("invite sid = %q", deref(inv.Sid))
		}
		props := asMap(t, deref(inv.Routing), "properties")
		sid, _ := props["sid"].(string)
		if !taskSidRE.MatchString(sid) {
			t.Fatalf("routing.properties.sid = %v, want a task SID", props["sid"])
		}
		if props["workflow_sid"] != "WW33333333333333333333333333333333" {
			t.Errorf("routing.properties.workflow_sid = %v", props["workflow_sid"])
		}
		taskSids = append(taskSids, sid)
	}

	recorded := e.stub.Invites(fx.InteractionSid, fx.ChannelSid)
	if len(recorded) != 3 {
		t.Fatalf("Invites() = %d, want 3", len(recorded))
	}
	for i, inv := range recorded {
		if inv.TaskSid != taskSids[i] {
			t.Errorf("invite %d task = %s, want %s", i, inv.TaskSid, taskSids[i])
		}
		if a := asMap(t, inv.Routing, "properties", "attributes"); a["from"] != "whatsapp:+15550001111" {
			t.Errorf("invite %d routing attributes = %v", i, a)
		}
	}

	// PageSize 2 makes twilio-go follow meta.next_page_url, which names the
	// real host and so goes through the rewriting transport again.
	list, err := e.tw.FlexV1.ListInteractionChannelInvite(fx.InteractionSid, fx.ChannelSid,
		(&flex.ListInteractionChannelInviteParams{}).SetPageSize(2))
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 3 {
		t.Fatalf("listed %d invites, want 3", len(list))
	}
	for i, inv := range list {
		if got := asMap(t, deref(inv.Routing), "properties")["sid"]; got != taskSids[i] {
			t.Errorf("listed invite %d task = %v, want %s", i, got, taskSids[i])
		}
	}
	if n := e.stub.CallsTo("ListInteractionChannelInvite"); n != 2 {
		t.Errorf("list took %d requests, want 2 pages", n)
	}
	e.stub.RequireNoViolations(t)
}
