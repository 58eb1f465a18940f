package esstore

import "time"

// trimEvery is the shortest time between two trims. A trim walks every
// malloc arena under its lock, so C allocations elsewhere wait for it, and
// its time grows with the heap (≈ 0.7 ms at ≈ 100 MiB): with a large block
// cache, a trim after every one of a burst of compactions would show in
// read latencies.
const trimEvery = 250 * time.Millisecond

// freedMemory hands the storage engine's freed memory back to the system
// (trimCHeap) after the engine has freed some, on a goroutine of its own:
// Pebble calls its event listeners synchronously, some with its mutex
// held. Requests that arrive during a trim, or less than the interval
// after one, are merged into one trim once the interval has passed; none
// is dropped.
type freedMemory struct {
	trim  func()
	every time.Duration
	req   chan struct{}
	stop  chan struct{}
	done  chan struct{}
}

func newFreedMemory(trim func(), every time.Duration) *freedMemory {
	f := &freedMemory{trim: trim, every: every, req: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
	go f.run()
	return f
}

// freed asks for a trim; it never blocks.
func (f *freedMemory) freed() {
	select {
	case f.req <- struct{}{}:
	default:
	}
}

func (f *freedMemory) run() {
	defer close(f.done)
	for {
		select {
		case <-f.req:
		case <-f.stop:
			return
		}
		f.trim()
		pause := time.NewTimer(f.every)
		select {
		case <-pause.C:
		case <-f.stop:
			pause.Stop()
			return
		}
	}
}

// close stops the goroutine, after the trim in progress if any.
func (f *freedMemory) close() {
	close(f.stop)
	<-f.done
}
