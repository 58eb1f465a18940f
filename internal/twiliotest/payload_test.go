package twiliotest_test

import (
	"encoding/json"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"testing"
	"time"

	tt "github.com/flexstream/flexstream/internal/twiliotest"
	"github.com/flexstream/flexstream/schemas"
)

var conversationsTypes = []string{
	"onConversationAdded", "onConversationUpdated", "onConversationStateUpdated", "onParticipantAdded",
	"onMessageAdded", "onDeliveryUpdated", "onConversationRemoved", "onMessageAdd", "onConversationAdd",
	"onParticipantAdd",
}

func sidRE(prefix string) *regexp.Regexp { return regexp.MustCompile("^" + prefix + "[0-9a-f]{32}$") }

func checkSid(t *testing.T, what, prefix, sid string) {
	t.Helper()
	if !sidRE(prefix).MatchString(sid) {
		t.Errorf("%s = %q, want %s + 32 hex", what, sid, prefix)
	}
}

func TestNewIDs(t *testing.T) {
	a, b, c := tt.NewIDs(1), tt.NewIDs(1), tt.NewIDs(2)
	if a != b {
		t.Error("same seed, different IDs")
	}
	if a.Task == c.Task || a.Account == c.Account || a.Conversation == c.Conversation {
		t.Error("different seeds, same IDs")
	}
	checks := []struct{ name, prefix, sid string }{
		{"Account", "AC", a.Account}, {"Workspace", "WS", a.Workspace}, {"Workflow", "WW", a.Workflow},
		{"Queue", "WQ", a.Queue}, {"Task", "WT", a.Task}, {"Reservation", "WR", a.Reservation},
		{"Worker", "WK", a.Worker}, {"Conversation", "CH", a.Conversation}, {"Interaction", "KD", a.Interaction},
		{"Channel", "UO", a.Channel}, {"ChatService", "IS", a.ChatService}, {"Participant", "MB", a.Participant},
		{"Message", "IM", a.Message}, {"SID", "EV", a.SID("EV", "x")},
	}
	seen := map[string]bool{}
	for _, c := range checks {
		checkSid(t, c.name, c.prefix, c.sid)
		if seen[c.sid[2:]] {
			t.Errorf("%s repeats another SID's digits", c.name)
		}
		seen[c.sid[2:]] = true
	}
	if !regexp.MustCompile(`^\+1555\d{7}$`).MatchString(a.CustomerPhone) || a.CustomerAddress() != "whatsapp:"+a.CustomerPhone {
		t.Errorf("customer %q %q", a.CustomerPhone, a.CustomerAddress())
	}
	if a.SID("EV", "x") == a.SID("EV", "y") || a.SID("EV", "x") != b.SID("EV", "x") {
		t.Error("SID not deterministic or not distinct")
	}
}

