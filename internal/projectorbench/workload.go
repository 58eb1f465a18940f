package projectorbench

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"strconv"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/flexstream/flexstream/ingest"
	"github.com/flexstream/flexstream/internal/eventstore"
	"github.com/flexstream/flexstream/internal/pii"
	"github.com/flexstream/flexstream/internal/twiliotest"
	"github.com/flexstream/flexstream/projector/decode"
	"github.com/flexstream/flexstream/projector/domain"
	"github.com/flexstream/flexstream/schemas"
)

// pseudonymKey is the bench's pseudonym key (any 32 bytes will do).
var pseudonymKey = []byte("flexstream-projector-bench-key-0123456789")

func newDecoder() (*decode.Decoder, error) {
	pz, err := pii.New(pseudonymKey)
	if err != nil {
		return nil, err
	}
	v, err := schemas.DefaultValidator()
	if err != nil {
		return nil, err
	}
	return decode.New(pz, v), nil
}

// webhook is one Twilio delivery, before signing.
type webhook struct {
	route ingest.Route
	form  url.Values
	idem  string // I-Twilio-Idempotency-Token (Conversations)
}

func trHook(ids twiliotest.IDs, typ string, opts ...twiliotest.TaskRouterOpt) webhook {
	opts = append([]twiliotest.TaskRouterOpt{twiliotest.WithEventSid(ids.SID(twiliotest.PrefixEvent, typ))}, opts...)
	return webhook{route: ingest.RouteTaskRouter, form: twiliotest.TaskRouterEvent(ids, typ, opts...)}
}

func convHook(ids twiliotest.IDs, typ string, opts ...twiliotest.ConversationsOpt) webhook {
	f := twiliotest.ConversationsEvent(ids, typ, opts...)
	// Twilio repeats the idempotency token on retries only: distinct per
	// delivery.
	return webhook{route: ingest.RouteConversations, form: f, idem: fmt.Sprintf("%s-%s-%s-%s", ids.Conversation, typ, f.Get("MessageSid"), f.Get("ParticipantSid"))}
}

func message(ids twiliotest.IDs, index int, opts ...twiliotest.ConversationsOpt) webhook {
	opts = append([]twiliotest.ConversationsOpt{twiliotest.WithIndex(index), twiliotest.WithMessageSid(ids.SID(twiliotest.PrefixMessage, strconv.Itoa(index)))}, opts...)
	return convHook(ids, "onMessageAdded", opts...)
}

// lifecycle is one conversation's webhooks, in order, of one of three
// kinds (as in fold's benchmark): handled and closed (12 webhooks), task
// timed out of its workflow (6) and known-agent invite declined (7).
func lifecycle(ids twiliotest.IDs, kind int) []webhook {
	start := []webhook{convHook(ids, "onConversationAdded"), convHook(ids, "onParticipantAdded"), message(ids, 0)}
	switch kind % 10 {
	case 0, 1: // workflow timeout
		return append(start,
			trHook(ids, "task.created"), trHook(ids, "workflow.timeout"),
			trHook(ids, "task.canceled", twiliotest.WithCanceledReason("Workflow Timeout")))
	case 2, 3: // declined
		return append(start,
			trHook(ids, "task.created"), trHook(ids, "reservation.created"), trHook(ids, "reservation.rejected"),
			trHook(ids, "task.canceled", twiliotest.WithCanceledReason("Worker rejected the known-agent invite")))
	default: // handled
		agent := ids.WorkerName
		return append(start,
			message(ids, 1),
			trHook(ids, "task.created"), trHook(ids, "reservation.created"), trHook(ids, "reservation.accepted"),
			convHook(ids, "onParticipantAdded", twiliotest.WithChatParticipant(ids, agent)),
			message(ids, 2, twiliotest.WithAuthor(ids, agent)),
			trHook(ids, "task.wrapup"), trHook(ids, "task.completed"),
			convHook(ids, "onConversationStateUpdated", twiliotest.WithStateTo("closed")))
	}
}

