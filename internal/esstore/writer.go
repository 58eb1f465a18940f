package esstore

import (
	"crypto/rand"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"go.uber.org/zap"
)

// Bounds of one commit group: everything waiting is taken, up to these, so
// that a burst cannot make one batch (and its memory) arbitrarily large.
const (
	maxGroupRequests = 1024
	maxGroupBytes    = 16 << 20
)

// writer is the single goroutine that writes. Having one writer makes the
// expected-revision checks race-free without locks, and lets every append
// waiting at a given moment share one batch and one fsync (group commit).
type writer struct {
	db       *pebble.DB
	syncOpt  *pebble.WriteOptions
	log      *zap.Logger
	queue    <-chan *appendRequest
	cache    *stateCache
	recent   *recentIDs // ids of the latest appends' events (all of them)
	inflight *inflightStates
	head     *headPublisher
	onFail   func(error)

	pos     uint64 // last position handed out (applied, maybe not yet durable)
	nextSID uint64 // last stream id handed out
	failed  error  // set for good after a failed commit (writer goroutine only)

	// durable carries applied groups, in order, to the syncer goroutine,
	// which waits for each one's fsync and only then publishes and answers.
	// Building the next group overlaps the previous group's fsync.
	durable    chan *groupJob
	synced     chan struct{}         // closed when the syncer has ended
	syncFailed atomic.Pointer[error] // set by the syncer when an fsync fails

	// Per-group scratch, reused.
	group   []*appendRequest
	pending map[string]*pendingStream
	touched []*pendingStream
	spare   []*pendingStream // the previous groups', reused with their slices
	key     []byte
	val     []byte

	// The log record eventAt read last: retries compare consecutive
	// revisions, mostly in one record.
	dec     eventDecoder
	lastRec loggedAppend
}

// loggedAppend is the ids of one committed append of a stream.
type loggedAppend struct {
	sid      uint64
	firstRev uint64
	firstPos uint64
	ids      []ID
}

func (a *loggedAppend) holds(sid, rev uint64) bool {
	return len(a.ids) > 0 && a.sid == sid && rev >= a.firstRev && rev-a.firstRev < uint64(len(a.ids))
}

// pendingStream is a stream's state while a group is built: its record as
// committed (disk) and as it will be once the group commits (rec), and the
// events the group gives it, so that a later request in the same group sees
// them.
type pendingStream struct {
	w     *writer
	name  string
	disk  streamRecord
	rec   streamRecord
	dirty bool
	ids   []ID     // ids of revisions disk.nextRevision() ...
	poss  []uint64 // and their positions
	byID  map[ID]uint64
}

func (w *writer) run(done chan<- struct{}) {
	defer close(done)
	defer func() {
		close(w.durable) // the syncer answers what is in flight, then ends
		<-w.synced
	}()
	for {
		r, ok := <-w.queue
		if !ok {
			return
		}
		group := append(w.group[:0], r)
		size := r.size()
	drain:
		for len(group) < maxGroupRequests && size < maxGroupBytes {
			select {
			case r, ok := <-w.queue:
				if !ok {
					break drain // closed: finish this group; the next receive returns
				}
				group = append(group, r)
				size += r.size()
			default:
				break drain
			}
		}
		w.process(group)
		clear(group) // drop references to the callers' events
		w.group = group[:0]
	}
}

// IndexEveryIDUpTo is the largest append whose every event id goes into
// the id index; larger appends (bulk imports) index their first id only,
// and their other ids are found while they are recent (Options.RecentIDs).
const IndexEveryIDUpTo = 32

// maxGroupsInFlight bounds the groups applied but not yet known durable.
const maxGroupsInFlight = 4

// groupJob is an applied group on its way to durability.
type groupJob struct {
	taken []*appendRequest
	batch *pebble.Batch // nil when the group wrote nothing
	pos   uint64        // head once it is durable
	recs  map[string]streamRecord
	err   error // the apply failed: answer every request with it
}

