package twiliostub

import (
	"net/http"
	"time"
)

// fault is one injected failure of one call.
type fault struct {
	status     int
	retryAfter string
}

// FailNext makes the next n calls of an operation answer status (429, 503,
// 412, 500...) with a Twilio error body, and a Retry-After header when
// retryAfter is not empty, without applying the operation's effect. Calls
// to FailNext add up. The request is still checked against the spec first.
func (s *Server) FailNext(operationID string, n int, status int, retryAfter string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for range n {
		s.failNext[operationID] = append(s.failNext[operationID], fault{status: status, retryAfter: retryAfter})
	}
}

// FailAfterEffect makes the next n successful calls of an operation apply
// their effect and then answer status with a Twilio error body: Twilio acted
// but the caller never learnt it, as when the response is lost.
func (s *Server) FailAfterEffect(operationID string, n int, status int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for range n {
		s.failAfter[operationID] = append(s.failAfter[operationID], fault{status: status})
	}
}

// Delay holds every later call of an operation for d before handling it
// (after the spec check). If the caller gives up, or the stub is closed,
// during the delay, the connection is dropped unanswered and the effect is
// not applied. d <= 0 removes the delay.
func (s *Server) Delay(operationID string, d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if d <= 0 {
		delete(s.delays, operationID)
		return
	}
	s.delays[operationID] = d
}

// takeFault pops the next injected failure of an operation; s.mu is held.
func takeFault(queue map[string][]fault, operationID string) (fault, bool) {
	q := queue[operationID]
	if len(q) == 0 {
		return fault{}, false
	}
	if len(q) == 1 {
		delete(queue, operationID)
	} else {
		queue[operationID] = q[1:]
	}
	return q[0], true
}

func faultReply(operationID string, f fault) reply {
	rep := errorReply(f.status, "twiliostub: injected failure of %s (%d %s)", operationID, f.status, http.StatusText(f.status))
	if f.retryAfter != "" {
		rep.header = http.Header{"Retry-After": {f.retryAfter}}
	}
	return rep
}
