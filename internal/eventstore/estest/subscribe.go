package estest

import (
	"testing"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
)

const subTimeout = 20 * time.Second

// checkIDs checks every event delivered for stream carries the id appended
// at its revision.
func checkIDs(t *testing.T, what string, rs []rec, stream string, appended []esdb.EventData) {
	t.Helper()
	for _, r := range rs {
		if r.ev == nil || r.ev.OriginalEvent().StreamID != stream {
			continue
		}
		e := r.ev.OriginalEvent()
		if e.EventNumber >= uint64(len(appended)) || appended[e.EventNumber].EventID != e.EventID {
			t.Fatalf("%s: delivered %s, which is not the event appended at revision %d", what, describe(e), e.EventNumber)
		}
	}
}

// subscribeStream: catch-up from Start, a revision (exclusive) and End, the
// CaughtUp marker between catch-up and live events, then live events.
func (s *suite) subscribeStream(t *testing.T) {
	c := s.client(t)
	st := s.stream("sub")
	alias := map[string]string{st: "s"}
	appended := jsonEvents("Sub", 0, 5)
	s.append(t, c, st, esdb.NoStream{}, appended...)

	fromStart := s.subStream(t, c, st, esdb.Start{})
	rs := fromStart.collect(t, subTimeout, nil, s.untilCaughtUp(5))
	s.wantTranscript(t, "subscription from Start", rs, alias, cat(evs("s", seq(0, 4)...), []string{"CaughtUp"})...)
	checkIDs(t, "subscription from Start", rs, st, appended)

	fromRev := s.subStream(t, c, st, esdb.Revision(2))
	rs = fromRev.collect(t, subTimeout, nil, s.untilCaughtUp(2))
	s.wantTranscript(t, "subscription from revision 2 (exclusive)", rs, alias, "s@3", "s@4", "CaughtUp")

	fromHead := s.subStream(t, c, st, esdb.Revision(4))
	fromEnd := s.subStream(t, c, st, esdb.End{})
	if s.caughtUp {
		s.wantTranscript(t, "subscription from the last revision 4", fromHead.collect(t, subTimeout, nil, s.untilCaughtUp(0)), alias, "CaughtUp")
		s.wantTranscript(t, "subscription from End", fromEnd.collect(t, subTimeout, nil, s.untilCaughtUp(0)), alias, "CaughtUp")
	}

	for i := 5; i < 8; i++ {
		ev := jsonEvent("Sub", i)
		s.append(t, c, st, esdb.Revision(uint64(i-1)), ev)
		appended = append(appended, ev)
	}
	for name, p := range map[string]*sub{"from Start": fromStart, "from revision 2": fromRev, "from revision 4": fromHead, "from End": fromEnd} {
		rs := p.collect(t, subTimeout, nil, untilEvents(3))
		s.wantTranscript(t, "live events, subscription "+name, rs, alias, evs("s", 5, 6, 7)...)
		checkIDs(t, "live events, subscription "+name, rs, st, appended)
	}
	fromStart.quiet(t, 300*time.Millisecond, nil)
}

// subscribeStreamMissing: subscribing to a stream that does not exist is no
// error; its first events arrive once appended.
func (s *suite) subscribeStreamMissing(t *testing.T) {
	c := s.client(t)
	st := s.stream("subnone")
	alias := map[string]string{st: "s"}
	fromStart := s.subStream(t, c, st, esdb.Start{})
	fromEnd := s.subStream(t, c, st, esdb.End{})
	if s.caughtUp {
		s.wantTranscript(t, "missing stream from Start", fromStart.collect(t, subTimeout, nil, s.untilCaughtUp(0)), alias, "CaughtUp")
		s.wantTranscript(t, "missing stream from End", fromEnd.collect(t, subTimeout, nil, s.untilCaughtUp(0)), alias, "CaughtUp")
	}
	appended := jsonEvents("SubNone", 0, 2)
	s.append(t, c, st, esdb.NoStream{}, appended...)
	for name, p := range map[string]*sub{"from Start": fromStart, "from End": fromEnd} {
		rs := p.collect(t, subTimeout, nil, untilEvents(2))
		s.wantTranscript(t, "stream created after subscribing "+name, rs, alias, "s@0", "s@1")
		checkIDs(t, "stream created after subscribing "+name, rs, st, appended)
	}
}

