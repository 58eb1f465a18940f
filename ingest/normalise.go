// Package ingest is the front door: Twilio's webhooks, signature-checked,
// normalised to the topic contract (package schemas) and produced to Kafka
// before Twilio gets its 2xx.
package ingest

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/flexstream/flexstream/schemas"
)

// Route is a webhook endpoint, one per payload family.
type Route string

// Routes and their paths (DESIGN §11).
const (
	RouteTaskRouter    Route = "taskrouter"
	RouteConversations Route = "conversations"
	RouteEventStreams  Route = "eventstreams"
)

// Path is where the route is served.
func (r Route) Path() string { return "/webhooks/" + string(r) }

// Routes lists every route.
var Routes = []Route{RouteTaskRouter, RouteConversations, RouteEventStreams}

// ErrMalformed wraps every reason a delivery cannot be normalised; the
// answer is 400.
var ErrMalformed = errors.New("malformed webhook")

// Delivery is one HTTP request Twilio made, already signature-checked.
type Delivery struct {
	Route Route
	Body  []byte
	// Form is Body already parsed, when the caller had to parse it (to
	// check the signature); nil: Normalise parses Body.
	Form             url.Values
	IdempotencyToken string // I-Twilio-Idempotency-Token, may be empty
	Traceparent      string // W3C trace context of the request (or a new one)
	ReceivedAt       time.Time
}

// Normalised is what a delivery becomes on the topic.
type Normalised struct {
	Records []kafka.Message
	// PreEvent: a Conversations pre-event webhook, whose answer Twilio
	// waits for before the action happens.
	PreEvent bool
}

// Normalise turns a delivery into the records of the topic contract: one
// per Twilio event, CloudEvents binary-mode headers, the key that keeps a
// conversation's events in one partition, and the payload bytes exactly
// as Twilio sent them. It has no I/O.
func Normalise(d Delivery) (Normalised, error) {
	switch d.Route {
	case RouteTaskRouter:
		rec, err := normaliseTaskRouter(d)
		return Normalised{Records: []kafka.Message{rec}}, err
	case RouteConversations:
		rec, pre, err := normaliseConversations(d)
		return Normalised{Records: []kafka.Message{rec}, PreEvent: pre}, err
	case RouteEventStreams:
		recs, err := normaliseEventStreams(d)
		return Normalised{Records: recs}, err
	}
	return Normalised{}, fmt.Errorf("%w: unknown route %q", ErrMalformed, d.Route)
}

func malformed(err error) error { return fmt.Errorf("%w: %w", ErrMalformed, err) }

// parseForm parses a form body strictly: a body that is not
// application/x-www-form-urlencoded is malformed, not an empty form.
func parseForm(d Delivery) (url.Values, error) {
	if d.Form != nil {
		return d.Form, nil
	}
	form, err := url.ParseQuery(string(d.Body))
	if err != nil {
		return nil, malformed(fmt.Errorf("form body does not parse: %w", err))
	}
	return form, nil
}

// isTaskRouterEventType checks the shape of TaskRouter's event types:
// dot-separated lower-case words (task.canceled, task-queue.entered).
func isTaskRouterEventType(s string) bool {
	words := strings.Split(s, ".")
	if len(words) < 2 {
		return false
	}
	for _, w := range words {
		if w == "" || w[0] < 'a' || w[0] > 'z' {
			return false
		}
		for i := 1; i < len(w); i++ {
			if c := w[i]; (c < 'a' || c > 'z') && c != '-' {
				return false
			}
		}
	}
	return true
}

