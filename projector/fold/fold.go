// Package fold folds domain events into the read models (DESIGN §6): a
// ConversationView per conversation, a TaskView per task, and running
// Stats. It is pure: no I/O, no clock (now is passed in), no goroutines.
//
// # Order independence
//
// The events of one conversation come from two Twilio families (TaskRouter
// and Conversations) in any interleaving, and Kafka may redeliver. Every
// field of a view is therefore a join (a commutative, associative,
// idempotent merge) of what the events say, so folding a set of events
// gives the same view, byte for byte in JSON, whatever the order and
// however often an event is applied:
//
//   - times: FirstSeen, AddedAt, CreatedAt, AcceptedAt… are minima;
//     LastActivity is a maximum.
//   - facts that do not change in Twilio (conversation, interaction and
//     channel SIDs, channel types, identities, addresses, worker SIDs,
//     cancel reasons) keep the larger of two non-empty values; flags that
//     something was seen (timers seen, PII identity, accepted, workflow
//     timeout) are ORs.
//   - registers that do change (conversation state, timers, participant
//     role, task status, queue, workflow) are last-writer-wins on the
//     event's At; ties are broken by a rank of the value (task status:
//     pending < reserved < assigned < wrapping < completed|canceled <
//     deleted; state: active < inactive) and then by comparing the values
//     themselves, so no event id need be stored. The At of the winning
//     event is kept beside the value (StateAt, Timers.At, RoleAt, StatusAt,
//     TaskLink.At, Ref.At) as the register's stamp.
//   - absorbing states: a conversation once closed (ConversationRemoved
//     counts as closed) is closed for good, whatever arrives later; its
//     StateAt and StateReason are those of the earliest closing event. A
//     task's completed or canceled beats any live status and deleted beats
//     everything. A participant once removed stays removed.
//   - sets instead of counters: messages are a set of their Index (dense
//     per conversation, so kept as sorted ranges) plus, for MessageAdded
//     events without a MessageSid, a sorted set of event ids; transitions
//     are a sorted set of (At, Status, EventType); reservations and
//     participants are maps keyed by SID.
//   - derived fields (MessageCount, AgentPresent, the R5/R6/R7 flags,
//     WaitTime, HandleTime) are recomputed from the above after each event.
//
// All bookkeeping is exported and serialised, so a view stored as JSON and
// re-loaded between events folds exactly as one kept in memory.
//
// # Live tasks and orphans
//
// A task is live while pending, reserved or assigned; wrapping, completed,
// canceled and deleted are not live (the customer is no longer being
// served once the agent wraps up). A linked task whose status is still
// unknown (only events without a status seen) counts as live, so that an
// incomplete view is never called orphaned. A conversation is an orphan
// candidate when it is not closed, has no live task and no agent present;
// it is orphaned when, in addition, its LastActivity is older than now −
// grace.
package fold

import (
	"cmp"
	"slices"
	"time"

	"github.com/flexstream/flexstream/projector/domain"
)

// Conversation states (Twilio's).
const (
	StateActive   = "active"
	StateInactive = "inactive"
	StateClosed   = "closed"
	// StateUnknown is how Stats counts a view whose state is not known yet.
	StateUnknown = "unknown"
)

// Task statuses (TaskRouter assignment statuses, plus deleted).
const (
	TaskPending   = "pending"
	TaskReserved  = "reserved"
	TaskAssigned  = "assigned"
	TaskWrapping  = "wrapping"
	TaskCompleted = "completed"
	TaskCanceled  = "canceled"
	TaskDeleted   = "deleted"
)

// Reservation outcomes.
const (
	OutcomeCreated   = "created"
	OutcomeAccepted  = "accepted"
	OutcomeRejected  = "rejected"
	OutcomeTimeout   = "timeout"
	OutcomeCanceled  = "canceled"
	OutcomeRescinded = "rescinded"
	OutcomeWrapup    = "wrapup"
	OutcomeCompleted = "completed"
)

