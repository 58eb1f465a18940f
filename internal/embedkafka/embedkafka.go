// Package embedkafka runs an in-process Kafka broker (franz-go's kfake) for
// the embedded default. The product never talks to it except over the Kafka
// protocol through kafka-go, exactly as it talks to a real cluster.
package embedkafka

import (
	"fmt"
	"net"
	"sync"

	"github.com/twmb/franz-go/pkg/kfake"
	"go.uber.org/zap"

	"github.com/flexstream/flexstream/internal/config"
)

// Config configures the broker.
type Config struct {
	// Addr is the host:port to listen on; port 0 picks a free one. The
	// address is also what the broker advertises, so it must be one clients
	// can dial (127.0.0.1 by default, never 0.0.0.0).
	Addr string
	// DataDir keeps topics, offsets and group state across restarts.
	// Empty means in memory only (tests that do not restart).
	DataDir string
	// SyncWrites fsyncs each produced batch before the acknowledgement,
	// so a crash (kill -9, power loss) loses nothing that was acknowledged.
	SyncWrites bool
	Logger     *zap.Logger
}

// Validate names the bad field.
func (c Config) Validate() error {
	host, _, err := net.SplitHostPort(c.Addr)
	if err != nil {
		return config.Errorf("kafka-addr", "want host:port, got %q", c.Addr)
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		return config.Errorf("kafka-addr", "the broker advertises this address to clients, so it must be dialable (e.g. 127.0.0.1), got %q", c.Addr)
	}
	return nil
}

// Broker is a running embedded broker.
type Broker struct {
	c    *kfake.Cluster
	addr string
	once sync.Once
}

// Start listens on cfg.Addr and loads cfg.DataDir if it holds a previous run.
func Start(cfg Config) (*Broker, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	log := cfg.Logger
	if log == nil {
		log = zap.NewNop()
	}
	opts := []kfake.Opt{
		kfake.NumBrokers(1),
		kfake.ClusterID("flexstream-embedded"),
		kfake.ListenFn(func(network, _ string) (net.Listener, error) {
			return net.Listen(network, cfg.Addr)
		}),
		kfake.WithLogger(zapLogger{log.Named("kfake").Sugar()}),
	}
	if cfg.DataDir != "" {
		opts = append(opts, kfake.DataDir(cfg.DataDir))
	}
	if cfg.SyncWrites {
		opts = append(opts, kfake.SyncWrites())
	}
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		return nil, fmt.Errorf("embedded kafka on %s: %w", cfg.Addr, err)
	}
	addrs := c.ListenAddrs()
	if len(addrs) != 1 {
		c.Close()
		return nil, fmt.Errorf("embedded kafka: want one listener, got %v", addrs)
	}
	return &Broker{c: c, addr: addrs[0]}, nil
}

// Addr is the host:port clients dial.
func (b *Broker) Addr() string { return b.addr }

// Close stops accepting connections and writes the broker's state to its
// data directory. It is safe to call more than once.
func (b *Broker) Close() {
	b.once.Do(b.c.Close)
}

type zapLogger struct{ s *zap.SugaredLogger }

func (l zapLogger) Logf(level kfake.LogLevel, msg string, args ...any) {
	switch level {
	case kfake.LogLevelError:
		l.s.Errorf(msg, args...)
	case kfake.LogLevelWarn:
		l.s.Warnf(msg, args...)
	case kfake.LogLevelInfo:
		// kfake logs every request at info; that is debug detail here.
		l.s.Debugf(msg, args...)
	default:
		l.s.Debugf(msg, args...)
	}
}
