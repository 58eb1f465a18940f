package esstore

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"testing"
	"time"
)

func timeNow() time.Time { return time.Now().UTC() }

// openAt opens a store in dir and closes it when the test ends.
func openAt(t testing.TB, dir string, opts Options) *diskStore {
	t.Helper()
	st, err := Open(context.Background(), dir, opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = st.Close() })
	return st.(*diskStore)
}

// newTestStore is a store in a fresh directory. Durability is not what
// most tests check, so they skip the fsync; the crash and reopen tests
// sync.
func newTestStore(t testing.TB) *diskStore {
	t.Helper()
	return openAt(t, t.TempDir(), Options{NoSync: true})
}

// id makes a distinct event id from n.
func id(n uint64) ID {
	var x ID
	x[0] = 0xee
	binary.BigEndian.PutUint64(x[8:], n)
	return x
}

// evs makes one JSON event per id number.
func evs(ids ...uint64) []EventData {
	out := make([]EventData, len(ids))
	for i, n := range ids {
		out[i] = EventData{
			ID:          id(n),
			Type:        "TestEvent",
			ContentType: "application/json",
			Metadata:    []byte(fmt.Sprintf(`{"m":%d}`, n)),
			Data:        []byte(fmt.Sprintf(`{"n":%d}`, n)),
		}
	}
	return out
}

func mustAppend(t testing.TB, s Store, stream string, exp Expected, events []EventData) AppendResult {
	t.Helper()
	res, err := s.Append(context.Background(), stream, exp, events)
	if err != nil {
		t.Fatalf("Append(%q, %v): %v", stream, exp, err)
	}
	return res
}

func readStream(t testing.TB, s Store, stream string, from uint64, forward bool) []RecordedEvent {
	t.Helper()
	var out []RecordedEvent
	if err := s.ReadStream(context.Background(), stream, from, forward, func(e RecordedEvent) bool {
		out = append(out, e)
		return true
	}); err != nil {
		t.Fatalf("ReadStream(%q, %d, %v): %v", stream, from, forward, err)
	}
	return out
}

func readAll(t testing.TB, s Store, from uint64, forward bool) []RecordedEvent {
	t.Helper()
	var out []RecordedEvent
	if err := s.ReadAll(context.Background(), from, forward, func(e RecordedEvent) bool {
		out = append(out, e)
		return true
	}); err != nil {
		t.Fatalf("ReadAll(%d, %v): %v", from, forward, err)
	}
	return out
}

func state(t testing.TB, s Store, stream string) StreamState {
	t.Helper()
	st, err := s.State(context.Background(), stream)
	if err != nil {
		t.Fatalf("State(%q): %v", stream, err)
	}
	return st
}

// idNums returns the id numbers of events, for compact comparisons.
func idNums(events []RecordedEvent) []uint64 {
	out := make([]uint64, len(events))
	for i, e := range events {
		out[i] = binary.BigEndian.Uint64(e.ID[8:])
	}
	return out
}

func positions(events []RecordedEvent) []uint64 {
	out := make([]uint64, len(events))
	for i, e := range events {
		out[i] = e.Position
	}
	return out
}

func revisions(events []RecordedEvent) []uint64 {
	out := make([]uint64, len(events))
	for i, e := range events {
		out[i] = e.Revision
	}
	return out
}

// errKind names the class of an error, for tables.
func errKind(err error) string {
	var wev *WrongExpectedVersionError
	switch {
	case err == nil:
		return ""
	case errors.As(err, &wev):
		return "wev"
	case errors.Is(err, ErrStreamDeleted):
		return "deleted"
	case errors.Is(err, ErrInvalid):
		return "invalid"
	case errors.Is(err, ErrClosed):
		return "closed"
	case errors.Is(err, context.Canceled):
		return "canceled"
	}
	return "other: " + err.Error()
}
