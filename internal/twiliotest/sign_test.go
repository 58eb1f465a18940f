package twiliotest_test

import (
	"bytes"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/twilio/twilio-go/client"

	tt "github.com/flexstream/flexstream/internal/twiliotest"
)

// firstValues is what twilio-go's Validate takes: one value per key.
func firstValues(form url.Values) map[string]string {
	m := make(map[string]string, len(form))
	for k, v := range form {
		m[k] = v[0]
	}
	return m
}

var testURLs = []string{
	"https://ingest.example.com/twilio/taskrouter",
	"https://ingest.example.com:8443/twilio/taskrouter",
	"http://127.0.0.1:8080/twilio/conversations?source=flex&x=%2Fa%20b",
	"https://ingest.example.com/twilio/hooks?tenant=acme",
}

// signedForms are all the form payloads the package builds, plus edge
// cases: empty form, unicode and characters the encoding must not touch.
func signedForms() map[string]url.Values {
	ids := tt.NewIDs(42)
	out := map[string]url.Values{
		"empty":   {},
		"unicode": {"Body": {"¿Dónde está mi pedido? 📦 a+b=c&d"}, "A": {""}, "a": {"lower sorts after upper"}},
	}
	for _, e := range tt.TaskRouterEventTypes() {
		out["tr "+e] = tt.TaskRouterEvent(ids, e, tt.WithEventSid(ids.SID("EV", e)))
	}
	for _, e := range conversationsTypes {
		out["conv "+e] = tt.ConversationsEvent(ids, e)
	}
	return out
}

func TestSignAcceptedByTwilioGo(t *testing.T) {
	good := client.NewRequestValidator(tt.AuthToken)
	other := client.NewRequestValidator(tt.SecondaryAuthToken)
	for name, form := range signedForms() {
		for _, u := range testURLs {
			sig := tt.Sign(tt.AuthToken, u, form)
			body := []byte(form.Encode())
			if !good.Validate(u, firstValues(form), sig) {
				t.Errorf("%s %s: Validate rejected the signature", name, u)
			}
			if !good.ValidateBody(u, body, sig) {
				t.Errorf("%s %s: ValidateBody rejected the signature", name, u)
			}
			if other.ValidateBody(u, body, sig) {
				t.Errorf("%s %s: signature accepted with another token", name, u)
			}
			if good.ValidateBody(u+"x", body, sig) || good.ValidateBody(strings.Replace(u, "/twilio/", "/twilio2/", 1), body, sig) {
				t.Errorf("%s %s: signature accepted for another URL", name, u)
			}
			tampered := url.Values{}
			for k, v := range form {
				tampered[k] = v
			}
			tampered.Set("Injected", "1")
			if good.ValidateBody(u, []byte(tampered.Encode()), sig) {
				t.Errorf("%s %s: signature accepted for a modified body", name, u)
			}
			for k := range form {
				changed := url.Values{}
				for k2, v := range form {
					changed[k2] = v
				}
				changed.Set(k, form.Get(k)+"x")
				if good.ValidateBody(u, []byte(changed.Encode()), sig) {
					t.Errorf("%s %s: signature accepted with %s changed", name, u, k)
				}
				break
			}
		}
	}
	// The secondary token signs too.
	form := tt.TaskRouterEvent(tt.NewIDs(1), "task.created")
	sig := tt.Sign(tt.SecondaryAuthToken, testURLs[0], form)
	if !other.ValidateBody(testURLs[0], []byte(form.Encode()), sig) || good.ValidateBody(testURLs[0], []byte(form.Encode()), sig) {
		t.Error("SecondaryAuthToken signature not accepted by exactly its own validator")
	}
}

// TestSignRandomForms checks the algorithm on seeded random keys and
// values, including bytes that form encoding escapes.
func TestSignRandomForms(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 7))
	alphabet := []rune("aAbBzZ09._-+&=?% #é😀/:\"'")
	str := func(n int) string {
		var b strings.Builder
		for range n {
			b.WriteRune(alphabet[r.IntN(len(alphabet))])
		}
		return b.String()
	}
	v := client.NewRequestValidator(tt.AuthToken)
	for i := range 500 {
		form := url.Values{}
		for range r.IntN(12) {
			form.Set(str(1+r.IntN(8)), str(r.IntN(20)))
		}
		u := testURLs[i%len(testURLs)]
		sig := tt.Sign(tt.AuthToken, u, form)
		if !v.Validate(u, firstValues(form), sig) || !v.ValidateBody(u, []byte(form.Encode()), sig) {
			t.Fatalf("form %q: signature rejected", form.Encode())
		}
	}
}

