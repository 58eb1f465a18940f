package ingest_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flexstream/flexstream/ingest"
	"github.com/flexstream/flexstream/internal/twiliotest"
	"github.com/flexstream/flexstream/schemas"
)

// sent is one webhook delivered and what its records must look like.
type sent struct {
	name    string
	route   ingest.Route
	form    url.Values
	json    []byte
	idem    string
	records []want
}

type want struct {
	id, ceType, key, subject, family, contentType string
	value                                         []byte
}

func formCase(name string, route ingest.Route, form url.Values, idem string, w want) sent {
	w.value = []byte(form.Encode())
	w.contentType = schemas.ContentTypeForm
	return sent{name: name, route: route, form: form, idem: idem, records: []want{w}}
}

func trCase(ids twiliotest.IDs, eventType string, opts ...twiliotest.TaskRouterOpt) sent {
	form := twiliotest.TaskRouterEvent(ids, eventType, opts...)
	id := form.Get("Sid")
	if id == "" {
		id = "idem-" + eventType
	}
	return formCase("taskrouter "+eventType, ingest.RouteTaskRouter, form, "idem-"+eventType, want{
		id: id, ceType: "com.twilio.taskrouter." + eventType, key: ids.Conversation,
		subject: form.Get("ResourceSid"), family: schemas.FamilyTaskRouter,
	})
}

func convCase(ids twiliotest.IDs, eventType, ceType, subject string, opts ...twiliotest.ConversationsOpt) sent {
	form := twiliotest.ConversationsEvent(ids, eventType, opts...)
	return formCase("conversations "+eventType, ingest.RouteConversations, form, "idem-"+eventType, want{
		id: "idem-" + eventType, ceType: ceType, key: ids.Conversation, subject: subject, family: schemas.FamilyConversations,
	})
}

