package twiliostub

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"time"

	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"go.uber.org/zap"
)

// maxBody bounds a request body; Twilio's own limit is far lower for forms.
const maxBody = 1 << 20

// request is a request that matched an operation.
type request struct {
	r      *http.Request
	api    *api
	route  *routers.Route
	info   *opInfo
	params map[string]string // path parameters
	query  url.Values
	form   url.Values // the form body
	now    time.Time
}

func (q *request) op() string { return q.route.Operation.OperationID }

// reply is what the stub answers: a JSON body with a status.
type reply struct {
	status int
	header http.Header
	body   any
	// effect is what a successful call changed, for WithEffects.
	effect *Effect
	// violation is set when a fake rejects a request real Twilio would
	// reject for a reason the spec states only in prose (e.g. Routing must
	// be {"status":"closed"} when a channel goes inactive).
	violation string
}

func (rep reply) ok() bool { return rep.status >= 200 && rep.status < 300 }

// serve checks a request against the spec, then answers it from a fake.
// The order matters: a request Twilio would reject is rejected before any
// injected delay or fault, so a fault never hides a violation.
func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	call := Call{
		Time:   time.Now(),
		Method: r.Method,
		Host:   forwardedHost(r),
		Path:   r.URL.Path,
		Header: r.Header.Clone(),
	}
	call.Header.Del("Authorization") // no secrets in what tests print
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		s.reject(w, &call, errorReply(http.StatusBadRequest, "twiliostub: read body: %v", err))
		return
	}
	q := &request{r: r, query: r.URL.Query(), now: call.Time}
	if isForm(r) {
		if q.form, err = url.ParseQuery(string(body)); err != nil {
			s.reject(w, &call, errorReply(http.StatusBadRequest, "twiliostub: form body: %v", err))
			return
		}
	}
	call.Form = mergeValues(q.query, q.form)

	q.api, q.route, q.params, err = s.specs.pick(r)
	if isTaskAPI(q.api, r.URL.Path) {
		s.mu.Lock()
		s.taskAPICalls++
		s.mu.Unlock()
	}
	if err != nil {
		status := http.StatusNotFound
		if errors.Is(err, routers.ErrMethodNotAllowed) {
			status = http.StatusMethodNotAllowed
		}
		s.reject(w, &call, errorReply(status, "twiliostub: %s %s: %v", r.Method, r.URL.Path, err))
		return
	}
	q.info = q.api.ops[q.route.Operation]
	call.Operation = q.op()

	in, problems, unauthenticated := s.check(q, body)
	if len(problems) > 0 {
		status := http.StatusBadRequest
		if unauthenticated {
			status = http.StatusUnauthorized
		}
		s.reject(w, &call, errorReply(status, "twiliostub: %s", joinProblems(problems)))
		return
	}

	if !s.wait(r, q.op()) {
		s.record(call) // Status 0: no answer
		// Drop the connection rather than let net/http send an empty 200.
		panic(http.ErrAbortHandler)
	}
	rep, after := s.dispatch(q)
	if rep.violation != "" {
		s.violate(call, rep.violation)
	}
	if rep.ok() {
		if err := validateResponse(in, rep); err != nil {
			s.violate(call, "stub response: "+err.Error())
		}
	}
	if rep.effect != nil && s.onEffect != nil {
		// Before the answer: whoever models Twilio's consequences (a new
		// task, a closed conversation) has them before the caller can act
		// on the answer. A lost answer (FailAfterEffect) still had its
		// effect.
		s.onEffect(*rep.effect)
	}
	if after != nil {
		rep = faultReply(q.op(), *after)
	}
	s.answer(w, &call, rep)
}