// subscribeAll: $all from a position (exclusive) and from End; events of
// several streams in commit order; CaughtUp; live events.
func (s *suite) subscribeAll(t *testing.T) {
	c := s.client(t)
	ms, m := s.markerIn(t, c)
	a, b := s.stream("suba"), s.stream("subb")
	alias := map[string]string{a: "a", b: "b", ms: "marker"}
	keep := func(e *esdb.RecordedEvent) bool { return e.StreamID == a || e.StreamID == b || e.StreamID == ms }
	s.append(t, c, a, esdb.NoStream{}, jsonEvents("SubAll", 0, 2)...)
	s.append(t, c, b, esdb.NoStream{}, jsonEvent("SubAll", 0))
	s.append(t, c, a, esdb.Revision(1), jsonEvent("SubAll", 2))

	fromMarker := s.subAll(t, c, esdb.SubscribeToAllOptions{From: m})
	rs := fromMarker.collect(t, subTimeout, keep, s.untilCaughtUp(4))
	s.wantTranscript(t, "$all from the marker's position (exclusive)", rs, alias, "a@0", "a@1", "b@0", "a@2", "CaughtUp")
	a1 := rs[1].ev.OriginalEvent().Position

	fromEnd := s.subAll(t, c, esdb.SubscribeToAllOptions{From: esdb.End{}})
	if s.caughtUp {
		s.wantTranscript(t, "$all from End", fromEnd.collect(t, subTimeout, keep, s.untilCaughtUp(0)), alias, "CaughtUp")
	}
	s.append(t, c, b, esdb.Revision(0), jsonEvent("SubAll", 1))
	s.append(t, c, a, esdb.Revision(2), jsonEvent("SubAll", 3))
	s.wantTranscript(t, "live events on $all from the marker", fromMarker.collect(t, subTimeout, keep, untilEvents(2)), alias, "b@1", "a@3")
	s.wantTranscript(t, "live events on $all from End", fromEnd.collect(t, subTimeout, keep, untilEvents(2)), alias, "b@1", "a@3")

	fromA1 := s.subAll(t, c, esdb.SubscribeToAllOptions{From: a1})
	s.wantTranscript(t, "$all from a@1's position (exclusive)", fromA1.collect(t, subTimeout, keep, s.untilCaughtUp(4)), alias, "b@0", "a@2", "b@1", "a@3", "CaughtUp")
}

