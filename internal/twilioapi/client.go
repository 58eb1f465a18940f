// Package twilioapi gives the product's roles a twilio-go REST client that
// can be pointed at a stand-in for Twilio (a simulator, a test server),
// bound to a context and a timeout, and reports what twilio-go's errors
// leave out (the Retry-After header).
//
// twilio-go has no base-URL setting and its calls take no context
// (DESIGN §8). Both are solved in the HTTP transport: every call gets its
// own small twilio.RestClient whose transport rewrites scheme and host to
// BaseURL (keeping the original host in X-Forwarded-Host, so a stand-in
// knows which API was meant), attaches the caller's context, and records
// the response's status and Retry-After for that one call. A RestClient
// is a handful of structs, so building one per call is cheap, and it
// makes the per-call record race-free without any locking.
package twilioapi

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"sync"
	"time"

	"github.com/twilio/twilio-go"
	"github.com/twilio/twilio-go/client"

	"github.com/flexstream/flexstream/internal/config"
)

// DefaultTimeout bounds one REST call, retries excluded.
const DefaultTimeout = 10 * time.Second

// Config says which Twilio to call and as whom.
type Config struct {
	AccountSid string // AC…
	AuthToken  string
	// BaseURL, when set, replaces scheme and host of every Twilio API
	// host (flex-api, conversations, taskrouter…): "http://127.0.0.1:8090".
	BaseURL string
	Timeout time.Duration // per call; DefaultTimeout when 0
	// Transport is the underlying RoundTripper (http.DefaultTransport
	// when nil).
	Transport http.RoundTripper
}

// Validate names the bad field; it applies the defaults first.
func (c *Config) Validate() error {
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	if c.Transport == nil {
		c.Transport = http.DefaultTransport
	}
	switch {
	case c.AccountSid == "":
		return config.Errorf("TWILIO_ACCOUNT_SID", "an account SID is required")
	case c.AuthToken == "":
		return config.Errorf("TWILIO_AUTH_TOKEN", "an auth token is required")
	case !alnum.MatchString(c.AccountSid):
		// twilio-go refuses any other character at every call (error
		// 21222); better said once, at start.
		return config.Errorf("TWILIO_ACCOUNT_SID", "want letters and digits only")
	case !alnum.MatchString(c.AuthToken):
		return config.Errorf("TWILIO_AUTH_TOKEN", "want letters and digits only (error 21224)")
	case c.Timeout < 0:
		return config.Errorf("twilio-timeout", "want a positive duration, got %s", c.Timeout)
	}
	if c.BaseURL != "" {
		u, err := url.Parse(c.BaseURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/") {
			return config.Errorf("twilio-api-url", "want scheme://host[:port], got %q", c.BaseURL)
		}
	}
	return nil
}

var alnum = regexp.MustCompile(`^[a-zA-Z0-9]+$`)

// Client makes REST calls through twilio-go.
type Client struct {
	cfg  Config
	base *url.URL // nil: the real Twilio
}

// New validates cfg and returns a Client.
func New(cfg Config) (*Client, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	c := &Client{cfg: cfg}
	if cfg.BaseURL != "" {
		c.base, _ = url.Parse(cfg.BaseURL) // checked by Validate
	}
	return c, nil
}

// Response is what the transport saw of a call's last HTTP response.
type Response struct {
	Status     int           // 0 when no response arrived
	RetryAfter time.Duration // from Retry-After (seconds or an HTTP date); 0 when absent
}

// Do runs fn, which makes twilio-go calls, with a RestClient bound to ctx
// and the call timeout. The Response is that of the last HTTP exchange fn
// made. Errors are returned as twilio-go made them (a
// *client.TwilioRestError for an HTTP error).
func (c *Client) Do(ctx context.Context, fn func(*twilio.RestClient) error) (Response, error) {
	rest, last := c.Rest(ctx)
	err := fn(rest)
	if err != nil && ctx.Err() != nil {
		err = fmt.Errorf("%w (%w)", ctx.Err(), err)
	}
	return last(), err
}