// process checks the group's requests in order, writes the successful ones
// in one batch and applies it, then hands it to the syncer. Its answers
// wait for the syncer even when it wrote nothing: an idempotent answer or
// a wrong-expected-version may rest on an earlier group that is not yet
// durable.
func (w *writer) process(group []*appendRequest) {
	taken := make([]*appendRequest, 0, len(group))
	for _, r := range group {
		if r.take() {
			taken = append(taken, r)
		}
	}
	if len(taken) == 0 {
		return
	}
	if w.failed == nil {
		if errp := w.syncFailed.Load(); errp != nil {
			w.failed = *errp
		}
	}
	job := &groupJob{taken: taken}
	if w.failed != nil {
		job.err = w.failed
		w.durable <- job
		return
	}
	clear(w.pending)
	w.spare = append(w.spare, w.touched...)
	clear(w.touched)
	w.touched = w.touched[:0]
	batch := w.db.NewBatch()
	start, sid := w.pos, w.nextSID
	pos := w.pos
	created := time.Now().UTC().UnixNano()
	for _, r := range taken {
		r.res, r.err = w.apply(batch, r, &pos, created)
	}
	if pos == start {
		batch.Close()
		w.durable <- job
		return
	}
	if err := w.commit(batch, pos, sid, job); err != nil {
		// Nothing of this group may be acknowledged, not even the answers
		// computed against its state.
		job.err = err
		w.durable <- job
		return
	}
	for _, ps := range w.touched {
		w.cache.put(ps.name, ps.rec)
		base := ps.disk.nextRevision()
		for i, id := range ps.ids {
			w.recent.put(ps.rec.sid, id, base+uint64(i))
		}
	}
	w.durable <- job
}

// commit writes the stream records and applies the batch without waiting
// for its fsync. The records of the streams it changes stay readable in
// their durable state through inflight until the syncer has seen the fsync
// return, because the storage engine makes a batch visible at once.
func (w *writer) commit(batch *pebble.Batch, pos, sidBefore uint64, job *groupJob) error {
	recs := make(map[string]streamRecord, len(w.touched))
	durable := make(map[string]streamRecord, len(w.touched))
	for _, ps := range w.touched {
		if ps.dirty {
			w.val = appendStreamRecord(w.val[:0], ps.rec)
			_ = batch.Set(w.streamKey(ps.name), w.val, nil) // a plain batch's Set cannot fail
			recs[ps.name] = ps.rec
			durable[ps.name] = ps.disk
		}
	}
	if w.nextSID != sidBefore {
		w.val = appendU64(w.val[:0], w.nextSID)
		_ = batch.Set(metaNextSIDKey, w.val, nil)
	}
	w.inflight.begin(durable)
	var err error
	if w.syncOpt.Sync {
		err = w.db.ApplyNoSyncWait(batch, w.syncOpt)
	} else {
		err = w.db.Apply(batch, w.syncOpt)
	}
	if err != nil {
		batch.Close()
		w.inflight.end(recs, false)
		// The batch may be partly applied or visible without being
		// durable; positions after w.pos can no longer be handed out
		// safely. Refuse every later write, as a database does after a
		// failed fsync, and keep serving reads up to the last good head.
		w.failed = fmt.Errorf("esstore: commit failed, store is read-only until reopened: %w", err)
		w.log.Error("commit failed", zap.Error(err))
		w.onFail(w.failed)
		return w.failed
	}
	w.pos = pos
	job.batch, job.pos, job.recs = batch, pos, recs
	return nil
}

