package twiliostub

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"

	"go.uber.org/zap"
)

// Server is the Twilio stand-in. It is safe for concurrent use: the product
// calls it over HTTP while the test sets up state and inspects it.
type Server struct {
	log        *zap.Logger
	onEffect   func(Effect)
	accountSid string // in responses; the configured one, else generated
	authToken  string // "" accepts any basic credentials
	checkCreds bool
	specs      *specSet

	mu            sync.Mutex
	interactions  map[string]*interaction // by KD sid
	channels      map[chanKey]*channel
	conversations map[convKey]*conversation
	calls         []Call
	violations    []Violation
	taskAPICalls  int
	unhandled     int
	failNext      map[string][]fault
	failAfter     map[string][]fault
	delays        map[string]time.Duration
	delayed       int // calls now held by a delay

	// The HTTP server, once Start or StartAt ran.
	srv       *http.Server
	addr      net.Addr
	served    chan struct{} // closed when srv.Serve returns
	closing   chan struct{} // closed by Close: ends delays early
	closeOnce sync.Once
}

// Option configures a Server.
type Option func(*Server)

// WithCredentials makes the stub accept only this account SID and auth
// token as basic credentials (otherwise any non-empty pair will do) and use
// the account SID in its responses.
func WithCredentials(accountSid, authToken string) Option {
	return func(s *Server) {
		s.accountSid, s.authToken, s.checkCreds = accountSid, authToken, true
	}
}

// WithEffects calls fn after each successful call that changed the
// stub's state (an invite, a channel update, a message), outside the
// stub's lock and before the call is answered: a simulator uses it to
// play Twilio's consequences (the invite's new task being routed, the
// webhooks Twilio would send).
func WithEffects(fn func(Effect)) Option {
	return func(s *Server) { s.onEffect = fn }
}

// Effect is what one call changed.
type Effect struct {
	Operation       string // the operation id, e.g. CreateInteractionChannelInvite
	At              time.Time
	InteractionSid  string
	ChannelSid      string
	Status          string // UpdateInteractionChannel: the channel's new status
	TaskSid         string // CreateInteractionChannelInvite: the new task
	Routing         map[string]any
	ChatServiceSid  string
	ConversationSid string
	Message         *Message // CreateServiceConversationMessage
	State           string   // UpdateServiceConversation: the new state
}

// WithLogger sets where the stub logs each call (debug) and each violation
// (warn). Form values and credentials are never logged. Default: no logs.
func WithLogger(l *zap.Logger) Option {
	return func(s *Server) { s.log = l }
}

// New returns a stub with no state and no listener: use Start or StartAt,
// or serve Handler yourself. The embedded specs load on the first New of a
// process (~0.3 s); New panics if they do not load, which only a broken
// build of this package can cause.
func New(opts ...Option) *Server {
	set, err := loadSpecs()
	if err != nil {
		panic(err)
	}
	s := &Server{
		log:           zap.NewNop(),
		accountSid:    newSid("AC"),
		specs:         set,
		interactions:  map[string]*interaction{},
		channels:      map[chanKey]*channel{},
		conversations: map[convKey]*conversation{},
		failNext:      map[string][]fault{},
		failAfter:     map[string][]fault{},
		delays:        map[string]time.Duration{},
		closing:       make(chan struct{}),
	}
	for _, o := range opts {
		o(s)
	}
	return s
}

// Handler serves the stub's API, for a caller that runs its own server.
func (s *Server) Handler() http.Handler { return http.HandlerFunc(s.serve) }

// Start serves the stub on a free port of 127.0.0.1.
func (s *Server) Start() error { return s.StartAt("127.0.0.1:0") }

// StartAt serves the stub on addr ("host:port") until Close.
func (s *Server) StartAt(addr string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.srv != nil {
		return errors.New("twiliostub: already started")
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("twiliostub: listen on %s: %w", addr, err)
	}
	s.srv = &http.Server{
		Handler:           s.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          zap.NewStdLog(s.log),
	}
	s.addr = ln.Addr()
	s.served = make(chan struct{})
	go func(srv *http.Server, done chan struct{}) {
		defer close(done)
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("twiliostub: serve", zap.Error(err))
		}
	}(s.srv, s.served)
	return nil
}

// URL is the stub's base URL, "http://127.0.0.1:port"; empty before Start.
func (s *Server) URL() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.addr == nil {
		return ""
	}
	return "http://" + s.addr.String()
}

// Close stops serving and waits for the server's goroutines to end; delayed
// calls end at once, unanswered. It is safe to call more than once.
func (s *Server) Close() error {
	var err error
	s.closeOnce.Do(func() {
		close(s.closing)
		s.mu.Lock()
		srv, served := s.srv, s.served
		s.mu.Unlock()
		if srv == nil {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err = srv.Shutdown(ctx); err != nil {
			err = errors.Join(fmt.Errorf("twiliostub: shutdown: %w", err), srv.Close())
		}
		<-served
	})
	return err
}
