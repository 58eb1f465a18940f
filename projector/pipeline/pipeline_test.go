package pipeline_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"go.uber.org/goleak"

	"github.com/flexstream/flexstream/ingest"
	"github.com/flexstream/flexstream/internal/embedkafka"
	"github.com/flexstream/flexstream/internal/esserver"
	"github.com/flexstream/flexstream/internal/eventstore"
	"github.com/flexstream/flexstream/internal/kafkaio"
	"github.com/flexstream/flexstream/internal/pii"
	"github.com/flexstream/flexstream/internal/testutil"
	"github.com/flexstream/flexstream/internal/twiliotest"
	"github.com/flexstream/flexstream/projector/decode"
	"github.com/flexstream/flexstream/projector/domain"
	"github.com/flexstream/flexstream/projector/pipeline"
	"github.com/flexstream/flexstream/schemas"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const topic = schemas.DefaultTopic

type env struct {
	t       *testing.T
	brokers []string
	es      *eventstore.Client
	dec     *decode.Decoder
	// Set by a test before run: the source and store the pipeline gets
	// instead of the consumer and the client themselves.
	source  func(*kafkaio.Consumer) pipeline.Source
	store   pipeline.Appender
	recheck int // Config.RecheckRecords
}

func newEnv(t *testing.T) *env {
	t.Helper()
	b, err := embedkafka.Start(embedkafka.Config{Addr: testutil.FreeAddr(t), DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	specs := []kafkaio.TopicSpec{{Name: topic, Partitions: 3, ReplicationFactor: 1}, {Name: topic + ".dlq", Partitions: 3, ReplicationFactor: 1}}
	if _, err := kafkaio.EnsureTopics(ctx, []string{b.Addr()}, specs, nil); err != nil {
		t.Fatal(err)
	}
	srv, err := esserver.Start(ctx, esserver.Config{Addr: "127.0.0.1:0", DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	es, err := eventstore.Connect(ctx, eventstore.Config{ConnString: srv.ConnectionString()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { es.Close() })
	p, _ := pii.New([]byte(strings.Repeat("p", 32)))
	v, err := schemas.DefaultValidator()
	if err != nil {
		t.Fatal(err)
	}
	return &env{t: t, brokers: []string{b.Addr()}, es: es, dec: decode.New(p, v)}
}

// lifecycle is one conversation's webhooks, as ingest puts them on the topic.
func lifecycle(t *testing.T, seed int64) []kafka.Message {
	ids := twiliotest.NewIDs(seed)
	var out []kafka.Message
	add := func(route ingest.Route, body string) {
		n, err := ingest.Normalise(ingest.Delivery{Route: route, Body: []byte(body), ReceivedAt: time.Now(), IdempotencyToken: fmt.Sprintf("tok-%d-%d", seed, len(out))})
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, n.Records...)
	}
	add(ingest.RouteConversations, twiliotest.ConversationsEvent(ids, "onConversationAdded").Encode())
	add(ingest.RouteConversations, twiliotest.ConversationsEvent(ids, "onParticipantAdded").Encode())
	add(ingest.RouteConversations, twiliotest.ConversationsEvent(ids, "onMessageAdded").Encode())
	for _, ev := range []string{"task.created", "reservation.created", "reservation.rejected", "workflow.timeout", "task.canceled"} {
		add(ingest.RouteTaskRouter, twiliotest.TaskRouterEvent(ids, ev).Encode())
	}
	return out
}

func (e *env) produce(msgs []kafka.Message) {
	e.t.Helper()
	p, err := kafkaio.NewProducer(kafkaio.ProducerConfig{Brokers: e.brokers, Topic: topic})
	if err != nil {
		e.t.Fatal(err)
	}
	defer p.Close()
	if err := p.Publish(context.Background(), msgs...); err != nil {
		e.t.Fatal(err)
	}
}

// forgetfulSource loses every commit, as a crash right before them would.
type forgetfulSource struct{ *kafkaio.Consumer }

func (forgetfulSource) Commit(context.Context, ...kafka.Message) error { return nil }

// run starts the pipeline and returns a stop function that waits for it.
func (e *env) run(forget bool) (stop func() error) {
	e.t.Helper()
	c, err := kafkaio.NewConsumer(kafkaio.ConsumerConfig{Brokers: e.brokers, GroupID: "projector", Topics: []string{topic}, MaxWait: 100 * time.Millisecond})
	if err != nil {
		e.t.Fatal(err)
	}
	dlq, err := kafkaio.NewProducer(kafkaio.ProducerConfig{Brokers: e.brokers, Topic: topic + ".dlq"})
	if err != nil {
		e.t.Fatal(err)
	}
	var src pipeline.Source = c
	if forget {
		src = forgetfulSource{c}
	}
	if e.source != nil {
		src = e.source(c)
	}
	var store pipeline.Appender = e.es
	if e.store != nil {
		store = e.store
	}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		errc <- pipeline.Run(ctx, pipeline.Config{Source: src, Decoder: e.dec, Store: store, DLQ: dlq, DLQTopic: topic + ".dlq", Workers: 16, CommitInterval: 50 * time.Millisecond, RecheckRecords: e.recheck})
	}()
	var once sync.Once
	var runErr error
	return func() error {
		once.Do(func() {
			cancel()
			runErr = <-errc
			c.Close()
			dlq.Close()
		})
		return runErr
	}
}

// streamEvents reads a stream's events.
func (e *env) streamEvents(stream string) []eventstore.RecordedEvent {
	var out []eventstore.RecordedEvent
	err := e.es.ReadStream(context.Background(), stream, 0, eventstore.All, func(r eventstore.RecordedEvent) error {
		out = append(out, r)
		return nil
	})
	if err != nil && !strings.Contains(err.Error(), "not found") {
		e.t.Fatal(err)
	}
	return out
}

// waitFor polls cond until it holds.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func dlqRecords(t *testing.T, brokers []string) []kafka.Message {
	var out []kafka.Message
	for p := 0; p < 3; p++ {
		conn, err := kafka.DialLeader(context.Background(), "tcp", brokers[0], topic+".dlq", p)
		if err != nil {
			t.Fatal(err)
		}
		first, last, _ := conn.ReadOffsets()
		if last > first {
			conn.Seek(first, kafka.SeekAbsolute)
			conn.SetReadDeadline(time.Now().Add(5 * time.Second))
			b := conn.ReadBatch(1, 10<<20)
			for i := first; i < last; i++ {
				m, err := b.ReadMessage()
				if err != nil {
					t.Fatal(err)
				}
				out = append(out, m)
			}
			b.Close()
		}
		conn.Close()
	}
	return out
}

func checkStream(t *testing.T, e *env, want []kafka.Message) {
	t.Helper()
	stream := "conversation-" + string(want[0].Key)
	got := e.streamEvents(stream)
	if len(got) != len(want) {
		t.Fatalf("%s: %d events, want %d (nothing lost, nothing doubled)", stream, len(got), len(want))
	}
	for i, r := range got {
		var meta domain.Metadata
		if err := json.Unmarshal(r.Metadata, &meta); err != nil {
			t.Fatal(err)
		}
		ceID := ""
		for _, h := range want[i].Headers {
			if h.Key == "ce_id" {
				ceID = string(h.Value)
			}
		}
		if meta.CausationID != ceID || r.ID != domain.EventID(ceID, stream) || meta.CorrelationID != string(want[0].Key) {
			t.Errorf("%s event %d: causation %s id %s, want %s (Kafka order kept)", stream, i, meta.CausationID, r.ID, ceID)
		}
	}
}

// TestPipelineAppendsInOrderAndDeadLettersTheRest: every record becomes
// one event in its conversation's stream, in Kafka's order per key; bad
// records go to the dead-letter topic with why and where from.
func TestPipelineAppendsInOrderAndDeadLettersTheRest(t *testing.T) {
	e := newEnv(t)
	var all [][]kafka.Message
	var msgs []kafka.Message
	for c := int64(1); c <= 12; c++ {
		l := lifecycle(t, c)
		all = append(all, l)
		msgs = append(msgs, l...)
	}
	bad := kafka.Message{Key: []byte("CHbad"), Value: []byte("not a form %zz"), Headers: []kafka.Header{{Key: "ce_type", Value: []byte("com.twilio.taskrouter.task.created")}}}
	msgs = append(msgs, bad)
	e.produce(msgs)
	stop := e.run(false)
	defer stop()
	waitFor(t, "every lifecycle in the store", func() bool {
		for _, l := range all {
			if len(e.streamEvents("conversation-"+string(l[0].Key))) < len(l) {
				return false
			}
		}
		return true
	})
	waitFor(t, "the dead letter", func() bool { return len(dlqRecords(t, e.brokers)) == 1 })
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	for _, l := range all {
		checkStream(t, e, l)
	}
	d := dlqRecords(t, e.brokers)[0]
	h := map[string]string{}
	for _, hd := range d.Headers {
		h[hd.Key] = string(hd.Value)
	}
	if string(d.Value) != string(bad.Value) || h[pipeline.HeaderDLQTopic] != topic || h[pipeline.HeaderDLQOffset] == "" || h[pipeline.HeaderDLQPartition] == "" || !strings.Contains(h[pipeline.HeaderDLQError], "undecodable") || h["ce_type"] != "com.twilio.taskrouter.task.created" {
		t.Errorf("dead letter %s headers %v", d.Value, h)
	}
}

// TestPipelineRedeliveryDoublesNothing: a first run appends everything but
// its commits are lost (as in a crash before them); the second run gets
// every record again and the store still holds each event once.
func TestPipelineRedeliveryDoublesNothing(t *testing.T) {
	e := newEnv(t)
	var all [][]kafka.Message
	var msgs []kafka.Message
	for c := int64(20); c < 30; c++ {
		l := lifecycle(t, c)
		all = append(all, l)
		msgs = append(msgs, l...)
	}
	e.produce(msgs)
	stop := e.run(true)
	waitFor(t, "first run", func() bool {
		return len(e.streamEvents("conversation-"+string(all[len(all)-1][0].Key))) == len(all[len(all)-1])
	})
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	// Half of it again, as a new producer might send.
	e.produce(msgs[:len(msgs)/2])
	stop = e.run(false)
	defer stop()
	waitFor(t, "the group to commit every record", func() bool { return caughtUp(t, e.brokers) })
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	for _, l := range all {
		checkStream(t, e, l)
	}
}

// caughtUp reports whether the projector's group committed every
// partition up to its end.
func caughtUp(t *testing.T, brokers []string) bool {
	t.Helper()
	c := &kafka.Client{Addr: kafka.TCP(brokers...), Timeout: 5 * time.Second, Transport: &kafka.Transport{}}
	defer c.Transport.(*kafka.Transport).CloseIdleConnections()
	ctx := context.Background()
	committed, err := c.OffsetFetch(ctx, &kafka.OffsetFetchRequest{GroupID: "projector", Topics: map[string][]int{topic: {0, 1, 2}}})
	if err != nil {
		return false
	}
	var req []kafka.OffsetRequest
	for p := 0; p < 3; p++ {
		req = append(req, kafka.LastOffsetOf(p))
	}
	ends, err := c.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{topic: req}})
	if err != nil {
		return false
	}
	for _, po := range ends.Topics[topic] {
		for _, cp := range committed.Topics[topic] {
			if cp.Partition == po.Partition && po.LastOffset > 0 && cp.CommittedOffset < po.LastOffset {
				return false
			}
		}
	}
	return true
}

