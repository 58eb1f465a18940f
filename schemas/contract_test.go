package schemas

import (
	"encoding/json"
	"reflect"
	"slices"
	"strings"
	"testing"
)

func loadSchema(t *testing.T, name string) map[string]any {
	t.Helper()
	b, ok := Schemas()[name]
	if !ok {
		t.Fatalf("no schema %s", name)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return m
}

func strs(v any) []string {
	var out []string
	for _, x := range v.([]any) {
		out = append(out, x.(string))
	}
	return out
}

func props(s map[string]any) map[string]any { return s["properties"].(map[string]any) }

func TestSchemaFiles(t *testing.T) {
	files := Schemas()
	want := []string{SchemaConversations, SchemaEnvelope, SchemaEventStreams, SchemaTaskRouter}
	var got []string
	for name := range files {
		got = append(got, name)
	}
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Fatalf("schema files %v, want %v", got, want)
	}
	for _, name := range want {
		s := loadSchema(t, name)
		if s["$id"] != SchemaBaseURL+name || s["$schema"] != "https://json-schema.org/draft/2020-12/schema" {
			t.Errorf("%s: $id %v, $schema %v", name, s["$id"], s["$schema"])
		}
		if s["title"] == "" || s["title"] == nil || s["description"] == nil {
			t.Errorf("%s: no title or description", name)
		}
		// Every described property says what it is.
		walkProperties(s, func(path string, p map[string]any) {
			if _, ok := p["description"]; !ok {
				t.Errorf("%s: property %s has no description", name, path)
			}
		}, name)
	}
	// Callers may change what Schemas returns without affecting others.
	files[SchemaEnvelope][0] = 'x'
	if Schemas()[SchemaEnvelope][0] != '{' {
		t.Fatal("Schemas shares its bytes")
	}
}

func walkProperties(s map[string]any, f func(string, map[string]any), path string) {
	for k, v := range s {
		switch k {
		case "properties":
			for name, p := range v.(map[string]any) {
				pm := p.(map[string]any)
				// Properties inside if/then only narrow ones described elsewhere.
				if !strings.Contains(path, "/if") && !strings.Contains(path, "/then") {
					f(path+"/"+name, pm)
				}
				walkProperties(pm, f, path+"/"+name)
			}
		default:
			switch c := v.(type) {
			case map[string]any:
				walkProperties(c, f, path+"/"+k)
			case []any:
				for _, x := range c {
					if m, ok := x.(map[string]any); ok {
						walkProperties(m, f, path+"/"+k)
					}
				}
			}
		}
	}
}

// The EventType examples must list exactly the EventTypes the contract
// names: add a new one to both.
func TestConversationsEventTypeEnumInSync(t *testing.T) {
	s := loadSchema(t, SchemaConversations)
	enum := strs(props(s)["EventType"].(map[string]any)["examples"])
	known := ConversationsEventTypes()
	slices.Sort(known)
	sorted := slices.Clone(enum)
	slices.Sort(sorted)
	if !slices.Equal(sorted, known) {
		t.Fatalf("EventType enum %v\nConversationsEventTypes %v", sorted, known)
	}
	if len(slices.Compact(sorted)) != len(enum) {
		t.Fatal("EventType enum has duplicates")
	}
}

func TestRequiredInSync(t *testing.T) {
	if got := strs(loadSchema(t, SchemaTaskRouter)["required"]); !slices.Equal(got, TaskRouterRequired) {
		t.Errorf("taskrouter required %v, want %v", got, TaskRouterRequired)
	}
	if got := strs(loadSchema(t, SchemaConversations)["required"]); !slices.Equal(got, ConversationsRequired) {
		t.Errorf("conversations required %v, want %v", got, ConversationsRequired)
	}
	env := loadSchema(t, SchemaEnvelope)
	p := props(env)
	for _, h := range []string{HeaderSpecVersion, HeaderID, HeaderSource, HeaderType, HeaderTime, HeaderSubject,
		HeaderDataSchema, HeaderContentType, HeaderTraceparent, HeaderReceivedAt, HeaderFamily} {
		if _, ok := p[h]; !ok {
			t.Errorf("envelope: no header %s", h)
		}
	}
	if got := strs(p[HeaderFamily].(map[string]any)["enum"]); !slices.Equal(got, []string{FamilyTaskRouter, FamilyConversations, FamilyEventStreams}) {
		t.Errorf("family enum %v", got)
	}
	if got := strs(p[HeaderContentType].(map[string]any)["enum"]); !slices.Equal(got, []string{ContentTypeForm, ContentTypeJSON}) {
		t.Errorf("content-type enum %v", got)
	}
	if p[HeaderSpecVersion].(map[string]any)["const"] != SpecVersion {
		t.Error("specversion const")
	}
	if s := loadSchema(t, SchemaEventStreams); s["$defs"].(map[string]any)["cloudEvent"].(map[string]any)["properties"].(map[string]any)["specversion"].(map[string]any)["const"] != SpecVersion {
		t.Error("eventstreams specversion const")
	}
}

