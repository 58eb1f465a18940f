package esserver

import (
	"context"
	"crypto/rand"
	"errors"
	"io"
	"math"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/EventStore/EventStore-Client-Go/v4/protos/shared"
	"github.com/EventStore/EventStore-Client-Go/v4/protos/streams"

	"github.com/flexstream/flexstream/internal/esstore"
)

// maxAppendSize is KurrentDB's default limit on one append's events.
const maxAppendSize = 1 << 20

type streamsService struct {
	streams.UnimplementedStreamsServer
	store esstore.Store
	log   *zap.Logger
	meta  metaCache
	// stop ends every subscription when the server shuts down, so a
	// graceful stop does not wait for clients that never hang up.
	stop     chan struct{}
	stopOnce sync.Once
}

func newStreamsService(st esstore.Store, log *zap.Logger) *streamsService {
	return &streamsService{store: st, log: log, stop: make(chan struct{})}
}

func (s *streamsService) shutdown() { s.stopOnce.Do(func() { close(s.stop) }) }

// Append is client-streaming: options first, then one message per event.
func (s *streamsService) Append(srv streams.Streams_AppendServer) error {
	ctx := srv.Context()
	first, err := srv.Recv()
	if err != nil {
		return status.Errorf(codes.InvalidArgument, "append: %v", err)
	}
	opts := first.GetOptions()
	if opts == nil {
		return status.Error(codes.InvalidArgument, "append: the first message must carry the options")
	}
	stream := string(opts.GetStreamIdentifier().GetStreamName())
	if stream == "" {
		return status.Error(codes.InvalidArgument, "append: stream name is empty")
	}
	exp := expectedFromAppend(opts)
	var events []esstore.EventData
	size := 0
	for {
		m, err := srv.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return status.Errorf(codes.Canceled, "append: %v", err)
		}
		pm := m.GetProposedMessage()
		if pm == nil {
			return status.Error(codes.InvalidArgument, "append: options sent twice")
		}
		ev, err := proposedToEvent(pm)
		if err != nil {
			return invalidArgument(srv, "missing-required-metadata-property", "append: %v", err)
		}
		size += len(ev.Data) + len(ev.Metadata)
		if size > maxAppendSize {
			return invalidArgument(srv, "maximum-append-size-exceeded", "Maximum Append Size of %d Exceeded.", maxAppendSize)
		}
		events = append(events, ev)
	}
	res, err := s.append(ctx, stream, exp, events)
	var wev *esstore.WrongExpectedVersionError
	if errors.As(err, &wev) {
		return srv.SendAndClose(wrongExpectedVersion(wev))
	}
	if err != nil {
		return storeError(srv, stream, err)
	}
	return srv.SendAndClose(res)
}

func proposedToEvent(pm *streams.AppendReq_ProposedMessage) (esstore.EventData, error) {
	typ, ok := pm.GetMetadata()["type"]
	if !ok || typ == "" {
		return esstore.EventData{}, errors.New(`required metadata property "type" is missing`)
	}
	ct, ok := pm.GetMetadata()["content-type"]
	if !ok {
		return esstore.EventData{}, errors.New(`required metadata property "content-type" is missing`)
	}
	id, err := idFromProto(pm.GetId())
	if err != nil {
		return esstore.EventData{}, err
	}
	if ct != contentJSON {
		ct = contentBinary
	}
	return esstore.EventData{ID: id, Type: typ, ContentType: ct, Metadata: pm.GetCustomMetadata(), Data: pm.GetData()}, nil
}

