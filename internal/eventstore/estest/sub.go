package estest

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
)

// rec is one thing a subscription delivered.
type rec struct {
	ev         *esdb.ResolvedEvent
	caughtUp   bool
	checkpoint *esdb.Position
	dropped    bool
	err        error // with dropped
}

func (r rec) String() string {
	switch {
	case r.ev != nil:
		e := r.ev.OriginalEvent()
		return fmt.Sprintf("%s@%d", e.StreamID, e.EventNumber)
	case r.caughtUp:
		return "CaughtUp"
	case r.checkpoint != nil:
		return "Checkpoint(" + posString(*r.checkpoint) + ")"
	case r.dropped:
		return fmt.Sprintf("Dropped(%v)", r.err)
	}
	return "?"
}

// sub pumps one esdb.Subscription into a channel so a case can wait with a
// timeout; it is closed, and its goroutine gone, when the case ends.
type sub struct {
	name string
	all  bool // $all: positions must increase; stream: revisions must
	s    *esdb.Subscription
	ch   chan rec
	stop chan struct{}
	done chan struct{}
	once sync.Once
	seen int // events seen, kept or not
	last *esdb.RecordedEvent
}

func (s *suite) subStream(t *testing.T, c *esdb.Client, stream string, from esdb.StreamPosition) *sub {
	t.Helper()
	es, err := c.SubscribeToStream(ctxFor(t, 5*time.Minute), stream, esdb.SubscribeToStreamOptions{From: from})
	if err != nil {
		t.Fatalf("subscribe to %s from %s: %v", stream, readDesc(esdb.Forwards, from, 0), err)
	}
	return pump(t, "stream "+stream, false, es)
}

func (s *suite) subAll(t *testing.T, c *esdb.Client, opts esdb.SubscribeToAllOptions) *sub {
	t.Helper()
	es, err := c.SubscribeToAll(ctxFor(t, 5*time.Minute), opts)
	if err != nil {
		t.Fatalf("subscribe to $all from %s: %v", readDesc(esdb.Forwards, opts.From, 0), err)
	}
	name := "$all"
	if opts.Filter != nil {
		name = fmt.Sprintf("$all filtered %+v", *opts.Filter)
	}
	return pump(t, name, true, es)
}

func pump(t *testing.T, name string, all bool, es *esdb.Subscription) *sub {
	p := &sub{name: name, all: all, s: es, ch: make(chan rec, 256), stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(p.done)
		defer close(p.ch)
		for {
			se := es.Recv()
			var r rec
			switch {
			case se.EventAppeared != nil:
				r.ev = se.EventAppeared
			case se.CaughtUp != nil:
				r.caughtUp = true
			case se.CheckPointReached != nil:
				cp := *se.CheckPointReached
				r.checkpoint = &cp
			case se.SubscriptionDropped != nil:
				r.dropped, r.err = true, se.SubscriptionDropped.Error
			default:
				continue // FellBehind: not sent by KurrentDB to clients
			}
			select {
			case p.ch <- r:
			case <-p.stop:
				return
			}
			if r.dropped {
				return
			}
		}
	}()
	t.Cleanup(p.close)
	return p
}

// close drops the subscription and waits for its goroutine.
func (p *sub) close() {
	p.once.Do(func() {
		p.s.Close()
		close(p.stop)
		<-p.done
	})
}

// collect reads what the subscription delivers until done accepts the
// records collected by this call, failing after timeout. Events for which
// keep is false are checked for order, then left out (keep nil keeps all).
// A drop ends the collection; done must accept it or the case fails.
func (p *sub) collect(t *testing.T, timeout time.Duration, keep func(*esdb.RecordedEvent) bool, done func([]rec) bool) []rec {
	t.Helper()
	var got []rec
	if done(got) {
		return got
	}
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for {
		select {
		case r, ok := <-p.ch:
			if !ok {
				t.Fatalf("%s: ended before %s; got %s", p.name, "the expected deliveries", summary(got))
			}
			if r.ev != nil {
				e := r.ev.OriginalEvent()
				if e == nil {
					t.Fatalf("%s: EventAppeared without an event", p.name)
				}
				p.checkOrder(t, e)
				p.seen++
				if keep != nil && !keep(e) {
					continue
				}
			}
			got = append(got, r)
			if done(got) {
				return got
			}
			if r.dropped {
				t.Fatalf("%s: dropped (%v) before the expected deliveries; got %s", p.name, r.err, summary(got))
			}
		case <-timer.C:
			t.Fatalf("%s: timed out after %v; got %s", p.name, timeout, summary(got))
		}
	}
}

// quiet checks nothing more is delivered (kept by keep) for d.
func (p *sub) quiet(t *testing.T, d time.Duration, keep func(*esdb.RecordedEvent) bool) {
	t.Helper()
	timer := time.NewTimer(d)
	defer timer.Stop()
	for {
		select {
		case r, ok := <-p.ch:
			if !ok {
				return
			}
			if r.ev != nil {
				p.checkOrder(t, r.ev.OriginalEvent())
				if keep != nil && !keep(r.ev.OriginalEvent()) {
					continue
				}
			}
			if r.checkpoint != nil {
				continue
			}
			t.Fatalf("%s: unexpected delivery %s", p.name, r)
		case <-timer.C:
			return
		}
	}
}

