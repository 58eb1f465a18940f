package domain_test

import (
	"reflect"
	"testing"

	"github.com/flexstream/flexstream/internal/projectorbench"
	"github.com/flexstream/flexstream/projector/domain"
)

// DecodeInto, sharing the payload's memory, reads every kind of event of
// realistic lifecycles exactly as Decode does.
func TestDecodeIntoIsDecode(t *testing.T) {
	evs, err := projectorbench.Workload(1, 40)
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[string]bool{}
	var into domain.Event
	for _, d := range evs {
		data, _, err := domain.Encode(d.Event, d.Meta)
		if err != nil {
			t.Fatal(err)
		}
		want, err := domain.Decode(d.Event.Type, data)
		if err != nil {
			t.Fatal(err)
		}
		if err := domain.DecodeInto(&into, d.Event.Type, data); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(into, want) {
			t.Fatalf("%s:\nDecodeInto %+v\nDecode     %+v", d.Event.Type, into, want)
		}
		kinds[d.Event.Type] = true
	}
	if len(kinds) < 10 {
		t.Fatalf("only %d kinds of event: %v", len(kinds), kinds)
	}
}
