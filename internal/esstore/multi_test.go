package esstore

import (
	"context"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/cockroachdb/pebble/v2"
	"go.uber.org/zap"
)

// multi writes appends of several events, so that reads start and end in
// the middle of log records:
//
//	pos 1-3  "a" revisions 0-2, ids 1, 2, 3 (one append)
//	pos 4-5  "b" revisions 0-1, ids 11, 12
//	pos 6-9  "a" revisions 3-6, ids 4, 5, 6, 7
//	pos 10   "c" revision 0, id 21; pos 11 its tombstone
//	pos 12-13 "b" revisions 2-3, ids 13, 14
func multi(t *testing.T, opts Options) *diskStore {
	t.Helper()
	return multiAt(t, t.TempDir(), opts)
}

func multiAt(t *testing.T, dir string, opts Options) *diskStore {
	t.Helper()
	s := openAt(t, dir, opts)
	mustAppend(t, s, "a", NoStream(), evs(1, 2, 3))
	mustAppend(t, s, "b", NoStream(), evs(11, 12))
	mustAppend(t, s, "a", Revision(2), evs(4, 5, 6, 7))
	mustAppend(t, s, "c", Any(), evs(21))
	if _, err := s.Tombstone(context.Background(), "c", Any()); err != nil {
		t.Fatal(err)
	}
	mustAppend(t, s, "b", Revision(1), evs(13, 14))
	return s
}

type multiEvent struct{ stream, id, rev, pos uint64 }

// multiLog is multi's log; stream 0 is "a", 1 "b", 2 "c"; id 0 is the tombstone.
var multiLog = []multiEvent{
	{0, 1, 0, 1}, {0, 2, 1, 2}, {0, 3, 2, 3},
	{1, 11, 0, 4}, {1, 12, 1, 5},
	{0, 4, 3, 6}, {0, 5, 4, 7}, {0, 6, 5, 8}, {0, 7, 6, 9},
	{2, 21, 0, 10}, {2, 0, tombstoneRevision, 11},
	{1, 13, 2, 12}, {1, 14, 3, 13},
}

func TestMultiEventAppendReads(t *testing.T) {
	dir := t.TempDir()
	s := multiAt(t, dir, Options{NoSync: true})
	check := func(t *testing.T, s *diskStore) {
		names := []string{"a", "b", "c"}
		for si, name := range names {
			var want []multiEvent
			for _, e := range multiLog {
				if e.stream == uint64(si) && e.rev != tombstoneRevision {
					want = append(want, e)
				}
			}
			for from := uint64(0); from <= uint64(len(want))+1; from++ {
				for _, forward := range []bool{true, false} {
					var exp []multiEvent
					for _, e := range want {
						if forward && e.rev >= from || !forward && e.rev <= from {
							exp = append(exp, e)
						}
					}
					if !forward {
						slices.Reverse(exp)
					}
					got := readStream(t, s, name, from, forward)
					if len(got) != len(exp) {
						t.Fatalf("%s from %d forward %v: %d events, want %d", name, from, forward, len(got), len(exp))
					}
					for i, e := range got {
						if e.Stream != name || idNums(got[i : i+1])[0] != exp[i].id || e.Revision != exp[i].rev || e.Position != exp[i].pos {
							t.Fatalf("%s from %d forward %v: event %d = %+v, want %+v", name, from, forward, i, e, exp[i])
						}
					}
				}
			}
			if got := readStream(t, s, name, math.MaxUint64, false); len(got) != len(want) {
				t.Fatalf("%s backward from the end: %d events", name, len(got))
			}
		}
		for from := uint64(0); from <= uint64(len(multiLog))+1; from++ {
			for _, forward := range []bool{true, false} {
				var exp []multiEvent
				for _, e := range multiLog {
					if forward && e.pos >= from || !forward && e.pos <= from {
						exp = append(exp, e)
					}
				}
				if !forward {
					slices.Reverse(exp)
				}
				got := readAll(t, s, from, forward)
				if len(got) != len(exp) {
					t.Fatalf("$all from %d forward %v: %d events, want %d", from, forward, len(got), len(exp))
				}
				for i, e := range got {
					if e.Stream != names[exp[i].stream] || e.Revision != exp[i].rev || e.Position != exp[i].pos ||
						(exp[i].id != 0 && idNums(got[i : i+1])[0] != exp[i].id) {
						t.Fatalf("$all from %d forward %v: event %d = %+v, want %+v", from, forward, i, e, exp[i])
					}
				}
			}
		}
		// Stopping in the middle of a record.
		var n int
		if err := s.ReadAll(context.Background(), 2, true, func(RecordedEvent) bool { n++; return n < 2 }); err != nil || n != 2 {
			t.Fatalf("ReadAll stopped after %d, err %v", n, err)
		}
	}
	check(t, s)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	r := openAt(t, dir, Options{NoSync: true})
	if h, _ := r.Head(); h != 13 {
		t.Fatalf("head after reopen = %d, want 13", h)
	}
	check(t, r)
}

