package fold

import (
	"encoding/json"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/flexstream/flexstream/projector/domain"
)

const grace = 5 * time.Minute

func statuses(tv *TaskView) []string {
	var s []string
	for _, tr := range tv.Transitions {
		s = append(s, tr.Status+"/"+tr.EventType)
	}
	return s
}

func eq[T any](t *testing.T, what string, got, want T) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s = %v, want %v", what, got, want)
	}
}

func TestLifecycles(t *testing.T) {
	cases := []struct {
		name  string
		w     *world
		extra []domain.Event // appended after the lifecycle
		check func(t *testing.T, w *world, c *ConversationView, tasks map[string]*TaskView)
	}{
		{name: "full conversation", w: fullLifecycle(1), check: func(t *testing.T, w *world, c *ConversationView, tasks map[string]*TaskView) {
			eq(t, "state", c.State, StateClosed)
			eq(t, "reason", c.StateReason, "API")
			eq(t, "stateAt", c.StateAt, sec(100))
			eq(t, "participants", len(c.Participants), 2)
			cust := c.Participants[sid("MB", 1, 1)]
			eq(t, "customer", cust, Participant{Role: domain.RoleCustomer, Address: "whatsapp:phone:k3J9x…42", ChannelType: "whatsapp", AddedAt: sec(1), RoleAt: sec(1)})
			eq(t, "agent role", c.Participants[sid("MB", 1, 2)].Role, domain.RoleAgent)
			eq(t, "agentPresent", c.AgentPresent, true)
			eq(t, "interaction", c.InteractionSid, sid("KD", 1, 0))
			eq(t, "channel", c.ChannelSid, sid("UO", 1, 0))
			eq(t, "channelType", c.ChannelType, "whatsapp")
			eq(t, "tasks", c.Tasks, map[string]TaskLink{w.task(1): {Status: TaskCompleted, At: sec(90), Accepted: true}})
			eq(t, "messages", c.MessageCount, 4)
			eq(t, "indexes", c.MessageIndexes, [][2]int{{0, 3}})
			eq(t, "lastActivity", c.LastActivity, sec(100))
			eq(t, "firstSeen", c.FirstSeen, sec(0))
			eq(t, "flags", c.Flags(), []string(nil))
			eq(t, "candidate", c.OrphanCandidate(), false)
			eq(t, "orphaned", c.Orphaned(sec(100000), grace), false)

			tv := tasks[w.task(1)]
			eq(t, "status", tv.Status, TaskCompleted)
			eq(t, "transitions", statuses(tv), []string{"pending/TaskCreated", "reserved/ReservationCreated",
				"assigned/ReservationAccepted", "wrapping/TaskWrapup", "completed/TaskCompleted"})
			eq(t, "reservations", tv.Reservations, map[string]Reservation{sid("WR", 1, 1): {WorkerSid: worker1, Outcome: OutcomeAccepted, CreatedAt: sec(8), DecidedAt: sec(12)}})
			eq(t, "conversation", tv.ConversationSid, w.conv())
			eq(t, "queue", tv.Queue, Ref{Sid: sid("WQ", 0, 1), Name: "Support", At: sec(90)})
			eq(t, "workflow", tv.Workflow.Name, "Flex Default")
			eq(t, "times", []time.Time{tv.CreatedAt, tv.AcceptedAt, tv.WrapupAt, tv.CompletedAt, tv.EndedAt},
				[]time.Time{sec(5), sec(12), sec(60), sec(90), sec(90)})
			eq(t, "wait", tv.WaitTime, int64(7000))
			eq(t, "handle", tv.HandleTime, int64(48000))
		}},
		{name: "workflow timeout", w: workflowTimeoutLifecycle(1), check: func(t *testing.T, w *world, c *ConversationView, tasks map[string]*TaskView) {
			tv := tasks[w.task(1)]
			eq(t, "status", tv.Status, TaskCanceled)
			eq(t, "timedOut", tv.WorkflowTimedOut, true)
			eq(t, "reason", tv.CanceledReason, "Workflow Timeout")
			eq(t, "ended", tv.EndedAt, sec(122))
			eq(t, "wait", tv.WaitTime, int64(0))
			eq(t, "transitions", statuses(tv), []string{"pending/TaskCreated", "pending/TaskQueueEntered",
				"canceled/WorkflowTimedOut", "canceled/TaskCanceled"})
			eq(t, "link", c.Tasks[w.task(1)], TaskLink{Status: TaskCanceled, CanceledReason: "Workflow Timeout", At: sec(122)})
			eq(t, "state", c.State, StateActive)
			eq(t, "flags", c.Flags(), []string{FlagNoCloseTimer})
			eq(t, "candidate", c.OrphanCandidate(), true)
			eq(t, "orphaned within grace", c.Orphaned(sec(122).Add(grace), grace), false)
			eq(t, "orphaned after grace", c.Orphaned(sec(123).Add(grace), grace), true)
		}},
		{name: "declined known-agent invite", w: declinedLifecycle(1), check: func(t *testing.T, w *world, c *ConversationView, tasks map[string]*TaskView) {
			tv := tasks[w.task(1)]
			eq(t, "status", tv.Status, TaskCanceled)
			eq(t, "reservation", tv.Reservations[sid("WR", 1, 1)], Reservation{WorkerSid: worker1, Outcome: OutcomeRejected, CreatedAt: sec(3), DecidedAt: sec(9)})
			eq(t, "accepted", tv.AcceptedAt.IsZero(), true)
			eq(t, "transitions", statuses(tv), []string{"pending/TaskCreated", "reserved/ReservationCreated",
				"pending/ReservationRejected", "canceled/TaskCanceled"})
			eq(t, "link accepted", c.Tasks[w.task(1)].Accepted, false)
			eq(t, "candidate", c.OrphanCandidate(), true)
		}},
		{name: "deleted task", w: deletedLifecycle(1), check: func(t *testing.T, w *world, c *ConversationView, tasks map[string]*TaskView) {
			tv := tasks[w.task(1)]
			eq(t, "status", tv.Status, TaskDeleted)
			eq(t, "ended", tv.EndedAt, sec(4))
			eq(t, "reservation", tv.Reservations[sid("WR", 1, 1)].Outcome, OutcomeCanceled)
			eq(t, "link", c.Tasks[w.task(1)].Status, TaskDeleted)
			eq(t, "candidate", c.OrphanCandidate(), true)
			eq(t, "orphaned", c.Orphaned(sec(4).Add(time.Hour), grace), true)
		}},
		{name: "live task is no orphan", w: fullLifecycle(1), check: nil},
		{name: "R5 no close timer", w: flagsR5Lifecycle(1), check: func(t *testing.T, w *world, c *ConversationView, _ map[string]*TaskView) {
			eq(t, "timers", c.Timers, Timers{Inactive: "2026-03-01T10:30:00Z", Seen: true, At: sec(1)})
			eq(t, "flags", c.Flags(), []string{FlagNoCloseTimer})
			eq(t, "candidate", c.OrphanCandidate(), true)
		}},
		{name: "R5 close timer set later", w: flagsR5Lifecycle(1),
			extra: []domain.Event{{Type: domain.ConversationUpdated, At: sec(5), ConversationSid: sid("CH", 1, 0), HasTimers: true, TimerClosed: "2026-03-02T10:00:00Z"}},
			check: func(t *testing.T, w *world, c *ConversationView, _ map[string]*TaskView) {
				eq(t, "timers", c.Timers, Timers{Closed: "2026-03-02T10:00:00Z", Seen: true, At: sec(5)})
				eq(t, "flags", c.Flags(), []string(nil))
			}},
		{name: "R5 closed needs no timer", w: flagsR5Lifecycle(1),
			extra: []domain.Event{{Type: domain.ConversationStateChanged, At: sec(5), ConversationSid: sid("CH", 1, 0), State: StateClosed, Reason: "TIMER"}},
			check: func(t *testing.T, w *world, c *ConversationView, _ map[string]*TaskView) {
				eq(t, "flags", c.Flags(), []string(nil))
				eq(t, "candidate", c.OrphanCandidate(), false)
			}},
		{name: "R6 R7 agent with phone identity, no invite", w: flagsR6R7Lifecycle(1), check: func(t *testing.T, w *world, c *ConversationView, _ map[string]*TaskView) {
			eq(t, "flags", c.Flags(), []string{FlagPIIIdentity, FlagAgentWithoutInvite})
			eq(t, "agentPresent", c.AgentPresent, true)
			eq(t, "candidate", c.OrphanCandidate(), false)
		}},
		{name: "R7 cleared by an accepted reservation", w: flagsR6R7Lifecycle(1),
			extra: []domain.Event{{Type: domain.ReservationAccepted, At: sec(3), ConversationSid: sid("CH", 1, 0), TaskSid: sid("WT", 1, 1), ReservationSid: sid("WR", 1, 1), WorkerSid: worker1}},
			check: func(t *testing.T, w *world, c *ConversationView, tasks map[string]*TaskView) {
				eq(t, "flags", c.Flags(), []string{FlagPIIIdentity})
				eq(t, "status", tasks[w.task(1)].Status, TaskAssigned)
			}},
		{name: "closed is final", w: newWorld(1, "sms").
			state(domain.ConversationStateChanged, 10, StateClosed, "API").
			state(domain.ConversationUpdated, 20, StateActive, "").
			state(domain.ConversationStateChanged, 30, StateInactive, "TIMER").
			state(domain.ConversationUpdated, 40, StateClosed, ""),
			check: func(t *testing.T, w *world, c *ConversationView, _ map[string]*TaskView) {
				eq(t, "state", []any{c.State, c.StateReason, c.StateAt}, []any{StateClosed, "API", sec(10)})
			}},
		{name: "messy", w: messyLifecycle(1), check: func(t *testing.T, w *world, c *ConversationView, tasks map[string]*TaskView) {
			eq(t, "state", []any{c.State, c.StateReason, c.StateAt, c.RemovedAt}, []any{StateClosed, "API", sec(100), sec(200)})
			eq(t, "messages", c.MessageCount, 7)
			eq(t, "indexes", c.MessageIndexes, [][2]int{{0, 5}})
			eq(t, "keys", len(c.MessageKeys), 1)
			eq(t, "timers", c.Timers, Timers{Inactive: "2026-03-01T11:00:00Z", Closed: "2026-03-02T10:00:00Z", Seen: true, At: sec(0)})
			eq(t, "customer role (tie)", c.Participants[sid("MB", 1, 1)].Role, domain.RoleCustomer)
			eq(t, "removed agent", c.Participants[sid("MB", 1, 2)].RemovedAt, sec(46))
			eq(t, "agentPresent", c.AgentPresent, true)
			eq(t, "links", []string{c.Tasks[w.task(1)].Status, c.Tasks[w.task(2)].Status}, []string{TaskDeleted, TaskAssigned})
			eq(t, "flags", c.Flags(), []string{FlagPIIIdentity})
			eq(t, "lastActivity", c.LastActivity, sec(200))
			t1, t2 := tasks[w.task(1)], tasks[w.task(2)]
			eq(t, "t1", []any{t1.Status, t1.WaitTime, t1.HandleTime}, []any{TaskDeleted, int64(22000), int64(12000)})
			eq(t, "t1 reservations", []string{t1.Reservations[sid("WR", 1, 1)].Outcome, t1.Reservations[sid("WR", 1, 2)].Outcome}, []string{OutcomeTimeout, OutcomeCompleted})
			eq(t, "t2 queue", t2.Queue, Ref{Sid: sid("WQ", 0, 3), Name: "Billing", At: sec(43)})
			eq(t, "t2 status", t2.Status, TaskAssigned)
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			events := slices.Clone(tc.w.events)
			for i, e := range tc.extra {
				events = append(events, ev{id: "extra-" + string(rune('a'+i)), e: e})
			}
			f := foldAll(t, events, false)
			if tc.check == nil {
				// Stop before the wrap-up: the task is assigned, the agent in.
				f = foldAll(t, events[:9], false)
				c := f.conv
				eq(t, "candidate", c.OrphanCandidate(), false)
				c.AgentPresent = false
				eq(t, "candidate without agent", c.OrphanCandidate(), false) // the task is live
				return
			}
			tc.check(t, tc.w, &f.conv, f.tasks)
		})
	}
}

