package ingest

import (
	"net/http"
	"net/url"
	"strings"

	"github.com/twilio/twilio-go/client"
)

// SignatureHeader carries Twilio's request signature.
const SignatureHeader = "X-Twilio-Signature"

// verifier checks X-Twilio-Signature with twilio-go's RequestValidator,
// against every configured auth token: during a rotation Twilio may sign
// with either the primary or the secondary.
type verifier struct {
	validators []client.RequestValidator
	publicURL  *url.URL // scheme, host and path prefix Twilio calls; nil: the request's own host
}

func newVerifier(tokens []string, publicURL *url.URL) *verifier {
	v := &verifier{publicURL: publicURL}
	for _, t := range tokens {
		if t != "" {
			v.validators = append(v.validators, client.NewRequestValidator(t))
		}
	}
	return v
}

// calledURL is the URL Twilio signed: the public URL it was configured
// with, which a proxy or load balancer in front of ingest may have
// rewritten before the request got here.
func (v *verifier) calledURL(r *http.Request) string {
	u := url.URL{Scheme: "http", Host: r.Host, Path: r.URL.Path, RawQuery: r.URL.RawQuery}
	if r.TLS != nil {
		u.Scheme = "https"
	}
	if v.publicURL != nil {
		u.Scheme, u.Host = v.publicURL.Scheme, v.publicURL.Host
		u.Path = strings.TrimSuffix(v.publicURL.Path, "/") + r.URL.Path
	}
	return u.String()
}

// verify reports whether the request carries a valid signature of body.
// Form bodies are signed over the URL and the sorted POST parameters;
// JSON bodies over the URL alone, which carries the body's SHA-256 in
// bodySHA256.
func (v *verifier) verify(r *http.Request, body []byte, form url.Values) bool {
	sig := r.Header.Get(SignatureHeader)
	if sig == "" {
		return false
	}
	u := v.calledURL(r)
	for i := range v.validators {
		ok := false
		if form != nil {
			params := make(map[string]string, len(form))
			for k, vals := range form {
				params[k] = vals[0]
			}
			ok = v.validators[i].Validate(u, params, sig)
		} else {
			ok = v.validators[i].ValidateBody(u, body, sig)
		}
		if ok {
			return true
		}
	}
	return false
}
