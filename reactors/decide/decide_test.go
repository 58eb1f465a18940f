package decide

import (
	"encoding/json"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/flexstream/flexstream/projector/domain"
	"github.com/flexstream/flexstream/projector/fold"
	"github.com/flexstream/flexstream/reactors/policy"
)

// Texts of the default policy.
const (
	stillLooking  = "We're still looking for an agent for you. Thanks for waiting."
	sorryNoAgent  = "Sorry, no agent is available right now. Please write to us again later."
	sorryCouldNot = "Sorry, we could not connect you with an agent. Please write to us again later."
)

func mustPolicy(t testing.TB, src string) *policy.Policy {
	t.Helper()
	p, err := policy.Parse([]byte(src))
	if err != nil {
		t.Fatalf("policy: %v\n%s", err, src)
	}
	return p
}

func body(w *world, text string) Action {
	return Action{Kind: ActMessage, ChatServiceSid: chatService, ConversationSid: w.conv(), Body: text}
}

func template(w *world, content, vars string) Action {
	return Action{Kind: ActMessage, ChatServiceSid: chatService, ConversationSid: w.conv(), ContentSid: content, ContentVariables: vars}
}

func reinvite(w *world, wf, worker string, attempt int) Action {
	return Action{Kind: ActReinvite, InteractionSid: w.interaction(), ChannelSid: w.channel(), WorkflowSid: wf, WorkerSid: worker, TaskChannel: "chat", Attempt: attempt}
}

func closeAct(w *world) Action {
	return Action{Kind: ActClose, InteractionSid: w.interaction(), ChannelSid: w.channel()}
}

type decideCase struct {
	name   string
	w      *world
	trig   Trigger
	p      *policy.Policy // nil: the default
	now    time.Time      // zero: trigger + 3 s
	want   Plan           // Reason: see reason; Deadline zero: trigger + 10 m
	reason []string       // substrings of the Reason
}

