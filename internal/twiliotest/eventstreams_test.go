package twiliotest_test

import (
	"encoding/json"
	"regexp"
	"strings"
	"testing"
	"time"

	tt "github.com/flexstream/flexstream/internal/twiliotest"
	"github.com/flexstream/flexstream/schemas"
)

func TestEventStreamsDelivery(t *testing.T) {
	ids := tt.NewIDs(21)
	var events []tt.EventStreamsEvent
	for _, et := range tt.TaskRouterEventTypes() {
		events = append(events, tt.EventStreamsEvent{Type: et})
	}
	for _, et := range []string{"message.added", "com.twilio.conversations.conversation-state.updated", "onParticipantAdded", "conversation.added", "delivery.updated"} {
		events = append(events, tt.EventStreamsEvent{Type: et})
	}
	events = append(events,
		tt.EventStreamsEvent{Type: "com.twilio.taskrouter.task.canceled", ID: "fixed-id", Data: map[string]any{"custom": 1}},
		tt.EventStreamsEvent{Type: "task.created", Data: []byte(`{"raw":true}`)})
	body := tt.EventStreamsDelivery(ids, events...)

	ces, err := schemas.ParseEventStreams(body)
	if err != nil {
		t.Fatal(err)
	}
	if len(ces) != len(events) {
		t.Fatalf("%d events, want %d", len(ces), len(events))
	}
	uuid := regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)
	seen := map[string]bool{}
	for i, ce := range ces {
		if ce.SpecVersion != "1.0" || ce.DataContentType != "application/json" || ce.DataSchema == "" || ce.Source == "" {
			t.Errorf("%d: attributes %+v", i, ce)
		}
		if _, err := time.Parse(time.RFC3339, ce.Time); err != nil {
			t.Errorf("%d: time %q", i, ce.Time)
		}
		if seen[ce.ID] {
			t.Errorf("%d: duplicate id %s", i, ce.ID)
		}
		seen[ce.ID] = true
		if events[i].ID == "" && !uuid.MatchString(ce.ID) {
			t.Errorf("%d: id %q", i, ce.ID)
		}
		if events[i].Data != nil {
			continue
		}
		switch {
		case strings.HasPrefix(ce.Type, schemas.TypePrefixTaskRouter):
			et := strings.TrimPrefix(ce.Type, schemas.TypePrefixTaskRouter)
			if et != events[i].Type {
				t.Errorf("%d: type %s", i, ce.Type)
			}
			var d schemas.EventStreamsTaskRouterData
			if err := json.Unmarshal(ce.Data, &d); err != nil {
				t.Fatal(err)
			}
			checkSid(t, "sid", "EV", d.Sid)
			if d.Name == "" || d.Timestamp != ce.Time {
				t.Errorf("%s: data %+v, time %s", et, d, ce.Time)
			}
			if et == "worker.activity.update" {
				if d.Payload.WorkerSid != ids.Worker || d.Payload.ResourceSid != ids.Worker {
					t.Errorf("%s: payload %+v", et, d.Payload)
				}
				continue
			}
			var attrs schemas.TaskAttributes
			if err := json.Unmarshal([]byte(d.Payload.TaskAttributes), &attrs); err != nil || attrs.ConversationSid != ids.Conversation {
				t.Errorf("%s: task_attributes %q %v", et, d.Payload.TaskAttributes, err)
			}
			if d.Payload.TaskSid != ids.Task || d.Payload.WorkflowSid != ids.Workflow || d.Payload.TaskQueueSid != ids.Queue || d.Payload.ResourceSid == "" {
				t.Errorf("%s: payload %+v", et, d.Payload)
			}
			if strings.HasPrefix(et, "reservation.") && (d.Payload.ReservationSid != ids.Reservation || d.Payload.WorkerSid != ids.Worker || d.Payload.ResourceSid != ids.Reservation) {
				t.Errorf("%s: payload %+v", et, d.Payload)
			}
			if (et == "task.canceled") != (d.Payload.TaskCanceledReason != "") {
				t.Errorf("%s: task_canceled_reason %q", et, d.Payload.TaskCanceledReason)
			}
		case strings.HasPrefix(ce.Type, schemas.TypePrefixConversations):
			var d schemas.EventStreamsConversationsData
			if err := json.Unmarshal(ce.Data, &d); err != nil {
				t.Fatal(err)
			}
			if d.ConversationSid != ids.Conversation || d.DateCreated == "" {
				t.Errorf("%s: data %+v", ce.Type, d)
			}
		default:
			t.Errorf("%d: type %s", i, ce.Type)
		}
	}
	wantTypes := map[int]string{
		len(tt.TaskRouterEventTypes()):     "com.twilio.conversations.message.added",
		len(tt.TaskRouterEventTypes()) + 1: "com.twilio.conversations.conversation-state.updated",
		len(tt.TaskRouterEventTypes()) + 2: "com.twilio.conversations.participant.added",
	}
	for i, want := range wantTypes {
		if ces[i].Type != want {
			t.Errorf("%d: type %s, want %s", i, ces[i].Type, want)
		}
	}
	last := ces[len(ces)-2]
	if last.ID != "fixed-id" || string(last.Data) != `{"custom":1}` {
		t.Errorf("explicit event: %+v", last)
	}
	if string(ces[len(ces)-1].Data) != `{"raw":true}` {
		t.Errorf("raw data: %s", ces[len(ces)-1].Data)
	}
}

