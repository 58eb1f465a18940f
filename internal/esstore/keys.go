package esstore

import "encoding/binary"

// The key space. Every key starts with a one-byte prefix naming its table;
// integers are big-endian so that byte order is numeric order.
//
//	l | position                → event record (the global log, $all)
//	r | stream id | revision    → position | event id (a stream's events)
//	i | stream id | event id    → revision (latest occurrence; idempotency)
//	s | stream name             → stream record (see streamRecord)
//	m | name                    → store metadata (format, next stream id)
//
// Streams are numbered (stream id, "sid") on their first event so that the
// per-event index keys are short and fixed-size whatever the stream name.
const (
	prefixLog    = 'l'
	prefixRev    = 'r'
	prefixID     = 'i'
	prefixStream = 's'
	prefixMeta   = 'm'
)

var (
	metaFormatKey  = []byte{prefixMeta, 'f', 'o', 'r', 'm', 'a', 't'}
	metaNextSIDKey = []byte{prefixMeta, 's', 'i', 'd'}
)

// formatVersion is written once in a new store; Open refuses others so that
// a future layout change cannot be misread.
const formatVersion = 1

func appendU64(dst []byte, v uint64) []byte { return binary.BigEndian.AppendUint64(dst, v) }

func logKey(dst []byte, pos uint64) []byte {
	return appendU64(append(dst, prefixLog), pos)
}

func revKey(dst []byte, sid, rev uint64) []byte {
	return appendU64(appendU64(append(dst, prefixRev), sid), rev)
}

func idKey(dst []byte, sid uint64, id ID) []byte {
	return append(appendU64(append(dst, prefixID), sid), id[:]...)
}

func streamKey(dst []byte, name string) []byte {
	return append(append(dst, prefixStream), name...)
}

// positionOfLogKey decodes a log key; ok is false for a malformed key.
func positionOfLogKey(k []byte) (uint64, bool) {
	if len(k) != 9 || k[0] != prefixLog {
		return 0, false
	}
	return binary.BigEndian.Uint64(k[1:]), true
}

// revisionOfRevKey decodes the revision of a revision key.
func revisionOfRevKey(k []byte) (uint64, bool) {
	if len(k) != 17 || k[0] != prefixRev {
		return 0, false
	}
	return binary.BigEndian.Uint64(k[9:]), true
}

// revValue is a revision key's value: where the event is in the log, and
// its id, so that idempotency checks by revision need not read the event.
func appendRevValue(dst []byte, pos uint64, id ID) []byte {
	return append(appendU64(dst, pos), id[:]...)
}

func decodeRevValue(v []byte) (pos uint64, id ID, ok bool) {
	if len(v) != 24 {
		return 0, id, false
	}
	copy(id[:], v[8:])
	return binary.BigEndian.Uint64(v), id, true
}

func decodeU64(v []byte) uint64 { return binary.BigEndian.Uint64(v) }