// Flag names, as Flags returns them.
const (
	FlagNoCloseTimer       = "no-close-timer"       // R5
	FlagPIIIdentity        = "pii-identity"         // R6
	FlagAgentWithoutInvite = "agent-without-invite" // R7
)

// ConversationView is what is known of one conversation.
type ConversationView struct {
	Sid string `json:"sid"`
	// State is "" until known, then active, inactive or closed (final).
	State       string    `json:"state"`
	StateReason string    `json:"stateReason,omitempty"` // API, TIMER, EVENT
	StateAt     time.Time `json:"stateAt,omitzero"`      // At of the event State was taken from
	RemovedAt   time.Time `json:"removedAt,omitzero"`    // ConversationRemoved (earliest)
	Timers      Timers    `json:"timers"`

	Participants map[string]Participant `json:"participants,omitempty"` // by participant SID
	AgentPresent bool                   `json:"agentPresent"`           // an agent participant not removed

	InteractionSid string              `json:"interactionSid,omitempty"` // KD…
	ChannelSid     string              `json:"channelSid,omitempty"`     // UO…
	ChannelType    string              `json:"channelType,omitempty"`    // whatsapp, sms, chat…
	Tasks          map[string]TaskLink `json:"tasks,omitempty"`          // by task SID

	MessageCount int `json:"messageCount"` // distinct messages
	// MessageIndexes is the set of message indexes seen, as sorted,
	// disjoint, non-adjacent inclusive ranges [first, last].
	MessageIndexes [][2]int `json:"messageIndexes,omitempty"`
	// MessageKeys are the event ids of MessageAdded events that carried no
	// MessageSid (so no trustworthy index), sorted.
	MessageKeys []string `json:"messageKeys,omitempty"`

	LastActivity time.Time `json:"lastActivity,omitzero"` // latest conversation, participant, message or task event
	FirstSeen    time.Time `json:"firstSeen,omitzero"`    // earliest event folded

	NoCloseTimer       bool `json:"noCloseTimer"`       // R5: not closed and no closed timer known
	PIIIdentity        bool `json:"piiIdentity"`        // R6: a participant's identity is a phone number or e-mail address
	AgentWithoutInvite bool `json:"agentWithoutInvite"` // R7: an agent participant and no linked task with an accepted reservation
}

// Timers are the conversation's timers as Twilio last reported them.
type Timers struct {
	Inactive string    `json:"inactive,omitempty"`
	Closed   string    `json:"closed,omitempty"`
	Seen     bool      `json:"seen"`        // some event carried timer fields
	At       time.Time `json:"at,omitzero"` // At of the event the timers were taken from
}

// Participant is one participant of a conversation (pseudonyms only).
type Participant struct {
	Role        string    `json:"role,omitempty"` // customer, agent, bot
	Identity    string    `json:"identity,omitempty"`
	IdentityPII bool      `json:"identityPII,omitempty"`
	Address     string    `json:"address,omitempty"`
	ChannelType string    `json:"channelType,omitempty"`
	AddedAt     time.Time `json:"addedAt,omitzero"`
	RemovedAt   time.Time `json:"removedAt,omitzero"`
	RoleAt      time.Time `json:"roleAt,omitzero"` // At of the event Role was taken from
}

// TaskLink is a task of the conversation as the conversation sees it.
type TaskLink struct {
	Status         string    `json:"status,omitempty"`
	CanceledReason string    `json:"canceledReason,omitempty"`
	At             time.Time `json:"at,omitzero"`        // At of the event Status was taken from
	Accepted       bool      `json:"accepted,omitempty"` // a reservation of it was accepted
}

