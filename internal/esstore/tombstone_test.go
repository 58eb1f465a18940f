package esstore

import (
	"context"
	"math"
	"slices"
	"testing"
)

func TestTombstoneExpectations(t *testing.T) {
	cases := []struct {
		name    string
		setup   []uint64 // ids appended to "t" first
		exp     Expected
		wantErr string
	}{
		{name: "any/never written", exp: Any()},
		{name: "any/with events", setup: []uint64{1, 2}, exp: Any()},
		{name: "no stream/never written", exp: NoStream()},
		{name: "no stream/with events", setup: []uint64{1}, exp: NoStream(), wantErr: "wev"},
		{name: "stream exists/never written", exp: StreamExists(), wantErr: "wev"},
		{name: "stream exists/with events", setup: []uint64{1}, exp: StreamExists()},
		{name: "revision/current", setup: []uint64{1, 2}, exp: Revision(1)},
		{name: "revision/behind", setup: []uint64{1, 2}, exp: Revision(0), wantErr: "wev"},
		{name: "revision/ahead", setup: []uint64{1, 2}, exp: Revision(2), wantErr: "wev"},
		{name: "revision/never written", exp: Revision(0), wantErr: "wev"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := newTestStore(t)
			if len(c.setup) > 0 {
				mustAppend(t, s, "t", NoStream(), evs(c.setup...))
			}
			before := state(t, s, "t")
			head, _ := s.Head()
			pos, err := s.Tombstone(context.Background(), "t", c.exp)
			if got := errKind(err); got != c.wantErr {
				t.Fatalf("Tombstone: %v, want %q", err, c.wantErr)
			}
			after := state(t, s, "t")
			if err != nil {
				if after != before {
					t.Fatalf("failed tombstone changed the state: %+v -> %+v", before, after)
				}
				return
			}
			if pos != head+1 {
				t.Errorf("tombstone position %d, want %d", pos, head+1)
			}
			if want := (StreamState{Exists: before.Exists, Revision: before.Revision, Tombstoned: true}); after != want {
				t.Errorf("state %+v, want %+v", after, want)
			}
		})
	}
}

func TestTombstoneEffects(t *testing.T) {
	s := newTestStore(t)
	ctx := context.Background()
	mustAppend(t, s, "t", NoStream(), evs(1, 2))
	mustAppend(t, s, "$$t", Any(), evs(3))
	pos, err := s.Tombstone(ctx, "t", Any())
	if err != nil || pos != 4 {
		t.Fatalf("Tombstone = %d, %v", pos, err)
	}

	// In $all, as KurrentDB writes it.
	all := readAll(t, s, 0, true)
	tomb := all[len(all)-1]
	if tomb.Position != 4 || tomb.Stream != "t" || tomb.Type != "$streamDeleted" || tomb.Revision != math.MaxInt64 ||
		tomb.ContentType != "application/octet-stream" || len(tomb.Data) != 0 || tomb.ID == (ID{}) {
		t.Errorf("tombstone record %+v", tomb)
	}
	// Not in the stream, whose events stay readable for the caller to judge.
	if got := revisions(readStream(t, s, "t", 0, true)); !slices.Equal(got, []uint64{0, 1}) {
		t.Errorf("stream revisions forward %v", got)
	}
	if got := revisions(readStream(t, s, "t", math.MaxUint64, false)); !slices.Equal(got, []uint64{1, 0}) {
		t.Errorf("stream revisions backward %v", got)
	}
	// Every append is refused, whatever it expects; so is a second tombstone.
	for _, exp := range []Expected{Any(), NoStream(), StreamExists(), Revision(1), Revision(2)} {
		if _, err := s.Append(ctx, "t", exp, evs(9)); errKind(err) != "deleted" {
			t.Errorf("Append(%v) after tombstone: %v", exp, err)
		}
		if _, err := s.Append(ctx, "t", exp, nil); errKind(err) != "deleted" {
			t.Errorf("empty Append(%v) after tombstone: %v", exp, err)
		}
		if _, err := s.Tombstone(ctx, "t", exp); errKind(err) != "deleted" {
			t.Errorf("Tombstone(%v) twice: %v", exp, err)
		}
	}
	// The metadata stream is a stream of its own.
	mustAppend(t, s, "$$t", Any(), evs(5))
	if h, _ := s.Head(); h != 5 {
		t.Errorf("head %d, want 5", h)
	}
	if st := state(t, s, "t"); st != (StreamState{Exists: true, Revision: 1, Tombstoned: true}) {
		t.Errorf("state %+v", st)
	}
}

func TestTombstoneInvalid(t *testing.T) {
	s := newTestStore(t)
	if _, err := s.Tombstone(context.Background(), "", Any()); errKind(err) != "invalid" {
		t.Fatalf("Tombstone of empty name: %v", err)
	}
}
