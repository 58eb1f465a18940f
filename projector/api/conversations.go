package api

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"go.uber.org/zap"
)

// The values the filters take. The OpenAPI document lists the same (a test
// holds them together).
var (
	states = []string{"active", "inactive", "closed"}
	flags  = []string{"no-close-timer", "pii-identity", "agent-without-invite"}
)

// The query parameters of /v1/conversations.
const (
	paramState    = "state"
	paramOrphaned = "orphaned"
	paramFlag     = "flag"
	paramLimit    = "limit"
	paramCursor   = "cursor"
)

var conversationParams = []string{paramState, paramOrphaned, paramFlag, paramLimit, paramCursor}

// maxCursor bounds the cursor a client may send back.
const maxCursor = 1024

// paramError names the query parameter that is wrong.
type paramError struct{ param, msg string }

func (e *paramError) Error() string { return e.param + ": " + e.msg }

func badParam(param, format string, args ...any) *paramError {
	return &paramError{param: param, msg: fmt.Sprintf(format, args...)}
}

// parseConversationQuery reads /v1/conversations' parameters. Messages
// never repeat the values: they are whatever the client typed.
func parseConversationQuery(v url.Values) (ConversationQuery, *paramError) {
	q := ConversationQuery{Limit: DefaultLimit}
	names := make([]string, 0, len(v))
	for name := range v {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		if !slices.Contains(conversationParams, name) {
			return q, badParam(name, "unknown parameter; want one of %s", strings.Join(conversationParams, ", "))
		}
		if len(v[name]) > 1 {
			return q, badParam(name, "given more than once")
		}
	}
	if s := v.Get(paramState); v.Has(paramState) {
		if !slices.Contains(states, s) {
			return q, badParam(paramState, "want %s", strings.Join(states, ", "))
		}
		q.State = s
	}
	if v.Has(paramOrphaned) {
		switch v.Get(paramOrphaned) {
		case "true":
			q.Orphaned = new(true)
		case "false":
			q.Orphaned = new(false)
		default:
			return q, badParam(paramOrphaned, "want true or false")
		}
	}
	if f := v.Get(paramFlag); v.Has(paramFlag) {
		if !slices.Contains(flags, f) {
			return q, badParam(paramFlag, "want %s", strings.Join(flags, ", "))
		}
		q.Flag = f
	}
	if v.Has(paramLimit) {
		n, err := strconv.Atoi(v.Get(paramLimit))
		if err != nil || n < 1 || n > MaxLimit {
			return q, badParam(paramLimit, "want an integer 1..%d", MaxLimit)
		}
		q.Limit = n
	}
	if v.Has(paramCursor) {
		c, err := unwrapCursor(v.Get(paramCursor), q)
		if err != nil {
			return q, err
		}
		q.Cursor = c
	}
	return q, nil
}

// Clients see the store's cursor wrapped with the filters it was made
// under: a cursor that is not one of ours, or that belongs to other
// filters, is a 400 rather than a page of something else.
const cursorVersion = "c1"

func filterKey(q ConversationQuery) string {
	o := ""
	if q.Orphaned != nil {
		o = strconv.FormatBool(*q.Orphaned)
	}
	return q.State + "," + o + "," + q.Flag
}

func wrapCursor(storeCursor string, q ConversationQuery) string {
	return base64.RawURLEncoding.EncodeToString([]byte(cursorVersion + "\x00" + filterKey(q) + "\x00" + storeCursor))
}

func unwrapCursor(c string, q ConversationQuery) (string, *paramError) {
	if c == "" || len(c) > maxCursor {
		return "", badParam(paramCursor, "not a cursor this API issued")
	}
	b, err := base64.RawURLEncoding.DecodeString(c)
	parts := strings.SplitN(string(b), "\x00", 3)
	if err != nil || len(parts) != 3 || parts[0] != cursorVersion || parts[2] == "" {
		return "", badParam(paramCursor, "not a cursor this API issued")
	}
	if parts[1] != filterKey(q) {
		return "", badParam(paramCursor, "issued for other filters; keep state, orphaned and flag as they were")
	}
	return parts[2], nil
}

type conversationPage struct {
	Items      []json.RawMessage `json:"items"`
	NextCursor string            `json:"next_cursor,omitempty"`
}

func (s *Server) conversations(w http.ResponseWriter, r *http.Request) {
	q, perr := parseConversationQuery(r.URL.Query())
	if perr != nil {
		s.failParam(w, http.StatusBadRequest, perr.param, perr.Error())
		return
	}
	page, err := s.cfg.Store.Conversations(r.Context(), q)
	if err != nil {
		s.storeError(w, r, "conversations", err)
		return
	}
	out := conversationPage{Items: page.Items, NextCursor: ""}
	if out.Items == nil {
		out.Items = []json.RawMessage{}
	}
	if page.NextCursor != "" {
		out.NextCursor = wrapCursor(page.NextCursor, q)
	}
	b, err := json.Marshal(out) // also checks every item is JSON
	if err != nil {
		s.log.Error("store returned a conversation view that is not JSON", zap.Error(err))
		s.fail(w, http.StatusInternalServerError, "internal error")
		return
	}
	s.writeJSON(w, http.StatusOK, b)
}
