// Package sim runs the Twilio Flex simulator (issue 7): the contact
// centre's model (internal/sim/model) on the wall clock, its webhooks sent
// signed to an ingest URL with Twilio's retries, Twilio's REST API served
// by the spec-checking stand-in (internal/twiliostub) whose effects feed
// the model back, and at the end the ground truth, compared with the
// product's read models.
package sim

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/flexstream/flexstream/internal/config"
	"github.com/flexstream/flexstream/internal/sim/model"
	"github.com/flexstream/flexstream/internal/twiliostub"
	"github.com/flexstream/flexstream/internal/twiliotest"
)

// Config configures a simulation.
type Config struct {
	Scenario *model.Scenario
	Seed     uint64
	// AuthToken signs the webhooks (X-Twilio-Signature) and, with
	// AccountSid, is the REST credential the stand-in accepts.
	AuthToken  string
	AccountSid string
	// RESTAddr is where Twilio's REST API is served ("127.0.0.1:0": any
	// free port).
	RESTAddr string
	// APIToken is the product query API's bearer token, if it has one.
	APIToken string
	// Senders deliver webhooks concurrently; one conversation's are
	// always delivered in order.
	Senders int
	// EventStreams sends every event as Twilio Event Streams would (a
	// CloudEvents delivery to /webhooks/eventstreams) instead of as a
	// TaskRouter callback or a Conversations webhook.
	EventStreams bool
	// Retries: Twilio tries a failed delivery again this many times.
	Retries      int
	RetryBackoff time.Duration
	// Quiet: the run ends once the model is done and nothing (no webhook,
	// no REST effect) has happened for this long.
	Quiet time.Duration
	// Limit bounds the run.
	Limit  time.Duration
	Logger *zap.Logger
}

// Validate names the bad field; it applies the defaults first.
func (c *Config) Validate() error {
	if c.RESTAddr == "" {
		c.RESTAddr = "127.0.0.1:0"
	}
	if c.Senders == 0 {
		c.Senders = 8
	}
	if c.Retries == 0 {
		c.Retries = 3
	}
	if c.RetryBackoff == 0 {
		c.RetryBackoff = 500 * time.Millisecond
	}
	if c.Quiet == 0 {
		c.Quiet = 3 * time.Second
	}
	if c.Limit == 0 {
		c.Limit = time.Hour
	}
	if c.Logger == nil {
		c.Logger = zap.NewNop()
	}
	switch {
	case c.Scenario == nil:
		return config.Errorf("scenario", "no scenario")
	case c.AuthToken == "" || c.AccountSid == "":
		return config.Errorf("TWILIO_AUTH_TOKEN", "the simulator needs an account SID and auth token")
	case c.Senders < 1:
		return config.Errorf("senders", "want at least 1, got %d", c.Senders)
	}
	return nil
}

// Sim is a simulation; Start serves its REST API, Run plays it.
type Sim struct {
	cfg  Config
	log  *zap.Logger
	stub *twiliostub.Server

	target, api string // set by Run

	mu    sync.Mutex // guards m (not safe for concurrent use)
	m     *model.Model
	start time.Time

	lastActivity atomic.Int64 // unix nanos of the last webhook delivered or effect received
	webhooks     atomic.Int64
	failures     atomic.Int64
	retries      atomic.Int64
	pending      atomic.Int64 // webhooks queued or in flight
	client       *http.Client
}

// Start builds the model and serves Twilio's REST API, so that the
// reactors can be pointed at URL before Run.
func Start(cfg Config) (*Sim, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	s := &Sim{cfg: cfg, log: cfg.Logger.Named("sim"), start: time.Now()}
	s.m = model.New(cfg.Scenario, cfg.Seed, s.start)
	s.stub = twiliostub.New(twiliostub.WithCredentials(cfg.AccountSid, cfg.AuthToken), twiliostub.WithLogger(s.log), twiliostub.WithEffects(s.effect))
	if err := s.stub.StartAt(cfg.RESTAddr); err != nil {
		return nil, fmt.Errorf("sim: serve Twilio's REST API: %w", err)
	}
	s.client = &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: cfg.Senders}}
	return s, nil
}

// URL is the base URL of the simulated Twilio REST API (for
// --twilio-api-url).
func (s *Sim) URL() string { return s.stub.URL() }

// Close stops the REST API.
func (s *Sim) Close() error {
	s.client.CloseIdleConnections()
	return s.stub.Close()
}

func (s *Sim) touch() { s.lastActivity.Store(time.Now().UnixNano()) }

// effect feeds a REST call's consequences to the model.
func (s *Sim) effect(e twiliostub.Effect) {
	s.touch()
	s.mu.Lock()
	defer s.mu.Unlock()
	switch e.Operation {
	case "CreateInteractionChannelInvite":
		props, _ := e.Routing["properties"].(map[string]any)
		s.m.Invited(e.At, e.InteractionSid, e.ChannelSid, e.TaskSid, props)
	case "UpdateInteractionChannel":
		s.m.ChannelUpdated(e.At, e.InteractionSid, e.ChannelSid, e.Status)
	case "CreateServiceConversationMessage":
		if msg := e.Message; msg != nil {
			s.m.MessageCreated(e.At, model.Message{
				ChatServiceSid: e.ChatServiceSid, ConversationSid: e.ConversationSid, Sid: msg.Sid, Author: msg.Author,
				Body: msg.Body, Attributes: msg.Attributes, ContentSid: msg.ContentSid, WebhookEnabled: msg.WebhookEnabled,
			})
		}
	}
}