func TestMultiEventReopen(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(context.Background(), dir, Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	mustAppend(t, s, "a", NoStream(), evs(1, 2, 3))
	mustAppend(t, s, "a", Revision(2), evs(4, 5))
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	r := openAt(t, dir, Options{NoSync: true})
	if h, _ := r.Head(); h != 5 {
		t.Fatalf("head after reopen = %d, want 5", h)
	}
	if st := state(t, r, "a"); st.Revision != 4 {
		t.Fatalf("state after reopen %+v", st)
	}
	res := mustAppend(t, r, "a", Any(), evs(6, 7))
	if want := (AppendResult{Revision: 6, Position: 7}); res != want {
		t.Fatalf("append after reopen = %+v, want %+v", res, want)
	}
	// The recent ids are gone with the process; retries by revision and
	// by first id are still exact.
	res = mustAppend(t, r, "a", NoStream(), evs(1, 2, 3, 4))
	if want := (AppendResult{Revision: 3, Position: 4, Idempotent: true}); res != want {
		t.Fatalf("retry across records = %+v, want %+v", res, want)
	}
}

// Retries whose ids span several appends, by first id and by revision.
func TestIdempotencySpansRecords(t *testing.T) {
	cases := []struct {
		name    string
		exp     Expected
		ids     []uint64
		want    AppendResult
		wantErr string
	}{
		{"any, whole stream", Any(), []uint64{1, 2, 3, 4, 5, 6, 7}, AppendResult{Revision: 6, Position: 9, Idempotent: true}, ""},
		{"any, across two records", Any(), []uint64{1, 2, 3, 4}, AppendResult{Revision: 3, Position: 6, Idempotent: true}, ""},
		{"any, second record", Any(), []uint64{4, 5}, AppendResult{Revision: 4, Position: 7, Idempotent: true}, ""},
		{"any, middle to middle", Any(), []uint64{3, 4, 5}, AppendResult{Revision: 4, Position: 7, Idempotent: true}, ""},
		{"any, runs past the end", Any(), []uint64{6, 7, 8}, AppendResult{}, "wev"},
		{"any, differs in next record", Any(), []uint64{2, 3, 5}, AppendResult{}, "wev"},
		{"no stream, across records", NoStream(), []uint64{1, 2, 3, 4, 5}, AppendResult{Revision: 4, Position: 7, Idempotent: true}, ""},
		{"revision, middle of a record", Revision(3), []uint64{5, 6}, AppendResult{Revision: 5, Position: 8, Idempotent: true}, ""},
		{"revision, mismatch", Revision(3), []uint64{5, 7}, AppendResult{}, "wev"},
		{"revision, past the end", Revision(5), []uint64{7, 8}, AppendResult{}, "wev"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := multi(t, Options{NoSync: true})
			res, err := s.Append(context.Background(), "a", c.exp, evs(c.ids...))
			if got := errKind(err); got != c.wantErr {
				t.Fatalf("error %v, want %q", err, c.wantErr)
			}
			if err == nil && res != c.want {
				t.Fatalf("result %+v, want %+v", res, c.want)
			}
			if h, _ := s.Head(); h != 13 {
				t.Fatalf("head %d: something was written", h)
			}
		})
	}
}

