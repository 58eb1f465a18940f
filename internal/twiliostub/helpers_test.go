package twiliostub

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	twilio "github.com/twilio/twilio-go"
	"github.com/twilio/twilio-go/client"
	"go.uber.org/goleak"

	"github.com/flexstream/flexstream/internal/twilioapi"
)

// Every test ends with no goroutine of the stub, its HTTP server or the
// test's clients left running.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const (
	testAccount = "AC0123456789abcdef0123456789abcdef"
	testToken   = "0123456789abcdef0123456789abcdef"
)

// env is a started stub with a twilio-go client pointed at it.
type env struct {
	stub *Server
	tw   *twilio.RestClient
	last func() twilioapi.Response // of tw's latest call
	http *http.Client              // plain client to the stub, for hand-made requests
}

func newEnv(t *testing.T, opts ...Option) *env {
	t.Helper()
	return newEnvTimeout(t, 10*time.Second, opts...)
}

func newEnvTimeout(t *testing.T, timeout time.Duration, opts ...Option) *env {
	t.Helper()
	s := New(append([]Option{WithCredentials(testAccount, testToken)}, opts...)...)
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	inner := &http.Transport{}
	t.Cleanup(inner.CloseIdleConnections)
	// The product's own way to reach a stand-in (X-Forwarded-Host names
	// the real host).
	api, err := twilioapi.New(twilioapi.Config{AccountSid: testAccount, AuthToken: testToken, BaseURL: s.URL(), Timeout: timeout, Transport: inner})
	if err != nil {
		t.Fatal(err)
	}
	tw, last := api.Rest(context.Background())
	return &env{
		stub: s,
		tw:   tw,
		last: last,
		http: &http.Client{Transport: inner, Timeout: 10 * time.Second},
	}
}

// raw is a hand-made request, for what twilio-go would never send.
type raw struct {
	method string
	host   string // X-Forwarded-Host; "" sends none
	path   string
	form   url.Values
	ctype  string // Content-Type; default form when form != nil
	noAuth bool
	user   string // basic credentials; default the test account's
	pass   string
}

func (e *env) do(t *testing.T, rq raw) (int, twilioError, http.Header) {
	t.Helper()
	var body *strings.Reader
	if rq.form != nil {
		body = strings.NewReader(rq.form.Encode())
	} else {
		body = strings.NewReader("")
	}
	req, err := http.NewRequest(rq.method, e.stub.URL()+rq.path, body)
	if err != nil {
		t.Fatal(err)
	}
	if rq.host != "" {
		req.Header.Set("X-Forwarded-Host", rq.host)
	}
	switch {
	case rq.ctype != "":
		req.Header.Set("Content-Type", rq.ctype)
	case rq.form != nil:
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if !rq.noAuth {
		user, pass := rq.user, rq.pass
		if user == "" {
			user, pass = testAccount, testToken
		}
		req.SetBasicAuth(user, pass)
	}
	resp, err := e.http.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var te twilioError
	if resp.StatusCode >= 300 {
		if err := json.NewDecoder(resp.Body).Decode(&te); err != nil {
			t.Fatalf("%s %s: %d with a body that is not a Twilio error: %v", rq.method, rq.path, resp.StatusCode, err)
		}
	}
	return resp.StatusCode, te, resp.Header
}

// fixture adds a standard interaction whose original routing names a
// workspace, a workflow and task attributes.
func (e *env) fixture() InteractionFixture {
	return e.stub.AddInteraction(InteractionFixture{
		Routing: map[string]any{"properties": map[string]any{
			"workspace_sid":            "WS" + strings.Repeat("1", 32),
			"workflow_sid":             "WW" + strings.Repeat("2", 32),
			"task_channel_unique_name": "chat",
			"attributes":               map[string]any{"from": "whatsapp:+15550001111", "channelType": "whatsapp"},
		}},
	})
}

// asMap follows a path of keys through decoded JSON.
func asMap(t *testing.T, v any, keys ...string) map[string]any {
	t.Helper()
	for _, k := range keys {
		m, ok := v.(map[string]any)
		if !ok {
			t.Fatalf("at %q: %T is not an object", k, v)
		}
		v = m[k]
	}
	m, ok := v.(map[string]any)
	if !ok {
		t.Fatalf("%v: %T is not an object", keys, v)
	}
	return m
}

func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}

// fakeTB records what RequireNoViolations reports.
type fakeTB struct{ errs []string }

func (f *fakeTB) Helper() {}
func (f *fakeTB) Errorf(format string, args ...any) {
	f.errs = append(f.errs, fmt.Sprintf(format, args...))
}

// requireStatus checks that twilio-go returned Twilio's error with status.
func requireStatus(t *testing.T, err error, status int) *client.TwilioRestError {
	t.Helper()
	var te *client.TwilioRestError
	if !errors.As(err, &te) {
		t.Fatalf("err = %v (%T), want a *client.TwilioRestError", err, err)
	}
	if te.Status != status {
		t.Fatalf("status = %d (%v), want %d", te.Status, te, status)
	}
	return te
}
