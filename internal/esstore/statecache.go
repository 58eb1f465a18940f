package esstore

// stateCache is a bounded LRU of stream records, owned by the writer
// goroutine (no locking). The records on disk are the truth; the cache only
// spares the writer a read per append to a hot stream, and its bound keeps
// memory flat however many streams there are.
type stateCache struct {
	max   int
	items map[string]*cacheEntry
	root  cacheEntry // sentinel of a circular list, most recent first
}

type cacheEntry struct {
	key        string
	rec        streamRecord
	prev, next *cacheEntry
}

func newStateCache(max int) *stateCache {
	if max < 1 {
		max = 1
	}
	c := &stateCache{max: max, items: make(map[string]*cacheEntry)}
	c.root.prev, c.root.next = &c.root, &c.root
	return c
}

func (c *stateCache) get(key string) (streamRecord, bool) {
	e, ok := c.items[key]
	if !ok {
		return streamRecord{}, false
	}
	c.moveToFront(e)
	return e.rec, true
}

func (c *stateCache) put(key string, rec streamRecord) {
	if e, ok := c.items[key]; ok {
		e.rec = rec
		c.moveToFront(e)
		return
	}
	var e *cacheEntry
	if len(c.items) >= c.max {
		// Reuse the least recently used entry rather than allocating.
		e = c.root.prev
		c.unlink(e)
		delete(c.items, e.key)
	} else {
		e = new(cacheEntry)
	}
	e.key, e.rec = key, rec
	c.items[key] = e
	c.pushFront(e)
}

func (c *stateCache) len() int { return len(c.items) }

func (c *stateCache) unlink(e *cacheEntry) {
	e.prev.next = e.next
	e.next.prev = e.prev
}

func (c *stateCache) pushFront(e *cacheEntry) {
	e.prev = &c.root
	e.next = c.root.next
	c.root.next.prev = e
	c.root.next = e
}

func (c *stateCache) moveToFront(e *cacheEntry) {
	if c.root.next == e {
		return
	}
	c.unlink(e)
	c.pushFront(e)
}