// dispatch applies injected faults and the operation's fake. It returns the
// fake's reply and, for FailAfterEffect, the fault that replaces it.
func (s *Server) dispatch(q *request) (reply, *fault) {
	op := q.op()
	s.mu.Lock()
	defer s.mu.Unlock()
	if f, ok := takeFault(s.failNext, op); ok {
		return faultReply(op, f), nil
	}
	var rep reply
	switch h, ok := handlers[op]; {
	case ok && h.api == q.api.name:
		rep = h.fn(s, q)
	case isTaskAPI(q.api, q.r.URL.Path):
		rep = errorReply(http.StatusNotFound, "The requested resource %s was not found", q.r.URL.Path)
	default:
		s.unhandled++
		return errorReply(http.StatusNotImplemented, "twiliostub: %s is a valid operation the stub has no fake for", op), nil
	}
	if rep.ok() {
		if f, ok := takeFault(s.failAfter, op); ok {
			return rep, &f
		}
	}
	return rep, nil
}

// wait applies an injected delay; false if the caller or the stub went away.
func (s *Server) wait(r *http.Request, op string) bool {
	s.mu.Lock()
	d := s.delays[op]
	s.mu.Unlock()
	if d <= 0 {
		return true
	}
	s.mu.Lock()
	s.delayed++
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.delayed--
		s.mu.Unlock()
	}()
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-r.Context().Done():
	case <-s.closing:
	}
	return false
}

// reject answers a violation.
func (s *Server) reject(w http.ResponseWriter, call *Call, rep reply) {
	s.violate(*call, rep.body.(twilioError).Message)
	if rep.status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Basic realm="Twilio API"`)
	}
	s.answer(w, call, rep)
}

func (s *Server) violate(call Call, msg string) {
	v := Violation{Method: call.Method, Path: call.Path, Operation: call.Operation, Err: msg}
	s.mu.Lock()
	s.violations = append(s.violations, v)
	s.mu.Unlock()
	s.log.Warn("twiliostub: request does not match Twilio's API",
		zap.String("method", v.Method), zap.String("path", v.Path),
		zap.String("operation", v.Operation), zap.String("error", v.Err))
}

func (s *Server) answer(w http.ResponseWriter, call *Call, rep reply) {
	b, err := json.Marshal(rep.body)
	if err != nil { // a bug in a fake: say so rather than answer garbage
		rep = errorReply(http.StatusInternalServerError, "twiliostub: encode response: %v", err)
		b, _ = json.Marshal(rep.body)
	}
	for k, vs := range rep.header {
		w.Header()[k] = vs
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Twilio-Request-Id", newSid("RQ"))
	w.WriteHeader(rep.status)
	_, _ = w.Write(b)
	call.Status = rep.status
	s.record(*call)
}

func (s *Server) record(call Call) {
	s.mu.Lock()
	s.calls = append(s.calls, call)
	s.mu.Unlock()
	s.log.Debug("twiliostub: call",
		zap.String("method", call.Method), zap.String("host", call.Host), zap.String("path", call.Path),
		zap.String("operation", call.Operation), zap.Int("status", call.Status),
		zap.Duration("took", time.Since(call.Time)))
}

// validateResponse checks a fake's reply against the operation's documented
// response, so the fakes cannot drift from what Twilio answers.
func validateResponse(in *openapi3filter.RequestValidationInput, rep reply) error {
	b, err := json.Marshal(rep.body)
	if err != nil {
		return fmt.Errorf("encode: %w", err)
	}
	return openapi3filter.ValidateResponse(in.Request.Context(), &openapi3filter.ResponseValidationInput{
		RequestValidationInput: in,
		Status:                 rep.status,
		Header:                 http.Header{"Content-Type": {"application/json"}},
		Body:                   io.NopCloser(bytes.NewReader(b)),
		Options:                &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true},
	})
}

func forwardedHost(r *http.Request) string {
	if h := firstForwarded(r.Header.Get("X-Forwarded-Host")); h != "" {
		return h
	}
	return r.Host
}

func isForm(r *http.Request) bool {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	return err == nil && mt == "application/x-www-form-urlencoded"
}

func mergeValues(a, b url.Values) url.Values {
	out := cloneValues(a)
	if out == nil {
		out = url.Values{}
	}
	for k, vs := range b {
		out[k] = append(out[k], vs...)
	}
	return out
}
