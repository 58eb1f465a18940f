package schemas

import (
	"encoding/json"
	"fmt"
	"net/url"
)

// TaskRouterCallback is a TaskRouter event callback: the form fields
// TaskRouter POSTs to a workspace's EventCallbackUrl (DESIGN §8). Fields a
// given EventType does not carry are empty.
type TaskRouterCallback struct {
	Sid              string // EV…; not sent by every account
	EventType        string // task.created, reservation.accepted, workflow.timeout, …
	EventDescription string
	AccountSid       string
	WorkspaceSid     string
	ResourceType     string // Task, Reservation, Worker, Activity, Workflow, Workspace
	ResourceSid      string
	Timestamp        string // when the event was sent: epoch seconds or milliseconds

	TaskSid               string
	TaskAttributes        string // JSON, see TaskAttributes
	TaskAge               string
	TaskPriority          string
	TaskAssignmentStatus  string // pending, reserved, assigned, wrapping, completed, canceled
	TaskCanceledReason    string
	TaskChannelUniqueName string
	TaskQueueSid          string
	TaskQueueName         string
	WorkflowSid           string
	WorkflowName          string
	ReservationSid        string
	WorkerSid             string
	WorkerName            string
	WorkerAttributes      string
}

// TaskRouterRequired are the fields every callback carries; a form without
// one of them is not a TaskRouter callback.
var TaskRouterRequired = []string{"EventType", "AccountSid", "WorkspaceSid", "ResourceType", "ResourceSid"}

// MissingFieldError: a required field is absent or empty.
type MissingFieldError struct {
	Family, Field string
}

func (e *MissingFieldError) Error() string {
	return fmt.Sprintf("%s: required field %s is missing or empty", e.Family, e.Field)
}

// ParseTaskRouter reads a callback's form fields. It checks only what the
// contract requires; TaskAttributes is decoded on demand by Attributes.
func ParseTaskRouter(form url.Values) (TaskRouterCallback, error) {
	for _, f := range TaskRouterRequired {
		if form.Get(f) == "" {
			return TaskRouterCallback{}, &MissingFieldError{Family: FamilyTaskRouter, Field: f}
		}
	}
	g := form.Get
	return TaskRouterCallback{
		Sid: g("Sid"), EventType: g("EventType"), EventDescription: g("EventDescription"),
		AccountSid: g("AccountSid"), WorkspaceSid: g("WorkspaceSid"),
		ResourceType: g("ResourceType"), ResourceSid: g("ResourceSid"), Timestamp: g("Timestamp"),
		TaskSid: g("TaskSid"), TaskAttributes: g("TaskAttributes"), TaskAge: g("TaskAge"),
		TaskPriority: g("TaskPriority"), TaskAssignmentStatus: g("TaskAssignmentStatus"),
		TaskCanceledReason: g("TaskCanceledReason"), TaskChannelUniqueName: g("TaskChannelUniqueName"),
		TaskQueueSid: g("TaskQueueSid"), TaskQueueName: g("TaskQueueName"),
		WorkflowSid: g("WorkflowSid"), WorkflowName: g("WorkflowName"),
		ReservationSid: g("ReservationSid"), WorkerSid: g("WorkerSid"), WorkerName: g("WorkerName"),
		WorkerAttributes: g("WorkerAttributes"),
	}, nil
}

// TaskAttributes are the attributes Flex puts on a Conversations task.
// Unknown attributes are kept in Other.
type TaskAttributes struct {
	ConversationSid           string `json:"conversationSid,omitempty"`
	FlexInteractionSid        string `json:"flexInteractionSid,omitempty"`
	FlexInteractionChannelSid string `json:"flexInteractionChannelSid,omitempty"`
	ChannelType               string `json:"channelType,omitempty"`
	From                      string `json:"from,omitempty"`
	Direction                 string `json:"direction,omitempty"`
	CustomerName              string `json:"customerName,omitempty"`
}

// Attributes decodes TaskAttributes; an empty string is no attributes.
func (c TaskRouterCallback) Attributes() (TaskAttributes, error) {
	var a TaskAttributes
	if c.TaskAttributes == "" {
		return a, nil
	}
	if err := json.Unmarshal([]byte(c.TaskAttributes), &a); err != nil {
		return TaskAttributes{}, fmt.Errorf("%s: TaskAttributes is not a JSON object: %w", FamilyTaskRouter, err)
	}
	return a, nil
}
