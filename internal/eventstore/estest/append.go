package estest

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/google/uuid"
)

// appendExpectedRevision: any / no_stream / stream_exists / exact, the
// wrong-expected-version answer naming expected and current revisions, and
// nothing written by a refused append.
func (s *suite) appendExpectedRevision(t *testing.T) {
	c := s.client(t)
	ctx := ctxFor(t, opTimeout)
	st := s.stream("exp")
	try := func(exp esdb.ExpectedRevision, evs ...esdb.EventData) error {
		_, err := c.AppendToStream(ctx, st, esdb.AppendToStreamOptions{ExpectedRevision: exp}, evs...)
		return err
	}

	wantWrongExpected(t, "exact revision 0 on a missing stream", try(esdb.Revision(0), jsonEvent("Exp", -1)), "0", "no_stream")
	wantWrongExpected(t, "stream_exists on a missing stream", try(esdb.StreamExists{}, jsonEvent("Exp", -1)), "stream_exists", "no_stream")

	var stored []esdb.EventData
	var results []*esdb.WriteResult
	ok := func(what string, exp esdb.ExpectedRevision, next uint64, evs ...esdb.EventData) {
		t.Helper()
		wr := s.append(t, c, st, exp, evs...)
		if wr.NextExpectedVersion != next {
			t.Fatalf("%s: NextExpectedVersion %d, want %d", what, wr.NextExpectedVersion, next)
		}
		stored = append(stored, evs...)
		results = append(results, wr)
	}

	ok("no_stream creating the stream with 2 events", esdb.NoStream{}, 1, jsonEvents("Exp", 0, 2)...)
	wantWrongExpected(t, "no_stream on an existing stream", try(esdb.NoStream{}, jsonEvent("Exp", -1)), "no_stream", "1")
	ok("stream_exists", esdb.StreamExists{}, 2, jsonEvent("Exp", 2))
	ok("exact revision 2", esdb.Revision(2), 3, jsonEvent("Exp", 3))
	wantWrongExpected(t, "exact revision 1 behind the head", try(esdb.Revision(1), jsonEvent("Exp", -1)), "1", "3")
	wantWrongExpected(t, "exact revision 5 beyond the head", try(esdb.Revision(5), jsonEvent("Exp", -1)), "5", "3")
	ok("any", esdb.Any{}, 5, jsonEvents("Exp", 4, 2)...)
	ok("exact revision 5 after refused appends", esdb.Revision(5), 6, jsonEvent("Exp", 6))

	for i, wr := range results {
		if wr.CommitPosition == 0 || wr.CommitPosition != wr.PreparePosition {
			t.Fatalf("append #%d: position %d/%d, want commit == prepare > 0", i, wr.CommitPosition, wr.PreparePosition)
		}
		if i > 0 && wr.CommitPosition <= results[i-1].CommitPosition {
			t.Fatalf("append #%d at %d is not after append #%d at %d", i, wr.CommitPosition, i-1, results[i-1].CommitPosition)
		}
	}

	got := s.readStream(t, c, st, esdb.ReadStreamOptions{}, 100)
	wantRevisions(t, "stream after refused and accepted appends", got, st, seq(0, 6)...)
	for i, e := range got {
		if e.OriginalEvent().EventID != stored[i].EventID || eventN(t, e.OriginalEvent()) != i {
			t.Fatalf("revision %d holds %s (n=%d), want the accepted event %s", i, describe(e.OriginalEvent()), eventN(t, e.OriginalEvent()), stored[i].EventID)
		}
	}
}

