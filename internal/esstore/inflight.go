package esstore

import "sync"

// inflightStates holds, while a batch is being committed, the committed
// records of the streams it changes. The storage engine makes a batch
// readable before its fsync returns, so without this State could report an
// append that is not yet durable, nor acknowledged, nor below the head.
type inflightStates struct {
	mu   sync.RWMutex
	prev map[string]streamRecord
}

func (f *inflightStates) set(prev map[string]streamRecord) {
	f.mu.Lock()
	f.prev = prev
	f.mu.Unlock()
}

func (f *inflightStates) clear() {
	f.mu.Lock()
	f.prev = nil
	f.mu.Unlock()
}

// lookup returns the committed record of name: the one saved here if the
// stream is in flight, otherwise what read returns. The read lock is held
// during read so that no commit can start between the two.
func (f *inflightStates) lookup(name string, read func() (streamRecord, error)) (streamRecord, error) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	if rec, ok := f.prev[name]; ok {
		return rec, nil
	}
	return read()
}
