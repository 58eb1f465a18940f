package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/flexstream/flexstream/internal/sim"
)

// runSim runs `flexstream sim` on a scenario and returns its exit code
// and report.
func runSim(t *testing.T, args ...string) (int, sim.Report, string) {
	t.Helper()
	report := filepath.Join(t.TempDir(), "report.json")
	cmd := exec.Command(binary, append([]string{"sim", "--report", report, "--log-level", "warn", "--log-format", "json"}, args...)...)
	cmd.Env = append(os.Environ(), "TWILIO_ACCOUNT_SID=", "TWILIO_AUTH_TOKEN=", "TWILIO_AUTH_TOKEN_SECONDARY=", "FLEXSTREAM_PSEUDONYM_KEY=", "FLEXSTREAM_API_TOKEN=")
	out, err := cmd.Output()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	raw, rerr := os.ReadFile(report)
	if rerr != nil {
		t.Fatalf("no report (exit %d): %v\nstdout: %s", code, rerr, out)
	}
	var r sim.Report
	if err := json.Unmarshal(raw, &r); err != nil {
		t.Fatalf("report: %v: %s", err, raw)
	}
	return code, r, string(out)
}

// TestSimSmoke is the product proved against the simulator: the smoke
// scenario through every component of `up` over real sockets (embedded
// Kafka, the event store, ingest, projector and query API, reactors, and
// the simulator as Twilio) ends with no orphaned conversation, no
// duplicate side effect, no Task API call, no REST call off Twilio's
// spec, and read models equal to the simulator's truth.
func TestSimSmoke(t *testing.T) {
	code, r, out := runSim(t, "--scenario", "smoke", "--seed", "7")
	t.Log(out)
	if code != 0 {
		t.Fatalf("exit %d; report: %+v", code, r)
	}
	if r.Interactions < 150 || r.Orphaned != 0 || r.DuplicateEffects != 0 || len(r.Violations) != 0 || r.TaskAPICalls != 0 || r.WebhookFailures != 0 {
		t.Fatalf("ground truth: %+v", r)
	}
	if r.ReadModels == nil || !r.ReadModels.Equal || r.ReadModels.Conversations != r.Interactions {
		t.Fatalf("read models against the truth: %+v", r.ReadModels)
	}
	if r.Reactions["reinvite"] == 0 || r.Reactions["close"] == 0 || r.Reactions["message"] == 0 {
		t.Fatalf("the scenario should need every kind of reaction: %v", r.Reactions)
	}
}

// TestSimSmokeWithoutReactors: the same scenario with the reactors off
// leaves customers orphaned, and the command says the truth does not hold.
func TestSimSmokeWithoutReactors(t *testing.T) {
	code, r, out := runSim(t, "--scenario", "smoke", "--seed", "7", "--reactors=false")
	if code != exitFailure {
		t.Fatalf("exit %d, want %d; %s", code, exitFailure, out)
	}
	if r.Orphaned == 0 || !strings.Contains(out, "FAILED") {
		t.Fatalf("without reactors there must be orphans: %+v\n%s", r, out)
	}
	if r.ReadModels == nil || !r.ReadModels.Equal {
		t.Fatalf("the read models still equal the truth (orphans included): %+v", r.ReadModels)
	}
	for kind, n := range r.Reactions {
		if n != 0 {
			t.Fatalf("no reactor ran, yet %d %s reactions: %v", n, kind, r.Reactions)
		}
	}
}

// TestUpRunsTheSimulatorByDefault: the README's first command, with no
// Twilio credentials, has the simulator play Twilio, and conversations,
// tasks and reactions flow at once.
func TestUpRunsTheSimulatorByDefault(t *testing.T) {
	data := t.TempDir()
	p := startUp(t, data, freeAddr(t), "--sim=true", "--scenario", "smoke")
	x := newE2E(t, p, data)
	eventually(t, "conversations from the simulator", func() (bool, string) {
		var st struct {
			Views struct {
				Conversations int `json:"conversations"`
			} `json:"views"`
		}
		code := x.get("/v1/stats", &st)
		return code == 200 && st.Views.Conversations >= 10, fmt.Sprint(code, st)
	})
	eventually(t, "a reaction", func() (bool, string) {
		resp, err := http.Get(p.reactors + "/metrics")
		if err != nil {
			return false, err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return strings.Contains(string(b), `outcome="succeeded"`), "no succeeded action yet"
	})
}

// TestSimAgainstARunningProduct: `flexstream sim --target` plays Twilio
// for a product running in another process (here `up` with Twilio
// credentials and --twilio-api-url at the simulator), as an operator
// would test a deployment — here in Event Streams' format.
func TestSimAgainstARunningProduct(t *testing.T) {
	const account, token = "AC0123456789abcdef0123456789abcdef", "0123456789abcdef0123456789abcdef"
	env := []string{"TWILIO_ACCOUNT_SID=" + account, "TWILIO_AUTH_TOKEN=" + token}
	rest := freeAddr(t)
	data := t.TempDir()
	p := startUpEnv(t, data, freeAddr(t), env, "--twilio-api-url", "http://"+rest, "--settle", "500ms", "--orphan-grace", "2s")

	report := filepath.Join(t.TempDir(), "report.json")
	cmd := exec.Command(binary, "sim", "--scenario", "smoke", "--seed", "3", "--event-streams", "--target", p.ingest, "--api-url", p.api,
		"--twilio-addr", rest, "--report", report, "--log-level", "warn", "--log-format", "json")
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("sim: %v\n%s", err, out)
	}
	raw, err := os.ReadFile(report)
	if err != nil {
		t.Fatal(err)
	}
	var r sim.Report
	if err := json.Unmarshal(raw, &r); err != nil {
		t.Fatal(err)
	}
	if !r.OK() || r.ReadModels == nil || r.ReadModels.Conversations != r.Interactions || r.Reactions["reinvite"] == 0 {
		t.Fatalf("report: %+v\n%s", r, out)
	}
}
