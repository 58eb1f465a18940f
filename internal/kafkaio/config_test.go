package kafkaio

import (
	"errors"
	"testing"
	"time"

	"github.com/flexstream/flexstream/internal/config"
)

func fieldOf(t *testing.T, err error) string {
	t.Helper()
	if err == nil {
		return ""
	}
	var fe *config.FieldError
	if !errors.As(err, &fe) {
		t.Fatalf("error %v is not a FieldError", err)
	}
	return fe.Field
}

func TestProducerConfigValidate(t *testing.T) {
	ok := []string{"127.0.0.1:9092"}
	tests := []struct {
		name string
		cfg  ProducerConfig
		want string
	}{
		{"defaults", ProducerConfig{Brokers: ok}, ""},
		{"no brokers", ProducerConfig{}, "kafka-brokers"},
		{"bad broker", ProducerConfig{Brokers: []string{"localhost"}}, "kafka-brokers"},
		{"bad port", ProducerConfig{Brokers: []string{"h:70000"}}, "kafka-brokers"},
		{"compression", ProducerConfig{Brokers: ok, Compression: "brotli"}, "kafka-compression"},
		{"balancer", ProducerConfig{Brokers: ok, Balancer: "round-robin"}, "kafka-balancer"},
		{"batch timeout", ProducerConfig{Brokers: ok, BatchTimeout: 2 * time.Second}, "kafka-batch-timeout"},
		{"batch size", ProducerConfig{Brokers: ok, BatchSize: -1}, "kafka-batch-size"},
		{"attempts", ProducerConfig{Brokers: ok, MaxAttempts: -1}, "kafka-max-attempts"},
		{"zstd fnv", ProducerConfig{Brokers: ok, Compression: "zstd", Balancer: "fnv"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := tt.cfg
			if got := fieldOf(t, cfg.Validate()); got != tt.want {
				t.Fatalf("field %q, want %q", got, tt.want)
			}
		})
	}
	cfg := ProducerConfig{Brokers: ok}
	_ = cfg.Validate()
	if cfg.BatchTimeout != DefaultBatchTimeout || cfg.Balancer != DefaultBalancer {
		t.Fatalf("defaults not applied: %+v", cfg)
	}
}

func TestConsumerConfigValidate(t *testing.T) {
	ok := []string{"127.0.0.1:9092"}
	tests := []struct {
		name string
		cfg  ConsumerConfig
		want string
	}{
		{"defaults", ConsumerConfig{Brokers: ok, GroupID: "g", Topics: []string{"t"}}, ""},
		{"no group", ConsumerConfig{Brokers: ok, Topics: []string{"t"}}, "kafka-group"},
		{"no topic", ConsumerConfig{Brokers: ok, GroupID: "g"}, "kafka-topic"},
		{"bad topic", ConsumerConfig{Brokers: ok, GroupID: "g", Topics: []string{"a b"}}, "kafka-topic"},
		{"heartbeat", ConsumerConfig{Brokers: ok, GroupID: "g", Topics: []string{"t"}, HeartbeatInterval: time.Minute}, "kafka-heartbeat-interval"},
		{"max wait", ConsumerConfig{Brokers: ok, GroupID: "g", Topics: []string{"t"}, MaxWait: time.Millisecond}, "kafka-max-wait"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := tt.cfg
			if got := fieldOf(t, cfg.Validate()); got != tt.want {
				t.Fatalf("field %q, want %q", got, tt.want)
			}
		})
	}
}

func TestTopicSpecValidate(t *testing.T) {
	tests := []struct {
		spec TopicSpec
		want string
	}{
		{TopicSpec{Name: "twilio.events.v1", Partitions: 6, ReplicationFactor: 3}, ""},
		{TopicSpec{Name: "..", Partitions: 6, ReplicationFactor: 1}, "kafka-topic"},
		{TopicSpec{Name: "t", Partitions: 0, ReplicationFactor: 1}, "kafka-partitions"},
		{TopicSpec{Name: "t", Partitions: 1, ReplicationFactor: 0}, "kafka-replication-factor"},
	}
	for _, tt := range tests {
		if got := fieldOf(t, tt.spec.Validate()); got != tt.want {
			t.Errorf("%+v: field %q, want %q", tt.spec, got, tt.want)
		}
	}
}
