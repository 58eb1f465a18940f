package esstore

// The on-disk store, on Pebble (an LSM tree), chosen over bbolt (a B+tree)
// by measuring this workload on the project's 2-core machine (ext4, fsync
// ≈0.2 ms). The same key layout (keys.go), one writer goroutine, group
// commit, four keys per event; ~300-byte JSON events:
//
//	                                        Pebble v2.1.7        bbolt v1.5.0
//	(a) 64 writers × 1 event, fsync/ack     71 400 appends/s     12 600 appends/s
//	    latency p50 / p99                   0.66 ms / 5.1 ms     4.8 ms / 11.3 ms
//	(b) 8 writers × 100 events, fsync/ack   214 000 events/s     143 000 events/s
//	(c) forward scan of 1 M events (warm)   0.71-0.84 s          0.21-0.24 s
//	    forward scan of 5 M events          6.5 s                0.9 s
//	(d) RSS after writing 5 M events        95 MiB               519 MiB (peak 1.0 GiB)
//	    RSS after scanning 5 M events       150 MiB (peak 185)   2.4 GiB
//	    size on disk, 5 M events            427 MiB              2.4 GiB
//
// (Pebble there had a 64 MiB block cache and 32 MiB memtables. The
// payloads compress well, which flatters Pebble's size on disk.)
//
// bbolt scans faster because it reads its memory-mapped file in place, but
// that is also why it fails the memory target: every page it touches
// counts in the process's resident set, so RSS grows to the size of the
// data (2.4 GiB after a scan of 5 M events), and each commit costs two
// fsyncs and a copy-on-write of the B+tree path, which caps group commit at
// about 400 commits/s here against Pebble's ~3 600 (one WAL fdatasync).
// Pebble keeps memory bounded by configuration (block cache + memtables)
// and wins the write paths, which are the ones that are acknowledged with
// a client waiting; a 5 M-event catch-up still reads at ~770 000 events/s.
//
// This implementation, same machine, default Options (go test -bench):
// 64 goroutines × 1 event with fsync 42 000 appends/s (the exact event-id
// lookup of every ExpectAny append costs the writer ~9 µs); 100-event
// appends with fsync 168 000 events/s from one goroutine, 199 000 from 8;
// ReadAll 1.7 M events/s over 1 M events, 1.1-1.2 M/s over 5 M; RSS 93 MiB
// after loading 5 M events and 175 MiB after scanning them all.