// TestEveryFamilyLandsOnTheTopicAsTheContractSays posts realistic signed
// payloads of every family and reads the records back with a plain
// kafka-go connection, header by header.
func TestEveryFamilyLandsOnTheTopicAsTheContractSays(t *testing.T) {
	h := newHarness(t, nil)
	ids := twiliotest.NewIDs(7)
	noConv := twiliotest.NewIDs(8)
	cases := []sent{
		trCase(ids, "task.created", twiliotest.WithEventSid("EV"+strings.Repeat("1", 32))),
		trCase(ids, "reservation.accepted"),
		trCase(ids, "reservation.rejected"),
		trCase(ids, "workflow.timeout"),
		trCase(ids, "task.canceled", twiliotest.WithCanceledReason("Task TTL Exceeded")),
		trCase(ids, "task.deleted"),
		trCase(ids, "task.completed"),
		convCase(ids, "onConversationAdded", "com.twilio.conversations.conversation.added", ids.Conversation),
		convCase(ids, "onParticipantAdded", "com.twilio.conversations.participant.added", ids.Participant),
		convCase(ids, "onMessageAdded", "com.twilio.conversations.message.added", ids.Message),
		convCase(ids, "onConversationStateUpdated", "com.twilio.conversations.conversation-state.updated", ids.Conversation, twiliotest.WithStateTo("closed")),
		convCase(ids, "onMessageAdd", "com.twilio.conversations.pre.message.add", ids.Participant),
	}
	// A task whose conversation is unknown is keyed by its SID, and
	// without Sid or idempotency token its id is the digest of what a
	// retry repeats.
	orphan := twiliotest.TaskRouterEvent(noConv, "task.canceled", twiliotest.WithoutConversation())
	orphanID := digest("com.twilio.taskrouter.task.canceled", orphan.Get("ResourceSid"), orphan.Get("Timestamp"), []byte(orphan.Encode()))
	cases = append(cases, formCase("taskrouter without conversation", ingest.RouteTaskRouter, orphan, "", want{
		id: orphanID, ceType: "com.twilio.taskrouter.task.canceled", key: noConv.Task, subject: orphan.Get("ResourceSid"), family: schemas.FamilyTaskRouter,
	}))
	es := twiliotest.EventStreamsDelivery(ids,
		twiliotest.EventStreamsEvent{Type: "com.twilio.taskrouter.task.canceled", ID: "EV" + strings.Repeat("a", 32)},
		twiliotest.EventStreamsEvent{Type: "com.twilio.conversations.message.added", ID: "NO" + strings.Repeat("b", 32)})
	var elems []struct {
		ID   string          `json:"id"`
		Type string          `json:"type"`
		Data json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(es, &elems); err != nil {
		t.Fatal(err)
	}
	cases = append(cases, sent{name: "event streams", route: ingest.RouteEventStreams, json: es, records: []want{
		{id: elems[0].ID, ceType: elems[0].Type, key: ids.Conversation, family: schemas.FamilyEventStreams, contentType: schemas.ContentTypeJSON, value: elems[0].Data},
		{id: elems[1].ID, ceType: elems[1].Type, key: ids.Conversation, subject: ids.Message, family: schemas.FamilyEventStreams, contentType: schemas.ContentTypeJSON, value: elems[1].Data},
	}})

	start := time.Now()
	for _, c := range cases {
		var req *http.Request
		var err error
		if c.json != nil {
			req, err = twiliotest.JSONRequest(twiliotest.AuthToken, h.url(c.route), c.json, c.idem)
		} else {
			req, err = twiliotest.FormRequest(twiliotest.AuthToken, h.url(c.route), c.form, c.idem)
		}
		if err != nil {
			t.Fatal(err)
		}
		if code, body, _ := h.do(req); code != http.StatusOK {
			t.Fatalf("%s: %d %s", c.name, code, body)
		}
	}
	got := byID(t, h.records())
	total := 0
	validator, err := schemas.NewValidator()
	if err != nil {
		t.Fatal(err)
	}
	traceRE := regexp.MustCompile(`^00-[0-9a-f]{32}-[0-9a-f]{16}-01$`)
	for _, c := range cases {
		for _, w := range c.records {
			total++
			rec, ok := got[w.id]
			if !ok {
				t.Errorf("%s: no record with ce_id %s", c.name, w.id)
				continue
			}
			hd := headerMap(rec)
			check := func(name, got, want string) {
				if got != want {
					t.Errorf("%s: %s = %q, want %q", c.name, name, got, want)
				}
			}
			check("key", string(rec.Key), w.key)
			check("ce_specversion", hd["ce_specversion"], "1.0")
			check("ce_type", hd["ce_type"], w.ceType)
			check("content-type", hd["content-type"], w.contentType)
			check("flexstream_family", hd["flexstream_family"], w.family)
			if w.subject != "" {
				check("ce_subject", hd["ce_subject"], w.subject)
			}
			if hd["ce_source"] == "" {
				t.Errorf("%s: no ce_source", c.name)
			}
			if _, err := time.Parse(time.RFC3339Nano, hd["ce_time"]); err != nil {
				t.Errorf("%s: ce_time %q: %v", c.name, hd["ce_time"], err)
			}
			recvd, err := time.Parse(time.RFC3339Nano, hd["flexstream_received_at"])
			if err != nil || recvd.Before(start.Add(-time.Second)) || recvd.After(time.Now()) {
				t.Errorf("%s: flexstream_received_at %q", c.name, hd["flexstream_received_at"])
			}
			if !traceRE.MatchString(hd["traceparent"]) {
				t.Errorf("%s: traceparent %q", c.name, hd["traceparent"])
			}
			if !bytes.Equal(rec.Value, w.value) {
				t.Errorf("%s: value is not the bytes Twilio sent:\n got %s\nwant %s", c.name, rec.Value, w.value)
			}
			if err := validator.ValidateEnvelope(hd); err != nil {
				t.Errorf("%s: envelope: %v", c.name, err)
			}
			if err := validator.ValidatePayload(hd["flexstream_family"], hd["content-type"], rec.Value); err != nil && w.family != schemas.FamilyEventStreams {
				t.Errorf("%s: payload: %v", c.name, err)
			}
		}
	}
	if len(got) != total {
		t.Errorf("topic holds %d records, want %d (one per Twilio event)", len(got), total)
	}
	// The conversation's events share a partition, in the order sent.
	var order []string
	for _, r := range h.records() {
		if string(r.Key) == ids.Conversation && headerMap(r)["flexstream_family"] != schemas.FamilyEventStreams {
			order = append(order, headerMap(r)["ce_type"])
		}
	}
	if len(order) != 12 || order[0] != "com.twilio.taskrouter.task.created" || order[11] != "com.twilio.conversations.pre.message.add" {
		t.Errorf("conversation's records out of order or split: %v", order)
	}
}

func digest(ceType, resource, ts string, body []byte) string {
	s := sha256.New()
	for _, p := range [][]byte{[]byte(ceType), []byte(resource), []byte(ts), body} {
		s.Write(p)
		s.Write([]byte{0})
	}
	return hex.EncodeToString(s.Sum(nil))
}

// TestForgedWebhooksNeverReachKafka: every way a signature can be wrong
// is answered 403 and leaves the topic empty; a rotated token, a proxy's
// public URL and the JSON bodySHA256 scheme are accepted.
func TestForgedWebhooksNeverReachKafka(t *testing.T) {
	const public = "https://hooks.example.com/twilio"
	h := newHarness(t, func(c *ingest.Config) {
		c.AuthTokens = []string{twiliotest.AuthToken, twiliotest.SecondaryAuthToken}
		c.PublicURL = public
	})
	ids := twiliotest.NewIDs(3)
	form := twiliotest.TaskRouterEvent(ids, "task.canceled")
	publicURL := public + ingest.RouteTaskRouter.Path()
	signed := func(token, signedFor string, f url.Values) *http.Request {
		req, err := twiliotest.FormRequest(token, signedFor, f, "")
		if err != nil {
			t.Fatal(err)
		}
		viaProxy(t, req, h.srv.URL())
		return req
	}
	es := twiliotest.EventStreamsDelivery(ids, twiliotest.EventStreamsEvent{Type: "task.canceled"})
	jsonReq := func(token string, body []byte, tamper func(*http.Request)) *http.Request {
		req, err := twiliotest.JSONRequest(token, public+ingest.RouteEventStreams.Path(), body, "")
		if err != nil {
			t.Fatal(err)
		}
		viaProxy(t, req, h.srv.URL())
		if tamper != nil {
			tamper(req)
		}
		return req
	}
	tampered := url.Values{}
	for k, v := range form {
		tampered[k] = v
	}
	refused := []struct {
		name string
		req  *http.Request
	}{
		{"no signature", func() *http.Request {
			r := signed(twiliotest.AuthToken, publicURL, form)
			r.Header.Del("X-Twilio-Signature")
			return r
		}()},
		{"garbage signature", func() *http.Request {
			r := signed(twiliotest.AuthToken, publicURL, form)
			r.Header.Set("X-Twilio-Signature", "bm90IGEgc2lnbmF0dXJl")
			return r
		}()},
		{"unknown token", signed("0123456789abcdef0123456789abcdef", publicURL, form)},
		{"signed for the internal URL, not the public one", signed(twiliotest.AuthToken, h.url(ingest.RouteTaskRouter), form)},
		{"signed for another route", func() *http.Request {
			r := signed(twiliotest.AuthToken, public+ingest.RouteConversations.Path(), form)
			r.URL.Path = ingest.RouteTaskRouter.Path()
			return r
		}()},
		{"body changed after signing", func() *http.Request {
			r := signed(twiliotest.AuthToken, publicURL, form)
			changed := twiliotest.TaskRouterEvent(ids, "task.canceled", twiliotest.WithCanceledReason("forged"))
			body := changed.Encode()
			r.Body = http.NoBody
			r2, _ := http.NewRequest(http.MethodPost, r.URL.String(), strings.NewReader(body))
			r2.Header = r.Header.Clone()
			return r2
		}()},
		{"JSON body changed after signing", jsonReq(twiliotest.AuthToken, es, func(r *http.Request) {
			r2, _ := http.NewRequest(http.MethodPost, r.URL.String(), bytes.NewReader(bytes.Replace(es, []byte("task.canceled"), []byte("task.deleted"), 1)))
			r2.Header = r.Header.Clone()
			*r = *r2
		})},
		{"JSON without bodySHA256", jsonReq(twiliotest.AuthToken, es, func(r *http.Request) {
			q := r.URL.Query()
			q.Del("bodySHA256")
			r.URL.RawQuery = q.Encode()
		})},
	}
	for _, c := range refused {
		if code, body, _ := h.do(c.req); code != http.StatusForbidden {
			t.Errorf("%s: %d %s, want 403", c.name, code, body)
		}
	}
	if n := len(h.records()); n != 0 {
		t.Fatalf("%d forged records reached Kafka", n)
	}
	if got := metric(t, h, `flexstream_ingest_signature_failures_total{route="taskrouter"}`); got != "6" {
		t.Errorf("taskrouter signature failures = %q, want 6", got)
	}
	accepted := []struct {
		name string
		req  *http.Request
	}{
		{"primary token, public URL", signed(twiliotest.AuthToken, publicURL, form)},
		{"secondary token during rotation", signed(twiliotest.SecondaryAuthToken, publicURL, twiliotest.TaskRouterEvent(ids, "task.deleted"))},
		{"JSON with bodySHA256", jsonReq(twiliotest.SecondaryAuthToken, es, nil)},
	}
	for _, c := range accepted {
		if code, body, _ := h.do(c.req); code != http.StatusOK {
			t.Errorf("%s: %d %s, want 200", c.name, code, body)
		}
	}
	if n := len(h.records()); n != 3 {
		t.Errorf("%d records after 3 accepted webhooks", n)
	}
}

// TestAnswers covers every refusal the HTTP side makes before Kafka.
func TestAnswers(t *testing.T) {
	h := newHarness(t, func(c *ingest.Config) { c.MaxBody = 4096 })
	ids := twiliotest.NewIDs(5)
	form := twiliotest.TaskRouterEvent(ids, "task.created")
	req := func(method, route, contentType, body string, sign bool) *http.Request {
		r, err := http.NewRequest(method, h.srv.URL()+route, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		if contentType != "" {
			r.Header.Set("Content-Type", contentType)
		}
		if sign {
			f, _ := url.ParseQuery(body)
			r.Header.Set("X-Twilio-Signature", twiliotest.Sign(twiliotest.AuthToken, h.srv.URL()+route, f))
		}
		return r
	}
	big := form.Encode() + "&Padding=" + strings.Repeat("x", 5000)
	cases := []struct {
		name string
		req  *http.Request
		code int
	}{
		{"GET", req(http.MethodGet, "/webhooks/taskrouter", "", "", false), http.StatusMethodNotAllowed},
		{"PUT", req(http.MethodPut, "/webhooks/conversations", schemas.ContentTypeForm, form.Encode(), true), http.StatusMethodNotAllowed},
		{"JSON to a form route", req(http.MethodPost, "/webhooks/taskrouter", "application/json", "{}", false), http.StatusUnsupportedMediaType},
		{"form to the JSON route", req(http.MethodPost, "/webhooks/eventstreams", schemas.ContentTypeForm, form.Encode(), true), http.StatusUnsupportedMediaType},
		{"no content type", req(http.MethodPost, "/webhooks/taskrouter", "", form.Encode(), true), http.StatusUnsupportedMediaType},
		{"body over the limit", req(http.MethodPost, "/webhooks/taskrouter", schemas.ContentTypeForm, big, true), http.StatusRequestEntityTooLarge},
		{"form that does not parse", req(http.MethodPost, "/webhooks/taskrouter", schemas.ContentTypeForm, "a=%zz", false), http.StatusBadRequest},
		{"signed but without EventType", req(http.MethodPost, "/webhooks/taskrouter", schemas.ContentTypeForm, "AccountSid=AC1&WorkspaceSid=WS1", true), http.StatusBadRequest},
		{"signed TaskRouter form on the Conversations route", req(http.MethodPost, "/webhooks/conversations", schemas.ContentTypeForm, form.Encode(), true), http.StatusBadRequest},
		{"charset parameter is fine", req(http.MethodPost, "/webhooks/taskrouter", schemas.ContentTypeForm+"; charset=utf-8", form.Encode(), true), http.StatusOK},
		{"unknown path", req(http.MethodPost, "/webhooks/voice", schemas.ContentTypeForm, form.Encode(), true), http.StatusNotFound},
	}
	for _, c := range cases {
		code, body, hdr := h.do(c.req)
		if code != c.code {
			t.Errorf("%s: %d %q, want %d", c.name, code, body, c.code)
		}
		if code == http.StatusMethodNotAllowed && hdr.Get("Allow") != http.MethodPost {
			t.Errorf("%s: Allow = %q", c.name, hdr.Get("Allow"))
		}
	}
	if n := len(h.records()); n != 1 {
		t.Errorf("%d records, want only the one accepted", n)
	}
}

// TestInFlightLimitAnswers503: with every slot held by a request waiting
// for Kafka, the next one gets 503 and Retry-After at once.
func TestInFlightLimitAnswers503(t *testing.T) {
	var bp *blockingPublisher
	h := newHarness(t, func(c *ingest.Config) {
		bp = &blockingPublisher{Publisher: c.Publisher, entered: make(chan struct{}, 4), release: make(chan struct{})}
		c.Publisher = bp
		c.MaxInFlight = 2
	})
	ids := twiliotest.NewIDs(9)
	var wg sync.WaitGroup
	codes := make(chan int, 2)
	for i, ev := range []string{"task.created", "task.updated"} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			code, _, _ := h.postForm(ingest.RouteTaskRouter, twiliotest.TaskRouterEvent(ids, ev), fmt.Sprint("idem-", i))
			codes <- code
		}()
	}
	<-bp.entered
	<-bp.entered
	code, _, hdr := h.postForm(ingest.RouteTaskRouter, twiliotest.TaskRouterEvent(ids, "task.completed"), "idem-3")
	if code != http.StatusServiceUnavailable || hdr.Get("Retry-After") == "" {
		t.Errorf("third request: %d, Retry-After %q; want 503 with Retry-After", code, hdr.Get("Retry-After"))
	}
	if got := metric(t, h, "flexstream_ingest_in_flight"); got != "2" {
		t.Errorf("in_flight gauge = %q, want 2", got)
	}
	close(bp.release)
	wg.Wait()
	close(codes)
	for c := range codes {
		if c != http.StatusOK {
			t.Errorf("held request answered %d", c)
		}
	}
	if n := len(h.records()); n != 2 {
		t.Errorf("%d records, want the 2 held ones", n)
	}
}

