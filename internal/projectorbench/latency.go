package projectorbench

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/flexstream/flexstream/ingest"
	"github.com/flexstream/flexstream/internal/benchkit"
	"github.com/flexstream/flexstream/internal/kafkaio"
	"github.com/flexstream/flexstream/internal/pii"
	"github.com/flexstream/flexstream/internal/twiliotest"
	"github.com/flexstream/flexstream/projector"
	"github.com/flexstream/flexstream/schemas"
)

// Latency is webhook → visible in the query API, open loop: each latency
// runs from the webhook's scheduled send time to the moment the query
// API's live feed (/v1/events) shows a conversation view holding its
// message, so a webhook sent late because the senders (or the machine)
// fell behind counts its wait too.
type Latency struct {
	Rate          float64
	Duration      time.Duration
	Conversations int
	Requests      int // scheduled
	Failed        int // not answered 200
	Lost          int // never seen in the feed (failed ones included); counted as infinitely late
	// Latencies, to visible.
	P50, P90, P99, P999, Max time.Duration
	// AnswerP50 and AnswerP99 are to ingest's answer; LagP99 and LagMax how
	// late sends started after their scheduled time (what the client side
	// added).
	AnswerP50, AnswerP99, LagP99, LagMax time.Duration
}

// Seeds of the latency part's conversations.
const (
	seedLatency = 2_000_000_000
	seedWarmUp  = 3_000_000_000
)

type senderJob struct {
	URL           string        `json:"url"` // the Conversations webhook's URL
	Rate          float64       `json:"rate"`
	Duration      time.Duration `json:"duration"`
	Senders       int           `json:"senders"`
	Conversations int           `json:"conversations"`
	Seed          int64         `json:"seed"`
}

func (j senderJob) requests() int { return max(1, int(j.Rate*j.Duration.Seconds())) }

type senderResult struct {
	Start      int64         `json:"start"` // unix ns: webhook i was due at Start + i/Rate
	Requests   int           `json:"requests"`
	Failed     []int         `json:"failed,omitempty"`
	FirstError string        `json:"firstError,omitempty"`
	AnswerP50  time.Duration `json:"answerP50"`
	AnswerP99  time.Duration `json:"answerP99"`
	LagP99     time.Duration `json:"lagP99"`
	LagMax     time.Duration `json:"lagMax"`
}

// signed is a webhook ready to post.
type signed struct {
	body []byte
	sig  string
	idem string
}

func sign(url string, h webhook) signed {
	return signed{body: []byte(h.form.Encode()), sig: twiliotest.Sign(twiliotest.AuthToken, url, h.form), idem: h.idem}
}

// latencyHook is webhook i of the latency part: message i / convs of
// conversation i mod convs, which then holds i / convs + 1 messages.
func latencyHook(ids []twiliotest.IDs, i int) webhook {
	return message(ids[i%len(ids)], i/len(ids))
}

func conversationIDs(seed int64, n int) []twiliotest.IDs {
	ids := make([]twiliotest.IDs, n)
	for c := range ids {
		ids[c] = twiliotest.NewIDs(seed + int64(c))
	}
	return ids
}

// runSender sends the job's webhooks on a fixed schedule: webhook i is due
// at start + i/rate whatever happened to the others. Each sender takes the
// next webhook, waits for its time and sends it; with enough senders one
// slow answer never delays the next send, and when they all are busy the
// wait is counted.
func runSender(ctx context.Context, job senderJob) (senderResult, error) {
	n := job.requests()
	ids := conversationIDs(job.Seed, job.Conversations)
	hooks := make([]signed, n)
	for i := range hooks {
		hooks[i] = sign(job.URL, latencyHook(ids, i))
	}
	client, closeClient := benchkit.HTTPClient(job.Senders)
	defer closeClient()
	answer := make([]time.Duration, n)
	lag := make([]time.Duration, n)
	failed := make([]bool, n)
	var firstErr atomic.Value
	interval := float64(time.Second) / job.Rate
	start := time.Now().Add(50 * time.Millisecond)
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(job.Senders, n) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				at := start.Add(time.Duration(float64(i) * interval))
				if wait := time.Until(at); wait > 0 {
					t := time.NewTimer(wait)
					select {
					case <-t.C:
					case <-ctx.Done():
						t.Stop()
						return
					}
				}
				lag[i] = time.Since(at)
				if err := post(ctx, client, job.URL, hooks[i]); err != nil {
					failed[i] = true
					firstErr.CompareAndSwap(nil, err.Error())
					continue
				}
				answer[i] = time.Since(at)
			}
		}()
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return senderResult{}, err
	}
	res := senderResult{Start: start.UnixNano(), Requests: n}
	if s, ok := firstErr.Load().(string); ok {
		res.FirstError = s
	}
	var ok []time.Duration
	for i, f := range failed {
		if f {
			res.Failed = append(res.Failed, i)
		} else {
			ok = append(ok, answer[i])
		}
	}
	slices.Sort(ok)
	slices.Sort(lag)
	res.AnswerP50, res.AnswerP99 = benchkit.Quantile(ok, 0.5), benchkit.Quantile(ok, 0.99)
	res.LagP99, res.LagMax = benchkit.Quantile(lag, 0.99), lag[n-1]
	return res, nil
}

