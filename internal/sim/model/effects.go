package model

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/flexstream/flexstream/internal/taskattr"
)

// The effects of the REST calls the reactors make, as the REST stand-in
// reports them after validating them. Each first brings the model up to
// now (timers due fire first), then applies the effect at now; the
// webhooks it causes come out of the next Advance. Each counts as a
// reaction (Truth.Reactions) and is checked: duplicates (the same
// flexstream mark twice, a second re-invite for one ended task, a close
// of a closed channel) count in Truth.DuplicateEffects, rule breaches
// (a message to a closed conversation, a free-form WhatsApp message
// outside the 24-hour window, an invite on a closed channel, an unknown
// SID) are Truth.Violations.

// Reaction kinds, the keys of Truth.Reactions.
const (
	ReactionMessage  = "message"
	ReactionReinvite = "reinvite"
	ReactionClose    = "close"
)

// WhatsAppWindow is how long after the customer's last message WhatsApp
// accepts free-form messages (Twilio time).
const WhatsAppWindow = Duration(24 * time.Hour)

// MarkKey is the attribute under which flexstream marks what it makes
// (reactors/act.MarkKey).
const MarkKey = "flexstream"

// Mark is flexstream's mark on a message or a re-invited task
// (reactors/act.Mark).
type Mark struct {
	Reaction  string `json:"reaction"`
	Action    int    `json:"action"`
	Attempt   int    `json:"attempt,omitempty"`
	WorkerSid string `json:"worker_sid,omitempty"`
}

// Message is a message the reactors created
// (CreateServiceConversationMessage), for MessageCreated.
type Message struct {
	ChatServiceSid  string // IS…
	ConversationSid string // CH…
	Sid             string // IM… the stand-in assigned ("" : the model makes one)
	Author          string // "" : "system", Twilio's default
	Body            string
	Attributes      string // JSON; carries the flexstream mark
	ContentSid      string // HX… an approved template ("" : free-form)
	// WebhookEnabled: X-Twilio-Webhook-Enabled was true, so the message
	// fires onMessageAdded.
	WebhookEnabled bool
}

// Invited applies CreateInteractionChannelInvite: a new task for the
// channel, created with the routing properties' attributes over the
// interaction's and routed like any task (a worker_sid in the properties,
// or in the attributes, targets that worker). taskSid is the task the
// stand-in answered with (routing.properties.sid; "" : the model makes
// one).
func (m *Model) Invited(now time.Time, interactionSid, channelSid, taskSid string, routingProperties map[string]any) {
	at := m.effectAt(now)
	m.reactions[ReactionReinvite]++
	extra := taskattr.Of(routingProperties["attributes"])
	if mk, ok := markOf(extra[MarkKey]); ok {
		m.reinvites[mk.Reaction]++
		if m.reinvites[mk.Reaction] > 1 {
			m.duplicates++
		}
	}
	c := m.byChannel[channelSid]
	if c == nil || c.ids.Interaction != interactionSid {
		m.violate(fmt.Sprintf("an invite on unknown interaction channel %s/%s", interactionSid, channelSid))
		return
	}
	if c.chStatus == "closed" {
		m.violate(fmt.Sprintf("%s: an invite on closed interaction channel %s", c.ids.Conversation, channelSid))
		return
	}
	m.reacted(c, at)
	ws, _ := routingProperties["worker_sid"].(string)
	if ws == "" {
		ws, _ = extra["worker_sid"].(string)
	}
	var target *worker
	for _, w := range m.workers {
		if ws != "" && w.sid == ws {
			target = w
		}
	}
	if target != nil {
		delete(extra, "worker_sid") // taskAttrs sets it
	}
	if c.state == "inactive" { // an invite reopens the channel
		c.chStatus = "active"
		m.stateUpdated(c, at, "active", "API")
	}
	t := m.newTask(c, at, taskSid, extra, target)
	m.routeLater(t, at)
}

