package audit

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/flexstream/flexstream/projector/domain"
	"github.com/flexstream/flexstream/reactors/act"
	"github.com/flexstream/flexstream/reactors/decide"
	"github.com/flexstream/flexstream/reactors/engine"
	"github.com/flexstream/flexstream/schemas"
)

// phrase builds a line from the parts that are known.
type phrase []string

func (p *phrase) add(format string, args ...any) {
	for _, a := range args {
		if s, ok := a.(string); ok && s == "" {
			return
		}
	}
	*p = append(*p, fmt.Sprintf(format, args...))
}

func (p phrase) String() string { return strings.Join(p, ", ") }

// shortType is Twilio's event type without its product prefix
// ("workflow.timeout").
func shortType(ceType string) string {
	for _, prefix := range []string{schemas.TypePrefixTaskRouter, schemas.TypePrefixConversations} {
		if s, ok := strings.CutPrefix(ceType, prefix); ok {
			return s
		}
	}
	return ceType
}

// named is `"name" (SID)`, or whichever is known.
func named(name, sid string) string {
	switch {
	case name != "" && sid != "":
		return strconv.Quote(name) + " (" + sid + ")"
	case name != "":
		return strconv.Quote(name)
	}
	return sid
}

// describeTwilio says what a domain event recorded. Every value comes
// from the stored event, which holds pseudonyms only.
func describeTwilio(e domain.Event) string {
	var p phrase
	switch e.Type {
	case domain.ConversationAdded, domain.ConversationUpdated:
		p.add("conversation %s", e.ConversationSid)
		p.add("state %s", e.State)
		p.add("service %s", e.ChatServiceSid)
		if e.HasTimers {
			p.add("inactive timer %s", e.TimerInactive)
			p.add("close timer %s", e.TimerClosed)
			if e.TimerClosed == "" {
				p.add("no close timer")
			}
		}
	case domain.ConversationStateChanged:
		switch {
		case e.StateFrom != "":
			p.add("state %s → %s", e.StateFrom, e.State)
		default:
			p.add("state → %s", e.State)
		}
		p.add("reason %s", e.Reason)
	case domain.ConversationRemoved:
		p.add("conversation %s removed", e.ConversationSid)
	case domain.ParticipantAdded, domain.ParticipantUpdated, domain.ParticipantRemoved:
		role := e.Role
		if role == "" {
			role = "participant"
		}
		p.add("%s %s", role, e.ParticipantSid)
		p.add("address %s", e.Address)
		if e.IdentityPII {
			p.add("identity %s (a phone number or e-mail address: pseudonymised)", e.Identity)
		} else {
			p.add("identity %s", e.Identity)
		}
		p.add("channel %s", e.ChannelType)
	case domain.MessageAdded, domain.MessageUpdated, domain.MessageRemoved:
		msg := fmt.Sprintf("message #%d", e.Index)
		if e.MessageSid != "" {
			msg += " " + e.MessageSid
		}
		p.add("%s", msg)
		p.add("by %s", e.Author)
		if e.BodyLength > 0 {
			p.add("%d characters", e.BodyLength)
		}
		if e.MediaCount > 0 {
			p.add("%d media", e.MediaCount)
		}
	case domain.DeliveryUpdated:
		p.add("message %s", e.MessageSid)
		p.add("%s", e.DeliveryStatus)
		p.add("error %s", e.ErrorCode)
	case domain.WorkflowTimedOut:
		p.add("task %s timed out", e.TaskSid)
		p.add("workflow %s", named(e.WorkflowName, e.WorkflowSid))
		p.add("queue %s", named(e.QueueName, e.QueueSid))
	case domain.TaskCreated, domain.TaskUpdated, domain.TaskQueueEntered, domain.TaskCanceled, domain.TaskDeleted,
		domain.TaskWrapup, domain.TaskCompleted, domain.TaskTransfer:
		p.add("task %s", e.TaskSid)
		p.add("status %s", e.AssignmentStatus)
		if e.CanceledReason != "" {
			p.add("reason %s", strconv.Quote(e.CanceledReason))
		}
		p.add("queue %s", named(e.QueueName, e.QueueSid))
		p.add("workflow %s", named(e.WorkflowName, e.WorkflowSid))
		if e.Type == domain.TaskCreated {
			p.add("channel %s", e.TaskChannel)
			p.add("interaction %s", e.InteractionSid)
			p.add("interaction channel %s", e.ChannelSid)
			p.add("%s", reinvited(e.TaskAttributes))
		}
	case domain.ReservationCreated, domain.ReservationAccepted, domain.ReservationRejected, domain.ReservationTimedOut,
		domain.ReservationCanceled, domain.ReservationRescinded, domain.ReservationWrapup, domain.ReservationCompleted:
		p.add("reservation %s", e.ReservationSid)
		p.add("worker %s", e.WorkerSid)
		p.add("task %s", e.TaskSid)
	default:
		p.add("task %s", e.TaskSid)
		p.add("reservation %s", e.ReservationSid)
		p.add("worker %s", e.WorkerSid)
		p.add("participant %s", e.ParticipantSid)
		p.add("message %s", e.MessageSid)
		p.add("state %s", e.State)
	}
	what := shortType(e.CEType)
	if what == "" {
		what = e.Type
	}
	if len(p) == 0 {
		return what
	}
	return what + ": " + p.String()
}