// post sends one webhook as Twilio does and wants 200.
func post(ctx context.Context, c *http.Client, url string, h signed) error {
	return benchkit.PostWebhook(ctx, c, url, h.body, h.sig, h.idem)
}

// runLatency starts the whole path as `up` does — broker, event store,
// projector (pipeline, read models, query API) and ingest — watches the
// API's live feed, warms the path up, then has the senders send
// Rate webhooks/s for Duration.
func runLatency(ctx context.Context, cfg Config, dir string) (l Latency, err error) {
	l = Latency{Rate: cfg.Rate, Duration: cfg.Duration, Conversations: cfg.LatencyConversations}
	srv, err := startServers(ctx, cfg, dir)
	if err != nil {
		return l, err
	}
	defer srv.close()
	topic := schemas.DefaultTopic
	if err := srv.topics(ctx, topic, cfg.Logger); err != nil {
		return l, err
	}
	pz, err := pii.New(pseudonymKey)
	if err != nil {
		return l, err
	}
	proj, err := projector.Start(ctx, projector.Config{
		Brokers: srv.brokers, Topic: topic, Events: srv.es, DataDir: filepath.Join(dir, "readmodel"), APIAddr: "127.0.0.1:0",
		Pseudonymizer: pz, Workers: cfg.Workers, Logger: cfg.Logger,
	})
	if err != nil {
		return l, err
	}
	defer func() { err = errors.Join(err, proj.Close()) }()
	producer, err := kafkaio.NewProducer(kafkaio.ProducerConfig{Brokers: srv.brokers, Topic: topic, Logger: cfg.Logger})
	if err != nil {
		return l, err
	}
	defer func() { err = errors.Join(err, producer.Close()) }()
	in, err := ingest.Start(ingest.Config{
		Addr: "127.0.0.1:0", AuthTokens: []string{twiliotest.AuthToken}, Publisher: producer,
		Ping: func(ctx context.Context) error { return kafkaio.Ping(ctx, srv.brokers, topic) }, Logger: cfg.Logger,
	})
	if err != nil {
		return l, err
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		err = errors.Join(err, in.Shutdown(sctx))
	}()
	webhookURL := in.URL() + ingest.RouteConversations.Path()

	wctx, stopWatching := context.WithCancel(ctx)
	defer stopWatching()
	w, err := watch(wctx, proj.APIURL()+"/v1/events")
	if err != nil {
		return l, err
	}
	defer w.close()

	// Warm up, unmeasured: the consumer group joins, connections open.
	if err := warmUp(ctx, w, webhookURL); err != nil {
		return l, fmt.Errorf("warm-up: %w", err)
	}

	job := senderJob{URL: webhookURL, Rate: cfg.Rate, Duration: cfg.Duration, Senders: cfg.Senders, Conversations: cfg.LatencyConversations, Seed: seedLatency}
	n := job.requests()
	ids := conversationIDs(job.Seed, job.Conversations)
	for c, id := range ids {
		if k := (n - c + len(ids) - 1) / len(ids); k > 0 {
			w.expect(id.Conversation, k)
		}
	}
	res, err := run(ctx, cfg.ChildCommand, childJob{Sender: &job})
	if err != nil {
		return l, fmt.Errorf("senders: %w", err)
	}
	s := res.Sender
	if s == nil {
		return l, errors.New("senders gave no result")
	}
	w.wait(ctx, time.Now().Add(cfg.Drain))
	if err := w.error(); err != nil {
		return l, err
	}

	interval := float64(time.Second) / cfg.Rate
	lat := make([]time.Duration, n)
	for i := range lat {
		seen := w.seenAt(ids[i%len(ids)].Conversation, i/len(ids))
		if seen == 0 {
			lat[i] = math.MaxInt64
			l.Lost++
			continue
		}
		due := s.Start + int64(float64(i)*interval)
		lat[i] = time.Duration(max(0, seen-due))
	}
	slices.Sort(lat)
	l.Requests, l.Failed = n, len(s.Failed)
	l.P50, l.P90, l.P99, l.P999, l.Max = benchkit.Quantile(lat, 0.5), benchkit.Quantile(lat, 0.9), benchkit.Quantile(lat, 0.99), benchkit.Quantile(lat, 0.999), lat[n-1]
	l.AnswerP50, l.AnswerP99, l.LagP99, l.LagMax = s.AnswerP50, s.AnswerP99, s.LagP99, s.LagMax
	fmt.Fprintf(cfg.Out, "latency, open loop at %.0f webhooks/s for %s to %d conversations, %d senders: %d webhooks, %d failed, %d never seen; to visible p50 %s p90 %s p99 %s p99.9 %s max %s; ingest's answer p50 %s p99 %s; send lag p99 %s max %s\n",
		cfg.Rate, cfg.Duration, cfg.LatencyConversations, cfg.Senders, n, l.Failed, l.Lost, ms(l.P50), ms(l.P90), ms(l.P99), ms(l.P999), ms(l.Max), ms(l.AnswerP50), ms(l.AnswerP99), ms(l.LagP99), ms(l.LagMax))
	if s.FirstError != "" {
		fmt.Fprintf(cfg.Out, "first failure: %s\n", s.FirstError)
	}
	return l, nil
}

