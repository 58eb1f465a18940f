package schemas

import (
	"encoding/json"
	"errors"
	"net/url"
	"strings"
	"sync"
	"testing"
)

func validator(t testing.TB) *Validator {
	t.Helper()
	v, err := DefaultValidator()
	if err != nil {
		t.Fatalf("DefaultValidator: %v", err)
	}
	return v
}

// wantInvalid checks err is a schema failure of family at field with
// keyword, and that its message is one line echoing none of secrets.
func wantInvalid(t *testing.T, err error, family, field, keyword string, secrets ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("accepted, want %s %s %s failure", family, field, keyword)
	}
	if !errors.Is(err, ErrInvalid) {
		t.Fatalf("error %v does not wrap ErrInvalid", err)
	}
	var se *SchemaError
	if !errors.As(err, &se) {
		t.Fatalf("error %v is not a *SchemaError", err)
	}
	msg := err.Error()
	if se.Family != family || (field != "" && se.Field != field) || (keyword != "" && se.Keyword != keyword) {
		t.Fatalf("got family %q field %q keyword %q (%s), want %q %q %q", se.Family, se.Field, se.Keyword, msg, family, field, keyword)
	}
	if !strings.HasPrefix(msg, family+": ") || strings.Contains(msg, "\n") || len(msg) > 200 {
		t.Fatalf("message not one short line naming the family: %q", msg)
	}
	for _, s := range secrets {
		if s != "" && strings.Contains(msg, s) {
			t.Fatalf("message %q echoes the payload value %q", msg, s)
		}
	}
}

func TestTaskRouterAccepted(t *testing.T) {
	v := validator(t)
	cases := []struct {
		name   string
		form   url.Values
		status string
	}{
		{"task.created", taskCreated, "pending"},
		{"reservation.accepted", resAccepted, "assigned"},
		{"reservation.rejected", resRejected, "pending"},
		{"workflow.timeout", workflowTimeout, "canceled"},
		{"task.canceled", taskCanceled, "canceled"},
		{"task.deleted", taskDeleted, "canceled"},
		{"task.completed", taskCompleted, "completed"},
		{"minimal", url.Values{"EventType": {"worker.activity.update"}, "AccountSid": {accountSid},
			"WorkspaceSid": {workspaceSid}, "ResourceType": {"Worker"}, "ResourceSid": {workerSid}}, ""},
		{"empty optional fields", with(taskCanceled, "ReservationSid", "", "WorkerSid", "", "TaskQueueSid", ""), "canceled"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if err := v.ValidateTaskRouterForm(c.form); err != nil {
				t.Fatalf("schema: %v", err)
			}
			if err := v.ValidatePayload(FamilyTaskRouter, ContentTypeForm, []byte(c.form.Encode())); err != nil {
				t.Fatalf("ValidatePayload: %v", err)
			}
			cb, err := ParseTaskRouter(c.form)
			if err != nil {
				t.Fatalf("ParseTaskRouter: %v", err)
			}
			if cb.EventType != c.form.Get("EventType") || cb.TaskAssignmentStatus != c.status || cb.ResourceSid != c.form.Get("ResourceSid") {
				t.Fatalf("parsed %+v", cb)
			}
			attrs, err := cb.Attributes()
			if err != nil {
				t.Fatalf("Attributes: %v", err)
			}
			if cb.TaskAttributes != "" && attrs.ConversationSid != conversationSid {
				t.Fatalf("conversationSid = %q", attrs.ConversationSid)
			}
		})
	}
	if cb, _ := ParseTaskRouter(taskCanceled); cb.TaskCanceledReason != "Task TTL Exceeded" {
		t.Fatalf("TaskCanceledReason = %q", cb.TaskCanceledReason)
	}
	if cb, _ := ParseTaskRouter(resRejected); cb.WorkerSid != workerSid || cb.ReservationSid != reservationSid {
		t.Fatalf("reservation.rejected parsed %+v", cb)
	}
}

