package api

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/zap"
)

//go:embed openapi.json
var openAPI []byte

// writeTimeout bounds each write to a client (refreshed per event on
// streams), so a client that stops reading does not hold a handler.
const writeTimeout = 30 * time.Second

// unmatched is the route label of requests no route serves.
const unmatched = "unmatched"

// Server serves the query API and the operational endpoints.
type Server struct {
	cfg      Config
	log      *zap.Logger
	m        *metrics
	tokenSum *[sha256.Size]byte // nil: no auth
	ln       net.Listener
	http     *http.Server
	served   chan struct{}
	gatherer http.Handler // /metrics

	// streams ends every Server-Sent Event stream at Shutdown.
	streams    context.Context
	endStreams context.CancelFunc

	closeOnce sync.Once
	closeErr  error
}

// route is one pattern of the mux. The patterns are also the paths of the
// OpenAPI document, which a test holds them to.
type route struct {
	pattern string // ServeMux pattern; also the metrics' route label
	open    bool   // never behind auth
	stream  bool   // long-lived: left out of the duration histogram
	handler http.HandlerFunc
}

func (s *Server) routes() []route {
	return []route{
		{pattern: "/v1/conversations", handler: s.conversations},
		{pattern: "/v1/conversations/{sid}", handler: s.conversation},
		{pattern: "/v1/conversations/{sid}/timeline", handler: s.timeline},
		{pattern: "/v1/tasks/{sid}", handler: s.task},
		{pattern: "/v1/stats", handler: s.stats},
		{pattern: "/v1/events", stream: true, handler: s.events},
		{pattern: "/openapi.json", handler: s.openapi},
		{pattern: "/healthz", open: true, handler: s.healthz},
		{pattern: "/readyz", open: true, handler: s.readyz},
		{pattern: "/metrics", open: true, handler: s.serveMetrics},
	}
}

// Start validates cfg, listens and serves.
func Start(cfg Config) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	m, err := newMetrics(cfg.Registry)
	if err != nil {
		return nil, fmt.Errorf("api: register metrics: %w", err)
	}
	s := &Server{cfg: cfg, log: cfg.Logger.Named("api"), m: m, served: make(chan struct{})}
	if cfg.BearerToken != "" {
		sum := sha256.Sum256([]byte(cfg.BearerToken))
		s.tokenSum = &sum
	}
	s.gatherer = promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{ErrorLog: zap.NewStdLog(s.log.Named("metrics"))})
	s.streams, s.endStreams = context.WithCancel(context.Background())

	mux := http.NewServeMux()
	for _, r := range s.routes() {
		mux.Handle(r.pattern, s.wrap(r))
	}
	mux.Handle("/", s.wrap(route{pattern: unmatched, handler: func(w http.ResponseWriter, _ *http.Request) {
		s.fail(w, http.StatusNotFound, "no such route; see /openapi.json")
	}}))

	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		s.endStreams()
		return nil, fmt.Errorf("api: listen %s: %w", cfg.Addr, err)
	}
	s.ln = ln
	s.http = &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		// No WriteTimeout: streams are long-lived. Handlers set write
		// deadlines of their own.
		IdleTimeout:    2 * time.Minute,
		MaxHeaderBytes: 64 << 10,
		ErrorLog:       zap.NewStdLog(s.log.Named("http")),
	}
	go func() {
		defer close(s.served)
		if err := s.http.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("serve", zap.Error(err))
		}
	}()
	s.log.Info("api listening", zap.String("addr", ln.Addr().String()), zap.Bool("auth", s.tokenSum != nil),
		zap.Bool("shared_registry", cfg.Registry != nil))
	return s, nil
}

// Addr is the address the server listens on.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// URL is the server's base URL on its listen address.
func (s *Server) URL() string { return "http://" + s.Addr() }

// Shutdown ends the event streams, stops accepting requests and waits for
// those in flight. ctx bounds the wait; when it ends first, the remaining
// connections are closed.
func (s *Server) Shutdown(ctx context.Context) error {
	s.closeOnce.Do(func() {
		s.endStreams()
		err := s.http.Shutdown(ctx)
		if err != nil {
			err = errors.Join(fmt.Errorf("api: requests still in flight: %w", err), s.http.Close())
		}
		<-s.served
		s.closeErr = err
		s.log.Info("api stopped")
	})
	return s.closeErr
}

// wrap puts auth, the method check and metrics around a route.
func (s *Server) wrap(rt route) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &recorder{ResponseWriter: w}
		defer func() {
			code := strconv.Itoa(rec.status())
			if rec.aborted {
				code = "aborted"
			}
			s.m.requests.WithLabelValues(rt.pattern, code).Inc()
			if !rt.stream {
				s.m.requestSeconds.WithLabelValues(rt.pattern, code).Observe(time.Since(start).Seconds())
			}
			if ce := s.log.Check(zap.DebugLevel, "request"); ce != nil {
				// The route pattern, never the path or query: they may
				// carry whatever a client typed.
				ce.Write(zap.String("route", rt.pattern), zap.String("method", sanitizeMethod(r.Method)),
					zap.String("code", code), zap.Duration("took", time.Since(start)))
			}
		}()
		_ = http.NewResponseController(rec).SetWriteDeadline(time.Now().Add(writeTimeout))
		if !rt.open && !s.authorized(rec, r) {
			return
		}
		if rt.pattern != unmatched && r.Method != http.MethodGet {
			rec.Header().Set("Allow", http.MethodGet)
			s.fail(rec, http.StatusMethodNotAllowed, "only GET")
			return
		}
		rt.handler(rec, r)
	})
}

