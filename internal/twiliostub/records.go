package twiliostub

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Violation is a request that real Twilio would not accept as the spec
// describes it — or a response of the stub that does not match the spec
// (Err then starts with "stub response").
type Violation struct {
	Method    string
	Path      string
	Operation string // operation ID, empty when no operation matched
	Err       string
}

func (v Violation) String() string {
	op := v.Operation
	if op == "" {
		op = "no operation"
	}
	return fmt.Sprintf("%s %s (%s): %s", v.Method, v.Path, op, v.Err)
}

// Call is one request the stub received, whatever it answered.
type Call struct {
	Time      time.Time
	Method    string
	Host      string // X-Forwarded-Host, else Host
	Path      string
	Operation string     // operation ID, empty when no operation matched
	Form      url.Values // query parameters and form body fields together
	Header    http.Header
	Status    int // status answered; 0 when the client went away first
}

// TB is the part of testing.TB RequireNoViolations needs; *testing.T fits.
type TB interface {
	Helper()
	Errorf(format string, args ...any)
}

// RequireNoViolations fails t, listing every violation, if the stub saw any.
func (s *Server) RequireNoViolations(t TB) {
	t.Helper()
	vs := s.Violations()
	if len(vs) == 0 {
		return
	}
	lines := make([]string, len(vs))
	for i, v := range vs {
		lines[i] = "  " + v.String()
	}
	t.Errorf("twiliostub: %d request(s) do not match Twilio's API:\n%s", len(vs), strings.Join(lines, "\n"))
}

// Violations returns every violation so far, oldest first.
func (s *Server) Violations() []Violation {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Violation(nil), s.violations...)
}

// Calls returns every request so far, oldest first.
func (s *Server) Calls() []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Call, len(s.calls))
	for i, c := range s.calls {
		c.Form = cloneValues(c.Form)
		c.Header = c.Header.Clone()
		out[i] = c
	}
	return out
}

// CallsTo counts the requests routed to an operation, whatever the answer.
func (s *Server) CallsTo(operationID string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, c := range s.calls {
		if c.Operation == operationID {
			n++
		}
	}
	return n
}

// TaskAPICalls counts requests to TaskRouter's Task resource
// (/v1/Workspaces/{WorkspaceSid}/Tasks...), valid or not. The product must
// never make one (rule R2): it changes tasks only through Flex Interactions.
func (s *Server) TaskAPICalls() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.taskAPICalls
}

// Unhandled counts valid requests to operations the stub has no fake for;
// they were answered 501.
func (s *Server) Unhandled() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.unhandled
}

func cloneValues(v url.Values) url.Values {
	if v == nil {
		return nil
	}
	out := make(url.Values, len(v))
	for k, vs := range v {
		out[k] = append([]string(nil), vs...)
	}
	return out
}
