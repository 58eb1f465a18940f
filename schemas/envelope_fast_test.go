package schemas

import (
	"testing"
)

func baseEnvelope() map[string]string {
	return map[string]string{
		HeaderSpecVersion: "1.0", HeaderID: "EV0123456789abcdef0123456789abcdef",
		HeaderSource: "https://taskrouter.twilio.com/v1/Workspaces/WS0123456789abcdef0123456789abcdef",
		HeaderType:   "com.twilio.taskrouter.task.created", HeaderTime: "2025-06-02T09:30:00Z",
		HeaderSubject: "WT0123456789abcdef0123456789abcdef", HeaderContentType: ContentTypeForm,
		HeaderFamily: FamilyTaskRouter, HeaderTraceparent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
		HeaderReceivedAt: "2026-11-25T07:40:01.123456789Z",
	}
}

func schemaAccepts(t testing.TB, v *Validator, h map[string]string) bool {
	m := make(map[string]any, len(h))
	for k, val := range h {
		m[k] = val
	}
	return check(v.envelope, familyEnvelope, m) == nil
}

// TestEnvelopeFastPathAgreesWithSchema: whatever the fast path accepts,
// the schema accepts; the shapes ingest writes take the fast path.
func TestEnvelopeFastPathAgreesWithSchema(t *testing.T) {
	v := validator(t)
	es := baseEnvelope()
	es[HeaderFamily], es[HeaderContentType], es[HeaderSource] = FamilyEventStreams, ContentTypeJSON, "AB00000000000000000000000001"
	es[HeaderDataSchema], es[HeaderType] = "https://events-schemas.twilio.com/TaskRouter.WDSEvent/4", "com.twilio.conversations.message.added"
	conv := baseEnvelope()
	conv[HeaderFamily], conv[HeaderType], conv[HeaderSource] = FamilyConversations, "com.twilio.conversations.pre.message.add", "https://conversations.twilio.com/v1/Services/IS0123456789abcdef0123456789abcdef"
	delete(conv, HeaderTime)
	for name, h := range map[string]map[string]string{"taskrouter": baseEnvelope(), "eventstreams": es, "conversations": conv} {
		if !envelopeSurelyValid(h) || !schemaAccepts(t, v, h) {
			t.Errorf("%s: fast %v, schema %v; want both to accept", name, envelopeSurelyValid(h), schemaAccepts(t, v, h))
		}
	}
	mutations := map[string]func(h map[string]string){
		"specversion":          func(h map[string]string) { h[HeaderSpecVersion] = "0.3" },
		"no id":                func(h map[string]string) { delete(h, HeaderID) },
		"empty source":         func(h map[string]string) { h[HeaderSource] = "" },
		"odd source":           func(h map[string]string) { h[HeaderSource] = "http://x/a b" },
		"type of other family": func(h map[string]string) { h[HeaderType] = "com.twilio.conversations.message.added" },
		"wrong content type":   func(h map[string]string) { h[HeaderContentType] = ContentTypeJSON },
		"unknown family":       func(h map[string]string) { h[HeaderFamily] = "voice" },
		"bad time":             func(h map[string]string) { h[HeaderTime] = "yesterday" },
		"leap second":          func(h map[string]string) { h[HeaderTime] = "2016-12-31T23:59:60Z" },
		"offset time":          func(h map[string]string) { h[HeaderTime] = "2025-06-02T09:30:00+02:00" },
		"lower-case t":         func(h map[string]string) { h[HeaderReceivedAt] = "2025-06-02t09:30:00z" },
		"bad traceparent":      func(h map[string]string) { h[HeaderTraceparent] = "00-xyz" },
		"relative dataschema":  func(h map[string]string) { h[HeaderDataSchema] = "/schemas/x" },
		"extra header":         func(h map[string]string) { h["x-other"] = "anything" },
	}
	for name, mutate := range mutations {
		h := baseEnvelope()
		mutate(h)
		if envelopeSurelyValid(h) && !schemaAccepts(t, v, h) {
			t.Errorf("%s: the fast path accepts what the schema refuses", name)
		}
		if (v.ValidateEnvelope(h) == nil) != schemaAccepts(t, v, h) {
			t.Errorf("%s: ValidateEnvelope disagrees with the schema", name)
		}
	}
}

func FuzzEnvelopeFastPath(f *testing.F) {
	b := baseEnvelope()
	f.Add(b[HeaderSource], b[HeaderType], b[HeaderTime], b[HeaderReceivedAt], b[HeaderTraceparent], b[HeaderFamily], b[HeaderContentType], "")
	f.Add("AB1", "com.twilio.conversations.x", "2025-06-02T09:30:00.5+01:00", "2025-06-02T09:30:00Z", "", FamilyEventStreams, ContentTypeJSON, "https://e.x/y")
	v := validator(f)
	f.Fuzz(func(t *testing.T, source, ceType, ceTime, received, trace, family, ct, dataschema string) {
		h := baseEnvelope()
		h[HeaderSource], h[HeaderType], h[HeaderTime], h[HeaderReceivedAt] = source, ceType, ceTime, received
		h[HeaderTraceparent], h[HeaderFamily], h[HeaderContentType] = trace, family, ct
		if dataschema != "" {
			h[HeaderDataSchema] = dataschema
		}
		if envelopeSurelyValid(h) && !schemaAccepts(t, v, h) {
			t.Fatalf("fast path accepts what the schema refuses: %v", h)
		}
	})
}