// The id index holds every id of an append of up to IndexEveryIDUpTo
// events, and the first id of larger ones, whose other ids are recognised
// only while they are among the recent ones (Options.RecentIDs). Past
// that, a retry with ExpectAny starting in the middle of a large append is
// new events, as documented at Store.Append; retries by revision and
// retries from an append's first id stay exact.
func TestIdempotencyAfterRecentIDsEviction(t *testing.T) {
	s := multi(t, Options{NoSync: true, RecentIDs: 4})
	if n := s.w.recent.len(); n > 4 {
		t.Fatalf("recent ids hold %d, bound 4", n)
	}
	// The ids of "a"'s first append have left the recent ids.
	res := mustAppend(t, s, "a", Any(), evs(1, 2, 3))
	if want := (AppendResult{Revision: 2, Position: 3, Idempotent: true}); res != want {
		t.Fatalf("retry from the first id = %+v, want %+v", res, want)
	}
	res = mustAppend(t, s, "a", Revision(0), evs(2, 3))
	if want := (AppendResult{Revision: 2, Position: 3, Idempotent: true}); res != want {
		t.Fatalf("retry by revision = %+v, want %+v", res, want)
	}
	res = mustAppend(t, s, "a", Any(), evs(2, 3))
	if want := (AppendResult{Revision: 2, Position: 3, Idempotent: true}); res != want {
		t.Fatalf("retry from a forgotten middle id of a small append = %+v, want %+v", res, want)
	}
	// A large append indexes its first id only.
	big := make([]uint64, IndexEveryIDUpTo+1)
	for i := range big {
		big[i] = 1000 + uint64(i)
	}
	first := mustAppend(t, s, "big", NoStream(), evs(big...))
	mustAppend(t, s, "other", Any(), evs(2000, 2001, 2002, 2003, 2004)) // pushes big's ids out of the recent ones
	res = mustAppend(t, s, "big", Any(), evs(big[1:3]...))
	if res.Idempotent || res.Revision != first.Revision+2 {
		t.Fatalf("retry from a forgotten middle id of a large append = %+v, want new events after revision %d", res, first.Revision)
	}
	// The latest append's ids are recent: found whatever their place.
	res = mustAppend(t, s, "big", Any(), evs(big[2]))
	if want := (AppendResult{Revision: first.Revision + 2, Position: res.Position, Idempotent: true}); res != want {
		t.Fatalf("retry of a recent middle id = %+v, want %+v", res, want)
	}
}

func TestRecentIDsBound(t *testing.T) {
	c := newRecentIDs(3)
	for i := range uint64(10) {
		c.put(1, id(i), i)
		c.put(1, id(0), 100+i) // refreshed on every write: stays
	}
	if c.len() > 3 {
		t.Fatalf("%d entries, bound 3", c.len())
	}
	if r, ok := c.get(1, id(0)); !ok || r != 109 {
		t.Fatalf("id 0: %d %v", r, ok)
	}
	if r, ok := c.get(1, id(9)); !ok || r != 9 {
		t.Fatalf("id 9: %d %v", r, ok)
	}
	if _, ok := c.get(1, id(1)); ok {
		t.Fatalf("id 1 not evicted")
	}
	if _, ok := c.get(2, id(9)); ok {
		t.Fatalf("id 9 found in another stream")
	}
}

// A directory written in the per-event format (version 1) is refused
// with an error that says so.
func TestOpenRefusesOldFormat(t *testing.T) {
	dir := t.TempDir()
	db, err := pebble.Open(dir, &pebble.Options{Logger: pebbleLogger{zap.NewNop().Sugar()}})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Set(metaFormatKey, appendU64(nil, 1), pebble.Sync); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	s, err := Open(context.Background(), dir, Options{})
	if err == nil {
		s.Close()
		t.Fatal("Open of a format 1 directory succeeded")
	}
	if !strings.Contains(err.Error(), "format 1") {
		t.Fatalf("error does not name the format: %v", err)
	}
}

