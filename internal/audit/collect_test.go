package audit

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/flexstream/flexstream/internal/eventstore"
	"github.com/flexstream/flexstream/projector/domain"
	"github.com/flexstream/flexstream/reactors/act"
	"github.com/flexstream/flexstream/reactors/decide"
	"github.com/flexstream/flexstream/reactors/engine"
)

func marked(a *Audit) (out []string) {
	for _, r := range a.Rows {
		if r.Marked {
			out = append(out, r.Type)
		}
	}
	return out
}

func TestCollect(t *testing.T) {
	wt9 := sid("WT", 9)
	tests := []struct {
		name        string
		sid         string
		build       func(s *store)
		wantConv    string
		wantTasks   []string
		wantStreams []string
		wantRows    int
		wantMarked  []string
		wantScan    bool
	}{
		{
			name: "a conversation: its stream, then each task's streams, a re-invite's new task included",
			sid:  ch, wantConv: ch, wantTasks: []string{wt1, wt2},
			wantStreams: []string{"conversation-" + ch, engine.StreamPrefix + wt1},
			wantRows:    15,
		},
		{
			name: "a task with a reaction: its conversation from the trigger's stream, its rows marked",
			sid:  wt1, wantConv: ch, wantTasks: []string{wt1, wt2},
			wantStreams: []string{engine.StreamPrefix + wt1, "conversation-" + ch},
			wantRows:    15,
			wantMarked:  []string{domain.TaskCreated, domain.WorkflowTimedOut, domain.TaskCanceled, engine.EvPlanned, engine.EvStarted, engine.EvSucceeded, engine.EvStarted, engine.EvSucceeded, engine.EvCompleted},
		},
		{
			name: "a task that only a conversation's events name: found by reading $all",
			sid:  wt2, wantConv: ch, wantTasks: []string{wt1, wt2}, wantScan: true,
			wantStreams: []string{"conversation-" + ch, engine.StreamPrefix + wt1},
			wantRows:    15,
			wantMarked:  []string{engine.EvSucceeded, domain.TaskCreated, domain.ReservationCreated, domain.ReservationAccepted},
		},
		{
			name: "a task made by a re-invite whose events have not arrived: found through the reaction that made it",
			sid:  wt2,
			build: func(s *store) {
				for _, name := range []string{"conversation-" + ch} {
					var keep []eventstore.RecordedEvent
					for _, ev := range s.streams[name] {
						if !strings.Contains(string(ev.Data), wt2) {
							keep = append(keep, ev)
						}
					}
					s.streams[name] = keep
				}
				var all []eventstore.RecordedEvent
				for _, ev := range s.all {
					if !(ev.Stream == "conversation-"+ch && strings.Contains(string(ev.Data), wt2)) {
						all = append(all, ev)
					}
				}
				s.all = all
			},
			wantConv: ch, wantTasks: []string{wt1, wt2}, wantScan: true,
			wantStreams: []string{engine.StreamPrefix + wt1, "conversation-" + ch},
			wantRows:    12,
			wantMarked:  []string{engine.EvSucceeded},
		},
		{
			name: "a task whose conversation is unknown: its own stream and its reaction (after reading $all for it)",
			sid:  wt9,
			build: func(s *store) {
				s.twilio(domain.TaskCreated, "com.twilio.taskrouter.task.created", t0, domain.Event{TaskSid: wt9, AssignmentStatus: "pending"})
				s.twilio(domain.TaskCanceled, "com.twilio.taskrouter.task.canceled", t0.Add(sec(60)), domain.Event{TaskSid: wt9, AssignmentStatus: "canceled"})
				s.reaction(wt9, engine.EvPlanned, engine.Planned{Trigger: engine.TriggerInfo{Stream: "task-" + wt9, TaskSid: wt9},
					Plan: decide.Plan{Kind: decide.KindTaskCanceled, Skip: decide.SkipNoConversation, Reason: "the task names no conversation"}, At: t0.Add(sec(62))})
				s.reaction(wt9, engine.EvCompleted, engine.Step{At: t0.Add(sec(62))})
			},
			wantTasks: []string{wt9}, wantScan: true,
			wantStreams: []string{engine.StreamPrefix + wt9, "task-" + wt9},
			wantRows:    4,
			wantMarked:  []string{domain.TaskCreated, domain.TaskCanceled, engine.EvPlanned, engine.EvCompleted},
		},
		{
			name: "a task whose first events came before its conversation was known: both streams",
			sid:  wt9,
			build: func(s *store) {
				s.twilio(domain.TaskCreated, "com.twilio.taskrouter.task.created", t0.Add(sec(80)), domain.Event{TaskSid: wt9, AssignmentStatus: "pending"})
				s.twilio(domain.TaskUpdated, "com.twilio.taskrouter.task.updated", t0.Add(sec(81)), domain.Event{TaskSid: wt9, ConversationSid: ch, AssignmentStatus: "pending"})
			},
			wantConv: ch, wantTasks: []string{wt1, wt2, wt9}, wantScan: true,
			wantStreams: []string{"task-" + wt9, "conversation-" + ch, engine.StreamPrefix + wt1},
			wantRows:    17,
			wantMarked:  []string{domain.TaskCreated, domain.TaskUpdated},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, _ := timeoutConversation()
			if tt.build != nil {
				tt.build(s)
			}
			var progress []uint64
			a, err := Collect(context.Background(), s, tt.sid, Options{Progress: func(n uint64) { progress = append(progress, n) }, ProgressEvery: 5})
			require.NoError(t, err)
			require.Equal(t, tt.sid, a.SID)
			require.Equal(t, tt.wantConv, a.Conversation)
			require.ElementsMatch(t, tt.wantTasks, a.Tasks)
			require.ElementsMatch(t, tt.wantStreams, a.Streams)
			require.Len(t, a.Rows, tt.wantRows)
			require.Equal(t, tt.wantMarked, marked(a))
			require.Equal(t, tt.wantScan, a.Scanned > 0, "scanned %d", a.Scanned)
			if a.Scanned >= 5 {
				require.NotEmpty(t, progress, "progress while reading $all")
			} else {
				require.Empty(t, progress)
			}
			for i := 1; i < len(a.Rows); i++ {
				require.False(t, a.Rows[i].At.Before(a.Rows[i-1].At), "rows in time order")
			}
			if tt.sid[:2] == "CH" {
				require.Equal(t, "", a.Task)
			} else {
				require.Equal(t, tt.sid, a.Task)
			}
		})
	}
}

