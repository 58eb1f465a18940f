package fold

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/flexstream/flexstream/projector/domain"
)

// Test fixtures: event builders and lifecycles, shared by the table,
// property, stats tests and the benchmark.

var t0 = time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)

func sec(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }

func sid(prefix string, n, sub int) string { return fmt.Sprintf("%s%030x%02x", prefix, n, sub) }

// ev is an event with its stored id.
type ev struct {
	id string
	e  domain.Event
}

// world builds the events of one conversation number n.
type world struct {
	n      int
	events []ev
	ch     string // channel type of the customer
}

func newWorld(n int, channel string) *world { return &world{n: n, ch: channel} }

func (w *world) conv() string { return sid("CH", w.n, 0) }
func (w *world) task(i int) string {
	return sid("WT", w.n, i)
}

func (w *world) add(e domain.Event) *world {
	w.events = append(w.events, ev{id: fmt.Sprintf("ev-%d-%03d", w.n, len(w.events)), e: e})
	return w
}

func (w *world) c(typ string, s int, f func(*domain.Event)) *world {
	e := domain.Event{Type: typ, At: sec(s), ConversationSid: w.conv(), ChatServiceSid: "IS00000000000000000000000000000000"}
	if f != nil {
		f(&e)
	}
	return w.add(e)
}

func (w *world) state(typ string, s int, state, reason string) *world {
	return w.c(typ, s, func(e *domain.Event) { e.State, e.Reason = state, reason })
}

func (w *world) customer(s int, p int) *world {
	return w.c(domain.ParticipantAdded, s, func(e *domain.Event) {
		e.ParticipantSid, e.Role = sid("MB", w.n, p), domain.RoleCustomer
		e.Address, e.ChannelType = w.ch+":phone:k3J9x…42", w.ch
	})
}

func (w *world) agent(typ string, s int, p int, identity string, pii bool) *world {
	return w.c(typ, s, func(e *domain.Event) {
		e.ParticipantSid, e.Role, e.ChannelType = sid("MB", w.n, p), domain.RoleAgent, "chat"
		e.Identity, e.IdentityPII = identity, pii
	})
}

func (w *world) msg(s, index int) *world {
	return w.c(domain.MessageAdded, s, func(e *domain.Event) {
		e.MessageSid, e.Index, e.BodyLength = sid("IM", w.n, index), index, 20+index
	})
}

// t adds a TaskRouter event of task i (status: TaskAssignmentStatus).
func (w *world) t(typ string, s, i int, status string, f func(*domain.Event)) *world {
	e := domain.Event{
		Type: typ, At: sec(s), ConversationSid: w.conv(), TaskSid: w.task(i),
		InteractionSid: sid("KD", w.n, 0), ChannelSid: sid("UO", w.n, 0), ChannelType: w.ch,
		WorkflowSid: sid("WW", 0, 1), WorkflowName: "Flex Default", QueueSid: sid("WQ", 0, 1), QueueName: "Support",
		TaskChannel: "chat", AssignmentStatus: status,
	}
	if f != nil {
		f(&e)
	}
	return w.add(e)
}

// r adds a reservation event of task i.
func (w *world) r(typ string, s, i, res int, worker, status string) *world {
	return w.t(typ, s, i, status, func(e *domain.Event) {
		e.ReservationSid, e.WorkerSid = sid("WR", w.n, res), worker
	})
}

var worker1 = sid("WK", 0, 1)

// ---- lifecycles ----

func fullLifecycle(n int) *world {
	w := newWorld(n, "whatsapp")
	return w.state(domain.ConversationAdded, 0, StateActive, "").
		customer(1, 1).
		msg(2, 0).msg(3, 1).msg(4, 2).
		t(domain.TaskCreated, 5, 1, TaskPending, nil).
		r(domain.ReservationCreated, 8, 1, 1, worker1, TaskReserved).
		r(domain.ReservationAccepted, 12, 1, 1, worker1, TaskAssigned).
		agent(domain.ParticipantAdded, 13, 2, "agent.alice", false).
		msg(20, 3).
		t(domain.TaskWrapup, 60, 1, TaskWrapping, nil).
		t(domain.TaskCompleted, 90, 1, TaskCompleted, nil).
		state(domain.ConversationStateChanged, 100, StateClosed, "API")
}

func workflowTimeoutLifecycle(n int) *world {
	w := newWorld(n, "sms")
	return w.state(domain.ConversationAdded, 0, StateActive, "").
		customer(0, 1).
		msg(1, 0).
		t(domain.TaskCreated, 2, 1, TaskPending, nil).
		t(domain.TaskQueueEntered, 2, 1, TaskPending, nil).
		t(domain.WorkflowTimedOut, 122, 1, TaskPending, nil).
		t(domain.TaskCanceled, 122, 1, TaskCanceled, func(e *domain.Event) { e.CanceledReason = "Workflow Timeout" })
}