// Every field of the Go types is described under the name Twilio sends.
func TestSchemasDescribeGoFields(t *testing.T) {
	tr := props(loadSchema(t, SchemaTaskRouter))
	for _, f := range reflect.VisibleFields(reflect.TypeFor[TaskRouterCallback]()) {
		if _, ok := tr[f.Name]; !ok {
			t.Errorf("taskrouter schema lacks %s", f.Name)
		}
	}
	ta := loadSchema(t, SchemaTaskRouter)["$defs"].(map[string]any)["taskAttributes"].(map[string]any)
	for _, f := range reflect.VisibleFields(reflect.TypeFor[TaskAttributes]()) {
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if _, ok := props(ta)[name]; !ok {
			t.Errorf("taskAttributes schema lacks %s", name)
		}
	}
	cv := props(loadSchema(t, SchemaConversations))
	for _, f := range reflect.VisibleFields(reflect.TypeFor[ConversationsWebhook]()) {
		name := f.Name
		if b, ok := strings.CutPrefix(name, "Binding"); ok {
			name = "MessagingBinding." + b
		}
		if _, ok := cv[name]; !ok {
			t.Errorf("conversations schema lacks %s", name)
		}
	}
	defs := loadSchema(t, SchemaEventStreams)["$defs"].(map[string]any)
	ce := props(defs["cloudEvent"].(map[string]any))
	for _, f := range reflect.VisibleFields(reflect.TypeFor[CloudEvent]()) {
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if _, ok := ce[name]; !ok {
			t.Errorf("cloudEvent schema lacks %s", name)
		}
	}
	trd := props(defs["taskrouterData"].(map[string]any))
	for _, f := range reflect.VisibleFields(reflect.TypeFor[EventStreamsTaskRouterData]()) {
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if _, ok := trd[name]; !ok {
			t.Errorf("taskrouterData schema lacks %s", name)
		}
	}
	pl := props(trd["payload"].(map[string]any))
	for _, f := range reflect.VisibleFields(reflect.TypeFor[EventStreamsTaskRouterData]().Field(3).Type) {
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if _, ok := pl[name]; !ok {
			t.Errorf("taskrouterData payload schema lacks %s", name)
		}
	}
	cd := props(defs["conversationsData"].(map[string]any))
	for _, f := range reflect.VisibleFields(reflect.TypeFor[EventStreamsConversationsData]()) {
		if _, ok := cd[f.Tag.Get("json")]; !ok {
			t.Errorf("conversationsData schema lacks %s", f.Tag.Get("json"))
		}
	}
}

func TestTaskRouterType(t *testing.T) {
	for et, want := range map[string]string{
		"task.canceled":        "com.twilio.taskrouter.task.canceled",
		"reservation.rejected": "com.twilio.taskrouter.reservation.rejected",
		"workflow.timeout":     "com.twilio.taskrouter.workflow.timeout",
	} {
		if got := TaskRouterType(et); got != want {
			t.Errorf("TaskRouterType(%q) = %q, want %q", et, got, want)
		}
	}
}

func TestConversationsType(t *testing.T) {
	for et, want := range map[string]string{
		"onMessageAdded":             "com.twilio.conversations.message.added",
		"onConversationStateUpdated": "com.twilio.conversations.conversation-state.updated",
		"onParticipantAdded":         "com.twilio.conversations.participant.added",
		"onDeliveryUpdated":          "com.twilio.conversations.delivery.updated",
		"onMessageAdd":               "com.twilio.conversations.pre.message.add",
		"onUserUpdate":               "com.twilio.conversations.pre.user.update",
	} {
		if got, ok := ConversationsType(et); !ok || got != want {
			t.Errorf("ConversationsType(%q) = %q, %v; want %q", et, got, ok, want)
		}
	}
	for _, et := range []string{"", "message.added", "onmessageadded", "on", "onMessage Added"} {
		if got, ok := ConversationsType(et); ok || got != "" {
			t.Errorf("ConversationsType(%q) = %q, %v; want not an EventType", et, got, ok)
		}
	}
	// EventTypes Twilio may add later keep the convention.
	for et, want := range map[string]string{
		"onMessageExploded":     "com.twilio.conversations.message.exploded",
		"onConversationArchive": "com.twilio.conversations.pre.conversation.archive",
		"onUserBindingAdded":    "com.twilio.conversations.user-binding.added",
		"onPing":                "com.twilio.conversations.ping",
	} {
		if got, ok := ConversationsType(et); !ok || got != want || KnownConversationsEventType(et) {
			t.Errorf("ConversationsType(%q) = %q, %v (known %v); want %q, derived", et, got, ok, KnownConversationsEventType(et), want)
		}
	}
	seen := map[string]string{}
	for _, et := range ConversationsEventTypes() {
		ceType, ok := ConversationsType(et)
		if !ok || !strings.HasPrefix(ceType, TypePrefixConversations) {
			t.Errorf("%s → %q", et, ceType)
		}
		if prev, dup := seen[ceType]; dup {
			t.Errorf("%s and %s share ce_type %s", et, prev, ceType)
		}
		seen[ceType] = et
		// Pre-events are the present-tense EventTypes, and only they get
		// the pre prefix.
		pre := !strings.HasSuffix(et, "ed")
		if IsPreEvent(et) != pre || strings.HasPrefix(ceType, TypePrefixConversationsPre) != pre {
			t.Errorf("%s: IsPreEvent %v, ce_type %s", et, IsPreEvent(et), ceType)
		}
	}
	if len(seen) != 23 {
		t.Errorf("%d EventTypes", len(seen))
	}
}