// appendIdempotent: re-appending the same event ids is acknowledged with the
// original revision and writes nothing; a different id at a taken revision,
// or a partial overlap, is a wrong expected version.
func (s *suite) appendIdempotent(t *testing.T) {
	c := s.client(t)
	ctx := ctxFor(t, opTimeout)
	st := s.stream("idem")
	first := jsonEvents("Idem", 0, 3)

	wr1 := s.append(t, c, st, esdb.NoStream{}, first...)
	if wr1.NextExpectedVersion != 2 {
		t.Fatalf("first append: NextExpectedVersion %d, want 2", wr1.NextExpectedVersion)
	}
	replay := func(what string, exp esdb.ExpectedRevision, next uint64, orig *esdb.WriteResult, evs ...esdb.EventData) {
		t.Helper()
		wr, err := c.AppendToStream(ctx, st, esdb.AppendToStreamOptions{ExpectedRevision: exp}, evs...)
		if err != nil {
			t.Fatalf("%s: %v; want an idempotent success", what, err)
		}
		if wr.NextExpectedVersion != next {
			t.Fatalf("%s: NextExpectedVersion %d, want the original %d", what, wr.NextExpectedVersion, next)
		}
		if wr.CommitPosition > orig.CommitPosition {
			t.Fatalf("%s: acknowledged at %d, after the original append at %d: written again?", what, wr.CommitPosition, orig.CommitPosition)
		}
	}
	replay("same ids again with no_stream (same revisions)", esdb.NoStream{}, 2, wr1, first...)
	replay("same ids again with any", esdb.Any{}, 2, wr1, first...)

	next := jsonEvent("Idem", 3)
	wr2 := s.append(t, c, st, esdb.Revision(2), next)
	if wr2.NextExpectedVersion != 3 {
		t.Fatalf("append at revision 2: NextExpectedVersion %d, want 3", wr2.NextExpectedVersion)
	}
	replay("same id again at exact revision 2", esdb.Revision(2), 3, wr2, next)
	replay("same id again with any", esdb.Any{}, 3, wr2, next)

	_, err := c.AppendToStream(ctx, st, esdb.AppendToStreamOptions{ExpectedRevision: esdb.Revision(2)}, jsonEvent("Idem", -1))
	wantWrongExpected(t, "a new id at the taken revision 2", err, "2", "3")
	_, err = c.AppendToStream(ctx, st, esdb.AppendToStreamOptions{ExpectedRevision: esdb.Revision(1)}, first[2], jsonEvent("Idem", -1))
	wantCode(t, "ids overlapping the stream only in part (first matches revision 2, second does not match revision 3)", err, esdb.ErrorCodeWrongExpectedVersion)

	got := s.readStream(t, c, st, esdb.ReadStreamOptions{}, 100)
	wantRevisions(t, "stream after replays", got, st, 0, 1, 2, 3)
	want := append(ids(first), next.EventID)
	for i, e := range got {
		if e.OriginalEvent().EventID != want[i] {
			t.Fatalf("revision %d holds %s, want %s", i, describe(e.OriginalEvent()), want[i])
		}
	}
}