// append applies KurrentDB's soft-delete rules around the store's append:
// appending to a soft-deleted stream undeletes it, with revisions going on
// from where they were, and everything before them hidden by a new $tb.
func (s *streamsService) append(ctx context.Context, stream string, exp esstore.Expected, events []esstore.EventData) (*streams.AppendResp, error) {
	if isMetastream(stream) {
		base := strings.TrimPrefix(stream, metaPrefix)
		if st, err := s.store.State(ctx, base); err == nil && st.Tombstoned {
			return nil, esstore.ErrStreamDeleted
		}
		s.meta.invalidate(base)
	}
	// The usual append touches a stream without metadata: one lookup of
	// its metastream settles that, and the stream's own state is read only
	// when a soft delete makes it matter.
	var meta streamMeta
	var before esstore.StreamState
	if !isMetastream(stream) {
		var err error
		if meta, err = s.meta.get(ctx, s.store, stream); err != nil {
			return nil, err
		}
		if meta.softDeleted() {
			if before, err = s.store.State(ctx, stream); err != nil {
				return nil, err
			}
		}
	}
	softDeleted := meta.softDeleted() && len(events) > 0
	if meta.softDeleted() {
		switch exp.Kind {
		case esstore.ExpectStreamExists:
			return nil, esstore.ErrStreamDeleted
		case esstore.ExpectNoStream:
			// A soft-deleted stream counts as absent: no_stream recreates it.
			if before.Exists {
				exp = esstore.Revision(before.Revision)
			}
		}
	}
	res, err := s.store.Append(ctx, stream, exp, events)
	if err != nil {
		return nil, err
	}
	if softDeleted && !res.Idempotent {
		s.meta.invalidate(stream)
		tb := uint64(0)
		if before.Exists {
			tb = before.Revision + 1
		}
		if _, err := s.store.Append(ctx, metastreamOf(stream), esstore.Any(), []esstore.EventData{{
			ID: newID(), Type: metaEventType, ContentType: contentJSON, Data: meta.withTB(tb),
		}}); err != nil {
			return nil, err
		}
	}
	succ := &streams.AppendResp_Success{}
	after := res.Revision
	exists := true
	if len(events) == 0 {
		st, err := s.store.State(ctx, stream)
		if err != nil {
			return nil, err
		}
		after, exists = st.Revision, st.Exists
	}
	if exists {
		succ.CurrentRevisionOption = &streams.AppendResp_Success_CurrentRevision{CurrentRevision: after}
	} else {
		succ.CurrentRevisionOption = &streams.AppendResp_Success_NoStream{NoStream: &shared.Empty{}}
	}
	if res.Position > 0 {
		succ.PositionOption = &streams.AppendResp_Success_Position{Position: &streams.AppendResp_Position{CommitPosition: res.Position, PreparePosition: res.Position}}
	} else {
		succ.PositionOption = &streams.AppendResp_Success_NoPosition{NoPosition: &shared.Empty{}}
	}
	return &streams.AppendResp{Result: &streams.AppendResp_Success_{Success: succ}}, nil
}

func newID() esstore.ID {
	var id esstore.ID
	_, _ = rand.Read(id[:])
	id[6] = id[6]&0x0f | 0x40 // version 4
	id[8] = id[8]&0x3f | 0x80 // RFC 4122 variant
	return id
}

// Delete is KurrentDB's soft delete: a "$tb" of MaxInt64 in the stream's
// metadata. The events stay on disk and in $all; a later append undeletes.
func (s *streamsService) Delete(ctx context.Context, req *streams.DeleteReq) (*streams.DeleteResp, error) {
	ts := unaryTrailer{ctx}
	stream := string(req.GetOptions().GetStreamIdentifier().GetStreamName())
	if stream == "" {
		return nil, status.Error(codes.InvalidArgument, "delete: stream name is empty")
	}
	exp := expectedFromDelete(req.GetOptions())
	st, err := s.store.State(ctx, stream)
	if err != nil {
		return nil, storeError(ts, stream, err)
	}
	if st.Tombstoned {
		return nil, streamDeleted(ts, stream)
	}
	// The expectation is checked the way an empty append checks it.
	if _, err := s.store.Append(ctx, stream, exp, nil); err != nil {
		return nil, storeError(ts, stream, err)
	}
	if !st.Exists {
		ms, err := s.store.State(ctx, metastreamOf(stream))
		if err != nil {
			return nil, storeError(ts, stream, err)
		}
		if !ms.Exists {
			// Nothing to delete is a wrong expected version, even for any.
			return nil, wrongExpectedVersionStatus(ts, &esstore.WrongExpectedVersionError{Stream: stream, Expected: exp, Current: st})
		}
	}
	s.meta.invalidate(stream)
	res, err := s.store.Append(ctx, metastreamOf(stream), esstore.Any(), []esstore.EventData{{
		ID: newID(), Type: metaEventType, ContentType: contentJSON,
		Data: []byte(`{"$tb":` + strconv.FormatInt(softDeletedTB, 10) + `}`),
	}})
	if err != nil {
		return nil, storeError(ts, stream, err)
	}
	return &streams.DeleteResp{PositionOption: &streams.DeleteResp_Position_{Position: &streams.DeleteResp_Position{
		CommitPosition: res.Position, PreparePosition: res.Position,
	}}}, nil
}