// syncer waits for each applied group's fsync, in order. Once a group is
// durable its stream records become the committed ones, and only then is
// the head published and are its requests answered. In this order a
// subscriber that took Head's channel before calling State either sees
// the new record or is woken by the publication.
func (w *writer) syncer() {
	defer close(w.synced)
	for job := range w.durable {
		if job.batch != nil {
			var err error
			if w.syncOpt.Sync {
				err = job.batch.SyncWait()
			}
			job.batch.Close()
			if err == nil {
				if errp := w.syncFailed.Load(); errp != nil {
					err = *errp // an earlier group failed: this one rests on it
				}
			}
			if err != nil {
				w.inflight.end(job.recs, false)
				if w.syncFailed.Load() == nil {
					failed := fmt.Errorf("esstore: fsync failed, store is read-only until reopened: %w", err)
					w.syncFailed.Store(&failed)
					w.log.Error("fsync failed", zap.Error(err))
					w.onFail(failed)
				}
				job.err = *w.syncFailed.Load()
			} else {
				w.inflight.end(job.recs, true)
				w.head.publish(job.pos)
			}
		} else if job.err == nil {
			if errp := w.syncFailed.Load(); errp != nil {
				job.err = *errp
			}
		}
		for _, r := range job.taken {
			if job.err != nil {
				r.res, r.err = AppendResult{}, job.err
			}
			close(r.done)
		}
	}
}

func (w *writer) streamKey(name string) []byte {
	w.key = streamKey(w.key[:0], name)
	return w.key
}

// apply checks one request against the group's state and adds its records
// to the batch.
func (w *writer) apply(batch *pebble.Batch, r *appendRequest, pos *uint64, created int64) (AppendResult, error) {
	ps, err := w.stream(r.stream)
	if err != nil {
		return AppendResult{}, err
	}
	d, err := checkExpected(r.stream, ps.rec, r.exp, r.events, ps)
	if err != nil {
		return AppendResult{}, err
	}
	if r.tombstone {
		return w.writeTombstone(batch, ps, pos, created), nil
	}
	if d.idempotent {
		return AppendResult{Revision: d.rev, Position: d.pos, Idempotent: true}, nil
	}
	if len(r.events) == 0 {
		return AppendResult{Revision: ps.rec.lastRev}, nil // lastRev is 0 when the stream has no event
	}
	next := ps.rec.nextRevision()
	if uint64(len(r.events)) > tombstoneRevision-next {
		return AppendResult{}, fmt.Errorf("esstore: stream %q: revisions would pass %d: %w", r.stream, tombstoneRevision, ErrInvalid)
	}
	if ps.rec.sid == 0 {
		w.nextSID++
		ps.rec.sid = w.nextSID
		ps.rec.recentFrom = w.recent.mark() // its ids are put after this group commits
	}
	// One log record holds the whole append, under its first position;
	// each event keeps its own position and revision, but the append has
	// one revision key, at its first revision, and one id key, for its
	// first event id. The other ids are remembered in w.recent only.
	first := *pos + 1
	n := uint64(len(r.events))
	w.val = appendLogRecordHeader(w.val[:0], r.stream, created, next, len(r.events))
	for i := range r.events {
		w.val = appendLogEvent(w.val, &r.events[i])
	}
	w.key = logKey(w.key[:0], first)
	_ = batch.Set(w.key, w.val, nil)
	w.val = appendRevValue(w.val[:0], first, n)
	w.key = revKey(w.key[:0], ps.rec.sid, next)
	_ = batch.Set(w.key, w.val, nil)
	w.val = appendU64(w.val[:0], next)
	w.key = idKey(w.key[:0], ps.rec.sid, r.events[0].ID)
	_ = batch.Set(w.key, w.val, nil)
	if len(r.events) <= IndexEveryIDUpTo {
		// Small appends — what the projector makes — index every id, so
		// a retry of any one of them is found however old it is.
		for i := 1; i < len(r.events); i++ {
			w.val = appendU64(w.val[:0], next+uint64(i))
			w.key = idKey(w.key[:0], ps.rec.sid, r.events[i].ID)
			_ = batch.Set(w.key, w.val, nil)
		}
	}
	for i := range r.events {
		*pos++
		ps.added(r.events[i].ID, *pos)
	}
	ps.rec.exists = true
	ps.rec.lastRev = next + uint64(len(r.events)) - 1
	ps.rec.lastPos = *pos
	ps.dirty = true
	return AppendResult{Revision: ps.rec.lastRev, Position: *pos}, nil
}

