// Package api serves the projector's query API over HTTP: conversation and
// task views, stats, a conversation's event timeline, live changes as
// Server-Sent Events, and the OpenAPI document that describes them
// (GET /openapi.json).
//
// The API knows views only as JSON: the read-model store hands it bytes, so
// it does not depend on the view types. The caller implements Store,
// Timeline and Feed.
package api

import (
	"context"
	"encoding/json"
	"errors"
	"time"
)

// ErrNotFound is what Store and Timeline return (possibly wrapped) for a
// view or stream that does not exist; the API answers 404.
var ErrNotFound = errors.New("not found")

// ConversationQuery selects a page of conversations. Empty filters select
// everything; filters combine.
type ConversationQuery struct {
	State    string // "", active, inactive or closed
	Orphaned *bool  // nil: either
	Flag     string // "", no-close-timer, pii-identity or agent-without-invite
	// Cursor is the NextCursor of the store's previous page, "" for the
	// first. The API wraps it before handing it to clients and unwraps
	// it again, so a store sees only its own cursors.
	Cursor string
	Limit  int // 1..MaxLimit
}

// ConversationPage is one page of conversation views.
type ConversationPage struct {
	Items []json.RawMessage
	// NextCursor continues after this page; "" when there is no more.
	NextCursor string
}

// Store reads views from the read-model store, as JSON.
type Store interface {
	// Conversation returns one conversation view, or ErrNotFound.
	Conversation(ctx context.Context, sid string) (json.RawMessage, error)
	// Conversations returns a page of conversation views.
	Conversations(ctx context.Context, q ConversationQuery) (ConversationPage, error)
	// Task returns one task view, or ErrNotFound.
	Task(ctx context.Context, sid string) (json.RawMessage, error)
	// Stats returns the stats view.
	Stats(ctx context.Context) (json.RawMessage, error)
}

// TimelineEvent is one event of a stream in the event store.
type TimelineEvent struct {
	ID       string
	Type     string
	Revision uint64 // in the stream
	Position uint64 // in $all (commit position)
	Created  time.Time
	Data     json.RawMessage // nil or empty: null
	Metadata json.RawMessage // nil or empty: null
}

// Timeline reads a stream's events from the event store.
type Timeline interface {
	// Events calls fn with the stream's events, oldest first, and stops
	// with fn's error if it returns one. It returns ErrNotFound for a
	// stream that does not exist (before calling fn).
	Events(ctx context.Context, stream string, fn func(TimelineEvent) error) error
}

// Change kinds.
const (
	KindConversation = "conversation"
	KindTask         = "task"
	KindStats        = "stats"
)

// Change is a view the projector has just committed.
type Change struct {
	Kind string // KindConversation, KindTask or KindStats
	SID  string // the conversation's or task's SID; "" for stats
	View json.RawMessage
}

// Feed hands out committed changes as they happen.
type Feed interface {
	// Subscribe returns a channel of changes, closed when ctx ends.
	Subscribe(ctx context.Context) (<-chan Change, error)
}

// TimelineStream is the event-store stream of a conversation's timeline.
func TimelineStream(conversationSID string) string { return "conversation-" + conversationSID }
