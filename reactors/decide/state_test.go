package decide

import (
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"

	"github.com/flexstream/flexstream/projector/domain"
	"github.com/flexstream/flexstream/projector/fold"
)

// richWorld has two served tasks, messages of both sides, attributes
// that change, a message without a SID and an event of another kind.
func richWorld() *world {
	w := newWorld(60, "whatsapp").opened(0).customer(0).
		customerMsg(1, 0).
		created(2, 1, `{"from":"whatsapp:phone:pseudo60"}`).
		t(domain.TaskUpdated, 3, 1, fold.TaskPending, func(e *domain.Event) {
			e.TaskAttributes = []byte(`{"from":"whatsapp:phone:pseudo60","priority":2}`)
		}).
		t(domain.TaskUpdated, 3, 1, fold.TaskPending, func(e *domain.Event) { e.TaskAttributes = []byte(`{"a":1}`) }). // same At: the larger wins
		t(domain.TaskUpdated, 4, 1, fold.TaskPending, func(e *domain.Event) { e.TaskAttributes = []byte("null") }).    // empty: ignored
		r(domain.ReservationCreated, 5, 1, 1, worker1, fold.TaskReserved).
		r(domain.ReservationAccepted, 6, 1, 1, worker1, fold.TaskAssigned).
		agent(domain.ParticipantAdded, 7, 2).
		msg(8, 1, "agent.alice").
		customerMsg(30, 2).
		msg(40, 3, "agent.alice").
		t(domain.TaskCompleted, 50, 1, fold.TaskCompleted, nil).
		created(60, 2, attempt(1, worker1)).
		r(domain.ReservationCreated, 61, 2, 2, worker2, fold.TaskReserved).
		r(domain.ReservationAccepted, 62, 2, 2, worker2, fold.TaskAssigned).
		r(domain.ReservationCreated, 61, 2, 3, worker1, fold.TaskReserved).
		r(domain.ReservationRejected, 63, 2, 3, worker1, fold.TaskAssigned).
		c(domain.MessageAdded, 70, func(e *domain.Event) { e.Author = "someone.else" }). // no MessageSid
		c(domain.DeliveryUpdated, 71, func(e *domain.Event) { e.DeliveryStatus = "read" }).
		c(domain.TwilioEvent, 72, nil)
	return w
}

func TestStateFrom(t *testing.T) {
	w := richWorld()
	s := w.state()
	if s.Conversation.Sid != w.conv() || s.ChatServiceSid != chatService {
		t.Errorf("conversation %q, service %q", s.Conversation.Sid, s.ChatServiceSid)
	}
	if got := slices.Sorted(func(yield func(string) bool) {
		for k := range s.Tasks {
			if !yield(k) {
				return
			}
		}
	}); !slices.Equal(got, []string{w.task(1), w.task(2)}) {
		t.Errorf("tasks %v", got)
	}
	if s.Tasks[w.task(1)].Status != fold.TaskCompleted || s.Tasks[w.task(2)].Status != fold.TaskAssigned {
		t.Errorf("task views: %+v", s.Tasks)
	}
	if !s.LastCustomerMessage.Equal(sec(30)) {
		t.Errorf("LastCustomerMessage = %v, want %v (the agent's later messages do not count)", s.LastCustomerMessage, sec(30))
	}
	if got := string(s.TaskAttributes[w.task(1)]); got != `{"from":"whatsapp:phone:pseudo60","priority":2}` {
		t.Errorf("attributes of task 1: %s", got)
	}
	if got := string(s.TaskAttributes[w.task(2)]); got != attempt(1, worker1) {
		t.Errorf("attributes of task 2: %s", got)
	}
	if s.KnownAgent != worker2 {
		t.Errorf("KnownAgent = %q, want %q (the latest accepted)", s.KnownAgent, worker2)
	}
}