func TestTaskRouterEvent(t *testing.T) {
	ids := tt.NewIDs(11)
	for _, et := range tt.TaskRouterEventTypes() {
		form := tt.TaskRouterEvent(ids, et)
		for k, v := range form {
			if len(v) != 1 {
				t.Errorf("%s: %s has %d values", et, k, len(v))
			}
		}
		cb, err := schemas.ParseTaskRouter(form)
		if err != nil {
			t.Fatalf("%s: %v", et, err)
		}
		if cb.EventType != et || cb.AccountSid != ids.Account || cb.WorkspaceSid != ids.Workspace || cb.EventDescription == "" {
			t.Errorf("%s: common fields %+v", et, cb)
		}
		if cb.Sid != "" {
			t.Errorf("%s: Sid %q without WithEventSid", et, cb.Sid)
		}
		ts, err := strconv.ParseInt(cb.Timestamp, 10, 64)
		if err != nil || !time.Unix(ts, 0).Equal(tt.EventTime(et)) {
			t.Errorf("%s: Timestamp %q, want epoch seconds of %v", et, cb.Timestamp, tt.EventTime(et))
		}
		wantType, wantSid := "Task", ids.Task
		switch et[:4] {
		case "rese":
			wantType, wantSid = "Reservation", ids.Reservation
		case "work":
			if et == "worker.activity.update" {
				wantType, wantSid = "Worker", ids.Worker
			}
		}
		if cb.ResourceType != wantType || cb.ResourceSid != wantSid {
			t.Errorf("%s: resource %s %s, want %s %s", et, cb.ResourceType, cb.ResourceSid, wantType, wantSid)
		}
		if et == "worker.activity.update" {
			if cb.WorkerSid != ids.Worker || cb.WorkerName == "" || cb.WorkerAttributes == "" || cb.TaskSid != "" {
				t.Errorf("%s: %+v", et, cb)
			}
			continue
		}
		if cb.TaskSid != ids.Task || cb.TaskQueueSid != ids.Queue || cb.WorkflowSid != ids.Workflow ||
			cb.TaskAge == "" || cb.TaskPriority == "" || cb.TaskAssignmentStatus == "" || cb.TaskChannelUniqueName == "" {
			t.Errorf("%s: task fields %+v", et, cb)
		}
		attrs, err := cb.Attributes()
		if err != nil {
			t.Fatalf("%s: %v", et, err)
		}
		want := schemas.TaskAttributes{
			ConversationSid: ids.Conversation, FlexInteractionSid: ids.Interaction, FlexInteractionChannelSid: ids.Channel,
			ChannelType: "whatsapp", From: ids.CustomerAddress(), Direction: "inbound", CustomerName: ids.CustomerAddress(),
		}
		if attrs != want {
			t.Errorf("%s: attributes %+v, want %+v", et, attrs, want)
		}
		isRes := et[:4] == "rese"
		if isRes != (cb.ReservationSid != "") || isRes != (cb.WorkerSid != "") {
			t.Errorf("%s: ReservationSid %q WorkerSid %q", et, cb.ReservationSid, cb.WorkerSid)
		}
		if (et == "task.canceled") != (cb.TaskCanceledReason != "") {
			t.Errorf("%s: TaskCanceledReason %q", et, cb.TaskCanceledReason)
		}
	}
	statuses := map[string]string{
		"task.created": "pending", "reservation.created": "reserved", "reservation.accepted": "assigned",
		"task.wrapup": "wrapping", "task.completed": "completed", "task.canceled": "canceled",
	}
	for et, want := range statuses {
		if got := tt.TaskRouterEvent(ids, et).Get("TaskAssignmentStatus"); got != want {
			t.Errorf("%s: TaskAssignmentStatus %q, want %q", et, got, want)
		}
	}
}

func TestTaskRouterOptions(t *testing.T) {
	ids := tt.NewIDs(12)
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	ev := ids.SID("EV", "one")
	form := tt.TaskRouterEvent(ids, "task.canceled",
		tt.WithEventSid(ev), tt.WithCanceledReason("Customer left"), tt.WithTimestamp(at), tt.WithoutConversation(),
		tt.Set("TaskPriority", "5"))
	cb, err := schemas.ParseTaskRouter(form)
	if err != nil {
		t.Fatal(err)
	}
	checkSid(t, "Sid", "EV", cb.Sid)
	if cb.Sid != ev || cb.TaskCanceledReason != "Customer left" || cb.Timestamp != strconv.FormatInt(at.Unix(), 10) || cb.TaskPriority != "5" {
		t.Errorf("options not applied: %+v", cb)
	}
	attrs, err := cb.Attributes()
	if err != nil || attrs.ConversationSid != "" || attrs.FlexInteractionSid != ids.Interaction {
		t.Errorf("WithoutConversation: %+v %v", attrs, err)
	}
	if got := tt.TaskRouterEvent(ids, "task.created", tt.WithTimestampMillis(at)).Get("Timestamp"); got != strconv.FormatInt(at.UnixMilli(), 10) {
		t.Errorf("WithTimestampMillis: %s", got)
	}
	cb, _ = schemas.ParseTaskRouter(tt.TaskRouterEvent(ids, "task.created", tt.WithTaskAttributes("not json")))
	if _, err := cb.Attributes(); err == nil {
		t.Error("WithTaskAttributes: invalid JSON accepted")
	}
	if _, err := schemas.ParseTaskRouter(tt.TaskRouterEvent(ids, "task.created", tt.Del("ResourceSid"))); err == nil {
		t.Error("Del: ResourceSid still there")
	}
}