// The recent ids hold exactly the keys of the last writes, with the
// revision of their latest write, under rewrites and wrap-around.
func TestRecentIDsModel(t *testing.T) {
	type key struct {
		sid uint64
		id  ID
	}
	const size = 1000
	c := newRecentIDs(size)
	latest := map[key]uint64{}
	var order []key
	for i := range uint64(50_000) {
		j := i
		if i%3 == 0 && i >= 500 {
			j = i - 500 // mostly still remembered: rewritten in place
		}
		k := key{1 + j%5, id(j / 5)}
		c.put(k.sid, k.id, i)
		latest[k] = i
		order = append(order, k)
	}
	recent := map[key]bool{}
	for _, k := range order[len(order)-size:] {
		recent[k] = true
	}
	for k, rev := range latest {
		got, ok := c.get(k.sid, k.id)
		if recent[k] && (!ok || got != rev) {
			t.Fatalf("%v: %d %v, want %d", k, got, ok, rev)
		}
		if !recent[k] && ok {
			t.Fatalf("%v: still remembered", k)
		}
	}
	if c.len() != len(recent) {
		t.Fatalf("len %d, want %d", c.len(), len(recent))
	}
}

// A stream this process created is checked against the recent ids alone
// while they hold all of its ids (streamRecord.recentFrom); once some of
// them have been pushed out, and after a reopen, the id index answers
// again. Each case must find the retry either way.
func TestIdempotencyOfNewStreamAcrossRecentIDsEviction(t *testing.T) {
	dir := t.TempDir()
	s := openAt(t, dir, Options{NoSync: true, RecentIDs: 4})
	mustAppend(t, s, "n", Any(), evs(1))
	mustAppend(t, s, "n", Any(), evs(2))
	if !s.w.recent.holdsSince(s.w.cache.items["n"].rec.recentFrom) {
		t.Fatal("the recent ids should still hold every id of the new stream")
	}
	if res := mustAppend(t, s, "n", Any(), evs(1)); !res.Idempotent || res.Revision != 0 {
		t.Fatalf("retry of id 1 while recent = %+v", res)
	}
	if res := mustAppend(t, s, "n", Any(), evs(3)); res.Idempotent || res.Revision != 2 {
		t.Fatalf("new id 3 = %+v, want written at revision 2", res)
	}
	for i := uint64(4); i <= 9; i++ {
		mustAppend(t, s, "n", Any(), evs(i))
	}
	if s.w.recent.holdsSince(s.w.cache.items["n"].rec.recentFrom) {
		t.Fatal("ids 1-5 have left the recent ids, yet they are said to hold all")
	}
	if res := mustAppend(t, s, "n", Any(), evs(1)); !res.Idempotent || res.Revision != 0 {
		t.Fatalf("retry of id 1 after eviction = %+v, want idempotent at revision 0", res)
	}
	if res := mustAppend(t, s, "n", Any(), evs(10)); res.Idempotent || res.Revision != 9 {
		t.Fatalf("new id 10 = %+v, want written at revision 9", res)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openAt(t, dir, Options{NoSync: true, RecentIDs: 4})
	if res := mustAppend(t, s, "n", Any(), evs(2)); !res.Idempotent || res.Revision != 1 {
		t.Fatalf("retry of id 2 after reopen = %+v, want idempotent at revision 1", res)
	}
}

func TestRecentIDsHoldsSince(t *testing.T) {
	c := newRecentIDs(3)
	if c.holdsSince(0) {
		t.Fatal("mark 0 (unknown) must not hold")
	}
	m := c.mark()
	for i := range uint64(3) {
		c.put(1, id(i), i)
		if !c.holdsSince(m) {
			t.Fatalf("after %d puts into a ring of 3, the first is still held", i+1)
		}
	}
	c.put(1, id(3), 3)
	if c.holdsSince(m) {
		t.Fatal("after 4 puts into a ring of 3, the first is gone")
	}
	if m2 := c.mark(); !c.holdsSince(m2) {
		t.Fatal("a fresh mark holds")
	}
}
