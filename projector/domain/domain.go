// Package domain is what the event store holds: the typed events the
// projector makes of Twilio's, their metadata, and the streams they go to
// (DESIGN §5). Pseudonyms only: no phone number, e-mail address or message
// text ever reaches an Event. It has no I/O.
package domain

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	segjson "github.com/segmentio/encoding/json"
)

// Event types, as stored (the KurrentDB event type).
const (
	ConversationAdded        = "ConversationAdded"
	ConversationUpdated      = "ConversationUpdated"
	ConversationStateChanged = "ConversationStateChanged"
	ConversationRemoved      = "ConversationRemoved"
	ParticipantAdded         = "ParticipantAdded"
	ParticipantUpdated       = "ParticipantUpdated"
	ParticipantRemoved       = "ParticipantRemoved"
	MessageAdded             = "MessageAdded"
	MessageUpdated           = "MessageUpdated"
	MessageRemoved           = "MessageRemoved"
	DeliveryUpdated          = "DeliveryUpdated"

	TaskCreated          = "TaskCreated"
	TaskUpdated          = "TaskUpdated"
	TaskQueueEntered     = "TaskQueueEntered"
	TaskCanceled         = "TaskCanceled"
	TaskDeleted          = "TaskDeleted"
	TaskWrapup           = "TaskWrapup"
	TaskCompleted        = "TaskCompleted"
	TaskTransfer         = "TaskTransfer"
	WorkflowTimedOut     = "WorkflowTimedOut"
	ReservationCreated   = "ReservationCreated"
	ReservationAccepted  = "ReservationAccepted"
	ReservationRejected  = "ReservationRejected"
	ReservationTimedOut  = "ReservationTimedOut"
	ReservationCanceled  = "ReservationCanceled"
	ReservationRescinded = "ReservationRescinded"
	ReservationWrapup    = "ReservationWrapup"
	ReservationCompleted = "ReservationCompleted"

	// TwilioEvent is a well-formed Twilio event the projector has no
	// type for (a pre-event, a worker event, one Twilio added later): kept,
	// with its ce_type, never dead-lettered.
	TwilioEvent = "TwilioEvent"
)

// Participant roles.
const (
	RoleCustomer = "customer"
	RoleAgent    = "agent"
	RoleBot      = "bot"
)

// Event is one domain event's data (its JSON is the stored event's data).
// One flat shape for every type keeps folding simple; each type fills the
// fields that concern it. Every field that could hold PII holds a
// pseudonym (internal/pii) instead.
type Event struct {
	Type   string    `json:"-"`
	CEType string    `json:"ceType"`
	At     time.Time `json:"at"` // when it happened, by Twilio's clock (ce_time)

	AccountSid      string `json:"accountSid,omitempty"`
	ConversationSid string `json:"conversationSid,omitempty"`
	ChatServiceSid  string `json:"chatServiceSid,omitempty"`
	TaskSid         string `json:"taskSid,omitempty"`
	ReservationSid  string `json:"reservationSid,omitempty"`
	WorkerSid       string `json:"workerSid,omitempty"`
	WorkflowSid     string `json:"workflowSid,omitempty"`
	QueueSid        string `json:"queueSid,omitempty"`
	InteractionSid  string `json:"interactionSid,omitempty"`
	ChannelSid      string `json:"channelSid,omitempty"` // Flex interaction channel (UO…)
	ParticipantSid  string `json:"participantSid,omitempty"`
	MessageSid      string `json:"messageSid,omitempty"`

	// Conversation.
	State     string `json:"state,omitempty"` // active, inactive, closed
	StateFrom string `json:"stateFrom,omitempty"`
	Reason    string `json:"reason,omitempty"` // API, TIMER, EVENT
	// Timers as Twilio reports them (ISO 8601); empty: none set (R5).
	TimerInactive string `json:"timerInactive,omitempty"`
	TimerClosed   string `json:"timerClosed,omitempty"`
	HasTimers     bool   `json:"hasTimers,omitempty"` // the webhook carried timer fields at all

	// Participant.
	Role        string `json:"role,omitempty"`
	Identity    string `json:"identity,omitempty"`    // pseudonym when it is a phone or e-mail (R6)
	IdentityPII bool   `json:"identityPII,omitempty"` // the chat identity was a phone number or e-mail address (R6)
	Address     string `json:"address,omitempty"`     // the customer's address, pseudonymised ("whatsapp:phone:…")
	ChannelType string `json:"channelType,omitempty"` // sms, whatsapp, chat, messenger, …

	// Message (metadata only: no body).
	Author     string `json:"author,omitempty"` // pseudonym
	Index      int    `json:"index,omitempty"`
	BodyLength int    `json:"bodyLength,omitempty"`
	MediaCount int    `json:"mediaCount,omitempty"`

	// Delivery.
	DeliveryStatus string `json:"deliveryStatus,omitempty"`
	ErrorCode      string `json:"errorCode,omitempty"`

	// Task.
	AssignmentStatus string `json:"assignmentStatus,omitempty"`
	CanceledReason   string `json:"canceledReason,omitempty"`
	TaskChannel      string `json:"taskChannel,omitempty"`
	QueueName        string `json:"queueName,omitempty"`
	WorkflowName     string `json:"workflowName,omitempty"`
	Customer         string `json:"customer,omitempty"` // TaskAttributes.from, pseudonymised
	// TaskAttributes are the task's attributes with every PII value
	// replaced by its pseudonym: what a re-invite re-sends is looked up
	// from Twilio, not from here.
	TaskAttributes json.RawMessage `json:"taskAttributes,omitempty"`
}

