// Package act carries out a plan's actions on Twilio through twilio-go,
// and answers the two questions exactly-once needs: is the action still
// worth doing (Precheck), and did an earlier attempt already do it
// (Done)? Only the Flex Interactions and Conversations APIs are used —
// never TaskRouter's Task API (rule R2).
//
// Every action leaves a mark in Twilio naming the reaction and the action,
// so that Done can find it after a crash or a lost answer: a message's
// Attributes, a re-invite's task attributes. A close needs none: the
// channel's status tells.
package act

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/twilio/twilio-go"
	convo "github.com/twilio/twilio-go/rest/conversations/v1"
	flex "github.com/twilio/twilio-go/rest/flex/v1"

	"github.com/flexstream/flexstream/internal/taskattr"
	"github.com/flexstream/flexstream/internal/twilioapi"
	"github.com/flexstream/flexstream/reactors/decide"
)

// MarkKey is the attribute under which the product marks what it made.
const MarkKey = "flexstream"

// Mark names one action of one reaction; it is written into Twilio with
// the action. decide.Attempt and decide.Targeted read Attempt and
// WorkerSid back from a re-invited task's attributes.
type Mark struct {
	Reaction  string `json:"reaction"`             // the reaction's stream
	Action    int    `json:"action"`               // index in the plan
	Attempt   int    `json:"attempt,omitempty"`    // re-invites: which attempt
	WorkerSid string `json:"worker_sid,omitempty"` // re-invites: the worker targeted
}

func (m Mark) matches(o Mark) bool { return m.Reaction == o.Reaction && m.Action == o.Action }

// Result is what an action did: the Twilio resource it made.
type Result struct {
	Sid     string `json:"sid,omitempty"`     // the message (IM…) or invite (KG…)
	TaskSid string `json:"taskSid,omitempty"` // re-invite: the new task (WT…)
}

// Caller makes REST calls (twilioapi.Client does).
type Caller interface {
	Do(ctx context.Context, fn func(*twilio.RestClient) error) (twilioapi.Response, error)
}

// Actor carries out actions.
type Actor struct {
	api Caller
	// Author of the messages sent ("" leaves Twilio's default, "system").
	Author string
}

// New returns an Actor calling through api.
func New(api Caller) *Actor { return &Actor{api: api} }

// Error is a failed call: the HTTP status (0 when no answer arrived) and
// the Retry-After Twilio asked for.
type Error struct {
	Op   string
	Resp twilioapi.Response
	Err  error
}

func (e *Error) Error() string {
	if e.Resp.Status != 0 {
		return fmt.Sprintf("twilio %s: HTTP %d: %v", e.Op, e.Resp.Status, e.Err)
	}
	return fmt.Sprintf("twilio %s: %v", e.Op, e.Err)
}
func (e *Error) Unwrap() error { return e.Err }

// Status is the HTTP status of a failed call (0: no answer).
func (e *Error) Status() int { return twilioapi.Status(e.Resp, e.Err) }

// Retryable: Twilio asked to try again later (429, 503, 412).
func (e *Error) Retryable() bool { return twilioapi.Retryable(e.Status()) }

// Ambiguous: the call may have taken effect although it failed.
func (e *Error) Ambiguous() bool { return twilioapi.Ambiguous(e.Resp, e.Err) }

func (a *Actor) call(ctx context.Context, op string, fn func(*twilio.RestClient) error) error {
	resp, err := a.api.Do(ctx, fn)
	if err != nil {
		resp.Status = twilioapi.Status(resp, err)
		return &Error{Op: op, Resp: resp, Err: err}
	}
	return nil
}

