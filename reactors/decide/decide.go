package decide

import (
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/flexstream/flexstream/projector/domain"
	"github.com/flexstream/flexstream/projector/fold"
	"github.com/flexstream/flexstream/reactors/policy"
)

// Window is how long after the customer's last message WhatsApp and
// Messenger accept free-form messages.
const Window = 24 * time.Hour

// windowed are the channel types with a free-form messaging window.
var windowed = map[string]string{"whatsapp": "WhatsApp", "messenger": "Messenger"}

// Decide computes the plan for a trigger: what to do about a task that
// ended without serving its customer. It is a pure, deterministic
// function of its arguments (p nil: the built-in policy).
//
// Guards come first, in this order, each a plan with no actions and a
// Skip: no conversation; conversation closed; the trigger's task not
// ended (SkipNotTargeted for a rejected reservation of an invite that
// named no worker, SkipTaskLive otherwise) or served (wrapping,
// completed); another task of the conversation live; an agent in the
// conversation; the trigger older than now − deadline; no rule matching.
// Otherwise the first matching rule's actions, less those that cannot be
// carried out (a free-form message outside WhatsApp's 24-hour window, a
// re-invite or close with no interaction channel known), each noted in
// the Reason.
func Decide(t Trigger, s State, p *policy.Policy, now time.Time) Plan {
	if p == nil {
		p = policy.Shared()
	}
	kind, cause := KindOf(t, s)
	attrs := s.TaskAttributes[t.TaskSid]
	d := &decision{t: t, s: s, p: p, now: now, kind: kind, cause: cause, tv: s.Tasks[t.TaskSid], attempts: Attempt(attrs)}
	d.plan = Plan{Kind: kind, Cause: cause, Attempt: d.attempts, Deadline: t.At.Add(p.DeadlineOf(nil))}
	d.what = d.describe()

	if s.Conversation.Sid == "" {
		return d.skip(SkipNoConversation, "the task names no conversation")
	}
	if s.Conversation.State == fold.StateClosed {
		return d.skip(SkipClosed, "conversation "+s.Conversation.Sid+" is closed")
	}
	switch st := taskStatus(t.TaskSid, s); {
	case st == "" || fold.Live(st):
		how := "is still " + st
		if st == "" {
			how = "has no known status"
		}
		if t.EventType == domain.ReservationRejected && Targeted(attrs) == "" {
			return d.skip(SkipNotTargeted, "a reservation was rejected on an invite that named no worker, and the task "+how)
		}
		return d.skip(SkipTaskLive, "the task "+how)
	case st == fold.TaskWrapping || st == fold.TaskCompleted:
		return d.skip(SkipServed, "the task was served ("+st+")")
	}
	if sid, st := d.otherLiveTask(); sid != "" {
		if st == "" {
			st = "status unknown"
		}
		return d.skip(SkipLiveTask, fmt.Sprintf("task %s of the conversation is live (%s)", sid, st))
	}
	if s.Conversation.AgentPresent {
		return d.skip(SkipAgentPresent, "an agent is in the conversation")
	}

	var rule *policy.Rule
	rules := p.Rules(kind)
	for i := range rules {
		if d.matches(&rules[i]) {
			rule = &rules[i]
			break
		}
	}
	deadline := t.At.Add(p.DeadlineOf(rule))
	d.plan.Deadline = deadline
	if t.At.Before(now.Add(-p.DeadlineOf(rule))) {
		return d.skip(SkipExpired, fmt.Sprintf("the trigger (%s) is past its deadline (%s)", t.At.UTC().Format(time.RFC3339), deadline.UTC().Format(time.RFC3339)))
	}
	if rule == nil {
		return d.skip(SkipNoRule, fmt.Sprintf("no %s rule matched (%d tried)", kind, len(rules)))
	}
	d.plan.Rule = kind + "/" + rule.Name
	return d.act(rule)
}

type decision struct {
	t        Trigger
	s        State
	p        *policy.Policy
	now      time.Time
	kind     string
	cause    string
	tv       fold.TaskView
	attempts int
	what     string // the trigger, described
	plan     Plan
}

