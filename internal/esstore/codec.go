package esstore

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"time"
)

// errCorrupt marks a record that does not decode: the store returns it
// instead of panicking, whatever is on disk.
var errCorrupt = errors.New("esstore: corrupt record")

// Log record layout (version 2), the value of the log key of the first
// position of one append: the append's events, at consecutive positions
// and revisions from the key's position and the record's first revision.
//
//	version        1 byte (2)
//	stream         uvarint length + bytes
//	created        8 bytes, Unix nanoseconds, big-endian
//	first revision uvarint (tombstoneRevision for a tombstone)
//	count          uvarint, ≥ 1
//	count times:
//	  id           16 bytes
//	  type         uvarint length + bytes
//	  content type 1 byte code; codeOther is followed by uvarint length + bytes
//	  metadata     uvarint length + bytes
//	  data         uvarint length + bytes
const logRecordVersion = 2

// tombstoneRevision is the revision of a "$streamDeleted" record, as in
// KurrentDB (long.MaxValue).
const tombstoneRevision = uint64(math.MaxInt64)

// Stream-deleted record fields.
const (
	tombstoneType        = "$streamDeleted"
	contentTypeJSON      = "application/json"
	contentTypeOctet     = "application/octet-stream"
	contentCodeJSON      = 0
	contentCodeOctet     = 1
	contentCodeOther     = 2
	maxEventHeaderLength = 16 + 10 + 1 + 10 + 10 + 10
)

// appendLogRecordHeader starts a log record of n events; appendLogEvent
// then adds each of them, in order.
func appendLogRecordHeader(dst []byte, stream string, created int64, firstRev uint64, n int) []byte {
	dst = append(dst, logRecordVersion)
	dst = binary.AppendUvarint(dst, uint64(len(stream)))
	dst = append(dst, stream...)
	dst = binary.BigEndian.AppendUint64(dst, uint64(created))
	dst = binary.AppendUvarint(dst, firstRev)
	return binary.AppendUvarint(dst, uint64(n))
}

func appendLogEvent(dst []byte, e *EventData) []byte {
	dst = append(dst, e.ID[:]...)
	dst = binary.AppendUvarint(dst, uint64(len(e.Type)))
	dst = append(dst, e.Type...)
	switch e.ContentType {
	case contentTypeJSON:
		dst = append(dst, contentCodeJSON)
	case contentTypeOctet:
		dst = append(dst, contentCodeOctet)
	default:
		dst = append(dst, contentCodeOther)
		dst = binary.AppendUvarint(dst, uint64(len(e.ContentType)))
		dst = append(dst, e.ContentType...)
	}
	dst = binary.AppendUvarint(dst, uint64(len(e.Metadata)))
	dst = append(dst, e.Metadata...)
	dst = binary.AppendUvarint(dst, uint64(len(e.Data)))
	return append(dst, e.Data...)
}

// recordReader walks a record, remembering the first error.
type recordReader struct {
	b   []byte
	bad bool
}

func (r *recordReader) uvarint() uint64 {
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.bad = true
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *recordReader) bytes(n uint64) []byte {
	if r.bad || n > uint64(len(r.b)) {
		r.bad = true
		return nil
	}
	out := r.b[:n:n]
	r.b = r.b[n:]
	return out
}

func (r *recordReader) lengthPrefixed() []byte { return r.bytes(r.uvarint()) }

// logHeader is a log record's header.
type logHeader struct {
	stream   []byte
	created  int64
	firstRev uint64
	count    uint64
}

func decodeLogHeader(r *recordReader) (logHeader, bool) {
	if len(r.b) == 0 || r.b[0] != logRecordVersion {
		return logHeader{}, false
	}
	r.b = r.b[1:]
	var h logHeader
	h.stream = r.lengthPrefixed()
	if c := r.bytes(8); c != nil {
		h.created = int64(binary.BigEndian.Uint64(c))
	}
	h.firstRev = r.uvarint()
	h.count = r.uvarint()
	// Each event takes at least 20 bytes: a larger count is corrupt (and
	// must not size an allocation).
	if r.bad || h.count == 0 || h.count > uint64(len(r.b))/20 || h.firstRev > tombstoneRevision || h.count-1 > tombstoneRevision-h.firstRev {
		return logHeader{}, false
	}
	return h, true
}

// recordCount decodes just the number of events of a log record.
func recordCount(v []byte) (uint64, bool) {
	r := recordReader{b: v}
	h, ok := decodeLogHeader(&r)
	return h.count, ok
}

// eventSpan is one event of a decoded log record; its slices point into
// the record's value.
type eventSpan struct {
	id    []byte
	typ   []byte
	ctype string
	meta  []byte
	data  []byte
}

// logRecord is a decoded log record. Its spans point into the value it was
// decoded from, which must stay valid while it is used.
type logRecord struct {
	first  uint64 // position of events[0]
	hdr    logHeader
	events []eventSpan
}

// last is the position of the record's last event.
func (l *logRecord) last() uint64 { return l.first + uint64(len(l.events)) - 1 }

// eventDecoder decodes log records. It reuses the previous stream name
// and type string when they repeat, which they mostly do in a scan, to
// spare an allocation per event.
type eventDecoder struct {
	stream, typ string
	rec         logRecord
}

func (d *eventDecoder) intern(last *string, b []byte) string {
	if string(b) != *last { // the conversion in a comparison does not allocate
		*last = string(b)
	}
	return *last
}