// appendEventFields: every field a client sets or reads comes back as
// written, through stream reads and $all reads alike.
func (s *suite) appendEventFields(t *testing.T) {
	c := s.client(t)
	st := s.stream("fields")
	big := make([]byte, 256<<10)
	if _, err := rand.Read(big); err != nil {
		t.Fatal(err)
	}
	written := []esdb.EventData{
		{EventID: uuid.New(), EventType: "FieldsJson", ContentType: esdb.ContentTypeJson,
			Data: []byte(`{"a":1,"s":"é ✓ \u0000"}`), Metadata: []byte(`{"$correlationId":"CH1","traceparent":"00-x"}`)},
		{EventID: uuid.New(), EventType: "FieldsBinary", ContentType: esdb.ContentTypeBinary,
			Data: big, Metadata: []byte{0, 1, 2, 0xff}},
		{EventID: uuid.New(), EventType: "FieldsEmpty", ContentType: esdb.ContentTypeBinary},
	}
	before := time.Now()
	wr1 := s.append(t, c, st, esdb.NoStream{}, written[0])
	wr2 := s.append(t, c, st, esdb.Revision(0), written[1:]...)
	after := time.Now()

	check := func(how string, got []*esdb.ResolvedEvent) {
		t.Helper()
		wantRevisions(t, how, got, st, 0, 1, 2)
		for i, re := range got {
			w, e := written[i], re.OriginalEvent()
			what := fmt.Sprintf("%s, revision %d", how, i)
			if re.Link != nil {
				t.Fatalf("%s: a link %s on a plain event", what, describe(re.Link))
			}
			if e.EventID != w.EventID {
				t.Fatalf("%s: EventID %s, want %s", what, e.EventID, w.EventID)
			}
			if e.EventType != w.EventType {
				t.Fatalf("%s: EventType %q, want %q", what, e.EventType, w.EventType)
			}
			ct := "application/octet-stream"
			if w.ContentType == esdb.ContentTypeJson {
				ct = "application/json"
			}
			if e.ContentType != ct {
				t.Fatalf("%s: ContentType %q, want %q", what, e.ContentType, ct)
			}
			if !bytes.Equal(e.Data, w.Data) {
				t.Fatalf("%s: Data differs: %d bytes, want %d", what, len(e.Data), len(w.Data))
			}
			if !bytes.Equal(e.UserMetadata, w.Metadata) {
				t.Fatalf("%s: UserMetadata %q, want %q", what, e.UserMetadata, w.Metadata)
			}
			if e.CreatedDate.Before(before.Add(-2*time.Second)) || e.CreatedDate.After(after.Add(2*time.Second)) {
				t.Fatalf("%s: CreatedDate %v, want between %v and %v", what, e.CreatedDate, before, after)
			}
			for k, v := range map[string]string{"type": w.EventType, "content-type": ct} {
				if e.SystemMetadata[k] != v {
					t.Fatalf("%s: system metadata %q = %q, want %q (all: %v)", what, k, e.SystemMetadata[k], v, e.SystemMetadata)
				}
			}
			if _, err := strconv.ParseInt(e.SystemMetadata["created"], 10, 64); err != nil {
				t.Fatalf("%s: system metadata created = %q, want .NET ticks since the Unix epoch", what, e.SystemMetadata["created"])
			}
			if e.Position.Commit == 0 || e.Position.Commit != e.Position.Prepare {
				t.Fatalf("%s: position %s, want commit == prepare > 0", what, posString(e.Position))
			}
			if re.Commit == nil || *re.Commit != e.Position.Commit {
				t.Fatalf("%s: ReadEvent commit_position %v, want %d", what, re.Commit, e.Position.Commit)
			}
			if i > 0 && !posLess(got[i-1].OriginalEvent().Position, e.Position) {
				t.Fatalf("%s: position %s not after the previous event's %s", what, posString(e.Position), posString(got[i-1].OriginalEvent().Position))
			}
		}
	}

	fromStream := s.readStream(t, c, st, esdb.ReadStreamOptions{}, 10)
	check("stream read", fromStream)
	first, last := fromStream[0].OriginalEvent().Position, fromStream[2].OriginalEvent().Position
	if wr1.CommitPosition != first.Commit || wr1.PreparePosition != first.Prepare {
		t.Fatalf("single-event append acknowledged at %d/%d, but the event is at %s", wr1.CommitPosition, wr1.PreparePosition, posString(first))
	}
	if wr2.CommitPosition != wr2.PreparePosition || wr2.CommitPosition < fromStream[1].OriginalEvent().Position.Commit || wr2.CommitPosition > last.Commit {
		t.Fatalf("two-event append acknowledged at %d/%d, want commit == prepare within its events' positions %s..%s",
			wr2.CommitPosition, wr2.PreparePosition, posString(fromStream[1].OriginalEvent().Position), posString(last))
	}

	fromAll := only(s.readAll(t, c, esdb.ReadAllOptions{From: first}, 50), st)
	check("$all read", fromAll)
	for i := range fromAll {
		if fromAll[i].OriginalEvent().Position != fromStream[i].OriginalEvent().Position {
			t.Fatalf("revision %d: $all position %s, stream-read position %s", i, posString(fromAll[i].OriginalEvent().Position), posString(fromStream[i].OriginalEvent().Position))
		}
	}
}

// appendConcurrentExactRevision: writers racing on one stream with exact
// expected revisions; exactly one wins each revision and the stream ends
// without gaps, each event once.
func (s *suite) appendConcurrentExactRevision(t *testing.T) {
	const writers, perWriter = 6, 15
	st := s.stream("race")
	clients := []*esdb.Client{s.client(t), s.client(t)}
	ctx := ctxFor(t, 2*time.Minute)

	var mu sync.Mutex
	winners := map[uint64][]uuid.UUID{} // revision → ids acknowledged there
	written := map[uuid.UUID]int{}      // id → writer
	refused := 0
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func(w int, c *esdb.Client) {
			defer wg.Done()
			for n := 0; n < perWriter; {
				exp, err := head(ctx, c, st)
				if err != nil {
					errs <- fmt.Errorf("writer %d: head: %w", w, err)
					return
				}
				ev := jsonEvent("Race", w*1000+n)
				wr, err := c.AppendToStream(ctx, st, esdb.AppendToStreamOptions{ExpectedRevision: exp}, ev)
				if code, ok := errCode(err); ok && code == esdb.ErrorCodeWrongExpectedVersion {
					mu.Lock()
					refused++
					mu.Unlock()
					continue
				}
				if err != nil {
					errs <- fmt.Errorf("writer %d: append at %s: %w", w, expString(exp), err)
					return
				}
				mu.Lock()
				winners[wr.NextExpectedVersion] = append(winners[wr.NextExpectedVersion], ev.EventID)
				written[ev.EventID] = w
				mu.Unlock()
				n++
			}
		}(w, clients[w%len(clients)])
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	t.Logf("%d appends accepted, %d refused with WrongExpectedVersion", writers*perWriter, refused)

	total := uint64(writers * perWriter)
	for r := uint64(0); r < total; r++ {
		if len(winners[r]) != 1 {
			t.Fatalf("revision %d acknowledged to %d appends, want exactly 1", r, len(winners[r]))
		}
	}
	got := s.readStream(t, clients[0], st, esdb.ReadStreamOptions{}, total+10)
	wantRevisions(t, "raced stream", got, st, seq(0, total-1)...)
	lastN := map[int]int{}
	for r, e := range got {
		id := e.OriginalEvent().EventID
		if winners[uint64(r)][0] != id {
			t.Fatalf("revision %d holds %s, but the append acknowledged there wrote %s", r, id, winners[uint64(r)][0])
		}
		w := written[id]
		n := eventN(t, e.OriginalEvent()) - w*1000
		if prev, ok := lastN[w]; ok && n <= prev {
			t.Fatalf("writer %d's event %d stored after its event %d", w, n, prev)
		}
		lastN[w] = n
	}
}

