// Package redrive publishes the Twilio events of a period again, from the
// event store to a Kafka topic, in the topic contract of schemas: for
// other teams' consumers that missed them (the events topic keeps PII and
// so has a short retention; the store keeps everything, pseudonymised).
//
// Each stored event carries the topic record it was made from, with its
// PII pseudonymised (domain.Metadata.Raw). Re-drive publishes that record
// — same key, same CloudEvents headers and ce_id, so consumers dedupe as
// they do Twilio's redeliveries — in the order of $all, which for one key
// is the order of the events topic: the projector appends a key's records
// to one stream, in offset order.
package redrive

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/flexstream/flexstream/internal/eventstore"
	"github.com/flexstream/flexstream/projector/domain"
	"github.com/flexstream/flexstream/schemas"
)

// Events is the event store, as re-drive reads it.
type Events interface {
	HeadPosition(ctx context.Context) (uint64, error)
	ReadAll(ctx context.Context, from, max uint64, fn func(eventstore.RecordedEvent) error) error
}

// Publisher returns once Kafka has acknowledged every message.
type Publisher interface {
	Publish(ctx context.Context, msgs ...kafka.Message) error
}

// Config of a re-drive.
type Config struct {
	Events    Events
	Publisher Publisher
	// Topic receives the records.
	Topic string
	// From and To bound the period by the time of the Twilio event
	// (ce_time, else when it was received): From ≤ t < To.
	From, To time.Time
	// ReadBatch is how many events one read of $all asks for (10,000).
	ReadBatch uint64
	// PublishBatch is how many records one publish carries (500); the
	// next waits for its acknowledgement, which keeps the order.
	PublishBatch int
	// Progress, if set, is called after each publish.
	Progress func(Result)
}

// Result counts what a re-drive did.
type Result struct {
	Read      uint64 // events of $all read
	Head      uint64 // $all position where the read stopped (the head at the start)
	Published int    // records acknowledged by Kafka
	// Unkept counts Twilio events of the period stored without their
	// record (by a version before records were kept): not published.
	Unkept  int
	Elapsed time.Duration
}

// ErrUnkept is returned, after everything else was published, when some
// events of the period could not be: their records were not kept.
var ErrUnkept = errors.New("some events of the period were stored without their topic record and were not re-driven")

// ErrConfig wraps a configuration error.
var ErrConfig = errors.New("redrive: bad configuration")

func (c *Config) validate() error {
	switch {
	case c.Events == nil || c.Publisher == nil:
		return fmt.Errorf("%w: events and publisher are required", ErrConfig)
	case c.Topic == "":
		return fmt.Errorf("%w: no topic", ErrConfig)
	case c.From.IsZero() || c.To.IsZero():
		return fmt.Errorf("%w: the period needs both ends", ErrConfig)
	case !c.From.Before(c.To):
		return fmt.Errorf("%w: the period ends (%s) before it starts (%s)", ErrConfig, c.To.Format(time.RFC3339), c.From.Format(time.RFC3339))
	}
	if c.ReadBatch == 0 {
		c.ReadBatch = 10_000
	}
	if c.PublishBatch <= 0 {
		c.PublishBatch = 500
	}
	return nil
}