// TaskView is what is known of one task.
type TaskView struct {
	Sid             string `json:"sid"`
	ConversationSid string `json:"conversationSid,omitempty"`
	InteractionSid  string `json:"interactionSid,omitempty"`
	ChannelSid      string `json:"channelSid,omitempty"`
	Queue           Ref    `json:"queue,omitzero"`
	Workflow        Ref    `json:"workflow,omitzero"`
	TaskChannel     string `json:"taskChannel,omitempty"`

	Status       string                 `json:"status,omitempty"`
	StatusAt     time.Time              `json:"statusAt,omitzero"` // At of the event Status was taken from
	Transitions  []Transition           `json:"transitions,omitempty"`
	Reservations map[string]Reservation `json:"reservations,omitempty"` // by reservation SID

	CanceledReason   string `json:"canceledReason,omitempty"`
	WorkflowTimedOut bool   `json:"workflowTimedOut,omitempty"`

	CreatedAt   time.Time `json:"createdAt,omitzero"`   // TaskCreated
	AcceptedAt  time.Time `json:"acceptedAt,omitzero"`  // first ReservationAccepted
	WrapupAt    time.Time `json:"wrapupAt,omitzero"`    // first TaskWrapup / ReservationWrapup
	CompletedAt time.Time `json:"completedAt,omitzero"` // first TaskCompleted / ReservationCompleted
	EndedAt     time.Time `json:"endedAt,omitzero"`     // first of completed, canceled, deleted, workflow timeout
	// WaitTime is AcceptedAt − CreatedAt, HandleTime (WrapupAt, else
	// CompletedAt) − AcceptedAt, in milliseconds; 0 when unknown.
	WaitTime   int64 `json:"waitTimeMs"`
	HandleTime int64 `json:"handleTimeMs"`
}

// Ref names a queue or workflow.
type Ref struct {
	Sid  string    `json:"sid,omitempty"`
	Name string    `json:"name,omitempty"`
	At   time.Time `json:"at,omitzero"` // At of the event it was taken from
}

// Transition is one status an event put the task in.
type Transition struct {
	Status    string    `json:"status"`
	At        time.Time `json:"at"`
	EventType string    `json:"eventType"`
}

// Reservation is one reservation of a task.
type Reservation struct {
	WorkerSid string    `json:"workerSid,omitempty"`
	Outcome   string    `json:"outcome"`
	CreatedAt time.Time `json:"createdAt,omitzero"`
	DecidedAt time.Time `json:"decidedAt,omitzero"` // first event with an outcome other than created
}

// ---- joins ------------------------------------------------------------

func minTime(dst *time.Time, t time.Time) bool {
	if t.IsZero() || !dst.IsZero() && !t.Before(*dst) {
		return false
	}
	*dst = t
	return true
}

func maxTime(dst *time.Time, t time.Time) bool {
	if !t.After(*dst) {
		return false
	}
	*dst = t
	return true
}

func maxStr(dst *string, s string) bool {
	if s <= *dst {
		return false
	}
	*dst = s
	return true
}

func or(dst *bool, b bool) bool {
	if !b || *dst {
		return false
	}
	*dst = true
	return true
}

func setBool(dst *bool, b bool) bool {
	if *dst == b {
		return false
	}
	*dst = b
	return true
}

func setInt64(dst *int64, n int64) bool {
	if *dst == n {
		return false
	}
	*dst = n
	return true
}

// offer is the last-writer-wins register of a Ref: key (At, Sid, Name).
func (r *Ref) offer(sid, name string, at time.Time) bool {
	if sid == "" {
		return false
	}
	if r.Sid != "" {
		if c := at.Compare(r.At); c < 0 || c == 0 && (sid < r.Sid || sid == r.Sid && name <= r.Name) {
			return false
		}
	}
	r.Sid, r.Name, r.At = sid, name, at
	return true
}

// ---- event kinds --------------------------------------------------------

type kind uint8

const (
	kindNone kind = iota
	kindConversation
	kindParticipant
	kindMessage
	kindTask
	kindReservation
)