func (d *decision) skip(code, why string) Plan {
	d.plan.Skip, d.plan.Reason = code, d.what+"; "+why
	return d.plan
}

// describe says what happened to the trigger's task (SIDs and codes only: no PII).
func (d *decision) describe() string {
	task := d.t.TaskSid
	if task == "" {
		task = "(unknown)"
	}
	switch d.kind {
	case KindWorkflowTimeout:
		q := d.tv.Queue.Sid
		if q == "" && d.tv.Queue.Name != "" {
			q = fmt.Sprintf("%q", d.tv.Queue.Name)
		}
		if q == "" {
			return "task " + task + ": workflow timed out"
		}
		return "task " + task + ": workflow timed out in queue " + q
	case KindTaskDeleted:
		return "task " + task + ": deleted"
	case KindReservationRejected:
		return "task " + task + ": targeted worker " + Targeted(d.s.TaskAttributes[d.t.TaskSid]) + " declined"
	}
	return "task " + task + ": canceled (" + d.cause + ")"
}

// otherLiveTask is the first (by SID) other task of the conversation that
// is live or of unknown status.
func (d *decision) otherLiveTask() (sid, status string) {
	var sids []string
	for k := range d.s.Tasks {
		sids = append(sids, k)
	}
	for k := range d.s.Conversation.Tasks {
		sids = append(sids, k)
	}
	slices.Sort(sids)
	for _, k := range slices.Compact(sids) {
		if k == d.t.TaskSid {
			continue
		}
		if st := taskStatus(k, d.s); st == "" || fold.Live(st) {
			return k, st
		}
	}
	return "", ""
}

// channelType is the conversation's channel type, lower case ("" unknown).
func (d *decision) channelType() string {
	if ct := d.s.Conversation.ChannelType; ct != "" {
		return strings.ToLower(ct)
	}
	ct := ""
	for _, p := range d.s.Conversation.Participants {
		if p.Role == domain.RoleCustomer && p.ChannelType > ct {
			ct = p.ChannelType
		}
	}
	return strings.ToLower(ct)
}

var regexps sync.Map // pattern → *regexp.Regexp (nil: invalid)

func compiled(pattern string) *regexp.Regexp {
	if re, ok := regexps.Load(pattern); ok {
		return re.(*regexp.Regexp)
	}
	re, err := regexp.Compile(pattern)
	if err != nil {
		re = nil
	}
	regexps.Store(pattern, re)
	return re
}

func anyFold(list []string, values ...string) bool {
	for _, x := range list {
		for _, v := range values {
			if v != "" && strings.EqualFold(x, v) {
				return true
			}
		}
	}
	return false
}

// matches reports whether all of a rule's conditions hold.
func (d *decision) matches(r *policy.Rule) bool {
	w := &r.When
	if len(w.ChannelType) > 0 && !anyFold(w.ChannelType, d.channelType()) {
		return false
	}
	if len(w.TaskQueue) > 0 && !anyFold(w.TaskQueue, d.tv.Queue.Sid, d.tv.Queue.Name) {
		return false
	}
	if len(w.Workflow) > 0 && !anyFold(w.Workflow, d.tv.Workflow.Sid, d.tv.Workflow.Name) {
		return false
	}
	if len(w.CancelReason) > 0 {
		reason := cancelReason(d.t, d.s)
		if !slices.ContainsFunc(w.CancelReason, func(p string) bool {
			re := compiled(p)
			return re != nil && re.MatchString(reason)
		}) {
			return false
		}
	}
	if len(w.Cause) > 0 && !slices.Contains(w.Cause, d.cause) {
		return false
	}
	if w.AttemptsAtLeast != nil && d.attempts < *w.AttemptsAtLeast {
		return false
	}
	if limit, ok := d.p.AttemptLimit(r); ok && d.attempts >= limit {
		return false
	}
	return true
}

