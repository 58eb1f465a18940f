package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/flexstream/flexstream/internal/embedkafka"
	"github.com/flexstream/flexstream/internal/eventstore"
	"github.com/flexstream/flexstream/internal/pii"
	"github.com/flexstream/flexstream/internal/redrive"
	"github.com/flexstream/flexstream/projector/decode"
	"github.com/flexstream/flexstream/projector/domain"
	"github.com/flexstream/flexstream/projector/readmodel"
	"github.com/flexstream/flexstream/schemas"
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
		{[]string{"replay", "--from", "2026-11-24", "--to", "2026-11-25"}, "to-topic"},
		{[]string{"replay", "--to-topic", "t", "--to", "2026-11-25"}, "from"},
		{[]string{"replay", "--to-topic", "t", "--from", "2026-11-24"}, "to"},
		{[]string{"replay", "--to-topic", "t", "--from", "yesterday", "--to", "2026-11-25"}, "from"},
		{[]string{"replay", "--to-topic", "t", "--from", "2026-11-25", "--to", "2026-11-24"}, "to"},
		{[]string{"replay", "--to-topic", "bad topic", "--from", "2026-11-24", "--to", "2026-11-25"}, "to-topic"},
		{[]string{"replay", "--to-topic", "t", "--verify", "--from", "2026-11-24", "--to", "2026-11-25"}, "to-topic"},
		{[]string{"replay", "--to-topic", "t", "--from", "2026-11-24", "--to", "2026-11-25", "--to-topic-partitions", "0"}, "to-topic-partitions"},
		{[]string{"replay", "--to-topic", "t", "--from", "2026-11-24", "--to", "2026-11-25", "--kafka-brokers", ""}, "kafka-brokers"},
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
// live ones, `replay` swaps in a generation equal to them, and
// `replay --to-topic` re-drives the history as records the projector
// turns into the very events stored.
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
	testRedrive(t, dir)
}

// testRedrive re-drives the whole history of dir, then half of it, to
// topics of an embedded broker: every record is in the contract, decodes
// to the very event the store holds (same stream, id and data: what the
// projector would append), carries no customer data, and comes in $all
// order.
func testRedrive(t *testing.T, dir string) {
	broker, err := embedkafka.Start(embedkafka.Config{Addr: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	defer broker.Close()
	stored := storedTwilioEvents(t, dir)
	if len(stored) < 1000 {
		t.Fatalf("only %d Twilio events stored", len(stored))
	}
	code, stdout, errOut := runArgs(t, []string{"replay", "--data", dir, "--to-topic", "twilio.events.redriven", "--from", "2000-01-01", "--to", "2100-01-01", "--kafka-brokers", broker.Addr(), "--read-batch", "777", "--log-level", "error"}, nil)
	if code != exitOK || !strings.Contains(stdout, fmt.Sprintf(": %d records of", len(stored))) {
		t.Fatalf("re-drive: exit %d\n%s\n%s", code, stdout, errOut)
	}
	recs := consumeAll(t, broker.Addr(), "twilio.events.redriven", len(stored))
	v, err := schemas.DefaultValidator()
	if err != nil {
		t.Fatal(err)
	}
	p, err := pii.New([]byte(strings.Repeat("another key, not the simulator's", 2)))
	if err != nil {
		t.Fatal(err)
	}
	dec := decode.New(p, v)
	for i, m := range recs {
		rec := decode.Record{Topic: m.Topic, Partition: m.Partition, Offset: m.Offset, Key: m.Key, Value: m.Value, Headers: map[string]string{}}
		for _, h := range m.Headers {
			rec.Headers[h.Key] = string(h.Value)
		}
		d, err := dec.Decode(rec)
		if err != nil {
			t.Fatalf("record %d does not decode: %v\n%s", i, err, m.Value)
		}
		want := stored[i]
		data, _ := json.Marshal(d.Event)
		if d.Stream != want.Stream || d.ID != want.ID || d.Event.Type != want.Type || string(data) != string(want.Data) {
			t.Fatalf("record %d: %s %s %s\n%s\nis not the stored\n%s %s %s\n%s", i, d.Stream, d.ID, d.Event.Type, data, want.Stream, want.ID, want.Type, want.Data)
		}
		if rec.Headers[redrive.HeaderRedrivenFrom] == "" {
			t.Fatalf("record %d: no %s header", i, redrive.HeaderRedrivenFrom)
		}
		if plain, _ := url.QueryUnescape(string(m.Value)); regexp.MustCompile(`\+\d{7,}`).MatchString(plain) {
			t.Fatalf("record %d holds a phone number: %s", i, plain)
		}
	}

	// Half the period: exactly the events of that half.
	ats := make([]time.Time, len(stored))
	for i, ev := range stored {
		var e struct {
			At time.Time `json:"at"`
		}
		if err := json.Unmarshal(ev.Data, &e); err != nil {
			t.Fatal(err)
		}
		ats[i] = e.At
	}
	sorted := append([]time.Time(nil), ats...)
	sort.Slice(sorted, func(a, b int) bool { return sorted[a].Before(sorted[b]) })
	from, to := sorted[0], sorted[len(sorted)/2]
	want := 0
	for _, at := range ats {
		if !at.Before(from) && at.Before(to) {
			want++
		}
	}
	code, stdout, errOut = runArgs(t, []string{"replay", "--data", dir, "--to-topic", "half", "--from", from.Format(time.RFC3339Nano), "--to", to.Format(time.RFC3339Nano), "--kafka-brokers", broker.Addr(), "--log-level", "error"}, nil)
	if code != exitOK || !strings.Contains(stdout, fmt.Sprintf(": %d records of", want)) {
		t.Fatalf("re-drive of half: want %d records; exit %d\n%s\n%s", want, code, stdout, errOut)
	}
	if got := consumeAll(t, broker.Addr(), "half", want); len(got) != want {
		t.Fatalf("%d records in the topic, want %d", len(got), want)
	}
}

// storedTwilioEvents reads the Twilio events of dir's event store, in
// $all order.
func storedTwilioEvents(t *testing.T, dir string) []eventstore.RecordedEvent {
	t.Helper()
	storeDir, err := findStoreDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	_, es, stop := startAuditStore(t, storeDir)
	defer stop()
	var out []eventstore.RecordedEvent
	err = es.ReadAll(context.Background(), 0, eventstore.All, func(ev eventstore.RecordedEvent) error {
		switch domain.Category(ev.Stream) {
		case domain.CategoryConversation, domain.CategoryTask, domain.CategoryOther:
			out = append(out, ev)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// consumeAll reads n records of a one-partition topic, then checks that
// no more come.
func consumeAll(t *testing.T, broker, topic string, n int) []kafka.Message {
	t.Helper()
	r := kafka.NewReader(kafka.ReaderConfig{Brokers: []string{broker}, Topic: topic, Partition: 0, MaxWait: 100 * time.Millisecond})
	defer r.Close()
	var out []kafka.Message
	for len(out) < n {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		m, err := r.ReadMessage(ctx)
		cancel()
		if err != nil {
			t.Fatalf("after %d of %d records of %s: %v", len(out), n, topic, err)
		}
		out = append(out, m)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	if m, err := r.ReadMessage(ctx); err == nil {
		t.Fatalf("more than %d records in %s: offset %d", n, topic, m.Offset)
	}
	return out
}