func TestTaskRouterRejected(t *testing.T) {
	v := validator(t)
	cases := []struct {
		name           string
		form           url.Values
		field, keyword string
		parserRejects  bool
	}{
		{"missing AccountSid", with(taskCreated, "AccountSid", del), "/AccountSid", "required", true},
		{"missing EventType", with(taskCreated, "EventType", del), "/EventType", "required", true},
		{"missing ResourceSid", with(taskCreated, "ResourceSid", del), "/ResourceSid", "required", true},
		{"empty WorkspaceSid", with(taskCreated, "WorkspaceSid", ""), "/WorkspaceSid", "pattern", true},
		{"empty ResourceType", with(taskCreated, "ResourceType", ""), "/ResourceType", "minLength", true},
		{"bad TaskSid", with(taskCreated, "TaskSid", "WT123"), "/TaskSid", "pattern", false},
		{"TaskSid with wrong prefix", with(taskCreated, "TaskSid", sid("WR", "x")), "/TaskSid", "pattern", false},
		{"bad ReservationSid", with(resAccepted, "ReservationSid", sid("WT", "x")), "/ReservationSid", "pattern", false},
		{"bad WorkerSid", with(resAccepted, "WorkerSid", "WKnothex"), "/WorkerSid", "pattern", false},
		{"bad WorkflowSid", with(workflowTimeout, "WorkflowSid", sid("WQ", "x")), "/WorkflowSid", "pattern", false},
		{"bad TaskQueueSid", with(resAccepted, "TaskQueueSid", sid("WW", "x")), "/TaskQueueSid", "pattern", false},
		{"bad event Sid", with(taskCreated, "Sid", sid("WT", "x")), "/Sid", "pattern", false},
		{"bad AccountSid", with(taskCreated, "AccountSid", "AC1"), "/AccountSid", "pattern", false},
		{"bad EventType", with(taskCreated, "EventType", "Task Created"), "/EventType", "pattern", false},
		{"unknown assignment status", with(taskCreated, "TaskAssignmentStatus", "lost"), "/TaskAssignmentStatus", "enum", false},
		{"TaskAttributes not JSON", with(taskCreated, "TaskAttributes", "from="+customerPhone), "/TaskAttributes", "contentMediaType", false},
		{"TaskAttributes bad conversationSid", with(taskCreated, "TaskAttributes", `{"conversationSid":"`+customerPhone+`"}`),
			"/TaskAttributes → /conversationSid", "pattern", false},
		{"TaskAttributes not an object", with(taskCreated, "TaskAttributes", `["`+customerPhone+`"]`), "/TaskAttributes → (root)", "type", false},
		{"TaskAge not a number", with(taskCreated, "TaskAge", "old"), "/TaskAge", "pattern", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := v.ValidateTaskRouterForm(c.form)
			wantInvalid(t, err, FamilyTaskRouter, c.field, c.keyword, customerPhone, "WKnothex", "Task Created")
			err2 := v.ValidatePayload(FamilyTaskRouter, ContentTypeForm, []byte(c.form.Encode()))
			if err2 == nil || err2.Error() != err.Error() {
				t.Fatalf("ValidatePayload = %v, want %v", err2, err)
			}
			_, perr := ParseTaskRouter(c.form)
			if c.parserRejects {
				var mf *MissingFieldError
				if !errors.As(perr, &mf) || "/"+mf.Field != c.field {
					t.Fatalf("ParseTaskRouter = %v, want missing %s", perr, c.field)
				}
			} else if perr != nil {
				t.Fatalf("ParseTaskRouter = %v; the parser does not check this", perr)
			}
		})
	}
	// The parser's own TaskAttributes check agrees with the schema's.
	cb, _ := ParseTaskRouter(with(taskCreated, "TaskAttributes", "not json"))
	if _, err := cb.Attributes(); err == nil {
		t.Fatal("Attributes accepted a non-JSON string")
	}
}

