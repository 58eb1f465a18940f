package twiliotest

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/flexstream/flexstream/schemas"
)

// EventStreamsEvent is one event of an Event Streams delivery. Type is a
// full Event Streams type (com.twilio.taskrouter.task.created), or a short
// one: a TaskRouter event type (task.created), a Conversations Event
// Streams name (message.added) or webhook EventType (onMessageAdded). An
// empty ID is derived from the event; nil Data is TaskRouterESData /
// ConversationsESData for the type. Data of type []byte is embedded as
// raw JSON.
type EventStreamsEvent struct {
	Type, ID string
	Data     any
}

// cloudEvent is a CloudEvents 1.0 structured-mode event as Event Streams
// sends it; field order is the JSON order.
type cloudEvent struct {
	SpecVersion     string          `json:"specversion"`
	Type            string          `json:"type"`
	Source          string          `json:"source"`
	ID              string          `json:"id"`
	Time            string          `json:"time"`
	DataSchema      string          `json:"dataschema"`
	DataContentType string          `json:"datacontenttype"`
	Data            json.RawMessage `json:"data"`
}

// taskRouterGroups are the first segments of TaskRouter event types.
var taskRouterGroups = map[string]bool{
	"task": true, "reservation": true, "worker": true, "workflow": true, "task-queue": true,
	"activity": true, "workspace": true, "task-channel": true,
}

// EventStreamsType is the full Event Streams type of a short or full one
// (see EventStreamsEvent.Type).
func EventStreamsType(t string) string {
	if strings.HasPrefix(t, "com.twilio.") {
		return t
	}
	if full, ok := schemas.ConversationsType(t); ok {
		return full
	}
	if group, _, _ := strings.Cut(t, "."); taskRouterGroups[group] {
		return schemas.TaskRouterType(t)
	}
	return schemas.TypePrefixConversations + t
}

// EventStreamsDelivery builds the body Event Streams POSTs to a webhook
// sink: a JSON array of CloudEvents 1.0 in structured mode (specversion,
// type, source, id, time, dataschema, datacontenttype application/json,
// data). Send it with JSONRequest. It panics if a Data does not marshal
// to JSON (a programming error).
func EventStreamsDelivery(ids IDs, events ...EventStreamsEvent) []byte {
	out := make([]cloudEvent, 0, len(events))
	for i, e := range events {
		typ := EventStreamsType(e.Type)
		tr := strings.HasPrefix(typ, schemas.TypePrefixTaskRouter)
		short := strings.TrimPrefix(strings.TrimPrefix(typ, schemas.TypePrefixTaskRouter), schemas.TypePrefixConversations)
		data := e.Data
		if data == nil {
			if tr {
				data = TaskRouterESData(ids, short)
			} else {
				data = ConversationsESData(ids, short)
			}
		}
		var raw json.RawMessage
		switch d := data.(type) {
		case []byte:
			raw = d
		case json.RawMessage:
			raw = d
		default:
			b, err := json.Marshal(d)
			if err != nil {
				panic(fmt.Sprintf("twiliotest: event %d data: %v", i, err))
			}
			raw = b
		}
		ce := cloudEvent{
			SpecVersion:     schemas.SpecVersion,
			Type:            typ,
			ID:              e.ID,
			Time:            eventTimeOf(typ, data).Format("2006-01-02T15:04:05.000Z"),
			DataContentType: ContentTypeJSON,
			Data:            raw,
		}
		if tr {
			ce.Source = "/v1/Workspaces/" + ids.Workspace
			ce.DataSchema = "https://events-schemas.twilio.com/TaskRouter.WDSEvent/4"
		} else {
			ce.Source = "/v1/Services/" + ids.ChatService + "/Conversations/" + ids.Conversation
			version := "1"
			if short == "delivery.updated" {
				version = "2"
			}
			ce.DataSchema = "https://events-schemas.twilio.com/Conversations." + pascal(short) + "/" + version
		}
		if ce.ID == "" {
			ce.ID = deliveryID(ids, i, typ, raw)
		}
		out = append(out, ce)
	}
	b, err := json.Marshal(out)
	if err != nil {
		panic(fmt.Sprintf("twiliotest: %v", err))
	}
	return b
}

// eventTimeOf reads the event's time from generated data, else EventTime.
func eventTimeOf(typ string, data any) time.Time {
	if m, ok := data.(map[string]any); ok {
		for _, k := range []string{"timestamp", "DateUpdated", "DateCreated"} {
			if s, ok := m[k].(string); ok {
				if t, err := time.Parse(time.RFC3339, s); err == nil {
					return t.UTC()
				}
			}
		}
	}
	return EventTime(typ)
}

// deliveryID is a deterministic UUID (version 4 layout) for an event.
func deliveryID(ids IDs, i int, typ string, data []byte) string {
	h := sha256.New()
	fmt.Fprintf(h, "%s\x00%d\x00%s\x00", ids.Account, i, typ)
	h.Write(data)
	s := h.Sum(nil)[:16]
	s[6] = s[6]&0x0f | 0x40
	s[8] = s[8]&0x3f | 0x80
	x := hex.EncodeToString(s)
	return x[0:8] + "-" + x[8:12] + "-" + x[12:16] + "-" + x[16:20] + "-" + x[20:32]
}

