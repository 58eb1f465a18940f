package api

import (
	"regexp"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/flexstream/flexstream/internal/config"
)

// Config configures a Server. Zero values take the defaults below.
type Config struct {
	// Addr is the listen address (host:port; port 0 picks one).
	Addr string
	// BearerToken, when set, is required as "Authorization: Bearer
	// <token>" on every route but /healthz, /readyz and /metrics. It is a
	// secret: read it from BearerTokenEnv, not from a flag.
	BearerToken string

	Store    Store
	Timeline Timeline
	Feed     Feed
	// Ready decides /readyz: 200 while it returns nil, else 503 with its
	// error as the reason (e.g. "catching up" or "kafka unreachable"). It
	// is called on every probe, so it must be quick. Nil: always ready.
	Ready func() error
	// Registry is where the API registers its metrics and what /metrics
	// serves: pass the projector's registry so one scrape gets both. Nil:
	// the API makes its own, with the Go and process collectors.
	Registry *prometheus.Registry
	Logger   *zap.Logger
	// HeartbeatInterval is how long an idle event stream waits before it
	// sends a comment, which keeps proxies from closing it.
	HeartbeatInterval time.Duration
}

// Defaults and limits.
const (
	DefaultAddr              = "127.0.0.1:8081"
	DefaultHeartbeatInterval = 15 * time.Second
	DefaultLimit             = 50
	MaxLimit                 = 500
	// BearerTokenEnv is the environment variable the token is read from.
	BearerTokenEnv = "FLEXSTREAM_API_TOKEN"
	// MinTokenLength is the shortest bearer token accepted.
	MinTokenLength = 16
)

// RFC 6750 b64token.
var tokenRE = regexp.MustCompile(`^[A-Za-z0-9\-._~+/]+=*$`)

func (c *Config) setDefaults() {
	if c.Addr == "" {
		c.Addr = DefaultAddr
	}
	if c.HeartbeatInterval == 0 {
		c.HeartbeatInterval = DefaultHeartbeatInterval
	}
	if c.Logger == nil {
		c.Logger = zap.NewNop()
	}
}

// Validate names the bad field (as its command-line flag or environment
// variable). It applies the defaults first.
func (c *Config) Validate() error {
	c.setDefaults()
	if err := config.CheckListenAddr(c.Addr); err != nil {
		return config.Errorf("api-addr", "%v", err)
	}
	if c.BearerToken != "" {
		// Never repeat the token: the message ends up in logs.
		if len(c.BearerToken) < MinTokenLength {
			return config.Errorf(BearerTokenEnv, "want at least %d characters, got %d", MinTokenLength, len(c.BearerToken))
		}
		if !tokenRE.MatchString(c.BearerToken) {
			return config.Errorf(BearerTokenEnv, "want letters, digits and -._~+/ (then = padding) only")
		}
	}
	if c.HeartbeatInterval < time.Millisecond {
		return config.Errorf("api-heartbeat-interval", "want at least 1ms, got %s", c.HeartbeatInterval)
	}
	if c.Store == nil {
		return config.Errorf("data", "no read-model store")
	}
	if c.Timeline == nil {
		return config.Errorf("store", "no event store to read timelines from")
	}
	if c.Feed == nil {
		return config.Errorf("data", "no feed of read-model changes")
	}
	return nil
}