func normaliseTaskRouter(d Delivery) (kafka.Message, error) {
	form, err := parseForm(d)
	if err != nil {
		return kafka.Message{}, err
	}
	cb, err := schemas.ParseTaskRouter(form)
	if err != nil {
		return kafka.Message{}, malformed(err)
	}
	if !isTaskRouterEventType(cb.EventType) {
		return kafka.Message{}, malformed(fmt.Errorf("%s: EventType %q is not a TaskRouter event type", schemas.FamilyTaskRouter, clip(cb.EventType)))
	}
	ceType := schemas.TaskRouterType(cb.EventType)
	key := cb.TaskSid
	if attrs, err := cb.Attributes(); err == nil && isSid(attrs.ConversationSid, "CH") {
		// Flex puts the conversation on the task: its events then share
		// the conversation's partition.
		key = attrs.ConversationSid
	}
	if key == "" {
		key = cb.ResourceSid
	}
	id := cb.Sid
	if id == "" {
		id = fallbackID(d.IdempotencyToken, ceType, cb.ResourceSid, cb.Timestamp, d.Body)
	}
	h := envelope{
		id: id, source: "https://taskrouter.twilio.com/v1/Workspaces/" + url.PathEscape(cb.WorkspaceSid), ceType: ceType,
		time: epochTime(cb.Timestamp), subject: cb.ResourceSid,
		contentType: schemas.ContentTypeForm, family: schemas.FamilyTaskRouter,
	}
	return h.record(d, key, d.Body), nil
}

func normaliseConversations(d Delivery) (kafka.Message, bool, error) {
	form, err := parseForm(d)
	if err != nil {
		return kafka.Message{}, false, err
	}
	w, err := schemas.ParseConversations(form)
	if err != nil {
		return kafka.Message{}, false, malformed(err)
	}
	// An EventType Twilio added after the contract is kept under the name
	// Event Streams' convention gives it, not refused: Twilio would retry
	// it until it gives up, and the history would have a hole.
	ceType, _ := schemas.ConversationsType(w.EventType)
	key := w.ConversationSid
	if key == "" {
		key = w.ResourceSid()
	}
	if key == "" {
		key = form.Get("UserSid")
	}
	when := w.DateUpdated
	if when == "" {
		when = w.DateCreated
	}
	source := "https://conversations.twilio.com/v1/Accounts/" + url.PathEscape(w.AccountSid)
	if w.ChatServiceSid != "" {
		source = "https://conversations.twilio.com/v1/Services/" + url.PathEscape(w.ChatServiceSid)
	}
	h := envelope{
		id: fallbackID(d.IdempotencyToken, ceType, w.ResourceSid(), when, d.Body), source: source, ceType: ceType,
		time: isoTime(when), subject: w.ResourceSid(),
		contentType: schemas.ContentTypeForm, family: schemas.FamilyConversations,
	}
	return h.record(d, key, d.Body), schemas.IsPreEvent(w.EventType), nil
}

func normaliseEventStreams(d Delivery) ([]kafka.Message, error) {
	events, err := schemas.ParseEventStreams(d.Body)
	if err != nil {
		return nil, malformed(err)
	}
	recs := make([]kafka.Message, 0, len(events))
	for i, ev := range events {
		if !strings.HasPrefix(ev.Type, schemas.TypePrefixTaskRouter) && !strings.HasPrefix(ev.Type, schemas.TypePrefixConversations) {
			return nil, malformed(fmt.Errorf("%s: element %d: type %q is neither TaskRouter nor Conversations", schemas.FamilyEventStreams, i, clip(ev.Type)))
		}
		if _, err := url.Parse(ev.Source); err != nil {
			return nil, malformed(fmt.Errorf("%s: element %d: source is not a URI reference", schemas.FamilyEventStreams, i))
		}
		key, subject, when := eventStreamsKey(ev)
		if ev.Subject != "" {
			subject = ev.Subject
		}
		if ev.Time != "" {
			when = ev.Time
		}
		h := envelope{
			id: ev.ID, source: ev.Source, ceType: ev.Type, time: isoTime(when), subject: subject,
			dataSchema: ev.DataSchema, contentType: schemas.ContentTypeJSON, family: schemas.FamilyEventStreams,
		}
		recs = append(recs, h.record(d, key, []byte(ev.Data)))
	}
	return recs, nil
}