func TestSignMultiValue(t *testing.T) {
	// Twilio's helper libraries sort and dedupe a key's values.
	a := tt.Sign(tt.AuthToken, testURLs[0], url.Values{"K": {"2", "1", "2"}})
	b := tt.Sign(tt.AuthToken, testURLs[0], url.Values{"K": {"1", "2"}})
	c := tt.Sign(tt.AuthToken, testURLs[0]+"K1K2", nil)
	if a != b || b != c {
		t.Errorf("multi-value signatures differ: %s %s %s", a, b, c)
	}
}

func TestSignJSON(t *testing.T) {
	body := tt.EventStreamsDelivery(tt.NewIDs(3), tt.EventStreamsEvent{Type: "task.created"})
	good := client.NewRequestValidator(tt.AuthToken)
	other := client.NewRequestValidator(tt.SecondaryAuthToken)
	for _, u := range append(testURLs, "https://ingest.example.com/es?bodySHA256=stale&keep=1", "https://ingest.example.com/es?", "https://ingest.example.com/es#frag") {
		signed, sig := tt.SignJSON(tt.AuthToken, u, body)
		pu, err := url.Parse(signed)
		if err != nil {
			t.Fatal(err)
		}
		q := pu.Query()
		if got := q.Get("bodySHA256"); got != tt.BodySHA256(body) || len(q["bodySHA256"]) != 1 {
			t.Errorf("%s: bodySHA256 = %q", signed, q["bodySHA256"])
		}
		orig, _ := url.Parse(u)
		for k := range orig.Query() {
			if k != "bodySHA256" && !q.Has(k) {
				t.Errorf("%s: lost query parameter %s", signed, k)
			}
		}
		if !strings.HasPrefix(signed, strings.TrimSuffix(strings.Split(u, "?")[0], "#frag")) || strings.Contains(signed, "#") {
			t.Errorf("%s: not based on %s", signed, u)
		}
		if !good.ValidateBody(signed, body, sig) {
			t.Errorf("%s: ValidateBody rejected the signature", signed)
		}
		if !good.Validate(signed, map[string]string{}, sig) {
			t.Errorf("%s: Validate (URL only) rejected the signature", signed)
		}
		if other.ValidateBody(signed, body, sig) {
			t.Errorf("%s: accepted with another token", signed)
		}
		if good.ValidateBody(signed, append(bytes.Clone(body), ' '), sig) {
			t.Errorf("%s: accepted a modified body", signed)
		}
		if good.ValidateBody(strings.Replace(signed, "ingest", "other", 1)+"&x=1", body, sig) {
			t.Errorf("%s: accepted a modified URL", signed)
		}
		// The signature covers bodySHA256: the URL without it fails.
		if good.ValidateBody(u, body, sig) {
			t.Errorf("%s: accepted without bodySHA256", u)
		}
	}
}

// captured is what a test server saw.
type captured struct {
	url    string // the URL as the receiver reconstructs it
	header http.Header
	body   []byte
}

func newServer(t *testing.T) (*httptest.Server, <-chan captured) {
	ch := make(chan captured, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body)
		if err != nil {
			t.Error(err)
		}
		scheme, host := "http", r.Host
		if p := r.Header.Get("X-Forwarded-Proto"); p != "" {
			scheme = p
		}
		if h := r.Header.Get("X-Forwarded-Host"); h != "" {
			host = h
		}
		ch <- captured{url: scheme + "://" + host + r.URL.RequestURI(), header: r.Header.Clone(), body: b}
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(srv.Close)
	return srv, ch
}

func do(t *testing.T, srv *httptest.Server, r *http.Request) {
	t.Helper()
	resp, err := srv.Client().Do(r)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("status %d", resp.StatusCode)
	}
}