var kinds = map[string]kind{
	domain.ConversationAdded: kindConversation, domain.ConversationUpdated: kindConversation,
	domain.ConversationStateChanged: kindConversation, domain.ConversationRemoved: kindConversation,
	domain.ParticipantAdded: kindParticipant, domain.ParticipantUpdated: kindParticipant,
	domain.ParticipantRemoved: kindParticipant,
	domain.MessageAdded:       kindMessage, domain.MessageUpdated: kindMessage, domain.MessageRemoved: kindMessage,
	domain.TaskCreated: kindTask, domain.TaskUpdated: kindTask, domain.TaskQueueEntered: kindTask,
	domain.TaskCanceled: kindTask, domain.TaskDeleted: kindTask, domain.TaskWrapup: kindTask,
	domain.TaskCompleted: kindTask, domain.TaskTransfer: kindTask, domain.WorkflowTimedOut: kindTask,
	domain.ReservationCreated: kindReservation, domain.ReservationAccepted: kindReservation,
	domain.ReservationRejected: kindReservation, domain.ReservationTimedOut: kindReservation,
	domain.ReservationCanceled: kindReservation, domain.ReservationRescinded: kindReservation,
	domain.ReservationWrapup: kindReservation, domain.ReservationCompleted: kindReservation,
}

// ---- task status ----------------------------------------------------------

func statusRank(s string) int {
	switch s {
	case TaskPending:
		return 1
	case TaskReserved:
		return 2
	case TaskAssigned:
		return 3
	case TaskWrapping:
		return 4
	case TaskCompleted, TaskCanceled:
		return 5
	case TaskDeleted:
		return 6
	}
	return 0
}

// statusClass: live 0, completed/canceled 1, deleted 2 (absorbing in that order).
func statusClass(s string) int {
	switch s {
	case TaskCompleted, TaskCanceled:
		return 1
	case TaskDeleted:
		return 2
	}
	return 0
}

// Live reports whether a task status is live: pending, reserved or assigned.
func Live(status string) bool {
	return status == TaskPending || status == TaskReserved || status == TaskAssigned
}

// taskStatus is the status an event puts its task in ("" if it says none).
// The type decides for the events that are themselves a status change;
// otherwise the event's TaskAssignmentStatus, else what the type implies.
func taskStatus(e *domain.Event) string {
	switch e.Type {
	case domain.TaskDeleted:
		return TaskDeleted
	case domain.TaskCanceled, domain.WorkflowTimedOut:
		return TaskCanceled
	case domain.TaskCompleted:
		return TaskCompleted
	case domain.TaskWrapup:
		return TaskWrapping
	}
	if r := statusRank(e.AssignmentStatus); r > 0 && r < 6 {
		return e.AssignmentStatus
	}
	switch e.Type {
	case domain.TaskCreated, domain.TaskQueueEntered:
		return TaskPending
	case domain.ReservationCreated:
		return TaskReserved
	case domain.ReservationAccepted:
		return TaskAssigned
	case domain.ReservationWrapup:
		return TaskWrapping
	case domain.ReservationCompleted:
		return TaskCompleted
	}
	return ""
}

// statusWins: does status s at t beat the register's current cur at curAt?
// Key: (class, At, rank, value).
func statusWins(s string, t time.Time, cur string, curAt time.Time) bool {
	if s == "" {
		return false
	}
	if cur == "" {
		return true
	}
	if a, b := statusClass(s), statusClass(cur); a != b {
		return a > b
	}
	if c := t.Compare(curAt); c != 0 {
		return c > 0
	}
	if a, b := statusRank(s), statusRank(cur); a != b {
		return a > b
	}
	return s > cur
}

// accepting: the status or event shows a reservation was accepted.
func accepting(e *domain.Event, status string) bool {
	switch e.Type {
	case domain.ReservationAccepted, domain.ReservationWrapup, domain.ReservationCompleted:
		return true
	}
	// TaskRouter only reaches these statuses through an accepted reservation.
	return status == TaskAssigned || status == TaskWrapping || status == TaskCompleted
}

// typeOrder orders event types along a task's lifecycle (transition ties).
var typeOrder = map[string]int{
	domain.TaskCreated: 1, domain.TaskQueueEntered: 2, domain.ReservationCreated: 3,
	domain.ReservationRejected: 4, domain.ReservationTimedOut: 4, domain.ReservationCanceled: 4,
	domain.ReservationRescinded: 4, domain.ReservationAccepted: 5, domain.TaskTransfer: 6,
	domain.ReservationWrapup: 7, domain.TaskWrapup: 8, domain.ReservationCompleted: 9,
	domain.TaskCompleted: 10, domain.WorkflowTimedOut: 11, domain.TaskCanceled: 12, domain.TaskDeleted: 13,
}