func declinedLifecycle(n int) *world {
	w := newWorld(n, "whatsapp")
	return w.state(domain.ConversationAdded, 0, StateActive, "").
		customer(0, 1).
		msg(1, 0).
		t(domain.TaskCreated, 3, 1, TaskPending, nil).
		r(domain.ReservationCreated, 3, 1, 1, worker1, TaskReserved).
		r(domain.ReservationRejected, 9, 1, 1, worker1, TaskPending).
		t(domain.TaskCanceled, 9, 1, TaskCanceled, func(e *domain.Event) { e.CanceledReason = "Task canceled on reservation rejected" })
}

func deletedLifecycle(n int) *world {
	w := newWorld(n, "chat")
	return w.state(domain.ConversationAdded, 0, StateActive, "").
		t(domain.TaskCreated, 1, 1, TaskPending, nil).
		r(domain.ReservationCreated, 2, 1, 1, worker1, TaskReserved).
		r(domain.ReservationCanceled, 4, 1, 1, worker1, TaskCanceled).
		t(domain.TaskDeleted, 4, 1, TaskReserved, nil)
}

// messyLifecycle has ties, reopenings, timers, transfers, removals,
// redundant and index-less events: the hard cases for order independence.
func messyLifecycle(n int) *world {
	w := newWorld(n, "whatsapp")
	w.state(domain.ConversationAdded, 0, StateActive, "").
		c(domain.ConversationUpdated, 0, func(e *domain.Event) {
			e.State, e.HasTimers, e.TimerInactive = StateActive, true, "2026-03-01T11:00:00Z"
		}).
		c(domain.ConversationUpdated, 0, func(e *domain.Event) { // same At, other timers
			e.State, e.HasTimers, e.TimerInactive, e.TimerClosed = StateActive, true, "2026-03-01T11:00:00Z", "2026-03-02T10:00:00Z"
		}).
		customer(1, 1).
		c(domain.ParticipantUpdated, 1, func(e *domain.Event) { // same participant, same At, other role
			e.ParticipantSid, e.Role, e.Address, e.ChannelType = sid("MB", w.n, 1), domain.RoleBot, "whatsapp:phone:k3J9x…42", "whatsapp"
		}).
		msg(2, 0).msg(2, 2).msg(3, 5).msg(3, 1).msg(4, 4).msg(4, 3).
		c(domain.MessageAdded, 5, func(e *domain.Event) { e.BodyLength = 3 }). // no MessageSid
		c(domain.MessageUpdated, 6, func(e *domain.Event) { e.MessageSid, e.Index = sid("IM", w.n, 1), 1 }).
		c(domain.MessageRemoved, 7, func(e *domain.Event) { e.MessageSid, e.Index = sid("IM", w.n, 2), 2 }).
		state(domain.ConversationStateChanged, 10, StateInactive, "TIMER").
		state(domain.ConversationUpdated, 10, StateActive, "").
		state(domain.ConversationStateChanged, 11, StateActive, "EVENT").
		t(domain.TaskCreated, 11, 1, TaskPending, nil).
		r(domain.ReservationCreated, 11, 1, 1, worker1, TaskReserved).
		r(domain.ReservationTimedOut, 31, 1, 1, worker1, TaskPending).
		r(domain.ReservationCreated, 31, 1, 2, sid("WK", 0, 2), TaskReserved).
		r(domain.ReservationAccepted, 33, 1, 2, sid("WK", 0, 2), TaskAssigned).
		agent(domain.ParticipantAdded, 34, 2, "agent.bob", false).
		t(domain.TaskTransfer, 40, 1, TaskAssigned, nil).
		t(domain.TaskCreated, 41, 2, TaskPending, func(e *domain.Event) { e.QueueSid, e.QueueName = sid("WQ", 0, 2), "Escalations" }).
		t(domain.TaskUpdated, 41, 2, TaskPending, func(e *domain.Event) { e.QueueSid, e.QueueName = sid("WQ", 0, 3), "Billing" }).
		t(domain.TaskUpdated, 41, 2, TaskPending, func(e *domain.Event) { e.QueueSid, e.QueueName = sid("WQ", 0, 3), "" }).
		r(domain.ReservationCreated, 42, 2, 3, sid("WK", 0, 3), TaskReserved).
		r(domain.ReservationRescinded, 42, 2, 4, sid("WK", 0, 4), TaskReserved).
		r(domain.ReservationAccepted, 43, 2, 3, sid("WK", 0, 3), TaskAssigned).
		agent(domain.ParticipantAdded, 44, 3, "+15551234567", true).
		r(domain.ReservationWrapup, 45, 1, 2, sid("WK", 0, 2), TaskAssigned).
		t(domain.TaskWrapup, 45, 1, TaskWrapping, nil).
		agent(domain.ParticipantRemoved, 46, 2, "agent.bob", false).
		t(domain.TaskCompleted, 47, 1, TaskCompleted, nil).
		r(domain.ReservationCompleted, 47, 1, 2, sid("WK", 0, 2), TaskCompleted).
		t(domain.TaskDeleted, 90, 1, TaskCompleted, nil).
		state(domain.ConversationUpdated, 100, StateClosed, "").
		state(domain.ConversationStateChanged, 100, StateClosed, "API").
		state(domain.ConversationUpdated, 120, StateActive, ""). // after closing: ignored
		c(domain.ConversationRemoved, 200, nil).
		c(domain.DeliveryUpdated, 5, func(e *domain.Event) { e.DeliveryStatus = "read" }).
		c(domain.TwilioEvent, 5, nil)
	for i := range w.events { // task 2 was moved to Billing
		if e := &w.events[i].e; e.TaskSid == w.task(2) && e.Type != domain.TaskCreated && e.Type != domain.TaskUpdated {
			e.QueueSid, e.QueueName = sid("WQ", 0, 3), "Billing"
		}
	}
	return w
}