// Metadata is stored with every event.
type Metadata struct {
	CorrelationID string    `json:"$correlationId"` // the conversation SID, else the stream's SID
	CausationID   string    `json:"$causationId"`   // ce_id
	CESource      string    `json:"ceSource,omitempty"`
	Topic         string    `json:"kafkaTopic"`
	Partition     int       `json:"kafkaPartition"`
	Offset        int64     `json:"kafkaOffset"`
	Traceparent   string    `json:"traceparent,omitempty"`
	ReceivedAt    time.Time `json:"receivedAt"`
	// Raw is the record of the events topic the event was made from,
	// pseudonymised like the event: what a re-drive publishes again
	// (flexstream replay --to-topic). Events stored before it was kept
	// have none.
	Raw *Raw `json:"raw,omitempty"`
}

// Raw is a record of the events topic in the contract of schemas, with
// every phone number, e-mail address and message text in its value
// replaced by its pseudonym: the value's fields are Twilio's, in key
// order, and JSON members inside it are re-encoded.
type Raw struct {
	Key     string            `json:"key,omitempty"`
	Headers map[string]string `json:"headers"` // the contract's headers only
	Value   string            `json:"value"`
}

// Stream categories.
const (
	CategoryConversation = "conversation"
	CategoryTask         = "task"
	CategoryOther        = "twilio" // events about neither (worker, workspace)
	CategoryReaction     = "reaction"
)

// StreamFor is the stream an event goes to: its conversation's, else its
// task's, else the stream of the resource it is about.
func StreamFor(e Event, fallbackSid string) string {
	switch {
	case e.ConversationSid != "":
		return CategoryConversation + "-" + e.ConversationSid
	case e.TaskSid != "":
		return CategoryTask + "-" + e.TaskSid
	}
	return CategoryOther + "-" + fallbackSid
}

// Category is the text before the first "-" of a stream name.
func Category(stream string) string {
	c, _, _ := strings.Cut(stream, "-")
	return c
}

// namespace of event ids: UUIDv5(namespace, ce_id + "\x00" + stream).
var namespace = uuid.MustParse("5b0c2a63-8a0e-4c55-9a57-0f3a3c1e2d4b")

// EventID is the event's id in the store: the same Twilio event (ce_id)
// in the same stream always gets the same id, so a redelivery is an
// idempotent re-append.
func EventID(ceID, stream string) uuid.UUID {
	return uuid.NewSHA1(namespace, []byte(ceID+"\x00"+stream))
}

// Encode is what the store holds of an event: its data and its metadata,
// as JSON without encoding/json's HTML escaping. The metadata carries
// Twilio's form-encoded record, full of '&', which json.Marshal writes as
// six bytes (\u0026) each: with it the metadata was about a tenth larger,
// in the store, on the wire and in every reader's memory. Any JSON reader
// decodes both spellings alike, so events stored before read the same.
func Encode(e Event, m Metadata) (data, meta []byte, err error) {
	if data, err = encodeJSON(e); err != nil {
		return nil, nil, fmt.Errorf("encode %s: %w", e.Type, err)
	}
	if meta, err = encodeJSON(m); err != nil {
		return nil, nil, fmt.Errorf("encode the metadata of %s: %w", e.Type, err)
	}
	return data, meta, nil
}

func encodeJSON(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// Decode reads a stored event's data.
func Decode(eventType string, data []byte) (Event, error) {
	var e Event
	if err := decode(&e, eventType, data, 0); err != nil {
		return Event{}, err
	}
	return e, nil
}

// DecodeInto is Decode into *e (reset first), for the read models' fold:
// a replay decodes straight into its batches, and e's strings and task
// attributes share data's memory instead of copying it (a tenth of a
// replay's garbage). data must never change afterwards: a payload the
// client library unmarshalled for this event alone.
func DecodeInto(e *Event, eventType string, data []byte) error {
	return decode(e, eventType, data, segjson.ZeroCopy)
}

func decode(e *Event, eventType string, data []byte, flags segjson.ParseFlags) error {
	*e = Event{}
	rest, err := segjson.Parse(data, e, flags)
	if err == nil && len(rest) > 0 {
		err = fmt.Errorf("invalid character %q after the event", rest[0])
	}
	if err != nil {
		*e = Event{}
		return err
	}
	e.Type = eventType
	return nil
}