// TestKafkaStoppedMidTest: while the broker is down webhooks get 503
// with Retry-After; once it is back they are accepted again, and every
// webhook that was answered 200 is on the topic.
func TestKafkaStoppedMidTest(t *testing.T) {
	h := newHarness(t, nil)
	ids := twiliotest.NewIDs(11)
	var acked []string
	send := func(i int) int {
		form := twiliotest.TaskRouterEvent(ids, "task.updated", twiliotest.WithEventSid(fmt.Sprintf("EV%032x", i)))
		code, _, hdr := h.postForm(ingest.RouteTaskRouter, form, "")
		switch code {
		case http.StatusOK:
			acked = append(acked, form.Get("Sid"))
		case http.StatusServiceUnavailable:
			if hdr.Get("Retry-After") == "" {
				t.Errorf("503 without Retry-After")
			}
		default:
			t.Fatalf("webhook %d: %d", i, code)
		}
		return code
	}
	for i := 0; i < 20; i++ {
		if send(i) != http.StatusOK {
			t.Fatalf("webhook %d refused while Kafka is up", i)
		}
	}
	h.stopBroker()
	h.waitReady(http.StatusServiceUnavailable)
	unavailable := 0
	for i := 20; i < 30; i++ {
		if send(i) == http.StatusServiceUnavailable {
			unavailable++
		}
	}
	if unavailable != 10 {
		t.Errorf("%d of 10 webhooks got 503 while Kafka was down", unavailable)
	}
	h.startBroker()
	h.waitReady(http.StatusOK)
	// The producer reconnects on its own; the first writes after the
	// restart may still fail and are answered 503, never 200 unless stored.
	ok := 0
	for i := 30; i < 200 && ok < 20; i++ {
		if send(i) == http.StatusOK {
			ok++
		}
	}
	if ok < 20 {
		t.Fatalf("only %d webhooks accepted after Kafka came back", ok)
	}
	got := byID(t, h.records())
	for _, id := range acked {
		if _, found := got[id]; !found {
			t.Errorf("webhook %s was answered 200 but is not on the topic", id)
		}
	}
	t.Logf("%d acknowledged, %d on the topic, %d refused while Kafka was down", len(acked), len(got), unavailable)
}

