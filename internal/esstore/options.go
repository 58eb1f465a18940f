package esstore

import "go.uber.org/zap"

// Defaults for Options fields left at zero. Together they keep the
// resident memory of a store well under 200 MiB whatever the log size:
// the block cache, at most two memtables, and the stream-state cache
// (about 150 bytes per entry plus the stream name), and the recent event
// ids (about 56 bytes per entry, allocated at Open).
const (
	DefaultCacheSize       = 32 << 20
	DefaultMemTableSize    = 16 << 20
	DefaultStreamCacheSize = 64 << 10
	DefaultRecentIDs       = 100_000
)

// Options configure Open. The zero value is a durable store with the
// defaults above.
type Options struct {
	// NoSync acknowledges appends without waiting for the fsync: an
	// acknowledged append survives a process crash but not a power loss or
	// an OS crash. For tests and benchmarks.
	NoSync bool
	// Logger receives the store's and the storage engine's messages; nil
	// discards them.
	Logger *zap.Logger
	// CacheSize is the storage engine's block cache, in bytes
	// (DefaultCacheSize when 0), on top of the memtables. It must hold the
	// event-id index's filter and index blocks, which every idempotency
	// check reads: too small a cache makes appends read the disk. Full
	// scans go through the OS page cache anyway.
	CacheSize int64
	// MemTableSize is the size of one in-memory write buffer, in bytes
	// (DefaultMemTableSize when 0); at most two are held at once.
	MemTableSize uint64
	// StreamCacheSize is how many stream states the writer keeps in memory
	// (DefaultStreamCacheSize when 0); others are read back from disk.
	StreamCacheSize int
	// RecentIDs is how many event ids of the latest appends the writer
	// remembers, with their revisions (DefaultRecentIDs when 0). The id
	// index holds every id of small appends but only the first event id
	// of an append of more than IndexEveryIDUpTo events: a retry that
	// starts at another event of an earlier append is recognised as one
	// only while that append's ids are among the last RecentIDs written
	// (see Store.Append).
	RecentIDs int

	// trim returns the memory the storage engine freed to the system, after
	// flushes and compactions, at most once every trimEvery (freedMemory);
	// trimCHeap when nil. Tests count its calls.
	trim func()
}

func (o Options) withDefaults() Options {
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	if o.CacheSize <= 0 {
		o.CacheSize = DefaultCacheSize
	}
	if o.MemTableSize == 0 {
		o.MemTableSize = DefaultMemTableSize
	}
	if o.StreamCacheSize <= 0 {
		o.StreamCacheSize = DefaultStreamCacheSize
	}
	if o.RecentIDs <= 0 {
		o.RecentIDs = DefaultRecentIDs
	}
	if o.trim == nil {
		o.trim = trimCHeap
	}
	return o
}
