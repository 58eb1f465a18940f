package taskattr

import (
	"reflect"
	"testing"
)

func TestOf(t *testing.T) {
	obj := map[string]any{"from": "whatsapp:+1555", "n": 1.0}
	for _, tc := range []struct {
		name string
		in   any
		want map[string]any
	}{
		{"object", obj, obj},
		{"JSON string", `{"from":"whatsapp:+1555","n":1}`, obj},
		{"not JSON", "{", map[string]any{}},
		{"JSON null", "null", map[string]any{}},
		{"JSON array", "[1]", map[string]any{}},
		{"absent", nil, map[string]any{}},
		{"number", 3.0, map[string]any{}},
	} {
		if got := Of(tc.in); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: got %v, want %v", tc.name, got, tc.want)
		}
	}
	got := Of(obj)
	got["x"] = 1
	if _, ok := obj["x"]; ok {
		t.Error("Of must copy, not alias, an object")
	}
}