func flagsR5Lifecycle(n int) *world { // active, no close timer; then only an inactive timer
	w := newWorld(n, "sms")
	return w.state(domain.ConversationAdded, 0, StateActive, "").
		c(domain.ConversationUpdated, 1, func(e *domain.Event) { e.HasTimers, e.TimerInactive = true, "2026-03-01T10:30:00Z" }).
		customer(1, 1)
}

func flagsR6R7Lifecycle(n int) *world { // an agent with a phone identity and no reservation
	w := newWorld(n, "chat")
	return w.state(domain.ConversationAdded, 0, StateActive, "").
		c(domain.ConversationUpdated, 0, func(e *domain.Event) { e.HasTimers, e.TimerClosed = true, "2026-03-02T10:00:00Z" }).
		agent(domain.ParticipantAdded, 1, 1, "+15551234567", true).
		t(domain.TaskCreated, 2, 1, TaskPending, nil)
}

type lifecycle struct {
	name  string
	build func(n int) *world
}

var lifecycles = []lifecycle{
	{"full", fullLifecycle},
	{"workflow-timeout", workflowTimeoutLifecycle},
	{"declined", declinedLifecycle},
	{"deleted", deletedLifecycle},
	{"messy", messyLifecycle},
	{"r5", flagsR5Lifecycle},
	{"r6-r7", flagsR6R7Lifecycle},
}

// folded is one conversation's views.
type folded struct {
	conv  ConversationView
	tasks map[string]*TaskView
}

func newFolded() *folded { return &folded{tasks: map[string]*TaskView{}} }

// apply folds as the projection does: into the conversation's view and
// into the task's. With roundTrip, each view goes through JSON before and
// after the event, as when it is stored between events. It returns what
// Apply reported and whether the JSON changed, for both views.
func (f *folded) apply(t testing.TB, x ev, roundTrip bool) {
	t.Helper()
	if x.e.ConversationSid != "" {
		before := mustJSON(t, f.conv)
		if roundTrip {
			f.conv = ConversationView{}
			mustUnmarshal(t, before, &f.conv)
		}
		changed := f.conv.Apply(x.e, x.id)
		after := mustJSON(t, f.conv)
		if changed != (string(before) != string(after)) {
			t.Fatalf("conversation: Apply(%s %s) reported changed=%v, JSON changed=%v\nbefore %s\nafter  %s",
				x.e.Type, x.id, changed, !changed, before, after)
		}
		if roundTrip {
			f.conv = ConversationView{}
			mustUnmarshal(t, after, &f.conv)
		}
	}
	if x.e.TaskSid != "" {
		tv := f.tasks[x.e.TaskSid]
		if tv == nil {
			tv = &TaskView{Sid: x.e.TaskSid}
			f.tasks[x.e.TaskSid] = tv
		}
		before := mustJSON(t, tv)
		if roundTrip {
			*tv = TaskView{}
			mustUnmarshal(t, before, tv)
		}
		changed := tv.Apply(x.e, x.id)
		after := mustJSON(t, tv)
		if changed != (string(before) != string(after)) {
			t.Fatalf("task: Apply(%s %s) reported changed=%v\nbefore %s\nafter  %s", x.e.Type, x.id, changed, before, after)
		}
		if roundTrip {
			*tv = TaskView{}
			mustUnmarshal(t, after, tv)
		}
	}
}

func (f *folded) json(t testing.TB) string {
	b, err := json.MarshalIndent(struct {
		Conv  ConversationView     `json:"conversation"`
		Tasks map[string]*TaskView `json:"tasks"`
	}{f.conv, f.tasks}, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func foldAll(t testing.TB, events []ev, roundTrip bool) *folded {
	f := newFolded()
	for _, x := range events {
		f.apply(t, x, roundTrip)
	}
	return f
}

func mustJSON(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func mustUnmarshal(t testing.TB, b []byte, v any) {
	t.Helper()
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatal(err)
	}
}
