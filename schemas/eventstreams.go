package schemas

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
)

// CloudEvent is one element of an Event Streams webhook delivery: a
// CloudEvents 1.0 event in structured JSON mode. Data keeps the bytes
// Twilio sent.
type CloudEvent struct {
	SpecVersion     string          `json:"specversion"`
	Type            string          `json:"type"`
	Source          string          `json:"source"`
	ID              string          `json:"id"`
	Time            string          `json:"time,omitempty"`
	Subject         string          `json:"subject,omitempty"`
	DataSchema      string          `json:"dataschema,omitempty"`
	DataContentType string          `json:"datacontenttype,omitempty"`
	Data            json.RawMessage `json:"data"`
}

// ErrNotArray: an Event Streams delivery is a JSON array.
var ErrNotArray = errors.New(FamilyEventStreams + ": body is not a JSON array of CloudEvents")

// ParseEventStreams decodes a delivery and checks each element carries
// what the contract needs: specversion 1.0, id, type, source and data.
func ParseEventStreams(body []byte) ([]CloudEvent, error) {
	if t := bytes.TrimLeft(body, " \t\r\n"); len(t) == 0 || t[0] != '[' {
		return nil, ErrNotArray
	}
	var events []CloudEvent
	if err := json.Unmarshal(body, &events); err != nil {
		return nil, fmt.Errorf("%s: %w", FamilyEventStreams, err)
	}
	if len(events) == 0 {
		return nil, fmt.Errorf("%s: empty array", FamilyEventStreams)
	}
	for i, e := range events {
		missing := ""
		switch {
		case e.SpecVersion != SpecVersion:
			return nil, fmt.Errorf("%s: element %d: specversion %s, want %s", FamilyEventStreams, i, quote(e.SpecVersion), SpecVersion)
		case e.ID == "":
			missing = "id"
		case e.Type == "":
			missing = "type"
		case e.Source == "":
			missing = "source"
		case len(e.Data) == 0 || string(e.Data) == "null":
			missing = "data"
		}
		if missing != "" {
			return nil, fmt.Errorf("element %d: %w", i, &MissingFieldError{Family: FamilyEventStreams, Field: missing})
		}
	}
	return events, nil
}

// EventStreamsTaskRouterData is the part of a TaskRouter Event Streams
// event's data the contract reads (snake_case, as Event Streams sends it).
type EventStreamsTaskRouterData struct {
	Sid       string `json:"sid"`
	Name      string `json:"name"`
	Timestamp string `json:"timestamp"`
	Payload   struct {
		TaskSid            string `json:"task_sid"`
		TaskAttributes     string `json:"task_attributes"`
		TaskCanceledReason string `json:"task_canceled_reason"`
		ReservationSid     string `json:"reservation_sid"`
		WorkerSid          string `json:"worker_sid"`
		WorkflowSid        string `json:"workflow_sid"`
		TaskQueueSid       string `json:"task_queue_sid"`
		ResourceSid        string `json:"resource_sid"`
	} `json:"payload"`
}

// EventStreamsConversationsData is the part of a Conversations Event
// Streams event's data the contract reads.
type EventStreamsConversationsData struct {
	ConversationSid string `json:"ConversationSid"`
	MessageSid      string `json:"MessageSid"`
	ParticipantSid  string `json:"ParticipantSid"`
	DateCreated     string `json:"DateCreated"`
	DateUpdated     string `json:"DateUpdated"`
}