func TestStateFromCustomerByIdentity(t *testing.T) {
	w := newWorld(61, "chat").opened(0).
		c(domain.ParticipantAdded, 0, func(e *domain.Event) {
			e.ParticipantSid, e.Role, e.Identity, e.ChannelType = sid("MB", 61, 1), domain.RoleCustomer, "user:pseudo61", "chat"
		}).
		msg(5, 0, "user:pseudo61").
		msg(9, 1, "agent.alice")
	if s := w.state(); !s.LastCustomerMessage.Equal(sec(5)) {
		t.Errorf("LastCustomerMessage = %v", s.LastCustomerMessage)
	}
	// Messages before the participant is known count too (order independence).
	w = newWorld(62, "chat").msg(5, 0, "user:pseudo62").opened(0)
	w.c(domain.ParticipantAdded, 6, func(e *domain.Event) {
		e.ParticipantSid, e.Role, e.Identity = sid("MB", 62, 1), domain.RoleCustomer, "user:pseudo62"
	})
	if s := w.state(); !s.LastCustomerMessage.Equal(sec(5)) {
		t.Errorf("LastCustomerMessage = %v", s.LastCustomerMessage)
	}
	if s := newWorld(63, "chat").opened(0).msg(5, 0, "nobody").state(); !s.LastCustomerMessage.IsZero() {
		t.Error("a message with no customer participant counted")
	}
}

func TestKnownAgentTie(t *testing.T) {
	w := newWorld(64, "sms").opened(0).created(1, 1, "").created(1, 2, "").
		r(domain.ReservationAccepted, 5, 1, 1, worker1, fold.TaskAssigned).
		r(domain.ReservationAccepted, 5, 2, 2, worker2, fold.TaskAssigned) // WR…02 > WR…01
	if s := w.state(); s.KnownAgent != worker2 {
		t.Errorf("KnownAgent = %q, want %q (ties by reservation SID)", s.KnownAgent, worker2)
	}
	if s := timeoutWorld("sms", "").state(); s.KnownAgent != "" {
		t.Errorf("KnownAgent = %q with no accepted reservation", s.KnownAgent)
	}
}

func TestStateFromOrderIndependent(t *testing.T) {
	worlds := map[string]*world{
		"rich":          richWorld(),
		"timeout":       timeoutWorld("whatsapp", attempt(1, "")),
		"failed-create": failedCreateWorld("sms", ""),
		"rejected":      rejectedWorld("sms", `{"worker_sid":"`+worker1+`"}`),
		"accepted":      acceptedWorld("chat"),
		"deleted":       deletedWorld("chat"),
	}
	for name, w := range worlds {
		t.Run(name, func(t *testing.T) {
			want := w.state()
			rng := rand.New(rand.NewPCG(7, uint64(len(name))))
			for i := range 50 {
				evs := slices.Clone(w.events)
				for range rng.IntN(4) { // redeliveries
					evs = append(evs, evs[rng.IntN(len(evs))])
				}
				rng.Shuffle(len(evs), func(i, j int) { evs[i], evs[j] = evs[j], evs[i] })
				if got := StateFrom(evs); !reflect.DeepEqual(got, want) {
					t.Fatalf("shuffle %d: state differs\n got  %s\n want %s", i, mustJSON(t, got), mustJSON(t, want))
				}
			}
		})
	}
}

func TestStateFromEmpty(t *testing.T) {
	s := StateFrom(nil)
	if s.Conversation.Sid != "" || s.Tasks != nil || s.TaskAttributes != nil || !s.LastCustomerMessage.IsZero() || s.KnownAgent != "" {
		t.Errorf("%+v", s)
	}
	// The Type of a StoredEvent is the event's type, whatever its data says.
	w := deletedWorld("chat")
	for i := range w.events {
		w.events[i].Event.Type = ""
	}
	if s := w.state(); s.Tasks[w.task(1)].Status != fold.TaskDeleted {
		t.Errorf("type taken from the data, not the StoredEvent: %+v", s.Tasks)
	}
}
