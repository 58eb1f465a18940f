package twiliostub

import (
	"encoding/json"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"time"
)

// The Conversations fakes, under a Conversations Service
// (/v1/Services/{ChatServiceSid}/Conversations/...).

const convBase = "https://conversations.twilio.com/v1/Services/"

func (s *Server) createServiceConversationMessage(q *request) reply {
	c := s.conversations[convKey{q.params["ChatServiceSid"], q.params["ConversationSid"]}]
	if c == nil {
		return notFound("Conversation", q.params["ConversationSid"])
	}
	// From the spec's descriptions: Attributes and ContentVariables "must
	// contain structurally valid JSON"; a message carries a body, media or
	// a content template.
	for _, f := range []string{"Attributes", "ContentVariables"} {
		if v, ok := q.form[f]; ok && !json.Valid([]byte(v[0])) {
			return invalid("%s must be valid JSON", f)
		}
	}
	if q.form.Get("Body") == "" && q.form.Get("MediaSid") == "" && q.form.Get("ContentSid") == "" {
		return invalid("a message needs Body, MediaSid or ContentSid")
	}
	m := c.add(Message{
		Author:           q.form.Get("Author"),
		Body:             q.form.Get("Body"),
		ContentSid:       q.form.Get("ContentSid"),
		ContentVariables: q.form.Get("ContentVariables"),
		Attributes:       q.form.Get("Attributes"),
		WebhookEnabled:   q.r.Header.Get("X-Twilio-Webhook-Enabled") == "true",
		DateCreated:      stamp(q.now),
	})
	// A message wakes an inactive conversation; a closed one stays closed
	// (and the message shows it in ConversationState).
	if c.state == "inactive" {
		c.state = "active"
	}
	c.updated = stamp(q.now)
	mc := *m
	eff := &Effect{Operation: q.op(), At: q.now, ChatServiceSid: q.params["ChatServiceSid"], ConversationSid: q.params["ConversationSid"], Message: &mc}
	return reply{status: q.info.success, body: s.messageJSON(c, m), effect: eff}
}

// listServiceConversationMessage lists oldest first, or newest first with
// Order=desc, as Twilio does.
func (s *Server) listServiceConversationMessage(q *request) reply {
	c := s.conversations[convKey{q.params["ChatServiceSid"], q.params["ConversationSid"]}]
	if c == nil {
		return notFound("Conversation", q.params["ConversationSid"])
	}
	items := make([]any, len(c.messages))
	for i, m := range c.messages {
		items[i] = s.messageJSON(c, m)
	}
	if q.query.Get("Order") == "desc" {
		slices.Reverse(items)
	}
	return reply{status: q.info.success, body: listPage(q, "messages", items)}
}

func (s *Server) fetchServiceConversation(q *request) reply {
	c := s.conversations[convKey{q.params["ChatServiceSid"], q.params["Sid"]}]
	if c == nil {
		return notFound("Conversation", q.params["Sid"])
	}
	return reply{status: q.info.success, body: s.conversationJSON(c)}
}

// updateServiceConversation changes State and the Timers. A closed
// conversation is final: Twilio does not reopen it.
func (s *Server) updateServiceConversation(q *request) reply {
	c := s.conversations[convKey{q.params["ChatServiceSid"], q.params["Sid"]}]
	if c == nil {
		return notFound("Conversation", q.params["Sid"])
	}
	for _, f := range []string{"Timers.Inactive", "Timers.Closed"} {
		if v, ok := q.form[f]; ok && !validDuration(v[0]) {
			return invalid("%s must be an ISO 8601 duration", f)
		}
	}
	if st := q.form.Get("State"); st != "" && st != c.state {
		if c.state == "closed" {
			return errorReply(http.StatusBadRequest, "Conversation %s is closed; its state cannot change", c.key.conversation)
		}
		c.state = st
	}
	if c.timers == nil {
		c.timers = map[string]string{}
	}
	if v := q.form.Get("Timers.Inactive"); v != "" {
		c.timers["inactive"] = v
	}
	if v := q.form.Get("Timers.Closed"); v != "" {
		c.timers["closed"] = v
	}
	c.updated = stamp(q.now)
	eff := &Effect{Operation: q.op(), At: q.now, ChatServiceSid: c.key.service, ConversationSid: c.key.conversation, State: c.state}
	return reply{status: q.info.success, body: s.conversationJSON(c), effect: eff}
}

func (s *Server) conversationJSON(c *conversation) map[string]any {
	u := convBase + c.key.service + "/Conversations/" + c.key.conversation
	timers := map[string]any{}
	for name, d := range c.timers {
		if dur, ok := parseISODuration(d); ok {
			timers["date_"+name] = stamp(c.updated.Add(dur)).Format(time.RFC3339)
		}
	}
	return map[string]any{
		"account_sid":           s.accountSid,
		"chat_service_sid":      c.key.service,
		"messaging_service_sid": nil,
		"sid":                   c.key.conversation,
		"friendly_name":         nil,
		"unique_name":           nil,
		"attributes":            "{}",
		"state":                 c.state,
		"date_created":          c.created.Format(time.RFC3339),
		"date_updated":          c.updated.Format(time.RFC3339),
		"timers":                timers,
		"url":                   u,
		"links": map[string]any{
			"participants": u + "/Participants",
			"messages":     u + "/Messages",
			"webhooks":     u + "/Webhooks",
		},
		"bindings": nil,
	}
}

func (s *Server) messageJSON(c *conversation, m *Message) map[string]any {
	u := convBase + c.key.service + "/Conversations/" + c.key.conversation + "/Messages/" + m.Sid
	return map[string]any{
		"account_sid":      s.accountSid,
		"chat_service_sid": c.key.service,
		"conversation_sid": c.key.conversation,
		"sid":              m.Sid,
		"index":            m.Index,
		"author":           m.Author,
		"body":             nullable(m.Body),
		"media":            nil,
		"attributes":       m.Attributes,
		"participant_sid":  nil,
		"date_created":     m.DateCreated.Format(time.RFC3339),
		"date_updated":     m.DateCreated.Format(time.RFC3339),
		"delivery":         nil,
		"url":              u,
		"links": map[string]any{
			"delivery_receipts": u + "/Receipts",
			"channel_metadata":  u + "/ChannelMetadata",
		},
		"content_sid": nullable(m.ContentSid),
	}
}

func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// stamp is a time as Twilio reports it: UTC, whole seconds.
func stamp(t time.Time) time.Time { return t.UTC().Truncate(time.Second) }

// isoDuration is the subset of ISO 8601 durations Twilio's timers take
// (P1D, PT10M, PT1H30M, P1DT2H...).
var isoDuration = regexp.MustCompile(`^P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)S)?)?$`)

func validDuration(v string) bool {
	_, ok := parseISODuration(v)
	return ok
}

func parseISODuration(v string) (time.Duration, bool) {
	m := isoDuration.FindStringSubmatch(v)
	if m == nil || v == "P" || v == "PT" {
		return 0, false
	}
	var d time.Duration
	for i, unit := range []time.Duration{24 * time.Hour, time.Hour, time.Minute, time.Second} {
		if m[i+1] != "" {
			n, err := strconv.Atoi(m[i+1])
			if err != nil {
				return 0, false
			}
			d += time.Duration(n) * unit
		}
	}
	return d, true
}