func (p *sub) checkOrder(t *testing.T, e *esdb.RecordedEvent) {
	t.Helper()
	if p.last != nil {
		if p.all && !posLess(p.last.Position, e.Position) {
			t.Fatalf("%s: position went from %s (%s) to %s (%s)", p.name, posString(p.last.Position), describe(p.last), posString(e.Position), describe(e))
		}
		if !p.all && e.EventNumber <= p.last.EventNumber {
			t.Fatalf("%s: revision went from %d to %d", p.name, p.last.EventNumber, e.EventNumber)
		}
	}
	p.last = e
}

func summary(rs []rec) string {
	const max = 40
	var b strings.Builder
	fmt.Fprintf(&b, "%d records [", len(rs))
	start := 0
	if len(rs) > max {
		start = len(rs) - max
		b.WriteString("… ")
	}
	for i, r := range rs[start:] {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(r.String())
	}
	b.WriteByte(']')
	return b.String()
}

// ---- done conditions and checks --------------------------------------------

func countEvents(rs []rec) int {
	n := 0
	for _, r := range rs {
		if r.ev != nil {
			n++
		}
	}
	return n
}

func hasCaughtUp(rs []rec) bool {
	for _, r := range rs {
		if r.caughtUp {
			return true
		}
	}
	return false
}

// untilEvents: n events collected.
func untilEvents(n int) func([]rec) bool {
	return func(rs []rec) bool { return countEvents(rs) >= n }
}

// untilCaughtUp: n events and, when the server sends it, CaughtUp.
func (s *suite) untilCaughtUp(n int) func([]rec) bool {
	return func(rs []rec) bool {
		return countEvents(rs) >= n && (!s.caughtUp || hasCaughtUp(rs))
	}
}

func untilDropped(rs []rec) bool {
	return len(rs) > 0 && rs[len(rs)-1].dropped
}

// transcript renders events (with aliased stream names), CaughtUp and,
// with checkpoints, checkpoints.
func transcript(rs []rec, alias map[string]string, checkpoints bool) []string {
	var out []string
	for _, r := range rs {
		switch {
		case r.ev != nil:
			e := r.ev.OriginalEvent()
			name := e.StreamID
			if a, ok := alias[name]; ok {
				name = a
			}
			out = append(out, fmt.Sprintf("%s@%d", name, e.EventNumber))
		case r.checkpoint != nil:
			if checkpoints {
				out = append(out, "Checkpoint")
			}
		default:
			out = append(out, r.String())
		}
	}
	return out
}

func (s *suite) wantTranscript(t *testing.T, what string, rs []rec, alias map[string]string, want ...string) {
	t.Helper()
	if !s.caughtUp {
		var w []string
		for _, x := range want {
			if x != "CaughtUp" {
				w = append(w, x)
			}
		}
		want = w
	}
	got := transcript(rs, alias, false)
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("%s:\n got  %v\n want %v", what, got, want)
	}
}

func evs(name string, revs ...uint64) []string {
	out := make([]string, len(revs))
	for i, r := range revs {
		out[i] = fmt.Sprintf("%s@%d", name, r)
	}
	return out
}

func cat(parts ...[]string) []string {
	var out []string
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

// checkCheckpoints checks what makes a checkpoint a safe resume point:
// checkpoints never go back, are at or after the start, every event
// delivered before a checkpoint is at or before it, and every event
// delivered after it is strictly after it. It returns how many checkpoints
// came before the first CaughtUp and after it.
func checkCheckpoints(t *testing.T, what string, rs []rec, start esdb.Position) (before, after int) {
	t.Helper()
	var lastCP *esdb.Position
	var lastEv *esdb.RecordedEvent
	live := false
	for i, r := range rs {
		switch {
		case r.caughtUp:
			live = true
		case r.checkpoint != nil:
			cp := *r.checkpoint
			if cp.Commit == 0 {
				t.Fatalf("%s: checkpoint #%d at %s has commit 0", what, i, posString(cp))
			}
			if posLess(cp, start) {
				t.Fatalf("%s: checkpoint %s before the subscription's start %s", what, posString(cp), posString(start))
			}
			if lastCP != nil && posLess(cp, *lastCP) {
				t.Fatalf("%s: checkpoint went back from %s to %s", what, posString(*lastCP), posString(cp))
			}
			if lastEv != nil && posLess(cp, lastEv.Position) {
				t.Fatalf("%s: checkpoint %s is before the already delivered %s", what, posString(cp), describe(lastEv))
			}
			lastCP = &cp
			if live {
				after++
			} else {
				before++
			}
		case r.ev != nil:
			e := r.ev.OriginalEvent()
			if lastCP != nil && !posLess(*lastCP, e.Position) {
				t.Fatalf("%s: %s delivered after checkpoint %s: resuming from that checkpoint would skip it", what, describe(e), posString(*lastCP))
			}
			lastEv = e
		}
	}
	return before, after
}
