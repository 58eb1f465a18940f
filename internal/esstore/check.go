package esstore

import (
	"fmt"
	"math"
)

// streamView answers what the expected-revision check needs to know of a
// stream's events, including those written earlier in the same commit
// group.
type streamView interface {
	// idRevision is the revision of the latest event of the stream with
	// this id.
	idRevision(id ID) (rev uint64, ok bool, err error)
	// eventAt is the id and position of the stream's event at rev.
	eventAt(rev uint64) (id ID, pos uint64, ok bool, err error)
}

// decision is the outcome of a passing check.
type decision struct {
	idempotent bool   // the events are already there: write nothing
	rev, pos   uint64 // when idempotent: revision and position of the last one
}

// checkExpected applies KurrentDB's expected-revision rules
// (IndexWriter.CheckCommit) to an append of events to a stream in state
// st. A nil error without idempotent means: write the events after the
// stream's last one (or nothing, if there are none).
func checkExpected(stream string, st streamRecord, exp Expected, events []EventData, v streamView) (decision, error) {
	if st.tombstoned {
		return decision{}, fmt.Errorf("esstore: stream %q: %w", stream, ErrStreamDeleted)
	}
	wrong := func() error {
		return &WrongExpectedVersionError{Stream: stream, Expected: exp, Current: st.state()}
	}
	switch exp.Kind {
	case ExpectAny, ExpectStreamExists:
		if exp.Kind == ExpectStreamExists && !st.exists {
			return decision{}, wrong()
		}
		if len(events) == 0 || !st.exists {
			return decision{}, nil
		}
		r, ok, err := v.idRevision(events[0].ID)
		if err != nil || !ok {
			return decision{}, err
		}
		// The first id is there: this is a retry, and it must be one of
		// the whole append, or it is a conflict.
		d, match, err := matchAt(r, events, v)
		if err != nil {
			return decision{}, err
		}
		if !match {
			return decision{}, wrong()
		}
		return d, nil

	case ExpectNoStream, ExpectRevision:
		e := int64(-1)
		if exp.Kind == ExpectRevision {
			if exp.Revision > math.MaxInt64 {
				return decision{}, wrong() // no stream gets that far
			}
			e = int64(exp.Revision)
		}
		cur := st.current()
		switch {
		case e == cur:
			return decision{}, nil
		case e > cur || len(events) == 0:
			return decision{}, wrong()
		}
		d, match, err := matchAt(uint64(e+1), events, v)
		if err != nil {
			return decision{}, err
		}
		if !match {
			return decision{}, wrong()
		}
		return d, nil
	}
	return decision{}, fmt.Errorf("esstore: stream %q: expected kind %d: %w", stream, exp.Kind, ErrInvalid)
}

// matchAt reports whether the stream holds exactly these events' ids at
// revisions start, start+1, ...; if so the decision is an idempotent one
// pointing at the last of them.
func matchAt(start uint64, events []EventData, v streamView) (decision, bool, error) {
	var pos uint64
	for k := range events {
		id, p, ok, err := v.eventAt(start + uint64(k))
		if err != nil || !ok || id != events[k].ID {
			return decision{}, false, err
		}
		pos = p
	}
	return decision{idempotent: true, rev: start + uint64(len(events)) - 1, pos: pos}, true, nil
}
