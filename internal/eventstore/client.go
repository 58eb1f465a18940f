// Package eventstore is every role's one way to the event store: a thin
// wrapper over EventStore-Client-Go/v4 that adds what the client lacks —
// connecting with retry, typed errors, and subscriptions that resume from a
// checkpoint and resubscribe when they drop. It works the same against the
// embedded server and a KurrentDB cluster.
package eventstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/google/uuid"
	"go.uber.org/zap"

	"github.com/flexstream/flexstream/internal/config"
)

// Typed errors; every error this package returns wraps one of them when it
// applies, so callers use errors.Is.
var (
	ErrWrongExpectedVersion = errors.New("wrong expected version")
	ErrStreamNotFound       = errors.New("stream not found")
	ErrStreamDeleted        = errors.New("stream deleted")
	ErrUnavailable          = errors.New("event store unavailable")
)

// Config says how to reach the store.
type Config struct {
	// ConnString is a KurrentDB connection string:
	// esdb://127.0.0.1:2113?tls=false, esdb+discover://… for a cluster.
	ConnString string
	// ConnectTimeout bounds Connect's retries.
	ConnectTimeout time.Duration
	Logger         *zap.Logger
}

// Validate names the bad field.
func (c *Config) Validate() error {
	if c.ConnectTimeout == 0 {
		c.ConnectTimeout = 30 * time.Second
	}
	if c.Logger == nil {
		c.Logger = zap.NewNop()
	}
	if c.ConnString == "" {
		return config.Errorf("store", "a KurrentDB connection string is required, e.g. esdb://127.0.0.1:2113?tls=false")
	}
	if _, err := esdb.ParseConnectionString(c.ConnString); err != nil {
		return config.Errorf("store", "%v", err)
	}
	return nil
}

// Client is a connected event-store client.
type Client struct {
	c   *esdb.Client
	log *zap.Logger
}

// Connect builds a client and waits, retrying with backoff, until the
// store answers a read or cfg.ConnectTimeout passes.
func Connect(ctx context.Context, cfg Config) (*Client, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	settings, _ := esdb.ParseConnectionString(cfg.ConnString)
	settings.Logger = ZapLogging(cfg.Logger.Named("esdb"))
	c, err := esdb.NewClient(settings)
	if err != nil {
		return nil, fmt.Errorf("event store client: %w", err)
	}
	cl := &Client{c: c, log: cfg.Logger.Named("eventstore.client")}
	ctx, cancel := context.WithTimeout(ctx, cfg.ConnectTimeout)
	defer cancel()
	b := backoff{min: 100 * time.Millisecond, max: 2 * time.Second}
	for attempt := 1; ; attempt++ {
		err := cl.ping(ctx)
		if err == nil {
			return cl, nil
		}
		cl.log.Info("event store not answering yet", zap.Int("attempt", attempt), zap.Error(err))
		if !b.sleep(ctx) {
			c.Close()
			return nil, fmt.Errorf("%w: %s: %v", ErrUnavailable, cfg.ConnString, err)
		}
	}
}

func (c *Client) ping(ctx context.Context) error {
	d := 5 * time.Second
	rs, err := c.c.ReadAll(ctx, esdb.ReadAllOptions{Direction: esdb.Backwards, From: esdb.End{}, Deadline: &d}, 1)
	if err != nil {
		return wrap(err, "ping", "$all")
	}
	defer rs.Close()
	if _, err := rs.Recv(); err != nil && !errors.Is(err, io.EOF) {
		return wrap(err, "ping", "$all")
	}
	return nil
}

// ZapLogging routes the client's own logs (discovery, reconnects) to zap,
// one level down: the client calls routine discovery "info".
func ZapLogging(l *zap.Logger) esdb.LoggingFunc {
	s := l.Sugar()
	return func(level esdb.LogLevel, format string, args ...any) {
		switch level {
		case esdb.LogError:
			s.Warnf(format, args...)
		case esdb.LogWarn:
			s.Infof(format, args...)
		default:
			s.Debugf(format, args...)
		}
	}
}

// Close releases the connection.
func (c *Client) Close() error { return c.c.Close() }

// Raw is the underlying client, for what this package does not wrap
// (stream metadata, for example).
func (c *Client) Raw() *esdb.Client { return c.c }

// Event is an event to append.
type Event struct {
	ID       uuid.UUID // zero: a random id (no idempotency across retries)
	Type     string
	Data     []byte // JSON
	Metadata []byte // JSON
}

// Expected is what an append expects of the stream.
type Expected = esdb.ExpectedRevision

// Expectations, re-exported so callers need not import esdb.
var (
	Any          Expected = esdb.Any{}
	NoStream     Expected = esdb.NoStream{}
	StreamExists Expected = esdb.StreamExists{}
)

// Revision expects the stream's last event to be at revision r.
func Revision(r uint64) Expected { return esdb.Revision(r) }

// AppendResult is where the append landed.
type AppendResult struct {
	NextRevision uint64 // revision of the last event written
	Position     uint64 // its $all position
}

