package esstore

import (
	"context"
	"errors"
	"math"
	"slices"
	"testing"
)

// seed writes the fixture every expectation case starts from:
//
//	pos 1-3  "s"      revisions 0-2, ids 1, 2, 3
//	pos 4    "other"  revision 0, id 9
//	pos 5    "gone"   revision 0, id 20; pos 6 its tombstone
//	pos 7    "never"  tombstoned without ever having an event
func seed(t *testing.T, s Store) {
	t.Helper()
	ctx := context.Background()
	mustAppend(t, s, "s", NoStream(), evs(1, 2, 3))
	mustAppend(t, s, "other", Any(), evs(9))
	mustAppend(t, s, "gone", Any(), evs(20))
	if _, err := s.Tombstone(ctx, "gone", Any()); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Tombstone(ctx, "never", Any()); err != nil {
		t.Fatal(err)
	}
}

const seedHead = 7

func TestAppendExpectations(t *testing.T) {
	type tc struct {
		name    string
		stream  string
		exp     Expected
		ids     []uint64
		wantErr string       // errKind of the error
		want    AppendResult // when no error
		wantIDs []uint64     // the stream's ids afterwards
	}
	cases := []tc{
		// A stream never written.
		{name: "new/any", stream: "new", exp: Any(), ids: []uint64{10}, want: AppendResult{Revision: 0, Position: 8}, wantIDs: []uint64{10}},
		{name: "new/no stream", stream: "new", exp: NoStream(), ids: []uint64{10, 11}, want: AppendResult{Revision: 1, Position: 9}, wantIDs: []uint64{10, 11}},
		{name: "new/stream exists", stream: "new", exp: StreamExists(), ids: []uint64{10}, wantErr: "wev"},
		{name: "new/revision 0", stream: "new", exp: Revision(0), ids: []uint64{10}, wantErr: "wev"},
		{name: "new/any zero events", stream: "new", exp: Any(), want: AppendResult{}},
		{name: "new/no stream zero events", stream: "new", exp: NoStream(), want: AppendResult{}},
		{name: "new/stream exists zero events", stream: "new", exp: StreamExists(), wantErr: "wev"},
		{name: "new/any id of another stream", stream: "new", exp: Any(), ids: []uint64{9}, want: AppendResult{Revision: 0, Position: 8}, wantIDs: []uint64{9}},

		// Any on an existing stream: idempotency by the first id.
		{name: "any/new ids", stream: "s", exp: Any(), ids: []uint64{10, 11}, want: AppendResult{Revision: 4, Position: 9}, wantIDs: []uint64{1, 2, 3, 10, 11}},
		{name: "any/retry whole", stream: "s", exp: Any(), ids: []uint64{1, 2, 3}, want: AppendResult{Revision: 2, Position: 3, Idempotent: true}, wantIDs: []uint64{1, 2, 3}},
		{name: "any/retry tail", stream: "s", exp: Any(), ids: []uint64{2, 3}, want: AppendResult{Revision: 2, Position: 3, Idempotent: true}, wantIDs: []uint64{1, 2, 3}},
		{name: "any/retry first", stream: "s", exp: Any(), ids: []uint64{1}, want: AppendResult{Revision: 0, Position: 1, Idempotent: true}, wantIDs: []uint64{1, 2, 3}},
		{name: "any/retry middle", stream: "s", exp: Any(), ids: []uint64{2}, want: AppendResult{Revision: 1, Position: 2, Idempotent: true}, wantIDs: []uint64{1, 2, 3}},
		{name: "any/first matches, next differs", stream: "s", exp: Any(), ids: []uint64{1, 3}, wantErr: "wev", wantIDs: []uint64{1, 2, 3}},
		{name: "any/first matches, next past end", stream: "s", exp: Any(), ids: []uint64{3, 10}, wantErr: "wev", wantIDs: []uint64{1, 2, 3}},
		{name: "any/first unknown, next known", stream: "s", exp: Any(), ids: []uint64{10, 1}, want: AppendResult{Revision: 4, Position: 9}, wantIDs: []uint64{1, 2, 3, 10, 1}},
		{name: "any/id of another stream", stream: "s", exp: Any(), ids: []uint64{9}, want: AppendResult{Revision: 3, Position: 8}, wantIDs: []uint64{1, 2, 3, 9}},
		{name: "any/zero events", stream: "s", exp: Any(), want: AppendResult{Revision: 2}, wantIDs: []uint64{1, 2, 3}},

		// StreamExists: as Any once the stream has events.
		{name: "exists/new ids", stream: "s", exp: StreamExists(), ids: []uint64{10}, want: AppendResult{Revision: 3, Position: 8}, wantIDs: []uint64{1, 2, 3, 10}},
		{name: "exists/retry", stream: "s", exp: StreamExists(), ids: []uint64{1, 2}, want: AppendResult{Revision: 1, Position: 2, Idempotent: true}, wantIDs: []uint64{1, 2, 3}},
		{name: "exists/partial retry", stream: "s", exp: StreamExists(), ids: []uint64{2, 2}, wantErr: "wev"},
		{name: "exists/zero events", stream: "s", exp: StreamExists(), want: AppendResult{Revision: 2}, wantIDs: []uint64{1, 2, 3}},

		// NoStream on an existing stream: idempotent only as revisions 0...
		{name: "no stream/retry whole", stream: "s", exp: NoStream(), ids: []uint64{1, 2, 3}, want: AppendResult{Revision: 2, Position: 3, Idempotent: true}, wantIDs: []uint64{1, 2, 3}},
		{name: "no stream/retry prefix", stream: "s", exp: NoStream(), ids: []uint64{1}, want: AppendResult{Revision: 0, Position: 1, Idempotent: true}, wantIDs: []uint64{1, 2, 3}},
		{name: "no stream/ids not at 0", stream: "s", exp: NoStream(), ids: []uint64{2, 3}, wantErr: "wev", wantIDs: []uint64{1, 2, 3}},
		{name: "no stream/new ids", stream: "s", exp: NoStream(), ids: []uint64{10}, wantErr: "wev", wantIDs: []uint64{1, 2, 3}},
		{name: "no stream/too many", stream: "s", exp: NoStream(), ids: []uint64{1, 2, 3, 4}, wantErr: "wev", wantIDs: []uint64{1, 2, 3}},
		{name: "no stream/zero events", stream: "s", exp: NoStream(), wantErr: "wev"},

		// Revision(e).
		{name: "revision/current", stream: "s", exp: Revision(2), ids: []uint64{10}, want: AppendResult{Revision: 3, Position: 8}, wantIDs: []uint64{1, 2, 3, 10}},
		{name: "revision/current, known id", stream: "s", exp: Revision(2), ids: []uint64{1}, want: AppendResult{Revision: 3, Position: 8}, wantIDs: []uint64{1, 2, 3, 1}},
		{name: "revision/ahead", stream: "s", exp: Revision(3), ids: []uint64{10}, wantErr: "wev", wantIDs: []uint64{1, 2, 3}},
		{name: "revision/behind, retry", stream: "s", exp: Revision(0), ids: []uint64{2, 3}, want: AppendResult{Revision: 2, Position: 3, Idempotent: true}, wantIDs: []uint64{1, 2, 3}},
		{name: "revision/behind, retry prefix", stream: "s", exp: Revision(0), ids: []uint64{2}, want: AppendResult{Revision: 1, Position: 2, Idempotent: true}, wantIDs: []uint64{1, 2, 3}},
		{name: "revision/behind, shifted", stream: "s", exp: Revision(0), ids: []uint64{3}, wantErr: "wev"},
		{name: "revision/behind, past end", stream: "s", exp: Revision(1), ids: []uint64{3, 10}, wantErr: "wev", wantIDs: []uint64{1, 2, 3}},
		{name: "revision/behind, zero events", stream: "s", exp: Revision(1), wantErr: "wev"},
		{name: "revision/current, zero events", stream: "s", exp: Revision(2), want: AppendResult{Revision: 2}, wantIDs: []uint64{1, 2, 3}},
		{name: "revision/max uint64", stream: "s", exp: Revision(math.MaxUint64), ids: []uint64{10}, wantErr: "wev"},
		{name: "revision/max int64", stream: "s", exp: Revision(math.MaxInt64), ids: []uint64{10}, wantErr: "wev"},

		// Tombstoned streams refuse everything.
		{name: "tombstoned/any", stream: "gone", exp: Any(), ids: []uint64{21}, wantErr: "deleted", wantIDs: []uint64{20}},
		{name: "tombstoned/any retry", stream: "gone", exp: Any(), ids: []uint64{20}, wantErr: "deleted"},
		{name: "tombstoned/no stream", stream: "gone", exp: NoStream(), ids: []uint64{21}, wantErr: "deleted"},
		{name: "tombstoned/exists", stream: "gone", exp: StreamExists(), ids: []uint64{21}, wantErr: "deleted"},
		{name: "tombstoned/revision", stream: "gone", exp: Revision(0), ids: []uint64{21}, wantErr: "deleted"},
		{name: "tombstoned/zero events", stream: "gone", exp: Any(), wantErr: "deleted"},
		{name: "tombstoned never written/no stream", stream: "never", exp: NoStream(), ids: []uint64{21}, wantErr: "deleted"},

		// Malformed requests.
		{name: "invalid/empty stream", stream: "", exp: Any(), ids: []uint64{10}, wantErr: "invalid"},
		{name: "invalid/kind", stream: "s", exp: Expected{Kind: 9}, ids: []uint64{10}, wantErr: "invalid"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := newTestStore(t)
			seed(t, s)
			var before StreamState
			if c.stream != "" {
				before = state(t, s, c.stream)
			}
			res, err := s.Append(context.Background(), c.stream, c.exp, evs(c.ids...))
			if got := errKind(err); got != c.wantErr {
				t.Fatalf("error = %v (%q), want %q", err, got, c.wantErr)
			}
			var wev *WrongExpectedVersionError
			if errors.As(err, &wev) {
				if wev.Stream != c.stream || wev.Expected != c.exp || wev.Current != before {
					t.Errorf("WrongExpectedVersionError = %+v, want stream %q, expected %v, current %+v", *wev, c.stream, c.exp, before)
				}
			}
			if err == nil && res != c.want {
				t.Errorf("result = %+v, want %+v", res, c.want)
			}
			wroteEvents := err == nil && !res.Idempotent && len(c.ids) > 0
			wantHead := uint64(seedHead)
			if wroteEvents {
				wantHead += uint64(len(c.ids))
			}
			if h, _ := s.Head(); h != wantHead {
				t.Errorf("head = %d, want %d", h, wantHead)
			}
			if c.stream == "" {
				return
			}
			if c.wantIDs != nil {
				if got := idNums(readStream(t, s, c.stream, 0, true)); !slices.Equal(got, c.wantIDs) {
					t.Errorf("stream ids = %v, want %v", got, c.wantIDs)
				}
			}
			after := state(t, s, c.stream)
			if !wroteEvents && after != before {
				t.Errorf("state changed from %+v to %+v without a write", before, after)
			}
			if wroteEvents && (!after.Exists || after.Revision != res.Revision) {
				t.Errorf("state after write = %+v, want revision %d", after, res.Revision)
			}
		})
	}
}