// Since format 2 the keys are per append, not per event (keys.go): one log
// record holding the append's events, one revision key at its first
// revision, one id key for its first event id. Random index keys were what
// the engine's memtable inserts and compactions spent their time on, so an
// append of 100 events now costs about what an append of one does in keys.
// The price is in idempotency: the id index finds exactly an append's
// first id, however old, and the following ids are compared from the log
// records at the revisions after it; an id that was not first in its
// append is known only from the writer's bounded memory of the events of
// the latest appends (Options.RecentIDs, DefaultRecentIDs), like
// KurrentDB's cache of recent events. A retry with ExpectAny or
// ExpectStreamExists that starts in the middle of an append older than
// that is therefore written again as new events (see Store.Append), and
// for an id that occurs several times in a stream the "latest occurrence"
// is the latest among the recent appends and the appends it began.
// Retries by revision (ExpectRevision, ExpectNoStream) stay exact.
//
// Format 2, same machine, the whole server against its null-store ceiling
// (flexstream store bench, medians of 3 rounds, four runs each): appends
// of 100 events 0.46-0.51 of the ceiling before, 0.61-0.69 after (the
// store alone 95-115 k → 148-171 k events/s); single-event appends
// unchanged within the noise (0.49-0.64); $all catch-up 0.80-0.86 →
// 0.89-0.94. RSS after 5 M events 163-203 MiB against 168-173 before,
// noise from the engine's cache fill: the Go heap is ~9 MiB at the end,
// of which the recent ids (fixed, ~5 MiB for 100 000) are the growth.
//
// Tried next (same bench, ratios of paired rounds because the machine was
// loaded): the writer skips the id-index Get for a stream it created while
// the recent ids still hold all of that stream's ids (recentFrom): single
// appends 0.49 → 0.54, median of 15 paired rounds, kept (full runs did not
// show it beyond their noise). Taking a group-commit slot before draining
// the queue (2 groups in flight) doubled the appends per group (6 → 12)
// and halved the WAL syncs, but moved no ratio beyond the noise (0.56 with
// the skip, 0.50 without): not kept. NoCompression on every level:
// appends of 100 0.64 → 0.57 (more bytes to flush), not kept. Under load
// the WAL fsync averaged 0.64 ms (0.15 ms on an idle disk), and the store
// side keeps ~1.5 of the 2 cores busy where the ceiling keeps ~1.8: the
// single-append gap is that wait as much as the store's CPU (~20 µs per
// append: memtable inserts, WAL writes, flushes).
//
// What that wait is (perf, block and scheduler events, later): each WAL
// fdatasync is a data write, a 4 KiB inode write (ext4 without a journal
// here, and every write changes the mtime) and a cache flush, ≈ 480 µs in
// the bench against ≈ 150 µs in a probe; ~40 % of it the woken thread
// waits for a core that the process's own threads hold (PREEMPT_NONE,
// 250 Hz). A dedicated fsync thread at nice −10, with or without keeping
// its P, cut the fdatasync to 465 / 358 µs and moved no throughput;
// several fdatasyncs in flight at once (one per group) were slower.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/bloom"
	"github.com/cockroachdb/pebble/v2/sstable"
	"github.com/cockroachdb/pebble/v2/vfs"
	"go.uber.org/zap"
)

// queueSize bounds the appends waiting for the writer; callers beyond it
// block (or give up with their context), which is the back-pressure.
const queueSize = 4096

// slowDiskThreshold is how long a disk operation may take before it is
// logged (Pebble's default).
const slowDiskThreshold = 5 * time.Second

// diskStore is the Store on disk.
type diskStore struct {
	db       *pebble.DB
	log      *zap.Logger
	head     headPublisher
	inflight inflightStates
	reads    readGate

	queue      chan *appendRequest
	qmu        sync.RWMutex // held for reading while sending to queue; Close takes it to close queue
	qclosed    bool
	closing    chan struct{} // closed when Close starts: wakes blocked senders and long reads
	writerDone chan struct{}
	fsCloser   io.Closer
	freed      *freedMemory
	w          *writer // owned by its goroutine; tests drive it directly

	failMu  sync.Mutex
	failErr error

	closeOnce sync.Once
	closeErr  error
}

// Open opens (creating it if needed) the store in dir, recovering the head
// from disk after a crash.
func Open(ctx context.Context, dir string, opts Options) (Store, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("esstore: open %s: %w", dir, err)
	}
	if dir == "" {
		return nil, fmt.Errorf("esstore: open: no directory: %w", ErrInvalid)
	}
	opts = opts.withDefaults()
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("esstore: open: %w", err)
	}
	// The file system is ours, not Pebble's default, so that its
	// disk-health goroutine is stopped even when Open fails (Pebble leaks
	// it then) and slow disks are logged.
	log := opts.Logger.Named("esstore")
	fs, fsCloser := vfs.WithDiskHealthChecks(vfs.Default, slowDiskThreshold, nil, func(info vfs.DiskSlowInfo) {
		log.Warn("slow disk", zap.String("info", info.String()))
	})
	// Pebble charges its memtables to the block cache: without room for
	// them, the cache holds nothing (measured: 0 blocks, 2% hit rate, and
	// appends slowed by half, reading index blocks from disk).
	cache := pebble.NewCache(opts.CacheSize + 2*int64(opts.MemTableSize))
	freed := newFreedMemory(opts.trim, trimEvery)
	db, err := pebble.Open(dir, pebbleOptions(opts, cache, fs, freed.freed))
	cache.Unref() // the DB holds its own reference
	if err != nil {
		freed.close()
		_ = fsCloser.Close()
		return nil, fmt.Errorf("esstore: open %s: %w", dir, err)
	}
	s, err := start(db, opts)
	if err != nil {
		_ = db.Close()
		freed.close()
		_ = fsCloser.Close()
		return nil, fmt.Errorf("esstore: open %s: %w", dir, err)
	}
	s.fsCloser = fsCloser
	s.freed = freed
	s.log.Info("store opened", zap.String("dir", dir), zap.Uint64("head", s.head.position()), zap.Bool("no_sync", opts.NoSync))
	return s, nil
}