// Tombstone is the hard delete: no append is ever accepted again.
func (s *streamsService) Tombstone(ctx context.Context, req *streams.TombstoneReq) (*streams.TombstoneResp, error) {
	ts := unaryTrailer{ctx}
	stream := string(req.GetOptions().GetStreamIdentifier().GetStreamName())
	if stream == "" {
		return nil, status.Error(codes.InvalidArgument, "tombstone: stream name is empty")
	}
	pos, err := s.store.Tombstone(ctx, stream, expectedFromTombstone(req.GetOptions()))
	if err != nil {
		return nil, storeError(ts, stream, err)
	}
	return &streams.TombstoneResp{PositionOption: &streams.TombstoneResp_Position_{Position: &streams.TombstoneResp_Position{
		CommitPosition: pos, PreparePosition: pos,
	}}}, nil
}

// Read serves reads and subscriptions: one RPC, told apart by count_option.
func (s *streamsService) Read(req *streams.ReadReq, srv streams.Streams_ReadServer) error {
	o := req.GetOptions()
	if o == nil {
		return status.Error(codes.InvalidArgument, "read: options missing")
	}
	r := &reader{svc: s, srv: srv, opts: o, idAsString: o.GetUuidOption().GetString_() != nil}
	if o.GetSubscription() != nil {
		return r.subscribe()
	}
	count := o.GetCount()
	if count == 0 {
		return nil
	}
	forward := o.GetReadDirection() == streams.ReadReq_Options_Forwards
	switch so := o.GetStreamOption().(type) {
	case *streams.ReadReq_Options_Stream:
		return r.readStream(so.Stream, forward, count)
	case *streams.ReadReq_Options_All:
		return r.readAll(so.All, forward, count)
	}
	return status.Error(codes.InvalidArgument, "read: neither a stream nor $all")
}

type reader struct {
	svc        *streamsService
	srv        streams.Streams_ReadServer
	opts       *streams.ReadReq_Options
	idAsString bool
	msg        eventMsg
}

func (r *reader) send(ev *esstore.RecordedEvent) error {
	var link *esstore.RecordedEvent
	if ev.Type == "$>" && r.opts.GetResolveLinks() {
		target, ok := r.resolve(ev)
		link = ev
		if ok {
			ev = target
		} else {
			ev = nil
		}
	}
	if link == nil && ev != nil {
		r.msg = eventMsg{e: ev, idAsString: r.idAsString}
		err := r.srv.SendMsg(&r.msg)
		r.msg.e = nil // borrowed from the store for the callback only
		return err
	}
	return r.srv.Send(eventResp(ev, link, r.idAsString))
}

// resolve follows a link event ("$>", data "<revision>@<stream>").
func (r *reader) resolve(link *esstore.RecordedEvent) (*esstore.RecordedEvent, bool) {
	rev, stream, ok := strings.Cut(string(link.Data), "@")
	if !ok {
		return nil, false
	}
	n, err := strconv.ParseUint(rev, 10, 64)
	if err != nil {
		return nil, false
	}
	var found *esstore.RecordedEvent
	_ = r.svc.store.ReadStream(r.srv.Context(), stream, n, true, func(e esstore.RecordedEvent) bool {
		if e.Revision == n {
			found = &e
		}
		return false
	})
	return found, found != nil
}

