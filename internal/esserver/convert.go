package esserver

import (
	"encoding/binary"
	"fmt"
	"strconv"

	"github.com/google/uuid"

	"github.com/EventStore/EventStore-Client-Go/v4/protos/shared"
	"github.com/EventStore/EventStore-Client-Go/v4/protos/streams"

	"github.com/flexstream/flexstream/internal/esstore"
)

// Content types KurrentDB reports: JSON, or opaque bytes.
const (
	contentJSON   = "application/json"
	contentBinary = "application/octet-stream"
)

// idFromProto turns the client's UUID (structured: two big-endian int64
// halves; or its string form) into 16 bytes.
func idFromProto(u *shared.UUID) (esstore.ID, error) {
	var id esstore.ID
	switch v := u.GetValue().(type) {
	case *shared.UUID_Structured_:
		binary.BigEndian.PutUint64(id[:8], uint64(v.Structured.GetMostSignificantBits()))
		binary.BigEndian.PutUint64(id[8:], uint64(v.Structured.GetLeastSignificantBits()))
		return id, nil
	case *shared.UUID_String_:
		p, err := uuid.Parse(v.String_)
		if err != nil {
			return id, fmt.Errorf("event id %q: %w", v.String_, err)
		}
		return esstore.ID(p), nil
	}
	return id, fmt.Errorf("event id missing")
}

// recordedBuf holds the protobuf messages of one recorded event. A reader
// reuses one from event to event (respBuffer); a response built afresh
// takes a new one, a single allocation for all of them.
type recordedBuf struct {
	rec     streams.ReadResp_ReadEvent_RecordedEvent
	id      shared.UUID
	idBits  shared.UUID_Structured_
	idPair  shared.UUID_Structured
	idText  shared.UUID_String_
	stream  shared.StreamIdentifier
	meta    map[string]string
	name    []byte
	created []byte
}

// fill makes b's messages say e. The client wants the id structured (two
// big-endian int64 halves) unless it asked for strings, and "created" in
// 100 ns units since the Unix epoch, as a decimal string: it log.Fatalf's
// on anything else.
func (b *recordedBuf) fill(e *esstore.RecordedEvent, idAsString bool) *streams.ReadResp_ReadEvent_RecordedEvent {
	if b.meta == nil {
		b.meta = make(map[string]string, 3)
	}
	ct := e.ContentType
	if ct != contentJSON {
		ct = contentBinary
	}
	if idAsString {
		b.idText.String_ = uuid.UUID(e.ID).String()
		b.id.Value = &b.idText
	} else {
		b.idPair.MostSignificantBits = int64(binary.BigEndian.Uint64(e.ID[:8]))
		b.idPair.LeastSignificantBits = int64(binary.BigEndian.Uint64(e.ID[8:]))
		b.idBits.Structured = &b.idPair
		b.id.Value = &b.idBits
	}
	b.name = append(b.name[:0], e.Stream...)
	b.stream.StreamName = b.name
	b.meta["type"] = e.Type
	b.meta["content-type"] = ct
	b.created = strconv.AppendInt(b.created[:0], e.Created.UnixNano()/100, 10)
	b.meta["created"] = string(b.created)
	b.rec = streams.ReadResp_ReadEvent_RecordedEvent{
		Id:               &b.id,
		StreamIdentifier: &b.stream,
		StreamRevision:   e.Revision,
		PreparePosition:  e.Position,
		CommitPosition:   e.Position,
		Metadata:         b.meta,
		CustomMetadata:   nonNil(e.Metadata),
		Data:             nonNil(e.Data),
	}
	return &b.rec
}

func recordedToProto(e *esstore.RecordedEvent, idAsString bool) *streams.ReadResp_ReadEvent_RecordedEvent {
	return new(recordedBuf).fill(e, idAsString)
}

func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

// eventResp wraps an event (and the link that pointed to it, if resolved)
// for a read or subscription response. The position is the original
// event's: the link's when there is one.
func eventResp(ev, link *esstore.RecordedEvent, idAsString bool) *streams.ReadResp {
	re := &streams.ReadResp_ReadEvent{}
	pos := uint64(0)
	if ev != nil {
		re.Event = recordedToProto(ev, idAsString)
		pos = ev.Position
	}
	if link != nil {
		re.Link = recordedToProto(link, idAsString)
		pos = link.Position
	}
	re.Position = &streams.ReadResp_ReadEvent_CommitPosition{CommitPosition: pos}
	return &streams.ReadResp{Content: &streams.ReadResp_Event{Event: re}}
}

