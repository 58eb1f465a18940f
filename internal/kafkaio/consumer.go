package kafkaio

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"

	"github.com/flexstream/flexstream/internal/config"
)

// ConsumerConfig configures a consumer-group Consumer.
type ConsumerConfig struct {
	Brokers []string
	GroupID string
	Topics  []string
	// StartFromLatest makes a group with no committed offset start at the
	// end of each partition; by default it starts at the beginning, so a new
	// group sees everything the topic still retains.
	StartFromLatest bool
	// MaxWait bounds a fetch's long poll; it is also how long Close may wait.
	MaxWait           time.Duration
	MaxBytes          int
	SessionTimeout    time.Duration
	HeartbeatInterval time.Duration
	RebalanceTimeout  time.Duration
	// JoinGroupBackoff is the pause before retrying a failed join, e.g.
	// while a fresh broker is still creating __consumer_offsets.
	JoinGroupBackoff time.Duration
	Logger           *zap.Logger
}

// Consumer defaults.
const (
	DefaultMaxWait           = 500 * time.Millisecond
	DefaultMaxBytes          = 10 << 20
	DefaultSessionTimeout    = 30 * time.Second
	DefaultHeartbeatInterval = 3 * time.Second
	DefaultRebalanceTimeout  = 30 * time.Second
	// kafka-go waits 5 s; a first start against a new broker would pay that.
	DefaultJoinGroupBackoff = 500 * time.Millisecond
)

func (c *ConsumerConfig) setDefaults() {
	if c.MaxWait == 0 {
		c.MaxWait = DefaultMaxWait
	}
	if c.MaxBytes == 0 {
		c.MaxBytes = DefaultMaxBytes
	}
	if c.SessionTimeout == 0 {
		c.SessionTimeout = DefaultSessionTimeout
	}
	if c.HeartbeatInterval == 0 {
		c.HeartbeatInterval = DefaultHeartbeatInterval
	}
	if c.RebalanceTimeout == 0 {
		c.RebalanceTimeout = DefaultRebalanceTimeout
	}
	if c.JoinGroupBackoff == 0 {
		c.JoinGroupBackoff = DefaultJoinGroupBackoff
	}
	if c.Logger == nil {
		c.Logger = zap.NewNop()
	}
}

// Validate names the bad field. It applies the defaults first.
func (c *ConsumerConfig) Validate() error {
	c.setDefaults()
	if err := validateBrokers(c.Brokers); err != nil {
		return err
	}
	if c.GroupID == "" {
		return config.Errorf("kafka-group", "a consumer group id is required")
	}
	if len(c.Topics) == 0 {
		return config.Errorf("kafka-topic", "at least one topic is required")
	}
	for _, t := range c.Topics {
		if err := checkTopicName(t); err != nil {
			return config.Errorf("kafka-topic", "%v", err)
		}
	}
	if c.HeartbeatInterval >= c.SessionTimeout {
		return config.Errorf("kafka-heartbeat-interval", "must be shorter than the session timeout (%s), got %s", c.SessionTimeout, c.HeartbeatInterval)
	}
	if c.MaxWait < 10*time.Millisecond {
		return config.Errorf("kafka-max-wait", "want at least 10ms, got %s", c.MaxWait)
	}
	return nil
}

// Consumer reads a consumer group's partitions. Offsets move only through
// Commit: a record the caller has not committed is delivered again after a
// restart or a rebalance (at-least-once), never skipped.
type Consumer struct {
	r *kafka.Reader
}

// NewConsumer validates cfg and joins the group lazily, on the first Fetch.
func NewConsumer(cfg ConsumerConfig) (*Consumer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	start := kafka.FirstOffset
	if cfg.StartFromLatest {
		start = kafka.LastOffset
	}
	log := cfg.Logger.Named("kafka.consumer").With(zap.String("group", cfg.GroupID))
	r := kafka.NewReader(kafka.ReaderConfig{
		Brokers:           cfg.Brokers,
		GroupID:           cfg.GroupID,
		GroupTopics:       cfg.Topics,
		MinBytes:          1,
		MaxBytes:          cfg.MaxBytes,
		MaxWait:           cfg.MaxWait,
		StartOffset:       start,
		SessionTimeout:    cfg.SessionTimeout,
		HeartbeatInterval: cfg.HeartbeatInterval,
		RebalanceTimeout:  cfg.RebalanceTimeout,
		JoinGroupBackoff:  cfg.JoinGroupBackoff,
		// Zero means CommitMessages is synchronous: it returns after the
		// coordinator stored the offset, which is what "done" has to mean.
		CommitInterval: 0,
		IsolationLevel: kafka.ReadCommitted,
		Logger:         debugLogger(log),
		ErrorLogger:    warnLogger(log),
	})
	return &Consumer{r: r}, nil
}

// Fetch returns the next record without marking it done.
func (c *Consumer) Fetch(ctx context.Context) (kafka.Message, error) {
	m, err := c.r.FetchMessage(ctx)
	if err != nil {
		return m, fmt.Errorf("kafka fetch: %w", err)
	}
	return m, nil
}

// Commit marks msgs done; it returns after the group coordinator stored
// the offsets.
func (c *Consumer) Commit(ctx context.Context, msgs ...kafka.Message) error {
	if err := c.r.CommitMessages(ctx, msgs...); err != nil {
		return fmt.Errorf("kafka commit: %w", err)
	}
	return nil
}

// Handler processes one record. Returning nil says the record is done and
// may be committed; an error stops Run without committing it.
type Handler func(ctx context.Context, m kafka.Message) error

// Run fetches, hands each record to h and commits it once h returned nil,
// until ctx ends (returning nil) or h or Kafka fails.
func (c *Consumer) Run(ctx context.Context, h Handler) error {
	for {
		m, err := c.Fetch(ctx)
		if err != nil {
			if ctx.Err() != nil && errors.Is(err, ctx.Err()) {
				return nil
			}
			return err
		}
		if err := h(ctx, m); err != nil {
			return fmt.Errorf("handle %s/%d@%d: %w", m.Topic, m.Partition, m.Offset, err)
		}
		if err := c.Commit(ctx, m); err != nil {
			if ctx.Err() != nil {
				// The record was handled but its offset not stored; it
				// comes back after restart, which the handler tolerates.
				return nil
			}
			return err
		}
	}
}

// Lag is the number of records behind the end of the partitions the
// consumer currently reads, as last seen by kafka-go.
func (c *Consumer) Lag() int64 { return c.r.Stats().Lag }

// Close leaves the group and releases connections.
func (c *Consumer) Close() error {
	if err := c.r.Close(); err != nil {
		return fmt.Errorf("kafka consumer close: %w", err)
	}
	return nil
}