func TestIndexRanges(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 7))
	for range 500 {
		var rs [][2]int
		set := map[int]bool{}
		for range rng.IntN(40) {
			i := rng.IntN(30)
			var added bool
			rs, added = insertIndex(rs, i)
			if added == set[i] {
				t.Fatalf("insert %d: added=%v, already=%v", i, added, set[i])
			}
			set[i] = true
		}
		// Check canonical form against the set.
		var want [][2]int
		for i := range 31 {
			if set[i] {
				if n := len(want); n > 0 && want[n-1][1] == i-1 {
					want[n-1][1] = i
				} else {
					want = append(want, [2]int{i, i})
				}
			}
		}
		if !reflect.DeepEqual(rs, want) {
			t.Fatalf("ranges %v, want %v", rs, want)
		}
	}
}

// shuffled returns the events in a random order, some of them repeated.
func shuffled(rng *rand.Rand, events []ev) []ev {
	var out []ev
	for _, x := range events {
		out = append(out, x)
		for rng.Float64() < 0.3 {
			out = append(out, x)
		}
	}
	rng.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	return out
}

func TestOrderIndependence(t *testing.T) {
	const perms = 300
	for _, lc := range lifecycles {
		t.Run(lc.name, func(t *testing.T) {
			events := lc.build(1).events
			want := foldAll(t, events, false)
			wantJSON := want.json(t)
			// In reverse, too.
			rev := slices.Clone(events)
			slices.Reverse(rev)
			if got := foldAll(t, rev, true).json(t); got != wantJSON {
				t.Fatalf("reverse order:\n%s\nwant\n%s", got, wantJSON)
			}
			rng := rand.New(rand.NewPCG(42, uint64(len(events))))
			for i := range perms {
				seq := shuffled(rng, events)
				f := foldAll(t, seq, i%2 == 1) // every other one through JSON at each step
				if got := f.json(t); got != wantJSON {
					t.Fatalf("permutation %d (roundTrip=%v) differs:\n%s\nwant\n%s\norder: %v", i, i%2 == 1, got, wantJSON, ids(seq))
				}
				// Every event is now known: applying any again changes nothing.
				for _, x := range events {
					if x.e.ConversationSid != "" && f.conv.Apply(x.e, x.id) {
						t.Fatalf("conversation changed on re-applying %s", x.id)
					}
					if tv := f.tasks[x.e.TaskSid]; tv != nil && tv.Apply(x.e, x.id) {
						t.Fatalf("task changed on re-applying %s", x.id)
					}
				}
			}
		})
	}
}

