package audit

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/flexstream/flexstream/internal/eventstore"
	"github.com/flexstream/flexstream/projector/domain"
	"github.com/flexstream/flexstream/reactors/act"
	"github.com/flexstream/flexstream/reactors/decide"
	"github.com/flexstream/flexstream/reactors/engine"
)

func sid(prefix string, n int) string { return fmt.Sprintf("%s%032x", prefix, n) }

var (
	t0       = time.Date(2025, 3, 1, 10, 0, 0, 0, time.UTC)
	ch       = sid("CH", 1)
	is       = sid("IS", 1)
	kd       = sid("KD", 1)
	uo       = sid("UO", 1)
	wt1      = sid("WT", 1)
	wt2      = sid("WT", 2)
	wq       = sid("WQ", 1)
	ww       = sid("WW", 1)
	wwBack   = sid("WW", 2)
	wr1      = sid("WR", 1)
	wk1      = sid("WK", 1)
	im1      = sid("IM", 1)
	im2      = sid("IM", 2)
	kg1      = sid("KG", 1)
	mb1      = sid("MB", 1)
	customer = "whatsapp:ph:0123456789abcdef0123:67" // a pseudonym, as the store holds
)

// store is an in-memory event store: streams in append order, positions
// global, like the embedded one. It is an audit.Reader.
type store struct {
	streams map[string][]eventstore.RecordedEvent
	all     []eventstore.RecordedEvent
	reads   []string
	fail    string // a stream whose read fails
}

func newStore() *store { return &store{streams: map[string][]eventstore.RecordedEvent{}} }

func (s *store) append(stream, typ string, data, meta any) eventstore.RecordedEvent {
	d, err := json.Marshal(data)
	if err != nil {
		panic(err)
	}
	var m []byte
	if meta != nil {
		if m, err = json.Marshal(meta); err != nil {
			panic(err)
		}
	}
	ev := eventstore.RecordedEvent{
		ID: uuid.NewSHA1(uuid.NameSpaceOID, []byte(fmt.Sprint(stream, len(s.all)))), Stream: stream,
		Revision: uint64(len(s.streams[stream])), Position: uint64(len(s.all) + 1), Type: typ,
		ContentType: "application/json", Created: t0.Add(time.Hour), Data: d, Metadata: m,
	}
	s.streams[stream] = append(s.streams[stream], ev)
	s.all = append(s.all, ev)
	return ev
}

// twilio appends a domain event as the projector does: to its stream,
// with its metadata.
func (s *store) twilio(typ, ceType string, at time.Time, e domain.Event) eventstore.RecordedEvent {
	e.Type, e.CEType, e.At = typ, ceType, at
	stream := domain.StreamFor(e, "x")
	meta := domain.Metadata{CorrelationID: e.ConversationSid, CausationID: "EV" + fmt.Sprint(len(s.all)), Topic: "twilio.events.v1", Offset: int64(len(s.all)), ReceivedAt: at.Add(200 * time.Millisecond)}
	return s.append(stream, typ, e, meta)
}

func (s *store) reaction(task, typ string, data any) eventstore.RecordedEvent {
	return s.append(engine.StreamPrefix+task, typ, data, nil)
}

func (s *store) ReadStream(_ context.Context, stream string, from, max uint64, fn func(eventstore.RecordedEvent) error) error {
	s.reads = append(s.reads, stream)
	if stream == s.fail {
		return &eventstore.Error{Op: "read", Stream: stream, Err: eventstore.ErrUnavailable}
	}
	evs, ok := s.streams[stream]
	if !ok {
		return fmt.Errorf("read %s: %w", stream, eventstore.ErrStreamNotFound)
	}
	for _, ev := range evs[from:min(uint64(len(evs)), from+max)] {
		if err := fn(ev); err != nil {
			return err
		}
	}
	return nil
}

func (s *store) ReadAll(_ context.Context, from, max uint64, fn func(eventstore.RecordedEvent) error) error {
	s.reads = append(s.reads, "$all")
	all := append([]eventstore.RecordedEvent(nil), s.all...)
	sort.Slice(all, func(i, j int) bool { return all[i].Position < all[j].Position })
	for _, ev := range all {
		if ev.Position < from {
			continue
		}
		if err := fn(ev); err != nil {
			return err
		}
	}
	return nil
}

func sec(s float64) time.Duration { return time.Duration(s*1000) * time.Millisecond }

