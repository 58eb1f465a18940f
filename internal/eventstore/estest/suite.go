// Package estest is the conformance suite for the event store: the same cases
// run, through EventStore-Client-Go/v4 only, against every backend the
// product may meet — the embedded KurrentDB-protocol server, a real KurrentDB
// given by connection string, a KurrentDB container — so "works on the
// embedded default" and "works against KurrentDB" are one claim.
//
// The cases only assert what holds on a real KurrentDB (24.x and later):
// expected revisions, orders, relations between positions and error codes,
// never exact global positions. Every case writes to streams whose names carry
// a random suffix, so the suite can run again and again against one
// long-lived KurrentDB. Reads of $all and subscriptions to $all start from a
// marker event appended by the case itself, never from the start of the log.
package estest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/google/uuid"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Backend is one event store to run the suite against.
type Backend struct {
	Name string
	// ConnString is what esdb.ParseConnectionString is given, e.g.
	// "esdb://127.0.0.1:2113?tls=false".
	ConnString string
	// Restart stops the server and starts it again on the same address and
	// data. Nil skips the restart case, naming NoRestart as the reason.
	Restart   func(ctx context.Context) error
	NoRestart string
}

// Run runs every case against b, each as a subtest.
func Run(t *testing.T, b Backend) {
	s := &suite{b: b, run: "es" + randHex(4)}
	t.Logf("event store backend %s at %s (stream prefix %s)", b.Name, b.ConnString, s.run)

	// Wait until the backend takes writes (a container may still be electing
	// itself leader) and learn whether it sends CaughtUp (KurrentDB ≥ 23).
	c := s.readyClient(t, 90*time.Second)
	v, err := c.GetServerVersion()
	if err != nil {
		t.Fatalf("GetServerVersion: %v", err)
	}
	s.caughtUp = v.Major >= 23
	t.Logf("server version %d.%d.%d; CaughtUp expected: %v", v.Major, v.Minor, v.Patch, s.caughtUp)
	c.Close()

	t.Run("Append", func(t *testing.T) {
		t.Run("ExpectedRevision", s.appendExpectedRevision)
		t.Run("Idempotent", s.appendIdempotent)
		t.Run("EventFieldsRoundTrip", s.appendEventFields)
		t.Run("ConcurrentExactRevision", s.appendConcurrentExactRevision)
		t.Run("ConcurrentDuplicates", s.appendConcurrentDuplicates)
	})
	t.Run("ReadStream", func(t *testing.T) {
		t.Run("ForwardsBackwards", s.readStreamDirections)
		t.Run("Missing", s.readStreamMissing)
	})
	t.Run("ReadAll", func(t *testing.T) {
		t.Run("ForwardsBackwards", s.readAllDirections)
	})
	t.Run("Subscribe", func(t *testing.T) {
		t.Run("Stream", s.subscribeStream)
		t.Run("StreamMissingThenCreated", s.subscribeStreamMissing)
		t.Run("All", s.subscribeAll)
		t.Run("AllFiltered", s.subscribeAllFiltered)
		t.Run("AllExcludeSystemEvents", s.subscribeAllExcludeSystem)
		t.Run("CatchUpToLiveNoGapNoDuplicate", s.subscribeHandOver)
	})
	t.Run("Delete", func(t *testing.T) {
		t.Run("SoftDeleteThenUndelete", s.deleteSoft)
		t.Run("SoftDeleteMissingStream", s.deleteSoftMissing)
		t.Run("Tombstone", s.tombstone)
		t.Run("TombstoneMissingStream", s.tombstoneMissing)
		t.Run("TombstoneEventInAll", s.tombstoneInAll)
	})
	t.Run("Metadata", func(t *testing.T) {
		t.Run("RoundTrip", s.metadataRoundTrip)
		t.Run("MaxCount", s.metadataMaxCount)
		t.Run("MaxAge", s.metadataMaxAge)
		t.Run("TruncateBefore", s.metadataTruncateBefore)
	})
	t.Run("Restart", func(t *testing.T) {
		t.Run("SubscriptionsResumeNothingLost", s.restart)
	})
}

type suite struct {
	b        Backend
	run      string // prefix of every stream this run writes
	caughtUp bool   // the server sends CaughtUp (KurrentDB ≥ 23, our server)
}

const opTimeout = 30 * time.Second

func randHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b)
}

// stream is a stream name unique to this call: category s.run+tag.
func (s *suite) stream(tag string) string {
	return s.run + tag + "-" + randHex(4)
}

