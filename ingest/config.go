package ingest

import (
	"context"
	"net/url"
	"time"

	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"

	"github.com/flexstream/flexstream/internal/config"
)

// Publisher is what ingest needs of Kafka: Publish returns nil only once
// every record is acknowledged by all in-sync replicas.
type Publisher interface {
	Publish(ctx context.Context, msgs ...kafka.Message) error
}

// Pinger reports whether Kafka answers (and has the topic).
type Pinger func(ctx context.Context) error

// Config configures a Server. Zero values take the defaults below.
type Config struct {
	// Addr is the listen address (host:port; port 0 picks one).
	Addr string
	// PublicURL is scheme://host[:port][/prefix] under which Twilio calls
	// ingest, when a proxy or load balancer stands in front: signatures
	// are computed over the URL Twilio called. Empty: the request's Host.
	PublicURL string
	// AuthTokens are the Twilio auth tokens a signature may be made with
	// (primary and, during a rotation, secondary).
	AuthTokens []string
	// SkipSignatureCheck accepts unsigned requests. Development only: it
	// is logged as a warning at every start.
	SkipSignatureCheck bool
	// MaxBody is the largest request body accepted (413 above).
	MaxBody int64
	// MaxInFlight bounds requests being processed; more get 503.
	MaxInFlight int
	// ProduceTimeout bounds the wait for Kafka's acknowledgement; it must
	// stay under Twilio's answer deadline (5 s for Conversations).
	ProduceTimeout time.Duration
	// PreEventDeadline is how long a pre-event webhook waits for Kafka
	// before it is answered 200 anyway: Twilio holds the customer's
	// action until then.
	PreEventDeadline time.Duration
	// RetryAfter is the Retry-After of 503 answers.
	RetryAfter time.Duration
	// ReadyInterval is how often Kafka is probed for /readyz.
	ReadyInterval time.Duration

	Publisher Publisher
	Ping      Pinger
	Logger    *zap.Logger
}

// Defaults.
const (
	DefaultMaxBody          = 1 << 20
	DefaultMaxInFlight      = 1024
	DefaultProduceTimeout   = 4 * time.Second
	DefaultPreEventDeadline = 2 * time.Second
	DefaultRetryAfter       = 5 * time.Second
	DefaultReadyInterval    = time.Second
)

func (c *Config) setDefaults() {
	if c.MaxBody == 0 {
		c.MaxBody = DefaultMaxBody
	}
	if c.MaxInFlight == 0 {
		c.MaxInFlight = DefaultMaxInFlight
	}
	if c.ProduceTimeout == 0 {
		c.ProduceTimeout = DefaultProduceTimeout
	}
	if c.PreEventDeadline == 0 {
		c.PreEventDeadline = DefaultPreEventDeadline
	}
	if c.RetryAfter == 0 {
		c.RetryAfter = DefaultRetryAfter
	}
	if c.ReadyInterval == 0 {
		c.ReadyInterval = DefaultReadyInterval
	}
	if c.Logger == nil {
		c.Logger = zap.NewNop()
	}
}

// Validate names the bad field (as its command-line flag). It applies the
// defaults first.
func (c *Config) Validate() error {
	c.setDefaults()
	if err := config.CheckListenAddr(c.Addr); err != nil {
		return config.Errorf("ingest-addr", "%v", err)
	}
	if c.PublicURL != "" {
		if _, err := parsePublicURL(c.PublicURL); err != nil {
			return config.Errorf("public-url", "%v", err)
		}
	}
	if !c.SkipSignatureCheck && !hasToken(c.AuthTokens) {
		return config.Errorf("TWILIO_AUTH_TOKEN", "an auth token is required to check Twilio's signatures (or --insecure-skip-signature, for development only)")
	}
	if c.MaxBody < 1024 {
		return config.Errorf("max-body", "want at least 1024 bytes, got %d", c.MaxBody)
	}
	if c.MaxInFlight < 1 {
		return config.Errorf("max-in-flight", "want at least 1, got %d", c.MaxInFlight)
	}
	if c.ProduceTimeout < 100*time.Millisecond || c.ProduceTimeout > 14*time.Second {
		return config.Errorf("produce-timeout", "want 100ms..14s (Twilio gives up after 15 s), got %s", c.ProduceTimeout)
	}
	if c.PreEventDeadline < 10*time.Millisecond || c.PreEventDeadline > 4*time.Second {
		return config.Errorf("pre-event-deadline", "want 10ms..4s (Twilio waits 5 s for a pre-event answer), got %s", c.PreEventDeadline)
	}
	if c.RetryAfter < time.Second {
		return config.Errorf("retry-after", "want at least 1s, got %s", c.RetryAfter)
	}
	if c.ReadyInterval <= 0 {
		return config.Errorf("ready-interval", "must be positive, got %s", c.ReadyInterval)
	}
	if c.Publisher == nil {
		return config.Errorf("kafka-brokers", "no Kafka publisher")
	}
	return nil
}

func hasToken(tokens []string) bool {
	for _, t := range tokens {
		if t != "" {
			return true
		}
	}
	return false
}

func parsePublicURL(s string) (*url.URL, error) {
	u, err := url.Parse(s)
	if err != nil {
		return nil, err
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, errPublicURL
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return nil, errPublicURL
	}
	return u, nil
}

var errPublicURL = configError("want scheme://host[:port][/prefix], http or https, without query")

type configError string

func (e configError) Error() string { return string(e) }
