package model

import (
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/flexstream/flexstream/schemas"
)

var t0 = time.Date(2025, time.June, 2, 9, 0, 0, 0, time.UTC)

// one is a one-customer scenario at speed 1: a quiet WhatsApp customer
// who writes one message, two agents who accept, no hazard; mod adjusts it.
func one(t *testing.T, mod func(*Scenario)) *Scenario {
	t.Helper()
	sc := &Scenario{
		Name: "one", Speed: 1, Interactions: 1, ArrivalRate: 60, Channels: map[string]float64{"whatsapp": 1},
		Agents: 2,
		Agent: Agent{
			Accept: 1, ReservationTimeout: Duration(25 * time.Second), HandleTime: Duration(2 * time.Minute),
			HandleDistribution: "uniform", WrapupTime: Duration(30 * time.Second),
		},
		WorkflowTimeout: Duration(time.Minute), TaskTTL: Duration(10 * time.Minute),
		CustomerQuiet: 1, CustomerMessages: 1, Grace: Duration(time.Minute),
	}
	if mod != nil {
		mod(sc)
	}
	if err := sc.Validate(); err != nil {
		t.Fatal(err)
	}
	return sc
}

// sim drives a model with a fake clock.
type sim struct {
	t       *testing.T
	m       *Model
	now     time.Time
	step    time.Duration
	hooks   []Webhook
	created []Interaction
}

func newSim(t *testing.T, sc *Scenario, seed uint64) *sim {
	return &sim{t: t, m: New(sc, seed, t0), now: t0, step: 100 * time.Millisecond}
}

func (s *sim) collect() {
	h, c := s.m.Advance(s.now)
	s.hooks = append(s.hooks, h...)
	s.created = append(s.created, c...)
}

// until advances in steps until cond holds (or fails the test after limit).
func (s *sim) until(limit time.Duration, cond func() bool) {
	s.t.Helper()
	end := s.now.Add(limit)
	for {
		s.collect()
		if cond() {
			return
		}
		if s.now.After(end) {
			s.t.Fatalf("condition not met by %s; events %v", s.now.Sub(t0), s.types())
		}
		s.now = s.now.Add(s.step)
	}
}

func (s *sim) done(limit time.Duration) {
	s.t.Helper()
	s.until(limit, func() bool { return s.m.Done(s.now) })
}

// seen is whether an event of that type (and canceled reason) was emitted.
func (s *sim) seen(event string) func() bool {
	return func() bool { return slices.Contains(s.types(), event) }
}

// types lists the events so far: EventType, and the reason of a
// task.canceled in parentheses.
func (s *sim) types() []string {
	var out []string
	for _, h := range s.hooks {
		out = append(out, describe(h))
	}
	return out
}

func describe(h Webhook) string {
	et := h.EventType()
	if r := h.Form.Get("TaskCanceledReason"); et == "task.canceled" && r != "" {
		return et + "(" + r + ")"
	}
	return et
}

func (s *sim) of(eventType string) []Webhook {
	var out []Webhook
	for _, h := range s.hooks {
		if h.EventType() == eventType {
			out = append(out, h)
		}
	}
	return out
}

var (
	opening  = []string{"onConversationAdded", "onParticipantAdded", "onMessageAdded", "task.created"}
	handled  = []string{"reservation.accepted", "onParticipantAdded", "onMessageAdded", "task.wrapup", "reservation.wrapup", "onConversationStateUpdated", "task.completed", "reservation.completed"}
	sidShape = regexp.MustCompile(`^[A-Z]{2}[0-9a-f]{32}$`)
)

func seq(parts ...[]string) []string { return slices.Concat(parts...) }

