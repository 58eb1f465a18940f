package main

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"go.uber.org/zap"

	"github.com/flexstream/flexstream/internal/audit"
	"github.com/flexstream/flexstream/internal/datadir"
	"github.com/flexstream/flexstream/internal/esserver"
	"github.com/flexstream/flexstream/internal/eventstore"
	"github.com/flexstream/flexstream/internal/pii"
	"github.com/flexstream/flexstream/projector/domain"
	"github.com/flexstream/flexstream/reactors/act"
	"github.com/flexstream/flexstream/reactors/decide"
	"github.com/flexstream/flexstream/reactors/engine"
)

const (
	auditKeyValue = "audit-test-pseudonym-key-0123456789abcdef"
	auditPhone    = "+15551234567"
)

// auditStory is one conversation in the store: its first task hits the
// workflow timeout, the reactor messages the customer and re-invites, the
// new task is created and accepted.
type auditStory struct {
	ch, wt1, wt2, customer string
}

func auditSid(prefix string, n int) string { return fmt.Sprintf("%s%032x", prefix, n) }

// startAuditStore serves an embedded event store over dir and returns its
// connection string and a client; stop closes both.
func startAuditStore(t *testing.T, dir string) (conn string, es *eventstore.Client, stop func()) {
	t.Helper()
	ctx := context.Background()
	srv, err := esserver.Start(ctx, esserver.Config{Addr: "127.0.0.1:0", DataDir: dir, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	es, err = eventstore.Connect(ctx, eventstore.Config{ConnString: srv.ConnectionString(), ConnectTimeout: 10 * time.Second})
	if err != nil {
		_ = srv.Close()
		t.Fatal(err)
	}
	stopped := false
	stop = func() {
		if !stopped {
			stopped = true
			_ = es.Close()
			_ = srv.Close()
		}
	}
	t.Cleanup(stop)
	return srv.ConnectionString(), es, stop
}

// seedAuditStory appends the story as the projector and the reactors
// write it.
func seedAuditStory(t *testing.T, es *eventstore.Client) auditStory {
	t.Helper()
	ctx := context.Background()
	p, err := pii.New([]byte(auditKeyValue))
	if err != nil {
		t.Fatal(err)
	}
	s := auditStory{ch: auditSid("CH", 0xa1), wt1: auditSid("WT", 0xa1), wt2: auditSid("WT", 0xa2), customer: p.Address("whatsapp:" + auditPhone)}
	is, kd, uo, wq, ww, fallback := auditSid("IS", 1), auditSid("KD", 0xa1), auditSid("UO", 0xa1), auditSid("WQ", 1), auditSid("WW", 1), auditSid("WW", 2)
	t0 := time.Date(2025, 3, 1, 10, 0, 0, 0, time.UTC)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	n := 0
	twilio := func(typ, ceType string, when time.Time, e domain.Event) eventstore.RecordedEvent {
		t.Helper()
		n++
		e.Type, e.CEType, e.At, e.ConversationSid, e.ChatServiceSid = typ, ceType, when, s.ch, is
		stream := domain.StreamFor(e, "x")
		ceID := fmt.Sprintf("EV%032x", n)
		data, _ := json.Marshal(e)
		meta, _ := json.Marshal(domain.Metadata{CorrelationID: s.ch, CausationID: ceID, Topic: "twilio.events.v1", Offset: int64(n), ReceivedAt: when.Add(150 * time.Millisecond)})
		id := domain.EventID(ceID, stream)
		if _, err := es.Append(ctx, stream, eventstore.Any, eventstore.Event{ID: id, Type: typ, Data: data, Metadata: meta}); err != nil {
			t.Fatal(err)
		}
		return eventstore.RecordedEvent{ID: id, Stream: stream}
	}
	rev := -1
	reaction := func(typ string, v any) {
		t.Helper()
		data, _ := json.Marshal(v)
		exp := eventstore.NoStream
		if rev >= 0 {
			exp = eventstore.Revision(uint64(rev))
		}
		if _, err := es.Append(ctx, engine.StreamPrefix+s.wt1, exp, eventstore.Event{ID: uuid.New(), Type: typ, Data: data, Metadata: []byte("{}")}); err != nil {
			t.Fatal(err)
		}
		rev++
	}
	task := func(e domain.Event) domain.Event {
		e.InteractionSid, e.ChannelSid, e.QueueSid, e.QueueName = kd, uo, wq, "Support"
		if e.WorkflowSid == "" {
			e.WorkflowSid = ww
		}
		return e
	}

	twilio(domain.ConversationAdded, "com.twilio.conversations.conversation.added", at(0), domain.Event{State: "active"})
	twilio(domain.ParticipantAdded, "com.twilio.conversations.participant.added", at(1000), domain.Event{ParticipantSid: auditSid("MB", 1), Role: domain.RoleCustomer, Address: s.customer, ChannelType: "whatsapp"})
	twilio(domain.MessageAdded, "com.twilio.conversations.message.added", at(2000), domain.Event{MessageSid: auditSid("IM", 1), Author: s.customer, BodyLength: 21})
	twilio(domain.TaskCreated, "com.twilio.taskrouter.task.created", at(3000), task(domain.Event{TaskSid: s.wt1, AssignmentStatus: "pending", TaskChannel: "chat",
		Customer: s.customer, TaskAttributes: json.RawMessage(`{"conversationSid":"` + s.ch + `","from":"` + s.customer + `"}`)}))
	trigger := twilio(domain.WorkflowTimedOut, "com.twilio.taskrouter.workflow.timeout", at(63000), task(domain.Event{TaskSid: s.wt1}))
	twilio(domain.TaskCanceled, "com.twilio.taskrouter.task.canceled", at(63000), task(domain.Event{TaskSid: s.wt1, AssignmentStatus: "canceled", CanceledReason: "Workflow Timeout"}))

	reaction(engine.EvPlanned, engine.Planned{
		Trigger: engine.TriggerInfo{EventID: trigger.ID.String(), EventType: domain.WorkflowTimedOut, Stream: trigger.Stream, TaskSid: s.wt1, At: at(63000)},
		Plan: decide.Plan{Kind: decide.KindWorkflowTimeout, Rule: "workflow.timeout/retry", Deadline: at(663000),
			Reason: "task " + s.wt1 + ": workflow timed out in queue " + wq + "; message, re-invite 1 of 2 through " + fallback,
			Actions: []decide.Action{
				{Kind: decide.ActMessage, ChatServiceSid: is, ConversationSid: s.ch, Body: "Still looking for an agent for you."},
				{Kind: decide.ActReinvite, InteractionSid: kd, ChannelSid: uo, WorkflowSid: fallback, TaskChannel: "chat", Attempt: 1},
			}},
		Owner: "reactor", At: at(65000),
	})
	reaction(engine.EvStarted, engine.Step{Action: 0, Attempt: 1, Owner: "reactor", At: at(65100)})
	reaction(engine.EvSucceeded, engine.Step{Action: 0, Attempt: 1, Owner: "reactor", At: at(65400), Result: &act.Result{Sid: auditSid("IM", 2)}})
	reaction(engine.EvStarted, engine.Step{Action: 1, Attempt: 1, Owner: "reactor", At: at(65500)})
	reaction(engine.EvSucceeded, engine.Step{Action: 1, Attempt: 1, Owner: "reactor", At: at(65900), Result: &act.Result{Sid: auditSid("KG", 1), TaskSid: s.wt2}})
	twilio(domain.TaskCreated, "com.twilio.taskrouter.task.created", at(66000), task(domain.Event{TaskSid: s.wt2, WorkflowSid: fallback, AssignmentStatus: "pending", TaskChannel: "chat",
		TaskAttributes: json.RawMessage(`{"conversationSid":"` + s.ch + `","flexstream":{"action":1,"attempt":1}}`)}))
	reaction(engine.EvCompleted, engine.Step{Owner: "reactor", At: at(66100), Reason: "every action done"})
	twilio(domain.ReservationCreated, "com.twilio.taskrouter.reservation.created", at(67000), task(domain.Event{TaskSid: s.wt2, ReservationSid: auditSid("WR", 1), WorkerSid: auditSid("WK", 1)}))
	twilio(domain.ReservationAccepted, "com.twilio.taskrouter.reservation.accepted", at(70000), task(domain.Event{TaskSid: s.wt2, ReservationSid: auditSid("WR", 1), WorkerSid: auditSid("WK", 1)}))
	return s
}

func newAuditStore(t *testing.T) (string, auditStory) {
	t.Helper()
	conn, es, _ := startAuditStore(t, t.TempDir())
	return conn, seedAuditStory(t, es)
}

func runAudit(t *testing.T, envs map[string]string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	return runArgs(t, append([]string{"audit", "--log-level", "warn"}, args...), envs)
}

// The test: trigger → decision → re-invite → new task → acceptance, in order.
func TestAuditWorkflowTimeoutTable(t *testing.T) {
	conn, s := newAuditStore(t)
	code, out, errOut := runAudit(t, nil, s.ch, "--store", conn) // the SID as DESIGN §11 writes it: positional
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	t.Logf("\n%s", out)
	lines := strings.Split(out, "\n")
	if !strings.HasPrefix(lines[0], "conversation "+s.ch+": 15 events (9 from Twilio, 6 from the reactors); tasks "+s.wt1+", "+s.wt2) {
		t.Fatalf("heading %q", lines[0])
	}
	find := func(from int, parts ...string) int {
		t.Helper()
		for i := from; i < len(lines); i++ {
			ok := true
			for _, p := range parts {
				ok = ok && strings.Contains(lines[i], p)
			}
			if ok {
				return i
			}
		}
		t.Fatalf("no line after %d with %q in:\n%s", from, parts, out)
		return 0
	}
	header := find(0, "TIME", "SOURCE", "TYPE", "TASK", "DETAIL")
	trigger := find(header, "2025-03-01T10:01:03.000Z", "twilio", "WorkflowTimedOut", "workflow.timeout: task "+s.wt1, "trigger of reaction-"+s.wt1)
	decision := find(trigger, "reactor", "ReactionPlanned", "rule workflow.timeout/retry", "re-invite through")
	reinvite := find(decision, "reactor", "ActionSucceeded", "action 2/2 reinvite", "new task "+s.wt2)
	created := find(reinvite, "twilio", "TaskCreated", "task.created: task "+s.wt2, "made by the reactors' re-invite (attempt 1)")
	find(created, "2025-03-01T10:01:10.000Z", "twilio", "ReservationAccepted", "reservation.accepted", "task "+s.wt2)

	col := strings.Index(lines[header], "DETAIL")
	for _, l := range lines[header+1:] {
		if l != "" && (len(l) < col || l[col-1] != ' ' || l[col] == ' ') {
			t.Fatalf("detail column not aligned at %d: %q", col, l)
		}
	}
	if strings.Contains(out, "5551234567") || strings.Contains(out, "+1555") {
		t.Fatal("the customer's number is printed")
	}
	if !strings.Contains(out, s.customer) {
		t.Fatal("the customer's pseudonym is what the store holds: it is shown")
	}
}

func TestAuditJSONAndCSV(t *testing.T) {
	conn, s := newAuditStore(t)

	code, out, errOut := runAudit(t, nil, "--sid", s.ch, "--store", conn, "--format", "json")
	if code != exitOK {
		t.Fatalf("json: exit %d: %s", code, errOut)
	}
	var rows []map[string]any
	if err := json.Unmarshal([]byte(out), &rows); err != nil {
		t.Fatalf("json output does not parse: %v\n%s", err, out)
	}
	if len(rows) != 15 {
		t.Fatalf("%d rows, want 15", len(rows))
	}
	var order []string
	for _, r := range rows {
		order = append(order, r["type"].(string))
		for _, k := range []string{"at", "source", "stream", "revision", "type", "detail", "data"} {
			if _, ok := r[k]; !ok {
				t.Fatalf("row without %q: %v", k, r)
			}
		}
	}
	want := "ConversationAdded ParticipantAdded MessageAdded TaskCreated WorkflowTimedOut TaskCanceled ReactionPlanned ActionStarted ActionSucceeded ActionStarted ActionSucceeded TaskCreated ReactionCompleted ReservationCreated ReservationAccepted"
	if got := strings.Join(order, " "); got != want {
		t.Fatalf("order:\n got %s\nwant %s", got, want)
	}
	if m := rows[4]["metadata"].(map[string]any); m["kafkaTopic"] != "twilio.events.v1" || m["$causationId"] == "" {
		t.Fatalf("the trigger's metadata: %v", m)
	}

	code, out, errOut = runAudit(t, nil, "--store", conn, "--format", "csv", s.ch)
	if code != exitOK {
		t.Fatalf("csv: exit %d: %s", code, errOut)
	}
	recs, err := csv.NewReader(strings.NewReader(out)).ReadAll()
	if err != nil {
		t.Fatalf("csv output does not parse: %v", err)
	}
	if len(recs) != 16 || strings.Join(recs[0], ",") != strings.Join(audit.CSVHeader, ",") {
		t.Fatalf("csv: %d records, header %v", len(recs), recs[0])
	}
	if recs[5][6] != "WorkflowTimedOut" || recs[5][0] != "2025-03-01T10:01:03.000Z" {
		t.Fatalf("csv row 5: %v", recs[5])
	}
}

// A task SID audits its conversation and marks the task's rows: the first
// task through its reaction, the re-invited one by reading $all.
func TestAuditTask(t *testing.T) {
	conn, s := newAuditStore(t)
	for _, tt := range []struct {
		task   string
		marked string
	}{
		{s.wt1, "TaskCreated WorkflowTimedOut TaskCanceled ReactionPlanned ActionStarted ActionSucceeded ActionStarted ActionSucceeded ReactionCompleted"},
		{s.wt2, "ActionSucceeded TaskCreated ReservationCreated ReservationAccepted"},
	} {
		code, out, errOut := runAudit(t, nil, "--sid", tt.task, "--store", conn, "--format", "json")
		if code != exitOK {
			t.Fatalf("%s: exit %d: %s", tt.task, code, errOut)
		}
		var rows []audit.Row
		if err := json.Unmarshal([]byte(out), &rows); err != nil {
			t.Fatal(err)
		}
		var marked []string
		for _, r := range rows {
			if r.Marked {
				marked = append(marked, r.Type)
			}
		}
		if len(rows) != 15 || strings.Join(marked, " ") != tt.marked {
			t.Fatalf("%s: %d rows, marked %v, want %s", tt.task, len(rows), marked, tt.marked)
		}
	}
	code, out, _ := runAudit(t, nil, "--sid", s.wt2, "--store", conn)
	if code != exitOK || !strings.Contains(out, "rows of task "+s.wt2+" are marked *") || !strings.Contains(out, "\n*  ") {
		t.Fatalf("table of a task: exit %d\n%s", code, out)
	}
}

func TestAuditUnknownSID(t *testing.T) {
	conn, _ := newAuditStore(t)
	for _, sid := range []string{auditSid("CH", 0xdead), auditSid("WT", 0xdead)} {
		code, out, errOut := runAudit(t, nil, "--sid", sid, "--store", conn)
		if code != exitFailure || !strings.Contains(errOut, sid) || !strings.Contains(errOut, "not in the event store") || out != "" {
			t.Fatalf("%s: exit %d, stdout %q, stderr %q", sid, code, out, errOut)
		}
	}
}

func TestAuditCustomer(t *testing.T) {
	p, err := pii.New([]byte(auditKeyValue))
	if err != nil {
		t.Fatal(err)
	}
	want := p.Address("whatsapp:" + auditPhone)

	for _, number := range []string{auditPhone, "whatsapp:" + auditPhone} {
		code, out, errOut := runAudit(t, map[string]string{pii.KeyEnv: auditKeyValue}, "--customer", number)
		if code != exitOK || !strings.Contains(out, want) || !strings.Contains(out, p.Phone(auditPhone)) {
			t.Fatalf("%s: exit %d, stdout %q, stderr %q; want %s", number, code, out, errOut, want)
		}
		if strings.Contains(out, "5551234567") || strings.Contains(errOut, "5551234567") {
			t.Fatal("the number itself is printed")
		}
	}

	// The embedded default's key, from its data directory.
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "pseudonym.key"), []byte(auditKeyValue+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := runAudit(t, nil, "--customer", auditPhone, "--data", dir, "--format", "json")
	var ps []audit.Pseudonym
	if code != exitOK || json.Unmarshal([]byte(out), &ps) != nil || len(ps) < 2 || ps[1].Pseudonym != want {
		t.Fatalf("--data: exit %d, stdout %q, stderr %q", code, out, errOut)
	}

	// No key: a clear error naming the variable, and no key is made.
	empty := t.TempDir()
	code, out, errOut = runAudit(t, nil, "--customer", auditPhone, "--data", empty)
	if code != exitUsage || !strings.Contains(errOut, pii.KeyEnv) || out != "" || strings.Contains(errOut, "5551234567") {
		t.Fatalf("without a key: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	if _, err := os.Stat(filepath.Join(empty, "pseudonym.key")); err == nil {
		t.Fatal("a key was generated")
	}
	code, _, errOut = runAudit(t, nil, "--customer", auditPhone, "--store", "esdb://127.0.0.1:1?tls=false")
	if code != exitUsage || !strings.Contains(errOut, pii.KeyEnv) {
		t.Fatalf("without a key, --store: exit %d, stderr %q", code, errOut)
	}
	code, _, errOut = runAudit(t, map[string]string{pii.KeyEnv: auditKeyValue}, "--customer", "alice")
	if code != exitUsage || !strings.Contains(errOut, "--customer") {
		t.Fatalf("not a number: exit %d, stderr %q", code, errOut)
	}
}

// --data reads a stopped embedded default in place, through the same
// client; a running one's lock refuses it and points at --store.
func TestAuditData(t *testing.T) {
	dir := t.TempDir()
	_, es, stop := startAuditStore(t, filepath.Join(dir, "eventstore"))
	s := seedAuditStory(t, es)
	stop()

	for _, d := range []string{dir, filepath.Join(dir, "eventstore")} {
		code, out, errOut := runAudit(t, nil, "--sid", s.ch, "--data", d)
		if code != exitOK || !strings.Contains(out, "15 events") || !strings.Contains(out, "new task "+s.wt2) {
			t.Fatalf("--data %s: exit %d, stdout %q, stderr %q", d, code, out, errOut)
		}
	}

	lock, err := datadir.Open(dir) // `up` running on it
	if err != nil {
		t.Fatal(err)
	}
	code, out, errOut := runAudit(t, nil, "--sid", s.ch, "--data", dir)
	_ = lock.Close()
	if code != exitFailure || !strings.Contains(errOut, "in use") || !strings.Contains(errOut, "--store "+localStore) || out != "" {
		t.Fatalf("locked: exit %d, stdout %q, stderr %q", code, out, errOut)
	}

	for _, d := range []string{filepath.Join(dir, "nope"), t.TempDir()} {
		code, _, errOut = runAudit(t, nil, "--sid", s.ch, "--data", d)
		if code != exitFailure || !strings.Contains(errOut, "--data") {
			t.Fatalf("--data %s: exit %d, stderr %q", d, code, errOut)
		}
	}
}

func TestAuditConfigErrors(t *testing.T) {
	ch := auditSid("CH", 1)
	tests := []struct {
		name string
		args []string
		env  map[string]string
		want string
	}{
		{"bad format", []string{"--sid", ch, "--format", "xml"}, nil, "--format"},
		{"bad format from the environment", []string{"--sid", ch}, map[string]string{"FLEXSTREAM_FORMAT": "yaml"}, "--format"},
		{"no SID", nil, nil, "--sid"},
		{"not a conversation or task SID", []string{"--sid", "KD" + ch[2:]}, nil, "--sid"},
		{"short SID", []string{"--sid", "CH123"}, nil, "--sid"},
		{"store and data", []string{"--sid", ch, "--store", "esdb://127.0.0.1:2113?tls=false", "--data", "x"}, nil, "--store"},
		{"SID and customer", []string{"--sid", ch, "--customer", auditPhone}, nil, "--customer"},
		{"bad store", []string{"--sid", ch, "--store", "http://x"}, nil, "--store"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errOut := runAudit(t, tt.env, tt.args...)
			lines := strings.Split(strings.TrimSpace(errOut), "\n")
			if code != exitUsage || len(lines) != 1 || !strings.Contains(lines[0], tt.want) || out != "" {
				t.Fatalf("exit %d, stdout %q, stderr %q; want one line naming %s", code, out, errOut, tt.want)
			}
			if strings.Contains(errOut, "5551234567") {
				t.Fatal("the number is echoed")
			}
		})
	}
}

func TestPositionalAsFlag(t *testing.T) {
	fs := flag.NewFlagSet("audit", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	auditFlags(fs, env{})
	fs.Bool("verbose", false, "")
	tests := []struct {
		args []string
		want string
	}{
		{nil, ""},
		{[]string{"CH1"}, "--sid CH1"},
		{[]string{"CH1", "--format", "json"}, "--sid CH1 --format json"},
		{[]string{"--format", "json", "CH1"}, "--format json --sid CH1"},
		{[]string{"--format=json", "CH1", "--store", "esdb://x"}, "--format=json --sid CH1 --store esdb://x"},
		{[]string{"--verbose", "CH1"}, "--verbose --sid CH1"},
		{[]string{"-format", "csv", "CH1", "CH2"}, "-format csv --sid CH1 CH2"},
		{[]string{"--", "CH1"}, "--sid CH1"},
		{[]string{"--sid", "CH1"}, "--sid CH1"},
	}
	for _, tt := range tests {
		if got := strings.Join(positionalAsFlag(fs, tt.args, "sid"), " "); got != tt.want {
			t.Errorf("%q: got %q, want %q", tt.args, got, tt.want)
		}
	}
}