func TestConversationsAccepted(t *testing.T) {
	v := validator(t)
	cases := []struct {
		name, ceType string
		form         url.Values
		check        func(ConversationsWebhook) bool
	}{
		{"onConversationAdded", "com.twilio.conversations.conversation.added", convAdded, func(w ConversationsWebhook) bool {
			return w.State == "active" && w.BindingAddress == customerPhone && w.BindingProxyAddress == twilioPhone &&
				w.MessagingServiceSid == messagingSvcSid && w.ResourceSid() == conversationSid
		}},
		{"onParticipantAdded", "com.twilio.conversations.participant.added", participantAdded, func(w ConversationsWebhook) bool {
			return w.ParticipantSid == participantSid && w.BindingAddress == customerPhone && w.BindingType == "whatsapp" &&
				w.BindingProxyAddress == twilioPhone && w.RoleSid == roleSid && w.ResourceSid() == participantSid
		}},
		{"onMessageAdded", "com.twilio.conversations.message.added", messageAdded, func(w ConversationsWebhook) bool {
			return w.MessageSid == messageSid && w.Body == messageBody && w.Author == customerPhone && w.Index == "0" &&
				strings.Contains(w.Media, mediaSid) && w.ResourceSid() == messageSid
		}},
		{"onConversationStateUpdated", "com.twilio.conversations.conversation-state.updated", stateUpdated, func(w ConversationsWebhook) bool {
			return w.StateFrom == "inactive" && w.StateTo == "closed" && w.Reason == "TIMER" && w.State == "closed"
		}},
		{"onMessageAdd (pre-event)", "com.twilio.conversations.pre.message.add", messageAdd, func(w ConversationsWebhook) bool {
			return w.ClientIdentity == "agent.ada" && w.MessageSid == "" && w.ResourceSid() == sid("MB", "agent")
		}},
		{"onDeliveryUpdated", "com.twilio.conversations.delivery.updated", conversationsForm("onDeliveryUpdated",
			"MessageSid", messageSid, "DeliveryReceiptSid", sid("DY", "receipt"), "ChannelMessageSid", sid("SM", "x"),
			"Status", "delivered", "ErrorCode", "0", "ParticipantSid", participantSid), func(w ConversationsWebhook) bool {
			return w.Status == "delivered" && w.ResourceSid() == sid("DY", "receipt")
		}},
		{"empty optional fields", "com.twilio.conversations.message.added",
			with(messageAdded, "ParticipantSid", "", "Reason", "", "State", ""), func(w ConversationsWebhook) bool { return true }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if err := v.ValidateConversationsForm(c.form); err != nil {
				t.Fatalf("schema: %v", err)
			}
			if err := v.ValidatePayload(FamilyConversations, ContentTypeForm+"; charset=utf-8", []byte(c.form.Encode())); err != nil {
				t.Fatalf("ValidatePayload: %v", err)
			}
			w, err := ParseConversations(c.form)
			if err != nil {
				t.Fatalf("ParseConversations: %v", err)
			}
			if w.AccountSid != accountSid || w.ConversationSid != conversationSid || !c.check(w) {
				t.Fatalf("parsed %+v", w)
			}
			if got, _ := ConversationsType(w.EventType); got != c.ceType {
				t.Fatalf("ce_type %q, want %q", got, c.ceType)
			}
		})
	}
}

func TestConversationsRejected(t *testing.T) {
	v := validator(t)
	cases := []struct {
		name           string
		form           url.Values
		field, keyword string
		parserRejects  bool
	}{
		{"missing AccountSid", with(messageAdded, "AccountSid", del), "/AccountSid", "required", true},
		{"missing EventType", with(messageAdded, "EventType", del), "/EventType", "required", true},
		{"empty EventType", with(messageAdded, "EventType", ""), "/EventType", "pattern", true},
		{"Event Streams name as EventType", with(messageAdded, "EventType", "message.added"), "/EventType", "pattern", true},
		{"bad ConversationSid", with(messageAdded, "ConversationSid", customerPhone), "/ConversationSid", "pattern", false},
		{"bad MessageSid", with(messageAdded, "MessageSid", sid("SM", "x")), "/MessageSid", "pattern", false},
		{"bad ParticipantSid", with(participantAdded, "ParticipantSid", "MB00"), "/ParticipantSid", "pattern", false},
		{"bad ChatServiceSid", with(convAdded, "ChatServiceSid", sid("MG", "x")), "/ChatServiceSid", "pattern", false},
		{"bad StateTo", with(stateUpdated, "StateTo", "archived"), "/StateTo", "enum", false},
		{"bad StateFrom", with(stateUpdated, "StateFrom", "Active"), "/StateFrom", "enum", false},
		{"bad Reason", with(stateUpdated, "Reason", "MANUAL"), "/Reason", "enum", false},
		{"Media not JSON", with(messageAdded, "Media", messageBody), "/Media", "contentMediaType", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := v.ValidateConversationsForm(c.form)
			wantInvalid(t, err, FamilyConversations, c.field, c.keyword, customerPhone, messageBody, "onMessageExploded", "archived")
			err2 := v.ValidatePayload(FamilyConversations, "", []byte(c.form.Encode()))
			if err2 == nil || err2.Error() != err.Error() {
				t.Fatalf("ValidatePayload = %v, want %v", err2, err)
			}
			_, perr := ParseConversations(c.form)
			switch {
			case !c.parserRejects && perr != nil:
				t.Fatalf("ParseConversations = %v; the parser does not check this", perr)
			case c.parserRejects && perr == nil:
				t.Fatal("ParseConversations accepted it")
			case c.keyword == "required":
				var mf *MissingFieldError
				if !errors.As(perr, &mf) || "/"+mf.Field != c.field {
					t.Fatalf("ParseConversations = %v, want missing %s", perr, c.field)
				}
			case c.parserRejects && c.form.Get("EventType") != "":
				var ue *UnknownEventTypeError
				if !errors.As(perr, &ue) {
					t.Fatalf("ParseConversations = %v, want UnknownEventTypeError", perr)
				}
			}
		})
	}
}

