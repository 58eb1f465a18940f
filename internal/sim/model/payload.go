package model

import (
	"encoding/json"
	"maps"
	"net/url"
	"strconv"
	"strings"
	"time"

	tt "github.com/flexstream/flexstream/internal/twiliotest"
)

// dateLayout is how Conversations writes dates (as twiliotest does).
const dateLayout = "2006-01-02T15:04:05.000Z"

// emit records a webhook for the next Advance.
func (m *Model) emit(c *conv, at time.Time, family string, form url.Values) {
	w := Webhook{Family: family, Form: form, Idem: m.token(), At: at}
	if c != nil {
		w.Conversation = c.ids.Conversation
		if at.After(c.lastAct) {
			c.lastAct = at
		}
	}
	m.out = append(m.out, w)
	m.webhooks++
}

// token is an idempotency token: unique per event.
func (m *Model) token() string {
	return m.sid("")
}

// ---- TaskRouter ---------------------------------------------------------------

// taskEvent emits a TaskRouter callback about t (and r, for reservation
// events and task events naming the worker).
func (m *Model) taskEvent(t *task, r *reservation, at time.Time, eventType string, opts ...tt.TaskRouterOpt) {
	c := t.conv
	ids := c.ids
	ids.Task = t.sid
	if r != nil {
		ids.Reservation, ids.Worker, ids.WorkerName = r.sid, r.worker.sid, r.worker.name
	}
	secs := func(d time.Duration) string { return strconv.FormatInt(int64(d/time.Second), 10) }
	base := []tt.TaskRouterOpt{
		tt.WithTimestamp(at),
		tt.WithEventSid(m.sid(tt.PrefixEvent)),
		tt.WithTaskAttributes(t.attrs),
		tt.Set("TaskAge", secs(at.Sub(t.created))),
		tt.Set("TaskDateCreated", t.created.UTC().Format(time.RFC3339)),
		tt.Set("TaskQueueEnteredDate", t.created.UTC().Format(time.RFC3339)),
		tt.Set("TaskTimeout", secs(m.real(m.sc.TaskTTL))),
		tt.Set("TaskChannelUniqueName", c.taskChan),
		tt.Set("TaskChannelSid", ids.SID("TC", c.taskChan)),
	}
	if strings.HasPrefix(eventType, "reservation.") {
		base = append(base, tt.Set("ReservationTimeout", secs(m.real(m.sc.Agent.ReservationTimeout))))
	}
	form := tt.TaskRouterEvent(ids, eventType, append(base, opts...)...)
	m.emit(c, at, FamilyTaskRouter, form)
}

// ---- Conversations --------------------------------------------------------------

// convEvent emits a Conversations webhook about c. For participant and
// message events the customer is the subject unless opts say otherwise.
func (m *Model) convEvent(c *conv, at time.Time, eventType string, opts ...tt.ConversationsOpt) {
	all := append([]tt.ConversationsOpt{m.channelOpt(c), tt.WithDate(at)}, opts...)
	form := tt.ConversationsEvent(c.ids, eventType, all...)
	if strings.HasPrefix(eventType, "onConversation") && eventType != "onConversationAdded" {
		form.Set("DateCreated", c.created.UTC().Format(dateLayout))
	}
	m.emit(c, at, FamilyConversations, form)
}

