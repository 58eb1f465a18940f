// Package schemas is the contract of the events topic (DESIGN §4): the
// CloudEvents attributes every record carries as Kafka headers, the
// ce_type vocabulary, the Go types of every payload family and the JSON
// Schemas (draft 2020-12) other teams validate against. It has no I/O.
package schemas

import (
	"regexp"
	"strings"
	"unicode"
)

// DefaultTopic is the events topic; its dead-letter topic adds DLQSuffix.
const (
	DefaultTopic = "twilio.events.v1"
	DLQSuffix    = ".dlq"
)

// CloudEvents 1.0 Kafka protocol binding, binary mode: the attributes are
// headers, the value is the payload exactly as Twilio sent it.
const (
	HeaderSpecVersion = "ce_specversion"
	HeaderID          = "ce_id"
	HeaderSource      = "ce_source"
	HeaderType        = "ce_type"
	HeaderTime        = "ce_time"
	HeaderSubject     = "ce_subject"
	HeaderDataSchema  = "ce_dataschema"
	HeaderContentType = "content-type"
	// Extensions.
	HeaderTraceparent = "traceparent"
	HeaderReceivedAt  = "flexstream_received_at"
	// HeaderFamily names the payload family (Family*), so a consumer picks
	// the decoder without parsing the value.
	HeaderFamily = "flexstream_family"
)

// Headers lists every header of the contract, in the order ingest writes
// them.
var Headers = []string{
	HeaderSpecVersion, HeaderID, HeaderSource, HeaderType, HeaderTime, HeaderSubject, HeaderDataSchema,
	HeaderContentType, HeaderTraceparent, HeaderReceivedAt, HeaderFamily,
}

// SpecVersion is the CloudEvents version of every record.
const SpecVersion = "1.0"

// Content types of record values.
const (
	ContentTypeForm = "application/x-www-form-urlencoded"
	ContentTypeJSON = "application/json"
)

// Payload families: what the value is.
const (
	// FamilyTaskRouter: a TaskRouter event callback, form-encoded.
	FamilyTaskRouter = "taskrouter-callback"
	// FamilyConversations: a Conversations webhook (post- or pre-event),
	// form-encoded.
	FamilyConversations = "conversations-webhook"
	// FamilyEventStreams: the data member of one Event Streams CloudEvent,
	// JSON.
	FamilyEventStreams = "eventstreams"
)

// ce_type prefixes: Twilio Event Streams' vocabulary, used for both input
// paths.
const (
	TypePrefixTaskRouter    = "com.twilio.taskrouter."
	TypePrefixConversations = "com.twilio.conversations."
	// TypePrefixConversationsPre marks Conversations pre-event webhooks,
	// which Event Streams does not carry: com.twilio.conversations.pre.<event>.
	TypePrefixConversationsPre = TypePrefixConversations + "pre."
)

// TaskRouterType is the ce_type of a TaskRouter event callback: Event
// Streams uses the callback's EventType under the taskrouter prefix
// ("task.canceled" → "com.twilio.taskrouter.task.canceled").
func TaskRouterType(eventType string) string { return TypePrefixTaskRouter + eventType }

// conversationsTypes maps Conversations webhook EventTypes to Event
// Streams types. Twilio names the state change "conversation-state.updated";
// onDeliveryUpdated has no Event Streams type and gets the analogous name.
var conversationsTypes = map[string]string{
	"onConversationAdded":        "conversation.added",
	"onConversationUpdated":      "conversation.updated",
	"onConversationRemoved":      "conversation.removed",
	"onConversationStateUpdated": "conversation-state.updated",
	"onMessageAdded":             "message.added",
	"onMessageUpdated":           "message.updated",
	"onMessageRemoved":           "message.removed",
	"onParticipantAdded":         "participant.added",
	"onParticipantUpdated":       "participant.updated",
	"onParticipantRemoved":       "participant.removed",
	"onUserAdded":                "user.added",
	"onUserUpdated":              "user.updated",
	"onDeliveryUpdated":          "delivery.updated",
	// Pre-event webhooks.
	"onConversationAdd":    "pre.conversation.add",
	"onConversationUpdate": "pre.conversation.update",
	"onConversationRemove": "pre.conversation.remove",
	"onMessageAdd":         "pre.message.add",
	"onMessageUpdate":      "pre.message.update",
	"onMessageRemove":      "pre.message.remove",
	"onParticipantAdd":     "pre.participant.add",
	"onParticipantUpdate":  "pre.participant.update",
	"onParticipantRemove":  "pre.participant.remove",
	"onUserUpdate":         "pre.user.update",
}

// conversationsEventType is the shape of every Conversations EventType.
var conversationsEventType = regexp.MustCompile(`^on[A-Z][A-Za-z]+$`)

// ConversationsType is the ce_type of a Conversations webhook EventType.
// An EventType Twilio added after this contract, if it has the shape of
// the others, is named the way Event Streams names the known ones
// (onFooBarAdded → foo-bar.added, onFooAdd → pre.foo.add): it is kept,
// not refused. false means it is no Conversations EventType at all.
func ConversationsType(eventType string) (string, bool) {
	if t, ok := conversationsTypes[eventType]; ok {
		return TypePrefixConversations + t, true
	}
	if !conversationsEventType.MatchString(eventType) {
		return "", false
	}
	return TypePrefixConversations + genericConversationsType(eventType), true
}

// KnownConversationsEventType reports whether the contract lists the
// EventType (the others are kept under a derived ce_type).
func KnownConversationsEventType(eventType string) bool {
	_, ok := conversationsTypes[eventType]
	return ok
}

func genericConversationsType(eventType string) string {
	words := splitCamel(strings.TrimPrefix(eventType, "on"))
	if len(words) < 2 {
		return strings.ToLower(strings.Join(words, "-"))
	}
	verb := strings.ToLower(words[len(words)-1])
	noun := strings.ToLower(strings.Join(words[:len(words)-1], "-"))
	if strings.HasSuffix(verb, "ed") {
		return noun + "." + verb
	}
	return "pre." + noun + "." + verb
}

func splitCamel(s string) []string {
	var words []string
	start := 0
	for i, r := range s {
		if i > 0 && unicode.IsUpper(r) {
			words = append(words, s[start:i])
			start = i
		}
	}
	if start < len(s) {
		words = append(words, s[start:])
	}
	return words
}

// ConversationsEventTypes lists the webhook EventTypes ConversationsType
// knows, for schemas and tests.
func ConversationsEventTypes() []string {
	out := make([]string, 0, len(conversationsTypes))
	for k := range conversationsTypes {
		out = append(out, k)
	}
	return out
}

// IsPreEvent reports whether a Conversations EventType is a pre-event
// webhook (present tense: onMessageAdd): Twilio waits for the answer
// before the action happens.
func IsPreEvent(eventType string) bool {
	t, ok := ConversationsType(eventType)
	return ok && strings.HasPrefix(t, TypePrefixConversationsPre)
}
