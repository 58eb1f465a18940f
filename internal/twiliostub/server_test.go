package twiliostub

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	conversations "github.com/twilio/twilio-go/rest/conversations/v1"
	flex "github.com/twilio/twilio-go/rest/flex/v1"
	taskrouter "github.com/twilio/twilio-go/rest/taskrouter/v1"
)

// Rule R2: the product never calls TaskRouter's Task API; the stub counts
// any call that does.
func TestTaskAPICallsAreCounted(t *testing.T) {
	e := newEnv(t)
	_, err := e.tw.TaskrouterV1.UpdateTask("WS11111111111111111111111111111111", "WT22222222222222222222222222222222",
		(&taskrouter.UpdateTaskParams{}).SetAssignmentStatus("canceled").SetReason("orphaned"))
	requireStatus(t, err, http.StatusNotFound)
	if _, err := e.tw.TaskrouterV1.FetchTask("WS11111111111111111111111111111111", "WT22222222222222222222222222222222"); err == nil {
		t.Error("FetchTask succeeded, want 404")
	}
	if n := e.stub.TaskAPICalls(); n != 2 {
		t.Errorf("TaskAPICalls = %d, want 2", n)
	}
	if n := e.stub.Unhandled(); n != 0 {
		t.Errorf("Unhandled = %d, want 0", n)
	}
	if n := e.stub.CallsTo("UpdateTask"); n != 1 {
		t.Errorf("CallsTo(UpdateTask) = %d", n)
	}
	e.stub.RequireNoViolations(t)
}

func TestTaskAPICountedEvenWhenInvalid(t *testing.T) {
	e := newEnv(t)
	status, _, _ := e.do(t, raw{method: "POST", host: "taskrouter.twilio.com", path: "/v1/Workspaces/WS1/Tasks/WT1"})
	if status != 400 || e.stub.TaskAPICalls() != 1 {
		t.Errorf("status %d, TaskAPICalls %d; want 400, 1", status, e.stub.TaskAPICalls())
	}
}

func TestValidOperationWithoutFakeIs501(t *testing.T) {
	e := newEnv(t)
	_, err := e.tw.ConversationsV1.ListParticipantConversation(
		(&conversations.ListParticipantConversationParams{}).SetAddress("whatsapp:+15550001111"))
	requireStatus(t, err, http.StatusNotImplemented)
	_, err = e.tw.FlexV1.ListInteractionChannel("KD11111111111111111111111111111111", nil)
	requireStatus(t, err, http.StatusNotImplemented)
	if n := e.stub.Unhandled(); n != 2 {
		t.Errorf("Unhandled = %d, want 2", n)
	}
	e.stub.RequireNoViolations(t)
}

// Without X-Forwarded-Host the path picks the spec; Handler works on any
// http.Server, as the simulator will use it.
func TestHandlerOnOwnServerRoutesByPath(t *testing.T) {
	stub := New()
	fx := stub.AddInteraction(InteractionFixture{ChannelStatus: "setup"})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: stub.Handler(), ReadHeaderTimeout: time.Second}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	tr := &http.Transport{}
	defer func() {
		tr.CloseIdleConnections()
		if err := srv.Shutdown(context.Background()); err != nil {
			t.Error(err)
		}
		if err := <-done; !errors.Is(err, http.ErrServerClosed) {
			t.Error(err)
		}
	}()
	hc := &http.Client{Transport: tr, Timeout: 5 * time.Second}
	for path, want := range map[string]string{
		"/v1/Interactions/" + fx.InteractionSid + "/Channels/" + fx.ChannelSid:       `"status":"setup"`,
		"/v1/Services/" + fx.ChatServiceSid + "/Conversations/" + fx.ConversationSid: `"state":"active"`,
	} {
		req, _ := http.NewRequest("GET", "http://"+ln.Addr().String()+path, nil)
		req.SetBasicAuth("ACanything", "anytoken") // no WithCredentials: any pair
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var body map[string]any
		err = json.NewDecoder(resp.Body).Decode(&body)
		resp.Body.Close()
		b, _ := json.Marshal(body)
		if err != nil || resp.StatusCode != 200 || !strings.Contains(string(b), want) {
			t.Errorf("GET %s = %d %s (%v), want %s", path, resp.StatusCode, b, err, want)
		}
	}
	stub.RequireNoViolations(t)
}