func ctxFor(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// newClient connects a client whose log goes to t (warnings and errors only)
// until t ends.
func (s *suite) newClient(t testing.TB) (*esdb.Client, error) {
	conf, err := esdb.ParseConnectionString(s.b.ConnString)
	if err != nil {
		return nil, fmt.Errorf("parse %q: %w", s.b.ConnString, err)
	}
	conf.Logger = testLogger(t)
	return esdb.NewClient(conf)
}

// client is a client closed when t ends.
func (s *suite) client(t testing.TB) *esdb.Client {
	t.Helper()
	c, err := s.newClient(t)
	if err != nil {
		t.Fatalf("esdb.NewClient: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// readyClient returns a client once the backend accepts an append, retrying
// with a fresh client each time: a client whose first discovery failed is
// dead for good, and one that saw Unavailable would, on its next call, open a
// second gRPC connection and never close the first (v4.2.0 reconnect path).
func (s *suite) readyClient(t testing.TB, within time.Duration) *esdb.Client {
	t.Helper()
	deadline := time.Now().Add(within)
	probe := s.stream("probe")
	var last error
	for attempt := 1; ; attempt++ {
		c, err := s.newClient(t)
		if err != nil {
			t.Fatalf("esdb.NewClient: %v", err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_, err = c.AppendToStream(ctx, probe, esdb.AppendToStreamOptions{}, jsonEvent("Probe", attempt))
		cancel()
		if err == nil {
			t.Cleanup(func() { c.Close() })
			return c
		}
		c.Close()
		last = err
		if time.Now().After(deadline) {
			t.Fatalf("backend %s at %s does not take an append within %v: %v", s.b.Name, s.b.ConnString, within, last)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// testLogger forwards the client's warnings and errors to t while t runs.
func testLogger(t testing.TB) esdb.LoggingFunc {
	var mu sync.Mutex
	done := false
	t.Cleanup(func() { mu.Lock(); done = true; mu.Unlock() })
	return func(level esdb.LogLevel, format string, args ...interface{}) {
		if level != esdb.LogWarn && level != esdb.LogError {
			return
		}
		mu.Lock()
		defer mu.Unlock()
		if !done {
			t.Logf("esdb client [%s] %s", level, fmt.Sprintf(format, args...))
		}
	}
}

// ---- events ---------------------------------------------------------------

type payload struct {
	Type string `json:"type"`
	N    int    `json:"n"`
}

func jsonEvent(typ string, n int) esdb.EventData {
	data, _ := json.Marshal(payload{Type: typ, N: n})
	return esdb.EventData{
		EventID:     uuid.New(),
		EventType:   typ,
		ContentType: esdb.ContentTypeJson,
		Data:        data,
		Metadata:    []byte(fmt.Sprintf(`{"n":%d}`, n)),
	}
}

// jsonEvents are n events numbered from..from+n-1.
func jsonEvents(typ string, from, n int) []esdb.EventData {
	evs := make([]esdb.EventData, n)
	for i := range evs {
		evs[i] = jsonEvent(typ, from+i)
	}
	return evs
}

func eventN(t testing.TB, e *esdb.RecordedEvent) int {
	t.Helper()
	var p payload
	if err := json.Unmarshal(e.Data, &p); err != nil {
		t.Fatalf("event %s@%d: data %q is not the suite's JSON: %v", e.StreamID, e.EventNumber, e.Data, err)
	}
	return p.N
}

func ids(evs []esdb.EventData) []uuid.UUID {
	out := make([]uuid.UUID, len(evs))
	for i, e := range evs {
		out[i] = e.EventID
	}
	return out
}

func describe(e *esdb.RecordedEvent) string {
	if e == nil {
		return "<nil>"
	}
	return fmt.Sprintf("%s@%d(%s id=%s pos=%d/%d)", e.StreamID, e.EventNumber, e.EventType, e.EventID, e.Position.Commit, e.Position.Prepare)
}

func (s *suite) append(t testing.TB, c *esdb.Client, stream string, exp esdb.ExpectedRevision, evs ...esdb.EventData) *esdb.WriteResult {
	t.Helper()
	wr, err := c.AppendToStream(ctxFor(t, opTimeout), stream, esdb.AppendToStreamOptions{ExpectedRevision: exp}, evs...)
	if err != nil {
		t.Fatalf("append %d events to %s (expected %s): %v", len(evs), stream, expString(exp), err)
	}
	return wr
}

func expString(exp esdb.ExpectedRevision) string {
	switch e := exp.(type) {
	case nil, esdb.Any:
		return "any"
	case esdb.NoStream:
		return "no_stream"
	case esdb.StreamExists:
		return "stream_exists"
	case esdb.StreamRevision:
		return fmt.Sprint(e.Value)
	}
	return fmt.Sprintf("%T", exp)
}

// marker appends one event to a fresh stream and returns its $all position,
// read back from the stream: the start point for reads of and subscriptions
// to $all that must not walk a long-lived server's whole log.
func (s *suite) marker(t testing.TB, c *esdb.Client) esdb.Position {
	t.Helper()
	_, p := s.markerIn(t, c)
	return p
}

// markerIn is marker, also naming the marker's stream.
func (s *suite) markerIn(t testing.TB, c *esdb.Client) (string, esdb.Position) {
	t.Helper()
	stream := s.stream("marker")
	s.append(t, c, stream, esdb.NoStream{}, jsonEvent("Marker", 0))
	evs := s.readStream(t, c, stream, esdb.ReadStreamOptions{}, 1)
	if len(evs) != 1 {
		t.Fatalf("marker stream %s: read %d events, want 1", stream, len(evs))
	}
	p := evs[0].OriginalEvent().Position
	if p.Commit == 0 {
		t.Fatalf("marker event %s has no $all position", describe(evs[0].OriginalEvent()))
	}
	return stream, p
}

// ---- reads ----------------------------------------------------------------

// tryReadStream reads until EOF; a read error is returned with what came before.
func tryReadStream(ctx context.Context, c *esdb.Client, stream string, opts esdb.ReadStreamOptions, count uint64) ([]*esdb.ResolvedEvent, error) {
	rs, err := c.ReadStream(ctx, stream, opts, count)
	if err != nil {
		return nil, err
	}
	defer rs.Close()
	return drain(rs)
}

func tryReadAll(ctx context.Context, c *esdb.Client, opts esdb.ReadAllOptions, count uint64) ([]*esdb.ResolvedEvent, error) {
	rs, err := c.ReadAll(ctx, opts, count)
	if err != nil {
		return nil, err
	}
	defer rs.Close()
	return drain(rs)
}

func drain(rs *esdb.ReadStream) ([]*esdb.ResolvedEvent, error) {
	var out []*esdb.ResolvedEvent
	for {
		ev, err := rs.Recv()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		out = append(out, ev)
	}
}

func (s *suite) readStream(t testing.TB, c *esdb.Client, stream string, opts esdb.ReadStreamOptions, count uint64) []*esdb.ResolvedEvent {
	t.Helper()
	evs, err := tryReadStream(ctxFor(t, opTimeout), c, stream, opts, count)
	if err != nil {
		t.Fatalf("read %s (%s): %v", stream, readDesc(opts.Direction, opts.From, count), err)
	}
	return evs
}

func (s *suite) readAll(t testing.TB, c *esdb.Client, opts esdb.ReadAllOptions, count uint64) []*esdb.ResolvedEvent {
	t.Helper()
	evs, err := tryReadAll(ctxFor(t, opTimeout), c, opts, count)
	if err != nil {
		t.Fatalf("read $all (%s): %v", readDesc(opts.Direction, opts.From, count), err)
	}
	return evs
}

func readDesc(dir esdb.Direction, from interface{}, count uint64) string {
	d := "forwards"
	if dir == esdb.Backwards {
		d = "backwards"
	}
	f := fmt.Sprintf("%T", from)
	switch v := from.(type) {
	case esdb.StreamRevision:
		f = fmt.Sprintf("revision %d", v.Value)
	case esdb.Position:
		f = fmt.Sprintf("position %d/%d", v.Commit, v.Prepare)
	case esdb.Start, nil:
		f = "start"
	case esdb.End:
		f = "end"
	}
	return fmt.Sprintf("%s from %s, count %d", d, f, count)
}

// only keeps the events of the given streams, in order.
func only(evs []*esdb.ResolvedEvent, streams ...string) []*esdb.ResolvedEvent {
	want := map[string]bool{}
	for _, s := range streams {
		want[s] = true
	}
	var out []*esdb.ResolvedEvent
	for _, e := range evs {
		if want[e.OriginalEvent().StreamID] {
			out = append(out, e)
		}
	}
	return out
}

// wantRevisions checks evs are exactly stream's events at revs, in order.
func wantRevisions(t testing.TB, what string, evs []*esdb.ResolvedEvent, stream string, revs ...uint64) {
	t.Helper()
	got := make([]string, len(evs))
	ok := len(evs) == len(revs)
	for i, e := range evs {
		r := e.OriginalEvent()
		got[i] = fmt.Sprintf("%s@%d", r.StreamID, r.EventNumber)
		if ok && (r.StreamID != stream || r.EventNumber != revs[i]) {
			ok = false
		}
	}
	if !ok {
		t.Fatalf("%s: got %v, want %s at revisions %v", what, got, stream, revs)
	}
}

func seq(from, to uint64) []uint64 { // inclusive; descending when from > to
	var out []uint64
	if from <= to {
		for r := from; r <= to; r++ {
			out = append(out, r)
		}
		return out
	}
	for r := from; ; r-- {
		out = append(out, r)
		if r == to {
			return out
		}
	}
}

func posLess(a, b esdb.Position) bool {
	if a.Commit != b.Commit {
		return a.Commit < b.Commit
	}
	return a.Prepare < b.Prepare
}

func posString(p esdb.Position) string { return fmt.Sprintf("%d/%d", p.Commit, p.Prepare) }

// ---- errors ---------------------------------------------------------------

func errCode(err error) (esdb.ErrorCode, bool) {
	var e *esdb.Error
	if errors.As(err, &e) {
		return e.Code(), true
	}
	return 0, false
}

var codeNames = map[esdb.ErrorCode]string{
	esdb.ErrorCodeUnknown:               "Unknown",
	esdb.ErrorCodeUnsupportedFeature:    "UnsupportedFeature",
	esdb.ErrorCodeDeadlineExceeded:      "DeadlineExceeded",
	esdb.ErrorCodeUnauthenticated:       "Unauthenticated",
	esdb.ErrorCodeResourceNotFound:      "ResourceNotFound",
	esdb.ErrorCodeResourceAlreadyExists: "ResourceAlreadyExists",
	esdb.ErrorCodeConnectionClosed:      "ConnectionClosed",
	esdb.ErrorCodeWrongExpectedVersion:  "WrongExpectedVersion",
	esdb.ErrorCodeAccessDenied:          "AccessDenied",
	esdb.ErrorCodeStreamDeleted:         "StreamDeleted",
	esdb.ErrorCodeParsing:               "Parsing",
	esdb.ErrorCodeInternalClient:        "InternalClient",
	esdb.ErrorCodeInternalServer:        "InternalServer",
	esdb.ErrorCodeNotLeader:             "NotLeader",
	esdb.ErrorAborted:                   "Aborted",
	esdb.ErrorUnavailable:               "Unavailable",
}

func codeName(c esdb.ErrorCode) string {
	if n, ok := codeNames[c]; ok {
		return n
	}
	return fmt.Sprintf("ErrorCode(%d)", c)
}

// wantCode checks err is an *esdb.Error with code.
func wantCode(t testing.TB, what string, err error, code esdb.ErrorCode) {
	t.Helper()
	if err == nil {
		t.Fatalf("%s: no error, want %s", what, codeName(code))
	}
	got, ok := errCode(err)
	if !ok {
		t.Fatalf("%s: error %v (%T) is no *esdb.Error, want %s", what, err, err, codeName(code))
	}
	if got != code {
		t.Fatalf("%s: error code %s (%v), want %s", what, codeName(got), err, codeName(code))
	}
}

// wantWrongExpected checks an Append failed with WrongExpectedVersion and
// that the message the client builds from the response names the expected
// and current revisions the server reported.
func wantWrongExpected(t testing.TB, what string, err error, expected, current string) {
	t.Helper()
	wantCode(t, what, err, esdb.ErrorCodeWrongExpectedVersion)
	msg := fmt.Sprintf("expecting '%s' but got '%s'", expected, current)
	if !strings.Contains(err.Error(), msg) {
		t.Fatalf("%s: %v; want the server to report %s", what, err, msg)
	}
}

// wantDeleteWrongExpected checks a Delete/Tombstone with a wrong expected
// revision failed the way KurrentDB fails it: gRPC FailedPrecondition with
// trailer exception=wrong-expected-version, which v4.2.0 surfaces as
// ErrorCodeUnknown wrapping that status.
func wantDeleteWrongExpected(t testing.TB, what string, err error) {
	t.Helper()
	wantCode(t, what, err, esdb.ErrorCodeUnknown)
	var e *esdb.Error
	errors.As(err, &e)
	if st, ok := status.FromError(e.Err()); !ok || st.Code() != codes.FailedPrecondition {
		t.Fatalf("%s: %v; want gRPC status FailedPrecondition underneath", what, err)
	}
}
