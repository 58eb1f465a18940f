package decide

import (
	"fmt"
	"time"

	"github.com/flexstream/flexstream/projector/domain"
	"github.com/flexstream/flexstream/projector/fold"
)

// Test fixtures: the domain events of one conversation, built as the
// projector stores them (realistic SIDs: two letters + 32 hex).

var t0 = time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)

func sec(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }

func sid(prefix string, n, sub int) string { return fmt.Sprintf("%s%030x%02x", prefix, n, sub) }

var (
	chatService = sid("IS", 0, 1)
	workflow1   = sid("WW", 0, 1)
	workflow2   = sid("WW", 0, 2)
	queue1      = sid("WQ", 0, 1)
	worker1     = sid("WK", 0, 1)
	worker2     = sid("WK", 0, 2)
)

type world struct {
	n      int
	ch     string // the customer's channel type
	events []StoredEvent
	// noConv: task events carry no conversation SID (a task's own stream);
	// noChannel: they carry no interaction or channel SID.
	noConv, noChannel bool
}

func newWorld(n int, channel string) *world { return &world{n: n, ch: channel} }

func (w *world) conv() string        { return sid("CH", w.n, 0) }
func (w *world) task(i int) string   { return sid("WT", w.n, i) }
func (w *world) interaction() string { return sid("KD", w.n, 0) }
func (w *world) channel() string     { return sid("UO", w.n, 0) }
func (w *world) address() string     { return w.ch + ":phone:pseudo" + fmt.Sprint(w.n) }

func (w *world) add(e domain.Event) *world {
	w.events = append(w.events, StoredEvent{ID: fmt.Sprintf("ev-%d-%03d", w.n, len(w.events)), Type: e.Type, Event: e})
	return w
}

// c adds a Conversations event.
func (w *world) c(typ string, s int, f func(*domain.Event)) *world {
	e := domain.Event{Type: typ, At: sec(s), ConversationSid: w.conv(), ChatServiceSid: chatService}
	if f != nil {
		f(&e)
	}
	return w.add(e)
}

func (w *world) opened(s int) *world {
	return w.c(domain.ConversationAdded, s, func(e *domain.Event) { e.State = fold.StateActive })
}

func (w *world) closed(s int) *world {
	return w.c(domain.ConversationStateChanged, s, func(e *domain.Event) { e.State, e.Reason = fold.StateClosed, "API" })
}

func (w *world) customer(s int) *world {
	return w.c(domain.ParticipantAdded, s, func(e *domain.Event) {
		e.ParticipantSid, e.Role = sid("MB", w.n, 1), domain.RoleCustomer
		e.Address, e.ChannelType = w.address(), w.ch
	})
}

func (w *world) agent(typ string, s, p int) *world {
	return w.c(typ, s, func(e *domain.Event) {
		e.ParticipantSid, e.Role, e.ChannelType, e.Identity = sid("MB", w.n, p), domain.RoleAgent, "chat", "agent.alice"
	})
}

func (w *world) msg(s, index int, author string) *world {
	return w.c(domain.MessageAdded, s, func(e *domain.Event) {
		e.MessageSid, e.Index, e.Author, e.BodyLength = sid("IM", w.n, index), index, author, 12
	})
}

func (w *world) customerMsg(s, index int) *world { return w.msg(s, index, w.address()) }

// t adds a TaskRouter event of task i (status: its TaskAssignmentStatus).
func (w *world) t(typ string, s, i int, status string, f func(*domain.Event)) *world {
	e := domain.Event{
		Type: typ, At: sec(s), ConversationSid: w.conv(), TaskSid: w.task(i),
		InteractionSid: w.interaction(), ChannelSid: w.channel(), ChannelType: w.ch,
		WorkflowSid: workflow1, WorkflowName: "Flex Default", QueueSid: queue1, QueueName: "Support",
		TaskChannel: "chat", AssignmentStatus: status,
	}
	if w.noConv {
		e.ConversationSid = ""
	}
	if w.noChannel {
		e.InteractionSid, e.ChannelSid = "", ""
	}
	if f != nil {
		f(&e)
	}
	return w.add(e)
}