func TestEventStreamsAccepted(t *testing.T) {
	v := validator(t)
	body := []byte(eventStreamsBody)
	if err := v.ValidateEventStreams(body); err != nil {
		t.Fatalf("schema: %v", err)
	}
	events, err := ParseEventStreams(body)
	if err != nil {
		t.Fatalf("ParseEventStreams: %v", err)
	}
	if len(events) != 2 {
		t.Fatalf("%d events", len(events))
	}
	// Each element's data is a record value of family eventstreams.
	for _, e := range events {
		if err := v.ValidatePayload(FamilyEventStreams, ContentTypeJSON, e.Data); err != nil {
			t.Fatalf("ValidatePayload(%s): %v", e.Type, err)
		}
	}
	tr, cv := events[0], events[1]
	if tr.Type != TaskRouterType("task.canceled") || tr.ID != sid("EV", "es-canceled") || tr.Time == "" {
		t.Fatalf("taskrouter event %+v", tr)
	}
	var trData EventStreamsTaskRouterData
	if err := json.Unmarshal(tr.Data, &trData); err != nil {
		t.Fatalf("TaskRouter data: %v", err)
	}
	p := trData.Payload
	if trData.Name != "task.canceled" || p.TaskSid != taskSid || p.TaskCanceledReason != "Task TTL Exceeded" ||
		p.WorkflowSid != workflowSid || p.ReservationSid != "" || p.ResourceSid != taskSid {
		t.Fatalf("TaskRouter data %+v", trData)
	}
	cb := TaskRouterCallback{TaskAttributes: p.TaskAttributes}
	if attrs, err := cb.Attributes(); err != nil || attrs.ConversationSid != conversationSid || attrs.ChannelType != "whatsapp" {
		t.Fatalf("task_attributes %+v, %v", attrs, err)
	}
	if want, _ := ConversationsType("onMessageAdded"); cv.Type != want {
		t.Fatalf("conversations type %q, want %q", cv.Type, want)
	}
	var cvData EventStreamsConversationsData
	if err := json.Unmarshal(cv.Data, &cvData); err != nil {
		t.Fatalf("Conversations data: %v", err)
	}
	if cvData.ConversationSid != conversationSid || cvData.MessageSid != messageSid || cvData.ParticipantSid != participantSid {
		t.Fatalf("Conversations data %+v", cvData)
	}
}

