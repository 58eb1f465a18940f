package ingest_test

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"go.uber.org/goleak"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/flexstream/flexstream/ingest"
	"github.com/flexstream/flexstream/internal/embedkafka"
	"github.com/flexstream/flexstream/internal/kafkaio"
	"github.com/flexstream/flexstream/internal/testutil"
	"github.com/flexstream/flexstream/internal/twiliotest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const testTopic = "twilio.events.v1"

// harness is ingest in front of an in-process Kafka broker (kfake with a
// data dir), through the real producer, over real HTTP.
type harness struct {
	t        *testing.T
	kafkaDir string
	addr     string
	broker   *embedkafka.Broker
	producer *kafkaio.Producer
	srv      *ingest.Server
	logs     *observer.ObservedLogs
	client   *http.Client
}

func newHarness(t *testing.T, configure func(*ingest.Config)) *harness {
	t.Helper()
	h := &harness{t: t, kafkaDir: t.TempDir(), addr: testutil.FreeAddr(t), client: &http.Client{Timeout: 20 * time.Second}}
	h.startBroker()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := kafkaio.EnsureTopics(ctx, []string{h.addr}, []kafkaio.TopicSpec{{Name: testTopic, Partitions: 3, ReplicationFactor: 1}}, nil); err != nil {
		t.Fatal(err)
	}
	p, err := kafkaio.NewProducer(kafkaio.ProducerConfig{Brokers: []string{h.addr}, Topic: testTopic, MaxAttempts: 2, WriteTimeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	h.producer = p
	core, logs := observer.New(zapcore.DebugLevel)
	h.logs = logs
	cfg := ingest.Config{
		Addr:           "127.0.0.1:0",
		AuthTokens:     []string{twiliotest.AuthToken},
		Publisher:      p,
		Ping:           func(ctx context.Context) error { return kafkaio.Ping(ctx, []string{h.addr}, testTopic) },
		ReadyInterval:  100 * time.Millisecond,
		ProduceTimeout: 3 * time.Second,
		Logger:         zap.New(core),
	}
	if configure != nil {
		configure(&cfg)
	}
	srv, err := ingest.Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	h.srv = srv
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		p.Close()
		if h.broker != nil {
			h.broker.Close()
		}
		h.client.CloseIdleConnections()
	})
	return h
}

func (h *harness) startBroker() {
	h.t.Helper()
	b, err := embedkafka.Start(embedkafka.Config{Addr: h.addr, DataDir: h.kafkaDir, SyncWrites: true})
	if err != nil {
		h.t.Fatal(err)
	}
	h.broker = b
}

func (h *harness) stopBroker() {
	h.broker.Close()
	h.broker = nil
}

// url is the webhook URL of a route on the server's own address.
func (h *harness) url(r ingest.Route) string { return h.srv.URL() + r.Path() }

// do sends req and returns the status, the body and the headers.
func (h *harness) do(req *http.Request) (int, string, http.Header) {
	h.t.Helper()
	resp, err := h.client.Do(req)
	if err != nil {
		h.t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header
}

func (h *harness) postForm(r ingest.Route, form url.Values, idem string) (int, string, http.Header) {
	h.t.Helper()
	req, err := twiliotest.FormRequest(twiliotest.AuthToken, h.url(r), form, idem)
	if err != nil {
		h.t.Fatal(err)
	}
	return h.do(req)
}

// waitReady waits for /readyz to give want.
func (h *harness) waitReady(want int) {
	h.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := h.client.Get(h.srv.URL() + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == want {
				return
			}
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("/readyz never answered %d", want)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// records reads every record of the topic with a plain kafka-go
// connection per partition, in partition then offset order.
func (h *harness) records() []kafka.Message {
	h.t.Helper()
	var out []kafka.Message
	for p := 0; p < 3; p++ {
		out = append(out, readPartition(h.t, h.addr, testTopic, p)...)
	}
	return out
}

func readPartition(t *testing.T, addr, topic string, partition int) []kafka.Message {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	conn, err := kafka.DialLeader(ctx, "tcp", addr, topic, partition)
	if err != nil {
		t.Fatalf("dial partition %d: %v", partition, err)
	}
	defer conn.Close()
	first, last, err := conn.ReadOffsets()
	if err != nil {
		t.Fatal(err)
	}
	var out []kafka.Message
	if last == first {
		return nil
	}
	if _, err := conn.Seek(first, kafka.SeekAbsolute); err != nil {
		t.Fatal(err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	batch := conn.ReadBatch(1, 64<<20)
	defer batch.Close()
	for int64(len(out)) < last-first {
		m, err := batch.ReadMessage()
		if err != nil {
			t.Fatalf("partition %d: read %d of %d: %v", partition, len(out), last-first, err)
		}
		out = append(out, m)
	}
	return out
}

func headerMap(m kafka.Message) map[string]string {
	out := map[string]string{}
	for _, hd := range m.Headers {
		out[hd.Key] = string(hd.Value)
	}
	return out
}

// byID indexes records by ce_id.
func byID(t *testing.T, recs []kafka.Message) map[string]kafka.Message {
	t.Helper()
	out := map[string]kafka.Message{}
	for _, r := range recs {
		out[headerMap(r)["ce_id"]] = r
	}
	return out
}

// blockingPublisher wraps the real producer and holds each Publish until
// released, to put requests in flight on purpose.
type blockingPublisher struct {
	ingest.Publisher
	entered chan struct{}
	release chan struct{}
}

func (b *blockingPublisher) Publish(ctx context.Context, msgs ...kafka.Message) error {
	b.entered <- struct{}{}
	<-b.release
	return b.Publisher.Publish(ctx, msgs...)
}

func metricsText(t *testing.T, h *harness) string {
	t.Helper()
	resp, err := h.client.Get(h.srv.URL() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// metric returns the value of the sample whose line starts with prefix.
func metric(t *testing.T, h *harness, prefix string) string {
	t.Helper()
	for _, line := range strings.Split(metricsText(t, h), "\n") {
		if strings.HasPrefix(line, prefix+" ") {
			return strings.TrimSpace(strings.TrimPrefix(line, prefix))
		}
	}
	return ""
}
