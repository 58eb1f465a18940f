package esserver

import (
	"fmt"
	"math"
	"regexp"
	"strings"

	"github.com/google/uuid"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/EventStore/EventStore-Client-Go/v4/protos/streams"

	"github.com/flexstream/flexstream/internal/esstore"
)

// defaultWindow is the search window of a filter that asks for "count".
const defaultWindow = 32

// subscribe serves a catch-up subscription: confirmation, the events after
// the start point read from disk, caught_up, then live events. Live events
// are read from the store too, after each commit, from the last position
// sent — so the hand-over has no gap and no duplicate by construction.
func (r *reader) subscribe() error {
	if err := r.srv.Send(&streams.ReadResp{Content: &streams.ReadResp_Confirmation{
		Confirmation: &streams.ReadResp_SubscriptionConfirmation{SubscriptionId: uuid.NewString()},
	}}); err != nil {
		return err
	}
	switch so := r.opts.GetStreamOption().(type) {
	case *streams.ReadReq_Options_Stream:
		return r.subscribeStream(so.Stream)
	case *streams.ReadReq_Options_All:
		return r.subscribeAll(so.All)
	}
	return status.Error(codes.InvalidArgument, "subscribe: neither a stream nor $all")
}

// wait blocks until the store commits past the head seen in next, the
// client leaves or the server stops.
func (r *reader) wait(next <-chan struct{}) error {
	select {
	case <-next:
		return nil
	case <-r.srv.Context().Done():
		return status.FromContextError(r.srv.Context().Err()).Err()
	case <-r.svc.stop:
		return status.Error(codes.Unavailable, "server is shutting down")
	}
}

func (r *reader) caughtUp() error {
	return r.srv.Send(&streams.ReadResp{Content: &streams.ReadResp_CaughtUp_{CaughtUp: &streams.ReadResp_CaughtUp{}}})
}

func (r *reader) subscribeStream(so *streams.ReadReq_Options_StreamOptions) error {
	ctx := r.srv.Context()
	stream := string(so.GetStreamIdentifier().GetStreamName())
	st, err := r.svc.store.State(ctx, stream)
	if err != nil {
		return storeError(r.srv, stream, err)
	}
	// next is the first revision to send: the start point is exclusive.
	var next uint64
	switch ro := so.GetRevisionOption().(type) {
	case *streams.ReadReq_Options_StreamOptions_Revision:
		next = ro.Revision + 1
	case *streams.ReadReq_Options_StreamOptions_End:
		if st.Exists {
			next = st.Revision + 1
		}
	}
	caught := false
	for {
		_, commit := r.svc.store.Head()
		st, err := r.svc.store.State(ctx, stream)
		if err != nil {
			return storeError(r.srv, stream, err)
		}
		if st.Exists && st.Revision >= next {
			meta, err := r.svc.meta.get(ctx, r.svc.store, stream)
			if err != nil {
				return storeError(r.srv, stream, err)
			}
			if min := meta.minRevision(st.Revision); next < min {
				next = min
			}
			var sendErr error
			err = r.svc.store.ReadStream(ctx, stream, next, true, func(e esstore.RecordedEvent) bool {
				if sendErr = r.send(&e); sendErr != nil {
					return false
				}
				next = e.Revision + 1
				return true
			})
			if sendErr != nil {
				return sendErr
			}
			if err != nil {
				return storeError(r.srv, stream, err)
			}
		}
		if st.Tombstoned {
			return streamDeleted(r.srv, stream)
		}
		if !caught {
			caught = true
			if err := r.caughtUp(); err != nil {
				return err
			}
		}
		if err := r.wait(commit); err != nil {
			return err
		}
	}
}

