package schemas

import (
	"crypto/md5"
	"encoding/hex"
	"net/url"
	"strings"
)

// sid is a well-formed Twilio SID, stable per name.
func sid(prefix, name string) string {
	h := md5.Sum([]byte(prefix + name))
	return prefix + hex.EncodeToString(h[:])
}

var (
	accountSid      = sid("AC", "account")
	workspaceSid    = sid("WS", "workspace")
	taskSid         = sid("WT", "task")
	reservationSid  = sid("WR", "reservation")
	workerSid       = sid("WK", "worker")
	workflowSid     = sid("WW", "workflow")
	taskQueueSid    = sid("WQ", "queue")
	taskChannelSid  = sid("TC", "chat")
	chatServiceSid  = sid("IS", "service")
	conversationSid = sid("CH", "conversation")
	messageSid      = sid("IM", "message")
	participantSid  = sid("MB", "participant")
	messagingSvcSid = sid("MG", "messaging")
	roleSid         = sid("RL", "role")
	interactionSid  = sid("KD", "interaction")
	channelSid      = sid("UO", "channel")
	mediaSid        = sid("ME", "media")
)

const (
	customerPhone = "whatsapp:+15551234567"
	twilioPhone   = "whatsapp:+15557654321"
	messageBody   = "Hi, my order 4411 has not arrived"
)

// taskAttributes is what Flex puts on a Conversations task.
var taskAttributes = `{"conversationSid":"` + conversationSid + `","flexInteractionSid":"` + interactionSid +
	`","flexInteractionChannelSid":"` + channelSid + `","channelType":"whatsapp","from":"` + customerPhone +
	`","direction":"inbound","customerName":"Ada Lovelace","conversations":{"conversation_id":"` + interactionSid + `"}}`

// taskRouterForm is a TaskRouter callback; kv adds or overrides fields
// (the value del deletes one).
func taskRouterForm(eventType, resourceType, resourceSid string, kv ...string) url.Values {
	f := url.Values{
		"Sid":                   {sid("EV", eventType)},
		"EventType":             {eventType},
		"EventDescription":      {"Task " + taskSid + " " + eventType},
		"AccountSid":            {accountSid},
		"WorkspaceSid":          {workspaceSid},
		"WorkspaceName":         {"Flex Task Assignment"},
		"ResourceType":          {resourceType},
		"ResourceSid":           {resourceSid},
		"Timestamp":             {"1767607200"},
		"TimestampMs":           {"1767607200123"},
		"TaskSid":               {taskSid},
		"TaskAttributes":        {taskAttributes},
		"TaskAge":               {"12"},
		"TaskPriority":          {"0"},
		"TaskAssignmentStatus":  {"pending"},
		"TaskChannelSid":        {taskChannelSid},
		"TaskChannelUniqueName": {"chat"},
		"WorkflowSid":           {workflowSid},
		"WorkflowName":          {"Assign to Anyone"},
		"TaskVersion":           {"3"},
	}
	return with(f, kv...)
}

// del as a value in with's kv deletes the field.
const del = "\x00delete"

func with(f url.Values, kv ...string) url.Values {
	out := url.Values{}
	for k, v := range f {
		out[k] = append([]string(nil), v...)
	}
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] == del {
			out.Del(kv[i])
			continue
		}
		out.Set(kv[i], kv[i+1])
	}
	return out
}

var (
	workerFields = []string{
		"ReservationSid", reservationSid, "WorkerSid", workerSid, "WorkerName", "ada@example.com",
		"WorkerAttributes", `{"email":"ada@example.com","routing":{"skills":["en"],"levels":{"en":3}}}`,
		"TaskQueueSid", taskQueueSid, "TaskQueueName", "Everyone",
	}
	taskCreated = taskRouterForm("task.created", "Task", taskSid)
	resAccepted = taskRouterForm("reservation.accepted", "Reservation", reservationSid,
		append([]string{"TaskAssignmentStatus", "assigned"}, workerFields...)...)
	resRejected = taskRouterForm("reservation.rejected", "Reservation", reservationSid,
		append([]string{"TaskAssignmentStatus", "pending"}, workerFields...)...)
	workflowTimeout = taskRouterForm("workflow.timeout", "Workflow", workflowSid,
		"TaskAssignmentStatus", "canceled", "TaskQueueSid", taskQueueSid, "TaskQueueName", "Everyone")
	taskCanceled = taskRouterForm("task.canceled", "Task", taskSid,
		"TaskAssignmentStatus", "canceled", "TaskCanceledReason", "Task TTL Exceeded")
	taskDeleted   = taskRouterForm("task.deleted", "Task", taskSid, "TaskAssignmentStatus", "canceled")
	taskCompleted = taskRouterForm("task.completed", "Task", taskSid,
		"TaskAssignmentStatus", "completed", "TaskCompletedReason", "Wrap-up completed", "TaskAge", "642")
)

