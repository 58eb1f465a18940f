package policy

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

// fieldErrors unpacks a joined error into its FieldErrors (and fails on
// anything else).
func fieldErrors(t *testing.T, err error) []*FieldError {
	t.Helper()
	var out []*FieldError
	var walk func(error)
	walk = func(e error) {
		if j, ok := e.(interface{ Unwrap() []error }); ok {
			for _, c := range j.Unwrap() {
				walk(c)
			}
			return
		}
		var fe *FieldError
		if !errors.As(e, &fe) {
			t.Fatalf("error %q (%T) is not a *FieldError", e, e)
		}
		out = append(out, fe)
	}
	walk(err)
	return out
}

func mustParse(t *testing.T, src string) *Policy {
	t.Helper()
	p, err := Parse([]byte(src))
	if err != nil {
		t.Fatalf("Parse: %v\n%s", err, src)
	}
	return p
}

func roundTrip(t *testing.T, p *Policy) {
	t.Helper()
	b, err := p.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	q, err := Parse(b)
	if err != nil {
		t.Fatalf("re-parse: %v\n%s", err, b)
	}
	if !reflect.DeepEqual(p, q) {
		t.Fatalf("round trip changed the policy:\n%s", b)
	}
}

func TestDefault(t *testing.T) {
	p := Default()
	if err := p.Validate(); err != nil {
		t.Fatal(err)
	}
	if p.Version != 1 || p.Deadline.D() != 10*time.Minute || p.MaxReinvites != 3 || p.FallbackWorkflow != "" {
		t.Errorf("top-level settings: %+v", p)
	}
	for _, k := range Triggers {
		if len(p.Rules(k)) == 0 {
			t.Errorf("default policy has no %s rules", k)
		}
	}
	// workflow.timeout: message + re-invite while attempts < max_reinvites, then message + close.
	wt := p.Rules(TriggerWorkflowTimeout)
	if len(wt) != 2 || wt[0].Reinvite() == nil || wt[0].Actions[0].Message == nil || wt[1].Actions[len(wt[1].Actions)-1].Close == nil {
		t.Errorf("workflow.timeout rules: %+v", wt)
	}
	if n, ok := p.AttemptLimit(&wt[0]); !ok || n != 3 {
		t.Errorf("workflow.timeout re-invite limit = %d, %v; want 3", n, ok)
	}
	if _, ok := p.AttemptLimit(&wt[1]); ok {
		t.Error("give-up rule has an attempt limit")
	}
	tc := p.Rules(TriggerTaskCanceled)
	if !slices.Equal(tc[0].When.Cause, []string{"failed-create", "declined-known-agent"}) || tc[0].Reinvite() == nil {
		t.Errorf("task.canceled rules: %+v", tc)
	}
	if rr := p.Rules(TriggerReservationRejected); rr[0].Reinvite() == nil || rr[0].Reinvite().KnownAgent {
		t.Errorf("reservation.rejected must re-invite through the workflow, not to the known agent: %+v", rr)
	}
	roundTrip(t, p)
	if !bytes.Equal(DefaultYAML(), defaultYAML) {
		t.Error("DefaultYAML differs from the embedded file")
	}
	// Default returns a fresh copy; Shared one that is parsed once.
	p.Triggers = nil
	if a, b := Shared(), Shared(); Default().Triggers == nil || a.Triggers == nil || a != b {
		t.Error("Default/Shared")
	}
}

// example is the format as the README shows it.
const example = `
version: 1
deadline: 10m
max_reinvites: 3
fallback_workflow: "WW0123456789abcdef0123456789abcdef"
triggers:
  workflow.timeout:
    - name: reinvite
      when: { attempts_below: 3 }
      actions:
        - message: { text: "We're still looking for an agent for you, thanks for waiting.", content_sid: "", content_variables: {} }
        - reinvite: { workflow: "", known_agent: false }
    - name: give-up
      actions:
        - message: { text: "Sorry, no agent is free right now. Please write again later." }
        - close: {}
  task.canceled:
    - name: vip
      deadline: 2m
      when:
        channel_type: [whatsapp, messenger]
        task_queue: [VIP, WQ0123456789abcdef0123456789abcdef]
        workflow: WW0123456789abcdef0123456789abcdef
        cancel_reason: ["(?i)create", "^$"]
        cause: [failed-create, declined-known-agent]
        attempts_at_least: 1
        attempts_below: 5
      actions:
        - message:
            content_sid: HX0123456789abcdef0123456789abcdef
            content_variables: {"1": "VIP", "2": "soon"}
        - reinvite: { known_agent: true }
    - name: close
      actions: [close]
  task.deleted:
    - name: close
      actions:
        - close:
  reservation.rejected: []
`

