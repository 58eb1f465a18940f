package esserver

import (
	"encoding/binary"
	"strconv"

	"github.com/google/uuid"
	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/encoding/proto"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/flexstream/flexstream/internal/esstore"
)

// A read of $all sends one ReadResp per event. Building the protobuf
// messages and letting protobuf marshal them, its map of system metadata
// above all, was a tenth of a replay's CPU. An event without a link is
// therefore written straight into gRPC's buffer in protobuf's wire format,
// byte for byte what proto.Marshal (deterministic) makes of eventResp: the
// server's codec recognises an *eventMsg and everything else goes to
// protobuf as before.

// eventMsg is a response for one event without a link. The codec encodes
// it inside SendMsg, before SendMsg returns, so e may be borrowed from the
// store (ReadAllBorrowed) and one eventMsg serves a whole read.
type eventMsg struct {
	e          *esstore.RecordedEvent
	idAsString bool
}

// Field numbers, from streams.proto and shared.proto.
const (
	fReadRespEvent        = 1 // ReadResp.event (oneof content)
	fReadEventEvent       = 1 // ReadEvent.event
	fReadEventCommitPos   = 3 // ReadEvent.commit_position (oneof position)
	fRecordedID           = 1
	fRecordedStream       = 2
	fRecordedRevision     = 3
	fRecordedPreparePos   = 4
	fRecordedCommitPos    = 5
	fRecordedMetadata     = 6
	fRecordedCustomMeta   = 7
	fRecordedData         = 8
	fUUIDStructured       = 1 // UUID.structured (oneof)
	fUUIDString           = 2 // UUID.string (oneof)
	fStructuredMost       = 1
	fStructuredLeast      = 2
	fStreamIdentifierName = 3
	fMapKey               = 1
	fMapValue             = 2
)

// systemMeta is the event's system metadata, in the order deterministic
// marshalling sorts the map's keys. Values are strings or, for created,
// bytes: one of each pair is empty.
type systemMeta [3]struct {
	key string
	val string
	raw []byte
}

func (m *eventMsg) systemMeta(created []byte) systemMeta {
	ct := m.e.ContentType
	if ct != contentJSON {
		ct = contentBinary
	}
	var sm systemMeta
	sm[0].key, sm[0].val = "content-type", ct
	// The client wants "created" in 100 ns units since the Unix epoch, as
	// a decimal string: it log.Fatalf's on anything else.
	sm[1].key, sm[1].raw = "created", strconv.AppendInt(created, m.e.Created.UnixNano()/100, 10)
	sm[2].key, sm[2].val = "type", m.e.Type
	return sm
}

// eventSizes are the lengths of the nested messages, computed once.
type eventSizes struct {
	idInner, id, stream, recorded, readEvent int
	entries                                  [3]int
}

func sizeUint(n protowire.Number, v uint64) int {
	if v == 0 {
		return 0
	}
	return protowire.SizeTag(n) + protowire.SizeVarint(v)
}

func appendUint(b []byte, n protowire.Number, v uint64) []byte {
	if v == 0 {
		return b
	}
	return protowire.AppendVarint(protowire.AppendTag(b, n, protowire.VarintType), v)
}

func sizeField(n protowire.Number, l int) int { return protowire.SizeTag(n) + protowire.SizeBytes(l) }

// appendHeader starts a length-delimited field of l bytes.
func appendHeader(b []byte, n protowire.Number, l int) []byte {
	return protowire.AppendVarint(protowire.AppendTag(b, n, protowire.BytesType), uint64(l))
}

func (m *eventMsg) sizes(sm *systemMeta) (s eventSizes) {
	e := m.e
	if m.idAsString {
		s.id = sizeField(fUUIDString, 36)
	} else {
		s.idInner = sizeUint(fStructuredMost, binary.BigEndian.Uint64(e.ID[:8])) + sizeUint(fStructuredLeast, binary.BigEndian.Uint64(e.ID[8:]))
		s.id = sizeField(fUUIDStructured, s.idInner)
	}
	if len(e.Stream) > 0 {
		s.stream = sizeField(fStreamIdentifierName, len(e.Stream))
	}
	r := sizeField(fRecordedID, s.id) + sizeField(fRecordedStream, s.stream) +
		sizeUint(fRecordedRevision, e.Revision) + sizeUint(fRecordedPreparePos, e.Position) + sizeUint(fRecordedCommitPos, e.Position)
	for i, kv := range sm {
		s.entries[i] = sizeField(fMapKey, len(kv.key)) + sizeField(fMapValue, len(kv.val)+len(kv.raw))
		r += sizeField(fRecordedMetadata, s.entries[i])
	}
	if len(e.Metadata) > 0 {
		r += sizeField(fRecordedCustomMeta, len(e.Metadata))
	}
	if len(e.Data) > 0 {
		r += sizeField(fRecordedData, len(e.Data))
	}
	s.recorded = r
	// The position is a oneof member: sent even when it is 0.
	s.readEvent = sizeField(fReadEventEvent, r) + protowire.SizeTag(fReadEventCommitPos) + protowire.SizeVarint(e.Position)
	return s
}

