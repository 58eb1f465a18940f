package redrive

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/segmentio/kafka-go"

	"github.com/flexstream/flexstream/internal/eventstore"
	"github.com/flexstream/flexstream/projector/domain"
	"github.com/flexstream/flexstream/schemas"
)

var t0 = time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC)

// stored makes a stored event of stream at position pos, happening at at,
// with its record unless noRaw.
func stored(t *testing.T, stream string, pos uint64, at time.Time, noRaw bool) eventstore.RecordedEvent {
	t.Helper()
	data, err := json.Marshal(domain.Event{CEType: "com.twilio.taskrouter.task.canceled", At: at})
	if err != nil {
		t.Fatal(err)
	}
	meta := domain.Metadata{Topic: "twilio.events.v1", Partition: 2, Offset: int64(pos) * 10}
	if !noRaw {
		meta.Raw = &domain.Raw{
			Key:   stream[len(domain.Category(stream))+1:],
			Value: fmt.Sprintf("EventType=task.canceled&N=%d", pos),
			Headers: map[string]string{
				schemas.HeaderFamily: schemas.FamilyTaskRouter, schemas.HeaderID: fmt.Sprintf("EV%d", pos),
				schemas.HeaderType: "com.twilio.taskrouter.task.canceled", schemas.HeaderSpecVersion: "1.0",
			},
		}
	}
	md, err := json.Marshal(meta)
	if err != nil {
		t.Fatal(err)
	}
	return eventstore.RecordedEvent{ID: uuid.New(), Stream: stream, Position: pos, Type: domain.TaskCanceled, Data: data, Metadata: md}
}

func TestMessage(t *testing.T) {
	from, to := t0, t0.Add(time.Hour)
	cases := []struct {
		name   string
		ev     eventstore.RecordedEvent
		ok     bool
		errIs  error
		anyErr bool
	}{
		{"conversation event in the period", stored(t, "conversation-CH1", 1, t0.Add(time.Minute), false), true, nil, false},
		{"at the start: included", stored(t, "task-WT1", 2, from, false), true, nil, false},
		{"at the end: excluded", stored(t, "conversation-CH1", 3, to, false), false, nil, false},
		{"before", stored(t, "conversation-CH1", 4, from.Add(-time.Nanosecond), false), false, nil, false},
		{"worker event", stored(t, "twilio-WK1", 5, t0, false), true, nil, false},
		{"reaction: not Twilio's", stored(t, "reaction-WT1", 6, t0, false), false, nil, false},
		{"checkpoint stream", stored(t, "reactors-checkpoint-a", 7, t0, false), false, nil, false},
		{"system stream", stored(t, "$$conversation-CH1", 8, t0, false), false, nil, false},
		{"stored before records were kept", stored(t, "conversation-CH1", 9, t0, true), false, ErrNoRecord, true},
		{"outside the period and unkept: not counted", stored(t, "conversation-CH1", 10, to.Add(time.Hour), true), false, nil, false},
		{"undecodable data", eventstore.RecordedEvent{Stream: "conversation-CH1", Data: []byte("{"), Metadata: []byte("{}")}, false, nil, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m, ok, err := Message(c.ev, "out", from, to)
			if (err != nil) != c.anyErr || (c.errIs != nil && !errors.Is(err, c.errIs)) {
				t.Fatalf("err %v", err)
			}
			if ok != c.ok {
				t.Fatalf("ok %v, want %v", ok, c.ok)
			}
			if !ok {
				return
			}
			var meta domain.Metadata
			_ = json.Unmarshal(c.ev.Metadata, &meta)
			if m.Topic != "out" || string(m.Key) != meta.Raw.Key || string(m.Value) != meta.Raw.Value {
				t.Errorf("message %+v", m)
			}
			var keys []string
			for _, h := range m.Headers {
				keys = append(keys, h.Key)
				if v, ok := meta.Raw.Headers[h.Key]; ok && string(h.Value) != v {
					t.Errorf("header %s = %q, want %q", h.Key, h.Value, v)
				}
			}
			// The contract's order, then where the original was.
			want := []string{schemas.HeaderSpecVersion, schemas.HeaderID, schemas.HeaderType, schemas.HeaderFamily, HeaderRedrivenFrom}
			if fmt.Sprint(keys) != fmt.Sprint(want) {
				t.Errorf("headers %v, want %v", keys, want)
			}
			if got := string(m.Headers[len(m.Headers)-1].Value); got != fmt.Sprintf("twilio.events.v1/2@%d", c.ev.Position*10) {
				t.Errorf("redriven from %q", got)
			}
		})
	}
}

// log is $all in memory: ReadAll is inclusive of from, like the store's.
type log []eventstore.RecordedEvent

func (l log) HeadPosition(context.Context) (uint64, error) {
	if len(l) == 0 {
		return 0, nil
	}
	return l[len(l)-1].Position, nil
}

func (l log) ReadAll(_ context.Context, from, max uint64, fn func(eventstore.RecordedEvent) error) error {
	n := uint64(0)
	for _, ev := range l {
		if ev.Position < from || n == max {
			continue
		}
		n++
		if err := fn(ev); err != nil {
			return err
		}
	}
	return nil
}

type publisher struct {
	batches [][]kafka.Message
	failAt  int // publish number that fails (1-based); 0 never
}

