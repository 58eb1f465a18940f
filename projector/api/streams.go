package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"time"

	"go.uber.org/zap"
)

// timelineEvent is a TimelineEvent as the API writes it.
type timelineEvent struct {
	ID       string          `json:"id"`
	Type     string          `json:"type"`
	Revision uint64          `json:"revision"`
	Position uint64          `json:"position"`
	Created  time.Time       `json:"created"`
	Data     json.RawMessage `json:"data"`
	Metadata json.RawMessage `json:"metadata"`
}

func orNull(m json.RawMessage) json.RawMessage {
	if len(m) == 0 {
		return json.RawMessage("null")
	}
	return m
}

// timeline streams a conversation's events as they come from the event
// store: one event in memory at a time, whatever the stream's length.
func (s *Server) timeline(w http.ResponseWriter, r *http.Request) {
	sid, ok := s.sid(w, r, conversationSID, "CH")
	if !ok {
		return
	}
	tw := &timelineWriter{w: w, rc: http.NewResponseController(w)}
	err := s.cfg.Timeline.Events(r.Context(), TimelineStream(sid), tw.event)
	if err == nil {
		err = tw.close()
	}
	if err == nil {
		return
	}
	if !tw.started {
		s.storeError(w, r, "conversation timeline", err)
		return
	}
	if r.Context().Err() == nil && !errors.Is(err, errClientWrite) {
		s.log.Error("timeline cut short", zap.Int("events_written", tw.n), zap.Error(err))
	}
	abort(w)
}

// errClientWrite marks a failed write to the client, which the event store
// sees as fn's error.
var errClientWrite = errors.New("writing to the client failed")

type timelineWriter struct {
	w       http.ResponseWriter
	rc      *http.ResponseController
	started bool
	n       int
}

func (t *timelineWriter) event(e TimelineEvent) error {
	b, err := json.Marshal(timelineEvent{
		ID: e.ID, Type: e.Type, Revision: e.Revision, Position: e.Position, Created: e.Created.UTC(),
		Data: orNull(e.Data), Metadata: orNull(e.Metadata),
	})
	if err != nil {
		return err // data or metadata that is not JSON
	}
	sep := []byte{','}
	if !t.started {
		t.start()
		sep = []byte(`{"events":[`)
	}
	_ = t.rc.SetWriteDeadline(time.Now().Add(writeTimeout))
	if _, err := t.w.Write(sep); err != nil {
		return errClientWrite
	}
	if _, err := t.w.Write(b); err != nil {
		return errClientWrite
	}
	t.n++
	return nil
}

func (t *timelineWriter) start() {
	t.started = true
	h := t.w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-store")
	t.w.WriteHeader(http.StatusOK)
}

func (t *timelineWriter) close() error {
	end := "]}\n"
	_ = t.rc.SetWriteDeadline(time.Now().Add(writeTimeout))
	if !t.started {
		t.start()
		end = `{"events":[]}` + "\n"
	}
	if _, err := t.w.Write([]byte(end)); err != nil {
		return errClientWrite
	}
	return nil
}

// events streams committed changes as Server-Sent Events until the client
// goes or the server shuts down.
func (s *Server) events(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	defer context.AfterFunc(s.streams, cancel)()
	changes, err := s.cfg.Feed.Subscribe(ctx)
	if err != nil {
		if ctx.Err() == nil {
			s.log.Error("subscribe to the feed", zap.Error(err))
		}
		s.fail(w, http.StatusServiceUnavailable, "live updates unavailable")
		return
	}
	s.m.streams.Inc()
	defer s.m.streams.Dec()
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no") // nginx: pass events through as they come
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	send := func(b []byte) bool {
		_ = rc.SetWriteDeadline(time.Now().Add(writeTimeout))
		if _, err := w.Write(b); err != nil {
			return false
		}
		return rc.Flush() == nil
	}
	// The subscription is live once the client reads this.
	if !send([]byte(": connected\n\n")) {
		return
	}
	heartbeat := time.NewTicker(s.cfg.HeartbeatInterval)
	defer heartbeat.Stop()
	var (
		id  uint64
		buf bytes.Buffer
	)
	for {
		select {
		case <-ctx.Done():
			return
		case <-heartbeat.C:
			if !send([]byte(": heartbeat\n\n")) {
				return
			}
		case c, ok := <-changes:
			if !ok {
				return
			}
			if c.Kind != KindConversation && c.Kind != KindTask && c.Kind != KindStats {
				s.log.Warn("feed change of unknown kind skipped", zap.Int("kind_bytes", len(c.Kind)))
				continue
			}
			buf.Reset()
			buf.WriteString("event: " + c.Kind + "\nid: " + strconv.FormatUint(id+1, 10) + "\ndata: ")
			if len(c.View) == 0 {
				buf.WriteString("null")
			} else if err := json.Compact(&buf, c.View); err != nil { // one line, as SSE wants
				s.log.Error("feed change is not JSON; skipped", zap.String("kind", c.Kind), zap.String("sid", c.SID))
				continue
			}
			buf.WriteString("\n\n")
			id++
			if !send(buf.Bytes()) {
				return
			}
			s.m.streamEvents.WithLabelValues(c.Kind).Inc()
			heartbeat.Reset(s.cfg.HeartbeatInterval)
		}
	}
}