// ChannelUpdated applies UpdateInteractionChannel. Status closed: the
// channel's live tasks end (assigned ones wrap up and complete, pending
// and reserved ones are canceled with reason "Interaction channel
// closed") and the conversation closes (Reason API); none of its timers
// fire any more. Status inactive: the same, but the conversation goes
// inactive.
func (m *Model) ChannelUpdated(now time.Time, interactionSid, channelSid, status string) {
	at := m.effectAt(now)
	kind := ReactionClose
	if status != "closed" {
		kind = "channel_" + status
	}
	m.reactions[kind]++
	c := m.byChannel[channelSid]
	if c == nil || c.ids.Interaction != interactionSid {
		m.violate(fmt.Sprintf("an update (status %q) of unknown interaction channel %s/%s", status, interactionSid, channelSid))
		return
	}
	switch status {
	case "closed":
		if c.chStatus == "closed" {
			m.duplicates++
			return
		}
		m.reacted(c, at)
		m.closeChannel(c, at, nil)
	case "inactive":
		if c.chStatus != "active" {
			m.duplicates++
			return
		}
		m.reacted(c, at)
		c.chStatus = "inactive"
		for _, t := range c.tasks {
			m.stopTask(t, at)
		}
		for _, x := range c.timers {
			m.cancel(x)
		}
		c.timers = c.timers[:0]
		m.stateUpdated(c, at, "inactive", "API")
		m.dispatch(at)
	default:
		m.violate(fmt.Sprintf("%s: interaction channel %s set to unsupported status %q", c.ids.Conversation, channelSid, status))
	}
}

// MessageSent applies CreateServiceConversationMessage: an onMessageAdded
// by "system" when webhookEnabled. MessageCreated does the same with the
// message's SID and body.
func (m *Model) MessageSent(now time.Time, chatServiceSid, conversationSid, attributes, contentSid string, webhookEnabled bool) {
	m.MessageCreated(now, Message{
		ChatServiceSid: chatServiceSid, ConversationSid: conversationSid,
		Attributes: attributes, ContentSid: contentSid, WebhookEnabled: webhookEnabled,
	})
}

// MessageCreated applies CreateServiceConversationMessage: an
// onMessageAdded (MessageSid msg.Sid, Author msg.Author or "system")
// when msg.WebhookEnabled. It returns the message's index in the
// conversation (the webhook's Index), -1 when Twilio would have refused
// it (unknown or closed conversation).
func (m *Model) MessageCreated(now time.Time, msg Message) int {
	at := m.effectAt(now)
	m.reactions[ReactionMessage]++
	if mk, ok := markOfJSON(msg.Attributes); ok {
		key := fmt.Sprintf("%s\x00%d", mk.Reaction, mk.Action)
		m.marks[key]++
		if m.marks[key] > 1 {
			m.duplicates++
		}
	}
	c := m.convs[msg.ConversationSid]
	if c == nil || c.ids.ChatService != msg.ChatServiceSid {
		m.violate(fmt.Sprintf("a message to unknown conversation %s/%s", msg.ChatServiceSid, msg.ConversationSid))
		return -1
	}
	if c.state == "closed" {
		m.violate(fmt.Sprintf("%s: a message to a closed conversation", c.ids.Conversation))
		return -1
	}
	if c.channelType == "whatsapp" && msg.ContentSid == "" && at.Sub(c.lastCust) > m.real(WhatsAppWindow) {
		m.violate(fmt.Sprintf("%s: a free-form WhatsApp message %s after the customer's last message (window %s)",
			c.ids.Conversation, m.twilioTime(at.Sub(c.lastCust)), WhatsAppWindow))
	}
	m.reacted(c, at)
	author := msg.Author
	if author == "" {
		author = "system"
	}
	if !msg.WebhookEnabled {
		idx := c.msgs
		c.msgs++
		c.lastAct = at
		return idx
	}
	return m.message(c, at, author, "", msg.Sid, msg.Body, msg.Attributes)
}

// effectAt brings the model up to now and returns the time to apply an
// effect at (never before the last event).
func (m *Model) effectAt(now time.Time) time.Time {
	m.run(now)
	return m.clock
}

func (m *Model) violate(s string) { m.violations = append(m.violations, s) }

// reacted records the time to the first reaction after a task of c ended
// unserved.
func (m *Model) reacted(c *conv, at time.Time) {
	if t0, ok := m.unservedEnd[c]; ok {
		m.latencies = append(m.latencies, at.Sub(t0))
		delete(m.unservedEnd, c)
	}
}

// twilioTime is a real duration in Twilio time.
func (m *Model) twilioTime(d time.Duration) time.Duration {
	return time.Duration(float64(d) * m.sc.Speed).Round(time.Second)
}

// markOf reads a mark from a decoded attribute value.
func markOf(v any) (Mark, bool) {
	if v == nil {
		return Mark{}, false
	}
	b, err := json.Marshal(v)
	if err != nil {
		return Mark{}, false
	}
	var mk Mark
	if json.Unmarshal(b, &mk) != nil || mk.Reaction == "" {
		return Mark{}, false
	}
	return mk, true
}

// markOfJSON reads the mark from attributes given as JSON.
func markOfJSON(attrs string) (Mark, bool) {
	var v map[string]any
	if attrs == "" || json.Unmarshal([]byte(attrs), &v) != nil {
		return Mark{}, false
	}
	return markOf(v[MarkKey])
}
