package audit

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/flexstream/flexstream/internal/eventstore"
	"github.com/flexstream/flexstream/projector/domain"
	"github.com/flexstream/flexstream/reactors/engine"
)

// Reader reads the event store; *eventstore.Client is one.
type Reader interface {
	ReadStream(ctx context.Context, stream string, from, max uint64, fn func(eventstore.RecordedEvent) error) error
	ReadAll(ctx context.Context, from, max uint64, fn func(eventstore.RecordedEvent) error) error
}

// Errors of Collect.
var (
	// ErrUnknownSID: the store holds nothing about the SID.
	ErrUnknownSID = errors.New("not in the event store")
	// ErrBadSID: the SID is neither a conversation's nor a task's.
	ErrBadSID = errors.New("want a conversation SID (CH + 32 hex digits) or a task SID (WT + 32 hex digits)")
)

// Kinds of SID an audit takes.
const (
	KindConversation = "conversation"
	KindTask         = "task"
)

var sidRe = regexp.MustCompile(`^(CH|WT)[0-9a-fA-F]{32}$`)

// KindOf says whether sid is a conversation's or a task's (ErrBadSID
// otherwise).
func KindOf(sid string) (string, error) {
	m := sidRe.FindStringSubmatch(sid)
	switch {
	case m == nil:
		return "", fmt.Errorf("%q: %w", sid, ErrBadSID)
	case m[1] == "CH":
		return KindConversation, nil
	}
	return KindTask, nil
}

// Audit is what the store holds about a conversation or a task.
type Audit struct {
	SID          string   `json:"sid"`
	Conversation string   `json:"conversation,omitempty"` // "" when the task names none
	Task         string   `json:"task,omitempty"`         // the task audited, "" for a conversation
	Tasks        []string `json:"tasks"`                  // every task of the conversation, in the order seen
	Streams      []string `json:"streams"`                // the streams read
	Scanned      uint64   `json:"scanned,omitempty"`      // $all events read to find a task's conversation
	Rows         []Row    `json:"rows"`
}

// Options tune Collect.
type Options struct {
	// Progress, when set, is called every ProgressEvery events while $all
	// is read for a task's conversation (the only slow path: a task that
	// has no reaction naming its conversation).
	Progress      func(scanned uint64)
	ProgressEvery uint64 // default 100,000
}

// Collect reads what the store holds about sid — a conversation (CH…) or
// a task (WT…) — and makes its timeline.
//
// A conversation: its stream, then for every task seen in it (and every
// task a re-invite made), the task's own stream (events that came before
// the task named its conversation) and its reaction stream, where they
// exist. A task: its conversation's audit, the conversation found through
// the task's reaction (the trigger's stream) or else by reading $all for
// the first conversation event that names the task; the task's rows are
// marked. A task with no conversation is audited from its own stream and
// its reaction. Nothing about sid: ErrUnknownSID.
func Collect(ctx context.Context, r Reader, sid string, opt Options) (*Audit, error) {
	kind, err := KindOf(sid)
	if err != nil {
		return nil, err
	}
	c := &collector{r: r, ctx: ctx, cache: map[string]cached{}, seen: map[string]bool{}}
	a := &Audit{SID: sid}
	switch kind {
	case KindConversation:
		a.Conversation = sid
		evs, found, err := c.stream(domain.CategoryConversation + "-" + sid)
		if err != nil {
			return nil, err
		}
		if !found {
			return nil, fmt.Errorf("conversation %s: %w (no stream %s-%s)", sid, ErrUnknownSID, domain.CategoryConversation, sid)
		}
		c.twilio = append(c.twilio, evs...)
	case KindTask:
		a.Task = sid
		conv, err := c.conversationOf(sid, opt)
		if err != nil {
			return nil, err
		}
		a.Conversation = conv
		if conv != "" {
			evs, _, err := c.stream(domain.CategoryConversation + "-" + conv)
			if err != nil {
				return nil, err
			}
			c.twilio = append(c.twilio, evs...)
		}
	}
	// Every task seen, including those found on the way (a re-invite's
	// new task), gets its task stream and its reaction read once.
	for _, ev := range c.twilio {
		c.taskOf(ev)
	}
	c.task(a.Task)
	for i := 0; i < len(c.tasks); i++ {
		wt := c.tasks[i]
		if err := c.taskStreams(wt); err != nil {
			return nil, err
		}
	}
	if a.Task != "" && len(c.twilio) == 0 && len(c.reactions) == 0 {
		return nil, fmt.Errorf("task %s: %w (no conversation, task or reaction stream names it)", sid, ErrUnknownSID)
	}
	a.Tasks, a.Streams, a.Scanned = c.tasks, c.streams, c.scanned
	a.Rows = Timeline(c.twilio, c.reactions)
	if a.Task != "" {
		Mark(a.Rows, a.Task)
	}
	return a, nil
}

