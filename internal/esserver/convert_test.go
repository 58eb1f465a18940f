package esserver

import (
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/flexstream/flexstream/internal/esstore"
)

// A response says what the client expects, and a reused one is, event
// after event, exactly the response built afresh: nothing of the previous
// event stays in it.
func TestRespBufferEqualsEventResp(t *testing.T) {
	events := []esstore.RecordedEvent{
		{Stream: "conversation-CH1", Revision: 7, Position: 42, ID: esstore.ID{1, 2, 3}, Type: "ConversationAdded", ContentType: contentJSON,
			Created: time.Date(2026, 11, 25, 8, 0, 0, 123456700, time.UTC), Metadata: []byte(`{"m":1}`), Data: []byte(`{"d":1}`)},
		{Stream: "t", Revision: 0, Position: 43, ID: esstore.ID{9}, Type: "Bin", ContentType: "application/x-other",
			Created: time.Unix(0, 0).UTC()},
		{Stream: "a-much-longer-stream-name-than-before", Revision: 1 << 40, Position: 1 << 50, ID: esstore.ID{0xff, 0xee},
			Type: "$>", ContentType: contentBinary, Created: time.Date(2000, 1, 2, 3, 4, 5, 0, time.UTC), Data: []byte("3@x")},
	}
	// What the client needs, spelled out once: "created" in 100 ns ticks,
	// any content type but JSON reported as bytes, the id as two halves.
	first := eventResp(&events[0], nil, false).GetEvent().GetEvent()
	if m := first.GetMetadata(); m["created"] != "17955936001234567" || m["type"] != "ConversationAdded" || m["content-type"] != contentJSON {
		t.Fatalf("system metadata %v", m)
	}
	if m := eventResp(&events[1], nil, false).GetEvent().GetEvent().GetMetadata(); m["content-type"] != contentBinary || m["created"] != "0" {
		t.Fatalf("system metadata %v", m)
	}
	if id := first.GetId().GetStructured(); id.GetMostSignificantBits() != 0x0102030000000000 || id.GetLeastSignificantBits() != 0 {
		t.Fatalf("id %v", first.GetId())
	}
	if got := eventResp(&events[0], nil, true).GetEvent().GetEvent().GetId().GetString_(); got != "01020300-0000-0000-0000-000000000000" {
		t.Fatalf("id as string %q", got)
	}
	for _, asString := range []bool{false, true} {
		var b respBuffer
		for i := range events {
			e := &events[i]
			got, want := b.event(e, asString), eventResp(e, nil, asString)
			if !proto.Equal(got, want) {
				t.Fatalf("id as string %v, event %d:\n got %v\nwant %v", asString, i, got, want)
			}
			// The bytes on the wire too (map order aside, Deterministic).
			gb, err := proto.MarshalOptions{Deterministic: true}.Marshal(got)
			if err != nil {
				t.Fatal(err)
			}
			wb, err := proto.MarshalOptions{Deterministic: true}.Marshal(want)
			if err != nil {
				t.Fatal(err)
			}
			if string(gb) != string(wb) {
				t.Fatalf("id as string %v, event %d: encodings differ", asString, i)
			}
		}
	}
}