// An id that occurs twice in a stream: the retry with Any matches its
// latest occurrence, as KurrentDB's committed-event index does.
func TestAppendIdempotentLatestOccurrence(t *testing.T) {
	s := newTestStore(t)
	mustAppend(t, s, "s", NoStream(), evs(1, 2))
	mustAppend(t, s, "s", Revision(1), evs(1)) // a deliberate second occurrence
	res := mustAppend(t, s, "s", Any(), evs(1))
	if want := (AppendResult{Revision: 2, Position: 3, Idempotent: true}); res != want {
		t.Fatalf("retry = %+v, want %+v", res, want)
	}
	// By revision, both occurrences are found exactly.
	res = mustAppend(t, s, "s", NoStream(), evs(1, 2))
	if want := (AppendResult{Revision: 1, Position: 2, Idempotent: true}); res != want {
		t.Fatalf("retry by revision = %+v, want %+v", res, want)
	}
}

// Idempotency is exact however old the events are, and survives the
// stream-state cache evicting the stream.
func TestAppendIdempotentAfterEviction(t *testing.T) {
	s := openAt(t, t.TempDir(), Options{NoSync: true, StreamCacheSize: 2})
	for i := range uint64(50) {
		mustAppend(t, s, streamName(i), NoStream(), evs(1000+i))
	}
	if n := s.w.cache.len(); n > 2 {
		t.Fatalf("cache holds %d streams, bound 2", n)
	}
	for i := range uint64(50) {
		res := mustAppend(t, s, streamName(i), Any(), evs(1000+i))
		if want := (AppendResult{Revision: 0, Position: i + 1, Idempotent: true}); res != want {
			t.Fatalf("retry %d = %+v, want %+v", i, res, want)
		}
		if _, err := s.Append(context.Background(), streamName(i), NoStream(), evs(1)); errKind(err) != "wev" {
			t.Fatalf("NoStream on evicted stream %d: %v", i, err)
		}
	}
}

