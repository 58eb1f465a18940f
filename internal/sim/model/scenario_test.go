package model

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func scenarioPath(name string) string {
	return filepath.Join("..", "..", "..", "testdata", "scenarios", name+".yaml")
}

func TestShippedScenarios(t *testing.T) {
	for _, tc := range []struct {
		name         string
		interactions int
		// arrivals: the expected real duration of the arrivals, ±50 %
		arrivals time.Duration
	}{
		{"smoke", 200, 10 * time.Second},
		{"day", 10_000, 6 * time.Minute},
		{"gentle", 1_000, 50 * time.Minute},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sc, err := LoadScenario(scenarioPath(tc.name))
			if err != nil {
				t.Fatal(err)
			}
			if sc.Name != tc.name || sc.Interactions != tc.interactions {
				t.Errorf("name %q interactions %d", sc.Name, sc.Interactions)
			}
			mean := sc.Real(Duration(float64(sc.Interactions) / sc.ArrivalRate * float64(time.Minute)))
			if mean < tc.arrivals/2 || mean > tc.arrivals*3/2 {
				t.Errorf("arrivals last %s of real time, want about %s", mean, tc.arrivals)
			}
			for _, p := range []struct {
				name string
				p    float64
			}{
				{"known_agent_invite", sc.KnownAgentInvite}, {"failed_create", sc.FailedCreate}, {"deleted_task", sc.DeletedTask},
				{"workflow_timeout_forced", sc.WorkflowTimeoutForced}, {"ttl_forced", sc.TTLForced}, {"customer_quiet", sc.CustomerQuiet},
				{"agent.reject", sc.Agent.Reject}, {"agent timeouts", 1 - sc.Agent.Accept - sc.Agent.Reject},
			} {
				if p.p <= 0 {
					t.Errorf("%s = %v: every hazard must be present", p.name, p.p)
				}
			}
		})
	}
}

const goodYAML = `
name: t
speed: 2
interactions: 3
arrival_rate: 10
channels: {whatsapp: 1}
agents: 1
agent: {accept: 1, reservation_timeout: 10s, handle_time: 1m, wrapup_time: 0s}
workflow_timeout: 1m
task_ttl: 2m
customer_messages: 1
grace: 1m
`

func TestParseScenario(t *testing.T) {
	sc, err := ParseScenario([]byte(goodYAML))
	if err != nil {
		t.Fatal(err)
	}
	if sc.Speed != 2 || time.Duration(sc.Agent.HandleTime) != time.Minute || sc.Channels["whatsapp"] != 1 {
		t.Errorf("parsed %+v", sc)
	}
	if got := sc.Real(sc.Grace); got != 30*time.Second {
		t.Errorf("Real(grace) = %s, want 30s", got)
	}
}

func TestParseScenarioErrors(t *testing.T) {
	for _, tc := range []struct {
		name, yaml, path, msg string
	}{
		{"unknown field", "foo: 1", "foo", "unknown field"},
		{"unknown nested field", "agent: {acept: 1}", "agent.acept", "unknown field"},
		{"not a number", "speed: fast", "speed", "want a number"},
		{"not a whole number", "interactions: 2.5", "interactions", "want a whole number"},
		{"bad duration", "agent: {handle_time: 5}", "agent.handle_time", "want a duration"},
		{"mapping for a scalar", "grace: {a: 1}", "grace", "want a duration"},
		{"list for a map", "channels: [sms]", "channels", "want a mapping"},
		{"repeated field", "speed: 2\nspeed: 3", "speed", "given twice"},
		{"unknown channel", "channels: {fax: 1}", "channels.fax", "unknown channel type"},
		{"speed below 1", "speed: 0.5", "speed", "at least 1"},
		{"probability above 1", "customer_quiet: 1.5", "customer_quiet", "between 0 and 1"},
		{"negative grace", "grace: -1m", "grace", "positive duration"},
		{"fates above 1", "failed_create: 0.6\ndeleted_task: 0.6", "known_agent_invite", "at most 1"},
		{"accept and reject above 1", "agent: {accept: 0.8, reject: 0.3, reservation_timeout: 10s, handle_time: 1m}", "agent.reject", "at most 1"},
		{"no accept", "agent: {accept: 0, reservation_timeout: 10s, handle_time: 1m}", "agent.accept", "above 0"},
		{"bad distribution", "agent: {accept: 1, reservation_timeout: 10s, handle_time: 1m, handle_distribution: normal}", "agent.handle_distribution", "exponential or uniform"},
		{"no messages", "customer_messages: 0", "customer_messages", "at least 1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// The snippet's keys replace the good scenario's.
			_, err := ParseScenario([]byte(override(goodYAML, tc.yaml)))
			if err == nil {
				t.Fatal("no error")
			}
			var fe *FieldError
			found := false
			for _, e := range flatten(err) {
				if errors.As(e, &fe) && fe.Path == tc.path && strings.Contains(fe.Msg, tc.msg) {
					found = true
				}
			}
			if !found {
				t.Errorf("error %q names no %s: …%s…", err, tc.path, tc.msg)
			}
		})
	}
	if _, err := ParseScenario(nil); err == nil {
		t.Error("empty document accepted")
	}
	if _, err := ParseScenario([]byte(goodYAML + "---\nname: x\n")); err == nil {
		t.Error("two documents accepted")
	}
	if _, err := LoadScenario("no/such/file.yaml"); err == nil {
		t.Error("missing file accepted")
	}
}

// override replaces goodYAML's top-level keys that snippet sets.
func override(base, snippet string) string {
	set := map[string]bool{}
	for _, l := range strings.Split(snippet, "\n") {
		if k, _, ok := strings.Cut(l, ":"); ok && !strings.HasPrefix(l, " ") {
			set[k] = true
		}
	}
	var out []string
	for _, l := range strings.Split(base, "\n") {
		if k, _, ok := strings.Cut(l, ":"); ok && set[k] {
			continue
		}
		out = append(out, l)
	}
	return strings.Join(out, "\n") + "\n" + snippet + "\n"
}

func flatten(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, flatten(e)...)
		}
		return out
	}
	return []error{err}
}
