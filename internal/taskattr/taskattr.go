// Package taskattr reads TaskRouter task attributes as Flex hands them
// over: a JSON object, or the same object as a JSON string (both are seen,
// in routing properties and in API answers).
package taskattr

import "encoding/json"

// Of copies task attributes given as an object or as a JSON string;
// anything else (absent, not JSON, not an object) gives an empty object.
// Task attributes are customer data: malformed ones are not an error.
func Of(v any) map[string]any {
	out := map[string]any{}
	switch x := v.(type) {
	case map[string]any:
		for k, val := range x {
			out[k] = val
		}
	case string:
		if json.Unmarshal([]byte(x), &out) != nil || out == nil {
			out = map[string]any{}
		}
	}
	return out
}