func TestConversationsEvent(t *testing.T) {
	ids := tt.NewIDs(13)
	all := append(slices.Clone(conversationsTypes), schemas.ConversationsEventTypes()...)
	for _, et := range all {
		form := tt.ConversationsEvent(ids, et)
		w, err := schemas.ParseConversations(form)
		if err != nil {
			t.Fatalf("%s: %v", et, err)
		}
		if w.EventType != et || w.AccountSid != ids.Account || w.ChatServiceSid != ids.ChatService || w.RetryCount != "0" {
			t.Errorf("%s: common fields %+v", et, w)
		}
		if et != "onConversationAdd" && et[:6] != "onUser" && w.ConversationSid != ids.Conversation {
			t.Errorf("%s: ConversationSid %q", et, w.ConversationSid)
		}
		if !schemas.IsPreEvent(et) && w.DateCreated == "" {
			t.Errorf("%s: no DateCreated", et)
		}
		if w.DateCreated != "" {
			if _, err := time.Parse(time.RFC3339, w.DateCreated); err != nil {
				t.Errorf("%s: DateCreated %v", et, err)
			}
		}
	}

	w := parseConv(t, ids, "onConversationAdd")
	if w.ConversationSid != "" || w.BindingAddress != ids.CustomerAddress() {
		t.Errorf("onConversationAdd: %+v", w)
	}
	w = parseConv(t, ids, "onConversationAdded")
	if w.State != "active" || w.BindingAddress != ids.CustomerAddress() || w.BindingProxyAddress != ids.ProxyAddress() {
		t.Errorf("onConversationAdded: %+v", w)
	}
	w = parseConv(t, ids, "onConversationStateUpdated")
	if w.StateFrom != "active" || w.StateTo != "inactive" || w.Reason != "TIMER" {
		t.Errorf("onConversationStateUpdated: %+v", w)
	}
	w = parseConv(t, ids, "onConversationStateUpdated", tt.WithStateFrom("inactive"), tt.WithStateTo("closed"), tt.WithReason("API"))
	if w.StateFrom != "inactive" || w.StateTo != "closed" || w.State != "closed" || w.Reason != "API" {
		t.Errorf("onConversationStateUpdated opts: %+v", w)
	}
	w = parseConv(t, ids, "onParticipantAdded")
	checkSid(t, "ParticipantSid", "MB", w.ParticipantSid)
	if w.ParticipantSid != ids.Participant || w.BindingType != "whatsapp" ||
		!regexp.MustCompile(`^whatsapp:\+1555\d{7}$`).MatchString(w.BindingAddress) ||
		!regexp.MustCompile(`^whatsapp:\+1\d{10}$`).MatchString(w.BindingProxyAddress) || w.Identity != "" {
		t.Errorf("onParticipantAdded: %+v", w)
	}
	w = parseConv(t, ids, "onParticipantAdded", tt.WithChatParticipant(ids, "agent-alice"))
	if w.Identity != "agent-alice" || w.BindingAddress != "" || w.BindingType != "" || w.ParticipantSid != ids.ChatParticipantSid("agent-alice") {
		t.Errorf("chat participant: %+v", w)
	}
	checkSid(t, "chat ParticipantSid", "MB", w.ParticipantSid)
	w = parseConv(t, ids, "onParticipantAdd")
	if w.ParticipantSid != "" || w.BindingAddress == "" {
		t.Errorf("onParticipantAdd: %+v", w)
	}
	w = parseConv(t, ids, "onMessageAdded")
	if w.MessageSid != ids.Message || w.Index != "0" || w.Body == "" || w.Author != ids.CustomerAddress() || w.ParticipantSid != ids.Participant || w.Source != "WHATSAPP" {
		t.Errorf("onMessageAdded: %+v", w)
	}
	w = parseConv(t, ids, "onMessageAdded", tt.WithAuthor(ids, "alice"), tt.WithBody("On it!"), tt.WithIndex(3), tt.WithMessageSid(ids.SID("IM", "2")))
	if w.Author != "alice" || w.Body != "On it!" || w.Index != "3" || w.Source != "SDK" || w.ClientIdentity != "alice" ||
		w.ParticipantSid != ids.ChatParticipantSid("alice") || w.MessageSid != ids.SID("IM", "2") {
		t.Errorf("agent message: %+v", w)
	}
	w = parseConv(t, ids, "onMessageAdd")
	if w.MessageSid != "" || w.Index != "" || w.Body == "" || w.Author == "" {
		t.Errorf("onMessageAdd: %+v", w)
	}
	w = parseConv(t, ids, "onDeliveryUpdated")
	checkSid(t, "DeliveryReceiptSid", "DY", w.DeliveryReceiptSid)
	if w.Status != "delivered" || w.MessageSid != ids.Message || w.ChannelMessageSid == "" || w.ResourceSid() != w.DeliveryReceiptSid {
		t.Errorf("onDeliveryUpdated: %+v", w)
	}
	w = parseConv(t, ids, "onDeliveryUpdated", tt.WithDeliveryStatus("failed", "63016"))
	if w.Status != "failed" || w.ErrorCode != "63016" {
		t.Errorf("delivery opts: %+v", w)
	}
	w = parseConv(t, ids, "onConversationRemoved")
	if w.State != "closed" || w.DateUpdated == "" {
		t.Errorf("onConversationRemoved: %+v", w)
	}
	at := time.Date(2026, 5, 6, 7, 8, 9, 0, time.UTC)
	w = parseConv(t, ids, "onConversationUpdated", tt.WithDate(at), tt.WithRetryCount(2), tt.WithSource("SDK"))
	if w.DateCreated != "2026-05-06T07:08:09.000Z" || w.DateUpdated != w.DateCreated || w.RetryCount != "2" || w.Source != "SDK" {
		t.Errorf("conversation opts: %+v", w)
	}
}

