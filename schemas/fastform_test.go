package schemas

import (
	"net/url"
	"testing"
)

// TestFormFastPathAgreesWithSchema: the fast path exists for both form
// schemas, takes the realistic payloads, and never accepts what the
// schema refuses (every field of every fixture set to values the schema
// may refuse).
func TestFormFastPathAgreesWithSchema(t *testing.T) {
	v := validator(t)
	if v.fastTaskRouter == nil || v.fastConversations == nil {
		t.Fatal("a form schema uses a keyword the fast path does not know: it has no fast path")
	}
	trForms := []url.Values{taskCreated, resAccepted, resRejected, workflowTimeout, taskCanceled, taskDeleted, taskCompleted}
	convForms := []url.Values{convAdded, participantAdded, messageAdded}
	for i, f := range trForms {
		if !v.fastTaskRouter.sure(f) {
			t.Errorf("TaskRouter fixture %d does not take the fast path", i)
		}
	}
	for i, f := range convForms {
		if !v.fastConversations.sure(f) {
			t.Errorf("Conversations fixture %d does not take the fast path", i)
		}
	}
	odd := []string{"", "x", "WT123", "CH" + "0123456789abcdef0123456789abcdeZ", customerPhone, "{", `{"conversationSid":5}`,
		`{"conversationSid":"CH00"}`, `[]`, `null`, "closed", "TIMER", "Active", "canceled", "\x00", "é"}
	agree := func(fast *fastForm, slow func(url.Values) error, f url.Values, what string) {
		if fast.sure(f) && slow(f) != nil {
			t.Errorf("%s: the fast path accepts what the schema refuses: %v", what, slow(f))
		}
	}
	schemaOnly := func(sch string) func(url.Values) error {
		return func(f url.Values) error {
			if sch == SchemaTaskRouter {
				return check(v.taskRouter, FamilyTaskRouter, formMap(f))
			}
			return check(v.conversations, FamilyConversations, formMap(f))
		}
	}
	for _, set := range []struct {
		forms []url.Values
		fast  *fastForm
		slow  func(url.Values) error
	}{{trForms, v.fastTaskRouter, schemaOnly(SchemaTaskRouter)}, {convForms, v.fastConversations, schemaOnly(SchemaConversations)}} {
		for _, f := range set.forms {
			for field := range set.fast.props {
				for _, val := range odd {
					agree(set.fast, set.slow, with(f, field, val), field+"="+val)
				}
				agree(set.fast, set.slow, with(f, field, del), field+" removed")
			}
		}
	}
}

func FuzzFormFastPath(f *testing.F) {
	f.Add("TaskAttributes", taskAttributes, "EventType", "task.created")
	f.Add("StateTo", "closed", "Reason", "TIMER")
	v := validator(f)
	f.Fuzz(func(t *testing.T, k1, v1, k2, v2 string) {
		for _, c := range []struct {
			fast *fastForm
			base url.Values
			sch  string
		}{{v.fastTaskRouter, taskCanceled, SchemaTaskRouter}, {v.fastConversations, messageAdded, SchemaConversations}} {
			form := with(c.base, k1, v1, k2, v2)
			if !c.fast.sure(form) {
				continue
			}
			var err error
			if c.sch == SchemaTaskRouter {
				err = check(v.taskRouter, FamilyTaskRouter, formMap(form))
			} else {
				err = check(v.conversations, FamilyConversations, formMap(form))
			}
			if err != nil {
				t.Fatalf("fast path accepts what the schema refuses (%s=%q, %s=%q): %v", k1, v1, k2, v2, err)
			}
		}
	})
}
