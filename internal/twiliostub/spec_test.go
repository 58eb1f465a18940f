package twiliostub

import (
	"net/http"
	"strings"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
)

// Every fake is for an operation its API's spec has, under that ID: a typo
// would otherwise silently turn the fake into a 501.
func TestHandlersNameSpecOperations(t *testing.T) {
	set, err := loadSpecs()
	if err != nil {
		t.Fatal(err)
	}
	for id, h := range handlers {
		a := set.byHost(h.api + ".twilio.com")
		if a == nil {
			t.Errorf("%s: no API %q", id, h.api)
			continue
		}
		n := 0
		for op := range a.ops {
			if op.OperationID == id {
				n++
			}
		}
		if n != 1 {
			t.Errorf("%s: %d operations with that ID in %s", id, n, a.host)
		}
	}
}

func TestByHost(t *testing.T) {
	set, err := loadSpecs()
	if err != nil {
		t.Fatal(err)
	}
	for host, want := range map[string]string{
		"flex-api.twilio.com":              "flex-api.twilio.com",
		"conversations.twilio.com:443":     "conversations.twilio.com",
		"taskrouter.dublin.ie1.twilio.com": "taskrouter.twilio.com",
		"FLEX-API.twilio.com":              "flex-api.twilio.com",
	} {
		if a := set.byHost(host); a == nil || a.host != want {
			t.Errorf("byHost(%q) = %v, want %s", host, a, want)
		}
	}
	if h := firstForwarded("conversations.twilio.com, proxy.internal"); h != "conversations.twilio.com" {
		t.Errorf("firstForwarded = %q", h)
	}
	if a := set.byHost("api.twilio.com"); a != nil {
		t.Errorf("byHost(api.twilio.com) = %s, want none", a.host)
	}
}

// The untyped Routing is typed string after loading, and the invite body
// is required because its schema requires Routing.
func TestSpecAdaptations(t *testing.T) {
	set, err := loadSpecs()
	if err != nil {
		t.Fatal(err)
	}
	flexAPI := set.byHost("flex-api.twilio.com")
	for op, info := range flexAPI.ops {
		switch op.OperationID {
		case "CreateInteractionChannelInvite", "UpdateInteractionChannel":
			if len(info.jsonFields) != 1 || info.jsonFields[0] != "Routing" {
				t.Errorf("%s: jsonFields = %v", op.OperationID, info.jsonFields)
			}
			if !op.RequestBody.Value.Required {
				t.Errorf("%s: body not required", op.OperationID)
			}
		case "CreateInteraction":
			if strings.Join(info.jsonFields, ",") != "Channel,Routing" {
				t.Errorf("CreateInteraction: jsonFields = %v", info.jsonFields)
			}
		}
	}
}

// The check of the fakes' replies is live: a reply off the schema fails.
func TestResponseCheckCatchesOffSchemaReply(t *testing.T) {
	s := New()
	fx := s.AddInteraction(InteractionFixture{})
	req, _ := http.NewRequest("GET", "http://stub/v1/Interactions/"+fx.InteractionSid+"/Channels/"+fx.ChannelSid, nil)
	req.Header.Set("X-Forwarded-Host", "flex-api.twilio.com")
	req.SetBasicAuth("AC1", "t")
	q := &request{r: req}
	if q.api, q.route, q.params, _ = s.specs.pick(req); q.route == nil {
		t.Fatal("no route")
	}
	q.info = q.api.ops[q.route.Operation]
	in, problems, _ := s.check(q, nil)
	if len(problems) != 0 {
		t.Fatal(problems)
	}
	good := s.fetchInteractionChannel(q)
	if err := validateResponse(in, good); err != nil {
		t.Fatalf("good reply: %v", err)
	}
	bad := good
	body := good.body.(map[string]any)
	body["status"] = "open" // not in interaction_channel_enum_channel_status
	if err := validateResponse(in, bad); err == nil {
		t.Error("a reply with status \"open\" passed")
	}
	bad.status = http.StatusCreated // the spec documents 200
	body["status"] = "active"
	if err := validateResponse(in, bad); err == nil {
		t.Error("a 201 reply passed")
	}
}

// Violations are logged without form values (they may be customers' words).
func TestLogsViolationsWithoutValues(t *testing.T) {
	core, logs := observer.New(zap.DebugLevel)
	e := newEnv(t, WithLogger(zap.New(core)))
	fx := e.fixture()
	e.do(t, raw{method: "POST", host: "conversations.twilio.com",
		path: "/v1/Services/" + fx.ChatServiceSid + "/Conversations/" + fx.ConversationSid + "/Messages",
		form: map[string][]string{"Body": {"my secret address"}, "Attributes": {"not json"}}})
	warn := logs.FilterLevelExact(zap.WarnLevel).All()
	if len(warn) != 1 {
		t.Fatalf("warnings = %v", warn)
	}
	for _, entry := range logs.All() {
		for k, v := range entry.ContextMap() {
			if s, ok := v.(string); ok && (strings.Contains(s, "secret") || strings.Contains(s, testToken)) {
				t.Errorf("log %q field %s = %q", entry.Message, k, s)
			}
		}
	}
	if logs.FilterMessage("twiliostub: call").Len() != 1 {
		t.Errorf("want one debug line per call, got %v", logs.All())
	}
}