func TestIsPreEvent(t *testing.T) {
	for et, want := range map[string]bool{
		"onMessageAdd": true, "onConversationUpdate": true, "onParticipantRemove": true,
		"onMessageAdded": false, "onConversationStateUpdated": false, "onDeliveryUpdated": false,
		"onMessageExploded": false, "": false, "onConversationArchive": true,
	} {
		if got := IsPreEvent(et); got != want {
			t.Errorf("IsPreEvent(%q) = %v, want %v", et, got, want)
		}
	}
}

func TestAttributes(t *testing.T) {
	cb, err := ParseTaskRouter(taskCreated)
	if err != nil {
		t.Fatal(err)
	}
	a, err := cb.Attributes()
	if err != nil {
		t.Fatal(err)
	}
	want := TaskAttributes{ConversationSid: conversationSid, FlexInteractionSid: interactionSid, FlexInteractionChannelSid: channelSid,
		ChannelType: "whatsapp", From: customerPhone, Direction: "inbound", CustomerName: "Ada Lovelace"}
	if a != want {
		t.Fatalf("Attributes = %+v, want %+v", a, want)
	}
	if a, err := (TaskRouterCallback{}).Attributes(); err != nil || a != (TaskAttributes{}) {
		t.Fatalf("empty attributes: %+v, %v", a, err)
	}
	if a, err := (TaskRouterCallback{TaskAttributes: `{"type":"voice"}`}).Attributes(); err != nil || a != (TaskAttributes{}) {
		t.Fatalf("non-Flex attributes: %+v, %v", a, err)
	}
	for _, bad := range []string{"{", `"CH"`, `{"conversationSid":7}`} {
		_, err := (TaskRouterCallback{TaskAttributes: bad}).Attributes()
		if err == nil || !strings.HasPrefix(err.Error(), FamilyTaskRouter+": ") {
			t.Errorf("Attributes(%q) = %v", bad, err)
		}
	}
}

func TestMissingFieldError(t *testing.T) {
	_, err := ParseTaskRouter(with(taskCreated, "WorkspaceSid", ""))
	if err == nil || err.Error() != FamilyTaskRouter+": required field WorkspaceSid is missing or empty" {
		t.Fatalf("got %v", err)
	}
	_, err = ParseConversations(with(messageAdded, "EventType", "message.added"))
	if err == nil || err.Error() != FamilyConversations+`: "message.added" is not a Conversations EventType` {
		t.Fatalf("got %v", err)
	}
}

func TestDefaultValidatorOnce(t *testing.T) {
	a, err := DefaultValidator()
	b, _ := DefaultValidator()
	if err != nil || a != b {
		t.Fatalf("DefaultValidator: %v, same %v", err, a == b)
	}
}

// The Validator locates a contentSchema failure through the $ref that
// reaches it (see collect): every contentSchema sits directly in $defs.
func TestContentSchemasBehindRef(t *testing.T) {
	for name := range Schemas() {
		var walk func(v any, path []string)
		walk = func(v any, path []string) {
			switch c := v.(type) {
			case map[string]any:
				if _, ok := c["contentSchema"]; ok && (len(path) != 2 || path[0] != "$defs") {
					t.Errorf("%s: contentSchema at /%s is not a $defs entry", name, strings.Join(path, "/"))
				}
				for k, x := range c {
					walk(x, append(slices.Clone(path), k))
				}
			case []any:
				for _, x := range c {
					walk(x, append(slices.Clone(path), "[]"))
				}
			}
		}
		walk(loadSchema(t, name), nil)
	}
}
