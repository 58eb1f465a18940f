// Package kafkaio is the project's only door to Kafka: a synchronous
// producer, a consumer-group reader that commits only what its caller has
// finished, and topic creation — all through github.com/segmentio/kafka-go,
// against the embedded broker or a real cluster alike.
package kafkaio

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/compress"
	"go.uber.org/zap"

	"github.com/flexstream/flexstream/internal/config"
)

// ProducerConfig configures a Producer. Zero values take the defaults below.
type ProducerConfig struct {
	Brokers []string
	// Topic is used for messages that name none.
	Topic string
	// BatchTimeout bounds how long a write waits for company in its batch.
	// kafka-go's default of 1 s would make every synchronous write take a
	// second; 2 ms still lets concurrent webhooks share a produce request.
	BatchTimeout time.Duration
	BatchSize    int
	// Compression: none, gzip, snappy, lz4 or zstd.
	Compression string
	// Balancer: murmur2 (default; the partitioner of the Java client and
	// librdkafka, so other teams' producers put a conversation's events in
	// the same partition as ours) or fnv (kafka-go's Hash balancer).
	Balancer string
	// WriteTimeout bounds one produce request; MaxAttempts retries it.
	WriteTimeout time.Duration
	MaxAttempts  int
	Logger       *zap.Logger
}

// Producer defaults.
const (
	DefaultBatchTimeout = 2 * time.Millisecond
	DefaultBatchSize    = 500
	DefaultCompression  = "snappy"
	DefaultBalancer     = "murmur2"
	DefaultWriteTimeout = 10 * time.Second
	DefaultMaxAttempts  = 5
)

func (c *ProducerConfig) setDefaults() {
	if c.BatchTimeout == 0 {
		c.BatchTimeout = DefaultBatchTimeout
	}
	if c.BatchSize == 0 {
		c.BatchSize = DefaultBatchSize
	}
	if c.Compression == "" {
		c.Compression = DefaultCompression
	}
	if c.Balancer == "" {
		c.Balancer = DefaultBalancer
	}
	if c.WriteTimeout == 0 {
		c.WriteTimeout = DefaultWriteTimeout
	}
	if c.MaxAttempts == 0 {
		c.MaxAttempts = DefaultMaxAttempts
	}
	if c.Logger == nil {
		c.Logger = zap.NewNop()
	}
}

// Validate names the bad field. It applies the defaults first.
func (c *ProducerConfig) Validate() error {
	c.setDefaults()
	if err := validateBrokers(c.Brokers); err != nil {
		return err
	}
	if _, err := compressionCodec(c.Compression); err != nil {
		return config.Errorf("kafka-compression", "%v", err)
	}
	if _, err := balancer(c.Balancer); err != nil {
		return config.Errorf("kafka-balancer", "%v", err)
	}
	if c.BatchTimeout < 0 || c.BatchTimeout > time.Second {
		return config.Errorf("kafka-batch-timeout", "want 0..1s, got %s", c.BatchTimeout)
	}
	if c.BatchSize < 1 {
		return config.Errorf("kafka-batch-size", "want at least 1, got %d", c.BatchSize)
	}
	if c.WriteTimeout < 0 {
		return config.Errorf("kafka-write-timeout", "must not be negative, got %s", c.WriteTimeout)
	}
	if c.MaxAttempts < 1 {
		return config.Errorf("kafka-max-attempts", "want at least 1, got %d", c.MaxAttempts)
	}
	return nil
}

func validateBrokers(brokers []string) error {
	if len(brokers) == 0 {
		return config.Errorf("kafka-brokers", "at least one host:port is required")
	}
	for _, b := range brokers {
		if err := config.CheckHostPort(b); err != nil {
			return config.Errorf("kafka-brokers", "%v", err)
		}
	}
	return nil
}

func compressionCodec(name string) (kafka.Compression, error) {
	switch strings.ToLower(name) {
	case "none":
		return 0, nil
	case "gzip":
		return compress.Gzip, nil
	case "snappy":
		return compress.Snappy, nil
	case "lz4":
		return compress.Lz4, nil
	case "zstd":
		return compress.Zstd, nil
	}
	return 0, fmt.Errorf("want none, gzip, snappy, lz4 or zstd, got %q", name)
}

func balancer(name string) (kafka.Balancer, error) {
	switch strings.ToLower(name) {
	case "murmur2":
		return kafka.Murmur2Balancer{}, nil
	case "fnv", "hash":
		return &kafka.Hash{}, nil
	}
	return nil, fmt.Errorf("want murmur2 or fnv, got %q", name)
}

// Producer writes records synchronously with acks from all in-sync
// replicas: Publish returning nil means Kafka has the records.
type Producer struct {
	w         *kafka.Writer
	transport *kafka.Transport
}

// NewProducer validates cfg and returns a Producer. It does not dial:
// the first Publish does, so a producer can be built before Kafka is up.
func NewProducer(cfg ProducerConfig) (*Producer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	codec, _ := compressionCodec(cfg.Compression)
	bal, _ := balancer(cfg.Balancer)
	log := cfg.Logger.Named("kafka.producer")
	transport := newTransport()
	w := &kafka.Writer{
		Transport:    transport,
		Addr:         kafka.TCP(cfg.Brokers...),
		Topic:        cfg.Topic,
		Balancer:     bal,
		MaxAttempts:  cfg.MaxAttempts,
		BatchSize:    cfg.BatchSize,
		BatchTimeout: cfg.BatchTimeout,
		WriteTimeout: cfg.WriteTimeout,
		RequiredAcks: kafka.RequireAll,
		Compression:  codec,
		Logger:       debugLogger(log),
		ErrorLogger:  warnLogger(log),
		// Topics are created on purpose, with their partition counts, by
		// EnsureTopics; a typo must fail, not create a one-partition topic.
		AllowAutoTopicCreation: false,
	}
	return &Producer{w: w, transport: transport}, nil
}

// Publish writes msgs and returns once every one is acknowledged by all
// in-sync replicas, or an error saying which failed. Messages without a
// Topic go to the configured one.
func (p *Producer) Publish(ctx context.Context, msgs ...kafka.Message) error {
	if len(msgs) == 0 {
		return nil
	}
	if err := p.w.WriteMessages(ctx, msgs...); err != nil {
		var werrs kafka.WriteErrors
		if errors.As(err, &werrs) {
			return fmt.Errorf("kafka publish: %d of %d records failed: %w", werrs.Count(), len(msgs), err)
		}
		return fmt.Errorf("kafka publish: %w", err)
	}
	return nil
}

// Close flushes pending writes and releases connections.
func (p *Producer) Close() error {
	err := p.w.Close()
	// The writer leaves its transport's connection pools running.
	p.transport.CloseIdleConnections()
	if err != nil {
		return fmt.Errorf("kafka producer close: %w", err)
	}
	return nil
}

// newTransport gives each client its own connection pools. kafka-go's
// shared DefaultTransport keeps a metadata goroutine per cluster alive for
// the life of the process; an owned transport is closed with its client.
func newTransport() *kafka.Transport {
	return &kafka.Transport{ClientID: "flexstream", DialTimeout: 5 * time.Second}
}

func debugLogger(l *zap.Logger) kafka.Logger {
	s := l.Sugar()
	return kafka.LoggerFunc(func(msg string, args ...any) { s.Debugf(msg, args...) })
}

func warnLogger(l *zap.Logger) kafka.Logger {
	s := l.Sugar()
	return kafka.LoggerFunc(func(msg string, args ...any) { s.Warnf(msg, args...) })
}