// conversationsForm is a Conversations webhook.
func conversationsForm(eventType string, kv ...string) url.Values {
	f := url.Values{
		"EventType":       {eventType},
		"AccountSid":      {accountSid},
		"ChatServiceSid":  {chatServiceSid},
		"ConversationSid": {conversationSid},
		"RetryCount":      {"0"},
		"WebhookSid":      {sid("WH", "webhook")},
		"WebhookType":     {"webhook"},
	}
	return with(f, kv...)
}

var (
	convAdded = conversationsForm("onConversationAdded",
		"Source", "WHATSAPP", "DateCreated", "2026-01-05T10:00:00.000Z", "FriendlyName", customerPhone,
		"State", "active", "Attributes", "{}", "MessagingServiceSid", messagingSvcSid,
		"MessagingBinding.Address", customerPhone, "MessagingBinding.ProxyAddress", twilioPhone)
	participantAdded = conversationsForm("onParticipantAdded",
		"Source", "API", "ParticipantSid", participantSid, "DateCreated", "2026-01-05T10:00:00.120Z",
		"RoleSid", roleSid, "Attributes", "{}", "MessagingBinding.Type", "whatsapp",
		"MessagingBinding.Address", customerPhone, "MessagingBinding.ProxyAddress", twilioPhone)
	messageAdded = conversationsForm("onMessageAdded",
		"Source", "WHATSAPP", "MessageSid", messageSid, "Index", "0", "Author", customerPhone,
		"Body", messageBody, "ParticipantSid", participantSid, "Attributes", "{}",
		"DateCreated", "2026-01-05T10:00:00.300Z",
		"Media", `[{"Sid":"`+mediaSid+`","Filename":"receipt.jpg","ContentType":"image/jpeg","Size":48211,"Category":"media"}]`)
	stateUpdated = conversationsForm("onConversationStateUpdated",
		"StateFrom", "inactive", "StateTo", "closed", "Reason", "TIMER", "State", "closed",
		"DateUpdated", "2026-01-05T11:00:00.000Z", "Source", "API")
	messageAdd = conversationsForm("onMessageAdd",
		"Source", "SDK", "ClientIdentity", "agent.ada", "Author", "agent.ada", "Body", "Hello, I am Ada and I will help you",
		"ParticipantSid", sid("MB", "agent"), "Attributes", `{"agentName":"Ada"}`)
)

// eventStreamsBody is a delivery with a TaskRouter task.canceled and a
// Conversations message.added.
var eventStreamsBody = `[
  {
    "specversion": "1.0",
    "type": "com.twilio.taskrouter.task.canceled",
    "source": "/v1/Workspaces/` + workspaceSid + `/Tasks/` + taskSid + `",
    "id": "` + sid("EV", "es-canceled") + `",
    "dataschema": "https://events-schemas.twilio.com/TaskRouter.WDSEvent/4",
    "datacontenttype": "application/json",
    "time": "2026-01-05T10:05:00.000Z",
    "data": {
      "sid": "` + sid("EV", "es-canceled") + `",
      "name": "task.canceled",
      "account_sid": "` + accountSid + `",
      "timestamp": "2026-01-05T10:05:00.000Z",
      "level": "INFO",
      "product_name": "TaskRouter",
      "payload_type": "application/json",
      "payload": {
        "eventtype": "task.canceled",
        "account_sid": "` + accountSid + `",
        "workspace_sid": "` + workspaceSid + `",
        "task_sid": "` + taskSid + `",
        "task_attributes": ` + jsonString(taskAttributes) + `,
        "task_age": 300,
        "task_priority": 0,
        "task_assignment_status": "canceled",
        "task_canceled_reason": "Task TTL Exceeded",
        "task_queue_sid": "` + taskQueueSid + `",
        "workflow_sid": "` + workflowSid + `",
        "reservation_sid": null,
        "worker_sid": null,
        "resource_type": "task",
        "resource_sid": "` + taskSid + `"
      }
    }
  },
  {
    "specversion": "1.0",
    "type": "com.twilio.conversations.message.added",
    "source": "/v1/Services/` + chatServiceSid + `/Conversations/` + conversationSid + `/Messages/` + messageSid + `",
    "id": "` + sid("EV", "es-message") + `",
    "dataschema": "https://events-schemas.twilio.com/Conversations.MessageAdded/2",
    "datacontenttype": "application/json",
    "time": "2026-01-05T10:00:00.300Z",
    "data": {
      "AccountSid": "` + accountSid + `",
      "ChatServiceSid": "` + chatServiceSid + `",
      "ConversationSid": "` + conversationSid + `",
      "MessageSid": "` + messageSid + `",
      "ParticipantSid": "` + participantSid + `",
      "Author": "` + customerPhone + `",
      "Index": 0,
      "MessageBody": "` + messageBody + `",
      "Source": "WHATSAPP",
      "DateCreated": "2026-01-05T10:00:00.300Z",
      "Media": [{"MediaSid": "` + mediaSid + `", "Filename": "receipt.jpg", "ContentType": "image/jpeg", "Size": 48211}]
    }
  }
]`

func jsonString(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
}