func TestDecide(t *testing.T) {
	templatePolicy := mustPolicy(t, `
version: 1
triggers:
  workflow.timeout:
    - name: template
      actions:
        - message:
            text: "Still looking (text)."
            content_sid: HX000000000000000000000000000000a1
            content_variables: {"1": "soon", "0": "x"}
        - reinvite: {}
`)
	messageOnly := mustPolicy(t, `
version: 1
triggers:
  workflow.timeout:
    - name: apologise
      actions:
        - message: { text: "Sorry." }
`)
	fallback := policy.Default()
	fallback.FallbackWorkflow = workflow2
	knownAgent := mustPolicy(t, `
version: 1
fallback_workflow: `+workflow2+`
triggers:
  workflow.timeout:
    - name: known
      actions:
        - reinvite: { known_agent: true }
  task.canceled:
    - name: own-workflow
      actions:
        - reinvite: { workflow: `+sid("WW", 0, 3)+`, known_agent: true }
`)
	conditions := mustPolicy(t, `
version: 1
triggers:
  task.canceled:
    - { name: whatsapp, when: { channel_type: [whatsapp, messenger] }, actions: [close] }
    - { name: billing-by-name, when: { task_queue: billing }, actions: [close] }
    - { name: queue-by-sid, when: { task_queue: [Nope, `+sid("WQ", 0, 3)+`] }, actions: [close] }
    - { name: workflow-by-sid, when: { workflow: `+workflow2+` }, actions: [close] }
    - { name: workflow-by-name, when: { workflow: "VIP Routing" }, actions: [close] }
    - { name: ttl, when: { cancel_reason: ["^never$", "(?i)\\bttl\\b"] }, actions: [close] }
    - { name: late, when: { attempts_at_least: 2 }, actions: [close] }
    - { name: early-failed, when: { cause: failed-create, attempts_below: 2 }, actions: [close] }
    - { name: declined, when: { cause: declined-known-agent }, actions: [close] }
    - { name: rest, actions: [close] }
`)
	deadlines := mustPolicy(t, `
version: 1
deadline: 10m
triggers:
  task.deleted:
    - { name: quick, deadline: 1m, when: { channel_type: chat }, actions: [close] }
    - { name: slow, actions: [close] }
`)
	noRules := mustPolicy(t, `
version: 1
triggers:
  workflow.timeout:
    - { name: whatsapp-only, when: { channel_type: whatsapp }, actions: [close] }
`)

	var cases []decideCase
	add := func(c ...decideCase) { cases = append(cases, c...) }

	// ---- workflow.timeout ----
	{
		w := timeoutWorld("sms", "")
		add(decideCase{name: "timeout: message and re-invite through the task's workflow", w: w, trig: w.trigger(domain.WorkflowTimedOut, 122, 1),
			want:   Plan{Kind: KindWorkflowTimeout, Rule: "workflow.timeout/reinvite", Actions: []Action{body(w, stillLooking), reinvite(w, workflow1, "", 1)}},
			reason: []string{"task " + w.task(1) + ": workflow timed out in queue " + queue1, "rule workflow.timeout/reinvite: message, re-invite 1 of 3 through " + workflow1}})
		add(decideCase{name: "timeout: the TaskCanceled of the same end decides the same", w: w, trig: w.trigger(domain.TaskCanceled, 122, 1),
			want: Plan{Kind: KindWorkflowTimeout, Rule: "workflow.timeout/reinvite", Actions: []Action{body(w, stillLooking), reinvite(w, workflow1, "", 1)}}})
		add(decideCase{name: "timeout: fallback workflow", w: w, trig: w.trigger(domain.WorkflowTimedOut, 122, 1), p: fallback,
			want:   Plan{Kind: KindWorkflowTimeout, Rule: "workflow.timeout/reinvite", Actions: []Action{body(w, stillLooking), reinvite(w, workflow2, "", 1)}},
			reason: []string{"through " + workflow2}})
	}
	{
		w := timeoutWorld("sms", attempt(2, ""))
		add(decideCase{name: "timeout: last re-invite", w: w, trig: w.trigger(domain.WorkflowTimedOut, 122, 1),
			want:   Plan{Kind: KindWorkflowTimeout, Rule: "workflow.timeout/reinvite", Attempt: 2, Actions: []Action{body(w, stillLooking), reinvite(w, workflow1, "", 3)}},
			reason: []string{"re-invite 3 of 3"}})
	}
	{
		w := timeoutWorld("sms", attempt(3, ""))
		add(decideCase{name: "timeout: attempts used up: message and close", w: w, trig: w.trigger(domain.WorkflowTimedOut, 122, 1),
			want:   Plan{Kind: KindWorkflowTimeout, Rule: "workflow.timeout/give-up", Attempt: 3, Actions: []Action{body(w, sorryNoAgent), closeAct(w)}},
			reason: []string{"rule workflow.timeout/give-up: message, close"}})
	}
	{
		w := newWorld(7, "sms").opened(0).customer(0).created(2, 1, "").timedOut(122, 1).t(domain.TaskDeleted, 130, 1, "", nil)
		add(decideCase{name: "timeout then deleted: still a workflow timeout", w: w, trig: w.trigger(domain.TaskDeleted, 130, 1),
			want: Plan{Kind: KindWorkflowTimeout, Rule: "workflow.timeout/reinvite", Actions: []Action{body(w, stillLooking), reinvite(w, workflow1, "", 1)}}})
	}
	{
		w := newWorld(8, "sms").opened(0).customer(0).created(2, 1, "").canceled(122, 1, "Workflow Timeout")
		add(decideCase{name: "timeout known only from the cancel reason", w: w, trig: w.trigger(domain.TaskCanceled, 122, 1),
			want: Plan{Kind: KindWorkflowTimeout, Rule: "workflow.timeout/reinvite", Actions: []Action{body(w, stillLooking), reinvite(w, workflow1, "", 1)}}})
	}

	// ---- task.canceled ----
	{
		w := failedCreateWorld("sms", "")
		add(decideCase{name: "canceled: failed create: re-invite", w: w, trig: w.trigger(domain.TaskCanceled, 5, 1),
			want:   Plan{Kind: KindTaskCanceled, Cause: CauseFailedCreate, Rule: "task.canceled/reinvite", Actions: []Action{reinvite(w, workflow1, "", 1)}},
			reason: []string{"task " + w.task(1) + ": canceled (failed-create)", "re-invite 1 of 3"}})
	}
	{
		w := failedCreateWorld("sms", attempt(3, ""))
		add(decideCase{name: "canceled: failed create, attempts used up: close", w: w, trig: w.trigger(domain.TaskCanceled, 5, 1),
			want: Plan{Kind: KindTaskCanceled, Cause: CauseFailedCreate, Rule: "task.canceled/close", Attempt: 3, Actions: []Action{body(w, sorryCouldNot), closeAct(w)}}})
	}
	{
		w := newWorld(9, "whatsapp").opened(0).customer(0).customerMsg(1, 0).
			created(2, 1, `{"worker_sid":"`+worker1+`"}`).
			r(domain.ReservationCreated, 3, 1, 1, worker1, fold.TaskReserved).
			r(domain.ReservationTimedOut, 33, 1, 1, worker1, fold.TaskPending).
			canceled(33, 1, "Reservation timed out")
		add(decideCase{name: "canceled: the targeted agent let the invite time out", w: w, trig: w.trigger(domain.TaskCanceled, 33, 1),
			want: Plan{Kind: KindTaskCanceled, Cause: CauseDeclinedKnownAgent, Rule: "task.canceled/reinvite", Actions: []Action{reinvite(w, workflow1, "", 1)}}})
	}
	{
		w := rejectedWorld("sms", `{"worker_sid":"`+worker2+`"}`)
		add(decideCase{name: "canceled: targeted invite rejected by another worker", w: w, trig: w.trigger(domain.TaskCanceled, 9, 1),
			want: Plan{Kind: KindTaskCanceled, Cause: CauseDeclinedKnownAgent, Rule: "task.canceled/reinvite", Actions: []Action{reinvite(w, workflow1, "", 1)}}})
	}
	{
		w := rejectedWorld("sms", "")
		add(decideCase{name: "canceled: untargeted invite rejected: a failed create, whichever event", w: w, trig: w.trigger(domain.ReservationRejected, 9, 1),
			want: Plan{Kind: KindTaskCanceled, Cause: CauseFailedCreate, Rule: "task.canceled/reinvite", Actions: []Action{reinvite(w, workflow1, "", 1)}}})
	}
	{
		w := acceptedWorld("sms")
		add(decideCase{name: "canceled after an agent had it: message and close", w: w, trig: w.trigger(domain.TaskCanceled, 30, 1),
			want:   Plan{Kind: KindTaskCanceled, Cause: CauseOther, Rule: "task.canceled/close", Actions: []Action{body(w, sorryCouldNot), closeAct(w)}},
			reason: []string{"canceled (other)"}})
	}

	// ---- task.deleted ----
	{
		w := deletedWorld("chat")
		add(decideCase{name: "deleted: close", w: w, trig: w.trigger(domain.TaskDeleted, 4, 1),
			want: Plan{Kind: KindTaskDeleted, Rule: "task.deleted/close", Actions: []Action{closeAct(w)}}, reason: []string{"deleted", "close"}})
	}

	// ---- reservation.rejected ----
	{
		w := rejectedWorld("sms", `{"known_agent_worker_sid":"`+worker1+`"}`)
		want := Plan{Kind: KindReservationRejected, Rule: "reservation.rejected/reinvite", Actions: []Action{reinvite(w, workflow1, "", 1)}}
		add(decideCase{name: "rejected by the targeted agent: re-invite through the workflow", w: w, trig: w.trigger(domain.ReservationRejected, 9, 1), want: want,
			reason: []string{"targeted worker " + worker1 + " declined"}})
		add(decideCase{name: "rejected by the targeted agent, seen from TaskCanceled", w: w, trig: w.trigger(domain.TaskCanceled, 9, 1), want: want})
	}
	{
		w := rejectedWorld("sms", attempt(1, worker1))
		add(decideCase{name: "rejected: our own known-agent re-invite", w: w, trig: w.trigger(domain.ReservationRejected, 9, 1),
			want:   Plan{Kind: KindReservationRejected, Rule: "reservation.rejected/reinvite", Attempt: 1, Actions: []Action{reinvite(w, workflow1, "", 2)}},
			reason: []string{"re-invite 2 of 3"}})
	}
	{
		w := rejectedWorld("sms", attempt(3, worker1))
		add(decideCase{name: "rejected: attempts used up", w: w, trig: w.trigger(domain.ReservationRejected, 9, 1),
			want: Plan{Kind: KindReservationRejected, Rule: "reservation.rejected/give-up", Attempt: 3, Actions: []Action{body(w, sorryNoAgent), closeAct(w)}}})
	}

	// ---- guards ----
	{
		w := newWorld(10, "sms")
		w.noConv = true
		w.created(2, 1, "").timedOut(122, 1)
		add(decideCase{name: "guard: no conversation", w: w, trig: w.trigger(domain.WorkflowTimedOut, 122, 1),
			want: Plan{Kind: KindWorkflowTimeout, Skip: SkipNoConversation}, reason: []string{"names no conversation"}})
	}
	{
		w := timeoutWorld("sms", "").closed(123)
		add(decideCase{name: "guard: conversation closed", w: w, trig: w.trigger(domain.WorkflowTimedOut, 122, 1),
			want: Plan{Kind: KindWorkflowTimeout, Skip: SkipClosed}, reason: []string{"conversation " + w.conv() + " is closed"}})
	}
	{
		w := newWorld(11, "sms").opened(0).customer(0).created(2, 1, "").
			r(domain.ReservationCreated, 3, 1, 1, worker1, fold.TaskReserved).
			r(domain.ReservationRejected, 9, 1, 1, worker1, fold.TaskPending)
		add(decideCase{name: "guard: rejected, untargeted, task re-routed", w: w, trig: w.trigger(domain.ReservationRejected, 9, 1),
			want: Plan{Kind: KindTaskCanceled, Cause: CauseFailedCreate, Skip: SkipNotTargeted}, reason: []string{"named no worker", "still pending"}})
	}
	{
		w := newWorld(12, "sms").opened(0).customer(0).created(2, 1, `{"worker_sid":"`+worker1+`"}`).
			r(domain.ReservationCreated, 3, 1, 1, worker1, fold.TaskReserved).
			r(domain.ReservationRejected, 9, 1, 1, worker1, fold.TaskPending)
		add(decideCase{name: "guard: rejected by the target, task not ended yet", w: w, trig: w.trigger(domain.ReservationRejected, 9, 1),
			want: Plan{Kind: KindReservationRejected, Skip: SkipTaskLive}, reason: []string{"the task is still pending"}})
	}
	{
		w := newWorld(13, "sms").opened(0).customer(0).created(2, 1, "").
			r(domain.ReservationCreated, 3, 1, 1, worker2, fold.TaskReserved).
			r(domain.ReservationRejected, 4, 1, 1, worker2, fold.TaskPending).
			r(domain.ReservationCreated, 8, 1, 2, worker1, fold.TaskReserved).
			r(domain.ReservationAccepted, 10, 1, 2, worker1, fold.TaskAssigned).
			agent(domain.ParticipantAdded, 11, 2).
			agent(domain.ParticipantRemoved, 40, 2).
			t(domain.TaskWrapup, 40, 1, fold.TaskWrapping, nil).
			t(domain.TaskCompleted, 41, 1, fold.TaskCompleted, nil)
		add(decideCase{name: "guard: a rejected reservation of a task that was served", w: w, trig: w.trigger(domain.ReservationRejected, 4, 1),
			want: Plan{Kind: KindTaskCanceled, Cause: CauseOther, Skip: SkipServed}, reason: []string{"served (completed)"}})
	}
	{
		w := timeoutWorld("sms", "").created(125, 2, attempt(1, ""))
		add(decideCase{name: "guard: another task of the conversation is live", w: w, trig: w.trigger(domain.WorkflowTimedOut, 122, 1), now: sec(126),
			want: Plan{Kind: KindWorkflowTimeout, Skip: SkipLiveTask}, reason: []string{"task " + w.task(2) + " of the conversation is live (pending)"}})
	}
	{
		w := timeoutWorld("sms", "").agent(domain.ParticipantAdded, 100, 2)
		add(decideCase{name: "guard: an agent is in the conversation", w: w, trig: w.trigger(domain.WorkflowTimedOut, 122, 1),
			want: Plan{Kind: KindWorkflowTimeout, Skip: SkipAgentPresent}})
	}
	{
		w := timeoutWorld("sms", "")
		tr := w.trigger(domain.WorkflowTimedOut, 122, 1)
		add(decideCase{name: "guard: expired", w: w, trig: tr, now: tr.At.Add(10*time.Minute + time.Second),
			want: Plan{Kind: KindWorkflowTimeout, Skip: SkipExpired}, reason: []string{"past its deadline"}})
		add(decideCase{name: "deadline: exactly at the deadline still acts", w: w, trig: tr, now: tr.At.Add(10 * time.Minute),
			want: Plan{Kind: KindWorkflowTimeout, Rule: "workflow.timeout/reinvite", Actions: []Action{body(w, stillLooking), reinvite(w, workflow1, "", 1)}}})
		add(decideCase{name: "guard: no rule", w: w, trig: tr, p: noRules,
			want: Plan{Kind: KindWorkflowTimeout, Skip: SkipNoRule}, reason: []string{"no workflow.timeout rule matched (1 tried)"}})
		add(decideCase{name: "guard: expiry before no rule", w: w, trig: tr, p: noRules, now: tr.At.Add(11 * time.Minute),
			want: Plan{Kind: KindWorkflowTimeout, Skip: SkipExpired}})
	}
	{
		w := deletedWorld("chat")
		tr := w.trigger(domain.TaskDeleted, 4, 1)
		add(decideCase{name: "deadline: a rule's own deadline", w: w, trig: tr, p: deadlines, now: tr.At.Add(2 * time.Minute),
			want: Plan{Kind: KindTaskDeleted, Skip: SkipExpired, Deadline: tr.At.Add(time.Minute)}})
		add(decideCase{name: "deadline: a rule's own deadline, in time", w: w, trig: tr, p: deadlines, now: tr.At.Add(time.Minute),
			want: Plan{Kind: KindTaskDeleted, Rule: "task.deleted/quick", Actions: []Action{closeAct(w)}, Deadline: tr.At.Add(time.Minute)}})
		w2 := deletedWorld("sms")
		add(decideCase{name: "deadline: the policy's deadline", w: w2, trig: tr, p: deadlines, now: tr.At.Add(2 * time.Minute),
			want: Plan{Kind: KindTaskDeleted, Rule: "task.deleted/slow", Actions: []Action{closeAct(w2)}}})
	}

	// ---- conditions ----
	{
		cond := func(name string, w *world, trig Trigger, cause, rule string, attempts int) {
			add(decideCase{name: "condition: " + name, w: w, trig: trig, p: conditions,
				want: Plan{Kind: KindTaskCanceled, Cause: cause, Rule: "task.canceled/" + rule, Attempt: attempts, Actions: []Action{closeAct(w)}}})
		}
		w := failedCreateWorld("sms", "")
		cond("cause and attempts_below", w, w.trigger(domain.TaskCanceled, 5, 1), CauseFailedCreate, "early-failed", 0)
		w = failedCreateWorld("whatsapp", "")
		cond("channel type", w, w.trigger(domain.TaskCanceled, 5, 1), CauseFailedCreate, "whatsapp", 0)
		w = failedCreateWorld("messenger", "")
		cond("channel type, second entry", w, w.trigger(domain.TaskCanceled, 5, 1), CauseFailedCreate, "whatsapp", 0)
		w = failedCreateWorld("sms", "").mod(1, func(e *domain.Event) { e.QueueSid, e.QueueName = sid("WQ", 0, 2), "Billing" })
		cond("queue by name, any case", w, w.trigger(domain.TaskCanceled, 5, 1), CauseFailedCreate, "billing-by-name", 0)
		w = failedCreateWorld("sms", "").mod(1, func(e *domain.Event) { e.QueueSid, e.QueueName = sid("WQ", 0, 3), "Other" })
		cond("queue by SID", w, w.trigger(domain.TaskCanceled, 5, 1), CauseFailedCreate, "queue-by-sid", 0)
		w = failedCreateWorld("sms", "").mod(1, func(e *domain.Event) { e.WorkflowSid = workflow2 })
		cond("workflow by SID", w, w.trigger(domain.TaskCanceled, 5, 1), CauseFailedCreate, "workflow-by-sid", 0)
		w = failedCreateWorld("sms", "").mod(1, func(e *domain.Event) { e.WorkflowSid, e.WorkflowName = sid("WW", 0, 9), "VIP Routing" })
		cond("workflow by name", w, w.trigger(domain.TaskCanceled, 5, 1), CauseFailedCreate, "workflow-by-name", 0)
		w = newWorld(2, "sms").opened(0).customer(0).created(2, 1, "").canceled(5, 1, "Task TTL exceeded")
		cond("cancel reason regexp", w, w.trigger(domain.TaskCanceled, 5, 1), CauseFailedCreate, "ttl", 0)
		w = failedCreateWorld("sms", attempt(2, ""))
		cond("attempts_at_least", w, w.trigger(domain.TaskCanceled, 5, 1), CauseFailedCreate, "late", 2)
		w = failedCreateWorld("sms", attempt(1, ""))
		cond("attempts_below, one made", w, w.trigger(domain.TaskCanceled, 5, 1), CauseFailedCreate, "early-failed", 1)
		w = rejectedWorld("sms", `{"worker_sid":"`+worker2+`"}`)
		cond("cause declined-known-agent", w, w.trigger(domain.TaskCanceled, 9, 1), CauseDeclinedKnownAgent, "declined", 0)
		w = acceptedWorld("sms")
		cond("no condition holds but the last", w, w.trigger(domain.TaskCanceled, 30, 1), CauseOther, "rest", 0)
	}

	// ---- WhatsApp's 24-hour window ----
	{
		windowWorld := func(n int, ch string, lastCustomer int, customerWrote bool) *world {
			w := newWorld(n, ch).opened(-100000).customer(-100000)
			if customerWrote {
				w.customerMsg(lastCustomer, 0)
			}
			// An agent's message does not open the window.
			return w.msg(100, 1, "agent.alice").created(2, 1, "").timedOut(122, 1)
		}
		w := windowWorld(20, "whatsapp", 1, true)
		add(decideCase{name: "window: inside: free-form text", w: w, trig: w.trigger(domain.WorkflowTimedOut, 122, 1),
			want: Plan{Kind: KindWorkflowTimeout, Rule: "workflow.timeout/reinvite", Actions: []Action{body(w, stillLooking), reinvite(w, workflow1, "", 1)}}})
		w = windowWorld(21, "whatsapp", 125-24*3600, true)
		add(decideCase{name: "window: exactly 24 h: still inside", w: w, trig: w.trigger(domain.WorkflowTimedOut, 122, 1), now: sec(125),
			want: Plan{Kind: KindWorkflowTimeout, Rule: "workflow.timeout/reinvite", Actions: []Action{body(w, stillLooking), reinvite(w, workflow1, "", 1)}}})
		w = windowWorld(22, "whatsapp", -90000, true)
		add(decideCase{name: "window: outside: text dropped, re-invite kept", w: w, trig: w.trigger(domain.WorkflowTimedOut, 122, 1),
			want:   Plan{Kind: KindWorkflowTimeout, Rule: "workflow.timeout/reinvite", Actions: []Action{reinvite(w, workflow1, "", 1)}},
			reason: []string{"message dropped: outside WhatsApp's 24-hour window (the customer's last message was 25h2m0s ago)"}})
		w = windowWorld(23, "whatsapp", 0, false)
		add(decideCase{name: "window: no customer message known", w: w, trig: w.trigger(domain.WorkflowTimedOut, 122, 1),
			want:   Plan{Kind: KindWorkflowTimeout, Rule: "workflow.timeout/reinvite", Actions: []Action{reinvite(w, workflow1, "", 1)}},
			reason: []string{"24-hour window (no message of the customer is known)"}})
		w = windowWorld(24, "messenger", -90000, true)
		add(decideCase{name: "window: Messenger too", w: w, trig: w.trigger(domain.WorkflowTimedOut, 122, 1),
			want:   Plan{Kind: KindWorkflowTimeout, Rule: "workflow.timeout/reinvite", Actions: []Action{reinvite(w, workflow1, "", 1)}},
			reason: []string{"outside Messenger's 24-hour window"}})
		w = windowWorld(25, "sms", -90000, true)
		add(decideCase{name: "window: SMS has none", w: w, trig: w.trigger(domain.WorkflowTimedOut, 122, 1),
			want: Plan{Kind: KindWorkflowTimeout, Rule: "workflow.timeout/reinvite", Actions: []Action{body(w, stillLooking), reinvite(w, workflow1, "", 1)}}})
		w = windowWorld(26, "whatsapp", -90000, true)
		add(decideCase{name: "window: outside: template sent", w: w, trig: w.trigger(domain.WorkflowTimedOut, 122, 1), p: templatePolicy,
			want: Plan{Kind: KindWorkflowTimeout, Rule: "workflow.timeout/template", Actions: []Action{
				template(w, "HX000000000000000000000000000000a1", `{"0":"x","1":"soon"}`), reinvite(w, workflow1, "", 1)}},
			reason: []string{"template HX000000000000000000000000000000a1, re-invite 1 of 3", "template sent: outside WhatsApp's 24-hour window"}})
		w = windowWorld(27, "whatsapp", 1, true)
		add(decideCase{name: "window: inside: the text of a text+template message", w: w, trig: w.trigger(domain.WorkflowTimedOut, 122, 1), p: templatePolicy,
			want: Plan{Kind: KindWorkflowTimeout, Rule: "workflow.timeout/template", Actions: []Action{body(w, "Still looking (text)."), reinvite(w, workflow1, "", 1)}}})
		w = windowWorld(28, "whatsapp", -90000, true)
		add(decideCase{name: "window: outside: a message-only rule leaves nothing", w: w, trig: w.trigger(domain.WorkflowTimedOut, 122, 1), p: messageOnly,
			want:   Plan{Kind: KindWorkflowTimeout, Rule: "workflow.timeout/apologise", Skip: SkipNoAction},
			reason: []string{"nothing left to do; message dropped"}})
	}

	// ---- known-agent routing ----
	{
		w := newWorld(30, "whatsapp").opened(0).customer(0).customerMsg(1, 0).
			created(2, 1, "").
			r(domain.ReservationCreated, 3, 1, 1, worker1, fold.TaskReserved).
			r(domain.ReservationAccepted, 4, 1, 1, worker1, fold.TaskAssigned).
			created(50, 2, "").
			r(domain.ReservationCreated, 55, 2, 2, worker2, fold.TaskReserved).
			r(domain.ReservationAccepted, 60, 2, 2, worker2, fold.TaskAssigned).
			agent(domain.ParticipantAdded, 61, 2).
			agent(domain.ParticipantRemoved, 90, 2).
			t(domain.TaskCompleted, 50, 1, fold.TaskCompleted, nil).
			t(domain.TaskCompleted, 91, 2, fold.TaskCompleted, nil).
			created(100, 3, "").timedOut(220, 3)
		add(decideCase{name: "known agent: the latest accepted worker, through the fallback workflow", w: w, trig: w.trigger(domain.WorkflowTimedOut, 220, 3), p: knownAgent,
			want:   Plan{Kind: KindWorkflowTimeout, Rule: "workflow.timeout/known", Actions: []Action{reinvite(w, workflow2, worker2, 1)}},
			reason: []string{"re-invite 1 of 3 through " + workflow2 + " to known agent " + worker2}})
		w = timeoutWorld("sms", "")
		add(decideCase{name: "known agent: none known: through the workflow alone", w: w, trig: w.trigger(domain.WorkflowTimedOut, 122, 1), p: knownAgent,
			want:   Plan{Kind: KindWorkflowTimeout, Rule: "workflow.timeout/known", Actions: []Action{reinvite(w, workflow2, "", 1)}},
			reason: []string{"no known agent: re-inviting through the workflow alone"}})
		w = failedCreateWorld("sms", "")
		add(decideCase{name: "known agent: the rule's own workflow", w: w, trig: w.trigger(domain.TaskCanceled, 5, 1), p: knownAgent,
			want: Plan{Kind: KindTaskCanceled, Cause: CauseFailedCreate, Rule: "task.canceled/own-workflow", Actions: []Action{reinvite(w, sid("WW", 0, 3), "", 1)}}})
	}

	// ---- missing channel SIDs ----
	{
		w := newWorld(40, "sms")
		w.noChannel = true
		w.opened(0).customer(0).customerMsg(1, 0).created(2, 1, "").timedOut(122, 1)
		add(decideCase{name: "no channel SIDs: re-invite dropped, message kept", w: w, trig: w.trigger(domain.WorkflowTimedOut, 122, 1),
			want:   Plan{Kind: KindWorkflowTimeout, Rule: "workflow.timeout/reinvite", Actions: []Action{body(w, stillLooking)}},
			reason: []string{"re-invite dropped: no interaction and interaction channel SID known"}})
		w2 := newWorld(41, "chat")
		w2.noChannel = true
		w2.opened(0).created(2, 1, "").t(domain.TaskDeleted, 4, 1, "", nil)
		add(decideCase{name: "no channel SIDs: close dropped, nothing left", w: w2, trig: w2.trigger(domain.TaskDeleted, 4, 1),
			want:   Plan{Kind: KindTaskDeleted, Rule: "task.deleted/close", Skip: SkipNoConversation},
			reason: []string{"close dropped: no interaction and interaction channel SID known"}})
	}

	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			now := c.now
			if now.IsZero() {
				now = c.trig.At.Add(3 * time.Second)
			}
			want := c.want
			if want.Deadline.IsZero() {
				want.Deadline = c.trig.At.Add(10 * time.Minute)
			}
			got := Decide(c.trig, c.w.state(), c.p, now)
			reason := got.Reason
			got.Reason, want.Reason = "", ""
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("plan\n got  %s\n want %s\nreason: %s", mustJSON(t, got), mustJSON(t, want), reason)
			}
			if reason == "" || strings.ContainsAny(reason, "\n\r") || strings.Contains(reason, "phone:") || strings.Contains(reason, "agent.alice") {
				t.Errorf("reason must be one line without PII: %q", reason)
			}
			for _, r := range c.reason {
				if !strings.Contains(reason, r) {
					t.Errorf("reason %q lacks %q", reason, r)
				}
			}
			if (len(got.Actions) == 0) != (got.Skip != "") {
				t.Errorf("skip %q with %d actions", got.Skip, len(got.Actions))
			}
			// Deterministic, and the same whatever the order the events were stored in.
			got.Reason = reason
			rng := rand.New(rand.NewPCG(1, uint64(len(c.name))))
			for range 5 {
				evs := slices.Clone(c.w.events)
				rng.Shuffle(len(evs), func(i, j int) { evs[i], evs[j] = evs[j], evs[i] })
				if again := Decide(c.trig, StateFrom(evs), c.p, now); !reflect.DeepEqual(again, got) {
					t.Fatalf("shuffled events decide differently:\n%s\n%s", mustJSON(t, again), mustJSON(t, got))
				}
			}
		})
	}
}

