package engine

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/flexstream/flexstream/reactors/act"
	"github.com/flexstream/flexstream/reactors/decide"
)

// The events of a reaction stream, "reaction-<task SID>". The stream is
// the reaction's whole record and its lock: every append names the
// revision it expects, so of two writers (two instances, or one and its
// own restarted self) exactly one moves each step forward.
const (
	EvPlanned   = "ReactionPlanned"   // revision 0, expected revision "no stream"
	EvStarted   = "ActionStarted"     // about to call Twilio (attempt n)
	EvSucceeded = "ActionSucceeded"   // Twilio did it (or an earlier attempt had: Reconciled)
	EvFailed    = "ActionFailed"      // the attempt failed; another may follow
	EvSkipped   = "ActionSkipped"     // Twilio's live state made the action pointless
	EvCompleted = "ReactionCompleted" // every action done or skipped (final)
	EvAbandoned = "ReactionAbandoned" // gave up: deadline, attempts, or a refused call (final)
)

// StreamPrefix names reaction streams. One task's end arrives as up to
// three events (reservation.rejected, workflow.timeout, task.canceled),
// and it must be answered once, so the trigger's id is the task's SID.
const StreamPrefix = "reaction-"

// TriggerInfo is the trigger as recorded in the plan.
type TriggerInfo struct {
	EventID   string    `json:"eventId"`
	EventType string    `json:"eventType"`
	Stream    string    `json:"stream"`
	Position  uint64    `json:"position"`
	TaskSid   string    `json:"taskSid"`
	At        time.Time `json:"at"`
}

// Planned is a ReactionPlanned event.
type Planned struct {
	Trigger TriggerInfo `json:"trigger"`
	Plan    decide.Plan `json:"plan"`
	Owner   string      `json:"owner"`
	DryRun  bool        `json:"dryRun,omitempty"`
	At      time.Time   `json:"at"`
}

// Step is every other event of a reaction stream; each type fills the
// fields that concern it.
type Step struct {
	Action     int           `json:"action"`
	Attempt    int           `json:"attempt,omitempty"`
	Owner      string        `json:"owner"`
	At         time.Time     `json:"at"`
	Result     *act.Result   `json:"result,omitempty"`
	Reconciled bool          `json:"reconciled,omitempty"` // found done by its mark, not by the call's answer
	Status     int           `json:"status,omitempty"`     // HTTP status of a failed call (0: none arrived)
	RetryAfter time.Duration `json:"retryAfterNs,omitempty"`
	Error      string        `json:"error,omitempty"`
	Reason     string        `json:"reason,omitempty"`
	DryRun     bool          `json:"dryRun,omitempty"`
}

// reaction is a reaction stream folded.
type reaction struct {
	exists    bool
	planned   *Planned
	lastRev   uint64
	lastOwner string
	lastAt    time.Time
	final     string // EvCompleted or EvAbandoned once finished
	actions   []actionState
}

type actionState struct {
	attempts int  // ActionStarted events
	open     bool // started and no outcome recorded since
	done     bool // succeeded or skipped
	failures int
}

// next is the first action not done, or -1.
func (r *reaction) next() int {
	for i, a := range r.actions {
		if !a.done {
			return i
		}
	}
	return -1
}

// apply folds one event of the stream, in order.
func (r *reaction) apply(rev uint64, typ string, data []byte) error {
	r.exists, r.lastRev = true, rev
	if typ == EvPlanned {
		var p Planned
		if err := json.Unmarshal(data, &p); err != nil {
			return fmt.Errorf("decode %s: %w", typ, err)
		}
		r.planned = &p
		r.actions = make([]actionState, len(p.Plan.Actions))
		r.lastOwner, r.lastAt = p.Owner, p.At
		return nil
	}
	var s Step
	if err := json.Unmarshal(data, &s); err != nil {
		return fmt.Errorf("decode %s: %w", typ, err)
	}
	r.lastOwner, r.lastAt = s.Owner, s.At
	switch typ {
	case EvCompleted, EvAbandoned:
		r.final = typ
		return nil
	}
	if s.Action < 0 || s.Action >= len(r.actions) {
		return fmt.Errorf("%s names action %d of %d", typ, s.Action, len(r.actions))
	}
	a := &r.actions[s.Action]
	switch typ {
	case EvStarted:
		a.attempts++
		a.open = true
	case EvSucceeded, EvSkipped:
		a.done, a.open = true, false
	case EvFailed:
		a.failures++
		a.open = false
	}
	return nil
}