// TestPreEventsNeverBlockTwilio: a pre-event webhook is answered 200 by
// its deadline even when Kafka is down or slow, and what was not stored
// (or not yet) is counted.
func TestPreEventsNeverBlockTwilio(t *testing.T) {
	var bp *blockingPublisher
	h := newHarness(t, func(c *ingest.Config) {
		bp = &blockingPublisher{Publisher: c.Publisher, entered: make(chan struct{}, 8), release: make(chan struct{})}
		c.Publisher = bp
		c.PreEventDeadline = 200 * time.Millisecond
	})
	ids := twiliotest.NewIDs(13)
	// Slow Kafka: answered at the deadline, stored afterwards.
	start := time.Now()
	code, _, _ := h.postForm(ingest.RouteConversations, twiliotest.ConversationsEvent(ids, "onMessageAdd"), "pre-1")
	took := time.Since(start)
	if code != http.StatusOK || took > 2*time.Second {
		t.Fatalf("pre-event with slow Kafka: %d after %s", code, took)
	}
	<-bp.entered
	if got := metric(t, h, "flexstream_ingest_pre_events_answered_before_stored_total"); got != "1" {
		t.Errorf("answered-before-stored = %q, want 1", got)
	}
	close(bp.release)
	deadline := time.Now().Add(10 * time.Second)
	for len(h.records()) != 1 {
		if time.Now().After(deadline) {
			t.Fatal("the slow pre-event never reached the topic")
		}
		time.Sleep(50 * time.Millisecond)
	}
	// Kafka down: still 200, counted as unstored.
	h.stopBroker()
	h.waitReady(http.StatusServiceUnavailable)
	code, _, _ = h.postForm(ingest.RouteConversations, twiliotest.ConversationsEvent(ids, "onParticipantAdd"), "pre-2")
	if code != http.StatusOK {
		t.Fatalf("pre-event with Kafka down: %d", code)
	}
	deadline = time.Now().Add(10 * time.Second)
	for metric(t, h, "flexstream_ingest_pre_events_unstored_total") != "1" {
		if time.Now().After(deadline) {
			t.Fatalf("unstored pre-events = %q, want 1", metric(t, h, "flexstream_ingest_pre_events_unstored_total"))
		}
		time.Sleep(50 * time.Millisecond)
	}
	// A post-event in the same situation is refused, so Twilio retries it.
	if code, _, _ := h.postForm(ingest.RouteConversations, twiliotest.ConversationsEvent(ids, "onMessageAdded"), "post-1"); code != http.StatusServiceUnavailable {
		t.Errorf("post-event with Kafka down: %d, want 503", code)
	}
	h.startBroker()
}