// Precheck reports whether the action still makes sense in Twilio's live
// state, and if not, why: a closed channel needs no close and takes no
// invite; a closed conversation takes no message.
func (a *Actor) Precheck(ctx context.Context, act decide.Action) (needed bool, why string, err error) {
	switch act.Kind {
	case decide.ActClose, decide.ActReinvite:
		st, err := a.channelStatus(ctx, act)
		if err != nil {
			return false, "", err
		}
		if st == "closed" || st == "inactive" && act.Kind == decide.ActClose {
			return false, "interaction channel is " + st, nil
		}
		return true, "", nil
	case decide.ActMessage:
		var state string
		err := a.call(ctx, "fetch conversation", func(c *twilio.RestClient) error {
			conv, err := c.ConversationsV1.FetchServiceConversation(act.ChatServiceSid, act.ConversationSid)
			if err == nil && conv.State != nil {
				state = *conv.State
			}
			return err
		})
		if err != nil {
			return false, "", err
		}
		if state == "closed" {
			return false, "conversation is closed", nil
		}
		return true, "", nil
	}
	return false, "", fmt.Errorf("act: unknown action %q", act.Kind)
}

func (a *Actor) channelStatus(ctx context.Context, act decide.Action) (string, error) {
	var st string
	err := a.call(ctx, "fetch interaction channel", func(c *twilio.RestClient) error {
		ch, err := c.FlexV1.FetchInteractionChannel(act.InteractionSid, act.ChannelSid)
		if err == nil && ch.Status != nil {
			st = *ch.Status
		}
		return err
	})
	return st, err
}

// Done reports whether an earlier attempt of the action already took
// effect, by looking for its mark (or, for a close, at the channel).
func (a *Actor) Done(ctx context.Context, act decide.Action, m Mark) (bool, Result, error) {
	switch act.Kind {
	case decide.ActClose:
		st, err := a.channelStatus(ctx, act)
		return st == "closed", Result{}, err
	case decide.ActMessage:
		var res Result
		found := false
		err := a.call(ctx, "list messages", func(c *twilio.RestClient) error {
			// The mark is on one of the latest messages: the reaction
			// sent it moments ago, and customers rarely write 50 times
			// in between.
			p := (&convo.ListServiceConversationMessageParams{}).SetOrder("desc").SetPageSize(50).SetLimit(50)
			msgs, err := c.ConversationsV1.ListServiceConversationMessage(act.ChatServiceSid, act.ConversationSid, p)
			for _, msg := range msgs {
				if msg.Attributes != nil && markIn([]byte(*msg.Attributes), m) {
					found = true
					if msg.Sid != nil {
						res.Sid = *msg.Sid
					}
					break
				}
			}
			return err
		})
		return found, res, err
	case decide.ActReinvite:
		var res Result
		found := false
		err := a.call(ctx, "list invites", func(c *twilio.RestClient) error {
			p := (&flex.ListInteractionChannelInviteParams{}).SetPageSize(50).SetLimit(200)
			invites, err := c.FlexV1.ListInteractionChannelInvite(act.InteractionSid, act.ChannelSid, p)
			for _, inv := range invites {
				if attrs, task, ok := inviteAttributes(inv.Routing); ok && markIn(attrs, m) {
					found = true
					res.TaskSid = task
					if inv.Sid != nil {
						res.Sid = *inv.Sid
					}
					break
				}
			}
			return err
		})
		return found, res, err
	}
	return false, Result{}, fmt.Errorf("act: unknown action %q", act.Kind)
}

// Do carries out the action once.
func (a *Actor) Do(ctx context.Context, act decide.Action, m Mark) (Result, error) {
	switch act.Kind {
	case decide.ActClose:
		return Result{}, a.call(ctx, "close interaction channel", func(c *twilio.RestClient) error {
			p := (&flex.UpdateInteractionChannelParams{}).SetStatus("closed").SetRouting(map[string]any{"status": "closed"})
			_, err := c.FlexV1.UpdateInteractionChannel(act.InteractionSid, act.ChannelSid, p)
			return err
		})
	case decide.ActMessage:
		return a.message(ctx, act, m)
	case decide.ActReinvite:
		return a.reinvite(ctx, act, m)
	}
	return Result{}, fmt.Errorf("act: unknown action %q", act.Kind)
}

