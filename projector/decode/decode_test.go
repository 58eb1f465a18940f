package decode_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/flexstream/flexstream/ingest"
	"github.com/flexstream/flexstream/internal/pii"
	"github.com/flexstream/flexstream/internal/twiliotest"
	"github.com/flexstream/flexstream/projector/decode"
	"github.com/flexstream/flexstream/projector/domain"
	"github.com/flexstream/flexstream/schemas"
)

func decoder(t testing.TB) *decode.Decoder {
	t.Helper()
	p, err := pii.New([]byte(strings.Repeat("k", 32)))
	if err != nil {
		t.Fatal(err)
	}
	return decode.New(p, validator(t))
}

func validator(t testing.TB) *schemas.Validator {
	t.Helper()
	v, err := schemas.DefaultValidator()
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// records makes the topic's records of a delivery, as ingest does.
func records(t testing.TB, route ingest.Route, body []byte) []decode.Record {
	t.Helper()
	n, err := ingest.Normalise(ingest.Delivery{Route: route, Body: body, ReceivedAt: time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC), Traceparent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"})
	if err != nil {
		t.Fatal(err)
	}
	out := make([]decode.Record, len(n.Records))
	for i, m := range n.Records {
		out[i] = toRecord(m, int64(i))
	}
	return out
}

func toRecord(m kafka.Message, offset int64) decode.Record {
	h := map[string]string{}
	for _, hd := range m.Headers {
		h[hd.Key] = string(hd.Value)
	}
	return decode.Record{Topic: schemas.DefaultTopic, Partition: 0, Offset: offset, Key: m.Key, Value: m.Value, Headers: h}
}

func TestDecodeFamilies(t *testing.T) {
	d := decoder(t)
	ids := twiliotest.NewIDs(3)
	conv := "conversation-" + ids.Conversation
	cases := []struct {
		name   string
		route  ingest.Route
		body   []byte
		typ    string
		stream string
		check  func(t *testing.T, e domain.Event)
	}{
		{"task canceled", ingest.RouteTaskRouter, []byte(twiliotest.TaskRouterEvent(ids, "task.canceled", twiliotest.WithCanceledReason("Task TTL Exceeded")).Encode()), domain.TaskCanceled, conv, func(t *testing.T, e domain.Event) {
			if e.TaskSid != ids.Task || e.CanceledReason != "Task TTL Exceeded" || e.InteractionSid != ids.Interaction || e.ChannelSid != ids.Channel || e.ChannelType != "whatsapp" {
				t.Errorf("%+v", e)
			}
			if !strings.HasPrefix(e.Customer, "whatsapp:ph:") {
				t.Errorf("customer %q is not a pseudonymised address", e.Customer)
			}
		}},
		{"workflow timeout", ingest.RouteTaskRouter, []byte(twiliotest.TaskRouterEvent(ids, "workflow.timeout").Encode()), domain.WorkflowTimedOut, conv, nil},
		{"reservation rejected", ingest.RouteTaskRouter, []byte(twiliotest.TaskRouterEvent(ids, "reservation.rejected").Encode()), domain.ReservationRejected, conv, func(t *testing.T, e domain.Event) {
			if e.ReservationSid != ids.Reservation || e.WorkerSid != ids.Worker {
				t.Errorf("%+v", e)
			}
		}},
		{"task without conversation", ingest.RouteTaskRouter, []byte(twiliotest.TaskRouterEvent(ids, "task.deleted", twiliotest.WithoutConversation()).Encode()), domain.TaskDeleted, "task-" + ids.Task, nil},
		{"worker event", ingest.RouteTaskRouter, []byte(twiliotest.TaskRouterEvent(ids, "worker.activity.update").Encode()), domain.TwilioEvent, "twilio-" + ids.Worker, nil},
		{"customer joins", ingest.RouteConversations, []byte(twiliotest.ConversationsEvent(ids, "onParticipantAdded").Encode()), domain.ParticipantAdded, conv, func(t *testing.T, e domain.Event) {
			if e.Role != domain.RoleCustomer || e.ChannelType != "whatsapp" || !strings.HasPrefix(e.Address, "whatsapp:ph:") {
				t.Errorf("%+v", e)
			}
		}},
		{"agent joins by identity", ingest.RouteConversations, []byte(twiliotest.ConversationsEvent(ids, "onParticipantAdded", twiliotest.WithChatParticipant(ids, "agent.smith")).Encode()), domain.ParticipantAdded, conv, func(t *testing.T, e domain.Event) {
			if e.Role != domain.RoleAgent || e.Identity != "agent.smith" || e.IdentityPII {
				t.Errorf("%+v", e)
			}
		}},
		{"chat identity that is an e-mail (R6)", ingest.RouteConversations, []byte(twiliotest.ConversationsEvent(ids, "onParticipantAdded", twiliotest.WithChatParticipant(ids, "jane@example.com")).Encode()), domain.ParticipantAdded, conv, func(t *testing.T, e domain.Event) {
			if !e.IdentityPII || strings.Contains(e.Identity, "jane") {
				t.Errorf("%+v", e)
			}
		}},
		{"message", ingest.RouteConversations, []byte(twiliotest.ConversationsEvent(ids, "onMessageAdded", twiliotest.WithBody("call me on +1 555 123 4567")).Encode()), domain.MessageAdded, conv, func(t *testing.T, e domain.Event) {
			if e.MessageSid != ids.Message || e.BodyLength != len("call me on +1 555 123 4567") || !strings.Contains(e.Author, "ph:") {
				t.Errorf("%+v", e)
			}
		}},
		{"closed", ingest.RouteConversations, []byte(twiliotest.ConversationsEvent(ids, "onConversationStateUpdated", twiliotest.WithStateTo("closed")).Encode()), domain.ConversationStateChanged, conv, func(t *testing.T, e domain.Event) {
			if e.State != "closed" || e.StateFrom != "active" {
				t.Errorf("%+v", e)
			}
		}},
		{"pre-event kept as a generic event", ingest.RouteConversations, []byte(twiliotest.ConversationsEvent(ids, "onMessageAdd").Encode()), domain.TwilioEvent, conv, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rec := records(t, c.route, c.body)[0]
			got, err := d.Decode(rec)
			if err != nil {
				t.Fatal(err)
			}
			if got.Event.Type != c.typ || got.Stream != c.stream {
				t.Fatalf("type %s stream %s, want %s %s", got.Event.Type, got.Stream, c.typ, c.stream)
			}
			if got.ID != domain.EventID(rec.Headers["ce_id"], c.stream) || got.Meta.CausationID != rec.Headers["ce_id"] || got.Meta.Offset != rec.Offset {
				t.Errorf("id or metadata: %+v", got.Meta)
			}
			if got.Event.At.IsZero() || got.Meta.ReceivedAt.IsZero() {
				t.Error("no time")
			}
			if c.check != nil {
				c.check(t, got.Event)
			}
			data, _ := json.Marshal(got.Event)
			meta, _ := json.Marshal(got.Meta)
			for _, secret := range []string{strings.TrimPrefix(ids.CustomerPhone, "+"), "555 123 4567", twiliotest.DefaultBody, "jane@example.com", "call me"} {
				if strings.Contains(string(data)+string(meta), secret) {
					t.Errorf("stored event holds PII %q: %s", secret, data)
				}
			}
		})
	}
}

func TestDecodeEventStreams(t *testing.T) {
	d := decoder(t)
	ids := twiliotest.NewIDs(4)
	body := twiliotest.EventStreamsDelivery(ids, twiliotest.EventStreamsEvent{Type: "task.canceled"}, twiliotest.EventStreamsEvent{Type: "message.added"})
	recs := records(t, ingest.RouteEventStreams, body)
	want := []string{domain.TaskCanceled, domain.MessageAdded}
	for i, r := range recs {
		got, err := d.Decode(r)
		if err != nil {
			t.Fatal(err)
		}
		if got.Event.Type != want[i] || got.Stream != "conversation-"+ids.Conversation {
			t.Errorf("%d: %s %s", i, got.Event.Type, got.Stream)
		}
		if data, _ := json.Marshal(got.Event); strings.Contains(string(data), strings.TrimPrefix(ids.CustomerPhone, "+")) {
			t.Errorf("PII in %s", data)
		}
	}
}

func TestDecodeRefusesWhatBreaksTheContract(t *testing.T) {
	d := decoder(t)
	ids := twiliotest.NewIDs(5)
	good := records(t, ingest.RouteTaskRouter, []byte(twiliotest.TaskRouterEvent(ids, "task.created").Encode()))[0]
	mutate := func(f func(r *decode.Record)) decode.Record {
		r := good
		r.Headers = map[string]string{}
		for k, v := range good.Headers {
			r.Headers[k] = v
		}
		f(&r)
		return r
	}
	for name, r := range map[string]decode.Record{
		"no headers":            {Value: good.Value},
		"no ce_id":              mutate(func(r *decode.Record) { delete(r.Headers, "ce_id") }),
		"unknown family":        mutate(func(r *decode.Record) { r.Headers["flexstream_family"] = "voice" }),
		"family and type clash": mutate(func(r *decode.Record) { r.Headers["ce_type"] = "com.twilio.conversations.message.added" }),
		"value not a form":      mutate(func(r *decode.Record) { r.Value = []byte("%zz") }),
		"value without EventType": mutate(func(r *decode.Record) {
			r.Value = []byte("AccountSid=" + ids.Account)
		}),
		"event streams data not JSON": mutate(func(r *decode.Record) {
			r.Headers["flexstream_family"], r.Headers["content-type"] = schemas.FamilyEventStreams, "application/json"
			r.Value = []byte("{")
		}),
	} {
		if _, err := d.Decode(r); !errors.Is(err, decode.ErrUndecodable) {
			t.Errorf("%s: %v, want ErrUndecodable", name, err)
		}
	}
}

func BenchmarkDecode(b *testing.B) {
	d := decoder(b)
	ids := twiliotest.NewIDs(6)
	rec := records(b, ingest.RouteTaskRouter, []byte(twiliotest.TaskRouterEvent(ids, "task.canceled").Encode()))[0]
	for b.Loop() {
		if _, err := d.Decode(rec); err != nil {
			b.Fatal(err)
		}
	}
}
