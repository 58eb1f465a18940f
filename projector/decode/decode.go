// Package decode turns a record of the events topic into the domain event
// the event store keeps: checked against the topic contract (schemas),
// typed, with every phone number, e-mail address and message text replaced
// by its pseudonym. It has no I/O; an error means the record belongs in
// the dead-letter topic.
package decode

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/flexstream/flexstream/internal/pii"
	"github.com/flexstream/flexstream/projector/domain"
	"github.com/flexstream/flexstream/schemas"
)

// ErrUndecodable wraps every reason a record cannot become an event.
var ErrUndecodable = errors.New("undecodable record")

// Record is a record of the events topic.
type Record struct {
	Topic     string
	Partition int
	Offset    int64
	Key       []byte
	Value     []byte
	Headers   map[string]string
}

// Decoded is what the projector appends: one event to one stream.
type Decoded struct {
	Stream string
	ID     uuid.UUID
	Event  domain.Event
	Meta   domain.Metadata
}

// Decoder decodes records; safe for concurrent use.
type Decoder struct {
	pii       *pii.Pseudonymizer
	validator *schemas.Validator
}

// New returns a Decoder pseudonymising with p and validating with v.
func New(p *pii.Pseudonymizer, v *schemas.Validator) *Decoder {
	return &Decoder{pii: p, validator: v}
}

func undecodable(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrUndecodable, fmt.Sprintf(format, args...))
}

// Decode checks r against the contract and makes its domain event.
func (d *Decoder) Decode(r Record) (Decoded, error) {
	if err := d.validator.ValidateEnvelope(r.Headers); err != nil {
		return Decoded{}, fmt.Errorf("%w: %w", ErrUndecodable, err)
	}
	family, ceType := r.Headers[schemas.HeaderFamily], r.Headers[schemas.HeaderType]
	var f fields
	var rawValue string
	switch family {
	case schemas.FamilyTaskRouter, schemas.FamilyConversations:
		form, err := url.ParseQuery(string(r.Value))
		if err != nil {
			return Decoded{}, undecodable("form value does not parse")
		}
		if family == schemas.FamilyTaskRouter {
			err = d.validator.ValidateTaskRouterForm(form)
		} else {
			err = d.validator.ValidateConversationsForm(form)
		}
		if err != nil {
			return Decoded{}, fmt.Errorf("%w: %w", ErrUndecodable, err)
		}
		f = formFields(form)
		rawValue = d.pseudonymiseForm(form).Encode()
	case schemas.FamilyEventStreams:
		if err := d.validator.ValidatePayload(family, r.Headers[schemas.HeaderContentType], r.Value); err != nil {
			return Decoded{}, fmt.Errorf("%w: %w", ErrUndecodable, err)
		}
		var err error
		if strings.HasPrefix(ceType, schemas.TypePrefixTaskRouter) {
			f, err = eventStreamsTaskRouter(r.Value)
		} else {
			f, err = eventStreamsConversations(r.Value)
		}
		if err != nil {
			return Decoded{}, undecodable("%s data: %v", family, err)
		}
		if rawValue, err = d.pseudonymiseJSONText(string(r.Value)); err != nil {
			return Decoded{}, undecodable("%s data: %v", family, err)
		}
	default:
		return Decoded{}, undecodable("unknown family %q", family)
	}
	received, _ := time.Parse(time.RFC3339Nano, r.Headers[schemas.HeaderReceivedAt])
	at, err := time.Parse(time.RFC3339Nano, r.Headers[schemas.HeaderTime])
	if err != nil {
		at = received
	}
	var e domain.Event
	switch {
	case strings.HasPrefix(ceType, schemas.TypePrefixTaskRouter):
		e = d.taskRouterEvent(strings.TrimPrefix(ceType, schemas.TypePrefixTaskRouter), f)
	default:
		e = d.conversationsEvent(strings.TrimPrefix(ceType, schemas.TypePrefixConversations), f)
	}
	e.CEType, e.At, e.AccountSid = ceType, at.UTC(), f.get("AccountSid")
	fallback := r.Headers[schemas.HeaderSubject]
	if fallback == "" {
		fallback = string(r.Key)
	}
	if fallback == "" {
		fallback = "unkeyed"
	}
	stream := domain.StreamFor(e, fallback)
	ceID := r.Headers[schemas.HeaderID]
	correlation := e.ConversationSid
	if correlation == "" {
		correlation = strings.TrimPrefix(stream, domain.Category(stream)+"-")
	}
	return Decoded{
		Stream: stream,
		ID:     domain.EventID(ceID, stream),
		Event:  e,
		Meta: domain.Metadata{
			CorrelationID: correlation, CausationID: ceID, CESource: r.Headers[schemas.HeaderSource],
			Topic: r.Topic, Partition: r.Partition, Offset: r.Offset,
			Traceparent: r.Headers[schemas.HeaderTraceparent], ReceivedAt: received.UTC(),
			Raw: &domain.Raw{Key: string(r.Key), Headers: contractHeaders(r.Headers), Value: rawValue},
		},
	}, nil
}