// reinvited describes the reactors' mark on a task they made by a
// re-invite ("" for a task they did not make).
func reinvited(attrs json.RawMessage) string {
	var a map[string]json.RawMessage
	if len(attrs) == 0 || json.Unmarshal(attrs, &a) != nil || a[act.MarkKey] == nil {
		return ""
	}
	var m act.Mark
	if json.Unmarshal(a[act.MarkKey], &m) != nil {
		return ""
	}
	s := "made by the reactors' re-invite"
	if m.Attempt > 0 {
		s += fmt.Sprintf(" (attempt %d)", m.Attempt)
	}
	if m.WorkerSid != "" {
		s += " to worker " + m.WorkerSid
	}
	return s
}

const maxQuoted = 60

// actionText says what a planned action does.
func actionText(a decide.Action) string {
	var p phrase
	switch a.Kind {
	case decide.ActMessage:
		switch {
		case a.ContentSid != "":
			p.add("message template %s", a.ContentSid)
		case a.Body != "":
			// The policy's text, not the customer's: no PII.
			body := []rune(a.Body)
			if len(body) > maxQuoted {
				body = append(body[:maxQuoted-1], '…')
			}
			p.add("message %s", strconv.Quote(string(body)))
		default:
			p.add("message")
		}
	case decide.ActReinvite:
		p.add("re-invite")
		p.add("through %s", a.WorkflowSid)
		p.add("to worker %s", a.WorkerSid)
		if a.Attempt > 0 {
			p.add("(attempt %d)", a.Attempt)
		}
	case decide.ActClose:
		p.add("close interaction channel %s", a.ChannelSid)
	default:
		p.add("%s", a.Kind)
	}
	return strings.Join(p, " ")
}

// describePlanned says what the reactor decided, and why.
func describePlanned(pl engine.Planned) string {
	var b strings.Builder
	if pl.DryRun {
		b.WriteString("[dry run] ")
	}
	kind := pl.Plan.Kind
	if pl.Plan.Cause != "" {
		kind += " (" + pl.Plan.Cause + ")"
	}
	fmt.Fprintf(&b, "decision on %s", kind)
	if pl.Trigger.EventType != "" {
		fmt.Fprintf(&b, ", trigger %s", pl.Trigger.EventType)
		if pl.Trigger.TaskSid != "" {
			fmt.Fprintf(&b, " of task %s", pl.Trigger.TaskSid)
		}
	}
	switch {
	case len(pl.Plan.Actions) == 0:
		skip := pl.Plan.Skip
		if skip == "" {
			skip = "no action"
		}
		fmt.Fprintf(&b, ": do nothing (%s)", skip)
		if pl.Plan.Rule != "" {
			fmt.Fprintf(&b, " under rule %s", pl.Plan.Rule)
		}
	default:
		rule := pl.Plan.Rule
		if rule == "" {
			rule = "(none recorded)"
		}
		fmt.Fprintf(&b, ": rule %s →", rule)
		for i, a := range pl.Plan.Actions {
			if i > 0 {
				b.WriteString(";")
			}
			fmt.Fprintf(&b, " %d. %s", i+1, actionText(a))
		}
		if !pl.Plan.Deadline.IsZero() {
			fmt.Fprintf(&b, "; deadline %s", stamp(pl.Plan.Deadline))
		}
	}
	if pl.Plan.Reason != "" {
		fmt.Fprintf(&b, "; why: %s", pl.Plan.Reason)
	}
	return b.String()
}

