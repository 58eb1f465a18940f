package decide

import (
	"bytes"
	"encoding/json"
	"math"
	"regexp"
	"strings"
	"time"

	"github.com/flexstream/flexstream/projector/domain"
	"github.com/flexstream/flexstream/projector/fold"
)

// StoredEvent is one event of a stream as the engine reads it: its store
// id, its type and its decoded data.
type StoredEvent struct {
	ID    string
	Type  string
	Event domain.Event
}

// StateFrom folds a stream's events into the State decisions are made
// from. Like the folds it uses, it is order-independent: any order of the
// same events (and any repetition) gives the same State.
func StateFrom(events []StoredEvent) State {
	var s State
	views := map[string]*fold.TaskView{}
	attrAt := map[string]time.Time{}
	authorAt := map[string]time.Time{} // latest MessageAdded per author
	for _, se := range events {
		e := se.Event
		if se.Type != "" {
			e.Type = se.Type
		}
		at := e.At.UTC()
		s.Conversation.Apply(e, se.ID)
		if e.ChatServiceSid > s.ChatServiceSid {
			s.ChatServiceSid = e.ChatServiceSid
		}
		if e.Type == domain.MessageAdded && e.Author != "" {
			if cur, ok := authorAt[e.Author]; !ok || at.After(cur) {
				authorAt[e.Author] = at
			}
		}
		if e.TaskSid == "" {
			continue
		}
		tv := views[e.TaskSid]
		if tv == nil {
			tv = &fold.TaskView{}
		}
		if tv.Apply(e, se.ID) {
			views[e.TaskSid] = tv
		}
		if _, ok := views[e.TaskSid]; !ok {
			continue // not a task or reservation event
		}
		if a := bytes.TrimSpace(e.TaskAttributes); len(a) > 0 && !bytes.Equal(a, []byte("null")) {
			cur, ok := s.TaskAttributes[e.TaskSid]
			curAt := attrAt[e.TaskSid]
			if !ok || at.After(curAt) || at.Equal(curAt) && bytes.Compare(a, cur) > 0 {
				if s.TaskAttributes == nil {
					s.TaskAttributes = map[string][]byte{}
				}
				s.TaskAttributes[e.TaskSid], attrAt[e.TaskSid] = bytes.Clone(a), at
			}
		}
	}
	if len(views) > 0 {
		s.Tasks = make(map[string]fold.TaskView, len(views))
		for sid, tv := range views {
			s.Tasks[sid] = *tv
		}
	}
	for _, p := range s.Conversation.Participants {
		if p.Role != domain.RoleCustomer {
			continue
		}
		for _, who := range []string{p.Address, p.Identity} {
			if at, ok := authorAt[who]; ok && who != "" && at.After(s.LastCustomerMessage) {
				s.LastCustomerMessage = at
			}
		}
	}
	s.KnownAgent = knownAgent(s.Tasks)
	return s
}

// knownAgent is the worker of the latest accepted reservation (by the
// time it was decided, ties by reservation SID).
func knownAgent(tasks map[string]fold.TaskView) string {
	var best struct {
		at       time.Time
		sid, wk  string
		assigned bool
	}
	for _, tv := range tasks {
		for rs, r := range tv.Reservations {
			switch r.Outcome {
			case fold.OutcomeAccepted, fold.OutcomeWrapup, fold.OutcomeCompleted:
			default:
				continue
			}
			if r.WorkerSid == "" {
				continue
			}
			at := r.DecidedAt
			if at.IsZero() {
				at = r.CreatedAt
			}
			if !best.assigned || at.After(best.at) || at.Equal(best.at) && rs > best.sid {
				best.at, best.sid, best.wk, best.assigned = at, rs, r.WorkerSid, true
			}
		}
	}
	return best.wk
}

// attributes reads the top level of task attributes (nil if they are not
// a JSON object).
func attributes(attrs []byte) map[string]json.RawMessage {
	var m map[string]json.RawMessage
	if json.Unmarshal(attrs, &m) != nil {
		return nil
	}
	return m
}