// TestPipelineDuplicateAfterANewEvent: a record sent again (a producer's
// retry, at a new offset) right after a new record of the same
// conversation shares their append; the store recognises a retry only as
// an append's first event, so the pipeline must drop it itself.
func TestPipelineDuplicateAfterANewEvent(t *testing.T) {
	e := newEnv(t)
	l := lifecycle(t, 40)
	e.produce(l[:len(l)-1])
	stop := e.run(false)
	stream := "conversation-" + string(l[0].Key)
	waitFor(t, "the first records", func() bool { return len(e.streamEvents(stream)) == len(l)-1 })
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	e.produce([]kafka.Message{l[len(l)-1], l[0], l[1]})
	stop = e.run(false)
	defer stop()
	waitFor(t, "the group to commit every record", func() bool { return caughtUp(t, e.brokers) })
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	checkStream(t, e, l)
}

// countingSource counts fetches: the pipeline fetches the next record only
// once it has queued the one before.
type countingSource struct {
	*kafkaio.Consumer
	fetches atomic.Int64
}

func (c *countingSource) Fetch(ctx context.Context) (kafka.Message, error) {
	c.fetches.Add(1)
	return c.Consumer.Fetch(ctx)
}

// gatedStore holds every append while its gate is shut.
type gatedStore struct {
	*eventstore.Client
	mu      sync.Mutex
	gate    chan struct{} // nil: open
	waiting atomic.Int64
}