func streamNotFound(stream string) *streams.ReadResp {
	return &streams.ReadResp{Content: &streams.ReadResp_StreamNotFound_{StreamNotFound: &streams.ReadResp_StreamNotFound{
		StreamIdentifier: &shared.StreamIdentifier{StreamName: []byte(stream)},
	}}}
}

// expectedFromAppend and friends map the three requests' identical oneofs.
func expectedFromAppend(o *streams.AppendReq_Options) esstore.Expected {
	switch v := o.GetExpectedStreamRevision().(type) {
	case *streams.AppendReq_Options_Revision:
		return esstore.Revision(v.Revision)
	case *streams.AppendReq_Options_NoStream:
		return esstore.NoStream()
	case *streams.AppendReq_Options_StreamExists:
		return esstore.StreamExists()
	}
	return esstore.Any()
}

func expectedFromDelete(o *streams.DeleteReq_Options) esstore.Expected {
	switch v := o.GetExpectedStreamRevision().(type) {
	case *streams.DeleteReq_Options_Revision:
		return esstore.Revision(v.Revision)
	case *streams.DeleteReq_Options_NoStream:
		return esstore.NoStream()
	case *streams.DeleteReq_Options_StreamExists:
		return esstore.StreamExists()
	}
	return esstore.Any()
}

func expectedFromTombstone(o *streams.TombstoneReq_Options) esstore.Expected {
	switch v := o.GetExpectedStreamRevision().(type) {
	case *streams.TombstoneReq_Options_Revision:
		return esstore.Revision(v.Revision)
	case *streams.TombstoneReq_Options_NoStream:
		return esstore.NoStream()
	case *streams.TombstoneReq_Options_StreamExists:
		return esstore.StreamExists()
	}
	return esstore.Any()
}

// wrongExpectedVersion fills both the current fields, which the Go client
// reads, and the _20_6_0 ones, which older clients read.
func wrongExpectedVersion(e *esstore.WrongExpectedVersionError) *streams.AppendResp {
	w := &streams.AppendResp_WrongExpectedVersion{}
	empty := &shared.Empty{}
	if e.Current.Exists {
		w.CurrentRevisionOption = &streams.AppendResp_WrongExpectedVersion_CurrentRevision{CurrentRevision: e.Current.Revision}
		w.CurrentRevisionOption_20_6_0 = &streams.AppendResp_WrongExpectedVersion_CurrentRevision_20_6_0{CurrentRevision_20_6_0: e.Current.Revision}
	} else {
		w.CurrentRevisionOption = &streams.AppendResp_WrongExpectedVersion_CurrentNoStream{CurrentNoStream: empty}
		w.CurrentRevisionOption_20_6_0 = &streams.AppendResp_WrongExpectedVersion_NoStream_20_6_0{NoStream_20_6_0: empty}
	}
	switch e.Expected.Kind {
	case esstore.ExpectAny:
		w.ExpectedRevisionOption = &streams.AppendResp_WrongExpectedVersion_ExpectedAny{ExpectedAny: empty}
		w.ExpectedRevisionOption_20_6_0 = &streams.AppendResp_WrongExpectedVersion_Any_20_6_0{Any_20_6_0: empty}
	case esstore.ExpectStreamExists:
		w.ExpectedRevisionOption = &streams.AppendResp_WrongExpectedVersion_ExpectedStreamExists{ExpectedStreamExists: empty}
		w.ExpectedRevisionOption_20_6_0 = &streams.AppendResp_WrongExpectedVersion_StreamExists_20_6_0{StreamExists_20_6_0: empty}
	case esstore.ExpectNoStream:
		w.ExpectedRevisionOption = &streams.AppendResp_WrongExpectedVersion_ExpectedNoStream{ExpectedNoStream: empty}
		// KurrentDB encodes "no stream" as -1 in the old field.
		w.ExpectedRevisionOption_20_6_0 = &streams.AppendResp_WrongExpectedVersion_ExpectedRevision_20_6_0{ExpectedRevision_20_6_0: ^uint64(0)}
	default:
		w.ExpectedRevisionOption = &streams.AppendResp_WrongExpectedVersion_ExpectedRevision{ExpectedRevision: e.Expected.Revision}
		w.ExpectedRevisionOption_20_6_0 = &streams.AppendResp_WrongExpectedVersion_ExpectedRevision_20_6_0{ExpectedRevision_20_6_0: e.Expected.Revision}
	}
	return &streams.AppendResp{Result: &streams.AppendResp_WrongExpectedVersion_{WrongExpectedVersion: w}}
}