// Append writes events to stream atomically.
func (c *Client) Append(ctx context.Context, stream string, exp Expected, events ...Event) (AppendResult, error) {
	data := make([]esdb.EventData, len(events))
	for i, e := range events {
		data[i] = esdb.EventData{EventID: e.ID, EventType: e.Type, ContentType: esdb.ContentTypeJson, Data: e.Data, Metadata: e.Metadata}
	}
	res, err := c.c.AppendToStream(ctx, stream, esdb.AppendToStreamOptions{ExpectedRevision: exp}, data...)
	if err != nil {
		return AppendResult{}, wrap(err, "append", stream)
	}
	return AppendResult{NextRevision: res.NextExpectedVersion, Position: res.CommitPosition}, nil
}

// RecordedEvent is an event as read back.
type RecordedEvent struct {
	ID          uuid.UUID
	Stream      string
	Revision    uint64
	Position    uint64
	Type        string
	ContentType string
	Created     time.Time
	Data        []byte
	Metadata    []byte
}

func fromESDB(r *esdb.ResolvedEvent) RecordedEvent {
	e := r.OriginalEvent()
	return RecordedEvent{
		ID: e.EventID, Stream: e.StreamID, Revision: e.EventNumber, Position: e.Position.Commit,
		Type: e.EventType, ContentType: e.ContentType, Created: e.CreatedDate, Data: e.Data, Metadata: e.UserMetadata,
	}
}

// ReadStream calls fn for up to max events of stream from revision from
// (inclusive), forwards. A missing stream is ErrStreamNotFound.
func (c *Client) ReadStream(ctx context.Context, stream string, from uint64, max uint64, fn func(RecordedEvent) error) error {
	rs, err := c.c.ReadStream(ctx, stream, esdb.ReadStreamOptions{From: esdb.Revision(from)}, max)
	if err != nil {
		return wrap(err, "read", stream)
	}
	defer rs.Close()
	return drain(rs, stream, fn)
}

// ReadAll calls fn for up to max events of $all from position from
// (inclusive), forwards.
func (c *Client) ReadAll(ctx context.Context, from uint64, max uint64, fn func(RecordedEvent) error) error {
	rs, err := c.c.ReadAll(ctx, esdb.ReadAllOptions{From: esdb.Position{Commit: from, Prepare: from}}, max)
	if err != nil {
		return wrap(err, "read", "$all")
	}
	defer rs.Close()
	return drain(rs, "$all", fn)
}

// LastEvent returns stream's last event; ErrStreamNotFound when it has
// none.
func (c *Client) LastEvent(ctx context.Context, stream string) (RecordedEvent, error) {
	var last RecordedEvent
	err := c.LastEvents(ctx, stream, 1, func(r RecordedEvent) error {
		last = r
		return nil
	})
	return last, err
}

// LastEvents calls fn for up to n of stream's last events, the newest
// first; ErrStreamNotFound when it has none.
func (c *Client) LastEvents(ctx context.Context, stream string, n uint64, fn func(RecordedEvent) error) error {
	rs, err := c.c.ReadStream(ctx, stream, esdb.ReadStreamOptions{From: esdb.End{}, Direction: esdb.Backwards}, n)
	if err != nil {
		return wrap(err, "read", stream)
	}
	defer rs.Close()
	found := false
	err = drain(rs, stream, func(r RecordedEvent) error {
		found = true
		return fn(r)
	})
	if err != nil {
		return err
	}
	if !found {
		return &Error{Op: "read", Stream: stream, kind: ErrStreamNotFound, Err: ErrStreamNotFound}
	}
	return nil
}

func drain(rs *esdb.ReadStream, stream string, fn func(RecordedEvent) error) error {
	for {
		ev, err := rs.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return wrap(err, "read", stream)
		}
		if err := fn(fromESDB(ev)); err != nil {
			return err
		}
	}
}

// All is the max count meaning "everything".
const All = math.MaxUint64

// Error is what the wrapper returns for a failed call; it matches one of
// the package's sentinel errors with errors.Is and keeps the client's.
type Error struct {
	Op, Stream string
	kind       error
	Err        error
}

func (e *Error) Error() string {
	return fmt.Sprintf("event store %s %s: %v", e.Op, e.Stream, e.Err)
}

func (e *Error) Unwrap() []error {
	if e.kind != nil {
		return []error{e.kind, e.Err}
	}
	return []error{e.Err}
}

func wrap(err error, op, stream string) error {
	if err == nil {
		return nil
	}
	var ee *esdb.Error
	var kind error
	if errors.As(err, &ee) {
		switch ee.Code() {
		case esdb.ErrorCodeWrongExpectedVersion:
			kind = ErrWrongExpectedVersion
		case esdb.ErrorCodeResourceNotFound:
			kind = ErrStreamNotFound
		case esdb.ErrorCodeStreamDeleted:
			kind = ErrStreamDeleted
		case esdb.ErrorUnavailable, esdb.ErrorCodeConnectionClosed, esdb.ErrorCodeDeadlineExceeded, esdb.ErrorCodeNotLeader:
			kind = ErrUnavailable
		}
	}
	return &Error{Op: op, Stream: stream, kind: kind, Err: err}
}

// SetMaxCount keeps only the latest n events of stream readable (its
// $maxCount metadata): for streams where only the last event matters,
// such as checkpoints.
func (c *Client) SetMaxCount(ctx context.Context, stream string, n uint64) error {
	var m esdb.StreamMetadata
	m.SetMaxCount(n)
	_, err := c.c.SetStreamMetadata(ctx, stream, esdb.AppendToStreamOptions{ExpectedRevision: esdb.Any{}}, m)
	return wrap(err, "set metadata", stream)
}
