// Package audit explains a conversation (or a task): every event the
// store holds about it — Twilio's, as the projector stored them, and the
// reactors' decisions and actions — as one timeline, in order, for a
// person (a table) or a program (JSON, CSV).
//
// The store holds pseudonyms only (internal/pii), and the audit prints
// nothing but what the store holds: never a phone number, an e-mail
// address or a message body. An operator holding the pseudonymisation key
// turns a customer's number into the pseudonyms to search for
// (Pseudonyms).
//
// Timeline and the renderers are pure; Collect reads the store through a
// Reader.
package audit

import (
	"bytes"
	"encoding/json"
	"sort"
	"strings"
	"time"

	"github.com/flexstream/flexstream/internal/eventstore"
	"github.com/flexstream/flexstream/projector/domain"
	"github.com/flexstream/flexstream/reactors/engine"
)

// Sources of a row.
const (
	SourceTwilio  = "twilio"  // a Twilio event, as the projector stored it
	SourceReactor = "reactor" // a reactor's decision, action or end
)

// Row is one stored event, explained.
type Row struct {
	// At is when it happened: Twilio's clock (ce_time) for a Twilio
	// event, the reactor's for its own.
	At       time.Time `json:"at"`
	Source   string    `json:"source"` // SourceTwilio or SourceReactor
	Stream   string    `json:"stream"`
	Revision uint64    `json:"revision"`
	Position uint64    `json:"position"` // in $all
	EventID  string    `json:"eventId"`
	Type     string    `json:"type"`                // the stored event type (domain or reaction)
	CEType   string    `json:"ceType,omitempty"`    // Twilio's event type, e.g. com.twilio.taskrouter.workflow.timeout
	Task     string    `json:"task,omitempty"`      // the task it concerns (a reaction: its trigger's task)
	NewTask  string    `json:"newTask,omitempty"`   // a re-invite that succeeded: the task it made
	Trigger  string    `json:"triggerOf,omitempty"` // the reaction stream this event triggered
	Marked   bool      `json:"marked,omitempty"`    // a row of the task audited
	Detail   string    `json:"detail"`              // one readable line
	Data     any       `json:"data,omitempty"`      // the stored data, as stored
	Metadata any       `json:"metadata,omitempty"`  // the stored metadata (Kafka topic/partition/offset, receivedAt, $causationId = Twilio's ce_id…)
	order    int       // position in Timeline's input, the last tie-break
}

// Timeline makes one row per stored event: the Twilio events of a
// conversation (its stream, and the task streams of its tasks whose
// conversation was not known when they arrived) and the reaction streams
// of its tasks, each stream in revision order. Rows are in time order;
// events of the same time keep the order of $all (for events of one
// stream, the stream's order).
func Timeline(conversation []eventstore.RecordedEvent, reactions [][]eventstore.RecordedEvent) []Row {
	var rows []Row
	triggers := map[string]triggered{} // event id → what it triggered
	add := func(r Row) {
		r.order = len(rows)
		rows = append(rows, r)
	}
	for _, stream := range reactions {
		var plan *engine.Planned
		for _, ev := range stream {
			r := reactionRow(ev, &plan)
			if ev.Type == engine.EvPlanned && plan != nil && plan.Trigger.EventID != "" {
				triggers[plan.Trigger.EventID] = triggered{stream: ev.Stream, kind: plan.Plan.Kind}
			}
			add(r)
		}
	}
	for _, ev := range conversation {
		add(twilioRow(ev))
	}
	for i := range rows {
		if t, ok := triggers[rows[i].EventID]; ok && rows[i].Source == SourceTwilio {
			rows[i].Trigger = t.stream
			rows[i].Detail += " ⇒ trigger of " + t.stream
			if t.kind != "" {
				rows[i].Detail += " (" + t.kind + ")"
			}
		}
	}
	sort.SliceStable(rows, func(i, j int) bool {
		a, b := rows[i], rows[j]
		if !a.At.Equal(b.At) {
			return a.At.Before(b.At)
		}
		if a.Position != b.Position && a.Position != 0 && b.Position != 0 {
			return a.Position < b.Position
		}
		return a.order < b.order
	})
	return rows
}

type triggered struct{ stream, kind string }

// Mark marks the rows of task: its own events, its reaction's, and the
// re-invite that made it.
func Mark(rows []Row, task string) {
	for i := range rows {
		if rows[i].Task == task || rows[i].NewTask == task {
			rows[i].Marked = true
		}
	}
}

// rawJSON decodes stored JSON for the JSON output, numbers kept exact;
// what does not parse is kept as a string.
func rawJSON(b []byte) any {
	if len(bytes.TrimSpace(b)) == 0 {
		return nil
	}
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		return string(b)
	}
	if m, ok := v.(map[string]any); ok && len(m) == 0 {
		return nil
	}
	return v
}

func base(ev eventstore.RecordedEvent, source string) Row {
	return Row{
		At: ev.Created.UTC(), Source: source, Stream: ev.Stream, Revision: ev.Revision, Position: ev.Position,
		EventID: ev.ID.String(), Type: ev.Type, Data: rawJSON(ev.Data), Metadata: rawJSON(ev.Metadata),
	}
}

// twilioRow explains a domain event.
func twilioRow(ev eventstore.RecordedEvent) Row {
	r := base(ev, SourceTwilio)
	e, err := domain.Decode(ev.Type, ev.Data)
	if err != nil {
		r.Detail = clean("undecodable " + ev.Type + ": " + err.Error())
		return r
	}
	var meta domain.Metadata
	_ = json.Unmarshal(ev.Metadata, &meta)
	switch {
	case !e.At.IsZero():
		r.At = e.At.UTC()
	case !meta.ReceivedAt.IsZero():
		r.At = meta.ReceivedAt.UTC()
	}
	r.CEType, r.Task = e.CEType, e.TaskSid
	if r.Task == "" && domain.Category(ev.Stream) == domain.CategoryTask {
		r.Task = strings.TrimPrefix(ev.Stream, domain.CategoryTask+"-")
	}
	r.Detail = clean(describeTwilio(e))
	return r
}

// reactionRow explains an event of a reaction stream; *plan is the
// stream's ReactionPlanned once read.
func reactionRow(ev eventstore.RecordedEvent, plan **engine.Planned) Row {
	r := base(ev, SourceReactor)
	r.Task = strings.TrimPrefix(ev.Stream, engine.StreamPrefix)
	if ev.Type == engine.EvPlanned {
		var p engine.Planned
		if err := json.Unmarshal(ev.Data, &p); err != nil {
			r.Detail = clean("undecodable " + ev.Type + ": " + err.Error())
			return r
		}
		*plan = &p
		if !p.At.IsZero() {
			r.At = p.At.UTC()
		}
		if p.Trigger.TaskSid != "" {
			r.Task = p.Trigger.TaskSid
		}
		r.Detail = clean(describePlanned(p))
		return r
	}
	var s engine.Step
	if err := json.Unmarshal(ev.Data, &s); err != nil {
		r.Detail = clean("undecodable " + ev.Type + ": " + err.Error())
		return r
	}
	if !s.At.IsZero() {
		r.At = s.At.UTC()
	}
	if s.Result != nil {
		r.NewTask = s.Result.TaskSid
	}
	r.Detail = clean(describeStep(ev.Type, s, *plan))
	return r
}

// clean makes a stored string safe for one line of a terminal: control
// characters (newlines, tabs, escape sequences) become spaces.
func clean(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			return ' '
		}
		return r
	}, s)
}