// TestOperationsEndpoints: health, readiness following Kafka, and the
// metrics the issue names.
func TestOperationsEndpoints(t *testing.T) {
	h := newHarness(t, nil)
	for _, p := range []string{"/healthz", "/readyz"} {
		resp, err := h.client.Get(h.srv.URL() + p)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("%s = %d", p, resp.StatusCode)
		}
	}
	ids := twiliotest.NewIDs(17)
	h.postForm(ingest.RouteTaskRouter, twiliotest.TaskRouterEvent(ids, "task.created"), "m-1")
	req, _ := twiliotest.FormRequest("ffffffffffffffffffffffffffffffff", h.url(ingest.RouteTaskRouter), twiliotest.TaskRouterEvent(ids, "task.created"), "")
	h.do(req)
	text := metricsText(t, h)
	for _, want := range []string{
		`flexstream_ingest_requests_total{code="200",route="taskrouter"} 1`,
		`flexstream_ingest_requests_total{code="403",route="taskrouter"} 1`,
		`flexstream_ingest_signature_failures_total{route="taskrouter"} 1`,
		`flexstream_ingest_records_total{route="taskrouter"} 1`,
		`flexstream_ingest_produce_seconds_count{outcome="acked",route="taskrouter"} 1`,
		`flexstream_ingest_in_flight 0`,
		`flexstream_ingest_kafka_ready 1`,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	h.stopBroker()
	h.waitReady(http.StatusServiceUnavailable)
	resp, err := h.client.Get(h.srv.URL() + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("/healthz = %d while Kafka is down; it says the process is alive", resp.StatusCode)
	}
	h.startBroker()
	h.waitReady(http.StatusOK)
}

