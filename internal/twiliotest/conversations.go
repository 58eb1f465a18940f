package twiliotest

import (
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/flexstream/flexstream/schemas"
)

// ConversationsOpt adjusts a Conversations webhook after it is built.
type ConversationsOpt func(url.Values)

// DefaultBody is the customer's first message.
const DefaultBody = "Hi, I need help with my order"

// dateLayout is how Conversations writes dates: ISO 8601, UTC,
// milliseconds.
const dateLayout = "2006-01-02T15:04:05.000Z"

// ConversationsEvent builds the form fields a Conversations service POSTs
// to its webhook URL for eventType, post-event (onMessageAdded, …) or
// pre-event (onMessageAdd, …), DESIGN §8. By default the story is a
// WhatsApp customer (ids.CustomerAddress) writing to the business
// (ids.ProxyAddress):
//
//   - onConversationAdd(ed): auto-created conversation with the
//     customer's MessagingBinding.*; State active.
//   - onParticipantAdd(ed): the customer, MessagingBinding.Address /
//     ProxyAddress / Type whatsapp; WithChatParticipant for a chat one.
//   - onMessageAdd(ed): the customer's message: Body, Author, Index 0,
//     MessageSid, ParticipantSid; WithAuthor / WithBody / WithIndex.
//   - onConversationStateUpdated: StateFrom active, StateTo inactive,
//     Reason TIMER; WithStateTo / WithStateFrom / WithReason.
//   - onDeliveryUpdated: receipt "delivered" of ids.Message to the
//     customer; WithDeliveryStatus.
//
// Pre-events carry no SID of the thing not yet created. Dates are at
// EventTime(eventType) unless WithDate says otherwise.
func ConversationsEvent(ids IDs, eventType string, opts ...ConversationsOpt) url.Values {
	ids = ids.withDefaults()
	at := EventTime(eventType)
	updated := at.Format(dateLayout)
	pre := schemas.IsPreEvent(eventType)

	v := url.Values{}
	v.Set("EventType", eventType)
	v.Set("AccountSid", ids.Account)
	v.Set("ChatServiceSid", ids.ChatService)
	v.Set("RetryCount", "0")

	kind := conversationsKind(eventType)
	if !(kind == "conversation" && pre && strings.HasSuffix(eventType, "Add")) && kind != "user" {
		v.Set("ConversationSid", ids.Conversation)
	}
	switch kind {
	case "conversation":
		v.Set("MessagingServiceSid", ids.SID("MG", "messaging-service"))
		v.Set("FriendlyName", ids.CustomerAddress())
		v.Set("Attributes", "{}")
		v.Set("State", "active")
		v.Set("Source", "API")
		switch {
		case strings.HasSuffix(eventType, "Add"), strings.HasSuffix(eventType, "Added"):
			// Auto-created by the customer's first WhatsApp message.
			v.Set("Source", "WHATSAPP")
			setBinding(v, ids)
		case eventType == "onConversationStateUpdated":
			v.Set("StateFrom", "active")
			v.Set("StateTo", "inactive")
			v.Set("State", "inactive")
			v.Set("Reason", "TIMER")
			v.Del("Source")
		case strings.HasPrefix(eventType, "onConversationRemove"):
			v.Set("State", "closed")
		}
		if !pre {
			v.Set("DateCreated", BaseTime().Add(offsets["onConversationAdded"]).Format(dateLayout))
			if !strings.HasSuffix(eventType, "Added") {
				v.Set("DateUpdated", updated)
			}
		}
	case "participant":
		v.Set("Attributes", "{}")
		v.Set("Source", "API")
		setBinding(v, ids)
		if eventType != "onParticipantAdd" {
			v.Set("ParticipantSid", ids.Participant)
		}
		if !pre {
			v.Set("RoleSid", ids.SID("RL", "channel user"))
			v.Set("DateCreated", BaseTime().Add(offsets["onParticipantAdded"]).Format(dateLayout))
			if !strings.HasSuffix(eventType, "Added") {
				v.Set("DateUpdated", updated)
			}
		}
	case "message":
		v.Set("Author", ids.CustomerAddress())
		v.Set("Body", DefaultBody)
		v.Set("Attributes", "{}")
		v.Set("ParticipantSid", ids.Participant)
		v.Set("Source", "WHATSAPP")
		if eventType != "onMessageAdd" {
			v.Set("MessageSid", ids.Message)
			v.Set("Index", "0")
		}
		if !pre {
			v.Set("DateCreated", BaseTime().Add(offsets["onMessageAdded"]).Format(dateLayout))
			if !strings.HasSuffix(eventType, "Added") {
				v.Set("DateUpdated", updated)
			}
		}
	case "delivery":
		v.Set("MessageSid", ids.Message)
		v.Set("ParticipantSid", ids.Participant)
		v.Set("DeliveryReceiptSid", ids.SID("DY", ids.Message+ids.Participant))
		v.Set("ChannelMessageSid", ids.SID("WA", ids.Message+ids.Participant))
		v.Set("Status", "delivered")
		v.Set("ErrorCode", "0")
		v.Set("DateCreated", BaseTime().Add(offsets["onDeliveryUpdated"]-10*time.Second).Format(dateLayout))
		v.Set("DateUpdated", updated)
	case "user":
		v.Set("UserSid", ids.SID("US", ids.WorkerName))
		v.Set("Identity", ids.WorkerName)
		v.Set("FriendlyName", ids.WorkerName)
		v.Set("Attributes", "{}")
		v.Set("RoleSid", ids.SID("RL", "service user"))
		v.Set("Source", "API")
		if !pre {
			v.Set("DateCreated", BaseTime().Add(offsets["onUserAdded"]).Format(dateLayout))
			if !strings.HasSuffix(eventType, "Added") {
				v.Set("DateUpdated", updated)
			}
		}
	}
	for _, o := range opts {
		o(v)
	}
	return v
}