func (r *reader) subscribeAll(ao *streams.ReadReq_Options_AllOptions) error {
	ctx := r.srv.Context()
	f, err := newFilter(r.opts.GetFilter())
	if err != nil {
		return status.Errorf(codes.InvalidArgument, "subscribe $all: %v", err)
	}
	// next is the first position to consider: the start point is exclusive.
	var next uint64
	switch p := ao.GetAllOption().(type) {
	case *streams.ReadReq_Options_AllOptions_Position:
		next = p.Position.GetCommitPosition() + 1
	case *streams.ReadReq_Options_AllOptions_End:
		head, _ := r.svc.store.Head()
		next = head + 1
	}
	considered := uint64(0)
	lastConsidered := uint64(0)
	caught := false
	for {
		head, commit := r.svc.store.Head()
		if next <= head {
			var sendErr error
			err := r.svc.store.ReadAll(ctx, next, true, func(e esstore.RecordedEvent) bool {
				if e.Position > head {
					return false
				}
				next = e.Position + 1
				lastConsidered = e.Position
				if f.match(&e) {
					if sendErr = r.send(&e); sendErr != nil {
						return false
					}
				}
				if f.active {
					considered++
					if considered%f.checkpointEvery == 0 {
						sendErr = r.checkpoint(e.Position)
					}
				}
				return sendErr == nil
			})
			if sendErr != nil {
				return sendErr
			}
			if err != nil {
				return storeError(r.srv, "$all", err)
			}
		}
		if !caught {
			caught = true
			if f.active && lastConsidered > 0 {
				if err := r.checkpoint(lastConsidered); err != nil {
					return err
				}
			}
			if err := r.caughtUp(); err != nil {
				return err
			}
		}
		if err := r.wait(commit); err != nil {
			return err
		}
	}
}

func (r *reader) checkpoint(pos uint64) error {
	return r.srv.Send(&streams.ReadResp{Content: &streams.ReadResp_Checkpoint_{Checkpoint: &streams.ReadResp_Checkpoint{
		CommitPosition: pos, PreparePosition: pos,
	}}})
}

// filter is a server-side $all filter on event type or stream name, by
// prefixes or an (unanchored, as in .NET's IsMatch) regular expression.
type filter struct {
	active          bool
	onStream        bool
	prefixes        []string
	re              *regexp.Regexp
	checkpointEvery uint64
}

func newFilter(fo *streams.ReadReq_Options_FilterOptions) (filter, error) {
	if fo == nil {
		return filter{}, nil
	}
	f := filter{active: true}
	var expr *streams.ReadReq_Options_FilterOptions_Expression
	switch v := fo.GetFilter().(type) {
	case *streams.ReadReq_Options_FilterOptions_StreamIdentifier:
		f.onStream, expr = true, v.StreamIdentifier
	case *streams.ReadReq_Options_FilterOptions_EventType:
		expr = v.EventType
	default:
		return filter{}, fmt.Errorf("filter has neither an event type nor a stream expression")
	}
	if rx := expr.GetRegex(); rx != "" {
		re, err := regexp.Compile(rx)
		if err != nil {
			return filter{}, fmt.Errorf("filter regex: %w", err)
		}
		f.re = re
	} else {
		f.prefixes = expr.GetPrefix()
	}
	window := uint64(defaultWindow)
	if w, ok := fo.GetWindow().(*streams.ReadReq_Options_FilterOptions_Max); ok && w.Max > 0 {
		window = uint64(w.Max)
	}
	mult := uint64(fo.GetCheckpointIntervalMultiplier())
	if mult == 0 {
		return filter{}, fmt.Errorf("checkpointIntervalMultiplier must be greater than 0")
	}
	f.checkpointEvery = window * mult
	if f.checkpointEvery == 0 || f.checkpointEvery > math.MaxUint32 {
		f.checkpointEvery = math.MaxUint32
	}
	return f, nil
}

func (f filter) match(e *esstore.RecordedEvent) bool {
	if !f.active {
		return true
	}
	s := e.Type
	if f.onStream {
		s = e.Stream
	}
	if f.re != nil {
		return f.re.MatchString(s)
	}
	for _, p := range f.prefixes {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return len(f.prefixes) == 0
}
