package esstore

// freedMemory hands the storage engine's freed memory back to the system
// (trimCHeap) after the engine has freed some, on a goroutine of its own:
// Pebble calls its event listeners synchronously, some with its mutex
// held, and a trim takes ≈ 0.7 ms. Requests that arrive during a trim
// are merged into one more trim after it.
type freedMemory struct {
	trim func()
	req  chan struct{}
	stop chan struct{}
	done chan struct{}
}

func newFreedMemory(trim func()) *freedMemory {
	f := &freedMemory{trim: trim, req: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
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
			f.trim()
		case <-f.stop:
			return
		}
	}
}

// close stops the goroutine, after the trim in progress if any.
func (f *freedMemory) close() {
	close(f.stop)
	<-f.done
}