// esBody rewrites the fixture delivery as JSON values.
func esBody(t *testing.T, edit func([]map[string]any) any) []byte {
	t.Helper()
	var events []map[string]any
	if err := json.Unmarshal([]byte(eventStreamsBody), &events); err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(edit(events))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestEventStreamsRejected(t *testing.T) {
	v := validator(t)
	payload := func(es []map[string]any) map[string]any {
		return es[0]["data"].(map[string]any)["payload"].(map[string]any)
	}
	cases := []struct {
		name           string
		body           []byte
		field, keyword string
		parserRejects  bool
	}{
		{"not an array", esBody(t, func(es []map[string]any) any { return es[0] }), "", "type", true},
		{"empty array", []byte(`[]`), "", "minItems", true},
		{"not JSON", []byte(`[{"specversion":"1.0",`), "", "decode", true},
		{"specversion 0.3", esBody(t, func(es []map[string]any) any { es[1]["specversion"] = "0.3"; return es }), "/1/specversion", "const", true},
		{"missing data", esBody(t, func(es []map[string]any) any { delete(es[0], "data"); return es }), "/0/data", "required", true},
		{"null data", esBody(t, func(es []map[string]any) any { es[0]["data"] = nil; return es }), "/0/data", "type", true},
		{"missing id", esBody(t, func(es []map[string]any) any { delete(es[1], "id"); return es }), "/1/id", "required", true},
		{"empty id", esBody(t, func(es []map[string]any) any { es[1]["id"] = ""; return es }), "/1/id", "minLength", true},
		{"missing type", esBody(t, func(es []map[string]any) any { delete(es[0], "type"); return es }), "/0/type", "required", true},
		{"missing source", esBody(t, func(es []map[string]any) any { delete(es[0], "source"); return es }), "/0/source", "required", true},
		{"other product", esBody(t, func(es []map[string]any) any { es[0]["type"] = "com.twilio.voice.call.created"; return es }), "/0/type", "pattern", false},
		{"bad time", esBody(t, func(es []map[string]any) any { es[1]["time"] = "yesterday"; return es }), "/1/time", "format", false},
		{"data not an object", esBody(t, func(es []map[string]any) any { es[1]["data"] = []any{messageBody}; return es }), "/1/data", "type", false},
		{"task_sid a number", esBody(t, func(es []map[string]any) any { payload(es)["task_sid"] = 7; return es }), "/0/data/payload/task_sid", "type", false},
		{"bad task_sid", esBody(t, func(es []map[string]any) any { payload(es)["task_sid"] = sid("WR", "x"); return es }), "/0/data/payload/task_sid", "pattern", false},
		{"bad task_attributes conversationSid", esBody(t, func(es []map[string]any) any {
			payload(es)["task_attributes"] = `{"conversationSid":"` + customerPhone + `"}`
			return es
		}), "/0/data/payload/task_attributes → /conversationSid", "pattern", false},
		{"bad ConversationSid", esBody(t, func(es []map[string]any) any {
			es[1]["data"].(map[string]any)["ConversationSid"] = customerPhone
			return es
		}), "/1/data/ConversationSid", "pattern", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := v.ValidateEventStreams(c.body)
			wantInvalid(t, err, FamilyEventStreams, c.field, c.keyword, customerPhone, messageBody, "yesterday", "0.3")
			_, perr := ParseEventStreams(c.body)
			if c.parserRejects != (perr != nil) {
				t.Fatalf("ParseEventStreams = %v, want rejected %v", perr, c.parserRejects)
			}
		})
	}
	// The parser's specific errors for what both check.
	if _, err := ParseEventStreams(esBody(t, func(es []map[string]any) any { return es[0] })); !errors.Is(err, ErrNotArray) {
		t.Fatalf("not an array: %v", err)
	}
	var mf *MissingFieldError
	if _, err := ParseEventStreams(esBody(t, func(es []map[string]any) any { delete(es[0], "data"); return es })); !errors.As(err, &mf) || mf.Field != "data" {
		t.Fatalf("missing data: %v", err)
	}
}

