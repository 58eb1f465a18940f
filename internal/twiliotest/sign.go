// Package twiliotest builds what Twilio sends to a webhook: realistic
// TaskRouter event callbacks, Conversations webhooks and Event Streams
// deliveries (DESIGN §8), signed the way Twilio signs them.
//
// Tests of ingest use it, and so does the Twilio simulator, which is
// product code: the package has no test-only dependencies, and every
// payload is a pure function of its IDs (themselves a pure function of a
// seed), the event type and the options. Times come from BaseTime, never
// from the clock, unless an option says otherwise.
package twiliotest

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
)

// Fixed test credentials: 32 hex characters, like a real auth token. Use
// SecondaryAuthToken to exercise token rotation (Twilio signs with the
// primary token; a receiver accepts either during the rotation).
const (
	AuthToken          = "5f2b8c1e9a7d4036b1e8c2f09d6a4e71"
	SecondaryAuthToken = "c0ffee1234567890abcdef0fedcba987"
)

// Headers Twilio sets on a webhook request.
const (
	HeaderSignature   = "X-Twilio-Signature"
	HeaderIdempotency = "I-Twilio-Idempotency-Token"
	HeaderHomeRegion  = "X-Home-Region"
	UserAgent         = "TwilioProxy/1.1"
	ContentTypeForm   = "application/x-www-form-urlencoded"
	ContentTypeJSON   = "application/json"
)

// BodySHA256Param is the query parameter Twilio adds to the URL of a
// request with a JSON body: the hex SHA-256 of the body.
const BodySHA256Param = "bodySHA256"

// Sign computes Twilio's X-Twilio-Signature: base64(HMAC-SHA1(authToken,
// url + key+value of every POST parameter, sorted by key)). url is the
// exact URL Twilio calls (the public one, query included). A key with
// several values contributes key+value once per distinct value, values
// sorted, as Twilio's own helper libraries do (twilio-go's validator
// reads only the first value of a key; the builders here never repeat a
// key).
func Sign(authToken, rawURL string, form url.Values) string {
	var b strings.Builder
	b.WriteString(rawURL)
	keys := make([]string, 0, len(form))
	for k := range form {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		vals := slices.Clone(form[k])
		slices.Sort(vals)
		vals = slices.Compact(vals)
		for _, v := range vals {
			b.WriteString(k)
			b.WriteString(v)
		}
	}
	mac := hmac.New(sha1.New, []byte(authToken))
	mac.Write([]byte(b.String()))
	return base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// BodySHA256 is the hex SHA-256 of a body, as Twilio puts it in the URL.
func BodySHA256(body []byte) string {
	sum := sha256.Sum256(body)
	return hex.EncodeToString(sum[:])
}

// SignJSON signs a request with a JSON body the way Twilio does: it adds
// bodySHA256=<hex SHA-256 of body> to the URL's query (keeping the other
// parameters as written, replacing a bodySHA256 already there, dropping
// any fragment) and signs that URL alone, with no parameters. It returns
// the URL to call and the signature.
func SignJSON(authToken, rawURL string, body []byte) (signedURL, signature string) {
	base, _, _ := strings.Cut(rawURL, "#")
	if u, err := url.Parse(base); err == nil && u.Query().Has(BodySHA256Param) {
		q := u.Query()
		q.Del(BodySHA256Param)
		u.RawQuery = q.Encode()
		base = u.String()
	}
	sep := "?"
	if strings.Contains(base, "?") {
		sep = "&"
		if strings.HasSuffix(base, "?") || strings.HasSuffix(base, "&") {
			sep = ""
		}
	}
	signedURL = base + sep + BodySHA256Param + "=" + BodySHA256(body)
	return signedURL, Sign(authToken, signedURL, nil)
}

// FormRequest builds the POST Twilio sends for a form-encoded webhook
// (TaskRouter, Conversations) to rawURL, signed with authToken. It is
// usable with an http.Client against a real server, and with a handler
// directly. idemToken, when not empty, becomes I-Twilio-Idempotency-Token.
func FormRequest(authToken, rawURL string, form url.Values, idemToken string) (*http.Request, error) {
	body := form.Encode()
	r, err := http.NewRequest(http.MethodPost, rawURL, strings.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("twiliotest: %w", err)
	}
	setHeaders(r, ContentTypeForm, Sign(authToken, rawURL, form), idemToken)
	return r, nil
}

// JSONRequest builds the POST Twilio sends for a JSON webhook (Event
// Streams): the request URL is rawURL with bodySHA256 added (SignJSON).
func JSONRequest(authToken, rawURL string, body []byte, idemToken string) (*http.Request, error) {
	signedURL, sig := SignJSON(authToken, rawURL, body)
	r, err := http.NewRequest(http.MethodPost, signedURL, bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("twiliotest: %w", err)
	}
	setHeaders(r, ContentTypeJSON, sig, idemToken)
	return r, nil
}

func setHeaders(r *http.Request, contentType, sig, idemToken string) {
	r.Header.Set("Content-Type", contentType)
	r.Header.Set("User-Agent", UserAgent)
	r.Header.Set("Accept", "*/*")
	r.Header.Set(HeaderHomeRegion, "us1")
	r.Header.Set(HeaderSignature, sig)
	if idemToken != "" {
		r.Header.Set(HeaderIdempotency, idemToken)
	}
}

// Retarget points a request built for a public URL (the one Twilio calls
// and signs) at another server, as a reverse proxy in front of the
// receiver would: the scheme and host become base's, path, query, body
// and signature stay, and X-Forwarded-Proto / X-Forwarded-Host carry the
// public scheme and host.
func Retarget(r *http.Request, base string) error {
	u, err := url.Parse(base)
	if err != nil {
		return fmt.Errorf("twiliotest: %w", err)
	}
	if u.Scheme == "" || u.Host == "" {
		return fmt.Errorf("twiliotest: retarget base %q needs a scheme and a host", base)
	}
	r.Header.Set("X-Forwarded-Proto", r.URL.Scheme)
	r.Header.Set("X-Forwarded-Host", r.URL.Host)
	r.URL.Scheme, r.URL.Host, r.Host = u.Scheme, u.Host, u.Host
	return nil
}
