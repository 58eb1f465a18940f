package pipeline

import (
	"context"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/segmentio/kafka-go"

	"github.com/flexstream/flexstream/internal/eventstore"
	"github.com/flexstream/flexstream/projector/decode"
)

// A worker remembers the last n ids it stored, forgets the oldest first,
// and an id stored again does not take a second place.
func TestStoredIDs(t *testing.T) {
	s := newStoredIDs(3)
	id := func(i byte) uuid.UUID { return uuid.UUID{i} }
	for _, i := range []byte{1, 2, 2, 3} {
		s.add(id(i))
	}
	for _, c := range []struct {
		add  byte
		want []byte // held after the add
		gone []byte
	}{
		{0, []byte{1, 2, 3}, []byte{4}},
		{4, []byte{2, 3, 4}, []byte{1}},
		{5, []byte{3, 4, 5}, []byte{1, 2}},
		{1, []byte{4, 5, 1}, []byte{2, 3}},
	} {
		if c.add != 0 {
			s.add(id(c.add))
		}
		for _, i := range c.want {
			if !s.has(id(i)) {
				t.Fatalf("after %d: %d forgotten", c.add, i)
			}
		}
		for _, i := range c.gone {
			if s.has(id(i)) {
				t.Fatalf("after %d: %d still held", c.add, i)
			}
		}
		if len(s.set) != 3 {
			t.Fatalf("after %d: %d ids held", c.add, len(s.set))
		}
	}
}

type nopSource struct{}

func (nopSource) Fetch(ctx context.Context) (kafka.Message, error) {
	<-ctx.Done()
	return kafka.Message{}, ctx.Err()
}
func (nopSource) Commit(context.Context, ...kafka.Message) error { return nil }

type nopStore struct{}

func (nopStore) Append(context.Context, string, eventstore.Expected, ...eventstore.Event) (eventstore.AppendResult, error) {
	return eventstore.AppendResult{}, nil
}
func (nopStore) LastEvents(context.Context, string, uint64, func(eventstore.RecordedEvent) error) error {
	return nil
}

type nopPublisher struct{}

func (nopPublisher) Publish(context.Context, ...kafka.Message) error { return nil }

// Validate applies the defaults and names the bad field.
func TestConfigValidate(t *testing.T) {
	base := func() Config {
		return Config{Source: nopSource{}, Decoder: &decode.Decoder{}, Store: nopStore{}, DLQ: nopPublisher{}, DLQTopic: "t.dlq"}
	}
	c := base()
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if c.Workers != DefaultWorkers || c.MaxInFlight != DefaultMaxInFlight || c.RecheckRecords != 4*DefaultMaxInFlight {
		t.Fatalf("defaults: %+v", c)
	}
	for _, bad := range []struct {
		field string
		set   func(*Config)
	}{
		{"recheck-records", func(c *Config) { c.RecheckRecords = -1 }},
		{"projector-workers", func(c *Config) { c.Workers = 5000 }},
		{"projector-max-in-flight", func(c *Config) { c.Workers, c.MaxInFlight = 10, 5 }},
		{"kafka-topic", func(c *Config) { c.DLQTopic = "" }},
	} {
		c := base()
		bad.set(&c)
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), bad.field) {
			t.Fatalf("%s: %v", bad.field, err)
		}
	}
}
