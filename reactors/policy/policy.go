// Package policy is the reactors' policy file: which actions to take when
// a task ends without serving its customer (DESIGN §7). It is YAML, meant
// to be read and edited by a contact-centre operator; default.yaml (the
// built-in policy, see Default) is the commented example.
//
// A policy maps each trigger kind to an ordered list of rules. A rule has
// conditions ("when", all optional, all must hold) and actions (message,
// reinvite, close). The first rule whose conditions hold fires; if none
// does, nothing is done. Parse decodes strictly (an unknown field is an
// error) and validates; every error names the field by its path, e.g.
//
//	triggers.workflow.timeout[1].actions[0].reinvite.workflow: "WQ123" is not a workflow SID (WW + 32 hex)
//
// and all errors are reported at once (errors.Join of *FieldError).
//
// The package has no I/O besides Load.
package policy

import (
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"sync"
	"time"

	"go.yaml.in/yaml/v3"
)

// Version is the only policy file version there is.
const Version = 1

// Trigger kinds: the keys of "triggers". They are the trigger kinds of
// reactors/decide (decide.Kinds), spelled out here because decide
// imports this package.
const (
	TriggerWorkflowTimeout     = "workflow.timeout"
	TriggerTaskCanceled        = "task.canceled"
	TriggerTaskDeleted         = "task.deleted"
	TriggerReservationRejected = "reservation.rejected"
)

// Triggers lists the trigger kinds, in the order a policy file lists them.
var Triggers = []string{TriggerWorkflowTimeout, TriggerTaskCanceled, TriggerTaskDeleted, TriggerReservationRejected}

// Causes a task.canceled can have (condition "cause"); decide's Cause*.
var Causes = []string{"failed-create", "declined-known-agent", "workflow-timeout", "other"}

// ChannelTypes are the channel types condition "channel_type" accepts:
// the values Flex puts in a conversation's or task's channelType.
var ChannelTypes = []string{"chat", "email", "gbm", "instagram", "messenger", "rcs", "sms", "voice", "web", "whatsapp"}

// Defaults of the top-level settings a file may leave out.
const (
	DefaultDeadline     = 10 * time.Minute
	DefaultMaxReinvites = 3
)

// Policy is a parsed policy file.
type Policy struct {
	// Version of the file format: 1.
	Version int `yaml:"version"`
	// Deadline is the default time a reaction has, from its trigger: a
	// trigger older than this when it is decided on (catch-up after
	// downtime) is skipped, and a plan not carried out by then is
	// abandoned. A rule may set its own. Default 10m.
	Deadline Duration `yaml:"deadline"`
	// MaxReinvites is the default limit of re-invites per conversation:
	// a rule with a reinvite action and no attempts_below condition only
	// matches while fewer re-invites than this were made. Default 3.
	MaxReinvites int `yaml:"max_reinvites"`
	// FallbackWorkflow (WW…) is the workflow re-invites route through
	// when their rule names none; "" routes through the task's own.
	FallbackWorkflow string `yaml:"fallback_workflow"`
	// Triggers are the rules of each trigger kind, tried in order. A kind
	// that is left out has no rules: its triggers are not acted on.
	Triggers map[string][]Rule `yaml:"triggers"`
}

// Rule is one rule: when its conditions hold, its actions are taken.
type Rule struct {
	// Name identifies the rule in plans, logs and metrics
	// ("<trigger>/<name>"); unique per trigger; letters, digits, ".", "_", "-".
	Name string `yaml:"name"`
	// When are the conditions; all must hold. None: always.
	When When `yaml:"when,omitempty"`
	// Deadline overrides the policy's deadline for this rule.
	Deadline *Duration `yaml:"deadline,omitempty"`
	// Actions are taken in order: messages, at most one reinvite, and a
	// close that comes last (nothing can follow a close).
	Actions []Action `yaml:"actions"`
}

// When are a rule's conditions. Each one that is set must hold. A list
// holds when any of its entries matches; a list may also be written as a
// single value.
type When struct {
	// ChannelType: the conversation's channel type (sms, whatsapp, chat, …).
	ChannelType List `yaml:"channel_type,omitempty"`
	// TaskQueue: the task's queue, by SID (WQ…) or name.
	TaskQueue List `yaml:"task_queue,omitempty"`
	// Workflow: the task's workflow, by SID (WW…) or name.
	Workflow List `yaml:"workflow,omitempty"`
	// CancelReason: Go regular expressions (RE2 syntax), matched against
	// the task's cancel reason ("" when it has none).
	CancelReason List `yaml:"cancel_reason,omitempty"`
	// Cause (task.canceled only): failed-create, declined-known-agent,
	// workflow-timeout, other.
	Cause List `yaml:"cause,omitempty"`
	// AttemptsBelow: fewer re-invites than this were made so far.
	AttemptsBelow *int `yaml:"attempts_below,omitempty"`
	// AttemptsAtLeast: at least this many re-invites were made so far.
	AttemptsAtLeast *int `yaml:"attempts_at_least,omitempty"`
}