// contractHeaders copies the contract's headers (schemas.Headers): other
// producers' headers are theirs, and could hold anything.
func contractHeaders(h map[string]string) map[string]string {
	out := make(map[string]string, len(schemas.Headers))
	for _, k := range schemas.Headers {
		if v, ok := h[k]; ok {
			out[k] = v
		}
	}
	return out
}

// pseudonymiseForm is the form with every value that is or holds a phone
// number, an e-mail address or message text replaced by its pseudonym.
func (d *Decoder) pseudonymiseForm(form url.Values) url.Values {
	out := make(url.Values, len(form))
	for k, vs := range form {
		o := make([]string, len(vs))
		for i, v := range vs {
			o[i] = d.pseudonymiseField(k, v)
		}
		out[k] = o
	}
	return out
}

// bodyFields name message text, in webhooks and in Event Streams data.
func isBodyField(name string) bool { return name == "Body" || name == "MessageBody" }

// numberFields are Twilio's numeric form fields: a Unix time in a
// Timestamp has as many digits as a phone number.
var numberFields = map[string]bool{
	"Timestamp": true, "TimestampMs": true, "TaskAge": true, "TaskPriority": true, "TaskTimeout": true,
	"TaskVersion": true, "Index": true, "RetryCount": true, "ErrorCode": true,
}

// addressFields hold one address or identity: pseudonymised as the
// event's own fields are (Address), so a re-driven record decodes to the
// same event. A chat identity that is no phone number or e-mail address
// is kept, digits and all.
var addressFields = map[string]bool{
	"Identity": true, "Author": true, "ClientIdentity": true, "MessagingBinding.Address": true,
	"MessagingBinding.ProxyAddress": true, "MessagingBinding.ProjectedAddress": true, "MessagingBinding.AuthorAddress": true,
	// The same inside Event Streams' MessagingBinding object.
	"Address": true, "ProxyAddress": true, "ProjectedAddress": true, "AuthorAddress": true,
}

func (d *Decoder) pseudonymiseField(name, v string) string {
	switch {
	case addressFields[name]:
		return d.pii.Address(v)
	case isBodyField(name):
		if v == "" || pii.IsPseudonym(v) {
			return v
		}
		return d.pii.Body(v)
	case numberFields[name] && isDigits(v):
		return v
	}
	return d.pseudonymiseString(v)
}

func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

// pseudonymiseJSONText pseudonymises a JSON document, keeping its numbers
// as written.
func (d *Decoder) pseudonymiseJSONText(text string) (string, error) {
	dec := json.NewDecoder(strings.NewReader(text))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return "", err
	}
	if dec.More() {
		return "", errors.New("more than one JSON value")
	}
	b, err := json.Marshal(d.pseudonymiseJSON(v))
	return string(b), err
}

// fields is a payload's fields by their webhook names (Event Streams data
// is mapped onto them), first value of each.
type fields map[string]string

func (f fields) get(k string) string { return f[k] }

func formFields(form url.Values) fields {
	f := make(fields, len(form))
	for k, v := range form {
		if len(v) > 0 {
			f[k] = v[0]
		}
	}
	return f
}

// Event Streams' TaskRouter data is snake_case under "payload": mapped to
// the callback's field names.
var esTaskRouterNames = map[string]string{
	"task_sid": "TaskSid", "task_attributes": "TaskAttributes", "task_canceled_reason": "TaskCanceledReason",
	"task_assignment_status": "TaskAssignmentStatus", "task_channel_unique_name": "TaskChannelUniqueName",
	"task_queue_sid": "TaskQueueSid", "task_queue_name": "TaskQueueName", "workflow_sid": "WorkflowSid",
	"workflow_name": "WorkflowName", "reservation_sid": "ReservationSid", "worker_sid": "WorkerSid",
	"resource_sid": "ResourceSid", "account_sid": "AccountSid", "workspace_sid": "WorkspaceSid",
}

func eventStreamsTaskRouter(data []byte) (fields, error) {
	var raw struct {
		AccountSid string         `json:"account_sid"`
		Payload    map[string]any `json:"payload"`
	}
	if err := json.Unmarshal(data, &raw); err != nil {
		return nil, err
	}
	f := fields{"AccountSid": raw.AccountSid}
	for k, v := range raw.Payload {
		if name, ok := esTaskRouterNames[k]; ok {
			f[name] = scalar(v)
		}
	}
	return f, nil
}

