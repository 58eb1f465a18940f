package audit

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/flexstream/flexstream/internal/eventstore"
	"github.com/flexstream/flexstream/projector/domain"
	"github.com/flexstream/flexstream/reactors/act"
	"github.com/flexstream/flexstream/reactors/decide"
	"github.com/flexstream/flexstream/reactors/engine"
)

// The story, in order: trigger (workflow.timeout) → decision
// (the rule) → re-invite (WT2) → new task (WT2 created) → acceptance.
func TestTimelineWorkflowTimeout(t *testing.T) {
	s, ev := timeoutConversation()
	rows := Timeline(s.conversationEvents(), s.reactionStreams())

	require.Equal(t, []string{
		domain.ConversationAdded, domain.ParticipantAdded, domain.MessageAdded, domain.TaskCreated,
		domain.WorkflowTimedOut, domain.TaskCanceled, // same time: $all order
		engine.EvPlanned, engine.EvStarted, engine.EvSucceeded, engine.EvStarted, engine.EvSucceeded,
		domain.TaskCreated, engine.EvCompleted, domain.ReservationCreated, domain.ReservationAccepted,
	}, types(rows))

	byID := map[string]Row{}
	for _, r := range rows {
		byID[r.EventID] = r
	}
	row := func(name string) Row { return byID[ev[name].ID.String()] }

	trigger := row("timeout")
	require.Equal(t, SourceTwilio, trigger.Source)
	require.Equal(t, "reaction-"+wt1, trigger.Trigger)
	require.Equal(t, "workflow.timeout: task "+wt1+" timed out, workflow "+ww+`, queue "Support" (`+wq+") ⇒ trigger of reaction-"+wt1+" (workflow.timeout)", trigger.Detail)
	require.Equal(t, t0.Add(63*time.Second), trigger.At, "Twilio's time, not the store's")

	planned := row("planned")
	require.Equal(t, SourceReactor, planned.Source)
	require.Equal(t, wt1, planned.Task)
	require.Equal(t, "decision on workflow.timeout, trigger WorkflowTimedOut of task "+wt1+": rule workflow.timeout/default → "+
		`1. message "We are still looking for an agent for you."; 2. re-invite through `+wwBack+" (attempt 1); deadline 2025-03-01T10:11:03.000Z; "+
		"why: task "+wt1+": workflow timed out in queue "+wq+"; message, re-invite 1 of 2 through "+wwBack, planned.Detail)

	require.Equal(t, "action 1/2 message: attempt 1 started by reactor", row("started0").Detail)
	require.Equal(t, "action 1/2 message: message "+im2+" sent", row("sent").Detail)
	reinvite := row("reinvited")
	require.Equal(t, "action 2/2 reinvite: invite "+kg1+" made, new task "+wt2, reinvite.Detail)
	require.Equal(t, wt2, reinvite.NewTask)
	require.Contains(t, row("created2").Detail, "made by the reactors' re-invite (attempt 1)")
	require.Equal(t, "reservation.accepted: reservation "+wr1+", worker "+wk1+", task "+wt2, row("accepted").Detail)
	require.Equal(t, "reaction completed: every action done", row("completed").Detail)
	require.Equal(t, "message.added: message #0 "+im1+", by "+customer+", 12 characters", row("message").Detail)
	require.Equal(t, "participant.added: customer "+mb1+", address "+customer+", channel whatsapp", row("customer").Detail)

	for _, r := range rows {
		require.NotNil(t, r.Data, "%s keeps its raw fields", r.Type)
		require.False(t, r.Marked)
	}
	meta := row("timeout").Metadata.(map[string]any)
	require.Equal(t, "twilio.events.v1", meta["kafkaTopic"])
	require.Equal(t, json.Number("4"), meta["kafkaOffset"])
}

