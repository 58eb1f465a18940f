package fold

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"
)

// sameJSON fails unless AppendJSON writes what encoding/json writes, error
// for error.
func sameJSON(t testing.TB, what string, v interface {
	AppendJSON([]byte) ([]byte, error)
}) {
	t.Helper()
	want, wantErr := json.Marshal(v)
	got, gotErr := v.AppendJSON([]byte("prefix"))
	if (wantErr != nil) != (gotErr != nil) {
		t.Fatalf("%s: encoding/json error %v, AppendJSON error %v", what, wantErr, gotErr)
	}
	if wantErr != nil {
		return
	}
	if !strings.HasPrefix(string(got), "prefix") {
		t.Fatalf("%s: AppendJSON did not append: %q", what, got)
	}
	if got := string(got[len("prefix"):]); got != string(want) {
		t.Fatalf("%s:\nAppendJSON    %s\nencoding/json %s", what, got, want)
	}
}

// Every view of every lifecycle, after every event, encodes as
// encoding/json encodes it.
func TestAppendJSONIsEncodingJSON(t *testing.T) {
	views := 0
	for _, lc := range lifecycles {
		f := newFolded()
		for _, x := range lc.build(3).events {
			f.apply(t, x, false)
			sameJSON(t, lc.name+" conversation after "+x.id, &f.conv)
			for sid, tv := range f.tasks {
				sameJSON(t, lc.name+" task "+sid+" after "+x.id, tv)
			}
			views += 1 + len(f.tasks)
		}
	}
	if views < 100 {
		t.Fatalf("only %d views compared", views)
	}
}

// The corners the lifecycles do not reach.
func TestAppendJSONCorners(t *testing.T) {
	paris := time.FixedZone("CET", 3600)
	odd := "quote\" back\\ <b>&amp; \n\r\t\b\f\x00\x1f\x7f é 漢 \u2028\u2029 bad\xff\xfe end \U0001F600"
	cases := []struct {
		name string
		v    interface {
			AppendJSON([]byte) ([]byte, error)
		}
	}{
		{"empty conversation", &ConversationView{}},
		{"empty task", &TaskView{}},
		{"escapes everywhere", &ConversationView{
			Sid: odd, State: odd, StateReason: odd, Timers: Timers{Inactive: odd, Closed: odd},
			Participants: map[string]Participant{odd: {Role: odd, Identity: odd, Address: odd, ChannelType: odd}, "": {}},
			Tasks:        map[string]TaskLink{odd: {Status: odd, CanceledReason: odd}, "b": {Accepted: true}, "a": {}},
			MessageKeys:  []string{odd, ""}, InteractionSid: odd, ChannelSid: odd, ChannelType: odd,
		}},
		{"times in zones, nanoseconds, negative and large counts", &ConversationView{
			StateAt: time.Date(2026, 1, 2, 3, 4, 5, 6, paris), RemovedAt: time.Date(1, 1, 1, 0, 0, 0, 1, time.UTC),
			Timers:         Timers{Seen: true, At: time.Date(9999, 12, 31, 23, 59, 59, 999999999, paris)},
			MessageCount:   -3,
			MessageIndexes: [][2]int{{-1, 0}, {1 << 40, 1<<40 + 1}},
			LastActivity:   time.Date(2026, 1, 2, 3, 4, 5, 120000000, time.UTC), FirstSeen: time.Unix(0, 0),
			NoCloseTimer: true, PIIIdentity: true, AgentWithoutInvite: true, AgentPresent: true,
		}},
		{"a zero time in a zone is not omitted by IsZero… but is", &ConversationView{StateAt: time.Time{}.In(paris)}},
		{"empty maps and slices", &ConversationView{Participants: map[string]Participant{}, Tasks: map[string]TaskLink{}, MessageIndexes: [][2]int{}, MessageKeys: []string{}}},
		{"year out of range", &ConversationView{StateAt: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)}},
		{"year before zero", &TaskView{CreatedAt: time.Date(-1, 1, 1, 0, 0, 0, 0, time.UTC)}},
		{"a zone a day ahead", &TaskView{CreatedAt: time.Date(2026, 1, 1, 0, 0, 0, 0, time.FixedZone("x", 86400))}},
		{"a zone a day behind, in a transition", &TaskView{Transitions: []Transition{{At: time.Date(2026, 1, 1, 0, 0, 0, 0, time.FixedZone("y", -86400))}}}},
		{"transition at the zero time", &TaskView{Transitions: []Transition{{}, {Status: odd, At: time.Date(2026, 1, 1, 0, 0, 0, 0, paris), EventType: odd}}}},
		{"full task", &TaskView{
			Sid: "WT1", ConversationSid: "CH1", InteractionSid: odd, ChannelSid: "UO1",
			Queue: Ref{Sid: "WQ1", Name: odd, At: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}, Workflow: Ref{Name: "w"},
			TaskChannel: "chat", Status: "assigned", StatusAt: time.Date(2026, 1, 1, 0, 0, 0, 5, time.UTC),
			Reservations:   map[string]Reservation{"WR2": {Outcome: "accepted", WorkerSid: "WK1"}, "WR1": {}, odd: {DecidedAt: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}},
			CanceledReason: odd, WorkflowTimedOut: true, WaitTime: -1, HandleTime: 1 << 50,
			CreatedAt: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), AcceptedAt: time.Date(2026, 1, 1, 0, 0, 1, 0, time.UTC),
			WrapupAt: time.Date(2026, 1, 1, 0, 0, 2, 0, time.UTC), CompletedAt: time.Date(2026, 1, 1, 0, 0, 3, 0, time.UTC), EndedAt: time.Date(2026, 1, 1, 0, 0, 4, 0, time.UTC),
		}},
		{"a ref of only a zero time in a zone is not zero", &TaskView{Queue: Ref{At: time.Time{}.In(paris)}}},
		{"a ref of only a time", &TaskView{Workflow: Ref{At: time.Date(2026, 1, 1, 0, 0, 0, 0, paris)}}},
	}
	for _, c := range cases {
		sameJSON(t, c.name, c.v)
	}
	if _, err := (&ConversationView{StateAt: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)}).AppendJSON(nil); err == nil {
		t.Fatal("a year past 9999 encoded without an error")
	}
}