// Rest returns a RestClient whose calls are bound to ctx and the call
// timeout, and a function giving the last HTTP response it saw. It is
// for one goroutine: Do is the way to use it per call.
func (c *Client) Rest(ctx context.Context) (*twilio.RestClient, func() Response) {
	rec := &recorder{ctx: ctx, timeout: c.cfg.Timeout, base: c.base, next: c.cfg.Transport}
	// No http.Client.Timeout: twilio-go never closes the body of an error
	// answer, and with a client timeout each one would leave net/http's
	// timer goroutine and the connection held until the timeout fired.
	// The recorder applies the timeout itself and reads error bodies
	// into memory.
	httpc := &http.Client{Transport: rec}
	rest := twilio.NewRestClientWithParams(twilio.ClientParams{
		Username:   c.cfg.AccountSid,
		Password:   c.cfg.AuthToken,
		AccountSid: c.cfg.AccountSid,
		Client: &client.Client{
			Credentials: client.NewCredentials(c.cfg.AccountSid, c.cfg.AuthToken),
			HTTPClient:  httpc,
		},
	})
	return rest, rec.last
}

// recorder is one call's transport.
type recorder struct {
	ctx     context.Context
	timeout time.Duration
	base    *url.URL
	next    http.RoundTripper

	mu   sync.Mutex // a RestClient from Rest may be shared
	resp Response
}

func (r *recorder) last() Response {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.resp
}

func (r *recorder) set(resp Response) {
	r.mu.Lock()
	r.resp = resp
	r.mu.Unlock()
}

// maxErrorBody bounds what is read of an error answer (Twilio's are a
// few hundred bytes).
const maxErrorBody = 1 << 20

func (r *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	ctx, cancel := context.WithTimeout(r.ctx, r.timeout)
	req = req.Clone(ctx)
	if r.base != nil {
		req.Header.Set("X-Forwarded-Host", req.URL.Host)
		req.URL.Scheme, req.URL.Host = r.base.Scheme, r.base.Host
		req.Host = ""
	}
	res, err := r.next.RoundTrip(req)
	if err != nil {
		cancel()
		r.set(Response{})
		return nil, err
	}
	r.set(Response{Status: res.StatusCode, RetryAfter: parseRetryAfter(res.Header.Get("Retry-After"), time.Now())})
	if res.StatusCode >= 400 {
		body, err := io.ReadAll(io.LimitReader(res.Body, maxErrorBody))
		res.Body.Close()
		cancel()
		if err != nil {
			return nil, fmt.Errorf("read the HTTP %d answer: %w", res.StatusCode, err)
		}
		res.Body = io.NopCloser(bytes.NewReader(body))
		return res, nil
	}
	res.Body = &cancelOnClose{ReadCloser: res.Body, cancel: cancel}
	return res, nil
}

// cancelOnClose releases the call's timeout when twilio-go is done with
// the body.
type cancelOnClose struct {
	io.ReadCloser
	cancel context.CancelFunc
}

func (c *cancelOnClose) Close() error {
	err := c.ReadCloser.Close()
	c.cancel()
	return err
}

// parseRetryAfter reads delay-seconds or an HTTP date (RFC 9110 §10.2.3).
func parseRetryAfter(v string, now time.Time) time.Duration {
	if v == "" {
		return 0
	}
	if n, err := strconv.Atoi(v); err == nil {
		if n < 0 {
			return 0
		}
		return time.Duration(n) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

// Status is the HTTP status a failed call was answered with: the one in
// Twilio's error body, else the one the transport saw; 0 when no answer
// arrived (a network error, a timeout).
func Status(resp Response, err error) int {
	var te *client.TwilioRestError
	if errors.As(err, &te) && te.Status != 0 {
		return te.Status
	}
	return resp.Status
}

// Retryable reports whether a call that failed with this status may be
// tried again as is: Twilio asks for it with 429 (too many requests), 503
// (unavailable) and 412 (a precondition not met yet), DESIGN §7.
func Retryable(status int) bool {
	return status == http.StatusTooManyRequests || status == http.StatusServiceUnavailable || status == http.StatusPreconditionFailed
}

// Ambiguous reports whether a failed call may nonetheless have taken
// effect: no HTTP answer was read (the connection broke, the timeout
// struck) or Twilio answered a server error. Such a call must be checked
// against Twilio's state before it is tried again.
func Ambiguous(resp Response, err error) bool {
	if err == nil {
		return false
	}
	st := Status(resp, err)
	return st == 0 || st >= 500 && st != http.StatusServiceUnavailable
}