func TestFormRequest(t *testing.T) {
	srv, got := newServer(t)
	v := client.NewRequestValidator(tt.AuthToken)
	ids := tt.NewIDs(9)
	for i, form := range []url.Values{tt.TaskRouterEvent(ids, "task.canceled"), tt.ConversationsEvent(ids, "onMessageAdded")} {
		idem := ""
		if i == 0 {
			idem = "idem-123"
		}
		u := srv.URL + "/twilio/hook?x=1"
		r, err := tt.FormRequest(tt.AuthToken, u, form, idem)
		if err != nil {
			t.Fatal(err)
		}
		do(t, srv, r)
		c := <-got
		if c.url != u {
			t.Errorf("server saw %s, want %s", c.url, u)
		}
		sig := c.header.Get("X-Twilio-Signature")
		if !v.ValidateBody(c.url, c.body, sig) {
			t.Error("twilio-go rejected FormRequest's signature")
		}
		parsed, _ := url.ParseQuery(string(c.body))
		if !v.Validate(c.url, firstValues(parsed), sig) {
			t.Error("twilio-go Validate rejected FormRequest's signature")
		}
		if other := client.NewRequestValidator(tt.SecondaryAuthToken); other.ValidateBody(c.url, c.body, sig) {
			t.Error("accepted with another token")
		}
		if ct := c.header.Get("Content-Type"); ct != "application/x-www-form-urlencoded" {
			t.Errorf("Content-Type %q", ct)
		}
		if ua := c.header.Get("User-Agent"); ua != "TwilioProxy/1.1" {
			t.Errorf("User-Agent %q", ua)
		}
		if h := c.header.Get("I-Twilio-Idempotency-Token"); h != idem || (idem == "") != (len(c.header.Values("I-Twilio-Idempotency-Token")) == 0) {
			t.Errorf("idempotency token %q, want %q", h, idem)
		}
		if parsed.Encode() != form.Encode() {
			t.Error("body differs from the form")
		}
	}
}

func TestJSONRequest(t *testing.T) {
	srv, got := newServer(t)
	v := client.NewRequestValidator(tt.AuthToken)
	body := tt.EventStreamsDelivery(tt.NewIDs(9), tt.EventStreamsEvent{Type: "reservation.accepted"}, tt.EventStreamsEvent{Type: "message.added"})
	u := srv.URL + "/twilio/eventstreams?sink=DG1"
	r, err := tt.JSONRequest(tt.AuthToken, u, body, "idem-es")
	if err != nil {
		t.Fatal(err)
	}
	do(t, srv, r)
	c := <-got
	if !strings.HasPrefix(c.url, u+"&bodySHA256=") {
		t.Errorf("server saw %s", c.url)
	}
	if !bytes.Equal(c.body, body) {
		t.Error("body changed")
	}
	sig := c.header.Get("X-Twilio-Signature")
	if !v.ValidateBody(c.url, c.body, sig) {
		t.Error("twilio-go rejected JSONRequest's signature")
	}
	other := client.NewRequestValidator(tt.SecondaryAuthToken)
	if v.ValidateBody(c.url, append(c.body, '\n'), sig) || other.ValidateBody(c.url, c.body, sig) {
		t.Error("accepted a modified body or another token")
	}
	if ct := c.header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q", ct)
	}
	if c.header.Get("User-Agent") != "TwilioProxy/1.1" || c.header.Get("I-Twilio-Idempotency-Token") != "idem-es" {
		t.Errorf("headers %v", c.header)
	}
}

// TestRetarget: a request signed for the public URL reaches another host
// and still validates against the public URL.
func TestRetarget(t *testing.T) {
	srv, got := newServer(t)
	v := client.NewRequestValidator(tt.AuthToken)
	public := "https://hooks.example.com/twilio/taskrouter"
	form := tt.TaskRouterEvent(tt.NewIDs(5), "task.created")
	r, err := tt.FormRequest(tt.AuthToken, public, form, "")
	if err != nil {
		t.Fatal(err)
	}
	if err := tt.Retarget(r, srv.URL); err != nil {
		t.Fatal(err)
	}
	do(t, srv, r)
	c := <-got
	if c.url != public {
		t.Fatalf("reconstructed %s, want %s", c.url, public)
	}
	if !v.ValidateBody(c.url, c.body, c.header.Get("X-Twilio-Signature")) {
		t.Error("rejected after Retarget")
	}
	if err := tt.Retarget(r, "no-scheme"); err == nil {
		t.Error("Retarget accepted a base without scheme")
	}
}

func TestRequestErrors(t *testing.T) {
	if _, err := tt.FormRequest(tt.AuthToken, "http://[::1", nil, ""); err == nil {
		t.Error("FormRequest accepted a bad URL")
	}
	if _, err := tt.JSONRequest(tt.AuthToken, "://x", []byte("[]"), ""); err == nil {
		t.Error("JSONRequest accepted a bad URL")
	}
}

func ExampleFormRequest() {
	form := tt.TaskRouterEvent(tt.NewIDs(1), "task.created")
	r, _ := tt.FormRequest(tt.AuthToken, "https://ingest.example.com/twilio/taskrouter", form, "")
	v := client.NewRequestValidator(tt.AuthToken)
	body, _ := io.ReadAll(r.Body)
	fmt.Println(r.Header.Get("User-Agent"), v.ValidateBody(r.URL.String(), body, r.Header.Get("X-Twilio-Signature")))
	// Output: TwilioProxy/1.1 true
}
