package domain

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"
	"time"
)

// What the store holds is JSON without HTML escaping, and an event stored
// with json.Marshal's escaping (before Encode) reads the same.
func TestEncode(t *testing.T) {
	at := time.Date(2026, 11, 25, 8, 0, 0, 5, time.UTC)
	raw := &Raw{Key: "CH1", Headers: map[string]string{"ce_id": "a&b", "content-type": "application/x-www-form-urlencoded"},
		Value: "AccountSid=AC1&Body=msg%3Aab%3Alen%3D3&TaskAttributes=%7B%22a%22%3A%22%3Cb%3E%22%7D"}
	cases := []struct {
		name string
		e    Event
		m    Metadata
	}{
		{"a form-encoded record", Event{Type: MessageAdded, CEType: "c", At: at, ConversationSid: "CH1", Index: 3, BodyLength: 3},
			Metadata{CorrelationID: "CH1", CausationID: "x<y>&z", Topic: "t", Offset: 7, ReceivedAt: at, Raw: raw}},
		{"task attributes with <, > and &", Event{Type: TaskCreated, At: at, TaskSid: "WT1", TaskAttributes: json.RawMessage(`{"a":"<b>&c","n":[1,2]}`)},
			Metadata{ReceivedAt: at}},
		{"nothing to escape", Event{Type: ConversationAdded, At: at}, Metadata{}},
	}
	for _, c := range cases {
		data, meta, err := Encode(c.e, c.m)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		for _, b := range [][]byte{data, meta} {
			if bytes.Contains(b, []byte(`\u0026`)) || bytes.Contains(b, []byte(`\u003c`)) || bytes.HasSuffix(b, []byte("\n")) {
				t.Fatalf("%s: %s", c.name, b)
			}
		}
		oldData, _ := json.Marshal(c.e)
		oldMeta, _ := json.Marshal(c.m)
		if c.name != "nothing to escape" && len(meta)+len(data) >= len(oldMeta)+len(oldData) {
			t.Fatalf("%s: %d bytes, json.Marshal %d", c.name, len(meta)+len(data), len(oldMeta)+len(oldData))
		}
		for _, stored := range []struct{ data, meta []byte }{{data, meta}, {oldData, oldMeta}} {
			got, err := Decode(c.e.Type, stored.data)
			if err != nil {
				t.Fatal(err)
			}
			want := c.e
			if want.TaskAttributes != nil {
				// Raw JSON comes back compacted, either way.
				got.TaskAttributes, want.TaskAttributes = nil, nil
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("%s: decoded %+v, want %+v", c.name, got, want)
			}
			var m Metadata
			if err := json.Unmarshal(stored.meta, &m); err != nil || !reflect.DeepEqual(m, c.m) {
				t.Fatalf("%s: metadata %+v (%v), want %+v", c.name, m, err, c.m)
			}
		}
	}
	// Decoding into a used Event leaves nothing of the one before.
	used := Event{Type: "X", TaskSid: "WT9", Index: 4, IdentityPII: true, TaskAttributes: json.RawMessage(`{}`)}
	data, _, err := Encode(Event{Type: ConversationAdded, At: at, ConversationSid: "CH2"}, Metadata{})
	if err != nil {
		t.Fatal(err)
	}
	if err := DecodeInto(&used, ConversationAdded, data); err != nil || !reflect.DeepEqual(used, Event{Type: ConversationAdded, At: at, ConversationSid: "CH2"}) {
		t.Fatalf("decoded into a used event: %+v (%v)", used, err)
	}
	for _, bad := range []string{`{"at":`, `{"conversationSid":"CH1"} x`, `{"conversationSid":"CH1"}{}`, ``, `[]`} {
		if err := DecodeInto(&used, ConversationAdded, []byte(bad)); err == nil || !reflect.DeepEqual(used, Event{}) {
			t.Fatalf("%q decoded: %+v (%v)", bad, used, err)
		}
		if _, err := Decode(ConversationAdded, []byte(bad)); err == nil {
			t.Fatalf("%q decoded", bad)
		}
	}
	if _, err := Decode(ConversationAdded, []byte(" {\"conversationSid\":\"CH1\"}\n ")); err != nil {
		t.Fatalf("spaces around an event: %v", err)
	}
	if _, _, err := Encode(Event{Type: "T", TaskAttributes: json.RawMessage(`{bad`)}, Metadata{}); err == nil {
		t.Fatal("invalid task attributes encoded")
	}
}
