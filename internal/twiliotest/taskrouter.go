package twiliotest

import (
	"encoding/json"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// TaskRouterOpt adjusts a TaskRouter callback after it is built.
type TaskRouterOpt func(url.Values)

// TaskRouterEventTypes are the TaskRouter event types a Flex
// Conversations deployment sees and TaskRouterEvent is tuned for; it
// builds other task.*, reservation.*, worker.*, workflow.* types too.
func TaskRouterEventTypes() []string {
	return []string{
		"task.created", "reservation.created", "reservation.accepted", "reservation.rejected",
		"reservation.timeout", "reservation.canceled", "reservation.rescinded", "workflow.timeout",
		"task.canceled", "task.deleted", "task.completed", "task.wrapup", "task.updated",
		"worker.activity.update",
	}
}

// Default reasons TaskRouter reports.
const (
	DefaultCanceledReason  = "Task TTL Exceeded"
	DefaultCompletedReason = "Task completed by agent"
)

// TaskRouterEvent builds the form fields TaskRouter POSTs to a workspace's
// EventCallbackUrl for eventType (DESIGN §8). ResourceType/ResourceSid
// follow the event's group: reservation.* → Reservation/ReservationSid,
// worker.* → Worker/WorkerSid, activity.* → Activity, workspace.* →
// Workspace, anything else → Task/TaskSid. TaskAttributes are those Flex
// puts on a WhatsApp conversation task. Sid (EV…) is set only by
// WithEventSid. Timestamp is epoch seconds (and TimestampMs milliseconds)
// at EventTime(eventType) unless WithTimestamp says otherwise.
func TaskRouterEvent(ids IDs, eventType string, opts ...TaskRouterOpt) url.Values {
	ids = ids.withDefaults()
	v := url.Values{}
	v.Set("EventType", eventType)
	v.Set("AccountSid", ids.Account)
	v.Set("WorkspaceSid", ids.Workspace)
	v.Set("WorkspaceName", WorkspaceName)
	setTimestamp(v, EventTime(eventType))

	group, action, _ := strings.Cut(eventType, ".")
	age := max(0, int64(EventTime(eventType).Sub(BaseTime())/time.Second))
	switch group {
	case "reservation":
		v.Set("ResourceType", "Reservation")
		v.Set("ResourceSid", ids.Reservation)
		addTask(v, ids, eventType, age)
		v.Set("ReservationSid", ids.Reservation)
		v.Set("ReservationTimeout", "120")
		v.Set("ReservationVersion", strconv.Itoa(reservationVersion(action)))
		addWorker(v, ids)
		v.Set("EventDescription", "Reservation "+ids.Reservation+" "+pastTense(action)+" for Worker "+ids.Worker)
	case "worker":
		v.Set("ResourceType", "Worker")
		v.Set("ResourceSid", ids.Worker)
		addWorker(v, ids)
		if eventType == "worker.activity.update" {
			v.Set("WorkerPreviousActivitySid", ids.SID("WA", "Offline"))
			v.Set("WorkerPreviousActivityName", "Offline")
			v.Set("WorkerTimeInPreviousActivity", "3600")
			v.Set("WorkerTimeInPreviousActivityMs", "3600000")
			v.Set("EventDescription", "Worker "+ids.WorkerName+" updated to Available Activity")
		} else {
			v.Set("EventDescription", "Worker "+ids.WorkerName+" "+pastTense(action))
		}
	case "activity":
		sid := ids.SID("WA", "Available")
		v.Set("ResourceType", "Activity")
		v.Set("ResourceSid", sid)
		v.Set("ActivitySid", sid)
		v.Set("ActivityName", "Available")
		v.Set("ActivityAvailable", "true")
		v.Set("EventDescription", "Activity Available "+pastTense(action))
	case "workspace":
		v.Set("ResourceType", "Workspace")
		v.Set("ResourceSid", ids.Workspace)
		v.Set("EventDescription", "Workspace "+WorkspaceName+" "+pastTense(action))
	default: // task, workflow, task-queue, task-channel
		v.Set("ResourceType", "Task")
		v.Set("ResourceSid", ids.Task)
		addTask(v, ids, eventType, age)
		switch eventType {
		case "workflow.timeout":
			v.Set("EventDescription", "Task "+ids.Task+" timed out of Workflow "+ids.Workflow)
		default:
			v.Set("EventDescription", "Task "+ids.Task+" "+pastTense(action))
		}
	}
	for _, o := range opts {
		o(v)
	}
	return v
}

func setTimestamp(v url.Values, t time.Time) {
	v.Set("Timestamp", strconv.FormatInt(t.Unix(), 10))
	v.Set("TimestampMs", strconv.FormatInt(t.UnixMilli(), 10))
}

func addTask(v url.Values, ids IDs, eventType string, age int64) {
	v.Set("TaskSid", ids.Task)
	v.Set("TaskAttributes", taskAttributes(ids))
	v.Set("TaskAge", strconv.FormatInt(age, 10))
	v.Set("TaskPriority", "0")
	v.Set("TaskAssignmentStatus", assignmentStatus(eventType))
	v.Set("TaskVersion", strconv.Itoa(taskVersion(eventType)))
	v.Set("TaskDateCreated", BaseTime().Format(time.RFC3339))
	v.Set("TaskTimeout", "86400")
	v.Set("TaskChannelSid", ids.SID("TC", TaskChannel))
	v.Set("TaskChannelUniqueName", TaskChannel)
	v.Set("TaskQueueSid", ids.Queue)
	v.Set("TaskQueueName", QueueName)
	v.Set("TaskQueueEnteredDate", BaseTime().Format(time.RFC3339))
	v.Set("WorkflowSid", ids.Workflow)
	v.Set("WorkflowName", WorkflowName)
	switch eventType {
	case "task.canceled":
		v.Set("TaskCanceledReason", DefaultCanceledReason)
	case "task.completed":
		v.Set("TaskCompletedReason", DefaultCompletedReason)
	}
}

func addWorker(v url.Values, ids IDs) {
	attrs, _ := json.Marshal(map[string]any{
		"contact_uri": "client:" + ids.WorkerName,
		"email":       ids.WorkerName + "@example.com",
		"full_name":   ids.WorkerName,
		"image_url":   "",
		"roles":       []string{"agent"},
		"routing":     map[string]any{"skills": []string{}, "levels": map[string]any{}},
	})
	v.Set("WorkerSid", ids.Worker)
	v.Set("WorkerName", ids.WorkerName)
	v.Set("WorkerAttributes", string(attrs))
	v.Set("WorkerActivitySid", ids.SID("WA", "Available"))
	v.Set("WorkerActivityName", "Available")
	v.Set("WorkerVersion", "7")
}

// taskAttributes are the attributes Flex gives an inbound WhatsApp
// conversation task (keys sorted by encoding/json, so deterministic).
func taskAttributes(ids IDs) string {
	from := ids.CustomerAddress()
	b, _ := json.Marshal(map[string]any{
		"channelType":               "whatsapp",
		"conversationSid":           ids.Conversation,
		"customerAddress":           from,
		"customerName":              from,
		"direction":                 "inbound",
		"flexInteractionSid":        ids.Interaction,
		"flexInteractionChannelSid": ids.Channel,
		"flexInteractionWebhookSid": ids.SID("FW", "interaction-webhook"),
		"from":                      from,
		"initiatedBy":               "customer",
		"conversations":             map[string]any{"conversation_id": ids.Task, "media": []any{}},
	})
	return string(b)
}

func assignmentStatus(eventType string) string {
	switch eventType {
	case "reservation.created", "workflow.target-matched":
		return "reserved"
	case "reservation.accepted", "task.updated":
		return "assigned"
	case "task.wrapup", "reservation.wrapup":
		return "wrapping"
	case "task.completed", "reservation.completed":
		return "completed"
	case "task.canceled", "task.deleted", "workflow.timeout", "reservation.canceled":
		return "canceled"
	}
	return "pending"
}

func taskVersion(eventType string) int {
	switch assignmentStatus(eventType) {
	case "reserved":
		return 2
	case "assigned":
		return 3
	case "wrapping":
		return 4
	case "completed", "canceled":
		return 5
	}
	return 1
}

func reservationVersion(action string) int {
	if action == "created" {
		return 1
	}
	return 2
}

func pastTense(action string) string {
	switch action {
	case "timeout":
		return "timed out"
	case "wrapup":
		return "wrapped up"
	case "":
		return "updated"
	}
	if strings.HasSuffix(action, "e") {
		return action + "d"
	}
	if strings.HasSuffix(action, "ed") {
		return action
	}
	return action + "ed"
}

// Set returns an option (for TaskRouterEvent, ConversationsEvent and the
// Event Streams data builders) that sets one field.
func Set(key, value string) func(url.Values) {
	return func(v url.Values) { v.Set(key, value) }
}

// Del returns an option that removes fields.
func Del(keys ...string) func(url.Values) {
	return func(v url.Values) {
		for _, k := range keys {
			v.Del(k)
		}
	}
}

// WithEventSid sets Sid, the TaskRouter event's SID (EV…), which not every
// account sends. ids.SID("EV", name) makes one.
func WithEventSid(sid string) TaskRouterOpt { return Set("Sid", sid) }

// WithTimestamp sets Timestamp (epoch seconds) and TimestampMs.
func WithTimestamp(t time.Time) TaskRouterOpt { return func(v url.Values) { setTimestamp(v, t) } }

// WithTimestampMillis sets Timestamp in epoch milliseconds, as some
// TaskRouter senders do.
func WithTimestampMillis(t time.Time) TaskRouterOpt {
	return func(v url.Values) {
		setTimestamp(v, t)
		v.Set("Timestamp", v.Get("TimestampMs"))
	}
}

// WithCanceledReason sets TaskCanceledReason.
func WithCanceledReason(reason string) TaskRouterOpt { return Set("TaskCanceledReason", reason) }

// WithAssignmentStatus sets TaskAssignmentStatus.
func WithAssignmentStatus(status string) TaskRouterOpt { return Set("TaskAssignmentStatus", status) }

// WithoutConversation removes conversationSid from TaskAttributes (a
// task not created by Flex Conversations, e.g. a voice or API task).
func WithoutConversation() TaskRouterOpt {
	return WithTaskAttribute("conversationSid", nil)
}

// WithTaskAttribute sets one TaskAttributes key; a nil value removes it.
func WithTaskAttribute(key string, value any) TaskRouterOpt {
	return func(v url.Values) {
		if !v.Has("TaskAttributes") {
			return
		}
		m := map[string]any{}
		_ = json.Unmarshal([]byte(v.Get("TaskAttributes")), &m)
		if value == nil {
			delete(m, key)
		} else {
			m[key] = value
		}
		b, _ := json.Marshal(m)
		v.Set("TaskAttributes", string(b))
	}
}

// WithTaskAttributes replaces TaskAttributes with raw (any string, even
// invalid JSON, for tests of bad input).
func WithTaskAttributes(raw string) TaskRouterOpt { return Set("TaskAttributes", raw) }