func compareTransitions(a, b Transition) int {
	if c := a.At.Compare(b.At); c != 0 {
		return c
	}
	if c := cmp.Compare(typeOrder[a.EventType], typeOrder[b.EventType]); c != 0 {
		return c
	}
	if c := cmp.Compare(statusRank(a.Status), statusRank(b.Status)); c != 0 {
		return c
	}
	if c := cmp.Compare(a.Status, b.Status); c != 0 {
		return c
	}
	return cmp.Compare(a.EventType, b.EventType)
}

func outcomeOf(eventType string) string {
	switch eventType {
	case domain.ReservationCreated:
		return OutcomeCreated
	case domain.ReservationAccepted:
		return OutcomeAccepted
	case domain.ReservationRejected:
		return OutcomeRejected
	case domain.ReservationTimedOut:
		return OutcomeTimeout
	case domain.ReservationCanceled:
		return OutcomeCanceled
	case domain.ReservationRescinded:
		return OutcomeRescinded
	case domain.ReservationWrapup:
		return OutcomeWrapup
	case domain.ReservationCompleted:
		return OutcomeCompleted
	}
	return ""
}

// outcomeRank: a reservation only moves forward (created → accepted →
// wrapup → completed, or created → rejected/timeout/canceled/rescinded).
func outcomeRank(o string) int {
	switch o {
	case OutcomeCreated:
		return 1
	case OutcomeAccepted:
		return 2
	case OutcomeRejected, OutcomeTimeout, OutcomeCanceled, OutcomeRescinded:
		return 3
	case OutcomeWrapup:
		return 4
	case OutcomeCompleted:
		return 5
	}
	return 0
}

func durationMs(from, to time.Time) int64 {
	if from.IsZero() || to.IsZero() || to.Before(from) {
		return 0
	}
	return to.Sub(from).Milliseconds()
}

// ---- TaskView -------------------------------------------------------------

// Apply folds one event (id: its stored event id) into the task's view and
// reports whether the view changed. Events that are not about a task, or
// about another task, change nothing.
func (v *TaskView) Apply(e domain.Event, id string) bool {
	k := kinds[e.Type]
	if k != kindTask && k != kindReservation || e.TaskSid == "" {
		return false
	}
	ch := false
	if v.Sid == "" {
		v.Sid, ch = e.TaskSid, true
	} else if v.Sid != e.TaskSid {
		return false
	}
	at := e.At.UTC()
	ch = maxStr(&v.ConversationSid, e.ConversationSid) || ch
	ch = maxStr(&v.InteractionSid, e.InteractionSid) || ch
	ch = maxStr(&v.ChannelSid, e.ChannelSid) || ch
	ch = maxStr(&v.TaskChannel, e.TaskChannel) || ch
	ch = v.Queue.offer(e.QueueSid, e.QueueName, at) || ch
	ch = v.Workflow.offer(e.WorkflowSid, e.WorkflowName, at) || ch
	ch = maxStr(&v.CanceledReason, e.CanceledReason) || ch

	status := taskStatus(&e)
	if statusWins(status, at, v.Status, v.StatusAt) {
		v.Status, v.StatusAt, ch = status, at, true
	}
	if status != "" && e.Type != domain.TaskUpdated {
		t := Transition{Status: status, At: at, EventType: e.Type}
		if i, found := slices.BinarySearchFunc(v.Transitions, t, compareTransitions); !found {
			v.Transitions, ch = slices.Insert(v.Transitions, i, t), true
		}
	}

	switch e.Type {
	case domain.TaskCreated:
		ch = minTime(&v.CreatedAt, at) || ch
	case domain.WorkflowTimedOut:
		ch = or(&v.WorkflowTimedOut, true) || ch
		ch = minTime(&v.EndedAt, at) || ch
	case domain.TaskCanceled, domain.TaskDeleted:
		ch = minTime(&v.EndedAt, at) || ch
	case domain.TaskWrapup, domain.ReservationWrapup:
		ch = minTime(&v.WrapupAt, at) || ch
	case domain.TaskCompleted:
		ch = minTime(&v.CompletedAt, at) || ch
		ch = minTime(&v.EndedAt, at) || ch
	case domain.ReservationCompleted:
		ch = minTime(&v.CompletedAt, at) || ch
	case domain.ReservationAccepted:
		ch = minTime(&v.AcceptedAt, at) || ch
	}

	if k == kindReservation && e.ReservationSid != "" {
		r, ok := v.Reservations[e.ReservationSid]
		rch := !ok
		rch = maxStr(&r.WorkerSid, e.WorkerSid) || rch
		o := outcomeOf(e.Type)
		if a, b := outcomeRank(o), outcomeRank(r.Outcome); a > b || a == b && o > r.Outcome {
			r.Outcome, rch = o, true
		}
		if o == OutcomeCreated {
			rch = minTime(&r.CreatedAt, at) || rch
		} else {
			rch = minTime(&r.DecidedAt, at) || rch
		}
		if rch {
			if v.Reservations == nil {
				v.Reservations = make(map[string]Reservation, 2)
			}
			v.Reservations[e.ReservationSid], ch = r, true
		}
	}

	ch = setInt64(&v.WaitTime, durationMs(v.CreatedAt, v.AcceptedAt)) || ch
	end := v.WrapupAt
	if end.IsZero() {
		end = v.CompletedAt
	}
	ch = setInt64(&v.HandleTime, durationMs(v.AcceptedAt, end)) || ch
	return ch
}