// channelOpt turns twiliotest's WhatsApp customer into the conversation's
// channel: an SMS number, or a web chat guest (a chat identity marked
// member_type guest, so that it is not mistaken for an agent).
func (m *Model) channelOpt(c *conv) tt.ConversationsOpt {
	return func(f url.Values) {
		switch c.channelType {
		case "sms":
			if f.Has("MessagingBinding.Address") {
				f.Set("MessagingBinding.Address", c.address)
				f.Set("MessagingBinding.ProxyAddress", c.ids.TwilioPhone)
				f.Set("MessagingBinding.Type", "sms")
			}
			if f.Get("Source") == "WHATSAPP" {
				f.Set("Source", "SMS")
			}
			if f.Has("Author") {
				f.Set("Author", c.address)
			}
			if f.Has("FriendlyName") {
				f.Set("FriendlyName", c.address)
			}
		case "chat":
			for k := range f {
				if strings.HasPrefix(k, "MessagingBinding.") {
					f.Del(k)
				}
			}
			if f.Has("FriendlyName") {
				f.Set("FriendlyName", "Customer")
			}
			switch {
			case f.Has("Author"): // a message
				tt.WithAuthor(c.ids, c.address)(f)
				f.Set("ParticipantSid", c.ids.Participant)
			case strings.HasPrefix(f.Get("EventType"), "onParticipant"):
				f.Set("Identity", c.address)
				f.Set("Attributes", `{"member_type":"guest"}`)
				f.Set("Source", "SDK")
			case f.Get("Source") == "WHATSAPP": // the conversation, made by Flex Webchat
				f.Set("Source", "API")
			}
		}
	}
}

// agentJoined emits the agent's onParticipantAdded.
func (m *Model) agentJoined(c *conv, at time.Time) {
	w := c.agent
	m.convEvent(c, at, "onParticipantAdded",
		tt.WithChatParticipant(c.ids, w.name),
		tt.Set("ParticipantSid", c.agentPart),
		tt.Set("Attributes", `{"member_type":"agent"}`),
		tt.Set("Source", "SDK"))
}

// message emits an onMessageAdded by the customer ("" author), the
// agent, or someone else (a system message), and counts it.
func (m *Model) message(c *conv, at time.Time, author, participant, sid, body, attributes string) int {
	idx := c.msgs
	c.msgs++
	if sid == "" {
		sid = m.sid(tt.PrefixMessage)
	}
	opts := []tt.ConversationsOpt{tt.WithIndex(idx), tt.WithMessageSid(sid), tt.WithBody(body)}
	if author != "" {
		opts = append(opts, tt.WithAuthor(c.ids, author))
		if participant == "" {
			opts = append(opts, tt.Del("ParticipantSid", "ClientIdentity"), tt.WithSource("API"))
		} else {
			opts = append(opts, tt.Set("ParticipantSid", participant))
		}
	} else {
		c.lastCust = at
	}
	if attributes != "" {
		opts = append(opts, tt.Set("Attributes", attributes))
	}
	m.convEvent(c, at, "onMessageAdded", opts...)
	return idx
}

// stateUpdated emits onConversationStateUpdated from the current state.
func (m *Model) stateUpdated(c *conv, at time.Time, to, reason string) {
	from := c.state
	c.state = to
	m.convEvent(c, at, "onConversationStateUpdated", tt.WithStateFrom(from), tt.WithStateTo(to), tt.WithReason(reason))
}

// ---- task attributes --------------------------------------------------------------

// firstAttrs are the attributes Flex gives the conversation's first task:
// twiliotest's, for the conversation's channel.
func firstAttrs(c *conv) map[string]any {
	attrs := map[string]any{}
	_ = json.Unmarshal([]byte(tt.TaskRouterEvent(c.ids, "task.created").Get("TaskAttributes")), &attrs)
	attrs["channelType"] = c.channelType
	from := c.address
	attrs["from"], attrs["customerAddress"], attrs["customerName"] = from, from, from
	if c.channelType == "chat" {
		attrs["customerName"] = "Customer"
	}
	delete(attrs, "conversations")
	return attrs
}

// taskAttrs are a task's attributes: base, then extra over it, then the
// task's own conversation id and the targeted worker.
func taskAttrs(base, extra map[string]any, taskSid, workerSid string) string {
	attrs := maps.Clone(base)
	maps.Copy(attrs, extra)
	attrs["conversations"] = map[string]any{"conversation_id": taskSid, "media": []any{}}
	if workerSid != "" {
		attrs["worker_sid"] = workerSid
	}
	b, _ := json.Marshal(attrs)
	return string(b)
}