// checkHooks checks what every webhook of one interaction must satisfy:
// schema-valid forms, SIDs of the interaction, times in order and equal
// to the form's.
func checkHooks(t *testing.T, hooks []Webhook, in Interaction) {
	t.Helper()
	v, err := schemas.DefaultValidator()
	if err != nil {
		t.Fatal(err)
	}
	var last time.Time
	for i, h := range hooks {
		what := fmt.Sprintf("#%d %s", i, describe(h))
		if h.At.Before(last) {
			t.Errorf("%s: at %s, before the previous event (%s)", what, h.At, last)
		}
		last = h.At
		if h.Conversation != in.ConversationSid {
			t.Errorf("%s: Conversation %q, want %q", what, h.Conversation, in.ConversationSid)
		}
		if len(h.Idem) != 32 {
			t.Errorf("%s: Idem %q", what, h.Idem)
		}
		switch h.Family {
		case FamilyTaskRouter:
			if err := v.ValidateTaskRouterForm(h.Form); err != nil {
				t.Errorf("%s: %v", what, err)
			}
			cb, err := schemas.ParseTaskRouter(h.Form)
			if err != nil {
				t.Fatalf("%s: %v", what, err)
			}
			if cb.Timestamp != strconv.FormatInt(h.At.Unix(), 10) {
				t.Errorf("%s: Timestamp %s, want %d", what, cb.Timestamp, h.At.Unix())
			}
			a, err := cb.Attributes()
			if err != nil {
				t.Fatalf("%s: %v", what, err)
			}
			if a.ConversationSid != in.ConversationSid || a.FlexInteractionSid != in.InteractionSid || a.FlexInteractionChannelSid != in.ChannelSid {
				t.Errorf("%s: TaskAttributes %s do not name the interaction %+v", what, cb.TaskAttributes, in)
			}
			if a.ChannelType != in.ChannelType {
				t.Errorf("%s: channelType %q, want %q", what, a.ChannelType, in.ChannelType)
			}
			for _, sid := range []string{cb.TaskSid, cb.Sid} {
				if !sidShape.MatchString(sid) {
					t.Errorf("%s: SID %q", what, sid)
				}
			}
		case FamilyConversations:
			if err := v.ValidateConversationsForm(h.Form); err != nil {
				t.Errorf("%s: %v", what, err)
			}
			if h.Form.Get("ConversationSid") != in.ConversationSid || h.Form.Get("ChatServiceSid") != in.ChatServiceSid {
				t.Errorf("%s: ConversationSid %q ChatServiceSid %q", what, h.Form.Get("ConversationSid"), h.Form.Get("ChatServiceSid"))
			}
			date := h.Form.Get("DateUpdated")
			if date == "" {
				date = h.Form.Get("DateCreated")
			}
			if date != h.At.UTC().Format(dateLayout) {
				t.Errorf("%s: date %s, want %s", what, date, h.At.UTC().Format(dateLayout))
			}
		default:
			t.Errorf("%s: family %q", what, h.Family)
		}
	}
}

