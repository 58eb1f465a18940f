package esserver

import (
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/EventStore/EventStore-Client-Go/v4/protos/streams"

	"github.com/flexstream/flexstream/internal/esstore"
)

// A response says what the client expects, and the wire encoding of an
// event is, byte for byte, protobuf's deterministic encoding of the
// response built as messages: the client cannot tell them apart.
func TestEventMsgEncodesEventResp(t *testing.T) {
	big := make([]byte, 5000) // above gRPC's pooling threshold: a pooled buffer
	for i := range big {
		big[i] = byte(i)
	}
	events := []esstore.RecordedEvent{
		{Stream: "conversation-CH1", Revision: 7, Position: 42, ID: esstore.ID{1, 2, 3}, Type: "ConversationAdded", ContentType: contentJSON,
			Created: time.Date(2026, 11, 25, 8, 0, 0, 123456700, time.UTC), Metadata: []byte(`{"m":1}`), Data: []byte(`{"d":1}`)},
		{Stream: "t", Revision: 0, Position: 0, ID: esstore.ID{9}, Type: "Bin", ContentType: "application/x-other",
			Created: time.Unix(0, 0).UTC()},
		{Stream: "a-much-longer-stream-name-than-before", Revision: 1 << 40, Position: 1 << 50, ID: esstore.ID{0xff, 0xee, 8: 0xff},
			Type: "$>", ContentType: contentBinary, Created: time.Date(2000, 1, 2, 3, 4, 5, 0, time.UTC), Data: []byte("3@x")},
		{Stream: "s", Revision: 1, Position: 2, ID: esstore.ID{15: 1}, Type: "", ContentType: contentJSON,
			Created: time.Date(1960, 1, 1, 0, 0, 0, 0, time.UTC), Metadata: big, Data: big},
		{Stream: "", Revision: ^uint64(0), Position: ^uint64(0) - 1, Type: "x", Created: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), Data: big[:1]},
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
	c := newCodec()
	for _, asString := range []bool{false, true} {
		var m eventMsg // one message for a whole read, as the reader has
		for i := range events {
			want := eventResp(&events[i], nil, asString)
			wb, err := proto.MarshalOptions{Deterministic: true}.Marshal(want)
			if err != nil {
				t.Fatal(err)
			}
			m = eventMsg{e: &events[i], idAsString: asString}
			data, err := c.Marshal(&m)
			if err != nil {
				t.Fatal(err)
			}
			got := data.Materialize()
			data.Free()
			if string(got) != string(wb) {
				t.Fatalf("id as string %v, event %d: wire encoding differs from protobuf's\n got %x\nwant %x", asString, i, got, wb)
			}
			var back streams.ReadResp
			if err := proto.Unmarshal(got, &back); err != nil || !proto.Equal(&back, want) {
				t.Fatalf("id as string %v, event %d: decodes to %v (%v), want %v", asString, i, &back, err, want)
			}
		}
	}
	// Everything else is protobuf's.
	other := streamNotFound("s")
	data, err := c.Marshal(other)
	if err != nil {
		t.Fatal(err)
	}
	var back streams.ReadResp
	if err := c.Unmarshal(data, &back); err != nil || !proto.Equal(&back, other) {
		t.Fatalf("codec round trip: %v (%v)", &back, err)
	}
	if c.Name() != "proto" {
		t.Fatalf("codec name %q: clients send application/grpc+proto", c.Name())
	}
}