// act builds the rule's actions.
func (d *decision) act(r *policy.Rule) Plan {
	s := &d.s
	interaction, channel := s.Conversation.InteractionSid, s.Conversation.ChannelSid
	if interaction == "" {
		interaction = d.tv.InteractionSid
	}
	if channel == "" {
		channel = d.tv.ChannelSid
	}
	var done, notes []string
	noChannel := false
	missing := func() string {
		var m []string
		if interaction == "" {
			m = append(m, "interaction")
		}
		if channel == "" {
			m = append(m, "interaction channel")
		}
		return strings.Join(m, " and ")
	}
	for _, a := range r.Actions {
		switch {
		case a.Message != nil:
			act, note := d.message(a.Message)
			if note != "" {
				notes = append(notes, note)
			}
			if act == nil {
				continue
			}
			d.plan.Actions = append(d.plan.Actions, *act)
			if act.ContentSid != "" {
				done = append(done, "template "+act.ContentSid)
			} else {
				done = append(done, "message")
			}
		case a.Reinvite != nil:
			if interaction == "" || channel == "" {
				noChannel = true
				notes = append(notes, "re-invite dropped: no "+missing()+" SID known")
				continue
			}
			wf := a.Reinvite.Workflow
			if wf == "" {
				wf = d.p.FallbackWorkflow
			}
			if wf == "" {
				wf = d.tv.Workflow.Sid
			}
			if wf == "" {
				notes = append(notes, "re-invite dropped: no workflow known (set the rule's reinvite.workflow or fallback_workflow)")
				continue
			}
			act := Action{Kind: ActReinvite, InteractionSid: interaction, ChannelSid: channel, WorkflowSid: wf,
				TaskChannel: d.tv.TaskChannel, Attempt: d.attempts + 1}
			desc := fmt.Sprintf("re-invite %d", act.Attempt)
			if limit, ok := d.p.AttemptLimit(r); ok {
				desc += fmt.Sprintf(" of %d", limit)
			}
			desc += " through " + wf
			if a.Reinvite.KnownAgent {
				if s.KnownAgent != "" {
					act.WorkerSid = s.KnownAgent
					desc += " to known agent " + s.KnownAgent
				} else {
					notes = append(notes, "no known agent: re-inviting through the workflow alone")
				}
			}
			d.plan.Actions = append(d.plan.Actions, act)
			done = append(done, desc)
		case a.Close != nil:
			if interaction == "" || channel == "" {
				noChannel = true
				notes = append(notes, "close dropped: no "+missing()+" SID known")
				continue
			}
			d.plan.Actions = append(d.plan.Actions, Action{Kind: ActClose, InteractionSid: interaction, ChannelSid: channel})
			done = append(done, "close")
		}
	}
	reason := d.what + "; rule " + d.plan.Rule + ": "
	if len(done) == 0 {
		reason += "nothing left to do"
	} else {
		reason += strings.Join(done, ", ")
	}
	if len(notes) > 0 {
		reason += "; " + strings.Join(notes, "; ")
	}
	d.plan.Reason = reason
	if len(d.plan.Actions) == 0 {
		d.plan.Skip = SkipNoAction
		if noChannel {
			d.plan.Skip = SkipNoConversation
		}
	}
	return d.plan
}

// message builds a message action, or drops it (nil) with a note.
func (d *decision) message(m *policy.Message) (*Action, string) {
	act := &Action{Kind: ActMessage, ChatServiceSid: d.s.ChatServiceSid, ConversationSid: d.s.Conversation.Sid}
	free, note := true, ""
	if name, ok := windowed[d.channelType()]; ok {
		last := d.s.LastCustomerMessage
		if last.IsZero() || last.Before(d.now.Add(-Window)) {
			free = false
			when := "no message of the customer is known"
			if !last.IsZero() {
				when = "the customer's last message was " + d.now.Sub(last).Truncate(time.Minute).String() + " ago"
			}
			note = fmt.Sprintf("outside %s's 24-hour window (%s)", name, when)
		}
	}
	switch {
	case m.Text != "" && free:
		act.Body = m.Text
		return act, ""
	case m.ContentSid != "":
		act.ContentSid = m.ContentSid
		if len(m.ContentVariables) > 0 {
			b, err := json.Marshal(m.ContentVariables) // keys sorted: deterministic
			if err == nil {
				act.ContentVariables = string(b)
			}
		}
		if note != "" {
			note = "template sent: " + note
		}
		return act, note
	}
	if note == "" {
		note = "it has no text or content_sid"
	}
	return nil, "message dropped: " + note
}