func TestCollectReadsEachStreamOnce(t *testing.T) {
	s, _ := timeoutConversation()
	_, err := Collect(context.Background(), s, wt1, Options{})
	require.NoError(t, err)
	seen := map[string]int{}
	for _, r := range s.reads {
		seen[r]++
	}
	for name, n := range seen {
		require.Equal(t, 1, n, "%s read %d times", name, n)
	}
	require.NotContains(t, seen, "$all", "the reaction names the conversation: no scan")
}

func TestCollectErrors(t *testing.T) {
	s, _ := timeoutConversation()
	ctx := context.Background()

	_, err := Collect(ctx, s, sid("CH", 77), Options{})
	requireErrorIs(t, err, ErrUnknownSID)
	require.Contains(t, err.Error(), "conversation-"+sid("CH", 77))

	_, err = Collect(ctx, s, sid("WT", 77), Options{})
	requireErrorIs(t, err, ErrUnknownSID)
	require.Contains(t, s.reads, "$all", "an unknown task is looked for everywhere")

	for _, bad := range []string{"", "CH1", "KD" + ch[2:], "ch" + ch[2:], ch + "0", "WT" + strings.Repeat("g", 32)} {
		_, err = Collect(ctx, s, bad, Options{})
		requireErrorIs(t, err, ErrBadSID)
	}

	s.fail = engine.StreamPrefix + wt1
	_, err = Collect(ctx, s, ch, Options{})
	requireErrorIs(t, err, eventstore.ErrUnavailable)
	require.NotErrorIs(t, err, ErrUnknownSID)
}

// The stored JSON of a re-invite's result is what Collect follows.
func TestCollectFollowsStoredResult(t *testing.T) {
	s := newStore()
	s.twilio(domain.WorkflowTimedOut, "com.twilio.taskrouter.workflow.timeout", t0, domain.Event{ConversationSid: ch, TaskSid: wt1})
	s.reaction(wt1, engine.EvPlanned, engine.Planned{Trigger: engine.TriggerInfo{Stream: "conversation-" + ch, TaskSid: wt1},
		Plan: decide.Plan{Kind: decide.KindWorkflowTimeout, Actions: []decide.Action{{Kind: decide.ActReinvite}}}, At: t0.Add(sec(1))})
	s.reaction(wt1, engine.EvSucceeded, engine.Step{Result: &act.Result{Sid: kg1, TaskSid: wt2}, At: t0.Add(sec(2))})
	// The new task timed out too: its reaction is part of the story.
	s.reaction(wt2, engine.EvPlanned, engine.Planned{Trigger: engine.TriggerInfo{Stream: "conversation-" + ch, TaskSid: wt2},
		Plan: decide.Plan{Kind: decide.KindWorkflowTimeout, Skip: decide.SkipExpired}, At: t0.Add(sec(3))})
	a, err := Collect(context.Background(), s, ch, Options{})
	require.NoError(t, err)
	require.Equal(t, []string{wt1, wt2}, a.Tasks)
	require.Equal(t, []string{domain.WorkflowTimedOut, engine.EvPlanned, engine.EvSucceeded, engine.EvPlanned}, types(a.Rows))
	b, _ := json.Marshal(a)
	require.Contains(t, string(b), `"streams":["conversation-`+ch)
}