func TestPaths(t *testing.T) {
	for _, tc := range []struct {
		name    string
		mod     func(*Scenario)
		outcome []string // reservation outcomes in order ("" : the scenario's)
		want    []string
		reason  string // the cancel reason (unserved paths)
		hazard  string
	}{
		{
			name: "accepted and handled",
			want: seq(opening, []string{"reservation.created"}, handled),
		},
		{
			name:    "rejected then accepted by another",
			outcome: []string{"rejected", "accepted"},
			want:    seq(opening, []string{"reservation.created", "reservation.rejected", "reservation.created"}, handled),
			hazard:  HazardReservationReject,
		},
		{
			name:    "timed out then accepted by another",
			outcome: []string{"timeout", "accepted"},
			want:    seq(opening, []string{"reservation.created", "reservation.timeout", "reservation.created"}, handled),
			hazard:  HazardReservationTimeout,
		},
		{
			name:   "targeted and declined",
			mod:    func(sc *Scenario) { sc.KnownAgentInvite = 1 },
			want:   seq(opening, []string{"reservation.created", "reservation.rejected", "task.canceled(" + ReasonTargetRejected + ")"}),
			reason: ReasonTargetRejected,
			hazard: HazardKnownAgentDeclined,
		},
		{
			name:   "failed create",
			mod:    func(sc *Scenario) { sc.FailedCreate = 1 },
			want:   seq(opening, []string{"task.canceled(" + ReasonCreateFailed + ")"}),
			reason: ReasonCreateFailed,
			hazard: HazardFailedCreate,
		},
		{
			name:   "deleted",
			mod:    func(sc *Scenario) { sc.DeletedTask = 1 },
			want:   seq(opening, []string{"task.deleted"}),
			hazard: HazardDeleted,
		},
		{
			name:   "workflow timeout, no agent offered",
			mod:    func(sc *Scenario) { sc.WorkflowTimeoutForced = 1 },
			want:   seq(opening, []string{"workflow.timeout", "task.canceled(" + ReasonWorkflowTimeout + ")"}),
			reason: ReasonWorkflowTimeout,
			hazard: HazardWorkflowTimeout,
		},
		{
			name:    "workflow timeout while reserved",
			outcome: []string{"timeout", "timeout", "timeout"},
			want: seq(opening, []string{
				"reservation.created", "reservation.timeout", "reservation.created", "reservation.timeout", "reservation.created",
				"reservation.canceled", "workflow.timeout", "task.canceled(" + ReasonWorkflowTimeout + ")",
			}),
			reason: ReasonWorkflowTimeout,
			hazard: HazardWorkflowTimeout,
		},
		{
			name:   "TTL",
			mod:    func(sc *Scenario) { sc.TTLForced = 1 },
			want:   seq(opening, []string{"task.canceled(" + ReasonTTL + ")"}),
			reason: ReasonTTL,
			hazard: HazardTTL,
		},
		{
			name: "talkative customer",
			mod:  func(sc *Scenario) { sc.CustomerQuiet = 0; sc.WorkflowTimeoutForced = 1 },
			// asks again halfway to the workflow timeout
			want:   seq(opening, []string{"onMessageAdded", "workflow.timeout", "task.canceled(" + ReasonWorkflowTimeout + ")"}),
			reason: ReasonWorkflowTimeout,
			hazard: HazardWorkflowTimeout,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newSim(t, one(t, tc.mod), 1)
			outcomes := slices.Clone(tc.outcome)
			s.m.outcomeFor = func(string, string) string {
				if len(outcomes) == 0 {
					return ""
				}
				o := outcomes[0]
				outcomes = outcomes[1:]
				return o
			}
			s.done(time.Hour)
			if got := s.types(); !slices.Equal(got, tc.want) {
				t.Fatalf("events\n got %v\nwant %v", got, tc.want)
			}
			if len(s.created) != 1 {
				t.Fatalf("%d interactions created", len(s.created))
			}
			in := s.created[0]
			checkHooks(t, s.hooks, in)

			// One task throughout; reservations to distinct workers.
			task := s.of("task.created")[0].Form.Get("TaskSid")
			for _, h := range s.hooks {
				if sid := h.Form.Get("TaskSid"); h.Family == FamilyTaskRouter && sid != task {
					t.Errorf("%s: TaskSid %s, want %s", h.EventType(), sid, task)
				}
			}
			res := s.of("reservation.created")
			if len(res) >= 2 && len(tc.outcome) == 2 && res[0].Form.Get("WorkerSid") == res[1].Form.Get("WorkerSid") {
				t.Error("re-routed to the worker who declined")
			}

			tr := s.m.Truth(s.now)
			ct := tr.Conversations[in.ConversationSid]
			if tr.Interactions != 1 || tr.Tasks != 1 || len(tr.Conversations) != 1 || tr.Webhooks != len(s.hooks) {
				t.Errorf("truth %+v", tr)
			}
			if tc.hazard != "" && tr.Hazards[tc.hazard] == 0 {
				t.Errorf("hazard %s not counted: %v", tc.hazard, tr.Hazards)
			}
			if tc.reason == "" && tc.hazard != HazardDeleted { // served
				if tr.Orphaned != 0 || ct.State != "closed" || ct.ChannelStatus != "closed" || !ct.AgentPresent || ct.Tasks[task] != TaskCompleted {
					t.Errorf("served, but truth %+v %+v", tr, ct)
				}
				st := s.of("onConversationStateUpdated")[0].Form
				if st.Get("StateTo") != "closed" || st.Get("Reason") != "API" || st.Get("StateFrom") != "active" {
					t.Errorf("state update %v", st)
				}
				agent := s.of("onParticipantAdded")[1].Form
				if agent.Get("Identity") == "" || agent.Has("MessagingBinding.Address") || agent.Get("Identity") != s.of("reservation.accepted")[0].Form.Get("WorkerName") {
					t.Errorf("agent participant %v", agent)
				}
				return
			}
			// Unserved: orphaned once idle past the grace period.
			if tr.Orphaned != 1 || !slices.Equal(tr.OrphanedSids, []string{in.ConversationSid}) || !ct.Orphaned || ct.State != "active" || len(ct.LiveTasks) != 0 {
				t.Errorf("unserved, but truth %+v %+v", tr, ct)
			}
			end := s.hooks[len(s.hooks)-1].At
			if early := s.m.Truth(end.Add(s.m.sc.Real(s.m.sc.Grace) / 2)); early.Orphaned != 0 {
				t.Error("orphaned before the grace period passed")
			}
			if s.m.Done(end.Add(s.m.sc.Real(s.m.sc.Grace) / 2)) {
				t.Error("done before the grace period passed")
			}
			if tc.reason != "" {
				if got := s.hooks[len(s.hooks)-1].Form.Get("TaskCanceledReason"); got != tc.reason {
					t.Errorf("reason %q", got)
				}
				if ct.Tasks[task] != TaskCanceled {
					t.Errorf("task %s", ct.Tasks[task])
				}
			}
		})
	}
}