func TestExample(t *testing.T) {
	p := mustParse(t, example)
	roundTrip(t, p)
	vip := p.Rules(TriggerTaskCanceled)[0]
	if vip.Deadline == nil || vip.Deadline.D() != 2*time.Minute || p.DeadlineOf(&vip) != 2*time.Minute {
		t.Errorf("rule deadline: %v", vip.Deadline)
	}
	if p.DeadlineOf(&p.Rules(TriggerTaskCanceled)[1]) != 10*time.Minute || p.DeadlineOf(nil) != 10*time.Minute {
		t.Error("default deadline")
	}
	if !slices.Equal(vip.When.Workflow, []string{"WW0123456789abcdef0123456789abcdef"}) {
		t.Errorf("a single value must read as a list: %q", vip.When.Workflow)
	}
	if *vip.When.AttemptsAtLeast != 1 || *vip.When.AttemptsBelow != 5 {
		t.Error("attempt conditions")
	}
	if n, ok := p.AttemptLimit(&vip); !ok || n != 5 {
		t.Errorf("a rule's attempts_below is its limit: %d", n)
	}
	m := vip.Actions[0].Message
	if m.ContentSid == "" || m.ContentVariables["2"] != "soon" || !vip.Actions[1].Reinvite.KnownAgent {
		t.Errorf("actions: %+v", vip.Actions)
	}
	// "- close" and "- close:" are close actions.
	if p.Rules(TriggerTaskCanceled)[1].Actions[0].Close == nil || p.Rules(TriggerTaskDeleted)[0].Actions[0].Close == nil {
		t.Error("close shorthands")
	}
	if p.Rules(TriggerReservationRejected) != nil {
		t.Error("an empty rule list reads as none")
	}
	// Empty content_variables are normalised away.
	if p.Rules(TriggerWorkflowTimeout)[0].Actions[0].Message.ContentVariables != nil {
		t.Error("empty content_variables not normalised")
	}
}

func TestDefaultsApplied(t *testing.T) {
	p := mustParse(t, "version: 1\n")
	if p.Deadline.D() != DefaultDeadline || p.MaxReinvites != DefaultMaxReinvites || p.Triggers != nil {
		t.Errorf("%+v", p)
	}
	roundTrip(t, p)
	p = mustParse(t, "version: 1\nmax_reinvites: 0\n")
	if p.MaxReinvites != 0 {
		t.Error("an explicit max_reinvites: 0 must be kept")
	}
}