func (g *gatedStore) shut() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.gate = make(chan struct{})
}

func (g *gatedStore) open() {
	g.mu.Lock()
	defer g.mu.Unlock()
	close(g.gate)
	g.gate = nil
}

func (g *gatedStore) Append(ctx context.Context, stream string, exp eventstore.Expected, events ...eventstore.Event) (eventstore.AppendResult, error) {
	g.mu.Lock()
	gate := g.gate
	g.mu.Unlock()
	if gate != nil {
		g.waiting.Add(1)
		select {
		case <-gate:
		case <-ctx.Done():
			return eventstore.AppendResult{}, ctx.Err()
		}
	}
	return g.Client.Append(ctx, stream, exp, events...)
}

// A record sent again long after the first, in the same run, in one batch
// behind a new event of its stream: the store checks an append's first id
// only, and would write it twice; the worker remembers the ids it stored.
// A shut gate holds the worker's append of another new event while the
// new event and the repeat queue up behind it, so that they make one
// batch.
func TestPipelineDuplicateLaterInTheSameRun(t *testing.T) {
	e := newEnv(t)
	l := lifecycle(t, 41)
	gated := &gatedStore{Client: e.es}
	counting := &countingSource{}
	e.store = gated
	e.recheck = 2 // past the records after the start, only what this run stored tells a repeat
	e.source = func(c *kafkaio.Consumer) pipeline.Source { counting.Consumer = c; return counting }
	e.produce(l[:6])
	stop := e.run(false)
	defer stop()
	stream := "conversation-" + string(l[0].Key)
	waitFor(t, "the first records", func() bool { return len(e.streamEvents(stream)) == 6 })
	gated.shut()
	e.produce(l[6:7])
	waitFor(t, "the next append at the gate", func() bool { return gated.waiting.Load() == 1 })
	e.produce([]kafka.Message{l[7], l[0]})
	// Nine records fetched; a tenth fetch means the ninth is queued.
	waitFor(t, "the new event and the repeat queued", func() bool { return counting.fetches.Load() >= 10 })
	gated.open()
	waitFor(t, "the group to commit every record", func() bool { return caughtUp(t, e.brokers) })
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	checkStream(t, e, l)
}