func TestTargetedInvite(t *testing.T) {
	s := newSim(t, one(t, func(sc *Scenario) { sc.KnownAgentInvite = 1 }), 3)
	s.done(time.Hour)
	in := s.created[0]
	props := in.Routing["properties"].(map[string]any)
	worker, _ := props["worker_sid"].(string)
	if !sidShape.MatchString(worker) || !strings.HasPrefix(worker, "WK") {
		t.Fatalf("routing %v names no worker", in.Routing)
	}
	if _, ok := props["attributes"].(map[string]any)["worker_sid"]; ok {
		t.Error("the interaction's attributes carry worker_sid: a re-invite would target the agent again")
	}
	created := s.of("task.created")[0]
	var attrs map[string]any
	_ = json.Unmarshal([]byte(created.Form.Get("TaskAttributes")), &attrs)
	if attrs["worker_sid"] != worker {
		t.Errorf("task attributes %v, want worker_sid %s", attrs, worker)
	}
	if got := s.of("reservation.created")[0].Form.Get("WorkerSid"); got != worker {
		t.Errorf("reserved for %s, want the targeted %s", got, worker)
	}
	for _, k := range []string{"workspace_sid", "workflow_sid", "task_channel_unique_name"} {
		if props[k] == nil || props[k] == "" {
			t.Errorf("routing properties lack %s: %v", k, props)
		}
	}
}

