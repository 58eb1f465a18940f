package esstore

import (
	"bytes"
	"errors"
	"testing"
	"time"
)

func TestEventRecordRoundTrip(t *testing.T) {
	cases := []EventData{
		{ID: id(1), Type: "T", ContentType: "application/json", Metadata: []byte("m"), Data: []byte("d")},
		{ID: id(2), Type: "", ContentType: "application/octet-stream"},
		{ID: id(3), Type: "x", ContentType: "text/plain", Data: bytes.Repeat([]byte{7}, 70000)},
		{ID: id(4), Type: "y", ContentType: ""},
	}
	created := time.Date(2026, 1, 2, 3, 4, 5, 123456789, time.UTC)
	var dec eventDecoder
	for i, e := range cases {
		rec := appendEventRecord(nil, "stream", uint64(i), &e, created.UnixNano())
		got, err := dec.decode(99, rec)
		if err != nil {
			t.Fatalf("case %d: %v", i, err)
		}
		if got.Stream != "stream" || got.Revision != uint64(i) || got.Position != 99 || got.ID != e.ID || got.Type != e.Type ||
			got.ContentType != e.ContentType || !bytes.Equal(got.Metadata, e.Metadata) || !bytes.Equal(got.Data, e.Data) || !got.Created.Equal(created) {
			t.Errorf("case %d: %+v", i, got)
		}
		if got.Created.Nanosecond() != 123456789 {
			t.Errorf("created lost precision: %v", got.Created)
		}
		// Truncated or extended records are errors, never panics.
		for cut := range rec {
			if _, err := dec.decode(1, rec[:cut]); !errors.Is(err, errCorrupt) {
				t.Fatalf("case %d cut at %d: %v", i, cut, err)
			}
		}
		if _, err := dec.decode(1, append(rec, 0)); !errors.Is(err, errCorrupt) {
			t.Fatalf("case %d extended: %v", i, err)
		}
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
	f.Add(appendEventRecord(nil, "s", 1, &e, 5))
	f.Add([]byte{1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01})
	f.Fuzz(func(t *testing.T, b []byte) {
		var dec eventDecoder
		_, _ = dec.decode(1, b) // must not panic
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
