package esserver

import (
	"context"
	"encoding/json"
	"math"
	"strings"
	"sync"
	"time"

	"github.com/flexstream/flexstream/internal/esstore"
)

// Stream metadata lives in "$$<stream>" as "$metadata" events; KurrentDB
// applies the latest one on every read of the stream.
const (
	metaPrefix     = "$$"
	metaEventType  = "$metadata"
	tbKey          = "$tb"
	maxAgeKey      = "$maxAge"
	maxCountKey    = "$maxCount"
	softDeletedTB  = math.MaxInt64 // $tb a soft delete writes
	metaCacheLimit = 10000
)

func isMetastream(s string) bool { return strings.HasPrefix(s, metaPrefix) }

func metastreamOf(s string) string { return metaPrefix + s }

// streamMeta is the part of a stream's metadata that changes reads.
type streamMeta struct {
	raw      map[string]json.RawMessage
	maxCount *uint64
	maxAge   *time.Duration
	tb       *uint64
}

func (m streamMeta) softDeleted() bool { return m.tb != nil && *m.tb == softDeletedTB }

func parseMeta(data []byte) streamMeta {
	var m streamMeta
	if json.Unmarshal(data, &m.raw) != nil {
		// Metadata that is not a JSON object constrains nothing.
		return streamMeta{}
	}
	num := func(k string) *uint64 {
		v, ok := m.raw[k]
		if !ok {
			return nil
		}
		var f float64
		if json.Unmarshal(v, &f) != nil || f < 0 {
			return nil
		}
		u := uint64(f)
		if f >= math.MaxInt64 {
			u = math.MaxInt64
		}
		return &u
	}
	m.maxCount = num(maxCountKey)
	m.tb = num(tbKey)
	if s := num(maxAgeKey); s != nil {
		d := time.Duration(*s) * time.Second
		m.maxAge = &d
	}
	return m
}

// metaCache remembers parsed metadata per stream. A stream with metadata
// is checked against its metastream's revision (one State lookup, no read).
// A stream without is remembered as such and costs nothing: this server is
// the only writer of metastreams, and every write to one calls invalidate
// first, so "no metadata" cannot go stale. The epoch keeps a lookup that
// raced with such a write from caching its outdated answer.
type metaCache struct {
	mu    sync.Mutex
	m     map[string]cachedMeta
	epoch uint64
}

type cachedMeta struct {
	exists   bool
	revision uint64
	meta     streamMeta
}

func (c *metaCache) get(ctx context.Context, st esstore.Store, stream string) (streamMeta, error) {
	if isMetastream(stream) {
		// Metastreams keep only their latest event visible, as in KurrentDB.
		one := uint64(1)
		return streamMeta{maxCount: &one}, nil
	}
	c.mu.Lock()
	cm, ok := c.m[stream]
	epoch := c.epoch
	c.mu.Unlock()
	if ok && !cm.exists {
		return streamMeta{}, nil
	}
	ms := metastreamOf(stream)
	state, err := st.State(ctx, ms)
	if err != nil {
		return streamMeta{}, err
	}
	if ok && cm.exists && cm.revision == state.Revision {
		return cm.meta, nil
	}
	entry := cachedMeta{exists: state.Exists, revision: state.Revision}
	if state.Exists {
		err = st.ReadStream(ctx, ms, state.Revision, false, func(e esstore.RecordedEvent) bool {
			entry.meta = parseMeta(e.Data)
			return false
		})
		if err != nil {
			return streamMeta{}, err
		}
	}
	c.mu.Lock()
	if c.epoch == epoch {
		if c.m == nil || len(c.m) >= metaCacheLimit {
			// Dropping everything is crude but bounded; the cache only
			// saves a lookup per stream.
			c.m = make(map[string]cachedMeta)
		}
		c.m[stream] = entry
	}
	c.mu.Unlock()
	return entry.meta, nil
}

// invalidate must be called before anything is appended to stream's
// metastream.
func (c *metaCache) invalidate(stream string) {
	c.mu.Lock()
	c.epoch++
	delete(c.m, stream)
	c.mu.Unlock()
}

// readWindow is the lowest revision a read of a stream whose last revision
// is last may return, given its metadata ($tb and $maxCount).
func (m streamMeta) minRevision(last uint64) uint64 {
	min := uint64(0)
	if m.maxCount != nil && *m.maxCount > 0 && last+1 > *m.maxCount {
		min = last + 1 - *m.maxCount
	}
	if m.tb != nil && *m.tb > min {
		min = *m.tb
	}
	return min
}

// expired says whether $maxAge hides e at now.
func (m streamMeta) expired(e *esstore.RecordedEvent, now time.Time) bool {
	return m.maxAge != nil && e.Created.Before(now.Add(-*m.maxAge))
}

// withTB returns the raw metadata with "$tb" replaced, for undelete.
func (m streamMeta) withTB(tb uint64) []byte {
	raw := make(map[string]json.RawMessage, len(m.raw)+1)
	for k, v := range m.raw {
		raw[k] = v
	}
	raw[tbKey], _ = json.Marshal(tb)
	out, _ := json.Marshal(raw)
	return out
}