func TestChannels(t *testing.T) {
	for _, ch := range []string{"whatsapp", "sms", "chat"} {
		t.Run(ch, func(t *testing.T) {
			s := newSim(t, one(t, func(sc *Scenario) { sc.Channels = map[string]float64{ch: 1} }), 5)
			s.done(time.Hour)
			in := s.created[0]
			checkHooks(t, s.hooks, in)
			cust := s.of("onParticipantAdded")[0].Form
			msg := s.of("onMessageAdded")[0].Form
			tc := s.of("task.created")[0].Form
			if msg.Get("Author") != in.CustomerAddress || msg.Get("ParticipantSid") != in.ParticipantSid || cust.Get("ParticipantSid") != in.ParticipantSid {
				t.Errorf("customer message %v / participant %v, want %s %s", msg, cust, in.CustomerAddress, in.ParticipantSid)
			}
			switch ch {
			case "whatsapp", "sms":
				prefix := map[string]string{"whatsapp": "whatsapp:+1555", "sms": "+1555"}[ch]
				if !strings.HasPrefix(in.CustomerAddress, prefix) || cust.Get("MessagingBinding.Address") != in.CustomerAddress ||
					cust.Get("MessagingBinding.Type") != ch || cust.Has("Identity") {
					t.Errorf("participant %v", cust)
				}
			case "chat":
				if cust.Has("MessagingBinding.Address") || cust.Get("Identity") != in.CustomerAddress ||
					!strings.Contains(cust.Get("Attributes"), `"member_type":"guest"`) || msg.Get("Source") != "SDK" {
					t.Errorf("chat participant %v / message %v", cust, msg)
				}
			}
			wantChan := map[string]string{"whatsapp": "chat", "sms": "sms", "chat": "chat"}[ch]
			if tc.Get("TaskChannelUniqueName") != wantChan {
				t.Errorf("task channel %q", tc.Get("TaskChannelUniqueName"))
			}
			var attrs map[string]any
			_ = json.Unmarshal([]byte(tc.Get("TaskAttributes")), &attrs)
			if attrs["from"] != in.CustomerAddress {
				t.Errorf("attributes %v", attrs)
			}
		})
	}
}

// afterTimeout runs a forced workflow timeout to its task.canceled.
func afterTimeout(t *testing.T, mod func(*Scenario)) (*sim, Interaction) {
	s := newSim(t, one(t, func(sc *Scenario) {
		sc.WorkflowTimeoutForced = 1
		if mod != nil {
			mod(sc)
		}
	}), 1)
	s.until(time.Hour, s.seen("task.canceled("+ReasonWorkflowTimeout+")"))
	return s, s.created[0]
}

func mark(reaction string, action int) map[string]any {
	return map[string]any{"reaction": reaction, "action": action, "attempt": 1}
}

func markJSON(reaction string, action int) string {
	b, _ := json.Marshal(map[string]any{MarkKey: mark(reaction, action)})
	return string(b)
}

func TestInvitedAfterTimeout(t *testing.T) {
	s, in := afterTimeout(t, nil)
	canceled := s.of("task.canceled")[0]
	reaction := "reaction-" + canceled.Form.Get("TaskSid")
	s.now = s.now.Add(time.Second)
	s.m.MessageCreated(s.now, Message{ChatServiceSid: in.ChatServiceSid, ConversationSid: in.ConversationSid, Sid: "IM" + strings.Repeat("a", 32),
		Body: "Still looking for an agent", Attributes: markJSON(reaction, 0), WebhookEnabled: true})
	props := in.Routing["properties"].(map[string]any)
	attrs := map[string]any{}
	for k, v := range props["attributes"].(map[string]any) {
		attrs[k] = v
	}
	attrs[MarkKey] = mark(reaction, 1)
	newTask := "WT" + strings.Repeat("b", 32)
	s.m.Invited(s.now, in.InteractionSid, in.ChannelSid, newTask, map[string]any{
		"workspace_sid": props["workspace_sid"], "workflow_sid": props["workflow_sid"],
		"task_channel_unique_name": props["task_channel_unique_name"], "attributes": attrs,
	})
	n := len(s.hooks)
	s.done(time.Hour)
	checkHooks(t, s.hooks, in)
	got := s.types()[n:]
	want := seq([]string{"onMessageAdded", "task.created", "reservation.created"}, handled)
	if !slices.Equal(got, want) {
		t.Fatalf("after the effects\n got %v\nwant %v", got, want)
	}
	sys := s.hooks[n].Form
	if sys.Get("Author") != "system" || sys.Get("MessageSid") != "IM"+strings.Repeat("a", 32) || sys.Get("Index") != "1" || !strings.Contains(sys.Get("Attributes"), reaction) {
		t.Errorf("system message %v", sys)
	}
	tc := s.hooks[n+1].Form
	if tc.Get("TaskSid") != newTask || !strings.Contains(tc.Get("TaskAttributes"), reaction) {
		t.Errorf("re-invited task %v", tc)
	}
	tr := s.m.Truth(s.now)
	ct := tr.Conversations[in.ConversationSid]
	if tr.Orphaned != 0 || ct.State != "closed" || tr.Tasks != 2 || ct.Tasks[newTask] != TaskCompleted {
		t.Errorf("truth %+v %+v", tr, ct)
	}
	if tr.Reactions[ReactionReinvite] != 1 || tr.Reactions[ReactionMessage] != 1 || tr.DuplicateEffects != 0 || len(tr.Violations) != 0 {
		t.Errorf("effects %+v", tr)
	}
	if tr.ReactionLatency.Count != 1 || tr.ReactionLatency.Max <= 0 {
		t.Errorf("latency %+v", tr.ReactionLatency)
	}
}

