package decode_test

import (
	"net/url"
	"reflect"
	"strings"
	"testing"

	"github.com/flexstream/flexstream/ingest"
	"github.com/flexstream/flexstream/internal/twiliotest"
	"github.com/flexstream/flexstream/projector/decode"
)

// The stored raw record is what re-drive publishes: it must hold no PII,
// pass the contract, and decode to the very event it was stored with.
func TestRawRecordIsPseudonymisedAndDecodesToTheSameEvent(t *testing.T) {
	d := decoder(t)
	ids := twiliotest.NewIDs(5)
	secrets := []string{strings.TrimPrefix(ids.CustomerPhone, "+"), "555 123 4567", "5551234567", twiliotest.DefaultBody, "jane@example.com", "call me"}
	deliveries := []struct {
		name  string
		route ingest.Route
		body  []byte
	}{
		{"task canceled", ingest.RouteTaskRouter, []byte(twiliotest.TaskRouterEvent(ids, "task.canceled", twiliotest.WithCanceledReason("Task TTL Exceeded")).Encode())},
		{"workflow timeout", ingest.RouteTaskRouter, []byte(twiliotest.TaskRouterEvent(ids, "workflow.timeout").Encode())},
		{"worker event", ingest.RouteTaskRouter, []byte(twiliotest.TaskRouterEvent(ids, "worker.activity.update").Encode())},
		{"customer joins", ingest.RouteConversations, []byte(twiliotest.ConversationsEvent(ids, "onParticipantAdded").Encode())},
		{"identity is an e-mail", ingest.RouteConversations, []byte(twiliotest.ConversationsEvent(ids, "onParticipantAdded", twiliotest.WithChatParticipant(ids, "jane@example.com")).Encode())},
		{"agent", ingest.RouteConversations, []byte(twiliotest.ConversationsEvent(ids, "onParticipantAdded", twiliotest.WithChatParticipant(ids, "agent.smith")).Encode())},
		{"message with a phone number", ingest.RouteConversations, []byte(twiliotest.ConversationsEvent(ids, "onMessageAdded", twiliotest.WithBody("call me on +1 555 123 4567")).Encode())},
		{"message", ingest.RouteConversations, []byte(twiliotest.ConversationsEvent(ids, "onMessageAdded").Encode())},
		{"state", ingest.RouteConversations, []byte(twiliotest.ConversationsEvent(ids, "onConversationStateUpdated", twiliotest.WithStateTo("closed")).Encode())},
		{"pre-event", ingest.RouteConversations, []byte(twiliotest.ConversationsEvent(ids, "onMessageAdd").Encode())},
		{"event streams", ingest.RouteEventStreams, twiliotest.EventStreamsDelivery(ids, twiliotest.EventStreamsEvent{Type: "task.canceled"}, twiliotest.EventStreamsEvent{Type: "message.added"}, twiliotest.EventStreamsEvent{Type: "participant.added"})},
	}
	for _, c := range deliveries {
		t.Run(c.name, func(t *testing.T) {
			for i, rec := range records(t, c.route, c.body) {
				first, err := d.Decode(rec)
				if err != nil {
					t.Fatal(err)
				}
				raw := first.Meta.Raw
				if raw == nil {
					t.Fatal("no raw record kept")
				}
				plain, err := url.QueryUnescape(raw.Value)
				if err != nil {
					plain = raw.Value
				}
				for _, s := range secrets {
					if strings.Contains(raw.Value, s) || strings.Contains(plain, s) {
						t.Errorf("%d: raw value holds PII %q: %s", i, s, plain)
					}
				}
				for k, v := range rec.Headers {
					if raw.Headers[k] != v {
						t.Errorf("%d: header %s = %q, want %q", i, k, raw.Headers[k], v)
					}
				}
				if raw.Key != string(rec.Key) {
					t.Errorf("%d: key %q, want %q", i, raw.Key, rec.Key)
				}
				again, err := d.Decode(decode.Record{Topic: "redriven", Partition: 3, Offset: 99, Key: []byte(raw.Key), Value: []byte(raw.Value), Headers: raw.Headers})
				if err != nil {
					t.Fatalf("%d: the raw record does not decode: %v", i, err)
				}
				if again.Stream != first.Stream || again.ID != first.ID || !reflect.DeepEqual(again.Event, first.Event) {
					t.Errorf("%d: raw record decodes to\n%s %s %+v\nnot\n%s %s %+v", i, again.Stream, again.ID, again.Event, first.Stream, first.ID, first.Event)
				}
				if again.Meta.Raw.Value != raw.Value {
					t.Errorf("%d: pseudonymising twice changed the value:\n%s\n%s", i, again.Meta.Raw.Value, raw.Value)
				}
			}
		})
	}
}

// Every value that could hold PII is pseudonymised, whichever field it is
// in: a form field Twilio adds later is covered too.
func TestRawRecordPseudonymisesUnknownFields(t *testing.T) {
	d := decoder(t)
	ids := twiliotest.NewIDs(6)
	form := twiliotest.ConversationsEvent(ids, "onConversationAdded")
	form.Set("FriendlyName", "+44 20 7946 0958")
	form.Set("SomethingNew", `{"contact":{"mail":"bob@example.org","note":"ring 07700 900123"},"n":12345678901234567890}`)
	rec := records(t, ingest.RouteConversations, []byte(form.Encode()))[0]
	got, err := d.Decode(rec)
	if err != nil {
		t.Fatal(err)
	}
	v, err := url.ParseQuery(got.Meta.Raw.Value)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"7946", "bob@", "example.org", "900123"} {
		if strings.Contains(v.Encode(), s) || strings.Contains(v.Get("SomethingNew")+v.Get("FriendlyName"), s) {
			t.Errorf("PII %q left in %v", s, v)
		}
	}
	if !strings.Contains(v.Get("SomethingNew"), "12345678901234567890") {
		t.Errorf("a JSON number was changed: %s", v.Get("SomethingNew"))
	}
	if v.Get("ConversationSid") != ids.Conversation || v.Get("EventType") != "onConversationAdded" {
		t.Errorf("non-PII fields changed: %v", v)
	}
	if err := validator(t).ValidateConversationsForm(v); err != nil {
		t.Errorf("pseudonymised form breaks the contract: %v", err)
	}
}

// A chat identity with a long run of digits is no phone number: the
// event keeps it, and so must the record, or a re-driven record would
// decode to another event.
func TestRawRecordTreatsAddressesAsTheEventDoes(t *testing.T) {
	d := decoder(t)
	ids := twiliotest.NewIDs(7)
	rec := records(t, ingest.RouteConversations, []byte(twiliotest.ConversationsEvent(ids, "onParticipantAdded", twiliotest.WithChatParticipant(ids, "guest-3a4b9253682714b6")).Encode()))[0]
	first, err := d.Decode(rec)
	if err != nil {
		t.Fatal(err)
	}
	v, _ := url.ParseQuery(first.Meta.Raw.Value)
	if v.Get("Identity") != "guest-3a4b9253682714b6" || first.Event.Identity != "guest-3a4b9253682714b6" {
		t.Fatalf("identity %q in the record, %q in the event", v.Get("Identity"), first.Event.Identity)
	}
}
