package fold

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"
)

// AppendJSON appends v as encoding/json marshals it, byte for byte (the
// views' bytes are stored and compared, and the API serves them). A
// rebuild marshals every view it commits: reflection made that a tenth of
// a replay's CPU. TestAppendJSONIsEncodingJSON and FuzzAppendJSON hold
// the two encodings equal; a field added to a view must be added here.
func (v *ConversationView) AppendJSON(b []byte) ([]byte, error) {
	var w jsonWriter
	w.b = append(b, '{')
	w.str("sid", v.Sid)
	w.str("state", v.State)
	w.strOmit("stateReason", v.StateReason)
	w.timeOmit("stateAt", v.StateAt)
	w.timeOmit("removedAt", v.RemovedAt)
	w.key("timers")
	w.b = append(w.b, '{')
	w.strOmit("inactive", v.Timers.Inactive)
	w.strOmit("closed", v.Timers.Closed)
	w.bool("seen", v.Timers.Seen)
	w.timeOmit("at", v.Timers.At)
	w.b = append(w.b, '}')
	objects(&w, "participants", v.Participants, func(p Participant) {
		w.strOmit("role", p.Role)
		w.strOmit("identity", p.Identity)
		if p.IdentityPII {
			w.bool("identityPII", true)
		}
		w.strOmit("address", p.Address)
		w.strOmit("channelType", p.ChannelType)
		w.timeOmit("addedAt", p.AddedAt)
		w.timeOmit("removedAt", p.RemovedAt)
		w.timeOmit("roleAt", p.RoleAt)
	})
	w.bool("agentPresent", v.AgentPresent)
	w.strOmit("interactionSid", v.InteractionSid)
	w.strOmit("channelSid", v.ChannelSid)
	w.strOmit("channelType", v.ChannelType)
	objects(&w, "tasks", v.Tasks, func(t TaskLink) {
		w.strOmit("status", t.Status)
		w.strOmit("canceledReason", t.CanceledReason)
		w.timeOmit("at", t.At)
		if t.Accepted {
			w.bool("accepted", true)
		}
	})
	w.int("messageCount", int64(v.MessageCount))
	if len(v.MessageIndexes) > 0 {
		w.key("messageIndexes")
		w.b = append(w.b, '[')
		for i, r := range v.MessageIndexes {
			if i > 0 {
				w.b = append(w.b, ',')
			}
			w.b = append(w.b, '[')
			w.b = strconv.AppendInt(w.b, int64(r[0]), 10)
			w.b = append(w.b, ',')
			w.b = strconv.AppendInt(w.b, int64(r[1]), 10)
			w.b = append(w.b, ']')
		}
		w.b = append(w.b, ']')
	}
	if len(v.MessageKeys) > 0 {
		w.key("messageKeys")
		w.b = append(w.b, '[')
		for i, k := range v.MessageKeys {
			if i > 0 {
				w.b = append(w.b, ',')
			}
			w.b = appendString(w.b, k)
		}
		w.b = append(w.b, ']')
	}
	w.timeOmit("lastActivity", v.LastActivity)
	w.timeOmit("firstSeen", v.FirstSeen)
	w.bool("noCloseTimer", v.NoCloseTimer)
	w.bool("piiIdentity", v.PIIIdentity)
	w.bool("agentWithoutInvite", v.AgentWithoutInvite)
	w.b = append(w.b, '}')
	return w.b, w.err
}

