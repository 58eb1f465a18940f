package esstore

import "encoding/binary"

// The key space. Every key starts with a one-byte prefix naming its table;
// integers are big-endian so that byte order is numeric order.
//
//	l | position                → log record: the events of one append, the
//	                              first at this position (the global log, $all)
//	r | stream id | revision    → position | count: one key per append, at
//	                              the revision of its first event; the
//	                              append's log record is at that position
//	i | stream id | event id    → revision: the first event id of each
//	                              append only (latest occurrence; idempotency)
//	s | stream name             → stream record (see streamRecord)
//	m | name                    → store metadata (format, next stream id)
//
// Streams are numbered (stream id, "sid") on their first event so that the
// index keys are short and fixed-size whatever the stream name. Every
// table has one key per append, not per event: an append of 100 events
// writes one log key, one revision key and one id key (and its stream
// record), which keeps the memtable inserts and compactions of a batch
// append independent of its size.
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
//
// Version 2: one log record, one revision key and one id key per append
// (see appendLogRecordHeader), where version 1 had one of each per event.
const formatVersion = 2

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

// revValue is a revision key's value: the position of the append's log
// record (that of its first event) and how many events it holds.
func appendRevValue(dst []byte, pos, count uint64) []byte {
	return appendU64(appendU64(dst, pos), count)
}

func decodeRevValue(v []byte) (pos, count uint64, ok bool) {
	if len(v) != 16 {
		return 0, 0, false
	}
	pos, count = binary.BigEndian.Uint64(v), binary.BigEndian.Uint64(v[8:])
	return pos, count, pos != 0 && count != 0 && pos+count-1 >= pos
}

func decodeU64(v []byte) uint64 { return binary.BigEndian.Uint64(v) }