func (p *publisher) Publish(_ context.Context, msgs ...kafka.Message) error {
	if len(p.batches)+1 == p.failAt {
		return errors.New("broker down")
	}
	p.batches = append(p.batches, append([]kafka.Message(nil), msgs...))
	return nil
}

func (p *publisher) values() []string {
	var out []string
	for _, b := range p.batches {
		for _, m := range b {
			out = append(out, string(m.Value))
		}
	}
	return out
}

func TestRunPublishesThePeriodInOrder(t *testing.T) {
	var l log
	var want []string
	for i := 1; i <= 57; i++ {
		at := t0.Add(time.Duration(i) * time.Minute)
		stream := fmt.Sprintf("conversation-CH%d", i%4)
		if i%10 == 0 {
			stream = "reaction-WT1"
		}
		l = append(l, stored(t, stream, uint64(i*3), at, false))
		if i%10 != 0 && i >= 5 && i < 50 {
			want = append(want, fmt.Sprintf("EventType=task.canceled&N=%d", i*3))
		}
	}
	for _, readBatch := range []uint64{1, 2, 7, 100} {
		t.Run(fmt.Sprint("read batch ", readBatch), func(t *testing.T) {
			p := &publisher{}
			var progress []int
			res, err := Run(context.Background(), Config{
				Events: l, Publisher: p, Topic: "out", From: t0.Add(5 * time.Minute), To: t0.Add(50 * time.Minute),
				ReadBatch: readBatch, PublishBatch: 8, Progress: func(r Result) { progress = append(progress, r.Published) },
			})
			if err != nil {
				t.Fatal(err)
			}
			if got := p.values(); fmt.Sprint(got) != fmt.Sprint(want) {
				t.Fatalf("published\n%v\nwant\n%v", got, want)
			}
			if res.Read != uint64(len(l)) || res.Published != len(want) || res.Head != l[len(l)-1].Position || res.Unkept != 0 {
				t.Errorf("result %+v", res)
			}
			for _, b := range p.batches[:len(p.batches)-1] {
				if len(b) != 8 {
					t.Errorf("a batch of %d", len(b))
				}
			}
			if len(progress) != len(p.batches) || progress[len(progress)-1] != len(want) {
				t.Errorf("progress %v", progress)
			}
		})
	}
}

func TestRunStopsAtTheHeadItStartedWith(t *testing.T) {
	l := log{stored(t, "conversation-CH1", 1, t0, false), stored(t, "conversation-CH1", 2, t0, false)}
	grown := &growing{log: l}
	p := &publisher{}
	res, err := Run(context.Background(), Config{Events: grown, Publisher: p, Topic: "out", From: t0, To: t0.Add(time.Hour), ReadBatch: 1})
	if err != nil {
		t.Fatal(err)
	}
	if res.Published != 2 || res.Head != 2 {
		t.Fatalf("%+v", res)
	}
}

// growing gains an event after its head was read.
type growing struct{ log }

func (g *growing) HeadPosition(ctx context.Context) (uint64, error) {
	h, err := g.log.HeadPosition(ctx)
	g.log = append(g.log, eventstore.RecordedEvent{Stream: "conversation-CH1", Position: h + 1, Data: []byte(`{"at":"2026-11-25T09:00:00Z"}`), Metadata: []byte(`{"raw":{"value":"late","headers":{}}}`)})
	return h, err
}

func TestRunReportsUnkeptEventsAfterPublishingTheRest(t *testing.T) {
	l := log{stored(t, "conversation-CH1", 1, t0, false), stored(t, "conversation-CH1", 2, t0, true), stored(t, "conversation-CH1", 3, t0, false)}
	p := &publisher{}
	res, err := Run(context.Background(), Config{Events: l, Publisher: p, Topic: "out", From: t0, To: t0.Add(time.Hour)})
	if !errors.Is(err, ErrUnkept) {
		t.Fatalf("err %v", err)
	}
	if res.Published != 2 || res.Unkept != 1 {
		t.Fatalf("%+v", res)
	}
}

func TestRunStopsAtAFailedPublish(t *testing.T) {
	var l log
	for i := 1; i <= 20; i++ {
		l = append(l, stored(t, "conversation-CH1", uint64(i), t0, false))
	}
	p := &publisher{failAt: 2}
	res, err := Run(context.Background(), Config{Events: l, Publisher: p, Topic: "out", From: t0, To: t0.Add(time.Hour), PublishBatch: 5})
	if err == nil || res.Published != 5 {
		t.Fatalf("err %v, %+v", err, res)
	}
}

func TestConfigErrors(t *testing.T) {
	ok := Config{Events: log{}, Publisher: &publisher{}, Topic: "out", From: t0, To: t0.Add(time.Hour)}
	for name, mutate := range map[string]func(*Config){
		"no topic":       func(c *Config) { c.Topic = "" },
		"no start":       func(c *Config) { c.From = time.Time{} },
		"backwards":      func(c *Config) { c.From, c.To = c.To, c.From },
		"empty period":   func(c *Config) { c.To = c.From },
		"no event store": func(c *Config) { c.Events = nil },
	} {
		c := ok
		mutate(&c)
		if _, err := Run(context.Background(), c); !errors.Is(err, ErrConfig) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := Run(context.Background(), ok); err != nil {
		t.Fatal(err)
	}
}