// writeTombstone logs the "$streamDeleted" record. It is in $all only: it
// has no revision key, so stream reads never return it.
func (w *writer) writeTombstone(batch *pebble.Batch, ps *pendingStream, pos *uint64, created int64) AppendResult {
	*pos++
	e := EventData{Type: tombstoneType, ContentType: contentTypeOctet}
	_, _ = rand.Read(e.ID[:]) // never fails (crypto/rand panics rather than return an error)
	w.val = appendLogRecordHeader(w.val[:0], ps.name, created, tombstoneRevision, 1)
	w.val = appendLogEvent(w.val, &e)
	w.key = logKey(w.key[:0], *pos)
	_ = batch.Set(w.key, w.val, nil)
	ps.rec.tombstoned = true
	ps.rec.lastPos = *pos
	ps.dirty = true
	return AppendResult{Position: *pos}
}

// stream returns the group's state of a stream, loading it on first use.
func (w *writer) stream(name string) (*pendingStream, error) {
	if ps, ok := w.pending[name]; ok {
		return ps, nil
	}
	rec, ok := w.cache.get(name)
	if !ok {
		var err error
		if rec, err = w.readRecord(name); err != nil {
			return nil, err
		}
	}
	var ps *pendingStream
	if n := len(w.spare); n > 0 {
		ps, w.spare = w.spare[n-1], w.spare[:n-1]
		*ps = pendingStream{w: w, name: name, disk: rec, rec: rec, ids: ps.ids[:0], poss: ps.poss[:0]}
		if cap(ps.ids) > maxSpareIDs {
			ps.ids, ps.poss = nil, nil // a bulk append's: not kept
		}
	} else {
		ps = &pendingStream{w: w, name: name, disk: rec, rec: rec}
	}
	w.pending[name] = ps
	w.touched = append(w.touched, ps)
	return ps, nil
}

func (w *writer) readRecord(name string) (streamRecord, error) {
	return readStreamRecord(w.db, w.streamKey(name), name)
}

// maxSpareIDs bounds the ids a reused pendingStream keeps room for.
const maxSpareIDs = 1024

// byIDFrom is how many ids of a group a stream must have before they are
// looked up in a map rather than by scanning them: most groups give a
// stream one append and never look its ids up, and a map of 100 ids per
// append of 100 was half of the writer's garbage.
const byIDFrom = 64

func (ps *pendingStream) added(id ID, pos uint64) {
	if ps.byID != nil {
		ps.byID[id] = ps.disk.nextRevision() + uint64(len(ps.ids))
	}
	ps.ids = append(ps.ids, id)
	ps.poss = append(ps.poss, pos)
}

// groupRevision finds id among the events the group gave the stream: the
// latest occurrence, as a retry would have been answered.
func (ps *pendingStream) groupRevision(id ID) (uint64, bool) {
	base := ps.disk.nextRevision()
	if ps.byID == nil && len(ps.ids) >= byIDFrom {
		ps.byID = make(map[ID]uint64, len(ps.ids))
		for i, x := range ps.ids {
			ps.byID[x] = base + uint64(i)
		}
	}
	if ps.byID != nil {
		rev, ok := ps.byID[id]
		return rev, ok
	}
	for i := len(ps.ids) - 1; i >= 0; i-- {
		if ps.ids[i] == id {
			return base + uint64(i), true
		}
	}
	return 0, false
}