// ours is the "flexstream" object the product writes into the attributes
// of the tasks its re-invites create.
func ours(m map[string]json.RawMessage) map[string]json.RawMessage {
	raw, ok := m["flexstream"]
	if !ok {
		return nil
	}
	return attributes(raw)
}

func str(raw json.RawMessage) string {
	var s string
	if json.Unmarshal(raw, &s) != nil {
		return ""
	}
	return strings.TrimSpace(s)
}

// Targeted is the worker an invite named (known-agent routing), read from
// the task's attributes: flexstream.worker_sid (the product's own
// re-invites), known_agent_worker_sid or worker_sid; "" when none. Task
// attributes are customer data: anything malformed reads as "none".
func Targeted(attrs []byte) string {
	m := attributes(attrs)
	if m == nil {
		return ""
	}
	if w := str(ours(m)["worker_sid"]); w != "" {
		return w
	}
	if w := str(m["known_agent_worker_sid"]); w != "" {
		return w
	}
	return str(m["worker_sid"])
}

// Attempt is the re-invite attempt the task was created by
// (flexstream.attempt in its attributes): the number of re-invites made
// for the conversation before it. 0 when absent or malformed.
func Attempt(attrs []byte) int {
	raw, ok := ours(attributes(attrs))["attempt"]
	if !ok {
		return 0
	}
	var f float64
	if json.Unmarshal(raw, &f) != nil || f < 0 || f > 1e6 || f != math.Trunc(f) {
		return 0
	}
	return int(f)
}

// timeoutReasonRe recognises a cancel reason that says the workflow timed out.
var timeoutReasonRe = regexp.MustCompile(`(?i)workflow[\s_.-]*(time[\s_-]*out|timed[\s_-]*out)`)

// cancelReason is the trigger task's cancel reason, from its view or the
// conversation's link to it.
func cancelReason(t Trigger, s State) string {
	if r := s.Tasks[t.TaskSid].CanceledReason; r != "" {
		return r
	}
	return s.Conversation.Tasks[t.TaskSid].CanceledReason
}

// taskStatus is the trigger task's status ("" when unknown).
func taskStatus(sid string, s State) string {
	if st := s.Tasks[sid].Status; st != "" {
		return st
	}
	return s.Conversation.Tasks[sid].Status
}

// KindOf classifies the end of the trigger's task from its whole state,
// whichever of its events arrived first:
//
//   - reservation.rejected: the worker its invite named (Targeted)
//     rejected a reservation of it;
//   - else workflow.timeout: its workflow timed out (or its cancel reason
//     says so);
//   - else task.deleted: it was deleted;
//   - else task.canceled, with a cause: other when a reservation of it
//     was accepted (an agent had it), declined-known-agent when its invite
//     named a worker and a reservation was rejected or timed out,
//     failed-create otherwise (it never reached an agent: R4).
func KindOf(t Trigger, s State) (kind, cause string) {
	tv := s.Tasks[t.TaskSid]
	target := Targeted(s.TaskAttributes[t.TaskSid])
	accepted := !tv.AcceptedAt.IsZero() || s.Conversation.Tasks[t.TaskSid].Accepted
	declined, rejectedByTarget := false, false
	for _, r := range tv.Reservations {
		switch r.Outcome {
		case fold.OutcomeAccepted, fold.OutcomeWrapup, fold.OutcomeCompleted:
			accepted = true
		case fold.OutcomeRejected:
			declined = true
			rejectedByTarget = rejectedByTarget || target != "" && r.WorkerSid == target
		case fold.OutcomeTimeout:
			declined = true
		}
	}
	switch {
	case rejectedByTarget:
		return KindReservationRejected, ""
	case tv.WorkflowTimedOut || t.EventType == domain.WorkflowTimedOut || timeoutReasonRe.MatchString(cancelReason(t, s)):
		return KindWorkflowTimeout, ""
	case taskStatus(t.TaskSid, s) == fold.TaskDeleted || t.EventType == domain.TaskDeleted:
		return KindTaskDeleted, ""
	case accepted:
		return KindTaskCanceled, CauseOther
	case target != "" && declined:
		return KindTaskCanceled, CauseDeclinedKnownAgent
	}
	return KindTaskCanceled, CauseFailedCreate
}
