package schemas

import (
	"encoding/json"
	"net/url"
	"testing"
)

// The parsers never panic, and what they accept has what the contract
// requires.
func FuzzParseEventStreams(f *testing.F) {
	f.Add([]byte(`[{"specversion":"1.0","id":"a","type":"com.twilio.taskrouter.task.created","source":"s","data":{"sid":"x"}}]`))
	f.Add([]byte(`[]`))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		evs, err := ParseEventStreams(body)
		if err != nil {
			return
		}
		for _, e := range evs {
			if e.ID == "" || e.Type == "" || e.Source == "" || e.SpecVersion != SpecVersion || !json.Valid(e.Data) {
				t.Fatalf("accepted an incomplete element: %+v", e)
			}
		}
	})
}

func FuzzParseForms(f *testing.F) {
	f.Add("EventType=task.created&AccountSid=AC1&WorkspaceSid=WS1&ResourceType=Task&ResourceSid=WT1&TaskAttributes=%7B%7D")
	f.Add("EventType=onMessageAdded&AccountSid=AC1&ConversationSid=CH1")
	f.Fuzz(func(t *testing.T, body string) {
		form, err := url.ParseQuery(body)
		if err != nil {
			return
		}
		if cb, err := ParseTaskRouter(form); err == nil {
			for _, f := range TaskRouterRequired {
				if form.Get(f) == "" {
					t.Fatalf("accepted without %s", f)
				}
			}
			_, _ = cb.Attributes()
		}
		if w, err := ParseConversations(form); err == nil {
			if _, ok := ConversationsType(w.EventType); !ok || w.AccountSid == "" {
				t.Fatalf("accepted EventType %q / AccountSid %q", w.EventType, w.AccountSid)
			}
			_ = w.ResourceSid()
		}
	})
}
