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

// Event record layout (version 1), the value of a log key:
//
//	version       1 byte (1)
//	stream        uvarint length + bytes
//	revision      uvarint (tombstoneRevision for a tombstone)
//	id            16 bytes
//	created       8 bytes, Unix nanoseconds, big-endian
//	type          uvarint length + bytes
//	content type  1 byte code; codeOther is followed by uvarint length + bytes
//	metadata      uvarint length + bytes
//	data          uvarint length + bytes
const eventRecordVersion = 1

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
	maxEventHeaderLength = 1 + 10 + 10 + 16 + 8 + 10 + 1 + 10 + 10 + 10
)

func appendEventRecord(dst []byte, stream string, rev uint64, e *EventData, created int64) []byte {
	dst = append(dst, eventRecordVersion)
	dst = binary.AppendUvarint(dst, uint64(len(stream)))
	dst = append(dst, stream...)
	dst = binary.AppendUvarint(dst, rev)
	dst = append(dst, e.ID[:]...)
	dst = binary.BigEndian.AppendUint64(dst, uint64(created))
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

// eventDecoder decodes event records. It reuses the previous stream name
// and type string when they repeat, which they mostly do in a scan, to
// spare an allocation per event.
type eventDecoder struct {
	stream, typ string
}

func (d *eventDecoder) intern(last *string, b []byte) string {
	if string(b) != *last { // the conversion in a comparison does not allocate
		*last = string(b)
	}
	return *last
}

// decode decodes the record at position pos. The result owns its memory:
// the caller may keep it after v's buffer is reused.
func (d *eventDecoder) decode(pos uint64, v []byte) (RecordedEvent, error) {
	r := recordReader{b: v}
	if len(v) == 0 || v[0] != eventRecordVersion {
		return RecordedEvent{}, fmt.Errorf("%w: event at position %d: unknown version", errCorrupt, pos)
	}
	r.b = r.b[1:]
	stream := r.lengthPrefixed()
	rev := r.uvarint()
	id := r.bytes(16)
	created := r.bytes(8)
	typ := r.lengthPrefixed()
	var ctype string
	switch code := r.bytes(1); {
	case len(code) == 0:
	case code[0] == contentCodeJSON:
		ctype = contentTypeJSON
	case code[0] == contentCodeOctet:
		ctype = contentTypeOctet
	case code[0] == contentCodeOther:
		ctype = string(r.lengthPrefixed())
	default:
		r.bad = true
	}
	meta := r.lengthPrefixed()
	data := r.lengthPrefixed()
	if r.bad || len(r.b) != 0 {
		return RecordedEvent{}, fmt.Errorf("%w: event at position %d", errCorrupt, pos)
	}
	e := RecordedEvent{
		Stream:      d.intern(&d.stream, stream),
		Revision:    rev,
		Position:    pos,
		Type:        d.intern(&d.typ, typ),
		ContentType: ctype,
		Created:     time.Unix(0, int64(binary.BigEndian.Uint64(created))).UTC(),
	}
	copy(e.ID[:], id)
	// One allocation for both payloads; capacities are clipped so that an
	// append by the caller to one cannot overwrite the other.
	buf := make([]byte, len(meta)+len(data))
	copy(buf, meta)
	copy(buf[len(meta):], data)
	e.Metadata = buf[:len(meta):len(meta)]
	e.Data = buf[len(meta):]
	return e, nil
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