// AppendJSON appends v as encoding/json marshals it; see the
// ConversationView's.
func (v *TaskView) AppendJSON(b []byte) ([]byte, error) {
	var w jsonWriter
	w.b = append(b, '{')
	w.str("sid", v.Sid)
	w.strOmit("conversationSid", v.ConversationSid)
	w.strOmit("interactionSid", v.InteractionSid)
	w.strOmit("channelSid", v.ChannelSid)
	w.ref("queue", v.Queue)
	w.ref("workflow", v.Workflow)
	w.strOmit("taskChannel", v.TaskChannel)
	w.strOmit("status", v.Status)
	w.timeOmit("statusAt", v.StatusAt)
	if len(v.Transitions) > 0 {
		w.key("transitions")
		w.b = append(w.b, '[')
		for i, t := range v.Transitions {
			if i > 0 {
				w.b = append(w.b, ',')
			}
			w.b = append(w.b, '{')
			w.str("status", t.Status)
			w.time("at", t.At)
			w.str("eventType", t.EventType)
			w.b = append(w.b, '}')
		}
		w.b = append(w.b, ']')
	}
	objects(&w, "reservations", v.Reservations, func(r Reservation) {
		w.strOmit("workerSid", r.WorkerSid)
		w.str("outcome", r.Outcome)
		w.timeOmit("createdAt", r.CreatedAt)
		w.timeOmit("decidedAt", r.DecidedAt)
	})
	w.strOmit("canceledReason", v.CanceledReason)
	if v.WorkflowTimedOut {
		w.bool("workflowTimedOut", true)
	}
	w.timeOmit("createdAt", v.CreatedAt)
	w.timeOmit("acceptedAt", v.AcceptedAt)
	w.timeOmit("wrapupAt", v.WrapupAt)
	w.timeOmit("completedAt", v.CompletedAt)
	w.timeOmit("endedAt", v.EndedAt)
	w.int("waitTimeMs", v.WaitTime)
	w.int("handleTimeMs", v.HandleTime)
	w.b = append(w.b, '}')
	return w.b, w.err
}

// jsonWriter appends members to b; a comma goes before each but the
// first of its object.
type jsonWriter struct {
	b   []byte
	err error
}

func (w *jsonWriter) key(k string) {
	if w.b[len(w.b)-1] != '{' {
		w.b = append(w.b, ',')
	}
	// Keys are the views' own constants: plain ASCII, nothing to escape.
	w.b = append(w.b, '"')
	w.b = append(w.b, k...)
	w.b = append(w.b, '"', ':')
}

func (w *jsonWriter) str(k, v string) {
	w.key(k)
	w.b = appendString(w.b, v)
}

func (w *jsonWriter) strOmit(k, v string) {
	if v != "" {
		w.str(k, v)
	}
}

func (w *jsonWriter) bool(k string, v bool) {
	w.key(k)
	w.b = strconv.AppendBool(w.b, v)
}

func (w *jsonWriter) int(k string, v int64) {
	w.key(k)
	w.b = strconv.AppendInt(w.b, v, 10)
}

func (w *jsonWriter) time(k string, t time.Time) {
	w.key(k)
	// time.Time's MarshalJSON is AppendText quoted: RFC 3339 with
	// nanoseconds, and the same errors (a year past four digits, a zone
	// offset of a day or more).
	w.b = append(w.b, '"')
	b, err := t.AppendText(w.b)
	if err != nil {
		if w.err == nil {
			w.err = fmt.Errorf("json: error calling MarshalJSON for type time.Time: %w", err)
		}
		b = t.AppendFormat(w.b, time.RFC3339Nano)
	}
	w.b = append(b, '"')
}

// timeOmit is a time.Time tagged omitzero: omitted when IsZero says so.
func (w *jsonWriter) timeOmit(k string, t time.Time) {
	if !t.IsZero() {
		w.time(k, t)
	}
}

// ref is a Ref tagged omitzero: Ref has no IsZero, so it is omitted only
// when every field is its zero value (the time's location included).
func (w *jsonWriter) ref(k string, r Ref) {
	if r == (Ref{}) {
		return
	}
	w.key(k)
	w.b = append(w.b, '{')
	w.strOmit("sid", r.Sid)
	w.strOmit("name", r.Name)
	w.timeOmit("at", r.At)
	w.b = append(w.b, '}')
}

// objects writes a map tagged omitempty whose values are objects: members
// in key order, as encoding/json sorts them, each value's members by
// members.
func objects[V any](w *jsonWriter, k string, m map[string]V, members func(V)) {
	if len(m) == 0 {
		return
	}
	w.key(k)
	w.b = append(w.b, '{')
	for i, sid := range slices.Sorted(maps.Keys(m)) {
		if i > 0 {
			w.b = append(w.b, ',')
		}
		w.b = appendString(w.b, sid)
		w.b = append(w.b, ':', '{')
		members(m[sid])
		w.b = append(w.b, '}')
	}
	w.b = append(w.b, '}')
}

const hexDigits = "0123456789abcdef"

// appendString appends s quoted as encoding/json does by default: HTML's
// <, > and & escaped, control characters as \n, \r, \t, \b, \f or \u00XX,
// invalid UTF-8 as U+FFFD, and U+2028 and U+2029 escaped for JavaScript.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