// subscribeAllFiltered: server-side filters on stream name and event type,
// by prefixes and by regex; checkpoints during catch-up and live, each a
// safe resume point.
func (s *suite) subscribeAllFiltered(t *testing.T) {
	c := s.client(t)
	p := s.run + "flt" + randHex(3)
	sa, sb, sc, sn := p+"a-1", p+"b-1", p+"c-1", p+"noise-1"
	ta, tb, tc, tn := p+"Alpha", p+"Beta", p+"Gamma", p+"Noise"
	alias := map[string]string{sa: "a", sb: "b", sc: "c", sn: "noise"}
	m := s.marker(t, c)
	s.append(t, c, sa, esdb.NoStream{}, jsonEvents(ta, 0, 3)...)
	s.append(t, c, sn, esdb.NoStream{}, jsonEvents(tn, 0, 100)...)
	s.append(t, c, sb, esdb.NoStream{}, jsonEvents(tb, 0, 2)...)
	s.append(t, c, sn, esdb.Revision(99), jsonEvents(tn, 100, 100)...)
	s.append(t, c, sc, esdb.NoStream{}, jsonEvents(tc, 0, 2)...)
	s.append(t, c, sa, esdb.Revision(2), jsonEvent(ta, 3))

	type fcase struct {
		name   string
		filter esdb.SubscriptionFilter
		want   []string // catch-up
		live   string   // first live event
	}
	cases := []fcase{
		{"stream name prefixes a-, b-", esdb.SubscriptionFilter{Type: esdb.StreamFilterType, Prefixes: []string{p + "a-", p + "b-"}},
			[]string{"a@0", "a@1", "a@2", "b@0", "b@1", "a@3"}, "b@2"},
		{"stream name regex (a|c)-", esdb.SubscriptionFilter{Type: esdb.StreamFilterType, Regex: "^" + p + "(a|c)-"},
			[]string{"a@0", "a@1", "a@2", "c@0", "c@1", "a@3"}, "c@2"},
		{"event type prefix Gam", esdb.SubscriptionFilter{Type: esdb.EventFilterType, Prefixes: []string{p + "Gam"}},
			[]string{"c@0", "c@1"}, "c@2"},
		{"event type regex Alpha|Beta", esdb.SubscriptionFilter{Type: esdb.EventFilterType, Regex: "^" + p + "(Alpha|Beta)$"},
			[]string{"a@0", "a@1", "a@2", "b@0", "b@1", "a@3"}, "b@2"},
		// Unanchored, as .NET's Regex.IsMatch: matches inside the type.
		{"event type regex, unanchored", esdb.SubscriptionFilter{Type: esdb.EventFilterType, Regex: p[2:] + "Gam"},
			[]string{"c@0", "c@1"}, "c@2"},
	}
	subs := make([]*sub, len(cases))
	catchUp := make([][]rec, len(cases))
	for i, fc := range cases {
		f := fc.filter
		subs[i] = s.subAll(t, c, esdb.SubscribeToAllOptions{From: m, Filter: &f, MaxSearchWindow: 10, CheckpointInterval: 1})
		rs := subs[i].collect(t, subTimeout, nil, s.untilCaughtUp(len(fc.want)))
		s.wantTranscript(t, "catch-up, filter "+fc.name, rs, alias, cat(fc.want, []string{"CaughtUp"})...)
		before, _ := checkCheckpoints(t, "catch-up, filter "+fc.name, rs, m)
		// 200+ events considered, a checkpoint due every 10: KurrentDB sends ~20.
		if before < 3 {
			t.Fatalf("catch-up, filter %s: %d checkpoints over 200+ considered events with MaxSearchWindow 10 × CheckpointInterval 1, want several: %s", fc.name, before, summary(rs))
		}
		catchUp[i] = rs
	}

	s.append(t, c, sn, esdb.Revision(199), jsonEvents(tn, 200, 50)...)
	s.append(t, c, sb, esdb.Revision(1), jsonEvent(tb, 2))
	s.append(t, c, sc, esdb.Revision(1), jsonEvent(tc, 2))
	for i, fc := range cases {
		rs := subs[i].collect(t, subTimeout, nil, untilEvents(1))
		s.wantTranscript(t, "first live event, filter "+fc.name, rs, alias, fc.live)
		_, after := checkCheckpoints(t, "catch-up then live, filter "+fc.name, append(catchUp[i], rs...), m)
		if after < 1 {
			t.Fatalf("live, filter %s: no checkpoint while 50 non-matching events went by (MaxSearchWindow 10 × CheckpointInterval 1): %s", fc.name, summary(rs))
		}
	}
}

