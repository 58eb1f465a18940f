package api

import (
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strings"
	"testing"
)

type openAPIDoc struct {
	OpenAPI  string                                `json:"openapi"`
	Paths    map[string]map[string]json.RawMessage `json:"paths"`
	Security []map[string][]string                 `json:"security"`
	Comps    struct {
		Parameters map[string]struct {
			Name   string `json:"name"`
			In     string `json:"in"`
			Schema struct {
				Enum    []string `json:"enum"`
				Pattern string   `json:"pattern"`
				Maximum int      `json:"maximum"`
				Default int      `json:"default"`
			} `json:"schema"`
		} `json:"parameters"`
		Responses       map[string]json.RawMessage `json:"responses"`
		Schemas         map[string]json.RawMessage `json:"schemas"`
		SecuritySchemes map[string]json.RawMessage `json:"securitySchemes"`
	} `json:"components"`
}

type operation struct {
	OperationID string `json:"operationId"`
	Parameters  []struct {
		Ref string `json:"$ref"`
	} `json:"parameters"`
	Responses map[string]json.RawMessage `json:"responses"`
	Security  *[]map[string][]string     `json:"security"`
}

func parseOpenAPI(t *testing.T) openAPIDoc {
	t.Helper()
	var doc openAPIDoc
	dec := json.NewDecoder(strings.NewReader(string(openAPI)))
	if err := dec.Decode(&doc); err != nil {
		t.Fatal(err)
	}
	if doc.OpenAPI != "3.1.0" {
		t.Fatalf("openapi %q", doc.OpenAPI)
	}
	return doc
}

// TestOpenAPIMatchesTheMux holds the document and the routes the mux is
// built from together: every route documented, nothing documented that is
// not served, auth as documented.
func TestOpenAPIMatchesTheMux(t *testing.T) {
	doc := parseOpenAPI(t)
	s := &Server{}
	var served, documented []string
	for _, r := range s.routes() {
		served = append(served, r.pattern)
		item, ok := doc.Paths[r.pattern]
		if !ok {
			continue
		}
		var methods []string
		for m := range item {
			methods = append(methods, m)
		}
		if fmt.Sprint(methods) != "[get]" {
			t.Errorf("%s: documented methods %v; only GET is served", r.pattern, methods)
			continue
		}
		var op operation
		if err := json.Unmarshal(item["get"], &op); err != nil {
			t.Fatalf("%s: %v", r.pattern, err)
		}
		if op.OperationID == "" || op.Responses["200"] == nil || op.Responses["405"] == nil {
			t.Errorf("%s: operationId, 200 and 405 are required", r.pattern)
		}
		open := op.Security != nil && len(*op.Security) == 0
		if open != r.open {
			t.Errorf("%s: documented open=%v, served open=%v", r.pattern, open, r.open)
		}
		if (op.Responses["401"] != nil) == r.open {
			t.Errorf("%s: a 401 must be documented exactly where auth applies", r.pattern)
		}
		if strings.Contains(r.pattern, "{sid}") {
			if len(op.Parameters) == 0 {
				t.Errorf("%s: sid parameter not documented", r.pattern)
			}
		}
		for _, p := range op.Parameters {
			name := strings.TrimPrefix(p.Ref, "#/components/parameters/")
			if _, ok := doc.Comps.Parameters[name]; !ok {
				t.Errorf("%s: parameter %s is not in components", r.pattern, p.Ref)
			}
		}
	}
	for p := range doc.Paths {
		documented = append(documented, p)
	}
	sort.Strings(served)
	sort.Strings(documented)
	if fmt.Sprint(served) != fmt.Sprint(documented) {
		t.Errorf("served %v\ndocumented %v", served, documented)
	}
	if len(doc.Security) != 1 || doc.Comps.SecuritySchemes["bearerAuth"] == nil {
		t.Errorf("bearer auth not documented: %v", doc.Security)
	}
	// Every $ref resolves.
	for _, ref := range refs(t, openAPI) {
		parts := strings.Split(strings.TrimPrefix(ref, "#/components/"), "/")
		var found bool
		switch parts[0] {
		case "parameters":
			_, found = doc.Comps.Parameters[parts[1]]
		case "responses":
			_, found = doc.Comps.Responses[parts[1]]
		case "schemas":
			_, found = doc.Comps.Schemas[parts[1]]
		}
		if !found {
			t.Errorf("dangling $ref %s", ref)
		}
	}
}

func refs(t *testing.T, b []byte) []string {
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	var out []string
	var walk func(any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			for k, x := range v {
				if s, ok := x.(string); ok && k == "$ref" {
					out = append(out, s)
				}
				walk(x)
			}
		case []any:
			for _, x := range v {
				walk(x)
			}
		}
	}
	walk(v)
	return out
}

// TestOpenAPIParametersMatchTheCode: the values the document lists are
// the values the handlers accept.
func TestOpenAPIParametersMatchTheCode(t *testing.T) {
	doc := parseOpenAPI(t)
	p := doc.Comps.Parameters
	var queryNames []string
	for _, x := range p {
		if x.In == "query" {
			queryNames = append(queryNames, x.Name)
		}
	}
	slices.Sort(queryNames)
	want := slices.Sorted(slices.Values(conversationParams))
	if fmt.Sprint(queryNames) != fmt.Sprint(want) {
		t.Errorf("documented query parameters %v, accepted %v", queryNames, want)
	}
	if fmt.Sprint(p["state"].Schema.Enum) != fmt.Sprint(states) {
		t.Errorf("state enum %v, code %v", p["state"].Schema.Enum, states)
	}
	if fmt.Sprint(p["flag"].Schema.Enum) != fmt.Sprint(flags) {
		t.Errorf("flag enum %v, code %v", p["flag"].Schema.Enum, flags)
	}
	if p["limit"].Schema.Maximum != MaxLimit || p["limit"].Schema.Default != DefaultLimit {
		t.Errorf("limit %+v", p["limit"].Schema)
	}
	if p["conversationSid"].Schema.Pattern != conversationSID.String() || p["taskSid"].Schema.Pattern != taskSID.String() {
		t.Error("sid patterns differ from the code's")
	}
}

func TestCursorRoundTrip(t *testing.T) {
	q := ConversationQuery{State: "active", Orphaned: new(true), Flag: "pii-identity"}
	for _, store := range []string{"CH00000000000000000000000000000001", "a\x00b", "é/+="} {
		c := wrapCursor(store, q)
		got, err := unwrapCursor(c, q)
		if err != nil || got != store {
			t.Errorf("%q: got %q, %v", store, got, err)
		}
		if _, err := unwrapCursor(c, ConversationQuery{State: "active", Orphaned: new(false), Flag: "pii-identity"}); err == nil {
			t.Errorf("%q: cursor accepted under other filters", store)
		}
	}
}