func parseConv(t *testing.T, ids tt.IDs, et string, opts ...tt.ConversationsOpt) schemas.ConversationsWebhook {
	t.Helper()
	w, err := schemas.ParseConversations(tt.ConversationsEvent(ids, et, opts...))
	if err != nil {
		t.Fatalf("%s: %v", et, err)
	}
	return w
}

// TestLifecycleOrder: default times put a conversation's story in order.
func TestLifecycleOrder(t *testing.T) {
	order := []string{
		"onConversationAdded", "onMessageAdded", "task.created", "reservation.created", "reservation.accepted",
		"task.wrapup", "task.completed", "onConversationStateUpdated", "onConversationRemoved",
	}
	for i := 1; i < len(order); i++ {
		if !tt.EventTime(order[i-1]).Before(tt.EventTime(order[i])) {
			t.Errorf("%s not before %s", order[i-1], order[i])
		}
	}
}

func TestDeterminism(t *testing.T) {
	build := func(seed int64) []any {
		ids := tt.NewIDs(seed)
		var out []any
		for _, et := range tt.TaskRouterEventTypes() {
			out = append(out, tt.TaskRouterEvent(ids, et), tt.TaskRouterESData(ids, et))
		}
		types := schemas.ConversationsEventTypes() // map order: sort
		slices.Sort(types)
		for _, et := range types {
			out = append(out, tt.ConversationsEvent(ids, et), tt.ConversationsESData(ids, et))
		}
		out = append(out, string(tt.EventStreamsDelivery(ids, tt.EventStreamsEvent{Type: "task.created"}, tt.EventStreamsEvent{Type: "onMessageAdded"})))
		return out
	}
	a, b, c := build(5), build(5), build(6)
	for i := range a {
		if !reflect.DeepEqual(a[i], b[i]) {
			t.Errorf("same seed, different payloads: %v\n%v", a[i], b[i])
		}
	}
	ja, _ := json.Marshal(a)
	jc, _ := json.Marshal(c)
	if string(ja) == string(jc) {
		t.Error("different seeds, same payloads")
	}
}