func TestChannelClosed(t *testing.T) {
	t.Run("after a timeout", func(t *testing.T) {
		s, in := afterTimeout(t, nil)
		n := len(s.hooks)
		s.m.ChannelUpdated(s.now, in.InteractionSid, in.ChannelSid, "closed")
		s.done(time.Hour)
		if got := s.types()[n:]; !slices.Equal(got, []string{"onConversationStateUpdated"}) {
			t.Fatalf("after the close: %v", got)
		}
		checkHooks(t, s.hooks, in)
		tr := s.m.Truth(s.now.Add(time.Hour))
		if tr.Orphaned != 0 || tr.Conversations[in.ConversationSid].State != "closed" || tr.Reactions[ReactionClose] != 1 {
			t.Errorf("truth %+v", tr)
		}
		if st, _ := s.m.ConversationState(in.ConversationSid); st != "closed" {
			t.Errorf("ConversationState %q", st)
		}
		if st, _ := s.m.ChannelStatus(in.InteractionSid, in.ChannelSid); st != "closed" {
			t.Errorf("ChannelStatus %q", st)
		}
	})
	t.Run("while pending", func(t *testing.T) {
		s := newSim(t, one(t, func(sc *Scenario) { sc.WorkflowTimeoutForced = 1 }), 1)
		s.until(time.Hour, s.seen("task.created"))
		in := s.created[0]
		n := len(s.hooks)
		s.m.ChannelUpdated(s.now, in.InteractionSid, in.ChannelSid, "closed")
		s.done(time.Hour)
		want := []string{"task.canceled(" + ReasonChannelClosed + ")", "onConversationStateUpdated"}
		if got := s.types()[n:]; !slices.Equal(got, want) {
			t.Fatalf("after the close: %v, want %v", got, want)
		}
	})
	t.Run("while assigned", func(t *testing.T) {
		s := newSim(t, one(t, func(sc *Scenario) { sc.Agent.HandleTime = Duration(time.Hour) }), 1)
		s.until(time.Hour, s.seen("onParticipantAdded"))
		s.until(time.Minute, func() bool { return len(s.of("onParticipantAdded")) == 2 })
		in := s.created[0]
		n := len(s.hooks)
		s.m.ChannelUpdated(s.now, in.InteractionSid, in.ChannelSid, "closed")
		s.done(3 * time.Hour)
		want := []string{"task.wrapup", "reservation.wrapup", "task.completed", "reservation.completed", "onConversationStateUpdated"}
		if got := s.types()[n:]; !slices.Equal(got, want) {
			t.Fatalf("after the close: %v, want %v", got, want)
		}
		if s.now.Sub(t0) > 10*time.Minute {
			t.Errorf("done only at %s: the agent's timers survived the close", s.now.Sub(t0))
		}
		for _, w := range s.m.workers {
			if !w.available() {
				t.Errorf("worker %s still busy", w.name)
			}
		}
	})
}