// head is the expected revision that appends after the stream's last event.
func head(ctx context.Context, c *esdb.Client, stream string) (esdb.ExpectedRevision, error) {
	evs, err := tryReadStream(ctx, c, stream, esdb.ReadStreamOptions{Direction: esdb.Backwards, From: esdb.End{}}, 1)
	if code, ok := errCode(err); ok && code == esdb.ErrorCodeResourceNotFound {
		return esdb.NoStream{}, nil
	}
	if err != nil {
		return nil, err
	}
	if len(evs) != 1 {
		return nil, errors.New("backwards read from the end of an existing stream returned no event")
	}
	return esdb.Revision(evs[0].OriginalEvent().EventNumber), nil
}

// appendConcurrentDuplicates: the same batch (same ids) sent by several
// writers at once, with any, is written once; every writer told success
// is told the batch's original revision. KurrentDB may drop a duplicate
// whose original is not yet committed ("IdempotentNotReady": no answer
// until the deadline), so a timed-out duplicate is allowed; a wrong
// expected version or a second copy is not.
func (s *suite) appendConcurrentDuplicates(t *testing.T) {
	const rounds, writers, batch = 6, 6, 2
	st := s.stream("dup")
	clients := []*esdb.Client{s.client(t), s.client(t)}
	var all []esdb.EventData
	deadline := 2 * time.Second
	for r := 0; r < rounds; r++ {
		evs := jsonEvents("Dup", r*batch, batch)
		all = append(all, evs...)
		want := uint64((r+1)*batch - 1)
		var wg sync.WaitGroup
		errs := make([]error, writers)
		next := make([]uint64, writers)
		for w := 0; w < writers; w++ {
			wg.Add(1)
			go func(w int) {
				defer wg.Done()
				wr, err := clients[w%len(clients)].AppendToStream(context.Background(), st, esdb.AppendToStreamOptions{Deadline: &deadline}, evs...)
				if err == nil {
					next[w] = wr.NextExpectedVersion
				}
				errs[w] = err
			}(w)
		}
		wg.Wait()
		ok := 0
		for w, err := range errs {
			if err == nil {
				ok++
				if next[w] != want {
					t.Fatalf("round %d, writer %d: NextExpectedVersion %d, want the batch's %d", r, w, next[w], want)
				}
				continue
			}
			if code, _ := errCode(err); code != esdb.ErrorCodeDeadlineExceeded && code != esdb.ErrorAborted {
				t.Fatalf("round %d, writer %d: %v; want success (or, as KurrentDB may, a timeout)", r, w, err)
			}
		}
		if ok == 0 {
			t.Fatalf("round %d: no writer succeeded: %v", r, errs)
		}
	}
	got := s.readStream(t, clients[0], st, esdb.ReadStreamOptions{}, 1000)
	wantRevisions(t, "stream written by concurrent duplicates", got, st, seq(0, uint64(rounds*batch-1))...)
	for i, e := range got {
		if e.OriginalEvent().EventID != all[i].EventID {
			t.Fatalf("revision %d is %s, want %s", i, describe(e.OriginalEvent()), all[i].EventID)
		}
	}
}