// ---- ConversationView ------------------------------------------------------

func stateRank(s string) int {
	switch s {
	case StateActive:
		return 1
	case StateInactive:
		return 2
	case StateClosed:
		return 3
	}
	return 0
}

// stateWins: does (s, reason) at t beat the current state register? Closed
// beats everything; among closings the earliest wins; otherwise the latest,
// ties by rank, then by the values.
func stateWins(s, reason string, t time.Time, cur, curReason string, curAt time.Time) bool {
	if stateRank(s) == 0 {
		return false
	}
	if cur == "" {
		return true
	}
	if a, b := s == StateClosed, cur == StateClosed; a != b {
		return a
	}
	if c := t.Compare(curAt); c != 0 {
		if s == StateClosed {
			return c < 0 // the earliest closing
		}
		return c > 0
	}
	if a, b := stateRank(s), stateRank(cur); a != b {
		return a > b
	}
	return reason > curReason
}

// timersWin: key (At, Closed, Inactive).
func timersWin(e *domain.Event, t time.Time, cur *Timers) bool {
	if !cur.Seen {
		return true
	}
	if c := t.Compare(cur.At); c != 0 {
		return c > 0
	}
	if e.TimerClosed != cur.Closed {
		return e.TimerClosed > cur.Closed
	}
	return e.TimerInactive > cur.Inactive
}