// authorized checks the bearer token, or answers 401.
func (s *Server) authorized(w http.ResponseWriter, r *http.Request) bool {
	if s.tokenSum == nil {
		return true
	}
	scheme, token, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		w.Header().Set("WWW-Authenticate", `Bearer realm="flexstream"`)
		s.fail(w, http.StatusUnauthorized, "bearer token required")
		return false
	}
	// Hashes have one length, so the comparison time says nothing about
	// the token's length either.
	sum := sha256.Sum256([]byte(strings.TrimSpace(token)))
	if subtle.ConstantTimeCompare(sum[:], s.tokenSum[:]) != 1 {
		w.Header().Set("WWW-Authenticate", `Bearer realm="flexstream", error="invalid_token"`)
		s.fail(w, http.StatusUnauthorized, "invalid bearer token")
		return false
	}
	return true
}

var (
	conversationSID = regexp.MustCompile(`^CH[0-9a-f]{32}$`)
	taskSID         = regexp.MustCompile(`^WT[0-9a-f]{32}$`)
)

// sid returns the path's SID, or answers 400.
func (s *Server) sid(w http.ResponseWriter, r *http.Request, re *regexp.Regexp, prefix string) (string, bool) {
	sid := r.PathValue("sid")
	if !re.MatchString(sid) {
		s.failParam(w, http.StatusBadRequest, "sid", "sid: want "+prefix+" and 32 lowercase hex digits")
		return "", false
	}
	return sid, true
}

func (s *Server) conversation(w http.ResponseWriter, r *http.Request) {
	sid, ok := s.sid(w, r, conversationSID, "CH")
	if !ok {
		return
	}
	v, err := s.cfg.Store.Conversation(r.Context(), sid)
	s.view(w, r, "conversation", v, err)
}

func (s *Server) task(w http.ResponseWriter, r *http.Request) {
	sid, ok := s.sid(w, r, taskSID, "WT")
	if !ok {
		return
	}
	v, err := s.cfg.Store.Task(r.Context(), sid)
	s.view(w, r, "task", v, err)
}

func (s *Server) stats(w http.ResponseWriter, r *http.Request) {
	v, err := s.cfg.Store.Stats(r.Context())
	s.view(w, r, "stats", v, err)
}

// view answers a view the store returned.
func (s *Server) view(w http.ResponseWriter, r *http.Request, what string, v json.RawMessage, err error) {
	if err != nil {
		s.storeError(w, r, what, err)
		return
	}
	if !json.Valid(v) {
		s.log.Error("store returned a view that is not JSON", zap.String("view", what), zap.Int("bytes", len(v)))
		s.fail(w, http.StatusInternalServerError, "internal error")
		return
	}
	s.writeJSON(w, http.StatusOK, v)
}

func (s *Server) openapi(w http.ResponseWriter, _ *http.Request) {
	s.writeJSON(w, http.StatusOK, openAPI)
}

func (s *Server) serveMetrics(w http.ResponseWriter, r *http.Request) { s.gatherer.ServeHTTP(w, r) }

func (s *Server) healthz(w http.ResponseWriter, _ *http.Request) {
	s.writeJSON(w, http.StatusOK, []byte(`{"status":"ok"}`))
}

func (s *Server) readyz(w http.ResponseWriter, _ *http.Request) {
	if s.cfg.Ready != nil {
		if err := s.cfg.Ready(); err != nil {
			s.fail(w, http.StatusServiceUnavailable, "not ready: "+err.Error())
			return
		}
	}
	s.writeJSON(w, http.StatusOK, []byte(`{"status":"ready"}`))
}

// statusClientClosed is nginx's code for a client that left before the
// answer; only the metrics ever see it.
const statusClientClosed = 499

// storeError answers an error of the Store or the Timeline.
func (s *Server) storeError(w http.ResponseWriter, r *http.Request, what string, err error) {
	switch {
	case errors.Is(err, ErrNotFound):
		s.fail(w, http.StatusNotFound, what+" not found")
	case r.Context().Err() != nil:
		s.fail(w, statusClientClosed, "request canceled")
	default:
		s.log.Error("read failed", zap.String("view", what), zap.Error(err))
		s.fail(w, http.StatusInternalServerError, "internal error")
	}
}

type errorBody struct {
	Error     string `json:"error"`
	Parameter string `json:"parameter,omitempty"`
}

func (s *Server) fail(w http.ResponseWriter, code int, msg string) { s.failParam(w, code, "", msg) }

// failParam answers {"error": msg, "parameter": param}. msg never repeats
// what the client sent.
func (s *Server) failParam(w http.ResponseWriter, code int, param, msg string) {
	b, _ := json.Marshal(errorBody{Error: msg, Parameter: param})
	s.writeJSON(w, code, b)
}

func (s *Server) writeJSON(w http.ResponseWriter, code int, body []byte) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Length", strconv.Itoa(len(body)+1))
	w.WriteHeader(code)
	_, _ = w.Write(body)
	_, _ = w.Write([]byte{'\n'})
}

// recorder notes the status a handler sent.
type recorder struct {
	http.ResponseWriter
	code    int
	aborted bool // the response was cut on purpose
}

func (r *recorder) WriteHeader(code int) {
	if r.code == 0 {
		r.code = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(b []byte) (int, error) {
	if r.code == 0 {
		r.code = http.StatusOK
	}
	return r.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach Flush and the deadlines.
func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

func (r *recorder) status() int {
	if r.code == 0 {
		return http.StatusOK
	}
	return r.code
}

// abort cuts the response: a client must not take a truncated body for a
// whole one once the status line is out.
func abort(w http.ResponseWriter) {
	if rec, ok := w.(*recorder); ok {
		rec.aborted = true
	}
	panic(http.ErrAbortHandler)
}

// sanitizeMethod keeps log fields to the methods there are.
func sanitizeMethod(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions, http.MethodConnect, http.MethodTrace:
		return m
	}
	return "other"
}