// size is the encoded length of the whole ReadResp.
func (s *eventSizes) size() int { return sizeField(fReadRespEvent, s.readEvent) }

// appendTo appends the ReadResp to b, fields in number order as protobuf
// writes them.
func (m *eventMsg) appendTo(b []byte, sm *systemMeta, s *eventSizes) []byte {
	e := m.e
	b = appendHeader(b, fReadRespEvent, s.readEvent)
	b = appendHeader(b, fReadEventEvent, s.recorded)

	b = appendHeader(b, fRecordedID, s.id)
	if m.idAsString {
		b = appendHeader(b, fUUIDString, 36)
		b = append(b, uuid.UUID(e.ID).String()...)
	} else {
		b = appendHeader(b, fUUIDStructured, s.idInner)
		b = appendUint(b, fStructuredMost, binary.BigEndian.Uint64(e.ID[:8]))
		b = appendUint(b, fStructuredLeast, binary.BigEndian.Uint64(e.ID[8:]))
	}
	b = appendHeader(b, fRecordedStream, s.stream)
	if len(e.Stream) > 0 {
		b = appendHeader(b, fStreamIdentifierName, len(e.Stream))
		b = append(b, e.Stream...)
	}
	b = appendUint(b, fRecordedRevision, e.Revision)
	b = appendUint(b, fRecordedPreparePos, e.Position)
	b = appendUint(b, fRecordedCommitPos, e.Position)
	for i, kv := range sm {
		b = appendHeader(b, fRecordedMetadata, s.entries[i])
		b = appendHeader(b, fMapKey, len(kv.key))
		b = append(b, kv.key...)
		b = appendHeader(b, fMapValue, len(kv.val)+len(kv.raw))
		b = append(append(b, kv.val...), kv.raw...)
	}
	if len(e.Metadata) > 0 {
		b = appendHeader(b, fRecordedCustomMeta, len(e.Metadata))
		b = append(b, e.Metadata...)
	}
	if len(e.Data) > 0 {
		b = appendHeader(b, fRecordedData, len(e.Data))
		b = append(b, e.Data...)
	}
	b = protowire.AppendTag(b, fReadEventCommitPos, protowire.VarintType)
	return protowire.AppendVarint(b, e.Position)
}

// marshal encodes m into a buffer of gRPC's pool, as grpc's own proto
// codec does; the transport returns it to the pool once written.
func (m *eventMsg) marshal() mem.BufferSlice {
	var created [24]byte
	sm := m.systemMeta(created[:0])
	s := m.sizes(&sm)
	n := s.size()
	if mem.IsBelowBufferPoolingThreshold(n) {
		return mem.BufferSlice{mem.SliceBuffer(m.appendTo(make([]byte, 0, n), &sm, &s))}
	}
	pool := mem.DefaultBufferPool()
	buf := pool.Get(n)
	*buf = m.appendTo((*buf)[:0], &sm, &s)
	return mem.BufferSlice{mem.NewBuffer(buf, pool)}
}

// codec is the server's: *eventMsg in wire format, everything else through
// grpc's protobuf codec.
type codec struct{ proto encoding.CodecV2 }

func newCodec() codec { return codec{proto: encoding.GetCodecV2(proto.Name)} }

func (c codec) Marshal(v any) (mem.BufferSlice, error) {
	if m, ok := v.(*eventMsg); ok {
		return m.marshal(), nil
	}
	return c.proto.Marshal(v)
}

func (c codec) Unmarshal(data mem.BufferSlice, v any) error { return c.proto.Unmarshal(data, v) }

func (c codec) Name() string { return proto.Name }
