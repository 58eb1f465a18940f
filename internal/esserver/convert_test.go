package esserver

import (
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/flexstream/flexstream/internal/esstore"
)

// A reused response is, event after event, exactly the response built
// afresh: nothing of the previous event stays in it.
func TestRespBufferEqualsEventResp(t *testing.T) {
	events := []esstore.RecordedEvent{
		{Stream: "conversation-CH1", Revision: 7, Position: 42, ID: esstore.ID{1, 2, 3}, Type: "ConversationAdded", ContentType: contentJSON,
			Created: time.Date(2026, 11, 25, 8, 0, 0, 123456700, time.UTC), Metadata: []byte(`{"m":1}`), Data: []byte(`{"d":1}`)},
		{Stream: "t", Revision: 0, Position: 43, ID: esstore.ID{9}, Type: "Bin", ContentType: "application/x-other",
			Created: time.Unix(0, 0).UTC()},
		{Stream: "a-much-longer-stream-name-than-before", Revision: 1 << 40, Position: 1 << 50, ID: esstore.ID{0xff, 0xee},
			Type: "$>", ContentType: contentBinary, Created: time.Date(2000, 1, 2, 3, 4, 5, 0, time.UTC), Data: []byte("3@x")},
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
