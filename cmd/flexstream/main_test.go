package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func runArgs(t *testing.T, args []string, envs map[string]string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = run(args, env{stdout: &out, stderr: &errb, lookup: func(k string) (string, bool) {
		v, ok := envs[k]
		return v, ok
	}})
	return code, out.String(), errb.String()
}

func TestHelpListsOnlyWorkingCommands(t *testing.T) {
	code, out, _ := runArgs(t, []string{"--help"}, nil)
	if code != exitOK {
		t.Fatalf("exit %d", code)
	}
	for name := range commands {
		if !strings.Contains(out, "  "+name+" ") {
			t.Errorf("help lacks %q", name)
		}
	}
	// Roles that later issues add must not be promised before they work.
	for _, absent := range []string{"ingest", "projector", "reactors", "replay", "audit", "sim"} {
		if _, ok := commands[absent]; !ok && strings.Contains(out, "  "+absent+" ") {
			t.Errorf("help lists %q, which does not exist", absent)
		}
	}
	code, out, _ = runArgs(t, []string{"up", "--help"}, nil)
	if code != exitOK || !strings.Contains(out, "--kafka-addr") || !strings.Contains(out, "FLEXSTREAM_KAFKA_ADDR") {
		t.Fatalf("up --help: %d %q", code, out)
	}
}

func TestInvalidConfigurationIsOneLineNamingTheSetting(t *testing.T) {
	tests := []struct {
		name string
		args []string
		env  map[string]string
		want string
	}{
		{"unknown command", []string{"frob"}, nil, `"frob"`},
		{"group without subcommand", []string{"store"}, nil, "serve"},
		{"unknown subcommand", []string{"store", "frob"}, nil, `"store frob"`},
		{"unknown flag", []string{"up", "--bogus"}, nil, "bogus"},
		{"bad partitions flag", []string{"up", "--kafka-partitions", "0"}, nil, "--kafka-partitions"},
		{"bad partitions env", []string{"up"}, map[string]string{"FLEXSTREAM_KAFKA_PARTITIONS": "six"}, "FLEXSTREAM_KAFKA_PARTITIONS"},
		{"bad addr env", []string{"up"}, map[string]string{"FLEXSTREAM_KAFKA_ADDR": "nohost"}, "--kafka-addr"},
		{"bad topic", []string{"up", "--kafka-topic", "a/b"}, nil, "--kafka-topic"},
		{"bad retention", []string{"up", "--kafka-retention", "1m"}, nil, "--kafka-retention"},
		{"bad log level", []string{"up", "--log-level", "loud"}, nil, "--log-level"},
		{"bad log format", []string{"up"}, map[string]string{"FLEXSTREAM_LOG_FORMAT": "xml"}, "--log-format"},
		{"ingest without an auth token", []string{"ingest"}, nil, "TWILIO_AUTH_TOKEN"},
		{"ingest bad public URL", []string{"ingest", "--public-url", "hooks.example.com"}, map[string]string{"TWILIO_AUTH_TOKEN": "x"}, "--public-url"},
		{"ingest bad brokers", []string{"ingest", "--kafka-brokers", "nohost"}, map[string]string{"TWILIO_AUTH_TOKEN": "x"}, "--kafka-brokers"},
		{"ingest pre-event deadline past Twilio's", []string{"ingest", "--pre-event-deadline", "6s"}, map[string]string{"TWILIO_AUTH_TOKEN": "x"}, "--pre-event-deadline"},
		{"projector without a pseudonym key", []string{"projector", "--data", "DATA"}, nil, "FLEXSTREAM_PSEUDONYM_KEY"},
		{"projector bad api addr", []string{"projector", "--api-addr", "nohost"}, nil, "--api-addr"},
		{"projector short API token", []string{"projector"}, map[string]string{"FLEXSTREAM_API_TOKEN": "short"}, "FLEXSTREAM_API_TOKEN"},
		{"reactors without Twilio credentials", []string{"reactors"}, nil, "TWILIO_ACCOUNT_SID"},
		{"reactors token twilio-go refuses", []string{"reactors"}, map[string]string{"TWILIO_ACCOUNT_SID": "AC1", "TWILIO_AUTH_TOKEN": "a-b"}, "TWILIO_AUTH_TOKEN"},
		{"reactors bad Twilio URL", []string{"reactors", "--twilio-api-url", "localhost:9"}, map[string]string{"TWILIO_ACCOUNT_SID": "AC1", "TWILIO_AUTH_TOKEN": "ab"}, "--twilio-api-url"},
		{"reactors missing policy file", []string{"reactors", "--dry-run", "--policy", "/nonexistent/policy.yaml"}, nil, "--policy"},
		{"reactors bad policy", []string{"reactors", "--dry-run", "--policy", "BADPOLICY"}, nil, "triggers.workflow.timeout[0].actions[0].reinvite.workflow"},
		{"reactors bad lease", []string{"reactors", "--dry-run", "--lease", "1ms"}, nil, "--lease"},
		{"up bad policy", []string{"up", "--policy", "BADPOLICY"}, nil, "--policy"},
		{"up bad reactors addr", []string{"up", "--reactors-addr", "nohost"}, nil, "--reactors-addr"},
		{"up bad orphan grace", []string{"up", "--orphan-grace", "10ms"}, nil, "--orphan-grace"},
		{"up bad ingest addr", []string{"up", "--ingest-addr", "nohost"}, nil, "--ingest-addr"},
		{"short pseudonym key", []string{"up", "--data", "DATA", "--kafka-addr", "127.0.0.1:0"}, map[string]string{"FLEXSTREAM_PSEUDONYM_KEY": "short"}, "FLEXSTREAM_PSEUDONYM_KEY"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for i, a := range tt.args {
				if a == "DATA" {
					tt.args[i] = t.TempDir()
				}
				if a == "BADPOLICY" {
					tt.args[i] = filepath.Join(t.TempDir(), "policy.yaml")
					bad := "version: 1\ntriggers:\n  workflow.timeout:\n    - name: x\n      actions:\n        - reinvite: { workflow: WQ123 }\n  task.bogus: []\n"
					if err := os.WriteFile(tt.args[i], []byte(bad), 0o600); err != nil {
						t.Fatal(err)
					}
				}
			}
			code, out, errOut := runArgs(t, tt.args, tt.env)
			if code != exitUsage {
				t.Fatalf("exit %d, want %d; stderr %q", code, exitUsage, errOut)
			}
			lines := strings.Split(strings.TrimSpace(errOut), "\n")
			if len(lines) != 1 || !strings.Contains(lines[0], tt.want) {
				t.Fatalf("stderr should be one line naming %s, got %q", tt.want, errOut)
			}
			if out != "" {
				t.Fatalf("nothing may start: stdout %q", out)
			}
		})
	}
}