// timeoutConversation is the story of the issue: a WhatsApp customer
// writes, the first task times out in the workflow, the reactor sends a
// message and re-invites, the new task is created and accepted.
func timeoutConversation() (*store, map[string]eventstore.RecordedEvent) {
	s := newStore()
	ev := map[string]eventstore.RecordedEvent{}
	conv := domain.Event{ConversationSid: ch, ChatServiceSid: is}
	with := func(f func(*domain.Event)) domain.Event {
		e := conv
		f(&e)
		return e
	}
	ev["added"] = s.twilio(domain.ConversationAdded, "com.twilio.conversations.conversation.added", t0, with(func(e *domain.Event) {
		e.State, e.HasTimers, e.TimerInactive = "active", true, "PT5M"
	}))
	ev["customer"] = s.twilio(domain.ParticipantAdded, "com.twilio.conversations.participant.added", t0.Add(sec(1)), with(func(e *domain.Event) {
		e.ParticipantSid, e.Role, e.Address, e.ChannelType = mb1, domain.RoleCustomer, customer, "whatsapp"
	}))
	ev["message"] = s.twilio(domain.MessageAdded, "com.twilio.conversations.message.added", t0.Add(sec(2)), with(func(e *domain.Event) {
		e.MessageSid, e.Index, e.Author, e.BodyLength = im1, 0, customer, 12
	}))
	task := func(f func(*domain.Event)) domain.Event {
		return with(func(e *domain.Event) {
			e.TaskSid, e.InteractionSid, e.ChannelSid, e.WorkflowSid, e.QueueSid, e.QueueName = wt1, kd, uo, ww, wq, "Support"
			f(e)
		})
	}
	ev["created1"] = s.twilio(domain.TaskCreated, "com.twilio.taskrouter.task.created", t0.Add(sec(3)), task(func(e *domain.Event) {
		e.AssignmentStatus, e.TaskChannel = "pending", "chat"
		e.TaskAttributes = json.RawMessage(`{"conversationSid":"` + ch + `","from":"` + customer + `"}`)
	}))
	ev["timeout"] = s.twilio(domain.WorkflowTimedOut, "com.twilio.taskrouter.workflow.timeout", t0.Add(sec(63)), task(func(e *domain.Event) {}))
	ev["canceled1"] = s.twilio(domain.TaskCanceled, "com.twilio.taskrouter.task.canceled", t0.Add(sec(63)), task(func(e *domain.Event) {
		e.AssignmentStatus, e.CanceledReason = "canceled", "Workflow Timeout"
	}))
	plan := decide.Plan{
		Kind: decide.KindWorkflowTimeout, Rule: "workflow.timeout/default", Attempt: 0,
		Reason:   "task " + wt1 + ": workflow timed out in queue " + wq + "; message, re-invite 1 of 2 through " + wwBack,
		Deadline: t0.Add(sec(63) + 10*time.Minute),
		Actions: []decide.Action{
			{Kind: decide.ActMessage, ChatServiceSid: is, ConversationSid: ch, Body: "We are still looking for an agent for you."},
			{Kind: decide.ActReinvite, InteractionSid: kd, ChannelSid: uo, WorkflowSid: wwBack, TaskChannel: "chat", Attempt: 1},
		},
	}
	ev["planned"] = s.reaction(wt1, engine.EvPlanned, engine.Planned{
		Trigger: engine.TriggerInfo{EventID: ev["timeout"].ID.String(), EventType: domain.WorkflowTimedOut, Stream: "conversation-" + ch,
			Position: ev["timeout"].Position, TaskSid: wt1, At: t0.Add(sec(63))},
		Plan: plan, Owner: "reactor", At: t0.Add(sec(65)),
	})
	ev["started0"] = s.reaction(wt1, engine.EvStarted, engine.Step{Action: 0, Attempt: 1, Owner: "reactor", At: t0.Add(sec(65.1))})
	ev["sent"] = s.reaction(wt1, engine.EvSucceeded, engine.Step{Action: 0, Attempt: 1, Owner: "reactor", At: t0.Add(sec(65.4)), Result: &act.Result{Sid: im2}})
	ev["started1"] = s.reaction(wt1, engine.EvStarted, engine.Step{Action: 1, Attempt: 1, Owner: "reactor", At: t0.Add(sec(65.5))})
	ev["reinvited"] = s.reaction(wt1, engine.EvSucceeded, engine.Step{Action: 1, Attempt: 1, Owner: "reactor", At: t0.Add(sec(65.9)), Result: &act.Result{Sid: kg1, TaskSid: wt2}})
	ev["created2"] = s.twilio(domain.TaskCreated, "com.twilio.taskrouter.task.created", t0.Add(sec(65.95)), task(func(e *domain.Event) {
		e.TaskSid, e.WorkflowSid, e.AssignmentStatus, e.TaskChannel = wt2, wwBack, "pending", "chat"
		e.TaskAttributes = json.RawMessage(`{"conversationSid":"` + ch + `","flexstream":{"reaction":"reaction-` + wt1 + `","action":1,"attempt":1}}`)
	}))
	ev["completed"] = s.reaction(wt1, engine.EvCompleted, engine.Step{Owner: "reactor", At: t0.Add(sec(66)), Reason: "every action done"})
	ev["reserved"] = s.twilio(domain.ReservationCreated, "com.twilio.taskrouter.reservation.created", t0.Add(sec(67)), task(func(e *domain.Event) {
		e.TaskSid, e.ReservationSid, e.WorkerSid = wt2, wr1, wk1
	}))
	ev["accepted"] = s.twilio(domain.ReservationAccepted, "com.twilio.taskrouter.reservation.accepted", t0.Add(sec(70)), task(func(e *domain.Event) {
		e.TaskSid, e.ReservationSid, e.WorkerSid = wt2, wr1, wk1
	}))
	return s, ev
}

// conversationEvents and reactionStreams are the fixture's streams as
// Timeline takes them.
func (s *store) conversationEvents() []eventstore.RecordedEvent { return s.streams["conversation-"+ch] }

func (s *store) reactionStreams() [][]eventstore.RecordedEvent {
	var out [][]eventstore.RecordedEvent
	for name, evs := range s.streams {
		if strings.HasPrefix(name, engine.StreamPrefix) {
			out = append(out, evs)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i][0].Stream < out[j][0].Stream })
	return out
}

func types(rows []Row) []string {
	var out []string
	for _, r := range rows {
		out = append(out, r.Type)
	}
	return out
}

func requireErrorIs(t *testing.T, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("error %v, want %v", err, target)
	}
}