// Action is one action; exactly one of its fields is set. In the file:
// "- message: {text: …}", "- reinvite: {}", "- close: {}" (or "- close").
type Action struct {
	Message  *Message  `yaml:"message,omitempty"`
	Reinvite *Reinvite `yaml:"reinvite,omitempty"`
	Close    *Close    `yaml:"close,omitempty"`
}

// Message sends the customer a message in the conversation.
//
// Text is a free-form message. WhatsApp and Messenger only accept those
// within 24 hours of the customer's last message; outside that window a
// text-only message is not sent. ContentSid (HX…) names an approved
// content template, with ContentVariables filling its placeholders; it
// can be sent at any time. With both, the text is sent when free-form
// messages are allowed and the template otherwise.
type Message struct {
	Text             string            `yaml:"text,omitempty"`
	ContentSid       string            `yaml:"content_sid,omitempty"`
	ContentVariables map[string]string `yaml:"content_variables,omitempty"`
}

// Reinvite invites the conversation to a new task (Flex Interaction
// Channel Invite), so that the customer is routed to an agent again.
type Reinvite struct {
	// Workflow (WW…) to route through; "" uses the policy's
	// fallback_workflow, else the ended task's own workflow.
	Workflow string `yaml:"workflow,omitempty"`
	// KnownAgent targets the worker who last accepted a task of the
	// conversation (known-agent routing), when there is one.
	KnownAgent bool `yaml:"known_agent,omitempty"`
}

// Close closes the interaction channel (never the task: R2).
type Close struct{}

// UnmarshalYAML reads an action strictly (it is called with the strict
// decoder), and also accepts an action with no settings written as
// "- close", "- close:" or "- reinvite:".
func (a *Action) UnmarshalYAML(unmarshal func(any) error) error {
	var s string
	if unmarshal(&s) == nil {
		switch s {
		case "close":
			*a = Action{Close: &Close{}}
			return nil
		case "reinvite":
			*a = Action{Reinvite: &Reinvite{}}
			return nil
		}
	}
	type action Action // without this method
	if err := unmarshal((*action)(a)); err != nil {
		return err
	}
	// A key with a null value leaves its pointer nil: "close:" means close.
	var keys map[string]any
	if unmarshal(&keys) == nil {
		if _, ok := keys["message"]; ok && a.Message == nil {
			a.Message = &Message{}
		}
		if _, ok := keys["reinvite"]; ok && a.Reinvite == nil {
			a.Reinvite = &Reinvite{}
		}
		if _, ok := keys["close"]; ok && a.Close == nil {
			a.Close = &Close{}
		}
	}
	return nil
}

// Duration is a time.Duration written as Go writes one ("90s", "10m", "1h30m").
type Duration time.Duration

// D is the duration as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

func (d Duration) String() string { return time.Duration(d).String() }

// MarshalYAML writes the duration as a string.
func (d Duration) MarshalYAML() (any, error) { return d.String(), nil }

// UnmarshalYAML reads a duration string.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	v, err := time.ParseDuration(n.Value)
	if n.Kind != yaml.ScalarNode || err != nil {
		return typeErr(n, "policy.Duration")
	}
	*d = Duration(v)
	return nil
}

// List is a list of strings that may also be written as one string.
type List []string

// UnmarshalYAML reads a string or a sequence of strings.
func (l *List) UnmarshalYAML(n *yaml.Node) error {
	switch n.Kind {
	case yaml.ScalarNode:
		if n.ShortTag() == "!!null" {
			*l = nil
			return nil
		}
		*l = List{n.Value}
		return nil
	case yaml.SequenceNode:
		var out List
		for _, c := range n.Content {
			if c.Kind != yaml.ScalarNode || c.ShortTag() == "!!null" {
				return typeErr(c, "string")
			}
			out = append(out, c.Value)
		}
		*l = out
		return nil
	}
	return typeErr(n, "policy.List")
}