func pebbleOptions(opts Options, cache *pebble.Cache, fs vfs.FS, freed func()) *pebble.Options {
	o := &pebble.Options{
		FS:                 fs,
		Cache:              cache,
		MemTableSize:       opts.MemTableSize,
		FormatMajorVersion: pebble.FormatNewest,
		Logger:             pebbleLogger{opts.Logger.Sugar()},
	}
	// Idempotency checks look up random event ids, mostly absent: bloom
	// filters answer those without touching data blocks. Pebble's fastest
	// compression (MinLZ on amd64) instead of its default Snappy: flushes
	// spent most of their CPU in Snappy on the blob files, and appends of
	// 100 measured 0.61 / 0.61 / 0.67 of the ceiling against 0.57 / 0.58 /
	// 0.63 with Snappy, in alternating runs.
	for i := range o.Levels {
		o.Levels[i].FilterPolicy = bloom.FilterPolicy(10)
		o.Levels[i].Compression = func() *sstable.CompressionProfile { return sstable.FastestCompression }
	}
	// Events are written once and never updated or deleted, so rewriting
	// their bodies in every compaction is pure waste: values past a few
	// hundred bytes go to blob files at flush and stay there, and
	// compactions move only keys and small index values.
	// The log only grows, in key order per family: let L0 gather more
	// flushed tables before compacting them, so each compaction merges
	// more at once and the same keys are rewritten fewer times.
	o.L0CompactionThreshold = 8
	o.L0StopWritesThreshold = 32
	o.LBaseMaxBytes = 256 << 20
	// A flush frees a memtable and a compaction the blocks it evicted; that
	// is when there is memory to hand back (see freedMemory).
	o.AddEventListener(pebble.EventListener{
		FlushEnd:      func(pebble.FlushInfo) { freed() },
		CompactionEnd: func(pebble.CompactionInfo) { freed() },
	})
	o.Experimental.ValueSeparationPolicy = func() pebble.ValueSeparationPolicy {
		return pebble.ValueSeparationPolicy{Enabled: true, MinimumSize: 128, MaxBlobReferenceDepth: 10, RewriteMinimumAge: time.Hour, TargetGarbageRatio: 1.0}
	}
	return o
}

// pebbleLogger routes the engine's messages to zap. Its informational
// messages (compactions, WAL recycling) are debug level for us; Fatalf
// must not return, and zap's Fatal exits.
type pebbleLogger struct{ l *zap.SugaredLogger }

func (p pebbleLogger) Infof(format string, args ...any)  { p.l.Debugf(format, args...) }
func (p pebbleLogger) Errorf(format string, args ...any) { p.l.Errorf(format, args...) }
func (p pebbleLogger) Fatalf(format string, args ...any) { p.l.Fatalf(format, args...) }

// start recovers the store's counters from disk and starts the writer.
func start(db *pebble.DB, opts Options) (*diskStore, error) {
	if err := checkFormat(db); err != nil {
		return nil, err
	}
	head, err := lastPosition(db)
	if err != nil {
		return nil, err
	}
	nextSID, err := readU64(db, metaNextSIDKey)
	if err != nil {
		return nil, err
	}
	s := &diskStore{
		db:         db,
		log:        opts.Logger.Named("esstore"),
		queue:      make(chan *appendRequest, queueSize),
		closing:    make(chan struct{}),
		writerDone: make(chan struct{}),
	}
	s.head.init(head)
	syncOpt := pebble.Sync
	if opts.NoSync {
		syncOpt = pebble.NoSync
	}
	w := &writer{
		db:       db,
		syncOpt:  syncOpt,
		log:      s.log,
		queue:    s.queue,
		cache:    newStateCache(opts.StreamCacheSize),
		recent:   newRecentIDs(opts.RecentIDs),
		inflight: &s.inflight,
		head:     &s.head,
		onFail:   s.setFailed,
		pos:      head,
		nextSID:  nextSID,
		pending:  make(map[string]*pendingStream),
	}
	s.w = w
	w.durable = make(chan *groupJob, maxGroupsInFlight)
	w.synced = make(chan struct{})
	go w.syncer()
	go w.run(s.writerDone)
	return s, nil
}