func TestDuplicatesAndViolations(t *testing.T) {
	s, in := afterTimeout(t, nil)
	reaction := "reaction-" + s.of("task.canceled")[0].Form.Get("TaskSid")
	msg := func(attrs string) int {
		return s.m.MessageCreated(s.now, Message{ChatServiceSid: in.ChatServiceSid, ConversationSid: in.ConversationSid, Body: "hi", Attributes: attrs, WebhookEnabled: true})
	}
	if i := msg(markJSON(reaction, 0)); i != 1 {
		t.Errorf("first message index %d", i)
	}
	msg(markJSON(reaction, 0)) // duplicate
	msg(markJSON(reaction, 1)) // another action: fine
	msg("")                    // unmarked: fine
	invite := func(action int) {
		s.m.Invited(s.now, in.InteractionSid, in.ChannelSid, "", map[string]any{"attributes": map[string]any{MarkKey: mark(reaction, action)}})
	}
	invite(2)
	invite(3) // a second re-invite for the same ended task
	s.m.ChannelUpdated(s.now, in.InteractionSid, in.ChannelSid, "closed")
	s.m.ChannelUpdated(s.now, in.InteractionSid, in.ChannelSid, "closed") // duplicate close
	s.collect()
	before := len(s.hooks)
	if i := msg(markJSON(reaction, 4)); i != -1 { // to a closed conversation
		t.Errorf("message to a closed conversation: index %d", i)
	}
	invite(5) // on a closed channel (and a third re-invite)
	s.m.Invited(s.now, "KD"+strings.Repeat("0", 32), in.ChannelSid, "", nil)
	s.m.ChannelUpdated(s.now, in.InteractionSid, "UO"+strings.Repeat("0", 32), "closed")
	s.collect()
	for _, h := range s.hooks[before:] {
		t.Errorf("webhook after the close: %s", describe(h))
	}
	tr := s.m.Truth(s.now)
	if tr.DuplicateEffects != 4 {
		t.Errorf("duplicates %d, want 4 (message mark, 2 re-invites, close)", tr.DuplicateEffects)
	}
	want := []string{"a message to a closed conversation", "an invite on closed interaction channel", "unknown interaction channel", "unknown interaction channel"}
	if len(tr.Violations) != len(want) {
		t.Fatalf("violations %q", tr.Violations)
	}
	for i, w := range want {
		if !strings.Contains(tr.Violations[i], w) {
			t.Errorf("violation %d %q, want …%s…", i, tr.Violations[i], w)
		}
	}
	if tr.Reactions[ReactionMessage] != 5 || tr.Reactions[ReactionReinvite] != 4 || tr.Reactions[ReactionClose] != 3 {
		t.Errorf("reactions %v", tr.Reactions)
	}
}

func TestWhatsAppWindow(t *testing.T) {
	for _, tc := range []struct {
		name, channel, content string
		violation              bool
	}{
		{"free-form", "whatsapp", "", true},
		{"template", "whatsapp", "HX" + strings.Repeat("c", 32), false},
		{"sms", "sms", "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// Speed 60: 24 h of Twilio time are 24 minutes.
			s, in := afterTimeout(t, func(sc *Scenario) { sc.Speed = 60; sc.Channels = map[string]float64{tc.channel: 1} })
			msg := Message{ChatServiceSid: in.ChatServiceSid, ConversationSid: in.ConversationSid, Body: "hi", ContentSid: tc.content, WebhookEnabled: true}
			s.m.MessageCreated(t0.Add(20*time.Minute), msg) // inside the window
			s.m.MessageSent(t0.Add(25*time.Minute), msg.ChatServiceSid, msg.ConversationSid, msg.Attributes, msg.ContentSid, msg.WebhookEnabled)
			tr := s.m.Truth(t0.Add(25 * time.Minute))
			if got := len(tr.Violations); got != map[bool]int{true: 1, false: 0}[tc.violation] {
				t.Errorf("violations %q", tr.Violations)
			}
		})
	}
}