func TestValidatePayloadFamilies(t *testing.T) {
	v := validator(t)
	form := []byte(taskCreated.Encode())
	cases := []struct {
		name, family, contentType string
		value                     []byte
		errFamily, field, keyword string
	}{
		{"unknown family", "voice-callback", ContentTypeForm, form, "envelope", "/flexstream_family", "enum"},
		{"empty family", "", ContentTypeForm, form, "envelope", "/flexstream_family", "enum"},
		{"form family with JSON content type", FamilyTaskRouter, ContentTypeJSON, form, FamilyTaskRouter, "/content-type", "const"},
		{"eventstreams with form content type", FamilyEventStreams, ContentTypeForm, []byte(`{}`), FamilyEventStreams, "/content-type", "const"},
		{"malformed content type", FamilyConversations, "application/", form, FamilyConversations, "/content-type", "const"},
		{"bad form escape", FamilyTaskRouter, ContentTypeForm, []byte("EventType=task.created&Body=%zz" + customerPhone), FamilyTaskRouter, "", "decode"},
		{"TaskRouter form under conversations", FamilyConversations, ContentTypeForm, form, FamilyConversations, "/EventType", "pattern"},
		{"eventstreams value not JSON", FamilyEventStreams, ContentTypeJSON, []byte(messageBody), FamilyEventStreams, "", "decode"},
		{"eventstreams value is the array", FamilyEventStreams, ContentTypeJSON, []byte(eventStreamsBody), FamilyEventStreams, "", "type"},
		{"eventstreams value with trailing data", FamilyEventStreams, ContentTypeJSON, []byte(`{} {}`), FamilyEventStreams, "", "decode"},
		{"eventstreams value bad key SID", FamilyEventStreams, ContentTypeJSON, []byte(`{"ConversationSid":"` + customerPhone + `"}`),
			FamilyEventStreams, "/ConversationSid", "pattern"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			wantInvalid(t, v.ValidatePayload(c.family, c.contentType, c.value), c.errFamily, c.field, c.keyword, customerPhone, "Hi, my")
		})
	}
	if err := v.ValidatePayload(FamilyEventStreams, "", []byte(`{"name":"task.created","payload":{}}`)); err != nil {
		t.Fatalf("eventstreams data: %v", err)
	}
}

// envelope is the headers ingest writes for a TaskRouter callback.
func envelope(kv ...string) map[string]string {
	h := map[string]string{
		HeaderSpecVersion: SpecVersion,
		HeaderID:          sid("EV", "task.canceled"),
		HeaderSource:      "https://taskrouter.twilio.com/v1/Workspaces/" + workspaceSid,
		HeaderType:        TaskRouterType("task.canceled"),
		HeaderTime:        "2026-01-05T10:00:00Z",
		HeaderSubject:     taskSid,
		HeaderContentType: ContentTypeForm,
		HeaderFamily:      FamilyTaskRouter,
		HeaderTraceparent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
		HeaderReceivedAt:  "2026-01-05T10:00:00.123456789Z",
	}
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] == del {
			delete(h, kv[i])
		} else {
			h[kv[i]] = kv[i+1]
		}
	}
	return h
}

