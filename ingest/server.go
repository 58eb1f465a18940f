package ingest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"

	"github.com/flexstream/flexstream/schemas"
)

// IdempotencyHeader is the token Twilio repeats when it retries a webhook.
const IdempotencyHeader = "I-Twilio-Idempotency-Token"

// Server serves the webhook routes and the operational endpoints.
type Server struct {
	cfg      Config
	log      *zap.Logger
	verifier *verifier
	m        *metrics
	slots    chan struct{} // in-flight limit
	ready    atomic.Bool   // the last Kafka probe succeeded
	ln       net.Listener
	http     *http.Server
	served   chan struct{}

	// Pre-event produces outlive their request: Shutdown waits for them.
	background sync.WaitGroup

	stopProbe context.CancelFunc
	probed    chan struct{}
	closeOnce sync.Once
	closeErr  error
}

// Start validates cfg, probes Kafka once, listens and serves. Requests
// get 503 while Kafka does not answer; /healthz answers regardless.
func Start(cfg Config) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	var pub *url.URL
	if cfg.PublicURL != "" {
		pub, _ = parsePublicURL(cfg.PublicURL)
	}
	s := &Server{
		cfg:      cfg,
		log:      cfg.Logger.Named("ingest"),
		verifier: newVerifier(cfg.AuthTokens, pub),
		m:        newMetrics(),
		slots:    make(chan struct{}, cfg.MaxInFlight),
		served:   make(chan struct{}),
		probed:   make(chan struct{}),
	}
	if cfg.SkipSignatureCheck {
		s.log.Warn("SIGNATURE CHECK IS OFF: anyone who can reach this port can put records on the topic; development only")
	}
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("ingest: listen %s: %w", cfg.Addr, err)
	}
	s.ln = ln
	probeCtx, stop := context.WithCancel(context.Background())
	s.stopProbe = stop
	s.probe(probeCtx)
	go s.probeLoop(probeCtx)

	mux := http.NewServeMux()
	for _, r := range Routes {
		mux.Handle(r.Path(), s.webhook(r))
	}
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok\n") })
	mux.HandleFunc("/readyz", s.readyz)
	mux.Handle("/metrics", promhttp.HandlerFor(s.m.reg, promhttp.HandlerOpts{}))
	s.http = &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          zap.NewStdLog(s.log.Named("http")),
	}
	go func() {
		defer close(s.served)
		if err := s.http.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("serve", zap.Error(err))
		}
	}()
	s.log.Info("ingest listening", zap.String("addr", ln.Addr().String()), zap.Bool("signature_check", !cfg.SkipSignatureCheck),
		zap.Int("auth_tokens", len(s.verifier.validators)), zap.Bool("public_url_set", pub != nil))
	return s, nil
}

// Addr is the address the server listens on.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// URL is the server's base URL on its listen address.
func (s *Server) URL() string { return "http://" + s.Addr() }

// Shutdown stops accepting requests, lets those in flight finish (each is
// answered only after Kafka's answer), waits for pre-event produces still
// running in the background, and stops the Kafka probe. ctx bounds the
// wait.
func (s *Server) Shutdown(ctx context.Context) error {
	s.closeOnce.Do(func() {
		err := s.http.Shutdown(ctx)
		<-s.served
		bg := make(chan struct{})
		go func() { s.background.Wait(); close(bg) }()
		select {
		case <-bg:
		case <-ctx.Done():
			err = errors.Join(err, fmt.Errorf("ingest: pre-event produces still running: %w", ctx.Err()))
		}
		s.stopProbe()
		<-s.probed
		s.closeErr = err
		s.log.Info("ingest stopped")
	})
	return s.closeErr
}

func (s *Server) probeLoop(ctx context.Context) {
	defer close(s.probed)
	t := time.NewTicker(s.cfg.ReadyInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			s.probe(ctx)
		}
	}
}

func (s *Server) probe(ctx context.Context) {
	ok := true
	var err error
	if s.cfg.Ping != nil {
		pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		err = s.cfg.Ping(pctx)
		cancel()
		ok = err == nil
	}
	if was := s.ready.Swap(ok); was != ok {
		if ok {
			s.log.Info("kafka reachable: accepting webhooks")
		} else if ctx.Err() == nil {
			s.log.Warn("kafka unreachable: answering 503 until it is back", zap.Error(err))
		}
	}
	if ok {
		s.m.kafkaReady.Set(1)
	} else {
		s.m.kafkaReady.Set(0)
	}
}

func (s *Server) readyz(w http.ResponseWriter, _ *http.Request) {
	if !s.ready.Load() {
		http.Error(w, "kafka unreachable", http.StatusServiceUnavailable)
		return
	}
	io.WriteString(w, "ready\n")
}

func (s *Server) webhook(route Route) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		code := s.handle(route, w, r)
		s.m.requests.WithLabelValues(string(route), strconv.Itoa(code)).Inc()
	})
}

