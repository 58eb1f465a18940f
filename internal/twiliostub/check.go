package twiliostub

import (
	"bytes"
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strings"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
)

// check validates a routed request against its operation: openapi3filter
// for what the spec says (path, query and header parameters, the form body's
// fields, types, patterns, enums, required fields, basic auth), then the
// stub's own checks for what the spec cannot say (strictChecks). It returns
// the validation input (for the response check), the problems found, and
// whether authentication failed among them.
func (s *Server) check(q *request, body []byte) (*openapi3filter.RequestValidationInput, []string, bool) {
	r := q.r
	r.Body = io.NopCloser(bytes.NewReader(body))
	r.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
	r.ContentLength = int64(len(body))
	in := &openapi3filter.RequestValidationInput{
		Request:    r,
		PathParams: q.params,
		Route:      q.route,
		Options: &openapi3filter.Options{
			AuthenticationFunc: s.authenticate,
			MultiError:         true,
			// The request must reach the fakes as sent.
			SkipSettingDefaults: true,
			// Values stay out of errors: they carry customers' messages.
			SchemaValidationOptions: []openapi3.SchemaValidationOption{openapi3.DisableSchemaErrorDetails()},
		},
	}
	var problems []string
	unauthenticated := false
	if err := openapi3filter.ValidateRequest(r.Context(), in); err != nil {
		var secErr *openapi3filter.SecurityRequirementsError
		unauthenticated = errors.As(err, &secErr)
		problems = append(problems, flatten(err)...)
	}
	problems = append(problems, strictChecks(q)...)
	return in, problems, unauthenticated
}

// authenticate is openapi3filter's check of the specs' only security scheme,
// HTTP basic (account SID and auth token). Any non-empty pair passes unless
// WithCredentials named one.
func (s *Server) authenticate(_ context.Context, in *openapi3filter.AuthenticationInput) error {
	if sc := in.SecurityScheme; sc == nil || sc.Type != "http" || !strings.EqualFold(sc.Scheme, "basic") {
		return fmt.Errorf("security scheme %q is not HTTP basic", in.SecuritySchemeName)
	}
	user, pass, ok := in.RequestValidationInput.Request.BasicAuth()
	if !ok || user == "" || pass == "" {
		return errors.New("no HTTP basic credentials")
	}
	if s.checkCreds && (subtle.ConstantTimeCompare([]byte(user), []byte(s.accountSid)) != 1 ||
		subtle.ConstantTimeCompare([]byte(pass), []byte(s.authToken)) != 1) {
		return errors.New("HTTP basic credentials are not the configured account SID and auth token")
	}
	return nil
}

// strictChecks are checks beyond the spec, each for a mistake the spec's
// schemas let through but that would make the call go wrong against Twilio.
func strictChecks(q *request) []string {
	var problems []string
	// Twilio's schemas do not forbid extra fields and openapi3filter
	// ignores them, as Twilio does; but twilio-go only ever sends declared
	// ones, so an undeclared one is a misspelling ("status" for "Status",
	// "Routing.status" for Routing) whose effect Twilio would silently drop.
	for _, k := range sortedKeys(q.query) {
		if !q.info.queryParams[k] {
			problems = append(problems, fmt.Sprintf("unknown query parameter %q", k))
		}
	}
	for _, k := range sortedKeys(q.form) {
		if !q.info.formFields[k] {
			problems = append(problems, fmt.Sprintf("unknown form field %q", k))
		}
	}
	// Fields the spec leaves untyped are typed string when loading (see
	// describe); what Twilio wants in them is a JSON object, which is how
	// twilio-go encodes its map parameters.
	for _, k := range q.info.jsonFields {
		for _, v := range q.form[k] {
			var obj map[string]any
			if err := json.Unmarshal([]byte(v), &obj); err != nil || obj == nil {
				problems = append(problems, fmt.Sprintf("form field %q is not a JSON object", k))
			}
		}
	}
	return problems
}

// flatten lists the separate problems in a validation error.
func flatten(err error) []string {
	// Only a top-level MultiError is split: one nested in a RequestError
	// keeps the request error's context ("parameter X", "request body").
	if me, ok := err.(openapi3.MultiError); ok {
		var out []string
		for _, e := range me {
			out = append(out, flatten(e)...)
		}
		return out
	}
	return []string{err.Error()}
}

func joinProblems(ps []string) string { return strings.Join(ps, "; ") }

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

var taskPath = regexp.MustCompile(`^/v1/Workspaces/[^/]+/Tasks(/|$)`)

// isTaskAPI says whether a request is for TaskRouter's Task resource or
// below it (reservations). a is nil when the request matched no spec.
func isTaskAPI(a *api, path string) bool {
	return (a == nil || a.name == "taskrouter") && taskPath.MatchString(path)
}