func eventStreamsConversations(data []byte) (fields, error) {
	var raw map[string]any
	if err := json.Unmarshal(data, &raw); err != nil {
		return nil, err
	}
	f := fields{}
	for k, v := range raw {
		if k == "MessageBody" {
			k = "Body"
		}
		if m, ok := v.(map[string]any); ok {
			for k2, v2 := range m {
				f[k+"."+k2] = scalar(v2)
			}
			continue
		}
		f[k] = scalar(v)
	}
	return f, nil
}

func scalar(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	case bool:
		return strconv.FormatBool(x)
	case nil:
		return ""
	}
	b, _ := json.Marshal(v)
	return string(b)
}

var taskRouterTypes = map[string]string{
	"task.created": domain.TaskCreated, "task.updated": domain.TaskUpdated, "task-queue.entered": domain.TaskQueueEntered,
	"task.canceled": domain.TaskCanceled, "task.deleted": domain.TaskDeleted, "task.wrapup": domain.TaskWrapup,
	"task.completed": domain.TaskCompleted, "task.transfer-initiated": domain.TaskTransfer,
	"workflow.timeout":    domain.WorkflowTimedOut,
	"reservation.created": domain.ReservationCreated, "reservation.accepted": domain.ReservationAccepted,
	"reservation.rejected": domain.ReservationRejected, "reservation.timeout": domain.ReservationTimedOut,
	"reservation.canceled": domain.ReservationCanceled, "reservation.rescinded": domain.ReservationRescinded,
	"reservation.wrapup": domain.ReservationWrapup, "reservation.completed": domain.ReservationCompleted,
}

func (d *Decoder) taskRouterEvent(eventType string, f fields) domain.Event {
	e := domain.Event{Type: taskRouterTypes[eventType]}
	if e.Type == "" {
		e.Type = domain.TwilioEvent
	}
	e.TaskSid, e.ReservationSid, e.WorkerSid = f.get("TaskSid"), f.get("ReservationSid"), f.get("WorkerSid")
	e.WorkflowSid, e.QueueSid = f.get("WorkflowSid"), f.get("TaskQueueSid")
	e.AssignmentStatus, e.CanceledReason = f.get("TaskAssignmentStatus"), f.get("TaskCanceledReason")
	e.TaskChannel, e.QueueName, e.WorkflowName = f.get("TaskChannelUniqueName"), f.get("TaskQueueName"), f.get("WorkflowName")
	if raw := f.get("TaskAttributes"); raw != "" {
		var attrs map[string]any
		if json.Unmarshal([]byte(raw), &attrs) == nil {
			if s, _ := attrs["conversationSid"].(string); isSid(s, "CH") {
				e.ConversationSid = s
			}
			if s, _ := attrs["flexInteractionSid"].(string); isSid(s, "KD") {
				e.InteractionSid = s
			}
			if s, _ := attrs["flexInteractionChannelSid"].(string); isSid(s, "UO") {
				e.ChannelSid = s
			}
			e.ChannelType, _ = attrs["channelType"].(string)
			if from, _ := attrs["from"].(string); from != "" {
				e.Customer = d.pii.Address(from)
			}
			e.TaskAttributes, _ = json.Marshal(d.pseudonymiseJSON(attrs))
		}
	}
	return e
}

// pseudonymiseJSON replaces every string in a decoded JSON value that is
// or contains a phone number or e-mail address.
func (d *Decoder) pseudonymiseJSON(v any) any {
	switch x := v.(type) {
	case string:
		return d.pseudonymiseString(x)
	case map[string]any:
		for k, vv := range x {
			if s, ok := vv.(string); ok {
				x[k] = d.pseudonymiseField(k, s)
				continue
			}
			x[k] = d.pseudonymiseJSON(vv)
		}
		return x
	case []any:
		for i, vv := range x {
			x[i] = d.pseudonymiseJSON(vv)
		}
		return x
	}
	return v
}

// pseudonymiseString replaces a string that is or contains a phone number
// or e-mail address.
func (d *Decoder) pseudonymiseString(x string) string {
	// Only digits or an @ can make a phone number or e-mail address;
	// Twilio SIDs, the commonest strings with digits here, are neither.
	if !strings.ContainsAny(x, "0123456789@") || isTwilioSid(x) || pii.IsPseudonym(x) || isTime(x) {
		return x
	}
	if t := strings.TrimSpace(x); t[0] == '{' || t[0] == '[' {
		// Attributes and media lists: JSON inside a form field or a string.
		if out, err := d.pseudonymiseJSONText(x); err == nil {
			return out
		}
	}
	if p := d.pii.Address(x); p != x {
		return p
	}
	return d.pii.Redact(x)
}

// isTime reports whether s is a date or time as Twilio writes them
// (ISO 8601), whose digits are no phone number.
func isTime(s string) bool {
	if len(s) < 10 || s[4] != '-' || s[7] != '-' {
		return false
	}
	if _, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return true
	}
	_, err := time.Parse("2006-01-02", s)
	return err == nil
}