func ids(seq []ev) []string {
	s := make([]string, len(seq))
	for i, x := range seq {
		s[i] = x.id + ":" + x.e.Type
	}
	return s
}

func TestIgnoresOtherSubjects(t *testing.T) {
	w := fullLifecycle(1)
	f := foldAll(t, w.events, false)
	before := f.json(t)
	other := fullLifecycle(2)
	for _, x := range other.events {
		if f.conv.Apply(x.e, x.id) {
			t.Fatalf("conversation view took %s of another conversation", x.e.Type)
		}
		if tv := f.tasks[w.task(1)]; tv.Apply(x.e, x.id) {
			t.Fatalf("task view took %s of another task", x.e.Type)
		}
	}
	for _, typ := range []string{domain.DeliveryUpdated, domain.TwilioEvent, "SomethingNew"} {
		e := domain.Event{Type: typ, At: sec(5000), ConversationSid: w.conv(), TaskSid: w.task(1)}
		if f.conv.Apply(e, "x") || f.tasks[w.task(1)].Apply(e, "x") {
			t.Fatalf("%s changed a view", typ)
		}
	}
	if f.json(t) != before {
		t.Fatal("views changed")
	}
}

func statsJSON(t *testing.T, s Stats) string { return string(mustJSON(t, s)) }