// eventStreamsKey finds the conversation (else task, else resource) an
// Event Streams event is about, its subject and its time. Data that does
// not decode still goes on the topic, keyed by its id: the projector
// dead-letters it with the reason.
func eventStreamsKey(ev schemas.CloudEvent) (key, subject, when string) {
	if strings.HasPrefix(ev.Type, schemas.TypePrefixTaskRouter) {
		var data schemas.EventStreamsTaskRouterData
		if json.Unmarshal(ev.Data, &data) != nil {
			return ev.ID, "", ""
		}
		p := data.Payload
		var attrs schemas.TaskAttributes
		if p.TaskAttributes != "" && json.Unmarshal([]byte(p.TaskAttributes), &attrs) == nil && isSid(attrs.ConversationSid, "CH") {
			key = attrs.ConversationSid
		}
		subject = firstNonEmpty(p.ResourceSid, p.ReservationSid, p.TaskSid)
		return firstNonEmpty(key, p.TaskSid, subject, ev.ID), subject, data.Timestamp
	}
	var data schemas.EventStreamsConversationsData
	if json.Unmarshal(ev.Data, &data) != nil {
		return ev.ID, "", ""
	}
	subject = firstNonEmpty(data.MessageSid, data.ParticipantSid, data.ConversationSid)
	return firstNonEmpty(data.ConversationSid, subject, ev.ID), subject, firstNonEmpty(data.DateUpdated, data.DateCreated)
}

// envelope is a record's CloudEvents attributes.
type envelope struct {
	id, source, ceType, time, subject, dataSchema string
	contentType, family                           string
}

func (h envelope) record(d Delivery, key string, value []byte) kafka.Message {
	headers := make([]kafka.Header, 0, 11)
	add := func(k, v string) {
		if v != "" {
			headers = append(headers, kafka.Header{Key: k, Value: []byte(v)})
		}
	}
	add(schemas.HeaderSpecVersion, schemas.SpecVersion)
	add(schemas.HeaderID, h.id)
	add(schemas.HeaderSource, h.source)
	add(schemas.HeaderType, h.ceType)
	// Without a time of Twilio's (pre-events carry none) the event is
	// dated when it arrived.
	if h.time == "" {
		h.time = d.ReceivedAt.UTC().Format(time.RFC3339Nano)
	}
	add(schemas.HeaderTime, h.time)
	add(schemas.HeaderSubject, h.subject)
	add(schemas.HeaderDataSchema, h.dataSchema)
	add(schemas.HeaderContentType, h.contentType)
	add(schemas.HeaderFamily, h.family)
	add(schemas.HeaderTraceparent, d.Traceparent)
	add(schemas.HeaderReceivedAt, d.ReceivedAt.UTC().Format(time.RFC3339Nano))
	var k []byte
	if key != "" {
		k = []byte(key)
	}
	return kafka.Message{Key: k, Value: value, Headers: headers}
}

// fallbackID is ce_id for an event without an id of Twilio's: the
// idempotency token Twilio repeats on retries, else a digest of what a
// retry repeats.
func fallbackID(token, ceType, resourceSid, timestamp string, body []byte) string {
	if token != "" {
		return token
	}
	h := sha256.New()
	for _, part := range [][]byte{[]byte(ceType), []byte(resourceSid), []byte(timestamp), body} {
		h.Write(part)
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil))
}

// epochTime reads TaskRouter's Timestamp (epoch seconds, or milliseconds
// when it has 13 digits) as RFC 3339; anything else gives no ce_time.
func epochTime(s string) string {
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n <= 0 {
		return isoTime(s)
	}
	t := time.Unix(n, 0)
	if len(s) >= 13 {
		t = time.UnixMilli(n)
	}
	return t.UTC().Format(time.RFC3339Nano)
}

// isoTime normalises an ISO 8601 time to RFC 3339 in UTC; anything else
// gives no ce_time rather than a wrong one.
func isoTime(s string) string {
	if s == "" {
		return ""
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05.000Z0700", "2006-01-02T15:04:05Z0700"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC().Format(time.RFC3339Nano)
		}
	}
	return ""
}

// isSid reports whether s looks like a Twilio SID with this prefix.
func isSid(s, prefix string) bool {
	if len(s) != 34 || !strings.HasPrefix(s, prefix) {
		return false
	}
	_, err := hex.DecodeString(s[2:])
	return err == nil
}

func firstNonEmpty(ss ...string) string {
	for _, s := range ss {
		if s != "" {
			return s
		}
	}
	return ""
}

// clip keeps error messages short whatever a client sends.
func clip(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}
