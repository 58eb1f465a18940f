package schemas

import (
	"net/url"
)

// ConversationsWebhook is a Conversations post-event or pre-event webhook:
// the form fields Twilio POSTs to a service's webhook URLs (DESIGN §8).
// Fields a given EventType does not carry are empty.
type ConversationsWebhook struct {
	EventType       string // onMessageAdded, onConversationStateUpdated, onMessageAdd, …
	AccountSid      string
	ChatServiceSid  string
	ConversationSid string
	Source          string // SDK, API, SMS, WHATSAPP, …
	ClientIdentity  string
	RetryCount      string
	DateCreated     string // ISO 8601
	DateUpdated     string

	// Conversation.
	FriendlyName        string
	UniqueName          string
	State               string // active, inactive, closed
	StateFrom, StateTo  string // onConversationStateUpdated
	Reason              string // API, TIMER, EVENT
	MessagingServiceSid string
	Attributes          string // JSON

	// Message.
	MessageSid string
	Index      string
	Author     string
	Body       string
	Media      string // JSON

	// Participant.
	ParticipantSid string
	Identity       string
	RoleSid        string
	// MessagingBinding.* fields: the participant's (or conversation's)
	// non-chat address, e.g. "whatsapp:+1…".
	BindingAddress          string
	BindingProxyAddress     string
	BindingProjectedAddress string
	BindingAuthorAddress    string
	BindingType             string

	// Delivery receipt.
	DeliveryReceiptSid string
	ChannelMessageSid  string
	Status             string
	ErrorCode          string
}

// ConversationsRequired are the fields every webhook carries.
var ConversationsRequired = []string{"EventType", "AccountSid"}

// ParseConversations reads a webhook's form fields and checks the
// EventType has the shape of Twilio's (see ConversationsType).
func ParseConversations(form url.Values) (ConversationsWebhook, error) {
	for _, f := range ConversationsRequired {
		if form.Get(f) == "" {
			return ConversationsWebhook{}, &MissingFieldError{Family: FamilyConversations, Field: f}
		}
	}
	if _, ok := ConversationsType(form.Get("EventType")); !ok {
		return ConversationsWebhook{}, &UnknownEventTypeError{Family: FamilyConversations, EventType: form.Get("EventType")}
	}
	g := form.Get
	return ConversationsWebhook{
		EventType: g("EventType"), AccountSid: g("AccountSid"), ChatServiceSid: g("ChatServiceSid"),
		ConversationSid: g("ConversationSid"), Source: g("Source"), ClientIdentity: g("ClientIdentity"),
		RetryCount: g("RetryCount"), DateCreated: g("DateCreated"), DateUpdated: g("DateUpdated"),
		FriendlyName: g("FriendlyName"), UniqueName: g("UniqueName"), State: g("State"),
		StateFrom: g("StateFrom"), StateTo: g("StateTo"), Reason: g("Reason"),
		MessagingServiceSid: g("MessagingServiceSid"), Attributes: g("Attributes"),
		MessageSid: g("MessageSid"), Index: g("Index"), Author: g("Author"), Body: g("Body"), Media: g("Media"),
		ParticipantSid: g("ParticipantSid"), Identity: g("Identity"), RoleSid: g("RoleSid"),
		BindingAddress: g("MessagingBinding.Address"), BindingProxyAddress: g("MessagingBinding.ProxyAddress"),
		BindingProjectedAddress: g("MessagingBinding.ProjectedAddress"), BindingAuthorAddress: g("MessagingBinding.AuthorAddress"),
		BindingType:        g("MessagingBinding.Type"),
		DeliveryReceiptSid: g("DeliveryReceiptSid"), ChannelMessageSid: g("ChannelMessageSid"),
		Status: g("Status"), ErrorCode: g("ErrorCode"),
	}, nil
}

// UnknownEventTypeError: the payload's event type does not have the
// shape of the family's event types.
type UnknownEventTypeError struct {
	Family, EventType string
}

func (e *UnknownEventTypeError) Error() string {
	return e.Family + ": " + quote(e.EventType) + " is not a Conversations EventType"
}

func quote(s string) string {
	if len(s) > 64 {
		s = s[:64] + "…"
	}
	return `"` + s + `"`
}

// ResourceSid is the SID of what the webhook is about: the message,
// participant or delivery receipt, else the conversation.
func (w ConversationsWebhook) ResourceSid() string {
	for _, s := range []string{w.DeliveryReceiptSid, w.MessageSid, w.ParticipantSid, w.ConversationSid} {
		if s != "" {
			return s
		}
	}
	return ""
}