// pascal turns "task.created", "task-queue.entered" or
// "conversation-state.updated" into "TaskCreated", "TaskQueueEntered",
// "ConversationStateUpdated".
func pascal(s string) string {
	var b strings.Builder
	up := true
	for _, r := range s {
		if r == '.' || r == '-' || r == '_' {
			up = true
			continue
		}
		if up {
			r = unicode.ToUpper(r)
			up = false
		}
		b.WriteRune(r)
	}
	return b.String()
}

// snake turns "TaskQueueSid" into "task_queue_sid".
func snake(s string) string {
	var b strings.Builder
	for i, r := range s {
		if unicode.IsUpper(r) {
			if i > 0 {
				b.WriteByte('_')
			}
			r = unicode.ToLower(r)
		}
		b.WriteRune(r)
	}
	return b.String()
}

// esNumeric are the TaskRouter payload fields Event Streams sends as
// numbers.
var esNumeric = map[string]bool{
	"task_age": true, "task_priority": true, "task_version": true, "task_timeout": true,
	"reservation_timeout": true, "reservation_version": true, "worker_version": true,
	"worker_time_in_previous_activity": true, "worker_time_in_previous_activity_ms": true,
	"timestamp_ms": true,
}

// TaskRouterESData is the data member of a TaskRouter Event Streams event
// (eventType short, task.created, or full): snake_case as Event Streams
// sends it — sid (EV…), name (TaskCreated), timestamp (RFC 3339),
// account_sid, workspace_sid, and payload with the callback's fields
// (task_sid, task_attributes, task_canceled_reason, reservation_sid,
// worker_sid, workflow_sid, task_queue_sid, resource_sid, event_type, …).
// The options are TaskRouterEvent's, applied to the fields first.
func TaskRouterESData(ids IDs, eventType string, opts ...TaskRouterOpt) map[string]any {
	eventType = strings.TrimPrefix(eventType, schemas.TypePrefixTaskRouter)
	form := TaskRouterEvent(ids, eventType, opts...)
	sid := form.Get("Sid")
	if sid == "" {
		sid = ids.SID(PrefixEvent, eventType+"\x00"+form.Get("ResourceSid"))
	}
	ts := taskRouterTime(form).Format("2006-01-02T15:04:05.000Z")
	payload := map[string]any{"sid": sid, "eventtype": eventType, "timestamp": ts}
	for k := range form {
		switch k {
		case "Sid", "Timestamp":
			continue
		}
		key := snake(k)
		val := form.Get(k)
		if esNumeric[key] {
			if n, err := strconv.ParseInt(val, 10, 64); err == nil {
				payload[key] = n
				continue
			}
		}
		payload[key] = val
	}
	group, _, _ := strings.Cut(eventType, ".")
	return map[string]any{
		"sid":                   sid,
		"name":                  pascal(eventType),
		"timestamp":             ts,
		"account_sid":           ids.Account,
		"workspace_sid":         ids.Workspace,
		"level":                 "INFO",
		"group":                 group,
		"product_name":          "TaskRouter",
		"publisher":             WorkspaceName,
		"publisher_metadata":    "{}",
		"payload_type":          ContentTypeJSON,
		"payload":               payload,
		"account_friendly_name": "Flexstream Test",
	}
}

// taskRouterTime reads Timestamp (seconds or milliseconds).
func taskRouterTime(form url.Values) time.Time {
	n, err := strconv.ParseInt(form.Get("Timestamp"), 10, 64)
	if err != nil {
		return EventTime(form.Get("EventType"))
	}
	if n > 1e11 {
		return time.UnixMilli(n).UTC()
	}
	return time.Unix(n, 0).UTC()
}

// ConversationsESData is the data member of a Conversations Event Streams
// event (eventType: message.added, com.twilio.conversations.message.added
// or onMessageAdded): the webhook's fields in PascalCase as Event Streams
// sends them (AccountSid, ChatServiceSid, ConversationSid, MessageSid,
// ParticipantSid, Author, Index, MessageBody, DateCreated, …), Body
// renamed MessageBody, Index and ErrorCode numbers, MessagingBinding an
// object. The options are ConversationsEvent's, applied first.
func ConversationsESData(ids IDs, eventType string, opts ...ConversationsOpt) map[string]any {
	w, ok := webhookEventType(eventType)
	if !ok {
		w = eventType
	}
	form := ConversationsEvent(ids, w, opts...)
	out := map[string]any{}
	binding := map[string]any{}
	for k := range form {
		val := form.Get(k)
		switch {
		case k == "EventType" || k == "RetryCount":
		case k == "Body":
			out["MessageBody"] = val
		case k == "Index" || k == "ErrorCode":
			if n, err := strconv.ParseInt(val, 10, 64); err == nil {
				out[k] = n
			} else {
				out[k] = val
			}
		case strings.HasPrefix(k, "MessagingBinding."):
			binding[strings.TrimPrefix(k, "MessagingBinding.")] = val
		default:
			out[k] = val
		}
	}
	if len(binding) > 0 {
		out["MessagingBinding"] = binding
	}
	return out
}
