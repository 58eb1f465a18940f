package kafkaio

import (
	"context"
	"errors"
	"fmt"

	"github.com/segmentio/kafka-go"
)

// ErrTopicMissing: the broker answers but does not have the topic.
var ErrTopicMissing = errors.New("topic missing")

// Ping asks the brokers, in turn, for topic's partitions over a fresh
// connection: nil means a broker answered now and has the topic. A pooled
// client would answer from its metadata cache for seconds after the
// cluster went away, which is wrong for a readiness probe.
func Ping(ctx context.Context, brokers []string, topic string) error {
	if err := validateBrokers(brokers); err != nil {
		return err
	}
	var errs []error
	for _, b := range brokers {
		err := pingOne(ctx, b, topic)
		if err == nil {
			return nil
		}
		errs = append(errs, err)
		if ctx.Err() != nil {
			break
		}
	}
	return errors.Join(errs...)
}

func pingOne(ctx context.Context, broker, topic string) error {
	d := kafka.Dialer{ClientID: "flexstream"}
	conn, err := d.DialContext(ctx, "tcp", broker)
	if err != nil {
		return fmt.Errorf("kafka %s: %w", broker, err)
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	parts, err := conn.ReadPartitions(topic)
	if err != nil {
		if errors.Is(err, kafka.UnknownTopicOrPartition) {
			return fmt.Errorf("kafka %s: %w: %s", broker, ErrTopicMissing, topic)
		}
		return fmt.Errorf("kafka %s: %w", broker, err)
	}
	if len(parts) == 0 {
		return fmt.Errorf("kafka %s: %w: %s", broker, ErrTopicMissing, topic)
	}
	return nil
}