// r adds a reservation event of task i.
func (w *world) r(typ string, s, i, res int, worker, status string) *world {
	return w.t(typ, s, i, status, func(e *domain.Event) { e.ReservationSid, e.WorkerSid = sid("WR", w.n, res), worker })
}

// created adds TaskCreated and TaskQueueEntered of task i, with attributes.
func (w *world) created(s, i int, attrs string) *world {
	return w.t(domain.TaskCreated, s, i, fold.TaskPending, func(e *domain.Event) {
		if attrs != "" {
			e.TaskAttributes = []byte(attrs)
		}
	}).t(domain.TaskQueueEntered, s, i, fold.TaskPending, nil)
}

func (w *world) canceled(s, i int, reason string) *world {
	return w.t(domain.TaskCanceled, s, i, fold.TaskCanceled, func(e *domain.Event) { e.CanceledReason = reason })
}

func (w *world) timedOut(s, i int) *world {
	return w.t(domain.WorkflowTimedOut, s, i, fold.TaskPending, nil).canceled(s, i, "Workflow Timeout")
}

// mod changes every task event of task i.
func (w *world) mod(i int, f func(*domain.Event)) *world {
	for k := range w.events {
		if e := &w.events[k].Event; e.TaskSid == w.task(i) {
			f(e)
		}
	}
	return w
}

func (w *world) state() State { return StateFrom(w.events) }

func (w *world) trigger(typ string, s, i int) Trigger {
	return Trigger{EventID: fmt.Sprintf("trigger-%d-%d", w.n, i), EventType: typ, TaskSid: w.task(i), At: sec(s)}
}

// ---- lifecycles (the ends DESIGN §7 reacts to) ----

// timeoutWorld: an SMS customer waits; the workflow times out at 122 s.
func timeoutWorld(ch, attrs string) *world {
	return newWorld(1, ch).opened(0).customer(0).customerMsg(1, 0).
		created(2, 1, attrs).
		timedOut(122, 1)
}

// failedCreateWorld: the interaction's task is canceled before any
// reservation (R4).
func failedCreateWorld(ch, attrs string) *world {
	return newWorld(2, ch).opened(0).customer(0).customerMsg(1, 0).
		created(2, 1, attrs).
		canceled(5, 1, "Interaction creation failed")
}

// rejectedWorld: a known-agent invite (worker1) is rejected by that worker
// and the task canceled (R3).
func rejectedWorld(ch, attrs string) *world {
	return newWorld(3, ch).opened(0).customer(0).customerMsg(1, 0).
		created(2, 1, attrs).
		r(domain.ReservationCreated, 3, 1, 1, worker1, fold.TaskReserved).
		r(domain.ReservationRejected, 9, 1, 1, worker1, fold.TaskPending).
		canceled(9, 1, "Task canceled on reservation rejected")
}

// acceptedWorld: an agent took the task and left; then it was canceled.
func acceptedWorld(ch string) *world {
	return newWorld(4, ch).opened(0).customer(0).customerMsg(1, 0).
		created(2, 1, "").
		r(domain.ReservationCreated, 3, 1, 1, worker1, fold.TaskReserved).
		r(domain.ReservationAccepted, 5, 1, 1, worker1, fold.TaskAssigned).
		agent(domain.ParticipantAdded, 6, 2).
		agent(domain.ParticipantRemoved, 20, 2).
		canceled(30, 1, "Canceled by supervisor")
}

// deletedWorld: the task is deleted while the conversation is open.
func deletedWorld(ch string) *world {
	return newWorld(5, ch).opened(0).customer(0).customerMsg(1, 0).
		created(2, 1, "").
		t(domain.TaskDeleted, 4, 1, fold.TaskPending, nil)
}

// attempt is the attributes of a task a re-invite of ours created.
func attempt(n int, worker string) string {
	w := ""
	if worker != "" {
		w = `,"worker_sid":"` + worker + `"`
	}
	return fmt.Sprintf(`{"conversationSid":"CH…","from":"whatsapp:phone:pseudo","flexstream":{"reaction":"workflow.timeout/reinvite","attempt":%d%s}}`, n, w)
}
