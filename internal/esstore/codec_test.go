package esstore

import (
	"bytes"
	"errors"
	"testing"
	"time"
)

func TestLogRecordRoundTrip(t *testing.T) {
	cases := []EventData{
		{ID: id(1), Type: "T", ContentType: "application/json", Metadata: []byte("m"), Data: []byte("d")},
		{ID: id(2), Type: "", ContentType: "application/octet-stream"},
		{ID: id(3), Type: "x", ContentType: "text/plain", Data: bytes.Repeat([]byte{7}, 70000)},
		{ID: id(4), Type: "y", ContentType: ""},
	}
	created := time.Date(2026, 1, 2, 3, 4, 5, 123456789, time.UTC)
	var dec eventDecoder
	for n := 1; n <= len(cases); n++ {
		rec := appendLogRecordHeader(nil, "stream", created.UnixNano(), 10, n)
		for i := range n {
			rec = appendLogEvent(rec, &cases[i])
		}
		if err := dec.parse(99, rec); err != nil {
			t.Fatalf("%d events: %v", n, err)
		}
		if len(dec.rec.events) != n || dec.rec.last() != 99+uint64(n)-1 {
			t.Fatalf("%d events: decoded %d, last %d", n, len(dec.rec.events), dec.rec.last())
		}
		if c, ok := recordCount(rec); !ok || c != uint64(n) {
			t.Fatalf("%d events: count %d %v", n, c, ok)
		}
		for i := range n {
			e := cases[i]
			got := dec.event(i)
			if got.Stream != "stream" || got.Revision != 10+uint64(i) || got.Position != 99+uint64(i) || got.ID != e.ID || got.Type != e.Type ||
				got.ContentType != e.ContentType || !bytes.Equal(got.Metadata, e.Metadata) || !bytes.Equal(got.Data, e.Data) || !got.Created.Equal(created) {
				t.Errorf("%d events, event %d: %+v", n, i, got)
			}
			if got.Created.Nanosecond() != 123456789 {
				t.Errorf("created lost precision: %v", got.Created)
			}
		}
		if n > 2 {
			continue // the 70 kB event makes cutting every byte slow
		}
		// Truncated or extended records are errors, never panics.
		for cut := range rec {
			if err := dec.parse(1, rec[:cut]); !errors.Is(err, errCorrupt) {
				t.Fatalf("%d events cut at %d: %v", n, cut, err)
			}
		}
		if err := dec.parse(1, append(rec, 0)); !errors.Is(err, errCorrupt) {
			t.Fatalf("%d events extended: %v", n, err)
		}
	}
	// A record claiming more events than it can hold is corrupt.
	if err := dec.parse(1, appendLogRecordHeader(nil, "s", 0, 0, 1<<40)); !errors.Is(err, errCorrupt) {
		t.Fatalf("huge count: %v", err)
	}
}

func TestStreamRecordRoundTrip(t *testing.T) {
	for _, r := range []streamRecord{
		{},
		{sid: 7, exists: true, lastRev: 12, lastPos: 99},
		{sid: 1, exists: true, tombstoned: true, lastRev: 1<<63 - 2, lastPos: 1<<64 - 1},
		{tombstoned: true, lastPos: 3},
	} {
		got, err := decodeStreamRecord(appendStreamRecord(nil, r))
		if err != nil || got != r {
			t.Errorf("%+v: got %+v, %v", r, got, err)
		}
	}
	if _, err := decodeStreamRecord([]byte{1, 2, 3}); !errors.Is(err, errCorrupt) {
		t.Errorf("short record: %v", err)
	}
	bad := appendStreamRecord(nil, streamRecord{})
	bad[8] = 0x80
	if _, err := decodeStreamRecord(bad); !errors.Is(err, errCorrupt) {
		t.Errorf("unknown flags: %v", err)
	}
}

func FuzzDecodeEvent(f *testing.F) {
	e := EventData{ID: id(1), Type: "T", ContentType: "text/x", Metadata: []byte("m"), Data: []byte("d")}
	f.Add(appendLogEvent(appendLogRecordHeader(nil, "s", 5, 1, 1), &e))
	f.Add([]byte{1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01})
	f.Fuzz(func(t *testing.T, b []byte) {
		var dec eventDecoder
		if dec.parse(1, b) == nil { // must not panic
			for i := range dec.rec.events {
				_ = dec.event(i)
			}
		}
	})
}

func TestStateCacheEvictsLeastRecent(t *testing.T) {
	c := newStateCache(2)
	c.put("a", streamRecord{sid: 1})
	c.put("b", streamRecord{sid: 2})
	if _, ok := c.get("a"); !ok { // a is now the most recent
		t.Fatal("a missing")
	}
	c.put("c", streamRecord{sid: 3}) // evicts b
	if _, ok := c.get("b"); ok {
		t.Error("b survived eviction")
	}
	for k, sid := range map[string]uint64{"a": 1, "c": 3} {
		if r, ok := c.get(k); !ok || r.sid != sid {
			t.Errorf("%s: %+v %v", k, r, ok)
		}
	}
	c.put("a", streamRecord{sid: 9}) // update in place
	if r, _ := c.get("a"); r.sid != 9 || c.len() != 2 {
		t.Errorf("update: %+v, len %d", r, c.len())
	}
}