func TestTimelineOrder(t *testing.T) {
	at := t0
	ev := func(stream string, rev, pos uint64, typ string, data any) eventstore.RecordedEvent {
		b, _ := json.Marshal(data)
		return eventstore.RecordedEvent{Stream: stream, Revision: rev, Position: pos, Type: typ, Data: b}
	}
	conv := "conversation-" + ch
	react := engine.StreamPrefix + wt1
	tests := []struct {
		name      string
		conv      []eventstore.RecordedEvent
		reactions [][]eventstore.RecordedEvent
		want      []string // streams@revision
	}{
		{
			name: "by time, whatever the stream",
			conv: []eventstore.RecordedEvent{
				ev(conv, 0, 1, domain.TaskCreated, domain.Event{TaskSid: wt1, At: at}),
				ev(conv, 1, 4, domain.ReservationAccepted, domain.Event{TaskSid: wt1, At: at.Add(3 * time.Second)}),
			},
			reactions: [][]eventstore.RecordedEvent{{
				ev(react, 0, 2, engine.EvPlanned, engine.Planned{At: at.Add(time.Second)}),
				ev(react, 1, 3, engine.EvCompleted, engine.Step{At: at.Add(5 * time.Second)}),
			}},
			want: []string{conv + "@0", react + "@0", conv + "@1", react + "@1"},
		},
		{
			name: "same time: $all's order",
			conv: []eventstore.RecordedEvent{
				ev(conv, 0, 7, domain.WorkflowTimedOut, domain.Event{TaskSid: wt1, At: at}),
				ev(conv, 1, 9, domain.TaskCanceled, domain.Event{TaskSid: wt1, At: at}),
			},
			reactions: [][]eventstore.RecordedEvent{{ev(react, 0, 8, engine.EvPlanned, engine.Planned{At: at})}},
			want:      []string{conv + "@0", react + "@0", conv + "@1"},
		},
		{
			name: "same time, no positions: each stream's order",
			conv: []eventstore.RecordedEvent{
				ev(conv, 0, 0, domain.WorkflowTimedOut, domain.Event{TaskSid: wt1, At: at}),
				ev(conv, 1, 0, domain.TaskCanceled, domain.Event{TaskSid: wt1, At: at}),
				ev(conv, 2, 0, domain.TaskDeleted, domain.Event{TaskSid: wt1, At: at}),
			},
			want: []string{conv + "@0", conv + "@1", conv + "@2"},
		},
		{
			name: "Twilio's time, else the time received",
			conv: []eventstore.RecordedEvent{
				ev(conv, 0, 1, domain.TaskCreated, domain.Event{TaskSid: wt1, At: at.Add(2 * time.Second)}),
				{Stream: conv, Revision: 1, Position: 2, Type: domain.TaskUpdated, Data: []byte(`{"taskSid":"` + wt1 + `"}`),
					Metadata: []byte(`{"receivedAt":"2025-03-01T10:00:01Z"}`)},
			},
			want: []string{conv + "@1", conv + "@0"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			for _, r := range Timeline(tt.conv, tt.reactions) {
				got = append(got, r.Stream+"@"+strconv.FormatUint(r.Revision, 10))
			}
			require.Equal(t, tt.want, got)
		})
	}
}

