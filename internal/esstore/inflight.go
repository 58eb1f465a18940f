package esstore

import "sync"

// inflightStates holds, while batches are applied but not yet durable, the
// durable records of the streams they change. The storage engine makes a
// batch readable before its fsync returns, so without this State could
// report an append that is not yet durable, nor acknowledged, nor below
// the head. Several groups may be in flight; a stream stays here until the
// last group touching it is durable.
type inflightStates struct {
	mu   sync.RWMutex
	prev map[string]inflightEntry
}

type inflightEntry struct {
	rec    streamRecord // the durable record
	groups int          // in-flight groups that change the stream
}

// begin registers a group about to be applied; durable holds, per stream
// it changes, the record the writer had before the group. For a stream
// already in flight that record is not durable yet, so the saved one stays.
func (f *inflightStates) begin(durable map[string]streamRecord) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.prev == nil {
		f.prev = make(map[string]inflightEntry)
	}
	for name, rec := range durable {
		e, ok := f.prev[name]
		if !ok {
			e.rec = rec
		}
		e.groups++
		f.prev[name] = e
	}
}

// end retires a group. When it became durable its records are the durable
// ones for the streams that later groups still change.
func (f *inflightStates) end(recs map[string]streamRecord, durable bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for name, rec := range recs {
		e, ok := f.prev[name]
		if !ok {
			continue
		}
		e.groups--
		if e.groups <= 0 {
			delete(f.prev, name)
			continue
		}
		if durable {
			e.rec = rec
		}
		f.prev[name] = e
	}
}

// lookup returns the committed record of name: the one saved here if the
// stream is in flight, otherwise what read returns. The read lock is held
// during read so that no group can become durable between the two.
func (f *inflightStates) lookup(name string, read func() (streamRecord, error)) (streamRecord, error) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	if e, ok := f.prev[name]; ok {
		return e.rec, nil
	}
	return read()
}