// handle answers one webhook and returns the status it sent.
func (s *Server) handle(route Route, w http.ResponseWriter, r *http.Request) int {
	received := time.Now()
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		return s.fail(w, route, http.StatusMethodNotAllowed, "only POST")
	}
	wantType := schemas.ContentTypeForm
	if route == RouteEventStreams {
		wantType = schemas.ContentTypeJSON
	}
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != wantType {
		return s.fail(w, route, http.StatusUnsupportedMediaType, "Content-Type must be "+wantType)
	}
	select {
	case s.slots <- struct{}{}:
		defer func() { <-s.slots }()
	default:
		return s.unavailable(w, route, "too many requests in flight")
	}
	s.m.inFlight.Inc()
	defer s.m.inFlight.Dec()

	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.cfg.MaxBody))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return s.fail(w, route, http.StatusRequestEntityTooLarge, fmt.Sprintf("body over %d bytes", s.cfg.MaxBody))
		}
		return s.fail(w, route, http.StatusBadRequest, "body could not be read")
	}
	var form url.Values
	if wantType == schemas.ContentTypeForm {
		if form, err = url.ParseQuery(string(body)); err != nil {
			return s.fail(w, route, http.StatusBadRequest, "form body does not parse")
		}
	}
	if !s.cfg.SkipSignatureCheck {
		if form == nil && r.URL.Query().Get("bodySHA256") == "" {
			s.m.signatureFails.WithLabelValues(string(route)).Inc()
			return s.fail(w, route, http.StatusForbidden, "JSON webhooks must carry bodySHA256 in the URL")
		}
		if !s.verifier.verify(r, body, form) {
			s.m.signatureFails.WithLabelValues(string(route)).Inc()
			s.log.Warn("signature check failed", zap.String("route", string(route)), zap.String("remote", r.RemoteAddr),
				zap.Bool("signature_present", r.Header.Get(SignatureHeader) != ""), zap.String("checked_url", s.verifier.calledURL(r)))
			return s.fail(w, route, http.StatusForbidden, "missing or invalid X-Twilio-Signature")
		}
	}
	n, err := Normalise(Delivery{
		Route: route, Body: body, Form: form, IdempotencyToken: r.Header.Get(IdempotencyHeader),
		Traceparent: traceparent(r.Header.Get("traceparent")), ReceivedAt: received,
	})
	if err != nil {
		// The reason names fields and event types, never values.
		return s.fail(w, route, http.StatusBadRequest, err.Error())
	}
	if n.PreEvent {
		return s.preEvent(w, route, n)
	}
	if !s.ready.Load() {
		return s.unavailable(w, route, "kafka unreachable")
	}
	// A client that hangs up does not cancel a produce under way: whether
	// it lands or not, Twilio retries what got no 2xx.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), s.cfg.ProduceTimeout)
	defer cancel()
	if err := s.produce(ctx, route, n); err != nil {
		s.log.Warn("produce failed; answering 503", zap.String("route", string(route)), zap.Error(err))
		return s.unavailable(w, route, "kafka did not acknowledge")
	}
	s.logStored(route, n, received)
	w.WriteHeader(http.StatusOK)
	return http.StatusOK
}

// preEvent answers a pre-event webhook 200 by the deadline, whatever
// Kafka does: Twilio holds the customer's action until the answer. The
// produce goes on in the background; what never gets stored is counted.
func (s *Server) preEvent(w http.ResponseWriter, route Route, n Normalised) int {
	done := make(chan error, 1)
	s.background.Add(1)
	go func() {
		defer s.background.Done()
		ctx, cancel := context.WithTimeout(context.Background(), s.cfg.ProduceTimeout)
		defer cancel()
		var err error
		if !s.ready.Load() {
			err = errors.New("kafka unreachable")
		} else {
			err = s.produce(ctx, route, n)
		}
		if err != nil {
			s.m.preEventUnstored.Inc()
			s.log.Warn("pre-event webhook answered 200 but not stored", zap.String("route", string(route)),
				zap.String("ce_id", header(n.Records[0].Headers, schemas.HeaderID)), zap.Error(err))
		}
		done <- err
	}()
	t := time.NewTimer(s.cfg.PreEventDeadline)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
		s.m.preEventLate.Inc()
	}
	w.WriteHeader(http.StatusOK)
	return http.StatusOK
}

func (s *Server) produce(ctx context.Context, route Route, n Normalised) error {
	start := time.Now()
	err := s.cfg.Publisher.Publish(ctx, n.Records...)
	outcome := "acked"
	if err != nil {
		outcome = "failed"
	} else {
		s.m.records.WithLabelValues(string(route)).Add(float64(len(n.Records)))
	}
	s.m.produceSeconds.WithLabelValues(string(route), outcome).Observe(time.Since(start).Seconds())
	return err
}

func (s *Server) logStored(route Route, n Normalised, received time.Time) {
	if ce := s.log.Check(zap.DebugLevel, "webhook stored"); ce != nil {
		first := n.Records[0]
		ce.Write(zap.String("route", string(route)), zap.Int("records", len(n.Records)),
			zap.String("ce_type", header(first.Headers, schemas.HeaderType)), zap.String("ce_id", header(first.Headers, schemas.HeaderID)),
			zap.ByteString("key", first.Key), zap.Duration("took", time.Since(received)))
	}
}

func (s *Server) fail(w http.ResponseWriter, route Route, code int, reason string) int {
	if code != http.StatusForbidden {
		s.log.Debug("webhook refused", zap.String("route", string(route)), zap.Int("code", code), zap.String("reason", reason))
	}
	http.Error(w, reason, code)
	return code
}

func (s *Server) unavailable(w http.ResponseWriter, route Route, reason string) int {
	w.Header().Set("Retry-After", strconv.Itoa(int(s.cfg.RetryAfter/time.Second)))
	return s.fail(w, route, http.StatusServiceUnavailable, reason)
}

var traceparentRE = regexp.MustCompile(`^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$`)

// traceparent keeps the caller's W3C trace context, or starts a trace.
func traceparent(in string) string {
	if traceparentRE.MatchString(in) && in[3:35] != "00000000000000000000000000000000" {
		return in
	}
	var b [24]byte
	_, _ = rand.Read(b[:])
	return "00-" + hex.EncodeToString(b[:16]) + "-" + hex.EncodeToString(b[16:]) + "-01"
}

func header(hs []kafka.Header, key string) string {
	for _, h := range hs {
		if h.Key == key {
			return string(h.Value)
		}
	}
	return ""
}