// checkFormat stamps a new store with the format version and refuses a
// directory written in another format (or by something else).
func checkFormat(db *pebble.DB) error {
	v, closer, err := db.Get(metaFormatKey)
	if err == nil {
		defer closer.Close()
		if len(v) != 8 || decodeU64(v) != formatVersion {
			if len(v) == 8 {
				return fmt.Errorf("esstore: the directory holds an event store in format %d, which this version cannot read (it reads format %d)", decodeU64(v), formatVersion)
			}
			return fmt.Errorf("esstore: unsupported format %x (want %d)", v, formatVersion)
		}
		return nil
	}
	if !errors.Is(err, pebble.ErrNotFound) {
		return err
	}
	it, err := db.NewIter(nil)
	if err != nil {
		return err
	}
	nonEmpty := it.First()
	if err := errors.Join(it.Error(), it.Close()); err != nil {
		return err
	}
	if nonEmpty {
		return errors.New("esstore: the directory holds a database that is not an event store")
	}
	return db.Set(metaFormatKey, appendU64(nil, formatVersion), pebble.Sync)
}

// lastPosition is the position of the last event in the log: the head,
// the last position of the last log record. Batches are atomic, so after a
// crash this is the last committed group.
func lastPosition(db *pebble.DB) (uint64, error) {
	it, err := db.NewIter(&pebble.IterOptions{LowerBound: []byte{prefixLog}, UpperBound: []byte{prefixLog + 1}})
	if err != nil {
		return 0, err
	}
	var pos uint64
	if it.Last() {
		first, ok := positionOfLogKey(it.Key())
		var v []byte
		if ok {
			v, err = it.ValueAndErr()
		}
		var n uint64
		if ok && err == nil {
			n, ok = recordCount(v)
		}
		switch {
		case err != nil:
		case !ok || first == 0 || first+n-1 < first:
			err = fmt.Errorf("%w: log record %x", errCorrupt, it.Key())
		default:
			pos = first + n - 1
		}
	}
	return pos, errors.Join(err, it.Error(), it.Close())
}

func readU64(db *pebble.DB, key []byte) (uint64, error) {
	v, closer, err := db.Get(key)
	if errors.Is(err, pebble.ErrNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	defer closer.Close()
	if len(v) != 8 {
		return 0, fmt.Errorf("%w: key %q", errCorrupt, key)
	}
	return decodeU64(v), nil
}

func (s *diskStore) setFailed(err error) {
	s.failMu.Lock()
	s.failErr = err
	s.failMu.Unlock()
}

// Head implements Store.
func (s *diskStore) Head() (uint64, <-chan struct{}) { return s.head.get() }

// Close answers every queued append (they are committed), stops the
// writer, waits for the reads in progress (which stop at their next event
// with ErrClosed) and closes the engine. After it, Head's channel is
// closed for good.
func (s *diskStore) Close() error {
	s.closeOnce.Do(func() {
		close(s.closing)
		s.qmu.Lock() // waits for the senders in progress
		s.qclosed = true
		close(s.queue)
		s.qmu.Unlock()
		<-s.writerDone
		s.head.close()
		s.reads.close()
		dbErr := s.db.Close()
		s.freed.close()
		if err := errors.Join(dbErr, s.fsCloser.Close()); err != nil {
			s.closeErr = fmt.Errorf("esstore: close: %w", err)
		}
		s.log.Info("store closed")
	})
	return s.closeErr
}