func TestTaskRouterESData(t *testing.T) {
	ids := tt.NewIDs(22)
	d := tt.TaskRouterESData(ids, "com.twilio.taskrouter.reservation.accepted")
	for _, k := range []string{"sid", "name", "timestamp", "account_sid", "workspace_sid", "payload"} {
		if _, ok := d[k]; !ok {
			t.Errorf("missing %s", k)
		}
	}
	if d["name"] != "ReservationAccepted" || d["account_sid"] != ids.Account || d["workspace_sid"] != ids.Workspace {
		t.Errorf("data %v", d)
	}
	p := d["payload"].(map[string]any)
	for _, k := range []string{"task_sid", "task_attributes", "reservation_sid", "worker_sid", "workflow_sid", "task_queue_sid", "resource_sid", "event_type"} {
		if s, _ := p[k].(string); s == "" {
			t.Errorf("payload %s = %v", k, p[k])
		}
	}
	if p["event_type"] != "reservation.accepted" || p["resource_sid"] != ids.Reservation {
		t.Errorf("payload %v", p)
	}
	if _, ok := p["task_age"].(int64); !ok {
		t.Errorf("task_age %T", p["task_age"])
	}
	if ts, err := time.Parse(time.RFC3339, d["timestamp"].(string)); err != nil || !ts.Equal(tt.EventTime("reservation.accepted")) {
		t.Errorf("timestamp %v %v", d["timestamp"], err)
	}
	p = tt.TaskRouterESData(ids, "task.canceled", tt.WithCanceledReason("hangup"), tt.WithoutConversation())["payload"].(map[string]any)
	if p["task_canceled_reason"] != "hangup" || strings.Contains(p["task_attributes"].(string), "conversationSid") {
		t.Errorf("options: %v", p)
	}
	ev := ids.SID("EV", "z")
	if d := tt.TaskRouterESData(ids, "task.created", tt.WithEventSid(ev)); d["sid"] != ev {
		t.Errorf("sid %v", d["sid"])
	}
}

func TestConversationsESData(t *testing.T) {
	ids := tt.NewIDs(23)
	for _, et := range []string{"message.added", "com.twilio.conversations.message.added", "onMessageAdded"} {
		d := tt.ConversationsESData(ids, et)
		want := map[string]any{
			"AccountSid": ids.Account, "ConversationSid": ids.Conversation, "MessageSid": ids.Message,
			"ParticipantSid": ids.Participant, "Author": ids.CustomerAddress(), "Index": int64(0), "MessageBody": tt.DefaultBody,
		}
		for k, v := range want {
			if d[k] != v {
				t.Errorf("%s: %s = %v (%T), want %v", et, k, d[k], d[k], v)
			}
		}
		if _, ok := d["DateCreated"].(string); !ok {
			t.Errorf("%s: DateCreated %v", et, d["DateCreated"])
		}
		if _, ok := d["Body"]; ok {
			t.Errorf("%s: Body not renamed", et)
		}
		if _, ok := d["EventType"]; ok {
			t.Errorf("%s: EventType present", et)
		}
	}
	d := tt.ConversationsESData(ids, "participant.added")
	b, _ := d["MessagingBinding"].(map[string]any)
	if b["Address"] != ids.CustomerAddress() || b["Type"] != "whatsapp" {
		t.Errorf("participant.added: %v", d)
	}
	d = tt.ConversationsESData(ids, "conversation-state.updated", tt.WithStateTo("closed"))
	if d["StateTo"] != "closed" || d["StateFrom"] != "active" {
		t.Errorf("state: %v", d)
	}
}

func TestEventStreamsType(t *testing.T) {
	for in, want := range map[string]string{
		"task.created":               "com.twilio.taskrouter.task.created",
		"worker.activity.update":     "com.twilio.taskrouter.worker.activity.update",
		"task-queue.entered":         "com.twilio.taskrouter.task-queue.entered",
		"onConversationStateUpdated": "com.twilio.conversations.conversation-state.updated",
		"message.added":              "com.twilio.conversations.message.added",
		"com.twilio.x.y":             "com.twilio.x.y",
	} {
		if got := tt.EventStreamsType(in); got != want {
			t.Errorf("%s: %s, want %s", in, got, want)
		}
	}
}