func (a *Actor) message(ctx context.Context, act decide.Action, m Mark) (Result, error) {
	attrs, err := json.Marshal(map[string]Mark{MarkKey: m})
	if err != nil {
		return Result{}, err
	}
	p := (&convo.CreateServiceConversationMessageParams{}).
		// Without this header a REST-made message fires no webhook
		// (DESIGN §8), and the product would not see its own message.
		SetXTwilioWebhookEnabled("true").
		SetAttributes(string(attrs))
	if act.ContentSid != "" {
		p.SetContentSid(act.ContentSid)
		if act.ContentVariables != "" {
			p.SetContentVariables(act.ContentVariables)
		}
	} else {
		p.SetBody(act.Body)
	}
	if a.Author != "" {
		p.SetAuthor(a.Author)
	}
	var res Result
	err = a.call(ctx, "create message", func(c *twilio.RestClient) error {
		msg, err := c.ConversationsV1.CreateServiceConversationMessage(act.ChatServiceSid, act.ConversationSid, p)
		if err == nil && msg.Sid != nil {
			res.Sid = *msg.Sid
		}
		return err
	})
	return res, err
}

// reinvite re-sends the interaction's original task attributes (an
// invite's task does not inherit them, DESIGN §7), read from the
// interaction's routing at call time: they hold the customer's address,
// which the product never stores.
func (a *Actor) reinvite(ctx context.Context, act decide.Action, m Mark) (Result, error) {
	var props map[string]any
	err := a.call(ctx, "fetch interaction", func(c *twilio.RestClient) error {
		in, err := c.FlexV1.FetchInteraction(act.InteractionSid)
		if err == nil {
			props = routingProperties(in.Routing)
		}
		return err
	})
	if err != nil {
		return Result{}, err
	}
	attrs := taskattr.Of(props["attributes"])
	attrs[MarkKey] = m
	np := map[string]any{"attributes": attrs}
	for _, k := range []string{"workspace_sid", "task_channel_unique_name", "task_channel_sid", "priority", "timeout"} {
		if v, ok := props[k]; ok {
			np[k] = v
		}
	}
	if act.TaskChannel != "" {
		if _, ok := np["task_channel_unique_name"]; !ok {
			np["task_channel_unique_name"] = act.TaskChannel
		}
	}
	if act.WorkflowSid != "" {
		np["workflow_sid"] = act.WorkflowSid
	} else if v, ok := props["workflow_sid"]; ok {
		np["workflow_sid"] = v
	}
	if act.WorkerSid != "" {
		np["worker_sid"] = act.WorkerSid
	}
	if np["workspace_sid"] == nil {
		return Result{}, &Error{Op: "create invite", Err: errors.New("the interaction's routing names no workspace_sid")}
	}
	var res Result
	err = a.call(ctx, "create invite", func(c *twilio.RestClient) error {
		p := (&flex.CreateInteractionChannelInviteParams{}).SetRouting(map[string]any{"properties": np})
		inv, err := c.FlexV1.CreateInteractionChannelInvite(act.InteractionSid, act.ChannelSid, p)
		if err == nil {
			if inv.Sid != nil {
				res.Sid = *inv.Sid
			}
			_, res.TaskSid, _ = inviteAttributes(inv.Routing)
		}
		return err
	})
	return res, err
}

// routingProperties digs routing.properties out of a twilio-go routing
// value (decoded JSON).
func routingProperties(routing *any) map[string]any {
	if routing == nil {
		return map[string]any{}
	}
	r, _ := (*routing).(map[string]any)
	p, _ := r["properties"].(map[string]any)
	if p == nil {
		return map[string]any{}
	}
	return p
}

// inviteAttributes returns an invite's task attributes (as JSON) and the
// SID of the task it made (routing.properties.sid).
func inviteAttributes(routing *any) ([]byte, string, bool) {
	p := routingProperties(routing)
	task, _ := p["sid"].(string)
	attrs, err := json.Marshal(taskattr.Of(p["attributes"]))
	if err != nil {
		return nil, task, false
	}
	return attrs, task, true
}

// markIn reports whether attributes (JSON) carry the mark m.
func markIn(attrs []byte, m Mark) bool {
	var v struct {
		Mark *Mark `json:"flexstream"`
	}
	if json.Unmarshal(attrs, &v) != nil || v.Mark == nil {
		return false
	}
	return v.Mark.matches(m)
}