func TestTwilioDetails(t *testing.T) {
	tests := []struct {
		name string
		typ  string
		ce   string
		e    domain.Event
		want string
	}{
		{"state change", domain.ConversationStateChanged, "com.twilio.conversations.conversation-state.updated",
			domain.Event{StateFrom: "active", State: "inactive", Reason: "TIMER"},
			"conversation-state.updated: state active → inactive, reason TIMER"},
		{"conversation closed without timers", domain.ConversationUpdated, "com.twilio.conversations.conversation.updated",
			domain.Event{ConversationSid: ch, State: "closed", HasTimers: true},
			"conversation.updated: conversation " + ch + ", state closed, no close timer"},
		{"agent joins", domain.ParticipantAdded, "com.twilio.conversations.participant.added",
			domain.Event{ParticipantSid: mb1, Role: domain.RoleAgent, Identity: "alice", ChannelType: "chat"},
			"participant.added: agent " + mb1 + ", identity alice, channel chat"},
		{"chat identity that was a phone number", domain.ParticipantAdded, "com.twilio.conversations.participant.added",
			domain.Event{ParticipantSid: mb1, Role: domain.RoleCustomer, Identity: "ph:aa:67", IdentityPII: true},
			"participant.added: customer " + mb1 + ", identity ph:aa:67 (a phone number or e-mail address: pseudonymised)"},
		{"message with media", domain.MessageAdded, "com.twilio.conversations.message.added",
			domain.Event{MessageSid: im1, Index: 3, Author: customer, MediaCount: 2},
			"message.added: message #3 " + im1 + ", by " + customer + ", 2 media"},
		{"delivery failed", domain.DeliveryUpdated, "com.twilio.conversations.delivery.updated",
			domain.Event{MessageSid: im2, DeliveryStatus: "failed", ErrorCode: "63016"},
			"delivery.updated: message " + im2 + ", failed, error 63016"},
		{"task deleted", domain.TaskDeleted, "com.twilio.taskrouter.task.deleted",
			domain.Event{TaskSid: wt1, AssignmentStatus: "canceled", QueueSid: wq},
			"task.deleted: task " + wt1 + ", status canceled, queue " + wq},
		{"reservation rejected", domain.ReservationRejected, "com.twilio.taskrouter.reservation.rejected",
			domain.Event{TaskSid: wt1, ReservationSid: wr1, WorkerSid: wk1},
			"reservation.rejected: reservation " + wr1 + ", worker " + wk1 + ", task " + wt1},
		{"a Twilio event without a type of its own", domain.TwilioEvent, "com.twilio.taskrouter.worker.activity.update",
			domain.Event{WorkerSid: wk1},
			"worker.activity.update: worker " + wk1},
		{"no ce_type", domain.ConversationRemoved, "", domain.Event{ConversationSid: ch},
			"ConversationRemoved: conversation " + ch + " removed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.e.Type, tt.e.CEType, tt.e.At = tt.typ, tt.ce, t0
			data, err := json.Marshal(tt.e)
			require.NoError(t, err)
			rows := Timeline([]eventstore.RecordedEvent{{Stream: "conversation-" + ch, Type: tt.typ, Data: data}}, nil)
			require.Len(t, rows, 1)
			require.Equal(t, tt.want, rows[0].Detail)
			require.Equal(t, tt.ce, rows[0].CEType)
		})
	}
}

