package esstore

import "sync/atomic"

// Request states: a queued request is either taken by the writer or
// withdrawn by its caller (context cancelled), never both, so a caller that
// has returned is sure its events were not and will not be written.
const (
	reqQueued int32 = iota
	reqTaken
	reqWithdrawn
)

// appendRequest is an Append or a Tombstone waiting for the writer.
type appendRequest struct {
	stream    string
	exp       Expected
	events    []EventData
	tombstone bool

	state atomic.Int32
	res   AppendResult
	err   error
	done  chan struct{} // closed by the writer once res/err are set
}

func newAppendRequest(stream string, exp Expected, events []EventData, tombstone bool) *appendRequest {
	return &appendRequest{stream: stream, exp: exp, events: events, tombstone: tombstone, done: make(chan struct{})}
}

// take is the writer claiming the request; false if it was withdrawn.
func (r *appendRequest) take() bool { return r.state.CompareAndSwap(reqQueued, reqTaken) }

// withdraw is the caller giving up; false if the writer already has it.
func (r *appendRequest) withdraw() bool { return r.state.CompareAndSwap(reqQueued, reqWithdrawn) }

func (r *appendRequest) size() int {
	n := 128 + len(r.stream)
	for i := range r.events {
		n += eventSize(r.stream, &r.events[i])
	}
	return n
}