func TestStatsUpdate(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	const n = 300
	type conv struct {
		events []ev
	}
	convs := make([]*conv, n)
	var all []ev
	for i := range convs {
		lc := lifecycles[rng.IntN(len(lifecycles))]
		evs := shuffled(rng, lc.build(i+1).events)
		evs = evs[:rng.IntN(len(evs)+1)] // some conversations only partly known
		convs[i] = &conv{events: evs}
		all = append(all, evs...)
	}
	rng.Shuffle(len(all), func(i, j int) { all[i], all[j] = all[j], all[i] })

	var stats Stats
	views := map[string]*ConversationView{}
	for _, x := range all {
		if x.e.ConversationSid == "" {
			continue
		}
		v := views[x.e.ConversationSid]
		var before *ConversationView
		if v == nil {
			v = &ConversationView{Sid: x.e.ConversationSid}
			views[v.Sid] = v
		} else {
			// As the store does: before is the view as stored (a deep copy).
			before = &ConversationView{}
			mustUnmarshal(t, mustJSON(t, v), before)
		}
		changed := v.Apply(x.e, x.id)
		if before == nil || changed {
			stats.Update(before, v)
		}
		// Round trip the stats too, as they are stored.
		var back Stats
		mustUnmarshal(t, mustJSON(t, stats), &back)
		stats = back
	}
	var scratch Stats
	states := map[string]int{}
	for _, v := range views {
		scratch.Update(nil, v)
		s := v.State
		if s == "" {
			s = StateUnknown
		}
		states[s]++
	}
	if got, want := statsJSON(t, stats), statsJSON(t, scratch); got != want {
		t.Fatalf("incremental stats\n%s\nfrom scratch\n%s", got, want)
	}
	eq(t, "conversations", scratch.Conversations, len(views))
	eq(t, "by state", scratch.ByState, states)
	if scratch.OrphanCandidates == 0 || len(scratch.Flags) != 3 {
		t.Errorf("expected some orphan candidates and all three flags: %s", statsJSON(t, scratch))
	}
	// Removing every view leaves nothing.
	for _, v := range views {
		stats.Update(v, nil)
	}
	eq(t, "emptied", statsJSON(t, stats), `{"conversations":0,"orphanCandidates":0}`)
}