// subscribeHandOver: a subscription catching up on thousands of events
// while appends continue gets every event exactly once, in order, across
// the catch-up → live hand-over — on a stream and on filtered $all.
func (s *suite) subscribeHandOver(t *testing.T) {
	const pre, during, batch = 3000, 1000, 5
	c := s.client(t)
	st := s.stream("handover")
	m := s.marker(t, c)
	appended := make([]esdb.EventData, 0, pre+during)
	for i := 0; i < pre; i += 100 {
		evs := jsonEvents("HandOver", i, 100)
		var exp esdb.ExpectedRevision = esdb.NoStream{}
		if i > 0 {
			exp = esdb.Revision(uint64(i - 1))
		}
		s.append(t, c, st, exp, evs...)
		appended = append(appended, evs...)
	}

	w := s.client(t)
	ctx := ctxFor(t, 2*time.Minute)
	more := make([]esdb.EventData, 0, during)
	errc := make(chan error, 1)
	go func() {
		for i := pre; i < pre+during; i += batch {
			evs := jsonEvents("HandOver", i, batch)
			if _, err := w.AppendToStream(ctx, st, esdb.AppendToStreamOptions{ExpectedRevision: esdb.Revision(uint64(i - 1))}, evs...); err != nil {
				errc <- err
				return
			}
			more = append(more, evs...)
		}
		errc <- nil
	}()

	onStream := s.subStream(t, c, st, esdb.Start{})
	onAll := s.subAll(t, c, esdb.SubscribeToAllOptions{From: m, Filter: &esdb.SubscriptionFilter{Type: esdb.StreamFilterType, Prefixes: []string{st}}})
	mine := func(e *esdb.RecordedEvent) bool { return e.StreamID == st }
	rsStream := onStream.collect(t, 90*time.Second, mine, untilEvents(pre+during))
	rsAll := onAll.collect(t, 90*time.Second, mine, untilEvents(pre+during))
	if err := <-errc; err != nil {
		t.Fatalf("concurrent appends: %v", err)
	}
	appended = append(appended, more...)

	for name, rs := range map[string][]rec{"stream subscription": rsStream, "filtered $all subscription": rsAll} {
		next := uint64(0)
		caughtUp := 0
		for _, r := range rs {
			if r.caughtUp {
				caughtUp++
			}
			if r.ev == nil {
				continue
			}
			e := r.ev.OriginalEvent()
			if e.EventNumber != next {
				t.Fatalf("%s: got revision %d after %d events, want %d (gap or duplicate at the hand-over)", name, e.EventNumber, next, next)
			}
			if e.EventID != appended[next].EventID {
				t.Fatalf("%s: revision %d is %s, not the event appended there", name, next, describe(e))
			}
			next++
		}
		if s.caughtUp && caughtUp == 0 {
			t.Fatalf("%s: no CaughtUp in %d deliveries", name, len(rs))
		}
		t.Logf("%s: %d events in order, CaughtUp %d times", name, next, caughtUp)
	}
	checkCheckpoints(t, "filtered $all subscription", rsAll, m)
	onStream.quiet(t, 200*time.Millisecond, mine)
	onAll.quiet(t, 200*time.Millisecond, mine)
}

// subscribeAllExcludeSystem: system records — the $metadata event a
// metadata write appends to $$stream, the $streamDeleted tombstone — are in
// $all, and esdb.ExcludeSystemEventsFilter (event type regex ^[^\$].*)
// keeps them from a subscriber.
func (s *suite) subscribeAllExcludeSystem(t *testing.T) {
	c := s.client(t)
	ms, m := s.markerIn(t, c)
	st, gone := s.stream("sys"), s.stream("sysgone")
	alias := map[string]string{st: "s", "$$" + st: "$$s", gone: "gone", ms: "marker"}
	ours := func(e *esdb.RecordedEvent) bool { _, ok := alias[e.StreamID]; return ok }
	s.append(t, c, st, esdb.NoStream{}, jsonEvent("Sys", 0))
	var meta esdb.StreamMetadata
	meta.AddCustomProperty("k", "v")
	s.setMeta(t, c, st, esdb.NoStream{}, meta)
	s.append(t, c, gone, esdb.NoStream{}, jsonEvent("Sys", 0))
	if _, err := c.TombstoneStream(ctxFor(t, opTimeout), gone, esdb.TombstoneStreamOptions{ExpectedRevision: esdb.Revision(0)}); err != nil {
		t.Fatalf("tombstone: %v", err)
	}
	s.append(t, c, st, esdb.Revision(0), jsonEvent("Sys", 1))

	var all []rec
	for _, e := range s.readAll(t, c, esdb.ReadAllOptions{From: m}, 500) {
		if ours(e.OriginalEvent()) {
			all = append(all, rec{ev: e})
		}
	}
	tomb := "gone@9223372036854775807"
	s.wantTranscript(t, "$all read from the marker", all, alias, "marker@0", "s@0", "$$s@0", "gone@0", tomb, "s@1")
	types := map[string]string{}
	for _, r := range all {
		e := r.ev.OriginalEvent()
		types[e.StreamID] = e.EventType
	}
	if types["$$"+st] != "$metadata" {
		t.Fatalf("metadata write in $all has type %q, want $metadata", types["$$"+st])
	}

	p := s.subAll(t, c, esdb.SubscribeToAllOptions{From: m, Filter: esdb.ExcludeSystemEventsFilter()})
	rs := p.collect(t, subTimeout, ours, s.untilCaughtUp(3))
	s.wantTranscript(t, "$all subscription excluding system events", rs, alias, "s@0", "gone@0", "s@1", "CaughtUp")
}