func TestReactionDetails(t *testing.T) {
	plan := engine.Planned{Plan: decide.Plan{Kind: decide.KindTaskDeleted, Rule: "task.deleted/close", Reason: "r",
		Actions: []decide.Action{{Kind: decide.ActClose, InteractionSid: kd, ChannelSid: uo}}}}
	tests := []struct {
		name string
		typ  string
		data any
		want string
	}{
		{"nothing to do", engine.EvPlanned, engine.Planned{
			Trigger: engine.TriggerInfo{EventType: domain.TaskCanceled, TaskSid: wt1},
			Plan:    decide.Plan{Kind: decide.KindTaskCanceled, Cause: decide.CauseOther, Skip: decide.SkipAgentPresent, Reason: "task " + wt1 + ": canceled (other); an agent is in the conversation"}},
			"decision on task.canceled (other), trigger TaskCanceled of task " + wt1 + ": do nothing (agent-present); why: task " + wt1 + ": canceled (other); an agent is in the conversation"},
		{"dry run", engine.EvPlanned, engine.Planned{DryRun: true, Plan: decide.Plan{Kind: decide.KindTaskDeleted, Rule: "task.deleted/close",
			Actions: []decide.Action{{Kind: decide.ActClose, ChannelSid: uo}, {Kind: decide.ActMessage, ContentSid: "HX1"}}}},
			"[dry run] decision on task.deleted: rule task.deleted/close → 1. close interaction channel " + uo + "; 2. message template HX1"},
		{"long message text", engine.EvPlanned, engine.Planned{Plan: decide.Plan{Kind: decide.KindWorkflowTimeout, Rule: "workflow.timeout/x",
			Actions: []decide.Action{{Kind: decide.ActMessage, Body: strings.Repeat("a", 100)}}}},
			`decision on workflow.timeout: rule workflow.timeout/x → 1. message "` + strings.Repeat("a", 59) + `…"`},
		{"close done", engine.EvSucceeded, engine.Step{Action: 0, Attempt: 1, Result: &act.Result{}},
			"action 1/1 close: interaction channel " + uo + " closed"},
		{"reconciled", engine.EvSucceeded, engine.Step{Action: 0, Attempt: 2, Result: &act.Result{}, Reconciled: true},
			"action 1/1 close: interaction channel " + uo + " closed (reconciled: an earlier attempt had done it)"},
		{"throttled", engine.EvFailed, engine.Step{Action: 0, Attempt: 1, Status: 429, RetryAfter: time.Second, Error: "twilio update interaction channel: HTTP 429: Too Many Requests"},
			"action 1/1 close: attempt 1 failed: HTTP 429, Retry-After 1s: twilio update interaction channel: HTTP 429: Too Many Requests"},
		{"no answer", engine.EvFailed, engine.Step{Action: 0, Attempt: 2, Error: "context deadline exceeded"},
			"action 1/1 close: attempt 2 failed: no answer: context deadline exceeded"},
		{"not needed", engine.EvSkipped, engine.Step{Action: 0, Attempt: 1, Reason: "interaction channel is closed"},
			"action 1/1 close: skipped: interaction channel is closed"},
		{"abandoned", engine.EvAbandoned, engine.Step{Reason: "close (action 0) failed 5 times"},
			"reaction abandoned: close (action 0) failed 5 times"},
		{"action the plan lacks", engine.EvStarted, engine.Step{Action: 4, Attempt: 1},
			"action 5: attempt 1 started"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stream := []eventstore.RecordedEvent{}
			if tt.typ != engine.EvPlanned {
				b, _ := json.Marshal(plan)
				stream = append(stream, eventstore.RecordedEvent{Stream: engine.StreamPrefix + wt1, Type: engine.EvPlanned, Data: b})
			}
			b, _ := json.Marshal(tt.data)
			stream = append(stream, eventstore.RecordedEvent{Stream: engine.StreamPrefix + wt1, Revision: uint64(len(stream)), Type: tt.typ, Data: b})
			rows := Timeline(nil, [][]eventstore.RecordedEvent{stream})
			last := rows[len(rows)-1]
			require.Equal(t, tt.typ, last.Type)
			require.Equal(t, tt.want, last.Detail)
			require.Equal(t, SourceReactor, last.Source)
			require.Equal(t, wt1, last.Task)
		})
	}
}

func TestUndecodableAndControlCharacters(t *testing.T) {
	rows := Timeline([]eventstore.RecordedEvent{
		{Stream: "conversation-" + ch, Revision: 0, Type: domain.TaskCreated, Data: []byte("{not json"), Created: t0},
		{Stream: "conversation-" + ch, Revision: 1, Type: domain.TaskCanceled, Data: []byte(`{"taskSid":"` + wt1 + `","canceledReason":"line\nbreak\u001b[31m red","at":"2025-03-01T10:00:01Z"}`)},
	}, [][]eventstore.RecordedEvent{{
		{Stream: engine.StreamPrefix + wt1, Type: engine.EvFailed, Data: []byte(`[]`), Created: t0.Add(time.Hour)},
		{Stream: engine.StreamPrefix + wt1, Revision: 1, Type: engine.EvAbandoned, Data: []byte(`{"reason":"refused:\n\u001b[2Jgone"}`), Created: t0.Add(time.Hour)},
	}})
	require.Len(t, rows, 4)
	require.Equal(t, "reaction abandoned: refused:  [2Jgone", rows[3].Detail, "unquoted: control characters blanked")
	require.True(t, strings.HasPrefix(rows[0].Detail, "undecodable TaskCreated: "), rows[0].Detail)
	require.Equal(t, "{not json", rows[0].Data, "what does not parse is kept as text")
	require.Equal(t, t0, rows[0].At, "no time in the data: the store's")
	require.Equal(t, `TaskCanceled: task `+wt1+`, reason "line\nbreak\x1b[31m red"`, rows[1].Detail, "quoted: control characters escaped")
	require.True(t, strings.HasPrefix(rows[2].Detail, "undecodable ActionFailed: "), rows[2].Detail)
	require.Equal(t, "a b c", clean("a\tb\nc"))
}