// readStream reads one stream, with its metadata ($tb, $maxCount,
// $maxAge) applied, as KurrentDB's index reader does.
func (r *reader) readStream(so *streams.ReadReq_Options_StreamOptions, forward bool, count uint64) error {
	ctx := r.srv.Context()
	stream := string(so.GetStreamIdentifier().GetStreamName())
	st, err := r.svc.store.State(ctx, stream)
	if err != nil {
		return storeError(r.srv, stream, err)
	}
	if st.Tombstoned || (isMetastream(stream) && r.baseTombstoned(ctx, stream)) {
		return streamDeleted(r.srv, stream)
	}
	if !st.Exists {
		return r.srv.Send(streamNotFound(stream))
	}
	meta, err := r.svc.meta.get(ctx, r.svc.store, stream)
	if err != nil {
		return storeError(r.srv, stream, err)
	}
	if meta.softDeleted() {
		return r.srv.Send(streamNotFound(stream))
	}
	min := meta.minRevision(st.Revision)
	var from uint64
	switch ro := so.GetRevisionOption().(type) {
	case *streams.ReadReq_Options_StreamOptions_Revision:
		from = ro.Revision
	case *streams.ReadReq_Options_StreamOptions_End:
		from = st.Revision
		if forward {
			from = st.Revision + 1
		}
	default: // start
		from = 0
		if !forward {
			return nil
		}
	}
	if forward && from < min {
		from = min
	}
	if !forward && from < min {
		return nil
	}
	now := time.Now()
	return r.sendUpTo(stream, count, func(fn func(esstore.RecordedEvent) bool) error {
		return r.svc.store.ReadStream(ctx, stream, from, forward, fn)
	}, func(e *esstore.RecordedEvent) (send, more bool) {
		if e.Revision < min {
			return false, false // backwards past the window
		}
		return !meta.expired(e, now), true
	})
}

// sendUpTo sends the events read that keep accepts, until count are sent,
// keep says stop, or the read ends.
func (r *reader) sendUpTo(stream string, count uint64, read func(func(esstore.RecordedEvent) bool) error, keep func(*esstore.RecordedEvent) (send, more bool)) error {
	var sendErr error
	sent := uint64(0)
	err := read(func(e esstore.RecordedEvent) bool {
		send, more := keep(&e)
		if !send {
			return more
		}
		if sendErr = r.send(&e); sendErr != nil {
			return false
		}
		sent++
		return more && sent < count
	})
	if sendErr != nil {
		return sendErr
	}
	return storeError(r.srv, stream, err)
}

func (r *reader) baseTombstoned(ctx context.Context, meta string) bool {
	st, err := r.svc.store.State(ctx, strings.TrimPrefix(meta, metaPrefix))
	return err == nil && st.Tombstoned
}

// readAll reads $all: forwards from a position includes it, backwards
// from a position starts before it, as in KurrentDB.
func (r *reader) readAll(ao *streams.ReadReq_Options_AllOptions, forward bool, count uint64) error {
	ctx := r.srv.Context()
	var from uint64
	switch p := ao.GetAllOption().(type) {
	case *streams.ReadReq_Options_AllOptions_Position:
		from = p.Position.GetCommitPosition()
		if !forward {
			if from == 0 {
				return nil
			}
			from--
		}
	case *streams.ReadReq_Options_AllOptions_End:
		if forward {
			return nil
		}
		from = math.MaxUint64
	default: // start
		if !forward {
			return nil
		}
	}
	f, err := newFilter(r.opts.GetFilter())
	if err != nil {
		return status.Errorf(codes.InvalidArgument, "read $all: %v", err)
	}
	// Each event is encoded and sent before the next is read (sendUpTo):
	// the store need not copy it.
	return r.sendUpTo("$all", count, func(fn func(esstore.RecordedEvent) bool) error {
		return r.svc.store.ReadAllBorrowed(ctx, from, forward, fn)
	}, func(e *esstore.RecordedEvent) (send, more bool) { return f.match(e), true })
}
