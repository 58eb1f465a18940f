package estest

import (
	"math"
	"testing"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
)

// deleteSoft: a soft-deleted stream reads as missing; a later append
// undeletes it, its revisions continuing where they stopped, and reads then
// return only the new events.
func (s *suite) deleteSoft(t *testing.T) {
	c := s.client(t)
	ctx := ctxFor(t, opTimeout)
	st := s.stream("del")
	s.append(t, c, st, esdb.NoStream{}, jsonEvents("Del", 0, 2)...)

	_, err := c.DeleteStream(ctx, st, esdb.DeleteStreamOptions{ExpectedRevision: esdb.Revision(0)})
	wantDeleteWrongExpected(t, "delete at revision 0 when the stream is at 1", err)

	dr, err := c.DeleteStream(ctx, st, esdb.DeleteStreamOptions{ExpectedRevision: esdb.Revision(1)})
	if err != nil {
		t.Fatalf("delete at revision 1: %v", err)
	}
	if dr.Position.Commit == 0 {
		t.Fatalf("delete result position %s, want commit > 0", posString(dr.Position))
	}
	for _, opts := range []esdb.ReadStreamOptions{{}, {Direction: esdb.Backwards, From: esdb.End{}}} {
		_, err := tryReadStream(ctx, c, st, opts, 10)
		wantCode(t, "read soft-deleted stream "+readDesc(opts.Direction, opts.From, 10), err, esdb.ErrorCodeResourceNotFound)
	}
	meta, err := c.GetStreamMetadata(ctx, st, esdb.ReadStreamOptions{})
	if err != nil {
		t.Fatalf("metadata of the soft-deleted stream: %v", err)
	}
	if tb := meta.TruncateBefore(); tb == nil || *tb < math.MaxInt64 {
		t.Fatalf("metadata of the soft-deleted stream: $tb %v, want the deleted-stream marker %d", tb, int64(math.MaxInt64))
	}

	again := jsonEvents("Del", 100, 3)
	wr := s.append(t, c, st, esdb.Any{}, again...)
	if wr.NextExpectedVersion != 4 {
		t.Fatalf("append after soft delete: NextExpectedVersion %d, want 4 (revisions continue 2..4)", wr.NextExpectedVersion)
	}
	fw := s.readStream(t, c, st, esdb.ReadStreamOptions{}, 100)
	wantRevisions(t, "read after undelete", fw, st, 2, 3, 4)
	for i, e := range fw {
		if e.OriginalEvent().EventID != again[i].EventID {
			t.Fatalf("read after undelete: revision %d is %s, want %s", 2+i, describe(e.OriginalEvent()), again[i].EventID)
		}
	}
	wantRevisions(t, "read backwards after undelete", s.readStream(t, c, st, esdb.ReadStreamOptions{Direction: esdb.Backwards, From: esdb.End{}}, 100), st, 4, 3, 2)
	meta, err = c.GetStreamMetadata(ctx, st, esdb.ReadStreamOptions{})
	if err != nil {
		t.Fatalf("metadata after undelete: %v", err)
	}
	if tb := meta.TruncateBefore(); tb == nil || *tb != 2 {
		t.Fatalf("metadata after undelete: $tb %v, want 2 (the first revision after the delete)", tb)
	}
}

// deleteSoftMissing: KurrentDB refuses to soft-delete a stream that never
// existed, whatever the expected revision, as a wrong expected version.
func (s *suite) deleteSoftMissing(t *testing.T) {
	c := s.client(t)
	_, err := c.DeleteStream(ctxFor(t, opTimeout), s.stream("delnone"), esdb.DeleteStreamOptions{ExpectedRevision: esdb.Any{}})
	wantDeleteWrongExpected(t, "soft delete of a stream that never existed", err)
}

// tombstone: reads, appends, deletes and a second tombstone of a tombstoned
// stream fail with StreamDeleted.
func (s *suite) tombstone(t *testing.T) {
	c := s.client(t)
	ctx := ctxFor(t, opTimeout)
	st := s.stream("tomb")
	s.append(t, c, st, esdb.NoStream{}, jsonEvents("Tomb", 0, 2)...)

	_, err := c.TombstoneStream(ctx, st, esdb.TombstoneStreamOptions{ExpectedRevision: esdb.Revision(0)})
	wantDeleteWrongExpected(t, "tombstone at revision 0 when the stream is at 1", err)

	dr, err := c.TombstoneStream(ctx, st, esdb.TombstoneStreamOptions{ExpectedRevision: esdb.Revision(1)})
	if err != nil {
		t.Fatalf("tombstone at revision 1: %v", err)
	}
	if dr.Position.Commit == 0 {
		t.Fatalf("tombstone result position %s, want commit > 0", posString(dr.Position))
	}
	s.wantTombstoned(t, c, st, 1)
}