func TestDeterminism(t *testing.T) {
	sc, err := LoadScenario(scenarioPath("smoke"))
	if err != nil {
		t.Fatal(err)
	}
	// run drives the smoke scenario and, as a reactor would, closes the
	// channel of every conversation whose task timed out.
	run := func(seed uint64) []byte {
		m := New(sc, seed, t0)
		chans := map[string]Interaction{}
		var all []Webhook
		now := t0
		for !m.Done(now) && now.Sub(t0) < 5*time.Minute {
			now = now.Add(20 * time.Millisecond)
			hooks, created := m.Advance(now)
			for _, in := range created {
				chans[in.ConversationSid] = in
			}
			all = append(all, hooks...)
			for _, h := range hooks {
				if h.EventType() == "workflow.timeout" {
					in := chans[h.Conversation]
					m.ChannelUpdated(now, in.InteractionSid, in.ChannelSid, "closed")
				}
			}
		}
		b, err := json.Marshal(struct {
			Hooks []Webhook
			Truth Truth
		}{all, m.Truth(now)})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	a, b, c := run(7), run(7), run(8)
	if string(a) != string(b) {
		t.Error("same seed and calls, different webhooks")
	}
	if string(a) == string(c) {
		t.Error("different seeds, same webhooks")
	}
}

func TestSmokeWithoutReactors(t *testing.T) {
	sc, err := LoadScenario(scenarioPath("smoke"))
	if err != nil {
		t.Fatal(err)
	}
	s := newSim(t, sc, 42)
	s.step = 10 * time.Millisecond
	s.done(time.Minute)
	if s.now.Sub(t0) > 40*time.Second {
		t.Errorf("smoke took %s of real time", s.now.Sub(t0))
	}
	tr := s.m.Truth(s.now)
	if tr.Interactions != 200 || len(s.created) != 200 || tr.Orphaned == 0 {
		t.Errorf("interactions %d, orphaned %d", tr.Interactions, tr.Orphaned)
	}
	for _, h := range HazardNames {
		if tr.Hazards[h] == 0 {
			t.Errorf("hazard %s never happened: %v", h, tr.Hazards)
		}
	}
	if tr.DuplicateEffects != 0 || len(tr.Violations) != 0 || tr.Reactions[ReactionMessage]+tr.Reactions[ReactionReinvite]+tr.Reactions[ReactionClose] != 0 {
		t.Errorf("effects without reactors: %+v", tr)
	}
	// Every orphan ended unserved; every other conversation was served.
	for sid, ct := range tr.Conversations {
		if ct.Orphaned != (ct.State != "closed") || ct.Orphaned && (ct.AgentPresent || len(ct.LiveTasks) > 0) {
			t.Errorf("%s: %+v", sid, ct)
		}
	}
	// Webhooks: schema-valid, in time order, unique tokens and event SIDs.
	byConv := map[string][]Webhook{}
	idem, evs := map[string]bool{}, map[string]bool{}
	for i, h := range s.hooks {
		if i > 0 && h.At.Before(s.hooks[i-1].At) {
			t.Fatalf("webhook %d out of order", i)
		}
		byConv[h.Conversation] = append(byConv[h.Conversation], h)
		if idem[h.Idem] {
			t.Fatalf("Idem %s repeated", h.Idem)
		}
		idem[h.Idem] = true
		if sid := h.Form.Get("Sid"); sid != "" {
			if evs[sid] {
				t.Fatalf("event Sid %s repeated", sid)
			}
			evs[sid] = true
		}
	}
	for _, in := range s.created {
		checkHooks(t, byConv[in.ConversationSid], in)
	}
	if _, err := json.Marshal(tr); err != nil {
		t.Fatal(err)
	}
}

func TestDoneWaitsForArrivalsAndTimers(t *testing.T) {
	s := newSim(t, one(t, nil), 1)
	if s.m.Done(t0) {
		t.Error("done before the customer arrived")
	}
	s.until(time.Hour, s.seen("reservation.accepted"))
	if s.m.Done(s.now) {
		t.Error("done while a task is assigned")
	}
}