// TestViewJSON pins the JSON shape the query API serves.
func TestViewJSON(t *testing.T) {
	f := foldAll(t, workflowTimeoutLifecycle(1).events, false)
	var m map[string]any
	mustUnmarshal(t, mustJSON(t, f.conv), &m)
	for _, k := range []string{"sid", "state", "stateAt", "timers", "participants", "agentPresent", "interactionSid",
		"channelSid", "channelType", "tasks", "messageCount", "messageIndexes", "lastActivity", "firstSeen",
		"noCloseTimer", "piiIdentity", "agentWithoutInvite"} {
		if _, ok := m[k]; !ok {
			t.Errorf("conversation JSON lacks %q: %v", k, m)
		}
	}
	mustUnmarshal(t, mustJSON(t, f.tasks[sid("WT", 1, 1)]), &m)
	for _, k := range []string{"sid", "conversationSid", "queue", "workflow", "taskChannel", "status", "transitions",
		"canceledReason", "workflowTimedOut", "createdAt", "endedAt", "waitTimeMs", "handleTimeMs"} {
		if _, ok := m[k]; !ok {
			t.Errorf("task JSON lacks %q: %v", k, m)
		}
	}
	b, _ := json.Marshal(ConversationView{})
	eq(t, "empty view", string(b), `{"sid":"","state":"","timers":{"seen":false},"agentPresent":false,"messageCount":0,"noCloseTimer":false,"piiIdentity":false,"agentWithoutInvite":false}`)
}