// TestShutdownFinishesRequestsInFlight: a request waiting for Kafka when
// shutdown starts is still answered after Kafka acknowledged it.
func TestShutdownFinishesRequestsInFlight(t *testing.T) {
	var bp *blockingPublisher
	h := newHarness(t, func(c *ingest.Config) {
		bp = &blockingPublisher{Publisher: c.Publisher, entered: make(chan struct{}, 1), release: make(chan struct{})}
		c.Publisher = bp
	})
	ids := twiliotest.NewIDs(19)
	done := make(chan int, 1)
	go func() {
		code, _, _ := h.postForm(ingest.RouteTaskRouter, twiliotest.TaskRouterEvent(ids, "task.created"), "sd-1")
		done <- code
	}()
	<-bp.entered
	shut := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		shut <- h.srv.Shutdown(ctx)
	}()
	select {
	case err := <-shut:
		t.Fatalf("shutdown returned (%v) while a request was in flight", err)
	case <-time.After(300 * time.Millisecond):
	}
	close(bp.release)
	if code := <-done; code != http.StatusOK {
		t.Errorf("in-flight request answered %d", code)
	}
	if err := <-shut; err != nil {
		t.Errorf("shutdown: %v", err)
	}
	if n := len(h.records()); n != 1 {
		t.Errorf("%d records, want the in-flight one", n)
	}
}

