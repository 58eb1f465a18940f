package kafkaio

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"time"

	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"

	"github.com/flexstream/flexstream/internal/config"
)

// TopicSpec is a topic the product needs.
type TopicSpec struct {
	Name              string
	Partitions        int
	ReplicationFactor int
	// Configs are topic-level settings such as retention.ms.
	Configs map[string]string
}

var topicNameRe = regexp.MustCompile(`^[a-zA-Z0-9._-]{1,249}$`)

func checkTopicName(name string) error {
	if !topicNameRe.MatchString(name) || name == "." || name == ".." {
		return fmt.Errorf("invalid topic name %q: 1-249 of [a-zA-Z0-9._-]", name)
	}
	return nil
}

// Validate names the bad field.
func (t TopicSpec) Validate() error {
	if err := checkTopicName(t.Name); err != nil {
		return config.Errorf("kafka-topic", "%v", err)
	}
	if t.Partitions < 1 || t.Partitions > 10000 {
		return config.Errorf("kafka-partitions", "want 1..10000, got %d", t.Partitions)
	}
	if t.ReplicationFactor < 1 || t.ReplicationFactor > 32 {
		return config.Errorf("kafka-replication-factor", "want 1..32, got %d", t.ReplicationFactor)
	}
	return nil
}

// TopicState is what EnsureTopics found or made.
type TopicState struct {
	Name       string
	Partitions int
	Created    bool
}

// ErrPartitionMismatch says an existing topic has fewer partitions than
// configured. It is not fixed automatically: adding partitions moves keys
// to other partitions and breaks per-conversation order.
var ErrPartitionMismatch = errors.New("existing topic has fewer partitions than configured")

// EnsureTopics creates the topics that do not exist and reports each one's
// partition count. An existing topic is left as it is; if it has fewer
// partitions than asked for, the state says so and the error wraps
// ErrPartitionMismatch, so the caller decides whether that is fatal.
func EnsureTopics(ctx context.Context, brokers []string, specs []TopicSpec, log *zap.Logger) ([]TopicState, error) {
	if err := validateBrokers(brokers); err != nil {
		return nil, err
	}
	if log == nil {
		log = zap.NewNop()
	}
	req := &kafka.CreateTopicsRequest{}
	for _, s := range specs {
		if err := s.Validate(); err != nil {
			return nil, err
		}
		tc := kafka.TopicConfig{Topic: s.Name, NumPartitions: s.Partitions, ReplicationFactor: s.ReplicationFactor}
		for k, v := range s.Configs {
			tc.ConfigEntries = append(tc.ConfigEntries, kafka.ConfigEntry{ConfigName: k, ConfigValue: v})
		}
		req.Topics = append(req.Topics, tc)
	}
	transport := newTransport()
	defer transport.CloseIdleConnections()
	client := &kafka.Client{Addr: kafka.TCP(brokers...), Timeout: 15 * time.Second, Transport: transport}
	resp, err := client.CreateTopics(ctx, req)
	if err != nil {
		return nil, fmt.Errorf("create topics: %w", err)
	}
	created := map[string]bool{}
	for name, terr := range resp.Errors {
		switch {
		case terr == nil:
			created[name] = true
		case errors.Is(terr, kafka.TopicAlreadyExists):
		default:
			return nil, fmt.Errorf("create topic %q: %w", name, terr)
		}
	}
	names := make([]string, len(specs))
	for i, s := range specs {
		names[i] = s.Name
	}
	counts, err := partitionCounts(ctx, client, names)
	if err != nil {
		return nil, err
	}
	var states []TopicState
	var mismatch error
	for _, s := range specs {
		st := TopicState{Name: s.Name, Partitions: counts[s.Name], Created: created[s.Name]}
		states = append(states, st)
		if st.Partitions < s.Partitions && mismatch == nil {
			mismatch = fmt.Errorf("%w: %q has %d, configured %d", ErrPartitionMismatch, s.Name, st.Partitions, s.Partitions)
		}
		log.Info("kafka topic ready", zap.String("topic", s.Name), zap.Int("partitions", st.Partitions), zap.Bool("created", st.Created))
	}
	return states, mismatch
}

// partitionCounts reads the topics' partition counts, waiting briefly for
// freshly created topics to appear in metadata: creation is asynchronous
// on a real cluster.
func partitionCounts(ctx context.Context, client *kafka.Client, names []string) (map[string]int, error) {
	deadline := time.Now().Add(30 * time.Second)
	for {
		meta, err := client.Metadata(ctx, &kafka.MetadataRequest{Topics: names})
		if err != nil {
			return nil, fmt.Errorf("topic metadata: %w", err)
		}
		counts := map[string]int{}
		var pending error
		for _, t := range meta.Topics {
			if t.Error != nil {
				pending = fmt.Errorf("topic %q: %w", t.Name, t.Error)
				continue
			}
			counts[t.Name] = len(t.Partitions)
		}
		for _, n := range names {
			if counts[n] == 0 && pending == nil {
				pending = fmt.Errorf("topic %q has no partitions in metadata yet", n)
			}
		}
		if pending == nil {
			return counts, nil
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("waiting for topics: %w", pending)
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("waiting for topics: %w", ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
}