// The channel of a close or re-invite comes from the conversation, else
// from the task.
func TestDecideChannelFromTask(t *testing.T) {
	w := deletedWorld("chat")
	s := w.state()
	s.Conversation.InteractionSid, s.Conversation.ChannelSid = "", ""
	tr := w.trigger(domain.TaskDeleted, 4, 1)
	got := Decide(tr, s, nil, tr.At)
	if want := []Action{closeAct(w)}; !reflect.DeepEqual(got.Actions, want) {
		t.Fatalf("actions %+v, want %+v", got.Actions, want)
	}
	// A state without the trigger's task: its status is unknown, so it
	// is not known to have ended.
	got = Decide(Trigger{TaskSid: sid("WT", 99, 1), EventType: domain.TaskCanceled, At: tr.At}, s, nil, tr.At)
	if got.Skip != SkipTaskLive || !strings.Contains(got.Reason, "no known status") {
		t.Errorf("unknown task: %+v", got)
	}
}

func TestKindOf(t *testing.T) {
	tests := []struct {
		name        string
		w           *world
		trig        func(w *world) Trigger
		kind, cause string
	}{
		{"timeout", timeoutWorld("sms", ""), func(w *world) Trigger { return w.trigger(domain.WorkflowTimedOut, 122, 1) }, KindWorkflowTimeout, ""},
		{"failed create", failedCreateWorld("sms", ""), func(w *world) Trigger { return w.trigger(domain.TaskCanceled, 5, 1) }, KindTaskCanceled, CauseFailedCreate},
		{"targeted, no reservation: failed create", failedCreateWorld("sms", `{"worker_sid":"`+worker1+`"}`), func(w *world) Trigger { return w.trigger(domain.TaskCanceled, 5, 1) }, KindTaskCanceled, CauseFailedCreate},
		{"rejected by the target", rejectedWorld("sms", `{"worker_sid":"`+worker1+`"}`), func(w *world) Trigger { return w.trigger(domain.TaskCanceled, 9, 1) }, KindReservationRejected, ""},
		{"rejected by another", rejectedWorld("sms", `{"worker_sid":"`+worker2+`"}`), func(w *world) Trigger { return w.trigger(domain.TaskCanceled, 9, 1) }, KindTaskCanceled, CauseDeclinedKnownAgent},
		{"accepted", acceptedWorld("sms"), func(w *world) Trigger { return w.trigger(domain.TaskCanceled, 30, 1) }, KindTaskCanceled, CauseOther},
		{"deleted", deletedWorld("sms"), func(w *world) Trigger { return w.trigger(domain.TaskDeleted, 4, 1) }, KindTaskDeleted, ""},
		{"unknown task, by its event", newWorld(50, "sms"), func(w *world) Trigger { return w.trigger(domain.WorkflowTimedOut, 4, 1) }, KindWorkflowTimeout, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			kind, cause := KindOf(tt.trig(tt.w), tt.w.state())
			if kind != tt.kind || cause != tt.cause {
				t.Errorf("KindOf = %s, %q; want %s, %q", kind, cause, tt.kind, tt.cause)
			}
		})
	}
}