// concurrentConversations is how many conversations' lifecycles are
// interleaved in the topic at a time.
const concurrentConversations = 64

// webhooks are n webhooks of full lifecycles of conversations seeded from
// seed on: blocks of concurrentConversations conversations, their
// lifecycles interleaved step by step, as Twilio would send them.
func webhooks(seed int64, n int) []webhook {
	out := make([]webhook, 0, n)
	for c := 0; len(out) < n; c += concurrentConversations {
		block := make([][]webhook, concurrentConversations)
		for j := range block {
			block[j] = lifecycle(twiliotest.NewIDs(seed+int64(c+j)), c+j)
		}
		for step := 0; len(out) < n; step++ {
			more := false
			for _, l := range block {
				if step < len(l) && len(out) < n {
					out = append(out, l[step])
					more = true
				}
			}
			if !more {
				break
			}
		}
	}
	return out
}

// records are what ingest makes of the webhooks: the topic's records.
func records(hooks []webhook, now time.Time) ([]kafka.Message, error) {
	out := make([]kafka.Message, len(hooks))
	for i, h := range hooks {
		n, err := ingest.Normalise(ingest.Delivery{Route: h.route, Body: []byte(h.form.Encode()), IdempotencyToken: h.idem, Traceparent: traceparent(), ReceivedAt: now})
		if err != nil {
			return nil, fmt.Errorf("webhook %d (%s): %w", i, h.form.Get("EventType"), err)
		}
		if len(n.Records) != 1 {
			return nil, fmt.Errorf("webhook %d: %d records, want 1", i, len(n.Records))
		}
		out[i] = n.Records[0]
	}
	return out, nil
}

// decodeAll decodes records as the pipeline does (offsets as if from
// partition 0 of topic).
func decodeAll(d *decode.Decoder, topic string, recs []kafka.Message) ([]decode.Decoded, error) {
	out := make([]decode.Decoded, len(recs))
	for i, m := range recs {
		r := decode.Record{Topic: topic, Offset: int64(i), Key: m.Key, Value: m.Value, Headers: make(map[string]string, len(m.Headers))}
		for _, h := range m.Headers {
			r.Headers[h.Key] = string(h.Value)
		}
		dec, err := d.Decode(r)
		if err != nil {
			return nil, fmt.Errorf("record %d: %w", i, err)
		}
		out[i] = dec
	}
	return out, nil
}

// StoreEvent is a decoded event as the pipeline appends it.
func StoreEvent(d decode.Decoded) (eventstore.Event, error) {
	data, meta, err := domain.Encode(d.Event, d.Meta)
	if err != nil {
		return eventstore.Event{}, err
	}
	return eventstore.Event{ID: d.ID, Type: d.Event.Type, Data: data, Metadata: meta}, nil
}

// projected reports whether the read models fold an event of this stream
// (their subscription's filter).
func projected(stream string) bool {
	c := domain.Category(stream)
	return c == domain.CategoryConversation || c == domain.CategoryTask
}

// traceparent is a fresh W3C trace context, as ingest makes for a request
// without one.
func traceparent() string {
	var b [24]byte
	_, _ = rand.Read(b[:])
	return "00-" + hex.EncodeToString(b[:16]) + "-" + hex.EncodeToString(b[16:]) + "-01"
}

// Workload is conversations conversations' lifecycles (of the three kinds
// above), numbered from first, as the projector decodes them: the domain
// events in order, for loading an event store (the replay benchmark).
func Workload(first int64, conversations int) ([]decode.Decoded, error) {
	dec, err := newDecoder()
	if err != nil {
		return nil, err
	}
	var hooks []webhook
	for c := range conversations {
		hooks = append(hooks, lifecycle(twiliotest.NewIDs(first+int64(c)), c)...)
	}
	recs, err := records(hooks, time.Now())
	if err != nil {
		return nil, err
	}
	return decodeAll(dec, schemas.DefaultTopic, recs)
}