func (s *suite) wantTombstoned(t *testing.T, c *esdb.Client, st string, last uint64) {
	t.Helper()
	ctx := ctxFor(t, opTimeout)
	for _, opts := range []esdb.ReadStreamOptions{{}, {Direction: esdb.Backwards, From: esdb.End{}}} {
		_, err := tryReadStream(ctx, c, st, opts, 10)
		wantCode(t, "read tombstoned stream "+readDesc(opts.Direction, opts.From, 10), err, esdb.ErrorCodeStreamDeleted)
	}
	for _, exp := range []esdb.ExpectedRevision{esdb.Any{}, esdb.NoStream{}, esdb.StreamExists{}, esdb.Revision(last)} {
		_, err := c.AppendToStream(ctx, st, esdb.AppendToStreamOptions{ExpectedRevision: exp}, jsonEvent("Tomb", 99))
		wantCode(t, "append to tombstoned stream with expected "+expString(exp), err, esdb.ErrorCodeStreamDeleted)
	}
	_, err := c.TombstoneStream(ctx, st, esdb.TombstoneStreamOptions{ExpectedRevision: esdb.Any{}})
	wantCode(t, "second tombstone", err, esdb.ErrorCodeStreamDeleted)
	_, err = c.DeleteStream(ctx, st, esdb.DeleteStreamOptions{ExpectedRevision: esdb.Any{}})
	wantCode(t, "soft delete of a tombstoned stream", err, esdb.ErrorCodeStreamDeleted)
}

// tombstoneMissing: a stream that never existed can be tombstoned (with
// any, and with no_stream), and is then deleted for good.
func (s *suite) tombstoneMissing(t *testing.T) {
	c := s.client(t)
	for _, exp := range []esdb.ExpectedRevision{esdb.Any{}, esdb.NoStream{}} {
		st := s.stream("tombnone")
		dr, err := c.TombstoneStream(ctxFor(t, opTimeout), st, esdb.TombstoneStreamOptions{ExpectedRevision: exp})
		if err != nil {
			t.Fatalf("tombstone of a missing stream with expected %s: %v", expString(exp), err)
		}
		if dr.Position.Commit == 0 {
			t.Fatalf("tombstone result position %s, want commit > 0", posString(dr.Position))
		}
		_, err = tryReadStream(ctxFor(t, opTimeout), c, st, esdb.ReadStreamOptions{}, 10)
		wantCode(t, "read of a stream tombstoned before it existed", err, esdb.ErrorCodeStreamDeleted)
		_, err = c.AppendToStream(ctxFor(t, opTimeout), st, esdb.AppendToStreamOptions{}, jsonEvent("Tomb", 0))
		wantCode(t, "append to a stream tombstoned before it existed", err, esdb.ErrorCodeStreamDeleted)
	}
}

// tombstoneInAll: a tombstone is an event in $all — type $streamDeleted in
// the deleted stream, at revision MaxInt64 — which $all readers and
// subscribers see.
func (s *suite) tombstoneInAll(t *testing.T) {
	c := s.client(t)
	st := s.stream("tomball")
	s.append(t, c, st, esdb.NoStream{}, jsonEvent("Tomb", 0))
	first := s.readStream(t, c, st, esdb.ReadStreamOptions{}, 1)[0].OriginalEvent().Position
	if _, err := c.TombstoneStream(ctxFor(t, opTimeout), st, esdb.TombstoneStreamOptions{ExpectedRevision: esdb.Revision(0)}); err != nil {
		t.Fatalf("tombstone: %v", err)
	}
	got := only(s.readAll(t, c, esdb.ReadAllOptions{From: first}, 200), st)
	if len(got) != 2 {
		var d []string
		for _, e := range got {
			d = append(d, describe(e.OriginalEvent()))
		}
		t.Fatalf("$all after the tombstone: events of %s %v, want its event and the tombstone", st, d)
	}
	e := got[1].OriginalEvent()
	if e.EventType != "$streamDeleted" || e.EventNumber != math.MaxInt64 {
		t.Fatalf("tombstone in $all: %s, want type $streamDeleted at revision %d", describe(e), int64(math.MaxInt64))
	}
}
