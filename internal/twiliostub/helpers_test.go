package twiliostub

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	twilio "github.com/twilio/twilio-go"
	"github.com/twilio/twilio-go/client"
	"go.uber.org/goleak"
)

// Every test ends with no goroutine of the stub, its HTTP server or the
// test's clients left running.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const (
	testAccount = "AC0123456789abcdef0123456789abcdef"
	testToken   = "0123456789abcdef0123456789abcdef"
)

// rewriteTransport is what the product does to reach a Twilio stand-in:
// send every request to the stub and name the real host in
// X-Forwarded-Host. It also keeps the last response's headers, which
// twilio-go does not surface on errors (Retry-After).
//
// It bounds each request itself instead of through http.Client.Timeout:
// twilio-go v1.31.0 decodes an error response's body and never closes it
// (client.doWithErr), which pins the connection and keeps http.Client's
// timeout goroutine alive until the timeout fires. Reading an error body
// into memory here and cancelling the request's context as soon as its
// body is done leaves nothing behind. The product's transport must do the
// same.
type rewriteTransport struct {
	base    *url.URL
	next    http.RoundTripper
	timeout time.Duration

	mu   sync.Mutex
	last http.Header
}

func (t *rewriteTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	ctx, cancel := context.WithTimeout(r.Context(), t.timeout)
	r = r.Clone(ctx)
	r.Header.Set("X-Forwarded-Host", r.URL.Host)
	r.URL.Scheme, r.URL.Host, r.Host = t.base.Scheme, t.base.Host, ""
	resp, err := t.next.RoundTrip(r)
	if err != nil {
		cancel()
		return nil, err
	}
	t.mu.Lock()
	t.last = resp.Header.Clone()
	t.mu.Unlock()
	if resp.StatusCode < 400 {
		resp.Body = &cancelOnClose{ReadCloser: resp.Body, cancel: cancel}
		return resp, nil
	}
	defer cancel()
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	resp.Body = io.NopCloser(bytes.NewReader(b))
	return resp, nil
}

type cancelOnClose struct {
	io.ReadCloser
	cancel context.CancelFunc
}

func (c *cancelOnClose) Close() error {
	err := c.ReadCloser.Close()
	c.cancel()
	return err
}

func (t *rewriteTransport) lastHeader() http.Header {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.last
}

// env is a started stub with a twilio-go client pointed at it.
type env struct {
	stub *Server
	tw   *twilio.RestClient
	tr   *rewriteTransport
	http *http.Client // plain client to the stub, for hand-made requests
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
	base, err := url.Parse(s.URL())
	if err != nil {
		t.Fatal(err)
	}
	inner := &http.Transport{}
	t.Cleanup(inner.CloseIdleConnections)
	tr := &rewriteTransport{base: base, next: inner, timeout: timeout}
	cl := &client.Client{
		Credentials: client.NewCredentials(testAccount, testToken),
		HTTPClient:  &http.Client{Transport: tr},
	}
	cl.SetAccountSid(testAccount)
	return &env{
		stub: s,
		tw:   twilio.NewRestClientWithParams(twilio.ClientParams{Client: cl}),
		tr:   tr,
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