// typeErr is an error the decoder collects, worded as its own (Parse maps
// it to a path and a friendlier message).
func typeErr(n *yaml.Node, into string) error {
	value := ""
	if n.Kind == yaml.ScalarNode {
		value = " `" + n.Value + "`"
	}
	return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: cannot unmarshal %s%s into %s", n.Line, n.ShortTag(), value, into)}}
}

// Parse reads and validates a policy file. The error, if any, joins every
// problem found; each names its field (see FieldError), so that an
// operator sees them all at once. Settings left out take their defaults.
func Parse(data []byte) (*Policy, error) {
	p := &Policy{Deadline: Duration(DefaultDeadline), MaxReinvites: DefaultMaxReinvites}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(p); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, errors.New("policy: empty file")
		}
		return nil, decodeError(data, err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return nil, errors.New("policy: more than one YAML document (a policy file holds one)")
	}
	p.normalize()
	if err := p.Validate(); err != nil {
		return nil, err
	}
	return p, nil
}

// Load reads and parses a policy file.
func Load(path string) (*Policy, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	p, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("policy %s: %w", path, err)
	}
	return p, nil
}

// Marshal writes the policy as YAML (without comments); Parse reads it
// back equal.
func (p *Policy) Marshal() ([]byte, error) {
	var b bytes.Buffer
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(p); err != nil {
		return nil, err
	}
	if err := enc.Close(); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// normalize makes empty lists and maps nil, so that a policy and its
// Marshal parse equal.
func (p *Policy) normalize() {
	if len(p.Triggers) == 0 {
		p.Triggers = nil
	}
	for k, rules := range p.Triggers {
		if len(rules) == 0 {
			p.Triggers[k] = nil
		}
		for i := range rules {
			w := &rules[i].When
			for _, l := range []*List{&w.ChannelType, &w.TaskQueue, &w.Workflow, &w.CancelReason, &w.Cause} {
				if len(*l) == 0 {
					*l = nil
				}
			}
			for _, a := range rules[i].Actions {
				if a.Message != nil && len(a.Message.ContentVariables) == 0 {
					a.Message.ContentVariables = nil
				}
			}
		}
	}
}

// Rules are the rules of a trigger kind (none for an unknown kind).
func (p *Policy) Rules(kind string) []Rule { return p.Triggers[kind] }

// DeadlineOf is the deadline of a rule: its own, else the policy's.
func (p *Policy) DeadlineOf(r *Rule) time.Duration {
	if r != nil && r.Deadline != nil && *r.Deadline > 0 {
		return r.Deadline.D()
	}
	if p.Deadline > 0 {
		return p.Deadline.D()
	}
	return DefaultDeadline
}

// Reinvite is the rule's reinvite action, nil if it has none.
func (r *Rule) Reinvite() *Reinvite {
	for _, a := range r.Actions {
		if a.Reinvite != nil {
			return a.Reinvite
		}
	}
	return nil
}

// AttemptLimit is the number of re-invites a rule allows for a
// conversation, and whether it has a limit at all: a rule's own
// attempts_below, else, for a rule that re-invites, the policy's
// max_reinvites.
func (p *Policy) AttemptLimit(r *Rule) (int, bool) {
	if r.When.AttemptsBelow != nil {
		return *r.When.AttemptsBelow, true
	}
	if r.Reinvite() != nil {
		return p.MaxReinvites, true
	}
	return 0, false
}

//go:embed default.yaml
var defaultYAML []byte

// DefaultYAML is the text of the built-in policy (a commented example).
func DefaultYAML() []byte { return bytes.Clone(defaultYAML) }

var parsedDefault = sync.OnceValue(func() *Policy {
	p, err := Parse(defaultYAML)
	if err != nil {
		panic("policy: the built-in default.yaml is invalid: " + err.Error())
	}
	return p
})

// Default is the built-in policy (DESIGN §7), a fresh copy each call.
func Default() *Policy {
	p, err := Parse(defaultYAML)
	if err != nil {
		panic("policy: the built-in default.yaml is invalid: " + err.Error())
	}
	return p
}

// Shared is the built-in policy, parsed once; callers must not modify it.
func Shared() *Policy { return parsedDefault() }

// SID formats.
var sidRe = regexp.MustCompile(`^[A-Z]{2}[0-9a-fA-F]{32}$`)

// IsSid reports whether s is a Twilio SID with the given two-letter prefix.
func IsSid(prefix, s string) bool {
	return len(s) == 34 && s[:2] == prefix && sidRe.MatchString(s)
}
