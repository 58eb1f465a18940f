package ingest_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/flexstream/flexstream/ingest"
	"github.com/flexstream/flexstream/internal/twiliotest"
	"github.com/flexstream/flexstream/schemas"
)

var received = time.Date(2026, 11, 25, 8, 0, 0, 0, time.UTC)

func normalise(t *testing.T, route ingest.Route, body []byte, token string) ingest.Normalised {
	t.Helper()
	n, err := ingest.Normalise(ingest.Delivery{Route: route, Body: body, IdempotencyToken: token, Traceparent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", ReceivedAt: received})
	if err != nil {
		t.Fatalf("Normalise: %v", err)
	}
	return n
}

func TestNormaliseKeysAndIDs(t *testing.T) {
	ids := twiliotest.NewIDs(1)
	other := twiliotest.NewIDs(2)
	evSid := "EV" + strings.Repeat("c", 32)
	cases := []struct {
		name       string
		route      ingest.Route
		form       url.Values
		token      string
		key, id    string
		ceType     string
		pre        bool
		wantTimeOf string // a form field whose time ce_time must be; "" = received
	}{
		{"task with conversation in attributes", ingest.RouteTaskRouter, twiliotest.TaskRouterEvent(ids, "task.created"), "tok", ids.Conversation, "tok", "com.twilio.taskrouter.task.created", false, "Timestamp"},
		{"Sid wins over the token", ingest.RouteTaskRouter, twiliotest.TaskRouterEvent(ids, "reservation.rejected", twiliotest.WithEventSid(evSid)), "tok", ids.Conversation, evSid, "com.twilio.taskrouter.reservation.rejected", false, "Timestamp"},
		{"task without conversation: task SID", ingest.RouteTaskRouter, twiliotest.TaskRouterEvent(other, "task.canceled", twiliotest.WithoutConversation()), "t2", other.Task, "t2", "com.twilio.taskrouter.task.canceled", false, "Timestamp"},
		{"attributes that are not JSON: task SID", ingest.RouteTaskRouter, twiliotest.TaskRouterEvent(other, "task.deleted", twiliotest.WithTaskAttributes("{not json")), "t3", other.Task, "t3", "com.twilio.taskrouter.task.deleted", false, "Timestamp"},
		{"conversation SID in attributes that is not a SID: task SID", ingest.RouteTaskRouter, twiliotest.TaskRouterEvent(other, "workflow.timeout", twiliotest.WithTaskAttribute("conversationSid", "+15551234567")), "t4", other.Task, "t4", "com.twilio.taskrouter.workflow.timeout", false, "Timestamp"},
		{"worker event: resource SID", ingest.RouteTaskRouter, twiliotest.TaskRouterEvent(ids, "worker.activity.update"), "t5", ids.Worker, "t5", "com.twilio.taskrouter.worker.activity.update", false, "Timestamp"},
		{"millisecond timestamp", ingest.RouteTaskRouter, twiliotest.TaskRouterEvent(ids, "task.completed", twiliotest.WithTimestampMillis(time.Date(2025, 6, 2, 9, 31, 0, 500e6, time.UTC))), "t6", ids.Conversation, "t6", "com.twilio.taskrouter.task.completed", false, "Timestamp"},
		{"conversation post-event", ingest.RouteConversations, twiliotest.ConversationsEvent(ids, "onConversationStateUpdated", twiliotest.WithStateTo("closed")), "c1", ids.Conversation, "c1", "com.twilio.conversations.conversation-state.updated", false, "DateUpdated"},
		{"pre-event", ingest.RouteConversations, twiliotest.ConversationsEvent(ids, "onMessageAdd"), "c2", ids.Conversation, "c2", "com.twilio.conversations.pre.message.add", true, ""},
		{"EventType Twilio added later", ingest.RouteConversations, twiliotest.ConversationsEvent(ids, "onMessageAdded", twiliotest.Set("EventType", "onMessageReactionAdded")), "c3", ids.Conversation, "c3", "com.twilio.conversations.message-reaction.added", false, "DateCreated"},
		{"pre-event Twilio added later", ingest.RouteConversations, twiliotest.ConversationsEvent(ids, "onMessageAdd", twiliotest.Set("EventType", "onMessageReactionAdd")), "c4", ids.Conversation, "c4", "com.twilio.conversations.pre.message-reaction.add", true, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			body := []byte(c.form.Encode())
			n := normalise(t, c.route, body, c.token)
			if len(n.Records) != 1 {
				t.Fatalf("%d records", len(n.Records))
			}
			r := n.Records[0]
			hd := headerMap(r)
			if string(r.Key) != c.key || hd["ce_id"] != c.id || hd["ce_type"] != c.ceType || n.PreEvent != c.pre {
				t.Errorf("key %s id %s type %s pre %v; want %s %s %s %v", r.Key, hd["ce_id"], hd["ce_type"], n.PreEvent, c.key, c.id, c.ceType, c.pre)
			}
			if !bytes.Equal(r.Value, body) {
				t.Error("value is not the body")
			}
			wantTime := received
			if c.wantTimeOf != "" {
				v := c.form.Get(c.wantTimeOf)
				var err error
				if c.wantTimeOf == "Timestamp" {
					wantTime, err = epoch(v)
				} else {
					wantTime, err = time.Parse(time.RFC3339Nano, v)
				}
				if err != nil {
					t.Fatal(err)
				}
			}
			got, err := time.Parse(time.RFC3339Nano, hd["ce_time"])
			if err != nil || !got.Equal(wantTime) {
				t.Errorf("ce_time %q, want %s", hd["ce_time"], wantTime)
			}
			if err := mustValidator(t).ValidateEnvelope(hd); err != nil {
				t.Errorf("envelope: %v", err)
			}
		})
	}
}

func epoch(s string) (time.Time, error) {
	var n int64
	for _, c := range s {
		n = n*10 + int64(c-'0')
	}
	if len(s) >= 13 {
		return time.UnixMilli(n), nil
	}
	return time.Unix(n, 0), nil
}

// A retry carries the same body: without Sid or token its id is the
// same, and another event's is not.
func TestNormaliseDigestIDIsStableAcrossRetries(t *testing.T) {
	ids := twiliotest.NewIDs(4)
	a := []byte(twiliotest.ConversationsEvent(ids, "onMessageAdded").Encode())
	b := []byte(twiliotest.ConversationsEvent(ids, "onMessageAdded", twiliotest.WithIndex(1), twiliotest.WithMessageSid(ids.SID("IM", "second"))).Encode())
	id := func(body []byte) string {
		return headerMap(normalise(t, ingest.RouteConversations, body, "").Records[0])["ce_id"]
	}
	retry := append([]byte(nil), a...)
	if id(a) != id(retry) {
		t.Error("the same delivery got two ids")
	}
	if id(a) == id(b) {
		t.Error("two messages got one id")
	}
	if len(id(a)) != 64 {
		t.Errorf("digest id %q is not hex SHA-256", id(a))
	}
}

func TestNormaliseEventStreams(t *testing.T) {
	ids := twiliotest.NewIDs(5)
	body := twiliotest.EventStreamsDelivery(ids,
		twiliotest.EventStreamsEvent{Type: "task.canceled"},
		twiliotest.EventStreamsEvent{Type: "message.added"},
		twiliotest.EventStreamsEvent{Type: "participant.added"})
	n := normalise(t, ingest.RouteEventStreams, body, "ignored")
	var elems []struct {
		ID, Type, Source, Time, DataSchema string
		Data                               json.RawMessage
	}
	if err := json.Unmarshal(body, &elems); err != nil {
		t.Fatal(err)
	}
	if len(n.Records) != 3 || n.PreEvent {
		t.Fatalf("%d records, pre %v", len(n.Records), n.PreEvent)
	}
	for i, r := range n.Records {
		hd := headerMap(r)
		e := elems[i]
		if hd["ce_id"] != e.ID || hd["ce_type"] != e.Type || hd["ce_source"] != e.Source || hd["ce_dataschema"] != e.DataSchema {
			t.Errorf("record %d headers %v do not carry element %+v", i, hd, e)
		}
		if string(r.Key) != ids.Conversation {
			t.Errorf("record %d key %s, want the conversation", i, r.Key)
		}
		if !bytes.Equal(r.Value, e.Data) || hd["content-type"] != "application/json" {
			t.Errorf("record %d value is not the element's data bytes", i)
		}
	}
}

func TestNormaliseRefusesMalformed(t *testing.T) {
	ids := twiliotest.NewIDs(6)
	tr := twiliotest.TaskRouterEvent(ids, "task.created")
	cases := []struct {
		name  string
		route ingest.Route
		body  string
	}{
		{"form that does not parse", ingest.RouteTaskRouter, "EventType=%zz"},
		{"TaskRouter without EventType", ingest.RouteTaskRouter, url.Values{"AccountSid": {ids.Account}}.Encode()},
		{"TaskRouter EventType of another shape", ingest.RouteTaskRouter, withField(tr, "EventType", "onMessageAdded")},
		{"TaskRouter without ResourceSid", ingest.RouteTaskRouter, withField(tr, "ResourceSid", "")},
		{"Conversations EventType of another shape", ingest.RouteConversations, withField(twiliotest.ConversationsEvent(ids, "onMessageAdded"), "EventType", "message.added")},
		{"Conversations without AccountSid", ingest.RouteConversations, withField(twiliotest.ConversationsEvent(ids, "onMessageAdded"), "AccountSid", "")},
		{"Event Streams object, not array", ingest.RouteEventStreams, `{"id":"x"}`},
		{"Event Streams empty array", ingest.RouteEventStreams, `[]`},
		{"Event Streams element without id", ingest.RouteEventStreams, `[{"specversion":"1.0","type":"com.twilio.taskrouter.task.created","source":"s","data":{}}]`},
		{"Event Streams of another product", ingest.RouteEventStreams, `[{"specversion":"1.0","id":"a","type":"com.twilio.voice.call.completed","source":"s","data":{}}]`},
		{"Event Streams truncated", ingest.RouteEventStreams, `[{"specversion":"1.0",`},
		{"unknown route", ingest.Route("voice"), tr.Encode()},
	}
	for _, c := range cases {
		_, err := ingest.Normalise(ingest.Delivery{Route: c.route, Body: []byte(c.body), ReceivedAt: received})
		if !errors.Is(err, ingest.ErrMalformed) {
			t.Errorf("%s: %v, want ErrMalformed", c.name, err)
		}
	}
}

func withField(form url.Values, k, v string) string {
	c := url.Values{}
	for key, vals := range form {
		c[key] = vals
	}
	if v == "" {
		c.Del(k)
	} else {
		c.Set(k, v)
	}
	return c.Encode()
}

// checkRecord is what every record Normalise returns must satisfy, whatever
// the input: the fuzz targets' invariant.
func checkRecord(t *testing.T, route ingest.Route, body []byte, r kafka.Message) {
	hd := headerMap(r)
	for _, k := range []string{"ce_specversion", "ce_id", "ce_type", "ce_source", "ce_time", "content-type", "flexstream_family", "flexstream_received_at"} {
		if hd[k] == "" {
			t.Fatalf("record lacks %s: %v", k, hd)
		}
	}
	if route != ingest.RouteEventStreams && !bytes.Equal(r.Value, body) {
		t.Fatal("form record value differs from the body")
	}
	if route == ingest.RouteEventStreams && !json.Valid(r.Value) {
		t.Fatal("Event Streams record value is not JSON")
	}
	if err := mustValidator(t).ValidateEnvelope(hd); err != nil {
		t.Fatalf("envelope: %v", err)
	}
}

func fuzzRoute(f *testing.F, route ingest.Route, seeds ...[]byte) {
	for _, s := range seeds {
		f.Add(s, "")
	}
	f.Fuzz(func(t *testing.T, body []byte, token string) {
		n, err := ingest.Normalise(ingest.Delivery{Route: route, Body: body, IdempotencyToken: token, ReceivedAt: received})
		if err != nil {
			if !errors.Is(err, ingest.ErrMalformed) {
				t.Fatalf("error not ErrMalformed: %v", err)
			}
			return
		}
		if len(n.Records) == 0 {
			t.Fatal("accepted without records")
		}
		for _, r := range n.Records {
			checkRecord(t, route, body, r)
		}
	})
}

func FuzzNormaliseTaskRouter(f *testing.F) {
	ids := twiliotest.NewIDs(30)
	var seeds [][]byte
	for _, et := range twiliotest.TaskRouterEventTypes() {
		seeds = append(seeds, []byte(twiliotest.TaskRouterEvent(ids, et).Encode()))
	}
	fuzzRoute(f, ingest.RouteTaskRouter, seeds...)
}

func FuzzNormaliseConversations(f *testing.F) {
	ids := twiliotest.NewIDs(31)
	var seeds [][]byte
	for _, et := range schemas.ConversationsEventTypes() {
		seeds = append(seeds, []byte(twiliotest.ConversationsEvent(ids, et).Encode()))
	}
	fuzzRoute(f, ingest.RouteConversations, seeds...)
}

func FuzzNormaliseEventStreams(f *testing.F) {
	ids := twiliotest.NewIDs(32)
	fuzzRoute(f, ingest.RouteEventStreams,
		twiliotest.EventStreamsDelivery(ids, twiliotest.EventStreamsEvent{Type: "task.canceled"}, twiliotest.EventStreamsEvent{Type: "message.added"}),
		twiliotest.EventStreamsDelivery(ids, twiliotest.EventStreamsEvent{Type: "reservation.rejected"}))
}

func mustValidator(t *testing.T) *schemas.Validator {
	t.Helper()
	v, err := schemas.DefaultValidator()
	if err != nil {
		t.Fatal(err)
	}
	return v
}