type collector struct {
	r         Reader
	ctx       context.Context
	cache     map[string]cached // streams read
	streams   []string          // those that exist, in the order read
	twilio    []eventstore.RecordedEvent
	reactions [][]eventstore.RecordedEvent
	seen      map[string]bool // tasks
	tasks     []string
	scanned   uint64
}

type cached struct {
	evs   []eventstore.RecordedEvent
	found bool
}

// stream reads a whole stream (once); found is false when it does not
// exist.
func (c *collector) stream(name string) (evs []eventstore.RecordedEvent, found bool, err error) {
	if got, ok := c.cache[name]; ok {
		return got.evs, got.found, nil
	}
	err = c.r.ReadStream(c.ctx, name, 0, eventstore.All, func(ev eventstore.RecordedEvent) error {
		evs = append(evs, ev)
		return nil
	})
	switch {
	case errors.Is(err, eventstore.ErrStreamNotFound):
		evs, err = nil, nil
	case err != nil:
		return nil, false, fmt.Errorf("audit: read %s: %w", name, err)
	default:
		found = true
		c.streams = append(c.streams, name)
	}
	c.cache[name] = cached{evs: evs, found: found}
	return evs, found, nil
}

func (c *collector) task(wt string) {
	if wt != "" && !c.seen[wt] {
		c.seen[wt] = true
		c.tasks = append(c.tasks, wt)
	}
}

func (c *collector) taskOf(ev eventstore.RecordedEvent) {
	var e struct {
		TaskSid string `json:"taskSid"`
	}
	if json.Unmarshal(ev.Data, &e) == nil {
		c.task(e.TaskSid)
	}
}

// taskStreams reads a task's own stream (events that arrived before its
// conversation was known) and its reaction stream. It is called once per
// task.
func (c *collector) taskStreams(wt string) error {
	evs, _, err := c.stream(domain.CategoryTask + "-" + wt)
	if err != nil {
		return err
	}
	c.twilio = append(c.twilio, evs...)
	for _, ev := range evs {
		c.taskOf(ev)
	}
	evs, found, err := c.stream(engine.StreamPrefix + wt)
	if err != nil || !found {
		return err
	}
	c.reactions = append(c.reactions, evs)
	for _, ev := range evs {
		if ev.Type != engine.EvSucceeded {
			continue
		}
		var s engine.Step
		if json.Unmarshal(ev.Data, &s) == nil && s.Result != nil {
			c.task(s.Result.TaskSid) // a re-invite's new task
		}
	}
	return nil
}

// conversationOf finds a task's conversation ("" when none is known):
// its reaction's trigger stream, else the first event of a conversation
// stream in $all that names it (a task's events go to its conversation's
// stream once they name it, so its own stream never does).
func (c *collector) conversationOf(wt string, opt Options) (string, error) {
	conv, _, err := c.fromReaction(engine.StreamPrefix + wt)
	if conv != "" || err != nil {
		return conv, err
	}
	return c.scan(wt, opt)
}

// fromReaction is the conversation a reaction stream's trigger came
// from; found reports whether the stream exists.
func (c *collector) fromReaction(stream string) (conv string, found bool, err error) {
	evs, found, err := c.stream(stream)
	if err != nil || !found || len(evs) == 0 || evs[0].Type != engine.EvPlanned {
		return "", found, err
	}
	var p engine.Planned
	if json.Unmarshal(evs[0].Data, &p) != nil {
		return "", true, nil
	}
	if conv, ok := strings.CutPrefix(p.Trigger.Stream, domain.CategoryConversation+"-"); ok {
		return conv, true, nil
	}
	for _, a := range p.Plan.Actions {
		if a.ConversationSid != "" {
			return a.ConversationSid, true, nil
		}
	}
	return "", true, nil
}

var errFound = errors.New("found")

// scan reads $all for the first event of a conversation stream that names
// the task (or of a reaction stream whose re-invite made it).
func (c *collector) scan(wt string, opt Options) (string, error) {
	every := opt.ProgressEvery
	if every == 0 {
		every = 100_000
	}
	needle := []byte(`"` + wt + `"`)
	var conv, reaction string
	err := c.r.ReadAll(c.ctx, 0, eventstore.All, func(ev eventstore.RecordedEvent) error {
		c.scanned++
		if opt.Progress != nil && c.scanned%every == 0 {
			opt.Progress(c.scanned)
		}
		if strings.HasPrefix(ev.Stream, "$") || !bytes.Contains(ev.Data, needle) {
			return nil
		}
		switch domain.Category(ev.Stream) {
		case domain.CategoryConversation:
			conv = strings.TrimPrefix(ev.Stream, domain.CategoryConversation+"-")
			return errFound
		case domain.CategoryReaction:
			if ev.Type == engine.EvSucceeded {
				reaction = ev.Stream
				return errFound
			}
		}
		return nil
	})
	if err != nil && !errors.Is(err, errFound) {
		return "", fmt.Errorf("audit: scan $all for task %s: %w", wt, err)
	}
	if reaction != "" {
		conv, _, err := c.fromReaction(reaction)
		return conv, err
	}
	return conv, nil
}