// TestLogsCarryNoPII: whatever is logged, at any level, about accepted,
// refused and malformed webhooks never holds a phone number, an address
// or message text.
func TestLogsCarryNoPII(t *testing.T) {
	h := newHarness(t, nil)
	ids := twiliotest.NewIDs(23)
	secret := "my card number is 4111"
	forms := []url.Values{
		twiliotest.ConversationsEvent(ids, "onMessageAdded", twiliotest.WithBody(secret)),
		twiliotest.ConversationsEvent(ids, "onParticipantAdded"),
		twiliotest.TaskRouterEvent(ids, "task.created"),
	}
	for i, f := range forms {
		h.postForm(ingest.RouteConversations, f, fmt.Sprint("pii-", i))
		bad, _ := twiliotest.FormRequest("ffffffffffffffffffffffffffffffff", h.url(ingest.RouteConversations), f, "")
		h.do(bad)
	}
	phone := strings.TrimPrefix(ids.CustomerPhone, "+")
	for _, e := range h.logs.All() {
		line := e.Message
		for k, v := range e.ContextMap() {
			line += fmt.Sprintf(" %s=%v", k, v)
		}
		for _, pii := range []string{phone, secret, "my card"} {
			if strings.Contains(line, pii) {
				t.Errorf("log entry holds PII %q: %s", pii, line)
			}
		}
	}
	if h.logs.Len() == 0 {
		t.Error("nothing was logged; the test proves nothing")
	}
}

// viaProxy sends req, made for the public URL, to ingest's own address
// with the path prefix stripped, as a reverse proxy mounted there does.
func viaProxy(t *testing.T, req *http.Request, base string) {
	t.Helper()
	if err := twiliotest.Retarget(req, base); err != nil {
		t.Fatal(err)
	}
	req.URL.Path = strings.TrimPrefix(req.URL.Path, "/twilio")
}