// Run re-drives the period: it reads $all from the start up to the head
// as it was when it began and publishes the record of every Twilio event
// of the period.
func Run(ctx context.Context, cfg Config) (Result, error) {
	var res Result
	if err := cfg.validate(); err != nil {
		return res, err
	}
	start := time.Now()
	defer func() { res.Elapsed = time.Since(start) }()
	head, err := cfg.Events.HeadPosition(ctx)
	if err != nil {
		return res, fmt.Errorf("redrive: %w", err)
	}
	res.Head = head
	pending := make([]kafka.Message, 0, cfg.PublishBatch)
	flush := func() error {
		if len(pending) == 0 {
			return nil
		}
		if err := cfg.Publisher.Publish(ctx, pending...); err != nil {
			return fmt.Errorf("redrive: publish to %s after %d records: %w", cfg.Topic, res.Published, err)
		}
		res.Published += len(pending)
		clear(pending)
		pending = pending[:0]
		if cfg.Progress != nil {
			cfg.Progress(res)
		}
		return nil
	}
	errDone := errors.New("past the head")
	from, started := uint64(0), false
	for head > 0 {
		fresh := 0
		last := from
		n := cfg.ReadBatch
		if started {
			n++ // the read repeats the previous batch's last event
		}
		err := cfg.Events.ReadAll(ctx, from, n, func(ev eventstore.RecordedEvent) error {
			if started && ev.Position <= from {
				return nil // the previous batch's last event: reads are inclusive
			}
			if ev.Position > head {
				return errDone
			}
			last = ev.Position
			fresh++
			res.Read++
			m, ok, err := Message(ev, cfg.Topic, cfg.From, cfg.To)
			switch {
			case errors.Is(err, ErrNoRecord):
				res.Unkept++
				return nil
			case err != nil:
				return err
			case !ok:
				return nil
			}
			pending = append(pending, m)
			if len(pending) == cfg.PublishBatch {
				return flush()
			}
			return nil
		})
		if err != nil && !errors.Is(err, errDone) {
			return res, err
		}
		if errors.Is(err, errDone) || last >= head || fresh == 0 {
			break
		}
		from, started = last, true
	}
	if err := flush(); err != nil {
		return res, err
	}
	if res.Unkept > 0 {
		return res, fmt.Errorf("redrive: %d events: %w", res.Unkept, ErrUnkept)
	}
	return res, nil
}

// ErrNoRecord: a Twilio event of the period stored without its record.
var ErrNoRecord = errors.New("stored without its topic record")

// HeaderRedrivenFrom is added to every re-driven record: where the
// original was on the events topic (topic/partition@offset).
const HeaderRedrivenFrom = "flexstream_redriven_from"

// Message is the record to publish for a stored event: ok is false when
// the event is not a Twilio event (reactions, checkpoints, system
// streams) or falls outside [from, to).
func Message(ev eventstore.RecordedEvent, topic string, from, to time.Time) (kafka.Message, bool, error) {
	if !twilioStream(ev.Stream) {
		return kafka.Message{}, false, nil
	}
	var at struct {
		At time.Time `json:"at"`
	}
	if err := json.Unmarshal(ev.Data, &at); err != nil {
		return kafka.Message{}, false, fmt.Errorf("redrive: event %s of %s at position %d: data: %w", ev.ID, ev.Stream, ev.Position, err)
	}
	if at.At.Before(from) || !at.At.Before(to) {
		return kafka.Message{}, false, nil
	}
	var meta domain.Metadata
	if err := json.Unmarshal(ev.Metadata, &meta); err != nil {
		return kafka.Message{}, false, fmt.Errorf("redrive: event %s of %s at position %d: metadata: %w", ev.ID, ev.Stream, ev.Position, err)
	}
	if meta.Raw == nil {
		return kafka.Message{}, false, fmt.Errorf("redrive: event %s of %s at position %d: %w", ev.ID, ev.Stream, ev.Position, ErrNoRecord)
	}
	m := kafka.Message{Topic: topic, Value: []byte(meta.Raw.Value)}
	if meta.Raw.Key != "" {
		m.Key = []byte(meta.Raw.Key)
	}
	for _, k := range schemas.Headers {
		if v, ok := meta.Raw.Headers[k]; ok {
			m.Headers = append(m.Headers, kafka.Header{Key: k, Value: []byte(v)})
		}
	}
	m.Headers = append(m.Headers, kafka.Header{Key: HeaderRedrivenFrom, Value: []byte(meta.Topic + "/" + strconv.Itoa(meta.Partition) + "@" + strconv.FormatInt(meta.Offset, 10))})
	return m, true, nil
}

// twilioStream: the streams that hold Twilio's events.
func twilioStream(stream string) bool {
	switch domain.Category(stream) {
	case domain.CategoryConversation, domain.CategoryTask, domain.CategoryOther:
		return strings.Contains(stream, "-")
	}
	return false
}