func TestParseErrors(t *testing.T) {
	const wt = "version: 1\ntriggers:\n  workflow.timeout:\n"
	rule := func(body string) string { return wt + "    - name: r\n" + body }
	tests := []struct {
		name string
		src  string
		want []string // path: message substring, one per error, in order
	}{
		{"version missing", "deadline: 1m\n", []string{"version: 0 is not a supported version"}},
		{"version 2", "version: 2\n", []string{"version: 2 is not"}},
		{"deadline zero", "version: 1\ndeadline: 0s\n", []string{"deadline: 0s: must be more than 0"}},
		{"deadline negative", "version: 1\ndeadline: -1m\n", []string{"deadline: -1m0s: must be more than 0"}},
		{"deadline not a duration", "version: 1\ndeadline: soon\n", []string{`deadline: want a duration such as 90s, 10m or 1h, got "soon" (line 2)`}},
		{"deadline a list", "version: 1\ndeadline: [1m]\n", []string{"deadline: want a duration such as 90s, 10m or 1h, got a list"}},
		{"max_reinvites negative", "version: 1\nmax_reinvites: -1\n", []string{"max_reinvites: -1: must be 0 or more"}},
		{"max_reinvites text", "version: 1\nmax_reinvites: many\n", []string{`max_reinvites: want a whole number, got "many" (line 2)`}},
		{"fallback not WW", "version: 1\nfallback_workflow: WQ0123456789abcdef0123456789abcdef\n", []string{`fallback_workflow: "WQ0123456789abcdef0123456789abcdef" is not a workflow SID (WW + 32 hex)`}},
		{"fallback short", "version: 1\nfallback_workflow: WW123\n", []string{`fallback_workflow: "WW123" is not a workflow SID`}},
		{"unknown top-level field", "version: 1\ndeadlines: 1m\n", []string{`deadlines: unknown field "deadlines" (want one of version, deadline, max_reinvites, fallback_workflow, triggers) (line 2)`}},
		{"unknown trigger", "version: 1\ntriggers:\n  workflow.timout: []\n", []string{`triggers.workflow.timout: unknown trigger "workflow.timout"`}},
		{"triggers a list", "version: 1\ntriggers: [a]\n", []string{"triggers: want a mapping of trigger to rules, got a list"}},
		{"rule unknown field", rule("      acitons: []\n"), []string{`triggers.workflow.timeout[0].acitons: unknown field "acitons" (want one of name, when, deadline, actions) (line 5)`}},
		{"rule no actions", rule("      actions: []\n"), []string{"triggers.workflow.timeout[0].actions: missing: a rule needs at least one action"}},
		{"rule no name", wt + "    - actions: [close]\n", []string{"triggers.workflow.timeout[0].name: missing"}},
		{"rule bad name", wt + "    - name: give up\n      actions: [close]\n", []string{`triggers.workflow.timeout[0].name: "give up": use letters`}},
		{"duplicate names", rule("      actions: [close]\n    - name: r\n      actions: [close]\n"), []string{`triggers.workflow.timeout[1].name: "r" is also the name of rule 0`}},
		{"rule deadline zero", rule("      deadline: 0s\n      actions: [close]\n"), []string{"triggers.workflow.timeout[0].deadline: 0s: must be more than 0"}},
		{"when unknown field", rule("      when: { attempts_under: 3 }\n      actions: [close]\n"), []string{`triggers.workflow.timeout[0].when.attempts_under: unknown field "attempts_under"`}},
		{"channel type", rule("      when: { channel_type: [sms, pigeon] }\n      actions: [close]\n"), []string{`triggers.workflow.timeout[0].when.channel_type[1]: unknown channel type "pigeon"`}},
		{"channel type a mapping", rule("      when: { channel_type: [sms, {a: 1}] }\n      actions: [close]\n"), []string{"triggers.workflow.timeout[0].when.channel_type[1]: want a string, got a mapping (line 5)"}},
		{"queue SID malformed", rule("      when: { task_queue: [Support, WQ0123] }\n      actions: [close]\n"), []string{`triggers.workflow.timeout[0].when.task_queue[1]: "WQ0123" is not a queue SID (WQ + 32 hex)`}},
		{"queue given a workflow SID", rule("      when: { task_queue: WW0123456789abcdef0123456789abcdef }\n      actions: [close]\n"), []string{"triggers.workflow.timeout[0].when.task_queue[0]: \"WW0123456789abcdef0123456789abcdef\" is not a queue SID"}},
		{"queue empty", rule("      when: { task_queue: [\"\"] }\n      actions: [close]\n"), []string{"triggers.workflow.timeout[0].when.task_queue[0]: empty"}},
		{"workflow SID malformed", rule("      when: { workflow: [WWxyz0123456] }\n      actions: [close]\n"), nil}, // not SID-like: a name
		{"workflow given a queue SID", rule("      when: { workflow: [WQ0123456789abcdef0123456789abcdef] }\n      actions: [close]\n"), []string{"triggers.workflow.timeout[0].when.workflow[0]: \"WQ0123456789abcdef0123456789abcdef\" is not a workflow SID"}},
		{"cancel reason regexp", rule("      when: { cancel_reason: [ok, \"(unclosed\"] }\n      actions: [close]\n"), []string{`triggers.workflow.timeout[0].when.cancel_reason[1]: "(unclosed" is not a regular expression`}},
		{"cause outside task.canceled", rule("      when: { cause: failed-create }\n      actions: [close]\n"), []string{"triggers.workflow.timeout[0].when.cause[0]: cause only applies to task.canceled rules"}},
		{"unknown cause", "version: 1\ntriggers:\n  task.canceled:\n    - name: r\n      when: { cause: [other, boredom] }\n      actions: [close]\n", []string{`triggers.task.canceled[0].when.cause[1]: unknown cause "boredom"`}},
		{"attempts_below zero", rule("      when: { attempts_below: 0 }\n      actions: [close]\n"), []string{"triggers.workflow.timeout[0].when.attempts_below: 0: must be 1 or more"}},
		{"attempts_at_least negative", rule("      when: { attempts_at_least: -1 }\n      actions: [close]\n"), []string{"triggers.workflow.timeout[0].when.attempts_at_least: -1: must be 0 or more"}},
		{"attempts never hold", rule("      when: { attempts_at_least: 3, attempts_below: 3 }\n      actions: [close]\n"), []string{"triggers.workflow.timeout[0].when.attempts_at_least: 3 with attempts_below 3 never holds"}},
		{"attempts not a number", rule("      when: { attempts_below: three }\n      actions: [close]\n"), []string{`triggers.workflow.timeout[0].when.attempts_below: want a whole number, got "three" (line 5)`}},
		{"action empty", rule("      actions:\n        - {}\n"), []string{"triggers.workflow.timeout[0].actions[0]: set exactly one of message, reinvite, close (found 0)"}},
		{"action two kinds", rule("      actions:\n        - { close: {}, reinvite: {} }\n"), []string{
			"triggers.workflow.timeout[0].actions[0]: set exactly one of message, reinvite, close (found 2)",
			"triggers.workflow.timeout[0].actions: a rule cannot both re-invite and close"}},
		{"action unknown kind", rule("      actions:\n        - transfer: {}\n"), []string{`triggers.workflow.timeout[0].actions[0].transfer: unknown field "transfer" (want one of message, reinvite, close) (line 6)`}},
		{"action unknown scalar", rule("      actions: [message]\n"), []string{`triggers.workflow.timeout[0].actions[0]: want an action (message, reinvite or close), got "message" (line 5)`}},
		{"two reinvites", rule("      actions: [reinvite, reinvite]\n"), []string{"triggers.workflow.timeout[0].actions[1].reinvite: a rule may re-invite only once"}},
		{"close not last", "version: 1\ntriggers:\n  task.deleted:\n    - name: r\n      actions:\n        - close: {}\n        - message: { text: hi }\n", []string{"triggers.task.deleted[0].actions[0].close: close must be the last action"}},
		{"reinvite and close", rule("      actions: [reinvite, close]\n"), []string{"triggers.workflow.timeout[0].actions: a rule cannot both re-invite and close"}},
		{"reinvite workflow", rule("      actions:\n        - reinvite: { workflow: WQ123 }\n"), []string{`triggers.workflow.timeout[0].actions[0].reinvite.workflow: "WQ123" is not a workflow SID (WW + 32 hex)`}},
		{"reinvite unknown field", rule("      actions:\n        - reinvite: { worker: WK0123456789abcdef0123456789abcdef }\n"), []string{`triggers.workflow.timeout[0].actions[0].reinvite.worker: unknown field "worker" (want one of workflow, known_agent)`}},
		{"reinvite known_agent not bool", rule("      actions:\n        - reinvite: { known_agent: sometimes }\n"), []string{`triggers.workflow.timeout[0].actions[0].reinvite.known_agent: want true or false, got "sometimes"`}},
		{"message empty", rule("      actions:\n        - message: {}\n"), []string{"triggers.workflow.timeout[0].actions[0].message: set text, content_sid, or both"}},
		{"message null", rule("      actions:\n        - message:\n"), []string{"triggers.workflow.timeout[0].actions[0].message: set text, content_sid, or both"}},
		{"message content sid", rule("      actions:\n        - message: { content_sid: HXnope }\n"), []string{`triggers.workflow.timeout[0].actions[0].message.content_sid: "HXnope" is not a content template SID (HX + 32 hex)`}},
		{"message variables without template", rule("      actions:\n        - message: { text: hi, content_variables: { \"1\": x } }\n"), []string{"triggers.workflow.timeout[0].actions[0].message.content_variables: only used with content_sid"}},
		{"message too long", rule("      actions:\n        - message: { text: " + strings.Repeat("a", 1601) + " }\n"), []string{"triggers.workflow.timeout[0].actions[0].message.text: 1601 characters: Twilio accepts at most 1600"}},
		{"message unknown field", rule("      actions:\n        - message: { body: hi }\n"), []string{
			`triggers.workflow.timeout[0].actions[0].message.body: unknown field "body" (want one of text, content_sid, content_variables)`}},
		{"many at once", "version: 3\ndeadline: 0s\ntriggers:\n  task.deleted:\n    - name: a\n      actions: []\n  foo: []\n", []string{
			"version: 3 is not", "deadline: 0s", "triggers.task.deleted[0].actions: missing", `triggers.foo: unknown trigger "foo"`}},
		{"decode errors at once", "version: x\ndeadline: y\nmax_reinvites: z\n", []string{
			`version: want a whole number, got "x" (line 1)`, `deadline: want a duration`, `max_reinvites: want a whole number`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := Parse([]byte(tt.src))
			if tt.want == nil {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("no error; parsed %+v", p)
			}
			if p != nil {
				t.Error("Parse returned a policy with an error")
			}
			fes := fieldErrors(t, err)
			var got []string
			for _, fe := range fes {
				got = append(got, fe.Error())
			}
			if len(got) != len(tt.want) {
				t.Fatalf("got %d errors, want %d:\n%s", len(got), len(tt.want), strings.Join(got, "\n"))
			}
			for i, w := range tt.want {
				if !strings.HasPrefix(got[i], w) {
					t.Errorf("error %d:\n got  %s\n want %s…", i, got[i], w)
				}
				if path, _, _ := strings.Cut(w, ": "); fes[i].Path != path {
					t.Errorf("error %d: Path %q, want %q", i, fes[i].Path, path)
				}
			}
			var fe *FieldError
			if !errors.As(err, &fe) || fe.Path != fes[0].Path {
				t.Errorf("errors.As gives %+v", fe)
			}
		})
	}
}

