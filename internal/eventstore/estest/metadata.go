package estest

import (
	"reflect"
	"testing"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
)

func (s *suite) setMeta(t *testing.T, c *esdb.Client, st string, exp esdb.ExpectedRevision, m esdb.StreamMetadata) *esdb.WriteResult {
	t.Helper()
	wr, err := c.SetStreamMetadata(ctxFor(t, opTimeout), st, esdb.AppendToStreamOptions{ExpectedRevision: exp}, m)
	if err != nil {
		t.Fatalf("set metadata of %s: %v", st, err)
	}
	return wr
}

func (s *suite) getMeta(t *testing.T, c *esdb.Client, st string) esdb.StreamMetadata {
	t.Helper()
	m, err := c.GetStreamMetadata(ctxFor(t, opTimeout), st, esdb.ReadStreamOptions{})
	if err != nil {
		t.Fatalf("get metadata of %s: %v", st, err)
	}
	return *m
}

func metaJSON(m esdb.StreamMetadata) string {
	b, err := m.ToJson()
	if err != nil {
		return err.Error()
	}
	return string(b)
}

// metadataRoundTrip: GetStreamMetadata returns what SetStreamMetadata
// wrote, custom properties included; a second write replaces the first
// (the metastream keeps only its last event); the metastream takes expected
// revisions like any stream.
func (s *suite) metadataRoundTrip(t *testing.T) {
	c := s.client(t)
	st := s.stream("meta")
	s.append(t, c, st, esdb.NoStream{}, jsonEvent("Meta", 0))

	_, err := c.GetStreamMetadata(ctxFor(t, opTimeout), st, esdb.ReadStreamOptions{})
	wantCode(t, "metadata of a stream that has none (v4.2.0 reads the missing metastream and returns its not-found)", err, esdb.ErrorCodeResourceNotFound)

	var m1 esdb.StreamMetadata
	m1.SetMaxCount(50)
	m1.SetMaxAge(time.Hour)
	m1.SetCacheControl(30 * time.Second)
	m1.AddCustomProperty("owner", "conformance")
	m1.AddCustomProperty("n", float64(5))
	m1.AddCustomProperty("flag", true)
	m1.AddCustomProperty("nested", map[string]interface{}{"k": "v", "list": []interface{}{"x", float64(1)}})
	if wr := s.setMeta(t, c, st, esdb.NoStream{}, m1); wr.NextExpectedVersion != 0 {
		t.Fatalf("first metadata write: NextExpectedVersion %d, want 0", wr.NextExpectedVersion)
	}
	if got := s.getMeta(t, c, st); !reflect.DeepEqual(got, m1) {
		t.Fatalf("metadata read back %s, want %s", metaJSON(got), metaJSON(m1))
	}

	var m2 esdb.StreamMetadata
	m2.SetTruncateBefore(0)
	m2.AddCustomProperty("v", float64(2))
	if wr := s.setMeta(t, c, st, esdb.Revision(0), m2); wr.NextExpectedVersion != 1 {
		t.Fatalf("second metadata write: NextExpectedVersion %d, want 1", wr.NextExpectedVersion)
	}
	if got := s.getMeta(t, c, st); !reflect.DeepEqual(got, m2) {
		t.Fatalf("metadata after a second write %s, want exactly %s (replaced, not merged; GetStreamMetadata reads the metastream forwards from Start, count 1, so only its last event may be left)", metaJSON(got), metaJSON(m2))
	}
	_, err = c.SetStreamMetadata(ctxFor(t, opTimeout), st, esdb.AppendToStreamOptions{ExpectedRevision: esdb.Revision(0)}, m1)
	wantWrongExpected(t, "metadata write at a stale revision", err, "0", "1")

	// Metadata may precede the stream; it does not create it.
	st2 := s.stream("metafirst")
	var m3 esdb.StreamMetadata
	m3.AddCustomProperty("pre", "set")
	s.setMeta(t, c, st2, esdb.Any{}, m3)
	if got := s.getMeta(t, c, st2); !reflect.DeepEqual(got, m3) {
		t.Fatalf("metadata of a stream without events %s, want %s", metaJSON(got), metaJSON(m3))
	}
	_, err = tryReadStream(ctxFor(t, opTimeout), c, st2, esdb.ReadStreamOptions{}, 10)
	wantCode(t, "read of a stream that has only metadata", err, esdb.ErrorCodeResourceNotFound)
}

