package estest

import (
	"testing"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
)

// readStreamDirections: forwards and backwards from Start, End and a
// revision (inclusive) with a count; a revision past the end reads nothing.
func (s *suite) readStreamDirections(t *testing.T) {
	c := s.client(t)
	st := s.stream("read")
	s.append(t, c, st, esdb.NoStream{}, jsonEvents("Read", 0, 10)...)
	fw := func(from esdb.StreamPosition) esdb.ReadStreamOptions {
		return esdb.ReadStreamOptions{Direction: esdb.Forwards, From: from}
	}
	bw := func(from esdb.StreamPosition) esdb.ReadStreamOptions {
		return esdb.ReadStreamOptions{Direction: esdb.Backwards, From: from}
	}
	cases := []struct {
		opts  esdb.ReadStreamOptions
		count uint64
		want  []uint64
	}{
		{fw(esdb.Start{}), 3, seq(0, 2)},
		{fw(esdb.Start{}), 100, seq(0, 9)},
		{fw(esdb.Revision(5)), 100, seq(5, 9)},
		{fw(esdb.Revision(5)), 2, seq(5, 6)},
		{fw(esdb.Revision(9)), 5, seq(9, 9)},
		{fw(esdb.Revision(10)), 5, nil},
		{fw(esdb.Revision(1000)), 5, nil},
		{bw(esdb.End{}), 3, seq(9, 7)},
		{bw(esdb.End{}), 100, seq(9, 0)},
		{bw(esdb.Revision(5)), 3, seq(5, 3)},
		{bw(esdb.Revision(5)), 100, seq(5, 0)},
		{bw(esdb.Revision(0)), 5, seq(0, 0)},
	}
	for _, tc := range cases {
		got := s.readStream(t, c, st, tc.opts, tc.count)
		wantRevisions(t, readDesc(tc.opts.Direction, tc.opts.From, tc.count), got, st, tc.want...)
		for _, e := range got {
			if n := eventN(t, e.OriginalEvent()); uint64(n) != e.OriginalEvent().EventNumber {
				t.Fatalf("revision %d holds the event appended as #%d", e.OriginalEvent().EventNumber, n)
			}
		}
	}
}

// readStreamMissing: reading a stream never written is ResourceNotFound,
// both ways.
func (s *suite) readStreamMissing(t *testing.T) {
	c := s.client(t)
	st := s.stream("missing")
	for _, opts := range []esdb.ReadStreamOptions{
		{Direction: esdb.Forwards, From: esdb.Start{}},
		{Direction: esdb.Backwards, From: esdb.End{}},
		{Direction: esdb.Forwards, From: esdb.Revision(3)},
	} {
		got, err := tryReadStream(ctxFor(t, opTimeout), c, st, opts, 10)
		wantCode(t, "read missing stream "+readDesc(opts.Direction, opts.From, 10), err, esdb.ErrorCodeResourceNotFound)
		if len(got) != 0 {
			t.Fatalf("read missing stream: %d events", len(got))
		}
	}
}

// readAllDirections: $all forwards from a position is inclusive, backwards
// exclusive; positions strictly increase; Start and End behave.
func (s *suite) readAllDirections(t *testing.T) {
	c := s.client(t)
	m := s.marker(t, c)
	a, b := s.stream("alla"), s.stream("allb")
	s.append(t, c, a, esdb.NoStream{}, jsonEvents("All", 0, 4)...)
	s.append(t, c, b, esdb.NoStream{}, jsonEvents("All", 0, 3)...)
	s.append(t, c, a, esdb.Revision(3), jsonEvent("All", 4))
	alias := map[string]string{a: "a", b: "b"}
	render := func(evs []*esdb.ResolvedEvent) []string {
		var rs []rec
		for _, e := range evs {
			rs = append(rs, rec{ev: e})
		}
		return transcript(rs, alias, false)
	}
	want := func(what string, got []*esdb.ResolvedEvent, w ...string) {
		t.Helper()
		g := render(got)
		if len(g) != len(w) {
			t.Fatalf("%s:\n got  %v\n want %v", what, g, w)
		}
		for i := range g {
			if g[i] != w[i] {
				t.Fatalf("%s:\n got  %v\n want %v", what, g, w)
			}
		}
	}
	ordered := func(what string, evs []*esdb.ResolvedEvent, forwards bool) {
		t.Helper()
		for i := 1; i < len(evs); i++ {
			p, q := evs[i-1].OriginalEvent().Position, evs[i].OriginalEvent().Position
			if (forwards && !posLess(p, q)) || (!forwards && !posLess(q, p)) {
				t.Fatalf("%s: %s then %s", what, describe(evs[i-1].OriginalEvent()), describe(evs[i].OriginalEvent()))
			}
		}
	}

	all := s.readAll(t, c, esdb.ReadAllOptions{From: m}, 500)
	if len(all) == 0 || all[0].OriginalEvent().Position != m {
		t.Fatalf("$all forwards from the marker's position %s: first event %v, want the marker (inclusive)", posString(m), func() string {
			if len(all) == 0 {
				return "none"
			}
			return describe(all[0].OriginalEvent())
		}())
	}
	ordered("$all forwards", all, true)
	ours := only(all, a, b)
	want("$all forwards from the marker", ours, cat(evs("a", 0, 1, 2, 3), evs("b", 0, 1, 2), evs("a", 4))...)
	for _, e := range ours {
		if p := e.OriginalEvent().Position; p.Commit == 0 || p.Commit != p.Prepare {
			t.Fatalf("%s: want commit == prepare > 0", describe(e.OriginalEvent()))
		}
	}
	a3, a4 := ours[3].OriginalEvent().Position, ours[7].OriginalEvent().Position

	want("$all forwards from a@3's position, count 1 (inclusive)",
		s.readAll(t, c, esdb.ReadAllOptions{From: a3}, 1), "a@3")
	want("$all backwards from a@3's position, count 1 (exclusive)",
		s.readAll(t, c, esdb.ReadAllOptions{Direction: esdb.Backwards, From: a3}, 1), "a@2")
	back := s.readAll(t, c, esdb.ReadAllOptions{Direction: esdb.Backwards, From: a4}, 500)
	ordered("$all backwards", back, false)
	want("$all backwards from a@4's position (exclusive)", only(back, a, b),
		cat(evs("b", 2, 1, 0), evs("a", 3, 2, 1, 0))...)

	fromEnd := only(s.readAll(t, c, esdb.ReadAllOptions{Direction: esdb.Backwards, From: esdb.End{}}, 50), a, b)
	if len(fromEnd) == 0 || render(fromEnd)[0] != "a@4" {
		t.Fatalf("$all backwards from End: our events %v, want a@4 first", render(fromEnd))
	}
	if got := s.readAll(t, c, esdb.ReadAllOptions{Direction: esdb.Forwards, From: esdb.End{}}, 10); len(got) != 0 {
		t.Fatalf("$all forwards from End: %d events, want none (first %s)", len(got), describe(got[0].OriginalEvent()))
	}
	if got := s.readAll(t, c, esdb.ReadAllOptions{Direction: esdb.Backwards, From: esdb.Start{}}, 10); len(got) != 0 {
		t.Fatalf("$all backwards from Start: %d events, want none (first %s)", len(got), describe(got[0].OriginalEvent()))
	}
}