func TestCallsRecordWhatWasSent(t *testing.T) {
	e := newEnv(t)
	fx := e.fixture()
	_, err := e.tw.ConversationsV1.CreateServiceConversationMessage(fx.ChatServiceSid, fx.ConversationSid,
		(&conversations.CreateServiceConversationMessageParams{}).SetBody("hi").SetXTwilioWebhookEnabled("true"))
	if err != nil {
		t.Fatal(err)
	}
	calls := e.stub.Calls()
	if len(calls) != 1 {
		t.Fatalf("calls = %v", calls)
	}
	c := calls[0]
	if c.Method != "POST" || c.Host != "conversations.twilio.com" || c.Operation != "CreateServiceConversationMessage" ||
		c.Status != 201 || c.Form.Get("Body") != "hi" || c.Header.Get("X-Twilio-Webhook-Enabled") != "true" {
		t.Errorf("call = %+v", c)
	}
	if c.Header.Get("Authorization") != "" {
		t.Error("the call keeps the Authorization header")
	}
	if n := e.stub.CallsTo("CreateServiceConversationMessage"); n != 1 {
		t.Errorf("CallsTo = %d", n)
	}
}

// Many callers at once, while the test reads state: run under -race.
func TestConcurrentCalls(t *testing.T) {
	e := newEnv(t)
	fx := e.fixture()
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Go(func() {
			var err error
			if i%2 == 0 {
				_, err = e.tw.ConversationsV1.CreateServiceConversationMessage(fx.ChatServiceSid, fx.ConversationSid,
					(&conversations.CreateServiceConversationMessageParams{}).SetBody("x"))
			} else {
				_, err = e.tw.FlexV1.CreateInteractionChannelInvite(fx.InteractionSid, fx.ChannelSid,
					(&flex.CreateInteractionChannelInviteParams{}).SetRouting(map[string]any{"properties": map[string]any{
						"workspace_sid": "WS11111111111111111111111111111111", "queue_sid": "WQ11111111111111111111111111111111",
					}}))
			}
			if err != nil {
				t.Error(err)
			}
			_ = e.stub.Calls()
			_, _ = e.stub.Channel(fx.InteractionSid, fx.ChannelSid)
		})
	}
	wg.Wait()
	if m, i := len(e.stub.Messages(fx.ChatServiceSid, fx.ConversationSid)), len(e.stub.Invites(fx.InteractionSid, fx.ChannelSid)); m != 10 || i != 10 {
		t.Errorf("messages %d, invites %d; want 10, 10", m, i)
	}
	e.stub.RequireNoViolations(t)
}

// Close ends a delayed call at once and leaves no goroutine (TestMain).
func TestCloseEndsDelayedCalls(t *testing.T) {
	s := New()
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	fx := s.AddInteraction(InteractionFixture{})
	s.Delay("FetchInteraction", time.Minute)
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	got := make(chan error, 1)
	go func() {
		req, _ := http.NewRequest("GET", s.URL()+"/v1/Interactions/"+fx.InteractionSid, nil)
		req.SetBasicAuth("AC1", "t")
		resp, err := (&http.Client{Transport: tr}).Do(req)
		if err == nil {
			resp.Body.Close()
		}
		got <- err
	}()
	waitFor(t, func() bool { return delayedCalls(s) == 1 })
	start := time.Now()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Close took %v", d)
	}
	if err := <-got; err == nil {
		t.Error("the delayed call got an answer, want the connection closed")
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

func delayedCalls(s *Server) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.delayed
}

func TestStartTwiceFails(t *testing.T) {
	s := New()
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Start(); err == nil {
		t.Error("second Start succeeded")
	}
	if !strings.HasPrefix(s.URL(), "http://127.0.0.1:") {
		t.Errorf("URL = %q", s.URL())
	}
}
