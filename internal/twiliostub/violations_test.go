package twiliostub

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	flex "github.com/twilio/twilio-go/rest/flex/v1"
)

// The check must be able to fail: each request here is one real Twilio
// would reject (or silently mishandle), and each must be answered with a
// Twilio error, recorded as exactly one violation, and have no effect.
func TestMismatchesAreCaught(t *testing.T) {
	const flexHost = "flex-api.twilio.com"
	e := newEnv(t)
	fx := e.fixture()
	channelPath := "/v1/Interactions/" + fx.InteractionSid + "/Channels/" + fx.ChannelSid
	messagesPath := "/v1/Services/" + fx.ChatServiceSid + "/Conversations/" + fx.ConversationSid + "/Messages"
	inviteRouting := `{"properties":{"workspace_sid":"WS11111111111111111111111111111111","workflow_sid":"WW22222222222222222222222222222222"}}`

	for _, tc := range []struct {
		name   string
		req    raw
		status int
		op     string // operation the violation names
		want   string // in the violation's Err
	}{
		{"invite without Routing (empty body)", raw{method: "POST", host: flexHost, path: channelPath + "/Invites", form: url.Values{}},
			400, "CreateInteractionChannelInvite", "value is required but missing"},
		{"invite without Routing (other field)", raw{method: "POST", host: flexHost, path: channelPath + "/Invites", form: url.Values{"Status": {"closed"}}},
			400, "CreateInteractionChannelInvite", `property "Routing" is missing`},
		{"invite Routing not JSON", raw{method: "POST", host: flexHost, path: channelPath + "/Invites", form: url.Values{"Routing": {"workflow=WW1"}}},
			400, "CreateInteractionChannelInvite", `"Routing" is not a JSON object`},
		{"invite Routing without properties", raw{method: "POST", host: flexHost, path: channelPath + "/Invites", form: url.Values{"Routing": {`{"workspace_sid":"WS1"}`}}},
			400, "CreateInteractionChannelInvite", `"properties"`},
		{"invite with a dotted field twilio-go never sends", raw{method: "POST", host: flexHost, path: channelPath + "/Invites", form: url.Values{"Routing": {inviteRouting}, "Routing.properties.queue_sid": {"WQ1"}}},
			400, "CreateInteractionChannelInvite", `unknown form field "Routing.properties.queue_sid"`},
		{"close with Status=bogus", raw{method: "POST", host: flexHost, path: channelPath, form: url.Values{"Status": {"bogus"}}},
			400, "UpdateInteractionChannel", "not one of the allowed values"},
		{"close with misspelt field", raw{method: "POST", host: flexHost, path: channelPath, form: url.Values{"Status": {"closed"}, "status": {"closed"}}},
			400, "UpdateInteractionChannel", `unknown form field "status"`},
		{"close with Routing status other than closed", raw{method: "POST", host: flexHost, path: channelPath, form: url.Values{"Status": {"closed"}, "Routing": {`{"status":"wrapping"}`}}},
			400, "UpdateInteractionChannel", `"closed" is the only routing status`},
		{"inactive without Routing", raw{method: "POST", host: flexHost, path: channelPath, form: url.Values{"Status": {"inactive"}}},
			400, "UpdateInteractionChannel", "required when Status is inactive"},
		{"JSON body to a form operation", raw{method: "POST", host: flexHost, path: channelPath, form: url.Values{"Status": {"closed"}}, ctype: "application/json"},
			400, "UpdateInteractionChannel", "Content-Type"},
		{"malformed channel SID", raw{method: "GET", host: flexHost, path: "/v1/Interactions/" + fx.InteractionSid + "/Channels/UO123"},
			400, "FetchInteractionChannel", `parameter "Sid" in path`},
		{"unknown query parameter", raw{method: "GET", host: flexHost, path: channelPath + "/Invites?Pagesize=5"},
			400, "ListInteractionChannelInvite", `unknown query parameter "Pagesize"`},
		{"unknown path", raw{method: "GET", host: flexHost, path: "/v1/Interactions/" + fx.InteractionSid + "/Tasks"},
			404, "", "no matching operation"},
		{"wrong method", raw{method: "DELETE", host: flexHost, path: channelPath},
			405, "", "method not allowed"},
		{"unknown host", raw{method: "GET", host: "api.twilio.com", path: "/2010-04-01/Accounts.json"},
			404, "", `no Twilio spec for host "api.twilio.com"`},
		{"message with no content", raw{method: "POST", host: "conversations.twilio.com", path: messagesPath, form: url.Values{"Author": {"system"}}},
			400, "CreateServiceConversationMessage", "Body, MediaSid or ContentSid"},
		{"message Attributes not JSON", raw{method: "POST", host: "conversations.twilio.com", path: messagesPath, form: url.Values{"Body": {"hi"}, "Attributes": {"{oops"}}},
			400, "CreateServiceConversationMessage", "Attributes must be valid JSON"},
		{"list messages Order=newest", raw{method: "GET", host: "conversations.twilio.com", path: messagesPath + "?Order=newest"},
			400, "ListServiceConversationMessage", `parameter "Order" in query`},
		{"no credentials", raw{method: "GET", host: flexHost, path: channelPath, noAuth: true},
			401, "FetchInteractionChannel", "no HTTP basic credentials"},
		{"wrong credentials", raw{method: "GET", host: flexHost, path: channelPath, user: testAccount, pass: "wrong"},
			401, "FetchInteractionChannel", "not the configured"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := len(e.stub.Violations())
			status, te, _ := e.do(t, tc.req)
			if status != tc.status || te.Status != tc.status || te.Code == 0 || te.MoreInfo == "" || te.Message == "" {
				t.Errorf("answer = %d %+v, want %d with a Twilio error body", status, te, tc.status)
			}
			vs := e.stub.Violations()[before:]
			if len(vs) != 1 {
				t.Fatalf("violations = %v, want exactly one", vs)
			}
			if vs[0].Operation != tc.op || !strings.Contains(vs[0].Err, tc.want) {
				t.Errorf("violation = %+v, want operation %q and %q in Err", vs[0], tc.op, tc.want)
			}
		})
	}

	// None of them had an effect.
	if st, _ := e.stub.Channel(fx.InteractionSid, fx.ChannelSid); st != "active" {
		t.Errorf("channel status = %q, want active", st)
	}
	if inv := e.stub.Invites(fx.InteractionSid, fx.ChannelSid); len(inv) != 0 {
		t.Errorf("invites = %v, want none", inv)
	}
	if ms := e.stub.Messages(fx.ChatServiceSid, fx.ConversationSid); len(ms) != 0 {
		t.Errorf("messages = %v, want none", ms)
	}
}