func streamName(i uint64) string {
	return "stream-" + string(rune('a'+i%26)) + "-" + string(rune('0'+i/26))
}

func TestAppendTooLarge(t *testing.T) {
	s := newTestStore(t)
	huge := []EventData{{ID: id(1), Type: "T", Data: make([]byte, maxAppendBytes)}} // untouched pages cost nothing
	if _, err := s.Append(context.Background(), "s", Any(), huge); errKind(err) != "invalid" {
		t.Fatalf("oversized append: %v", err)
	}
	mustAppend(t, s, "s", Any(), evs(1)) // the store goes on
}

func TestAppendCanceledContext(t *testing.T) {
	s := newTestStore(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := s.Append(ctx, "s", Any(), evs(1)); !errors.Is(err, context.Canceled) {
		t.Fatalf("Append with a cancelled context: %v", err)
	}
	if st := state(t, s, "s"); st.Exists {
		t.Fatalf("a cancelled append was written: %+v", st)
	}
}

func TestAppendEventFieldsRoundTrip(t *testing.T) {
	s := newTestStore(t)
	in := []EventData{
		{ID: id(1), Type: "json", ContentType: "application/json", Metadata: []byte(`{"a":1}`), Data: []byte(`{"b":2}`)},
		{ID: id(2), Type: "bin", ContentType: "application/octet-stream", Data: []byte{0, 1, 2, 255}},
		{ID: id(3), Type: "", ContentType: "text/plain; charset=utf-8", Metadata: []byte("m")},
		{ID: id(4), Type: "big", ContentType: "application/json", Data: make([]byte, 1<<20)},
	}
	before := timeNow()
	mustAppend(t, s, "ünïcode\x00stream", NoStream(), in)
	after := timeNow()
	got := readStream(t, s, "ünïcode\x00stream", 0, true)
	all := readAll(t, s, 0, true)
	if len(got) != len(in) || len(all) != len(in) {
		t.Fatalf("read %d and %d events, want %d", len(got), len(all), len(in))
	}
	for i, e := range got {
		w := in[i]
		if e.Stream != "ünïcode\x00stream" || e.Revision != uint64(i) || e.Position != uint64(i+1) || e.ID != w.ID ||
			e.Type != w.Type || e.ContentType != w.ContentType || string(e.Metadata) != string(w.Metadata) || string(e.Data) != string(w.Data) {
			t.Errorf("event %d = %+v, want %+v", i, e, w)
		}
		if e.Created.Location().String() != "UTC" || e.Created.Before(before) || e.Created.After(after) {
			t.Errorf("event %d created %v, not a UTC time between %v and %v", i, e.Created, before, after)
		}
		if !e.Created.Equal(all[i].Created) || !e.Created.Equal(got[0].Created) {
			t.Errorf("event %d created differs between reads or within one commit", i)
		}
	}
	// Events own their payloads.
	got[0].Data[0] = 'X'
	if again := readStream(t, s, "ünïcode\x00stream", 0, true); again[0].Data[0] != '{' {
		t.Error("modifying a read event changed the store")
	}
}