func TestParseNotAPolicy(t *testing.T) {
	for _, src := range []string{"", "   \n", "version: 1\n---\nversion: 1\n", "version: [\n", "- a\n- b\n", "version: 1\nversion: 1\n"} {
		if p, err := Parse([]byte(src)); err == nil {
			t.Errorf("Parse(%q) = %+v, want an error", src, p)
		}
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "policy.yaml")
	if err := os.WriteFile(path, DefaultYAML(), 0o600); err != nil {
		t.Fatal(err)
	}
	p, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(p, Default()) {
		t.Error("Load(default.yaml) differs from Default()")
	}
	if err := os.WriteFile(path, []byte("version: 1\nfallback_workflow: nope\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = Load(path)
	var fe *FieldError
	if err == nil || !strings.Contains(err.Error(), path) || !errors.As(err, &fe) || fe.Path != "fallback_workflow" {
		t.Errorf("Load(bad) = %v", err)
	}
	if _, err := Load(filepath.Join(dir, "missing.yaml")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Load(missing) = %v", err)
	}
}

func TestIsSid(t *testing.T) {
	for s, want := range map[string]bool{
		"WW0123456789abcdef0123456789abcdef":  true,
		"WW0123456789ABCDEF0123456789ABCDEF":  true,
		"WQ0123456789abcdef0123456789abcdef":  false,
		"WW0123456789abcdef0123456789abcde":   false,
		"WW0123456789abcdef0123456789abcdefa": false,
		"WW0123456789abcdef0123456789abcdeg":  false,
		"":                                    false,
	} {
		if IsSid("WW", s) != want {
			t.Errorf("IsSid(WW, %q) = %v", s, !want)
		}
	}
}

func FuzzPolicyParse(f *testing.F) {
	f.Add(defaultYAML)
	f.Add([]byte(example))
	f.Add([]byte("version: 1\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := Parse(data)
		if err != nil {
			if p != nil {
				t.Fatal("a policy and an error")
			}
			return
		}
		b, err := p.Marshal()
		if err != nil {
			t.Fatalf("Marshal: %v", err)
		}
		q, err := Parse(b)
		if err != nil {
			t.Fatalf("re-parse: %v\n%s", err, b)
		}
		if !reflect.DeepEqual(p, q) {
			t.Fatalf("re-parsed policy differs:\n%s", b)
		}
	})
}