// parse decodes the record whose first event is at position first into
// d.rec, checking all of it.
func (d *eventDecoder) parse(first uint64, v []byte) error {
	rec := &d.rec
	rec.first = first
	rec.events = rec.events[:0]
	r := recordReader{b: v}
	h, ok := decodeLogHeader(&r)
	if !ok {
		return fmt.Errorf("%w: log record at position %d", errCorrupt, first)
	}
	rec.hdr = h
	if first+h.count-1 < first { // positions would wrap
		return fmt.Errorf("%w: log record at position %d", errCorrupt, first)
	}
	for range h.count {
		var s eventSpan
		s.id = r.bytes(16)
		s.typ = r.lengthPrefixed()
		switch code := r.bytes(1); {
		case len(code) == 0:
		case code[0] == contentCodeJSON:
			s.ctype = contentTypeJSON
		case code[0] == contentCodeOctet:
			s.ctype = contentTypeOctet
		case code[0] == contentCodeOther:
			s.ctype = string(r.lengthPrefixed())
		default:
			r.bad = true
		}
		s.meta = r.lengthPrefixed()
		s.data = r.lengthPrefixed()
		if r.bad {
			break
		}
		rec.events = append(rec.events, s)
	}
	if r.bad || len(r.b) != 0 {
		rec.events = rec.events[:0]
		return fmt.Errorf("%w: log record at position %d", errCorrupt, first)
	}
	return nil
}

// borrowed is the i-th event of the parsed record with its payloads
// pointing into the record's value, valid while that value is.
func (d *eventDecoder) borrowed(i int) RecordedEvent {
	e := d.header(i)
	s := &d.rec.events[i]
	e.Metadata, e.Data = s.meta, s.data
	return e
}

// header is the i-th event of the parsed record without its payloads.
func (d *eventDecoder) header(i int) RecordedEvent {
	rec := &d.rec
	s := &rec.events[i]
	e := RecordedEvent{
		Stream:      d.intern(&d.stream, rec.hdr.stream),
		Revision:    rec.hdr.firstRev + uint64(i),
		Position:    rec.first + uint64(i),
		Type:        d.intern(&d.typ, s.typ),
		ContentType: s.ctype,
		Created:     time.Unix(0, rec.hdr.created).UTC(),
	}
	copy(e.ID[:], s.id)
	return e
}

// event materializes the i-th event of the parsed record. The result owns
// its memory: the caller may keep it after the record's buffer is reused.
func (d *eventDecoder) event(i int) RecordedEvent {
	e := d.header(i)
	s := &d.rec.events[i]
	// One allocation for both payloads; capacities are clipped so that an
	// append by the caller to one cannot overwrite the other.
	buf := make([]byte, len(s.meta)+len(s.data))
	copy(buf, s.meta)
	copy(buf[len(s.meta):], s.data)
	e.Metadata = buf[:len(s.meta):len(s.meta)]
	e.Data = buf[len(s.meta):]
	return e
}

// streamRecord is what the store keeps per stream, the value of a stream
// key: 8 bytes sid, 1 byte flags, 8 bytes last revision, 8 bytes last
// position.
type streamRecord struct {
	sid        uint64 // 0 until the stream's first event
	exists     bool   // at least one event was appended
	tombstoned bool
	lastRev    uint64 // revision of the last event, when exists
	lastPos    uint64 // position of the last record written for the stream

	// recentFrom is in memory only (not in the encoded record): for a
	// stream whose first event this process wrote, 1 + the count of the
	// writer's recentIDs puts before it, so that while those entries are
	// all still remembered the recent ids hold every id of the stream
	// (recentIDs.holdsSince); 0 when unknown (read from disk).
	recentFrom uint64
}

const (
	flagExists      = 1
	flagTombstoned  = 2
	streamRecordLen = 25
)

func (s streamRecord) state() StreamState {
	return StreamState{Exists: s.exists, Revision: s.lastRev, Tombstoned: s.tombstoned}
}

// current is the stream's last revision, or -1 if it has no event, as the
// expected-revision rules compare it.
func (s streamRecord) current() int64 {
	if !s.exists {
		return -1
	}
	return int64(s.lastRev)
}

// nextRevision is the revision the stream's next event gets.
func (s streamRecord) nextRevision() uint64 {
	if !s.exists {
		return 0
	}
	return s.lastRev + 1
}

func appendStreamRecord(dst []byte, s streamRecord) []byte {
	dst = binary.BigEndian.AppendUint64(dst, s.sid)
	var flags byte
	if s.exists {
		flags |= flagExists
	}
	if s.tombstoned {
		flags |= flagTombstoned
	}
	dst = append(dst, flags)
	dst = binary.BigEndian.AppendUint64(dst, s.lastRev)
	return binary.BigEndian.AppendUint64(dst, s.lastPos)
}

func decodeStreamRecord(v []byte) (streamRecord, error) {
	if len(v) != streamRecordLen || v[8]&^(flagExists|flagTombstoned) != 0 {
		return streamRecord{}, fmt.Errorf("%w: stream record %x", errCorrupt, bytes.Clone(v))
	}
	return streamRecord{
		sid:        binary.BigEndian.Uint64(v),
		exists:     v[8]&flagExists != 0,
		tombstoned: v[8]&flagTombstoned != 0,
		lastRev:    binary.BigEndian.Uint64(v[9:]),
		lastPos:    binary.BigEndian.Uint64(v[17:]),
	}, nil
}

// eventSize estimates the bytes an event takes in a batch, to bound the
// size of a commit group.
func eventSize(stream string, e *EventData) int {
	return maxEventHeaderLength + len(stream) + len(e.Type) + len(e.ContentType) + len(e.Metadata) + len(e.Data) + 64
}