// warmUp sends one message to each of a few conversations of their own,
// retried until ingest takes it (it answers 503 until it has seen Kafka),
// and waits until the feed shows them all.
func warmUp(ctx context.Context, w *watcher, url string) error {
	client, closeClient := benchkit.HTTPClient(4)
	defer closeClient()
	ids := conversationIDs(seedWarmUp, 20)
	deadline := time.Now().Add(time.Minute)
	for _, id := range ids {
		w.expect(id.Conversation, 1)
		h := sign(url, message(id, 0))
		for {
			err := post(ctx, client, url, h)
			if err == nil {
				break
			}
			if time.Now().After(deadline) || ctx.Err() != nil {
				return err
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	if !w.wait(ctx, deadline) {
		return fmt.Errorf("the feed showed %d of %d warm-up messages within a minute", w.seenCount(), len(ids))
	}
	return w.error()
}

// watcher follows the query API's live feed and notes when each expected
// message of each conversation first shows in its view.
type watcher struct {
	resp *http.Response
	done chan struct{}

	mu       sync.Mutex
	convs    map[string][]int64 // sid → per message index, unix ns when first seen (0: not yet)
	want     int
	seen     int
	progress chan struct{}
	err      error
}

func watch(ctx context.Context, url string) (*watcher, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	transport := &http.Transport{Proxy: nil, DisableCompression: true}
	resp, err := (&http.Client{Transport: transport}).Do(req)
	if err != nil {
		return nil, fmt.Errorf("live feed: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		return nil, fmt.Errorf("live feed answered %d", resp.StatusCode)
	}
	w := &watcher{resp: resp, done: make(chan struct{}), convs: map[string][]int64{}, progress: make(chan struct{}, 1)}
	br := bufio.NewReaderSize(resp.Body, 1<<20)
	// The subscription is live once ": connected" is read.
	if line, err := br.ReadString('\n'); err != nil || line != ": connected\n" {
		resp.Body.Close()
		return nil, fmt.Errorf("live feed: want \": connected\", got %q (%v)", line, err)
	}
	go func() {
		defer close(w.done)
		defer transport.CloseIdleConnections()
		kind := ""
		for {
			line, err := br.ReadSlice('\n')
			if err != nil {
				if ctx.Err() == nil {
					w.fail(fmt.Errorf("live feed: %w", err))
				}
				return
			}
			now := time.Now().UnixNano()
			line = bytes.TrimSuffix(line, []byte("\n"))
			switch {
			case len(line) == 0:
				kind = ""
			case bytes.HasPrefix(line, []byte("event: ")):
				kind = string(line[len("event: "):])
			case bytes.HasPrefix(line, []byte("data: ")) && kind == "conversation":
				if err := w.handle(line[len("data: "):], now); err != nil {
					w.fail(err)
					return
				}
			}
		}
	}()
	return w, nil
}

func (w *watcher) close() {
	w.resp.Body.Close()
	<-w.done
}

func (w *watcher) fail(err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err == nil {
		w.err = err
	}
	w.signal()
}

func (w *watcher) error() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}

func (w *watcher) signal() {
	select {
	case w.progress <- struct{}{}:
	default:
	}
}

// expect registers messages 0..n-1 of conversation sid.
func (w *watcher) expect(sid string, n int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.want += n - len(w.convs[sid])
	w.convs[sid] = make([]int64, n)
}

func (w *watcher) handle(data []byte, now int64) error {
	var v struct {
		Sid            string   `json:"sid"`
		MessageIndexes [][2]int `json:"messageIndexes"`
	}
	if err := json.Unmarshal(data, &v); err != nil {
		return fmt.Errorf("live feed: conversation view: %w", err)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	at := w.convs[v.Sid]
	for _, r := range v.MessageIndexes {
		for k := max(r[0], 0); k <= r[1] && k < len(at); k++ {
			if at[k] == 0 {
				at[k] = now
				w.seen++
			}
		}
	}
	if w.seen == w.want {
		w.signal()
	}
	return nil
}

func (w *watcher) seenAt(sid string, k int) int64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	if at := w.convs[sid]; k < len(at) {
		return at[k]
	}
	return 0
}

func (w *watcher) seenCount() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.seen
}

// wait waits until every expected message was seen (true), the feed
// failed, ctx ended or deadline passed.
func (w *watcher) wait(ctx context.Context, deadline time.Time) bool {
	t := time.NewTimer(time.Until(deadline))
	defer t.Stop()
	for {
		w.mu.Lock()
		all, failed := w.seen == w.want, w.err != nil
		w.mu.Unlock()
		if all || failed {
			return all
		}
		select {
		case <-w.progress:
		case <-t.C:
			return false
		case <-ctx.Done():
			return false
		}
	}
}
