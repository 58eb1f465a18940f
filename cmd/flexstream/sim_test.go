package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/flexstream/flexstream/internal/sim"
	"github.com/flexstream/flexstream/projector/readmodel"
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
	testReplayUnderARunningProjector(t, p, data)
}

// compact is JSON without its layout (the API indents, its lists do not).
func compact(raw []byte) string {
	var b bytes.Buffer
	if err := json.Compact(&b, raw); err != nil {
		return string(raw)
	}
	return b.String()
}

// testReplayUnderARunningProjector (issue 8): with `up` running, replay
// --verify reads the live views and stats through its query API and finds
// them equal to a rebuild; then a replay swaps a new generation in under
// the running projector, whose API answers every read throughout, with
// the same views and stats before, during and after.
func testReplayUnderARunningProjector(t *testing.T, p *upProcess, data string) {
	views := filepath.Join(data, "readmodel")
	api := &apiViews{base: p.api, http: &http.Client{Timeout: 10 * time.Second}}
	ctx := context.Background()
	snapshot := func() (map[string]string, string) {
		t.Helper()
		convs := map[string]string{}
		if err := api.EachConversation(ctx, func(sid string, v json.RawMessage) error { convs[sid] = compact(v); return nil }); err != nil {
			t.Fatal(err)
		}
		st, err := api.Stats(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return convs, compact(st)
	}
	before, beforeStats := snapshot()
	if len(before) == 0 {
		t.Fatal("no conversation views")
	}

	code, stdout, errOut := runArgs(t, []string{"replay", "--store", p.store, "--views", views, "--verify", "--api-url", p.api, "--log-level", "error"}, nil)
	if code != exitOK || !strings.Contains(stdout, "every view is the same, and so are the stats") {
		t.Fatalf("verify against the running projector: exit %d\n%s\n%s", code, stdout, errOut)
	}

	var sids []string
	for sid := range before {
		sids = append(sids, sid)
	}
	stop := make(chan struct{})
	var reads, bad atomic.Int64
	var firstBad atomic.Value
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			sid := sids[i%len(sids)]
			v, err := api.Conversation(ctx, sid)
			st, serr := api.Stats(ctx)
			reads.Add(1)
			if err != nil || serr != nil || compact(v) != before[sid] || compact(st) != beforeStats {
				bad.Add(1)
				firstBad.CompareAndSwap(nil, fmt.Sprintf("%s: %v %v\n%s\n%s", sid, err, serr, v, st))
			}
		}
	}()
	code, stdout, errOut = runArgs(t, []string{"replay", "--store", p.store, "--views", views, "--log-level", "error"}, nil)
	time.Sleep(300 * time.Millisecond) // reads after the switch too
	close(stop)
	<-done
	if code != exitOK || !strings.Contains(stdout, "the running projector switched to it") {
		t.Fatalf("replay under the running projector: exit %d\n%s\n%s", code, stdout, errOut)
	}
	if bad.Load() != 0 {
		t.Fatalf("%d of %d reads through the API failed or differed during the swap; first: %v", bad.Load(), reads.Load(), firstBad.Load())
	}
	if g, _, err := readmodel.CurrentGeneration(views); err != nil || g < 1 {
		t.Fatalf("generation %d, %v", g, err)
	}
	after, afterStats := snapshot()
	if afterStats != beforeStats || len(after) != len(before) {
		t.Fatalf("after the swap: stats %s (were %s), %d views (were %d)", afterStats, beforeStats, len(after), len(before))
	}
	for sid, v := range before {
		if after[sid] != v {
			t.Errorf("%s after the swap:\n%s\nbefore:\n%s", sid, after[sid], v)
		}
	}
	t.Logf("%d reads through the query API during the replay, none failed", reads.Load())
}