func TestMark(t *testing.T) {
	s, _ := timeoutConversation()
	rows := Timeline(s.conversationEvents(), s.reactionStreams())
	Mark(rows, wt2)
	var marked []string
	for _, r := range rows {
		if r.Marked {
			marked = append(marked, r.Type)
		}
	}
	require.Equal(t, []string{engine.EvSucceeded, domain.TaskCreated, domain.ReservationCreated, domain.ReservationAccepted}, marked,
		"the re-invite that made it and its own events")
}

func TestWriteTable(t *testing.T) {
	s, _ := timeoutConversation()
	rows := Timeline(s.conversationEvents(), s.reactionStreams())
	rows = append(rows[4:5], rows[10:12]...) // the trigger, the re-invite, the new task
	Mark(rows, wt2)
	a := &Audit{SID: wt2, Conversation: ch, Task: wt2, Tasks: []string{wt1, wt2}, Rows: rows}
	var b bytes.Buffer
	require.NoError(t, WriteTable(&b, a))
	short := strings.NewReplacer(ch, "CH1", wt1, "WT1", wt2, "WT2", ww, "WW1", wwBack, "WW2", wq, "WQ1", kg1, "KG1", kd, "KD1", uo, "UO1").Replace(b.String())
	want := `conversation CH1: 3 events (2 from Twilio, 1 from the reactors); tasks WT1, WT2
rows of task WT2 are marked *

   TIME                      SOURCE   TYPE              TASK                                DETAIL
   2025-03-01T10:01:03.000Z  twilio   WorkflowTimedOut  WT1  workflow.timeout: task WT1 timed out, workflow WW1, queue "Support" (WQ1) ⇒ trigger of reaction-WT1 (workflow.timeout)
*  2025-03-01T10:01:05.900Z  reactor  ActionSucceeded   WT1  action 2/2 reinvite: invite KG1 made, new task WT2
*  2025-03-01T10:01:05.950Z  twilio   TaskCreated       WT2  task.created: task WT2, status pending, queue "Support" (WQ1), workflow WW2, channel chat, interaction KD1, interaction channel UO1, made by the reactors' re-invite (attempt 1)
`
	// The SIDs were shortened after alignment: compare column by column.
	require.Equal(t, strings.Fields(want), strings.Fields(short))
	lines := strings.Split(b.String(), "\n")
	col := strings.Index(lines[3], "DETAIL")
	for _, l := range lines[4:7] {
		require.True(t, strings.HasPrefix(l[col:], "workflow.timeout") || strings.HasPrefix(l[col:], "action") || strings.HasPrefix(l[col:], "task.created"), "aligned: %q", l)
	}
}

func TestWriteJSONAndCSV(t *testing.T) {
	s, _ := timeoutConversation()
	rows := Timeline(s.conversationEvents(), s.reactionStreams())
	rows[0].Detail = `a "quoted", multi-part detail`

	var b bytes.Buffer
	require.NoError(t, WriteJSON(&b, rows))
	var got []map[string]any
	require.NoError(t, json.Unmarshal(b.Bytes(), &got))
	require.Len(t, got, len(rows))
	for _, k := range []string{"at", "source", "stream", "revision", "position", "eventId", "type", "ceType", "task", "detail", "data", "metadata"} {
		require.Contains(t, got[4], k)
	}
	require.Equal(t, "reaction-"+wt1, got[4]["triggerOf"])
	require.Equal(t, wt2, got[10]["newTask"])
	b.Reset()
	require.NoError(t, WriteJSON(&b, nil))
	require.Equal(t, "[]\n", b.String())

	b.Reset()
	require.NoError(t, WriteCSV(&b, rows))
	recs, err := csv.NewReader(&b).ReadAll()
	require.NoError(t, err)
	require.Equal(t, CSVHeader, recs[0])
	require.Len(t, recs, len(rows)+1)
	require.Equal(t, `a "quoted", multi-part detail`, recs[1][12])
	require.Equal(t, "2025-03-01T10:01:03.000Z", recs[5][0])
	require.Equal(t, "WorkflowTimedOut", recs[5][6])

	require.Error(t, Write(&b, "xml", &Audit{}))
	for _, f := range Formats {
		require.True(t, ValidFormat(f))
	}
	require.False(t, ValidFormat("xml"))
}
