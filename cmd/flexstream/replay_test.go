package main

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/flexstream/flexstream/projector/readmodel"
)

func conversationViews(t *testing.T, path string) (map[string]string, string) {
	t.Helper()
	s, err := readmodel.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	out := map[string]string{}
	err = readmodel.StoreViews{Store: s}.EachConversation(context.Background(), func(sid string, v json.RawMessage) error {
		out[sid] = string(v)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	st, err := s.Stats()
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(st)
	return out, string(b)
}

// TestReplayDataDir: on an embedded default's directory with nothing
// running — realistic lifecycles (Twilio payloads through the decoder)
// folded live into views of the old layout — `replay --verify` finds
// every view the same and swaps nothing; `replay` builds generation 1,
// equal to the live views, makes it current and removes the old one.
func TestReplayDataDir(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	_, es, stop := startAuditStore(t, filepath.Join(dir, "eventstore"))
	n, err := loadReplayWorkload(ctx, es, 4_000)
	if err != nil || n != 4_000 {
		t.Fatalf("loaded %d: %v", n, err)
	}
	views := filepath.Join(dir, "readmodel")
	store, err := readmodel.Open(views)
	if err != nil {
		t.Fatal(err)
	}
	runCtx, cancel := context.WithCancel(ctx)
	caught := make(chan struct{}, 1)
	done := make(chan error, 1)
	go func() {
		done <- readmodel.Run(runCtx, readmodel.RunConfig{Store: store, Events: es, CaughtUp: func() { caught <- struct{}{} }})
	}()
	select {
	case <-caught:
	case <-time.After(60 * time.Second):
		t.Fatal("the live fold never caught up")
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	store.Close()
	stop()
	live, liveStats := conversationViews(t, views)
	if len(live) < 400 {
		t.Fatalf("only %d conversations", len(live))
	}

	code, out, errOut := runArgs(t, []string{"replay", "--data", dir, "--verify", "--log-level", "error"}, nil)
	if code != exitOK || !strings.Contains(out, "every view is the same") {
		t.Fatalf("verify: exit %d\n%s\n%s", code, out, errOut)
	}
	if g, _, _ := readmodel.CurrentGeneration(views); g != 0 {
		t.Fatalf("verify made generation %d current", g)
	}

	code, out, errOut = runArgs(t, []string{"replay", "--data", dir, "--log-level", "error"}, nil)
	if code != exitOK || !strings.Contains(out, "generation 1 is current; generation 0 removed") {
		t.Fatalf("replay: exit %d\n%s\n%s", code, out, errOut)
	}
	g, path, err := readmodel.CurrentGeneration(views)
	if err != nil || g != 1 {
		t.Fatalf("generation %d, %v", g, err)
	}
	if m, _ := filepath.Glob(filepath.Join(views, "MANIFEST-*")); len(m) != 0 {
		t.Errorf("generation 0 left: %v", m)
	}
	rebuilt, rebuiltStats := conversationViews(t, path)
	if rebuiltStats != liveStats {
		t.Errorf("stats:\n got %s\nwant %s", rebuiltStats, liveStats)
	}
	if len(rebuilt) != len(live) {
		t.Errorf("%d conversations, want %d", len(rebuilt), len(live))
	}
	for sid, v := range live {
		if rebuilt[sid] != v {
			t.Errorf("%s:\n got %s\nwant %s", sid, rebuilt[sid], v)
		}
	}
}

func TestReplayFlagsNameTheBadOne(t *testing.T) {
	for _, c := range []struct {
		args []string
		flag string
	}{
		{[]string{"replay", "--store", "esdb://x:1", "--data", "d"}, "store"},
		{[]string{"replay", "--store", "esdb://x:1"}, "views"},
		{[]string{"replay", "--views", "v"}, "views"},
		{[]string{"replay", "--verify", "--api-url", "ftp://x"}, "api-url"},
	} {
		code, _, errOut := runArgs(t, c.args, nil)
		if code != exitUsage || !strings.Contains(errOut, c.flag) {
			t.Errorf("%v: exit %d, %q", c.args, code, errOut)
		}
	}
}

// TestReplayAfterTheSmokeScenario (issue 8): the simulator's smoke
// scenario runs through the whole product with its data kept; then, with
// nothing running, `replay --verify` finds the rebuilt views equal to the
// live ones, and `replay` swaps in a generation equal to them.
func TestReplayAfterTheSmokeScenario(t *testing.T) {
	dir := t.TempDir()
	code, r, out := runSim(t, "--scenario", "smoke", "--seed", "5", "--data", dir)
	if code != 0 || !r.OK() {
		t.Fatalf("sim: exit %d\n%s", code, out)
	}
	views := filepath.Join(dir, "readmodel")
	_, livePath, err := readmodel.CurrentGeneration(views)
	if err != nil {
		t.Fatal(err)
	}
	live, liveStats := conversationViews(t, livePath)
	if len(live) != r.Interactions {
		t.Fatalf("%d live views for %d interactions", len(live), r.Interactions)
	}

	code, stdout, errOut := runArgs(t, []string{"replay", "--data", dir, "--verify", "--log-level", "error"}, nil)
	if code != exitOK || !strings.Contains(stdout, "every view is the same") {
		t.Fatalf("verify: exit %d\n%s\n%s", code, stdout, errOut)
	}
	code, stdout, errOut = runArgs(t, []string{"replay", "--data", dir, "--log-level", "error"}, nil)
	if code != exitOK {
		t.Fatalf("replay: exit %d\n%s\n%s", code, stdout, errOut)
	}
	g, path, err := readmodel.CurrentGeneration(views)
	if err != nil || g < 1 {
		t.Fatalf("generation %d, %v", g, err)
	}
	rebuilt, rebuiltStats := conversationViews(t, path)
	if rebuiltStats != liveStats || len(rebuilt) != len(live) {
		t.Fatalf("stats %s vs %s; %d vs %d views", rebuiltStats, liveStats, len(rebuilt), len(live))
	}
	for sid, v := range live {
		if rebuilt[sid] != v {
			t.Errorf("%s:\n got %s\nwant %s", sid, rebuilt[sid], v)
		}
	}
}
