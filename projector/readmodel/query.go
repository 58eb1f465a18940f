package readmodel

import (
	"encoding/binary"
	"encoding/json"
	"slices"
	"time"

	"github.com/flexstream/flexstream/projector/fold"
)

// Query selects conversations. Filters combine; the most selective index
// is walked and the rest checked on each view.
type Query struct {
	State    string // active, inactive, closed, unknown
	Orphaned *bool
	Flag     string
	After    string // cursor: the last SID of the previous page
	Limit    int
	Now      time.Time
	Grace    time.Duration
}

// Conversations returns a page of conversation views in SID order and the
// cursor of the next page ("" at the end).
func (s *Store) Conversations(q Query) ([]json.RawMessage, string, error) {
	if q.Limit <= 0 {
		q.Limit = 50
	}
	var prefix []byte
	orphanIndex := false
	switch {
	case q.Orphaned != nil && *q.Orphaned:
		prefix, orphanIndex = prefixOrphan, true
	case q.Flag != "":
		prefix = key(prefixFlag, q.Flag, "")
	case q.State != "":
		prefix = key(prefixState, q.State, "")
	default:
		prefix = prefixConversation
	}
	var items []json.RawMessage
	lastSID, next := "", ""
	cutoff := q.Now.Add(-q.Grace).UnixNano()
	err := s.scan(prefix, q.After, func(sid string, v []byte) (bool, error) {
		if orphanIndex && (len(v) != 8 || int64(binary.BigEndian.Uint64(v)) >= cutoff) {
			return true, nil
		}
		raw := json.RawMessage(v)
		if string(prefix) != string(prefixConversation) {
			var err error
			if raw, err = s.ConversationJSON(sid); err == ErrNotFound {
				return true, nil
			} else if err != nil {
				return false, err
			}
		} else {
			raw = slices.Clone(raw)
		}
		ok, err := matches(raw, q)
		if err != nil || !ok {
			return err == nil, err
		}
		if len(items) == q.Limit {
			next = lastSID // there is more
			return false, nil
		}
		items = append(items, raw)
		lastSID = sid
		return true, nil
	})
	return items, next, err
}

// matches checks the filters on a view.
func matches(raw json.RawMessage, q Query) (bool, error) {
	if q.State == "" && q.Flag == "" && q.Orphaned == nil {
		return true, nil
	}
	var v fold.ConversationView
	if err := json.Unmarshal(raw, &v); err != nil {
		return false, err
	}
	state := v.State
	if state == "" {
		state = "unknown"
	}
	if q.State != "" && state != q.State {
		return false, nil
	}
	if q.Flag != "" && !slices.Contains(v.Flags(), q.Flag) {
		return false, nil
	}
	if q.Orphaned != nil && v.Orphaned(q.Now, q.Grace) != *q.Orphaned {
		return false, nil
	}
	return true, nil
}
