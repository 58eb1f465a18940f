package esstore

import (
	"bytes"
	"context"
	"errors"
	"math"
	"reflect"
	"slices"
	"testing"
)

// interleaved writes streams "a" (ids 1..5) and "b" (ids 11..13) so that
// their positions interleave: a0 b0 a1 a2 b1 a3 b2 a4.
func interleaved(t *testing.T) *diskStore {
	s := newTestStore(t)
	mustAppend(t, s, "a", NoStream(), evs(1))
	mustAppend(t, s, "b", NoStream(), evs(11))
	mustAppend(t, s, "a", Revision(0), evs(2, 3))
	mustAppend(t, s, "b", Revision(0), evs(12))
	mustAppend(t, s, "a", Revision(2), evs(4))
	mustAppend(t, s, "b", Revision(1), evs(13))
	mustAppend(t, s, "a", Revision(3), evs(5))
	return s
}

func TestReadStream(t *testing.T) {
	s := interleaved(t)
	cases := []struct {
		name    string
		stream  string
		from    uint64
		forward bool
		ids     []uint64
		pos     []uint64
	}{
		{"forward from 0", "a", 0, true, []uint64{1, 2, 3, 4, 5}, []uint64{1, 3, 4, 6, 8}},
		{"forward from middle", "a", 2, true, []uint64{3, 4, 5}, []uint64{4, 6, 8}},
		{"forward from last", "a", 4, true, []uint64{5}, []uint64{8}},
		{"forward past the end", "a", 5, true, []uint64{}, []uint64{}},
		{"forward from max", "a", math.MaxUint64, true, []uint64{}, []uint64{}},
		{"backward from max", "a", math.MaxUint64, false, []uint64{5, 4, 3, 2, 1}, []uint64{8, 6, 4, 3, 1}},
		{"backward past the end", "a", 99, false, []uint64{5, 4, 3, 2, 1}, []uint64{8, 6, 4, 3, 1}},
		{"backward from middle", "a", 2, false, []uint64{3, 2, 1}, []uint64{4, 3, 1}},
		{"backward from 0", "a", 0, false, []uint64{1}, []uint64{1}},
		{"other stream", "b", 0, true, []uint64{11, 12, 13}, []uint64{2, 5, 7}},
		{"never written", "zzz", 0, true, []uint64{}, []uint64{}},
		{"never written backward", "zzz", math.MaxUint64, false, []uint64{}, []uint64{}},
		{"prefix of another name", "", 0, true, nil, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if c.stream == "" {
				err := s.ReadStream(context.Background(), "", 0, true, func(RecordedEvent) bool { return true })
				if !errors.Is(err, ErrInvalid) {
					t.Fatalf("ReadStream of empty name: %v", err)
				}
				return
			}
			got := readStream(t, s, c.stream, c.from, c.forward)
			if ids := idNums(got); !slices.Equal(ids, c.ids) {
				t.Errorf("ids %v, want %v", ids, c.ids)
			}
			if pos := positions(got); !slices.Equal(pos, c.pos) {
				t.Errorf("positions %v, want %v", pos, c.pos)
			}
			for _, e := range got {
				if e.Stream != c.stream {
					t.Errorf("event of stream %q", e.Stream)
				}
			}
		})
	}
}

func TestReadStreamStopsWhenAsked(t *testing.T) {
	s := interleaved(t)
	var n int
	if err := s.ReadStream(context.Background(), "a", 0, true, func(RecordedEvent) bool { n++; return n < 2 }); err != nil || n != 2 {
		t.Fatalf("read %d events, err %v", n, err)
	}
}

// A long stream, written in many appends interleaved with another stream,
// reads in order in both directions.
func TestReadStreamLong(t *testing.T) {
	s := newTestStore(t)
	const n = 20000
	for i := uint64(0); i < n; i += 500 {
		batch := make([]uint64, 500)
		for k := range batch {
			batch[k] = i + uint64(k)
		}
		mustAppend(t, s, "long", Any(), evs(batch...))
		mustAppend(t, s, "other", Any(), evs(1_000_000+i))
	}
	var count, want uint64
	if err := s.ReadStream(context.Background(), "long", 0, true, func(e RecordedEvent) bool {
		if e.Revision != want || idNums([]RecordedEvent{e})[0] != want {
			t.Fatalf("event %d has revision %d", want, e.Revision)
		}
		want++
		count++
		return true
	}); err != nil || count != n {
		t.Fatalf("read %d events, err %v", count, err)
	}
	count = 0
	if err := s.ReadStream(context.Background(), "long", math.MaxUint64, false, func(e RecordedEvent) bool {
		count++
		return e.Revision == n-count
	}); err != nil || count != n {
		t.Fatalf("read %d events backwards, err %v", count, err)
	}
}