// Apply folds one event (id: its stored event id) into the conversation's
// view and reports whether the view changed. Task and reservation events
// update the linked task and the interaction/channel SIDs; events of other
// conversations and of types the view does not use change nothing.
func (v *ConversationView) Apply(e domain.Event, id string) bool {
	k := kinds[e.Type]
	if k == kindNone {
		return false
	}
	ch := false
	if e.ConversationSid != "" {
		if v.Sid == "" {
			v.Sid, ch = e.ConversationSid, true
		} else if v.Sid != e.ConversationSid {
			return false
		}
	}
	at := e.At.UTC()
	ch = minTime(&v.FirstSeen, at) || ch
	ch = maxTime(&v.LastActivity, at) || ch

	if e.HasTimers && timersWin(&e, at, &v.Timers) {
		v.Timers = Timers{Inactive: e.TimerInactive, Closed: e.TimerClosed, Seen: true, At: at}
		ch = true
	}

	switch k {
	case kindConversation:
		state, reason := e.State, e.Reason
		if e.Type == domain.ConversationRemoved {
			state, reason = StateClosed, ""
			ch = minTime(&v.RemovedAt, at) || ch
		}
		if stateWins(state, reason, at, v.State, v.StateReason, v.StateAt) {
			v.State, v.StateReason, v.StateAt, ch = state, reason, at, true
		}
	case kindParticipant:
		ch = v.participant(&e, at) || ch
	case kindMessage:
		ch = v.message(&e, id) || ch
	case kindTask, kindReservation:
		ch = maxStr(&v.InteractionSid, e.InteractionSid) || ch
		ch = maxStr(&v.ChannelSid, e.ChannelSid) || ch
		ch = maxStr(&v.ChannelType, e.ChannelType) || ch
		if e.TaskSid != "" {
			t, ok := v.Tasks[e.TaskSid]
			tch := !ok
			status := taskStatus(&e)
			if statusWins(status, at, t.Status, t.At) {
				t.Status, t.At, tch = status, at, true
			}
			tch = maxStr(&t.CanceledReason, e.CanceledReason) || tch
			tch = or(&t.Accepted, accepting(&e, status)) || tch
			if tch {
				if v.Tasks == nil {
					v.Tasks = make(map[string]TaskLink, 2)
				}
				v.Tasks[e.TaskSid], ch = t, true
			}
		}
	}
	return v.derive() || ch
}

func (v *ConversationView) participant(e *domain.Event, at time.Time) bool {
	if e.ParticipantSid == "" {
		return false
	}
	p, ok := v.Participants[e.ParticipantSid]
	ch := !ok
	if e.Role != "" {
		if p.Role == "" || at.After(p.RoleAt) || at.Equal(p.RoleAt) && e.Role > p.Role {
			ch = ch || p.Role != e.Role || !p.RoleAt.Equal(at)
			p.Role, p.RoleAt = e.Role, at
		}
	}
	ch = maxStr(&p.Identity, e.Identity) || ch
	ch = or(&p.IdentityPII, e.IdentityPII) || ch
	ch = maxStr(&p.Address, e.Address) || ch
	ch = maxStr(&p.ChannelType, e.ChannelType) || ch
	switch e.Type {
	case domain.ParticipantAdded:
		ch = minTime(&p.AddedAt, at) || ch
	case domain.ParticipantRemoved:
		ch = minTime(&p.RemovedAt, at) || ch
	}
	if !ch {
		return false
	}
	if v.Participants == nil {
		v.Participants = make(map[string]Participant, 2)
	}
	v.Participants[e.ParticipantSid] = p
	return true
}

func (v *ConversationView) message(e *domain.Event, id string) bool {
	switch {
	case e.Type == domain.MessageRemoved:
		return false
	case e.MessageSid != "" && e.Index >= 0:
		var ok bool
		v.MessageIndexes, ok = insertIndex(v.MessageIndexes, e.Index)
		return ok
	case e.Type == domain.MessageAdded && id != "":
		i, found := slices.BinarySearch(v.MessageKeys, id)
		if found {
			return false
		}
		v.MessageKeys = slices.Insert(v.MessageKeys, i, id)
		return true
	}
	return false
}

// insertIndex adds i to a set of sorted, disjoint, non-adjacent inclusive
// ranges; it reports whether i was new.
func insertIndex(rs [][2]int, i int) ([][2]int, bool) {
	n := len(rs)
	if n == 0 || i > rs[n-1][1]+1 {
		return append(rs, [2]int{i, i}), true
	}
	if i == rs[n-1][1]+1 { // the usual case: the next message
		rs[n-1][1] = i
		return rs, true
	}
	// The first range that ends at i-1 or later; it exists (the last one).
	k, _ := slices.BinarySearchFunc(rs, i-1, func(r [2]int, t int) int { return cmp.Compare(r[1], t) })
	r := rs[k]
	switch {
	case r[1] == i-1: // extends r upwards, maybe up to the next range
		rs[k][1] = i
		if k+1 < n && rs[k+1][0] == i+1 {
			rs[k][1] = rs[k+1][1]
			rs = slices.Delete(rs, k+1, k+2)
		}
	case r[0] <= i:
		return rs, false
	case r[0] == i+1:
		rs[k][0] = i
	default:
		rs = slices.Insert(rs, k, [2]int{i, i})
	}
	return rs, true
}

