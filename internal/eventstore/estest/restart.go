package estest

import (
	"context"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
)

// restart: subscriptions spanning a server restart drop with an error when
// the server stops; resubscribing after the restart from the last received
// revision (stream) or from an earlier checkpoint ($all) delivers every
// event appended before and after it exactly once; and every acknowledged
// event survived, at the same revisions and positions.
func (s *suite) restart(t *testing.T) {
	if s.b.Restart == nil {
		t.Skipf("cannot restart this event store: %s", s.b.NoRestart)
	}
	st := s.stream("restart")
	c1 := s.client(t)
	m := s.marker(t, c1)
	mine := func(e *esdb.RecordedEvent) bool { return e.StreamID == st }
	appended := jsonEvents("Restart", 0, 30)
	s.append(t, c1, st, esdb.NoStream{}, appended...)

	onStream := s.subStream(t, c1, st, esdb.Start{})
	onAll := s.subAll(t, c1, esdb.SubscribeToAllOptions{From: m, Filter: &esdb.SubscriptionFilter{Type: esdb.StreamFilterType, Prefixes: []string{st}}})
	var got = map[string][]rec{}
	got["stream"] = onStream.collect(t, subTimeout, mine, s.untilCaughtUp(30))
	got["$all"] = onAll.collect(t, subTimeout, mine, s.untilCaughtUp(30))

	// Ten more, then the restart without waiting for their delivery.
	for i := 30; i < 40; i++ {
		ev := jsonEvent("Restart", i)
		s.append(t, c1, st, esdb.Revision(uint64(i-1)), ev)
		appended = append(appended, ev)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	began := time.Now()
	if err := s.b.Restart(ctx); err != nil {
		t.Fatalf("restart %s: %v", s.b.Name, err)
	}
	t.Logf("restart took %v", time.Since(began))

	for name, p := range map[string]*sub{"stream": onStream, "$all": onAll} {
		rs := p.collect(t, 30*time.Second, mine, untilDropped)
		drop := rs[len(rs)-1]
		if drop.err == nil || errors.Is(drop.err, io.EOF) {
			t.Fatalf("%s subscription ended with %v when the server stopped; want an error (a clean end of stream tells a client the subscription finished, and it never does)", name, drop.err)
		}
		t.Logf("%s subscription dropped: %v", name, drop.err)
		got[name] = append(got[name], rs[:len(rs)-1]...)
	}
	// c1 saw the connection break; a fresh client, as a resubscribing
	// product would be wise to use (see readyClient).
	c1.Close()
	c2 := s.readyClient(t, 90*time.Second)

	back := s.readStream(t, c2, st, esdb.ReadStreamOptions{}, 1000)
	wantRevisions(t, "stream read after the restart", back, st, seq(0, 39)...)
	for i, e := range back {
		if e.OriginalEvent().EventID != appended[i].EventID {
			t.Fatalf("after the restart revision %d is %s, want %s", i, describe(e.OriginalEvent()), appended[i].EventID)
		}
	}
	for i := 40; i < 55; i++ {
		ev := jsonEvent("Restart", i)
		s.append(t, c2, st, esdb.Revision(uint64(i-1)), ev)
		appended = append(appended, ev)
	}

	lastEvent := func(rs []rec) *esdb.RecordedEvent {
		for i := len(rs) - 1; i >= 0; i-- {
			if rs[i].ev != nil {
				return rs[i].ev.OriginalEvent()
			}
		}
		return nil
	}
	// The stream consumer resumes from the last event it received; the $all
	// consumer from a checkpoint that lags (it had processed only 25
	// events), so its catch-up after the restart crosses events written
	// before it.
	ls := lastEvent(got["stream"])
	got["$all"] = firstEvents(got["$all"], 25)
	la := lastEvent(got["$all"])
	t.Logf("resuming after the restart: stream from %s (last received), $all from %s (lagging checkpoint)", describe(ls), describe(la))
	resStream := s.subStream(t, c2, st, esdb.Revision(ls.EventNumber))
	resAll := s.subAll(t, c2, esdb.SubscribeToAllOptions{From: la.Position, Filter: &esdb.SubscriptionFilter{Type: esdb.StreamFilterType, Prefixes: []string{st}}})
	for name, p := range map[string]*sub{"stream": resStream, "$all": resAll} {
		have := countEvents(got[name])
		got[name] = append(got[name], p.collect(t, subTimeout, mine, s.untilCaughtUp(55-have))...)
	}
	for i := 55; i < 60; i++ {
		ev := jsonEvent("Restart", i)
		s.append(t, c2, st, esdb.Revision(uint64(i-1)), ev)
		appended = append(appended, ev)
	}
	for name, p := range map[string]*sub{"stream": resStream, "$all": resAll} {
		got[name] = append(got[name], p.collect(t, subTimeout, mine, untilEvents(5))...)
		next := uint64(0)
		for _, r := range got[name] {
			if r.ev == nil {
				continue
			}
			e := r.ev.OriginalEvent()
			if e.EventNumber != next || e.EventID != appended[next].EventID {
				t.Fatalf("%s subscription across the restart: got %s as event #%d, want revision %d exactly once, in order", name, describe(e), next, next)
			}
			next++
		}
		if next != 60 {
			t.Fatalf("%s subscription across the restart: %d events, want 60", name, next)
		}
	}
}

// firstEvents keeps the records up to and including the n-th event.
func firstEvents(rs []rec, n int) []rec {
	seen := 0
	for i, r := range rs {
		if r.ev != nil {
			seen++
			if seen == n {
				return rs[:i+1]
			}
		}
	}
	return rs
}