// describeStep says what happened to one action (or the reaction).
func describeStep(typ string, s engine.Step, pl *engine.Planned) string {
	var b strings.Builder
	switch typ {
	case engine.EvCompleted, engine.EvAbandoned:
		if typ == engine.EvCompleted {
			b.WriteString("reaction completed")
		} else {
			b.WriteString("reaction abandoned")
		}
		if s.DryRun {
			b.WriteString(" (dry run: nothing called)")
		}
		if s.Reason != "" {
			b.WriteString(": " + s.Reason)
		}
		return b.String()
	}
	var a *decide.Action
	if pl != nil && s.Action >= 0 && s.Action < len(pl.Plan.Actions) {
		a = &pl.Plan.Actions[s.Action]
		fmt.Fprintf(&b, "action %d/%d %s: ", s.Action+1, len(pl.Plan.Actions), a.Kind)
	} else {
		fmt.Fprintf(&b, "action %d: ", s.Action+1)
	}
	attempt := ""
	if s.Attempt > 0 {
		attempt = fmt.Sprintf("attempt %d ", s.Attempt)
	}
	switch typ {
	case engine.EvStarted:
		b.WriteString(attempt + "started")
		if s.Owner != "" {
			b.WriteString(" by " + s.Owner)
		}
	case engine.EvSucceeded:
		b.WriteString(succeeded(a, s.Result))
		if s.Reconciled {
			b.WriteString(" (reconciled: an earlier attempt had done it)")
		}
	case engine.EvFailed:
		b.WriteString(attempt + "failed: ")
		if s.Status != 0 {
			fmt.Fprintf(&b, "HTTP %d", s.Status)
		} else {
			b.WriteString("no answer")
		}
		if s.RetryAfter > 0 {
			fmt.Fprintf(&b, ", Retry-After %s", s.RetryAfter.Round(time.Millisecond))
		}
		if s.Error != "" {
			b.WriteString(": " + s.Error)
		}
	case engine.EvSkipped:
		b.WriteString("skipped")
		if s.Reason != "" {
			b.WriteString(": " + s.Reason)
		}
	default:
		b.WriteString(typ)
	}
	return b.String()
}

// succeeded names what a successful action made in Twilio.
func succeeded(a *decide.Action, res *act.Result) string {
	var r act.Result
	if res != nil {
		r = *res
	}
	kind := ""
	if a != nil {
		kind = a.Kind
	}
	switch kind {
	case decide.ActMessage:
		if r.Sid != "" {
			return "message " + r.Sid + " sent"
		}
		return "message sent"
	case decide.ActReinvite:
		var p phrase
		p.add("invite %s made", r.Sid)
		p.add("new task %s", r.TaskSid)
		if len(p) == 0 {
			return "re-invited"
		}
		return p.String()
	case decide.ActClose:
		if a.ChannelSid != "" {
			return "interaction channel " + a.ChannelSid + " closed"
		}
		return "interaction channel closed"
	}
	var p phrase
	p.add("made %s", r.Sid)
	p.add("new task %s", r.TaskSid)
	if len(p) == 0 {
		return "done"
	}
	return "done: " + p.String()
}

// stamp is the audit's time format: RFC 3339, milliseconds, UTC.
func stamp(t time.Time) string { return t.UTC().Format(TimeFormat) }

// TimeFormat is how times are printed: RFC 3339 with milliseconds, in UTC.
const TimeFormat = "2006-01-02T15:04:05.000Z07:00"