var conversationsTypes = map[string]string{
	"conversation.added": domain.ConversationAdded, "conversation.updated": domain.ConversationUpdated,
	"conversation-state.updated": domain.ConversationStateChanged, "conversation.removed": domain.ConversationRemoved,
	"participant.added": domain.ParticipantAdded, "participant.updated": domain.ParticipantUpdated,
	"participant.removed": domain.ParticipantRemoved, "message.added": domain.MessageAdded,
	"message.updated": domain.MessageUpdated, "message.removed": domain.MessageRemoved,
	"delivery.updated": domain.DeliveryUpdated,
}

func (d *Decoder) conversationsEvent(name string, f fields) domain.Event {
	e := domain.Event{Type: conversationsTypes[name]}
	if e.Type == "" {
		e.Type = domain.TwilioEvent // pre-events, users, types Twilio adds later
	}
	if s := f.get("ConversationSid"); isSid(s, "CH") {
		e.ConversationSid = s
	}
	e.ChatServiceSid, e.ParticipantSid, e.MessageSid = f.get("ChatServiceSid"), f.get("ParticipantSid"), f.get("MessageSid")
	e.State, e.Reason = f.get("State"), f.get("Reason")
	if to := f.get("StateTo"); to != "" {
		e.State, e.StateFrom = to, f.get("StateFrom")
	}
	for k, v := range f {
		if strings.HasPrefix(k, "Timers.") {
			e.HasTimers = true
			switch strings.TrimPrefix(k, "Timers.") {
			case "DateInactive", "Inactive":
				e.TimerInactive = v
			case "DateClosed", "Closed":
				e.TimerClosed = v
			}
		}
	}
	switch e.Type {
	case domain.ParticipantAdded, domain.ParticipantUpdated, domain.ParticipantRemoved:
		d.participant(&e, f)
	case domain.MessageAdded, domain.MessageUpdated, domain.MessageRemoved:
		if a := f.get("Author"); a != "" {
			e.Author = d.pii.Address(a)
		}
		e.Index, _ = strconv.Atoi(f.get("Index"))
		if n, ok := pii.BodyLength(f.get("Body")); ok {
			e.BodyLength = n // a re-driven record: the text is a pseudonym
		} else {
			e.BodyLength = utf8.RuneCountInString(f.get("Body"))
		}
		if m := f.get("Media"); m != "" {
			var media []any
			if json.Unmarshal([]byte(m), &media) == nil {
				e.MediaCount = len(media)
			}
		}
	case domain.DeliveryUpdated:
		e.DeliveryStatus, e.ErrorCode = f.get("Status"), f.get("ErrorCode")
	}
	return e
}

// participant fills a participant's role, channel and pseudonymised
// identity and address. A messaging binding makes a customer; a chat
// identity is an agent or a bot unless the participant's attributes say
// otherwise (Flex marks them with member_type).
func (d *Decoder) participant(e *domain.Event, f fields) {
	addr := f.get("MessagingBinding.Address")
	if addr != "" {
		e.Address = d.pii.Address(addr)
		e.Role = domain.RoleCustomer
		e.ChannelType = strings.ToLower(f.get("MessagingBinding.Type"))
		if e.ChannelType == "" {
			e.ChannelType = "sms"
			if i := strings.IndexByte(addr, ':'); i > 0 {
				e.ChannelType = addr[:i]
			}
		}
	}
	if id := f.get("Identity"); id != "" {
		kind, _ := pii.PseudonymKind(id)
		e.IdentityPII = pii.IsPhone(id) || pii.IsEmail(id) || kind == pii.KindPhone || kind == pii.KindEmail
		e.Identity = d.pii.Address(id)
		if e.Role == "" {
			e.Role, e.ChannelType = domain.RoleAgent, "chat"
		}
	}
	var attrs struct {
		MemberType string `json:"member_type"`
	}
	if a := f.get("Attributes"); a != "" && json.Unmarshal([]byte(a), &attrs) == nil {
		switch strings.ToLower(attrs.MemberType) {
		case "agent", "worker":
			e.Role = domain.RoleAgent
		case "bot", "system":
			e.Role = domain.RoleBot
		case "customer", "guest":
			e.Role = domain.RoleCustomer
		}
	}
}

// isTwilioSid reports whether s has the shape of any Twilio SID: two
// upper-case letters and 32 hex digits.
func isTwilioSid(s string) bool {
	return len(s) == 34 && s[0] >= 'A' && s[0] <= 'Z' && s[1] >= 'A' && s[1] <= 'Z' && isSid(s, s[:2])
}

func isSid(s, prefix string) bool {
	if len(s) != 34 || !strings.HasPrefix(s, prefix) {
		return false
	}
	for i := 2; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return true
}