func TestEnvelope(t *testing.T) {
	v := validator(t)
	good := []struct {
		name    string
		headers map[string]string
	}{
		{"taskrouter", envelope()},
		{"conversations", envelope(HeaderType, "com.twilio.conversations.message.added", HeaderFamily, FamilyConversations,
			HeaderSource, "https://conversations.twilio.com/v1/Services/"+chatServiceSid, HeaderID, strings.Repeat("ab", 32))}, // SHA-256 fallback id
		{"conversations pre-event", envelope(HeaderType, TypePrefixConversationsPre+"message.add", HeaderFamily, FamilyConversations)},
		{"eventstreams", envelope(HeaderFamily, FamilyEventStreams, HeaderContentType, ContentTypeJSON, HeaderSource, "AB00000000000000000000000001",
			HeaderDataSchema, "https://events-schemas.twilio.com/TaskRouter.WDSEvent/4")},
		{"eventstreams conversations", envelope(HeaderFamily, FamilyEventStreams, HeaderContentType, ContentTypeJSON,
			HeaderType, "com.twilio.conversations.conversation-state.updated")},
		{"optional headers absent", envelope(HeaderTime, del, HeaderSubject, del, HeaderTraceparent, del)},
		{"other producers' headers", envelope("x-producer", "crm-sync", "kafka_offset_hint", "12")},
	}
	for _, c := range good {
		t.Run(c.name, func(t *testing.T) {
			if err := v.ValidateEnvelope(c.headers); err != nil {
				t.Fatal(err)
			}
		})
	}
	bad := []struct {
		name           string
		headers        map[string]string
		field, keyword string
	}{
		{"specversion 0.3", envelope(HeaderSpecVersion, "0.3"), "/ce_specversion", "const"},
		{"empty id", envelope(HeaderID, ""), "/ce_id", "minLength"},
		{"other vendor type", envelope(HeaderType, "com.example.task.canceled"), "/ce_type", "pattern"},
		{"twilio voice type", envelope(HeaderType, "com.twilio.voice.call.created"), "/ce_type", "pattern"},
		{"text content type", envelope(HeaderContentType, "text/plain"), "/content-type", "enum"},
		{"unknown family", envelope(HeaderFamily, "voice"), "/flexstream_family", "enum"},
		{"received_at not RFC 3339", envelope(HeaderReceivedAt, "Mon, 05 Jan 2026 10:00:00 GMT"), "/flexstream_received_at", "format"},
		{"ce_time not RFC 3339", envelope(HeaderTime, "1767607200"), "/ce_time", "format"},
		{"bad traceparent", envelope(HeaderTraceparent, "00-xyz-01"), "/traceparent", "pattern"},
		{"bad dataschema", envelope(HeaderDataSchema, "not a uri"), "/ce_dataschema", "format"},
		{"family and type disagree", envelope(HeaderType, "com.twilio.conversations.message.added"), "/ce_type", "pattern"},
		{"conversations family with taskrouter type", envelope(HeaderFamily, FamilyConversations), "/ce_type", "pattern"},
		{"eventstreams family with form content", envelope(HeaderFamily, FamilyEventStreams), "/content-type", "const"},
		{"taskrouter family with JSON content", envelope(HeaderContentType, ContentTypeJSON), "/content-type", "const"},
	}
	for _, h := range []string{HeaderSpecVersion, HeaderID, HeaderSource, HeaderType, HeaderContentType, HeaderFamily, HeaderReceivedAt} {
		bad = append(bad, struct {
			name           string
			headers        map[string]string
			field, keyword string
		}{"missing " + h, envelope(h, del), "/" + h, "required"})
	}
	for _, c := range bad {
		t.Run(c.name, func(t *testing.T) {
			wantInvalid(t, v.ValidateEnvelope(c.headers), "envelope", c.field, c.keyword, "Mon, 05 Jan", "com.example", "00-xyz-01")
		})
	}
}

// Every ce_type the contract produces passes the envelope schema.
func TestEnvelopeAcceptsEveryConversationsType(t *testing.T) {
	v := validator(t)
	for _, et := range ConversationsEventTypes() {
		ceType, _ := ConversationsType(et)
		h := envelope(HeaderType, ceType, HeaderFamily, FamilyConversations)
		if err := v.ValidateEnvelope(h); err != nil {
			t.Errorf("%s → %s: %v", et, ceType, err)
		}
		if err := v.ValidateConversationsForm(conversationsForm(et)); err != nil {
			t.Errorf("%s: %v", et, err)
		}
	}
}

func TestValidatorConcurrent(t *testing.T) {
	v, err := NewValidator()
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for i := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 20 {
				var err error
				switch i % 4 {
				case 0:
					err = v.ValidateTaskRouterForm(taskCanceled)
				case 1:
					err = v.ValidateConversationsForm(messageAdded)
				case 2:
					err = v.ValidateEventStreams([]byte(eventStreamsBody))
				case 3:
					err = v.ValidateEnvelope(envelope())
					if v.ValidateConversationsForm(with(messageAdded, "EventType", "nope")) == nil {
						err = errors.New("accepted an unknown EventType")
					}
				}
				if err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestSchemaErrorMessage(t *testing.T) {
	err := validator(t).ValidateTaskRouterForm(with(taskCreated, "TaskSid", "WT123", "WorkerSid", "WK1", "AccountSid", del))
	want := FamilyTaskRouter + ": invalid: /AccountSid: required field is missing (and 2 more)"
	if err == nil || err.Error() != want {
		t.Fatalf("got %v, want %q", err, want)
	}
}

func TestSchemaErrorAllMissing(t *testing.T) {
	err := validator(t).ValidateEnvelope(map[string]string{})
	want := "envelope: invalid: required fields are missing: ce_id, ce_source, ce_specversion, ce_type, content-type, flexstream_family, flexstream_received_at"
	if err == nil || err.Error() != want {
		t.Fatalf("got %v, want %q", err, want)
	}
	wantInvalid(t, err, "envelope", "", "required")
}