func TestTargetedAndAttempt(t *testing.T) {
	tests := []struct {
		attrs   string
		target  string
		attempt int
	}{
		{"", "", 0},
		{"not json", "", 0},
		{`[1,2]`, "", 0},
		{`{}`, "", 0},
		{`{"worker_sid":"` + worker1 + `"}`, worker1, 0},
		{`{"known_agent_worker_sid":"` + worker1 + `","worker_sid":"` + worker2 + `"}`, worker1, 0},
		{`{"worker_sid":"` + worker2 + `","flexstream":{"worker_sid":"` + worker1 + `","attempt":2}}`, worker1, 2},
		{`{"worker_sid":42,"flexstream":"x"}`, "", 0},
		{`{"worker_sid":"  "}`, "", 0},
		{`{"flexstream":{"attempt":"2"}}`, "", 0},
		{`{"flexstream":{"attempt":-1}}`, "", 0},
		{`{"flexstream":{"attempt":1.5}}`, "", 0},
		{`{"flexstream":{"attempt":3.0}}`, "", 3},
		{`{"flexstream":{"attempt":1e300}}`, "", 0},
		{`{"flexstream":null}`, "", 0},
		{attempt(4, worker2), worker2, 4},
	}
	for _, tt := range tests {
		if got := Targeted([]byte(tt.attrs)); got != tt.target {
			t.Errorf("Targeted(%s) = %q, want %q", tt.attrs, got, tt.target)
		}
		if got := Attempt([]byte(tt.attrs)); got != tt.attempt {
			t.Errorf("Attempt(%s) = %d, want %d", tt.attrs, got, tt.attempt)
		}
	}
}

// decide's trigger kinds and causes are the policy's.
func TestKindsArePolicyTriggers(t *testing.T) {
	if !slices.Equal(Kinds, policy.Triggers) {
		t.Errorf("decide.Kinds %v != policy.Triggers %v", Kinds, policy.Triggers)
	}
	causes := []string{CauseFailedCreate, CauseDeclinedKnownAgent, CauseWorkflowTimeout, CauseOther}
	if !slices.Equal(causes, policy.Causes) {
		t.Errorf("causes %v != policy.Causes %v", causes, policy.Causes)
	}
}

func mustJSON(t testing.TB, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