// allHasEvery checks $all still holds every event of st from its first
// position: $all reads are not filtered by stream metadata.
func (s *suite) allHasEvery(t *testing.T, c *esdb.Client, st string, n uint64, from esdb.Position) {
	t.Helper()
	got := only(s.readAll(t, c, esdb.ReadAllOptions{From: from}, 500), st)
	wantRevisions(t, "$all despite the stream's metadata", got, st, seq(0, n-1)...)
}

// metadataMaxCount: reads return only the last $maxCount events.
func (s *suite) metadataMaxCount(t *testing.T) {
	c := s.client(t)
	st := s.stream("maxcount")
	s.append(t, c, st, esdb.NoStream{}, jsonEvents("MaxCount", 0, 10)...)
	first := s.readStream(t, c, st, esdb.ReadStreamOptions{}, 1)[0].OriginalEvent().Position
	var m esdb.StreamMetadata
	m.SetMaxCount(3)
	s.setMeta(t, c, st, esdb.Any{}, m)

	wantRevisions(t, "forwards from Start with $maxCount 3", s.readStream(t, c, st, esdb.ReadStreamOptions{}, 100), st, 7, 8, 9)
	wantRevisions(t, "backwards from End with $maxCount 3", s.readStream(t, c, st, esdb.ReadStreamOptions{Direction: esdb.Backwards, From: esdb.End{}}, 100), st, 9, 8, 7)
	s.allHasEvery(t, c, st, 10, first)

	p := s.subStream(t, c, st, esdb.Start{})
	s.wantTranscript(t, "catch-up subscription from Start with $maxCount 3", p.collect(t, subTimeout, nil, s.untilCaughtUp(3)), map[string]string{st: "s"}, "s@7", "s@8", "s@9", "CaughtUp")
}

// metadataMaxAge: events older than $maxAge disappear from reads.
func (s *suite) metadataMaxAge(t *testing.T) {
	c := s.client(t)
	st := s.stream("maxage")
	s.append(t, c, st, esdb.NoStream{}, jsonEvents("MaxAge", 0, 3)...)
	first := s.readStream(t, c, st, esdb.ReadStreamOptions{}, 1)[0].OriginalEvent().Position
	time.Sleep(1500 * time.Millisecond)
	s.append(t, c, st, esdb.Revision(2), jsonEvents("MaxAge", 3, 2)...)
	var m esdb.StreamMetadata
	m.SetMaxAge(time.Second)
	s.setMeta(t, c, st, esdb.Any{}, m)

	wantRevisions(t, "forwards with $maxAge 1 s", s.readStream(t, c, st, esdb.ReadStreamOptions{}, 100), st, 3, 4)
	wantRevisions(t, "backwards with $maxAge 1 s", s.readStream(t, c, st, esdb.ReadStreamOptions{Direction: esdb.Backwards, From: esdb.End{}}, 100), st, 4, 3)
	s.allHasEvery(t, c, st, 5, first)

	time.Sleep(1200 * time.Millisecond)
	got, err := tryReadStream(ctxFor(t, opTimeout), c, st, esdb.ReadStreamOptions{}, 100)
	if err != nil {
		t.Fatalf("read once every event is older than $maxAge: %v; want an empty read (the stream exists)", err)
	}
	wantRevisions(t, "read once every event is older than $maxAge", got, st)
}

// metadataTruncateBefore: reads start at $tb.
func (s *suite) metadataTruncateBefore(t *testing.T) {
	c := s.client(t)
	st := s.stream("tb")
	s.append(t, c, st, esdb.NoStream{}, jsonEvents("TB", 0, 10)...)
	first := s.readStream(t, c, st, esdb.ReadStreamOptions{}, 1)[0].OriginalEvent().Position
	var m esdb.StreamMetadata
	m.SetTruncateBefore(4)
	s.setMeta(t, c, st, esdb.Any{}, m)

	wantRevisions(t, "forwards from Start with $tb 4", s.readStream(t, c, st, esdb.ReadStreamOptions{}, 100), st, seq(4, 9)...)
	wantRevisions(t, "forwards from revision 2 with $tb 4", s.readStream(t, c, st, esdb.ReadStreamOptions{From: esdb.Revision(2)}, 100), st, seq(4, 9)...)
	wantRevisions(t, "backwards from End with $tb 4", s.readStream(t, c, st, esdb.ReadStreamOptions{Direction: esdb.Backwards, From: esdb.End{}}, 100), st, seq(9, 4)...)
	s.allHasEvery(t, c, st, 10, first)
}