// derive recomputes the derived fields; it reports whether one changed.
func (v *ConversationView) derive() bool {
	n := len(v.MessageKeys)
	for _, r := range v.MessageIndexes {
		n += r[1] - r[0] + 1
	}
	anyAgent, present, pii := false, false, false
	for _, p := range v.Participants {
		if p.Role == domain.RoleAgent {
			anyAgent = true
			present = present || p.RemovedAt.IsZero()
		}
		pii = pii || p.IdentityPII
	}
	accepted := false
	if anyAgent {
		for _, t := range v.Tasks {
			if t.Accepted {
				accepted = true
				break
			}
		}
	}
	ch := v.MessageCount != n
	v.MessageCount = n
	ch = setBool(&v.AgentPresent, present) || ch
	ch = setBool(&v.NoCloseTimer, v.State != StateClosed && v.Timers.Closed == "") || ch
	ch = setBool(&v.PIIIdentity, pii) || ch
	ch = setBool(&v.AgentWithoutInvite, anyAgent && !accepted) || ch
	return ch
}

// OrphanCandidate: not closed, no live task, no agent present — orphaned
// once idle past the grace period.
func (v ConversationView) OrphanCandidate() bool {
	if v.State == StateClosed || v.AgentPresent {
		return false
	}
	for _, t := range v.Tasks {
		if t.Status == "" || Live(t.Status) {
			return false
		}
	}
	return true
}

// Orphaned: an orphan candidate whose LastActivity is older than now − grace.
func (v ConversationView) Orphaned(now time.Time, grace time.Duration) bool {
	return v.OrphanCandidate() && v.LastActivity.Before(now.Add(-grace))
}

// Flags names the rules the conversation breaks, in a stable order.
func (v ConversationView) Flags() []string {
	var f []string
	if v.NoCloseTimer {
		f = append(f, FlagNoCloseTimer)
	}
	if v.PIIIdentity {
		f = append(f, FlagPIIIdentity)
	}
	if v.AgentWithoutInvite {
		f = append(f, FlagAgentWithoutInvite)
	}
	return f
}

// ---- Stats ------------------------------------------------------------------

// Stats are running counts over all conversation views.
type Stats struct {
	Conversations    int            `json:"conversations"`
	ByState          map[string]int `json:"byState,omitempty"` // active, inactive, closed, unknown
	Flags            map[string]int `json:"flags,omitempty"`   // by flag name
	OrphanCandidates int            `json:"orphanCandidates"`
}

// Update moves the counts from a view as it was (nil: new) to the view as
// it is (nil: gone). Zero counts are dropped, so equal sets of views give
// equal Stats.
func (s *Stats) Update(before, after *ConversationView) {
	if before != nil {
		s.add(before, -1)
	}
	if after != nil {
		s.add(after, 1)
	}
}

func (s *Stats) add(v *ConversationView, d int) {
	s.Conversations += d
	state := v.State
	if state == "" {
		state = StateUnknown
	}
	s.ByState = bump(s.ByState, state, d)
	if v.NoCloseTimer {
		s.Flags = bump(s.Flags, FlagNoCloseTimer, d)
	}
	if v.PIIIdentity {
		s.Flags = bump(s.Flags, FlagPIIIdentity, d)
	}
	if v.AgentWithoutInvite {
		s.Flags = bump(s.Flags, FlagAgentWithoutInvite, d)
	}
	if v.OrphanCandidate() {
		s.OrphanCandidates += d
	}
}

func bump(m map[string]int, k string, d int) map[string]int {
	if m == nil {
		m = map[string]int{}
	}
	if n := m[k] + d; n != 0 {
		m[k] = n
	} else {
		delete(m, k)
	}
	return m
}