func conversationsKind(eventType string) string {
	switch {
	case eventType == "onDeliveryUpdated":
		return "delivery"
	case strings.HasPrefix(eventType, "onConversation"):
		return "conversation"
	case strings.HasPrefix(eventType, "onParticipant"):
		return "participant"
	case strings.HasPrefix(eventType, "onMessage"):
		return "message"
	case strings.HasPrefix(eventType, "onUser"):
		return "user"
	}
	return ""
}

func setBinding(v url.Values, ids IDs) {
	v.Set("MessagingBinding.Address", ids.CustomerAddress())
	v.Set("MessagingBinding.ProxyAddress", ids.ProxyAddress())
	v.Set("MessagingBinding.Type", "whatsapp")
}

func delBinding(v url.Values) {
	for k := range v {
		if strings.HasPrefix(k, "MessagingBinding.") {
			v.Del(k)
		}
	}
}

// WithStateTo sets StateTo (and State): inactive or closed.
func WithStateTo(state string) ConversationsOpt {
	return func(v url.Values) {
		v.Set("StateTo", state)
		v.Set("State", state)
	}
}

// WithStateFrom sets StateFrom.
func WithStateFrom(state string) ConversationsOpt { return Set("StateFrom", state) }

// WithReason sets Reason of a state change: API, TIMER or EVENT.
func WithReason(reason string) ConversationsOpt { return Set("Reason", reason) }

// WithChatParticipant makes the participant a chat (SDK) participant
// with the given identity, e.g. the agent: Identity set, no
// MessagingBinding.*, ParticipantSid ids.ChatParticipantSid(identity). On
// a message event it is WithAuthor(ids, identity).
func WithChatParticipant(ids IDs, identity string) ConversationsOpt {
	return func(v url.Values) {
		if v.Has("Author") {
			WithAuthor(ids, identity)(v)
			return
		}
		delBinding(v)
		v.Set("Identity", identity)
		if v.Has("ParticipantSid") {
			v.Set("ParticipantSid", ids.ChatParticipantSid(identity))
		}
	}
}

// WithAuthor sets Author; an author that is not a "whatsapp:" / "sms"
// address is a chat identity, so Source becomes SDK, ClientIdentity the
// author, and ParticipantSid ids.ChatParticipantSid(author).
func WithAuthor(ids IDs, author string) ConversationsOpt {
	return func(v url.Values) {
		v.Set("Author", author)
		if strings.HasPrefix(author, "whatsapp:") || strings.HasPrefix(author, "+") {
			return
		}
		v.Set("Source", "SDK")
		v.Set("ClientIdentity", author)
		v.Set("ParticipantSid", ids.ChatParticipantSid(author))
	}
}

// WithBody sets Body.
func WithBody(body string) ConversationsOpt { return Set("Body", body) }

// WithIndex sets Index (a message's position in the conversation).
func WithIndex(i int) ConversationsOpt { return Set("Index", strconv.Itoa(i)) }

// WithMessageSid sets MessageSid (several messages in one conversation).
func WithMessageSid(sid string) ConversationsOpt { return Set("MessageSid", sid) }

// WithDeliveryStatus sets Status (sent, delivered, read, failed,
// undelivered) and ErrorCode of a delivery receipt.
func WithDeliveryStatus(status, errorCode string) ConversationsOpt {
	return func(v url.Values) {
		v.Set("Status", status)
		v.Set("ErrorCode", errorCode)
	}
}

// WithSource sets Source (SDK, API, SMS, WHATSAPP, …).
func WithSource(source string) ConversationsOpt { return Set("Source", source) }

// WithDate sets DateCreated and, where the event has it, DateUpdated.
func WithDate(t time.Time) ConversationsOpt {
	return func(v url.Values) {
		s := t.UTC().Format(dateLayout)
		v.Set("DateCreated", s)
		if v.Has("DateUpdated") {
			v.Set("DateUpdated", s)
		}
	}
}

// WithRetryCount sets RetryCount (Twilio counts its retries).
func WithRetryCount(n int) ConversationsOpt { return Set("RetryCount", strconv.Itoa(n)) }

// webhookEventType maps a Conversations webhook EventType, an Event
// Streams type (full or without com.twilio.conversations.) to the webhook
// EventType.
func webhookEventType(t string) (string, bool) {
	if _, ok := schemas.ConversationsType(t); ok {
		return t, true
	}
	short := strings.TrimPrefix(t, schemas.TypePrefixConversations)
	for _, w := range schemas.ConversationsEventTypes() {
		if full, _ := schemas.ConversationsType(w); full == schemas.TypePrefixConversations+short {
			return w, true
		}
	}
	return "", false
}
