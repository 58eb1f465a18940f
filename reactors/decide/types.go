// Package decide is the reactors' pure core: from a trigger (a task that
// ended without serving its customer), what the event store knows of its
// conversation, and the policy, it computes a plan of Twilio actions. No
// I/O, no clock (now is passed in), no goroutines: the engine
// (reactors/engine) does the appending and the calling.
package decide

import (
	"time"

	"github.com/flexstream/flexstream/projector/fold"
)

// Kinds of trigger, as the policy names them (DESIGN §7). One task's end
// arrives as up to three events (reservation.rejected, workflow.timeout,
// task.canceled); the kind is derived from the task's whole state, not
// from the event that happened to arrive first (see KindOf).
const (
	KindWorkflowTimeout     = "workflow.timeout"
	KindTaskCanceled        = "task.canceled"
	KindTaskDeleted         = "task.deleted"
	KindReservationRejected = "reservation.rejected"
)

// Kinds lists every kind, in the policy file's order.
var Kinds = []string{KindWorkflowTimeout, KindTaskCanceled, KindTaskDeleted, KindReservationRejected}

// Causes of a task.canceled (policy condition "cause").
const (
	CauseFailedCreate       = "failed-create"        // R4: canceled with no reservation ever accepted, no other known cause
	CauseDeclinedKnownAgent = "declined-known-agent" // R3: the worker the invite named rejected it
	CauseWorkflowTimeout    = "workflow-timeout"
	CauseOther              = "other" // e.g. canceled after an agent had accepted it
)

// Action kinds.
const (
	ActMessage  = "message"
	ActReinvite = "reinvite"
	ActClose    = "close"
)

// Action is one Twilio call the plan makes. Only the fields of its Kind
// are set. It carries everything the engine needs to make the call
// except what is deliberately fetched from Twilio at call time (the
// original task attributes of a re-invite, which hold PII and are never
// stored).
type Action struct {
	Kind string `json:"kind"`

	// Where: the conversation (message) or the interaction channel
	// (reinvite, close).
	ChatServiceSid  string `json:"chatServiceSid,omitempty"`
	ConversationSid string `json:"conversationSid,omitempty"`
	InteractionSid  string `json:"interactionSid,omitempty"`
	ChannelSid      string `json:"channelSid,omitempty"`

	// message: free-form Body, or an approved template (ContentSid and
	// its ContentVariables as a JSON object string). Never PII.
	Body             string `json:"body,omitempty"`
	ContentSid       string `json:"contentSid,omitempty"`
	ContentVariables string `json:"contentVariables,omitempty"`

	// reinvite: the workflow to route through (WW…), the worker to
	// target for known-agent routing ("" routes through the workflow
	// alone), the task channel, and which attempt this invite is
	// (1-based; it is written into the new task's attributes so that the
	// next trigger of the conversation knows it).
	WorkflowSid string `json:"workflowSid,omitempty"`
	WorkerSid   string `json:"workerSid,omitempty"`
	TaskChannel string `json:"taskChannel,omitempty"`
	Attempt     int    `json:"attempt,omitempty"`
}

// Plan is a decision: the actions to take, in order, and why. A plan
// with no actions is a decision to do nothing (Skip says why).
type Plan struct {
	Kind    string   `json:"kind"`            // the trigger kind the rule was chosen for
	Cause   string   `json:"cause,omitempty"` // for task.canceled
	Rule    string   `json:"rule,omitempty"`  // the policy rule that fired: "<kind>/<rule name>"
	Reason  string   `json:"reason"`          // one human line: why these actions (or none)
	Skip    string   `json:"skip,omitempty"`  // a Skip* constant when Actions is empty
	Actions []Action `json:"actions,omitempty"`
	// Deadline: if the actions are not all done by then, the reaction
	// is abandoned rather than acted on late.
	Deadline time.Time `json:"deadline"`
	Attempt  int       `json:"attempt"` // re-invites already made for this conversation (from the task's attributes)
}

// Reasons to do nothing.
const (
	SkipNoConversation = "no-conversation" // the task names no conversation (or channel, for close/reinvite)
	SkipClosed         = "conversation-closed"
	SkipLiveTask       = "live-task"     // another task of the conversation is live: someone is on it
	SkipAgentPresent   = "agent-present" // an agent is in the conversation
	SkipExpired        = "expired"       // the trigger is older than the rule's deadline (catch-up after downtime)
	SkipNoRule         = "no-rule"       // no policy rule matched
	SkipNotTargeted    = "not-targeted"  // reservation.rejected on an invite that named no worker
	SkipTaskLive       = "task-live"     // the trigger's task is not over (e.g. a rejected reservation, task re-routed)
	SkipServed         = "served"        // the trigger's task was served after all (wrapping or completed)
	SkipNoAction       = "no-action"     // a rule matched but none of its actions can be taken (e.g. a free-form message outside WhatsApp's 24-hour window)
)

// Trigger is the ended task: the id of the store event that made it a
// trigger, and the task's SID (the reaction is keyed by it).
type Trigger struct {
	EventID   string    // the store event id of the triggering event
	EventType string    // its domain type (domain.WorkflowTimedOut, …)
	TaskSid   string    // the task that ended
	At        time.Time // when it happened (Twilio's clock)
}

// State is what the event store knows of the trigger's conversation when
// deciding, folded from the conversation's stream (or the task's own
// stream when the task names no conversation) by StateFrom.
type State struct {
	Conversation fold.ConversationView    // zero Sid when unknown
	Tasks        map[string]fold.TaskView // every task of the stream, by SID
	// ChatServiceSid is the Conversations service (IS…) the conversation
	// belongs to: messages are sent through the service-scoped API.
	ChatServiceSid string
	// LastCustomerMessage is the time of the customer's latest message
	// (WhatsApp's 24-hour window); zero when none is known.
	LastCustomerMessage time.Time
	// TaskAttributes are each task's attributes as stored (pseudonymised
	// JSON), by task SID: the re-invite attempt and the targeted worker
	// are read from them.
	TaskAttributes map[string][]byte
	// KnownAgent is the worker of the conversation's latest accepted
	// reservation ("" if none): the target of known-agent routing.
	KnownAgent string
}