// idRevision looks in the group first: its events are the latest; then
// among the ids of the latest appends, which are remembered whether or not
// they were first in their append; then, unless those are known to hold
// all of the stream's ids (streamRecord.recentFrom), in the id index, which
// holds the first id of every append.
func (ps *pendingStream) idRevision(id ID) (uint64, bool, error) {
	if rev, ok := ps.groupRevision(id); ok {
		return rev, true, nil
	}
	if !ps.disk.exists {
		return 0, false, nil
	}
	w := ps.w
	if rev, ok := w.recent.get(ps.disk.sid, id); ok {
		return rev, true, nil
	}
	if w.recent.holdsSince(ps.disk.recentFrom) {
		// This process created the stream, recently enough that the
		// recent ids still hold every id it was given: the id is not in
		// the stream, and the id index need not be read (a Get of ~6 µs
		// on the writer goroutine, most of its work per single append).
		return 0, false, nil
	}
	w.key = idKey(w.key[:0], ps.disk.sid, id)
	v, closer, err := w.db.Get(w.key)
	if errors.Is(err, pebble.ErrNotFound) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("esstore: stream %q: read id index: %w", ps.name, err)
	}
	defer closer.Close()
	if len(v) != 8 {
		return 0, false, fmt.Errorf("%w: id index of stream %q", errCorrupt, ps.name)
	}
	return decodeU64(v), true, nil
}

// eventAt finds rev in the group's events, or else in the append that
// holds it: the revision key with the greatest first revision ≤ rev, and
// the log record it points at.
func (ps *pendingStream) eventAt(rev uint64) (ID, uint64, bool, error) {
	base := ps.disk.nextRevision()
	if rev >= base {
		if i := rev - base; i < uint64(len(ps.ids)) {
			return ps.ids[i], ps.poss[i], true, nil
		}
		return ID{}, 0, false, nil
	}
	w := ps.w
	sid := ps.disk.sid
	if !w.lastRec.holds(sid, rev) {
		if err := w.loadAppend(ps.name, sid, rev); err != nil {
			return ID{}, 0, false, err
		}
		if !w.lastRec.holds(sid, rev) {
			return ID{}, 0, false, nil
		}
	}
	i := rev - w.lastRec.firstRev
	return w.lastRec.ids[i], w.lastRec.firstPos + i, true, nil
}

// loadAppend reads into w.lastRec the ids of the append of stream sid that
// holds rev, if there is one.
func (w *writer) loadAppend(name string, sid, rev uint64) error {
	w.lastRec.ids = w.lastRec.ids[:0]
	it, err := w.db.NewIter(&pebble.IterOptions{LowerBound: revKey(nil, sid, 0), UpperBound: revKey(nil, sid, rev+1)}) // rev < MaxInt64
	if err != nil {
		return fmt.Errorf("esstore: stream %q: read revision %d: %w", name, rev, err)
	}
	defer it.Close()
	if !it.Last() {
		if err := it.Error(); err != nil {
			return fmt.Errorf("esstore: stream %q: read revision %d: %w", name, rev, err)
		}
		return nil
	}
	firstRev, okKey := revisionOfRevKey(it.Key())
	pos, count, okVal := decodeRevValue(it.Value())
	if !okKey || !okVal {
		return fmt.Errorf("%w: revision index entry %x of stream %q", errCorrupt, it.Key(), name)
	}
	if rev-firstRev >= count {
		return nil
	}
	w.key = logKey(w.key[:0], pos)
	v, closer, err := w.db.Get(w.key)
	if err != nil {
		if errors.Is(err, pebble.ErrNotFound) {
			return fmt.Errorf("%w: revision %d of %q points at missing position %d", errCorrupt, firstRev, name, pos)
		}
		return fmt.Errorf("esstore: stream %q: read revision %d: %w", name, rev, err)
	}
	defer closer.Close()
	if err := w.dec.parse(pos, v); err != nil {
		return err
	}
	h := &w.dec.rec.hdr
	if h.firstRev != firstRev || h.count != count || string(h.stream) != name {
		return fmt.Errorf("%w: revision %d of %q points at position %d, another append", errCorrupt, firstRev, name, pos)
	}
	for _, e := range w.dec.rec.events {
		w.lastRec.ids = append(w.lastRec.ids, ID(e.id))
	}
	clear(w.dec.rec.events) // they point into v, released on return
	w.dec.rec.events = w.dec.rec.events[:0]
	w.lastRec.sid, w.lastRec.firstRev, w.lastRec.firstPos = sid, firstRev, pos
	return nil
}