// Run plays the scenario, sending webhooks to target (an ingest's base
// URL), until it is done and quiet, or ctx ends, and returns the report;
// api, the product's query API, is compared with the truth at the end
// ("" skips that).
func (s *Sim) Run(ctx context.Context, target, api string) (Report, error) {
	if target == "" {
		return Report{}, config.Errorf("target", "no ingest URL to send webhooks to")
	}
	s.target, s.api = target, api
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Limit)
	defer cancel()
	queues := make([]chan model.Webhook, s.cfg.Senders)
	var wg sync.WaitGroup
	for i := range queues {
		queues[i] = make(chan model.Webhook, 1024)
		wg.Go(func() { s.sender(ctx, queues[i]) })
	}
	defer func() {
		for _, q := range queues {
			close(q)
		}
		wg.Wait()
	}()
	s.touch()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return s.report(context.Background(), time.Now()), fmt.Errorf("sim: the scenario did not settle within %s", s.cfg.Limit)
			}
			return s.report(context.WithoutCancel(ctx), time.Now()), ctx.Err()
		case <-tick.C:
		}
		now := time.Now()
		s.mu.Lock()
		hooks, created := s.m.Advance(now)
		done := s.m.Done(now)
		s.mu.Unlock()
		for _, in := range created {
			s.stub.AddInteraction(twiliostub.InteractionFixture{
				InteractionSid: in.InteractionSid, ChannelSid: in.ChannelSid, ChannelType: in.ChannelType, ChannelStatus: "active",
				ChatServiceSid: in.ChatServiceSid, ConversationSid: in.ConversationSid, ConversationState: "active", Routing: in.Routing,
			})
		}
		for _, h := range hooks {
			s.pending.Add(1)
			select {
			case queues[shard(h.Conversation, len(queues))] <- h:
			case <-ctx.Done():
				s.pending.Add(-1)
			}
		}
		if done && s.idle() && now.Sub(time.Unix(0, s.lastActivity.Load())) >= s.cfg.Quiet {
			return s.report(ctx, now), nil
		}
	}
}

// idle: no delivery queued or in flight.
func (s *Sim) idle() bool { return s.pending.Load() == 0 }

func shard(key string, n int) int {
	var h uint32 = 2166136261
	for i := 0; i < len(key); i++ {
		h = (h ^ uint32(key[i])) * 16777619
	}
	return int(h % uint32(n))
}

// sender delivers webhooks in order, retrying as Twilio does: the same
// payload and idempotency token after a failure or a non-2xx answer.
func (s *Sim) sender(ctx context.Context, q <-chan model.Webhook) {
	for h := range q {
		s.deliver(ctx, h)
		s.touch()
		s.pending.Add(-1)
	}
}

func (s *Sim) deliver(ctx context.Context, h model.Webhook) {
	url := strings.TrimSuffix(s.target, "/") + "/webhooks/" + h.Family
	var body []byte
	if s.cfg.EventStreams {
		url = strings.TrimSuffix(s.target, "/") + "/webhooks/eventstreams"
		body = eventStreamsDelivery(h)
	}
	backoff := s.cfg.RetryBackoff
	for attempt := 0; ; attempt++ {
		if ctx.Err() != nil {
			return
		}
		var req *http.Request
		var err error
		if body != nil {
			req, err = twiliotest.JSONRequest(s.cfg.AuthToken, url, body, h.Idem)
		} else {
			req, err = twiliotest.FormRequest(s.cfg.AuthToken, url, h.Form, h.Idem)
		}
		if err != nil {
			s.log.Error("build webhook", zap.Error(err))
			s.failures.Add(1)
			return
		}
		req = req.WithContext(ctx)
		if attempt > 0 {
			req.Header.Set("I-Twilio-Retry-Count", fmt.Sprint(attempt))
		}
		resp, err := s.client.Do(req)
		status := 0
		if err == nil {
			status = resp.StatusCode
			resp.Body.Close()
			if status >= 200 && status < 300 {
				s.webhooks.Add(1)
				return
			}
		}
		if attempt >= s.cfg.Retries {
			s.failures.Add(1)
			s.log.Warn("webhook not delivered", zap.String("family", h.Family), zap.Int("status", status), zap.Error(err))
			return
		}
		s.retries.Add(1)
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff *= 2
	}
}

// eventStreamsDelivery is the Event Streams delivery of one event: the
// same fields, as a CloudEvent in a JSON array. Its id is derived from
// the event, so a retry repeats it.
func eventStreamsDelivery(h model.Webhook) []byte {
	f := h.Form
	ids := twiliotest.IDs{Account: f.Get("AccountSid"), Workspace: f.Get("WorkspaceSid"), ChatService: f.Get("ChatServiceSid"), Conversation: f.Get("ConversationSid")}
	typ := f.Get("EventType")
	var data map[string]any
	if h.Family == "taskrouter" {
		data = twiliotest.TaskRouterESData(ids, typ, func(v url.Values) { replaceValues(v, f) })
	} else {
		data = twiliotest.ConversationsESData(ids, typ, func(v url.Values) { replaceValues(v, f) })
	}
	return twiliotest.EventStreamsDelivery(ids, twiliotest.EventStreamsEvent{Type: typ, Data: data})
}

// replaceValues makes dst a copy of src.
func replaceValues(dst, src url.Values) {
	for k := range dst {
		delete(dst, k)
	}
	for k, vs := range src {
		dst[k] = append([]string(nil), vs...)
	}
}