func TestReadCancelled(t *testing.T) {
	s := newTestStore(t)
	for i := range uint64(10) {
		mustAppend(t, s, "c", Any(), evs(i*100, i*100+1, i*100+2, i*100+3, i*100+4, i*100+5, i*100+6, i*100+7, i*100+8, i*100+9, i*100+10, i*100+11, i*100+12, i*100+13, i*100+14, i*100+15))
	}
	for _, name := range []string{"stream", "all"} {
		ctx, cancel := context.WithCancel(context.Background())
		n := 0
		fn := func(RecordedEvent) bool {
			n++
			if n == 3 {
				cancel()
			}
			return true
		}
		var err error
		if name == "stream" {
			err = s.ReadStream(ctx, "c", 0, true, fn)
		} else {
			err = s.ReadAll(ctx, 0, true, fn)
		}
		if !errors.Is(err, context.Canceled) || n > 3+checkEvery {
			t.Errorf("%s: read %d events after cancel, err %v", name, n, err)
		}
		if err := s.ReadAll(ctx, 0, true, fn); !errors.Is(err, context.Canceled) {
			t.Errorf("ReadAll with a cancelled context: %v", err)
		}
		if _, err := s.State(ctx, "c"); !errors.Is(err, context.Canceled) {
			t.Errorf("State with a cancelled context: %v", err)
		}
	}
}

func TestReadAll(t *testing.T) {
	s := interleaved(t)
	mustAppend(t, s, "$$a", Any(), evs(100))
	if _, err := s.Tombstone(context.Background(), "b", Any()); err != nil {
		t.Fatal(err)
	}
	// Positions 1..10: 8 events of a and b, the metadata event, the tombstone.
	seq := func(from, to uint64) []uint64 {
		var out []uint64
		for p := from; ; {
			out = append(out, p)
			if p == to {
				return out
			}
			if from < to {
				p++
			} else {
				p--
			}
		}
	}
	cases := []struct {
		name    string
		from    uint64
		forward bool
		want    []uint64
	}{
		{"forward from 0", 0, true, seq(1, 10)},
		{"forward from 1", 1, true, seq(1, 10)},
		{"forward from middle", 6, true, seq(6, 10)},
		{"forward from head", 10, true, []uint64{10}},
		{"forward past head", 11, true, []uint64{}},
		{"forward from max", math.MaxUint64, true, []uint64{}},
		{"backward from max", math.MaxUint64, false, seq(10, 1)},
		{"backward from head", 10, false, seq(10, 1)},
		{"backward from middle", 4, false, seq(4, 1)},
		{"backward from 1", 1, false, []uint64{1}},
		{"backward from 0", 0, false, []uint64{}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			owned := readAll(t, s, c.from, c.forward)
			if got := positions(owned); !slices.Equal(got, c.want) {
				t.Errorf("positions %v, want %v", got, c.want)
			}
			// A borrowed read delivers the same events; copied inside
			// the callback, as its contract asks.
			var borrowed []RecordedEvent
			err := s.ReadAllBorrowed(context.Background(), c.from, c.forward, func(e RecordedEvent) bool {
				e.Metadata, e.Data = bytes.Clone(e.Metadata), bytes.Clone(e.Data)
				borrowed = append(borrowed, e)
				return true
			})
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(borrowed, owned) {
				t.Errorf("borrowed read %+v, owned read %+v", borrowed, owned)
			}
		})
	}
	all := readAll(t, s, 0, true)
	streams := make([]string, len(all))
	for i, e := range all {
		streams[i] = e.Stream
	}
	if want := []string{"a", "b", "a", "a", "b", "a", "b", "a", "$$a", "b"}; !slices.Equal(streams, want) {
		t.Errorf("streams %v, want %v", streams, want)
	}
	if all[9].Type != tombstoneType {
		t.Errorf("last event %+v, want the tombstone", all[9])
	}
	if got := revisions(all[:8]); !slices.Equal(got, []uint64{0, 0, 1, 2, 1, 3, 2, 4}) {
		t.Errorf("revisions %v", got)
	}
}

func TestReadEmptyStore(t *testing.T) {
	s := newTestStore(t)
	if got := readAll(t, s, 0, true); len(got) != 0 {
		t.Fatalf("ReadAll of an empty store: %v", got)
	}
	if got := readAll(t, s, math.MaxUint64, false); len(got) != 0 {
		t.Fatalf("ReadAll backwards of an empty store: %v", got)
	}
	if st := state(t, s, "x"); st != (StreamState{}) {
		t.Fatalf("State of a never-written stream: %+v", st)
	}
	if _, err := s.State(context.Background(), ""); !errors.Is(err, ErrInvalid) {
		t.Fatalf("State of empty name: %v", err)
	}
}