func FuzzAppendJSON(f *testing.F) {
	f.Add("CH1", "<&>\u2028", "bad\xff", int64(0), int64(1), true)
	f.Add("", "", "", int64(-5), int64(1<<62), false)
	f.Fuzz(func(t *testing.T, a, b, c string, n, ns int64, flag bool) {
		at := time.Unix(n%(1<<35), ns%1e9).In(time.FixedZone("z", int(n%100000))) // offsets past a day too
		conv := &ConversationView{
			Sid: a, State: b, StateReason: c, StateAt: at, Timers: Timers{Inactive: c, Seen: flag, At: at},
			Participants: map[string]Participant{a: {Role: b, Identity: c, IdentityPII: flag, AddedAt: at}, b: {Address: a}},
			Tasks:        map[string]TaskLink{c: {Status: a, At: at, Accepted: flag}},
			MessageCount: int(n), MessageIndexes: [][2]int{{int(n), int(ns)}}, MessageKeys: []string{a, b, c},
			LastActivity: at, AgentPresent: flag,
		}
		sameJSON(t, "conversation", conv)
		task := &TaskView{
			Sid: a, ConversationSid: b, Queue: Ref{Sid: c, At: at}, Status: a, StatusAt: at,
			Transitions:    []Transition{{Status: b, At: at, EventType: c}},
			Reservations:   map[string]Reservation{a: {WorkerSid: b, Outcome: c, CreatedAt: at}, c: {}},
			CanceledReason: b, WorkflowTimedOut: flag, WaitTime: n, HandleTime: ns,
		}
		sameJSON(t, "task", task)
	})
}

// fill sets every field of v, recursively, to a value that is not zero, so
// that a field added to a view and not to AppendJSON fails the comparison.
func fill(t *testing.T, v reflect.Value, n int) {
	t.Helper()
	if v.Type() == reflect.TypeFor[time.Time]() {
		v.Set(reflect.ValueOf(time.Date(2026, 1, 2, 3, 4, 5, n, time.UTC)))
		return
	}
	switch v.Kind() {
	case reflect.String:
		v.SetString(fmt.Sprintf("s<%d>", n))
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Int, reflect.Int64:
		v.SetInt(int64(n + 1))
	case reflect.Struct:
		for i := range v.NumField() {
			fill(t, v.Field(i), n+i)
		}
	case reflect.Array:
		for i := range v.Len() {
			fill(t, v.Index(i), n+i)
		}
	case reflect.Slice:
		v.Set(reflect.MakeSlice(v.Type(), 2, 2))
		for i := range v.Len() {
			fill(t, v.Index(i), n+i)
		}
	case reflect.Map:
		v.Set(reflect.MakeMap(v.Type()))
		for i := range 2 {
			k, e := reflect.New(v.Type().Key()).Elem(), reflect.New(v.Type().Elem()).Elem()
			fill(t, k, n+i)
			fill(t, e, n+i)
			v.SetMapIndex(k, e)
		}
	default:
		t.Fatalf("fill: a field of kind %s: teach fill and AppendJSON about it", v.Kind())
	}
}

// Every field of both views, set: none is missing from AppendJSON.
func TestAppendJSONHasEveryField(t *testing.T) {
	var c ConversationView
	fill(t, reflect.ValueOf(&c).Elem(), 0)
	sameJSON(t, "every conversation field", &c)
	var tv TaskView
	fill(t, reflect.ValueOf(&tv).Elem(), 0)
	sameJSON(t, "every task field", &tv)
}