// twilio-go passes an enum value through unchecked; the stub catches it.
func TestMismatchThroughTwilioGo(t *testing.T) {
	e := newEnv(t)
	fx := e.fixture()
	_, err := e.tw.FlexV1.UpdateInteractionChannel(fx.InteractionSid, fx.ChannelSid,
		(&flex.UpdateInteractionChannelParams{}).SetStatus("wrapup"))
	te := requireStatus(t, err, http.StatusBadRequest)
	if te.Code != 20001 || !strings.Contains(te.Message, "Status") {
		t.Errorf("error = %+v", te)
	}
	vs := e.stub.Violations()
	if len(vs) != 1 || vs[0].Operation != "UpdateInteractionChannel" {
		t.Fatalf("violations = %v", vs)
	}
	// Values stay out of the message: they may be customers' words.
	if strings.Contains(vs[0].Err, "wrapup") {
		t.Errorf("violation quotes the value: %s", vs[0].Err)
	}
	tb := &fakeTB{}
	e.stub.RequireNoViolations(tb)
	if len(tb.errs) != 1 || !strings.Contains(tb.errs[0], "UpdateInteractionChannel") {
		t.Errorf("RequireNoViolations reported %q", tb.errs)
	}
}

func TestRequireNoViolationsQuietWhenClean(t *testing.T) {
	e := newEnv(t)
	tb := &fakeTB{}
	e.stub.RequireNoViolations(tb)
	if len(tb.errs) != 0 {
		t.Errorf("reported %q with no violations", tb.errs)
	}
}

func TestWebhookHeaderMustBeTrueOrFalse(t *testing.T) {
	e := newEnv(t)
	fx := e.fixture()
	req, err := http.NewRequest("POST", e.stub.URL()+"/v1/Services/"+fx.ChatServiceSid+"/Conversations/"+fx.ConversationSid+"/Messages",
		strings.NewReader(url.Values{"Body": {"hi"}}.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("X-Forwarded-Host", "conversations.twilio.com")
	req.Header.Set("X-Twilio-Webhook-Enabled", "yes")
	req.SetBasicAuth(testAccount, testToken)
	resp, err := e.http.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 400 {
		t.Errorf("status = %d, want 400", resp.StatusCode)
	}
	if vs := e.stub.Violations(); len(vs) != 1 || !strings.Contains(vs[0].Err, "X-Twilio-Webhook-Enabled") {
		t.Errorf("violations = %v", vs)
	}
}
