// Package esstore is the storage behind the embedded KurrentDB-protocol
// server: one global, append-only log of events ordered by position, with
// per-stream indexes. It knows streams, revisions, positions, event ids and
// tombstones; stream metadata ($$stream: $maxAge, $maxCount, $tb) is an
// ordinary stream here and is interpreted by the server on read.
package esstore

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// ID is an event id (a UUID, 16 bytes, as the client sends it).
type ID [16]byte

// EventData is an event to append.
type EventData struct {
	ID          ID
	Type        string
	ContentType string // "application/json" or "application/octet-stream"
	Metadata    []byte // the client's custom metadata, opaque
	Data        []byte
}

// RecordedEvent is a stored event.
type RecordedEvent struct {
	Stream      string
	Revision    uint64
	Position    uint64 // in $all; > 0, strictly increasing in append order
	ID          ID
	Type        string
	ContentType string
	Created     time.Time // set by the store when the append is committed
	Metadata    []byte
	Data        []byte
}

// ExpectedKind is how an append states what it expects of the stream.
type ExpectedKind uint8

// Expected-revision kinds, as in KurrentDB.
const (
	ExpectAny ExpectedKind = iota
	ExpectNoStream
	ExpectStreamExists
	ExpectRevision
)

// Expected is an append's or a tombstone's expectation.
type Expected struct {
	Kind     ExpectedKind
	Revision uint64 // for ExpectRevision
}

// Any, NoStream, StreamExists and Revision build Expected values.
func Any() Expected              { return Expected{Kind: ExpectAny} }
func NoStream() Expected         { return Expected{Kind: ExpectNoStream} }
func StreamExists() Expected     { return Expected{Kind: ExpectStreamExists} }
func Revision(r uint64) Expected { return Expected{Kind: ExpectRevision, Revision: r} }
func (e Expected) String() string {
	switch e.Kind {
	case ExpectNoStream:
		return "no_stream"
	case ExpectStreamExists:
		return "stream_exists"
	case ExpectRevision:
		return fmt.Sprintf("revision %d", e.Revision)
	}
	return "any"
}

// AppendResult describes a successful append.
type AppendResult struct {
	// Revision is the stream's revision after the append (of its last event).
	Revision uint64
	// Position is the $all position of the last event appended.
	Position uint64
	// Idempotent is true when every event was already there (same ids at
	// the same revisions) and nothing was written.
	Idempotent bool
}

// StreamState is what the store knows of a stream.
type StreamState struct {
	Exists     bool   // at least one event was ever appended
	Revision   uint64 // revision of the last event, when Exists
	Tombstoned bool   // hard-deleted: no append is ever accepted again
}

// Errors; test with errors.Is / errors.As.
var (
	// ErrStreamDeleted: the stream was tombstoned.
	ErrStreamDeleted = errors.New("stream is tombstoned")
	// ErrClosed: the store was closed.
	ErrClosed = errors.New("store closed")
	// ErrInvalid: a malformed request (empty stream name, no events, ...).
	ErrInvalid = errors.New("invalid request")
)

// WrongExpectedVersionError says the stream was not in the expected state.
type WrongExpectedVersionError struct {
	Stream   string
	Expected Expected
	Current  StreamState
}

func (e *WrongExpectedVersionError) Error() string {
	cur := "no stream"
	if e.Current.Exists {
		cur = fmt.Sprintf("revision %d", e.Current.Revision)
	}
	return fmt.Sprintf("wrong expected version on %q: expected %s, current %s", e.Stream, e.Expected, cur)
}

// Store is the storage port of the event-store server. Implementations are
// safe for concurrent use.
type Store interface {
	// Append writes events to stream atomically, after checking exp, and
	// returns only once the events are durable (fsynced, unless the store
	// was opened without sync). Idempotency, as in KurrentDB: when the
	// events' ids are already in the stream at the revisions this append
	// would give them (for ExpectRevision and ExpectNoStream), or anywhere
	// in the stream in the same order (for ExpectAny/ExpectStreamExists),
	// nothing is written and the original revision/position are returned
	// with Idempotent set. The on-disk store finds every event id of an
	// append of up to IndexEveryIDUpTo events exactly, however old it is;
	// of a larger append it finds the first id exactly and the others
	// while they are among the recent ones (Options.RecentIDs event ids),
	// as with KurrentDB's cache of recent events. So a retry of a whole
	// earlier append, of any part of a small one, or of any part of a
	// large one by ExpectRevision/ExpectNoStream, is always recognised;
	// an ExpectAny/ExpectStreamExists retry that starts in the middle of
	// an older large append is not: it is written again as new events, or
	// refused with *WrongExpectedVersionError if its first id matches
	// another append's id and the rest does not follow.
	// Errors: *WrongExpectedVersionError,
	// ErrStreamDeleted, ErrInvalid, ErrClosed.
	Append(ctx context.Context, stream string, exp Expected, events []EventData) (AppendResult, error)

	// Tombstone hard-deletes stream after checking exp: appends are
	// refused forever after and reads see the stream as deleted. It writes
	// a "$streamDeleted" event that $all readers see; its position is
	// returned.
	Tombstone(ctx context.Context, stream string, exp Expected) (position uint64, err error)

	// State returns what the store knows of stream (zero value if never written).
	State(ctx context.Context, stream string) (StreamState, error)

	// ReadStream calls fn for the events of stream starting at revision
	// from (inclusive), forwards or backwards, until fn returns false or
	// the stream ends. Events are streamed from disk: memory does not grow
	// with the stream's length.
	ReadStream(ctx context.Context, stream string, from uint64, forward bool, fn func(RecordedEvent) bool) error

	// ReadAll calls fn for the events of every stream in position order
	// starting at position from (inclusive; 0 = the beginning when
	// forwards; math.MaxUint64 = the end when backwards).
	ReadAll(ctx context.Context, from uint64, forward bool, fn func(RecordedEvent) bool) error

	// ReadAllBorrowed is ReadAll for a caller that is done with each event
	// when fn returns, as a server that encodes and sends it is: the
	// event's Metadata and Data may point into the store's buffers and are
	// valid only until fn returns. It spares a copy of every event.
	ReadAllBorrowed(ctx context.Context, from uint64, forward bool, fn func(RecordedEvent) bool) error

	// Head is the position of the last committed event (0 if none) and a
	// channel closed at the next commit, for live subscriptions: read up to
	// the head, then wait on the channel.
	Head() (position uint64, next <-chan struct{})

	// Close answers every queued append, waits for the reads in progress
	// (they end at their next event with ErrClosed, so a read callback must
	// not wait for something that waits for Close) and releases the store.
	// After it every call returns ErrClosed and Head's channel is closed.
	// Closing twice is harmless.
	Close() error
}
