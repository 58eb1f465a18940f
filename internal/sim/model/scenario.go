package model

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"reflect"
	"slices"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Scenario describes a simulated contact centre and its customers. It is
// read from YAML (testdata/scenarios/*.yaml) by ParseScenario or
// LoadScenario; smoke.yaml documents every field. Durations are in Twilio
// time: the model divides each by Speed when it uses it (see Real).
type Scenario struct {
	Name        string  `yaml:"name"`
	Description string  `yaml:"description"`
	Speed       float64 `yaml:"speed"` // ≥ 1: Twilio time runs Speed times faster than real time

	Interactions int                `yaml:"interactions"` // customers who arrive
	ArrivalRate  float64            `yaml:"arrival_rate"` // per minute of Twilio time (Poisson)
	Channels     map[string]float64 `yaml:"channels"`     // whatsapp, sms, chat → weight

	Agents int   `yaml:"agents"`
	Agent  Agent `yaml:"agent"`

	WorkflowTimeout Duration `yaml:"workflow_timeout"`
	TaskTTL         Duration `yaml:"task_ttl"`

	// Per-interaction probabilities of the fate of the first task (they
	// exclude each other, so their sum is at most 1), and of a quiet
	// customer (independent).
	KnownAgentInvite      float64 `yaml:"known_agent_invite"`
	FailedCreate          float64 `yaml:"failed_create"`
	DeletedTask           float64 `yaml:"deleted_task"`
	WorkflowTimeoutForced float64 `yaml:"workflow_timeout_forced"`
	TTLForced             float64 `yaml:"ttl_forced"`
	CustomerQuiet         float64 `yaml:"customer_quiet"`

	CustomerMessages int      `yaml:"customer_messages"` // messages a customer writes at the start, ≥ 1
	Grace            Duration `yaml:"grace"`             // idle time after which an unattended conversation is orphaned
}

// Agent is how the agents (TaskRouter workers) behave.
type Agent struct {
	Accept             float64  `yaml:"accept"` // probability a reservation is accepted
	Reject             float64  `yaml:"reject"` // … rejected; the rest time out
	ReservationTimeout Duration `yaml:"reservation_timeout"`
	HandleTime         Duration `yaml:"handle_time"`         // mean time from accept to wrap-up
	HandleDistribution string   `yaml:"handle_distribution"` // exponential (default) or uniform (±50 %)
	WrapupTime         Duration `yaml:"wrapup_time"`
}

// Channel types a scenario's channel mix may name.
var ChannelTypes = []string{"chat", "sms", "whatsapp"}

// Duration is a time.Duration written in YAML as a Go duration string
// ("90s", "5m", "1h30m").
type Duration time.Duration

// UnmarshalYAML reads a Go duration string.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("want a duration such as 90s, 5m or 1h, got %s", kindName(n))
	}
	v, err := time.ParseDuration(n.Value)
	if err != nil {
		return fmt.Errorf("want a duration such as 90s, 5m or 1h, got %q", n.Value)
	}
	*d = Duration(v)
	return nil
}

// MarshalYAML writes the duration as a Go duration string.
func (d Duration) MarshalYAML() (any, error) { return time.Duration(d).String(), nil }

// MarshalText writes the duration as a Go duration string (JSON too).
func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

// String is the Go duration string.
func (d Duration) String() string { return time.Duration(d).String() }

// Real is how long d of Twilio time lasts in real time: d / Speed.
func (s *Scenario) Real(d Duration) time.Duration {
	sp := s.Speed
	if sp < 1 {
		sp = 1
	}
	return time.Duration(float64(d) / sp)
}

// FieldError is a problem with one field of a scenario, named by its
// YAML path (e.g. "agent.accept", "channels.fax").
type FieldError struct {
	Path string
	Msg  string
}

func (e *FieldError) Error() string {
	if e.Path == "" {
		return e.Msg
	}
	return e.Path + ": " + e.Msg
}

// ParseScenario reads a scenario from YAML, strictly (an unknown or
// repeated field is an error), and validates it. Errors name the field's
// path; several are joined.
func ParseScenario(data []byte) (*Scenario, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, errors.New("scenario: empty document")
		}
		return nil, fmt.Errorf("scenario: %w", err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return nil, errors.New("scenario: more than one YAML document")
	}
	root := &doc
	if root.Kind == yaml.DocumentNode && len(root.Content) == 1 {
		root = root.Content[0]
	}
	sc := &Scenario{}
	if err := decodeNode(root, reflect.ValueOf(sc).Elem(), ""); err != nil {
		return nil, err
	}
	if err := sc.Validate(); err != nil {
		return nil, err
	}
	return sc, nil
}

// LoadScenario reads and validates a scenario file.
func LoadScenario(path string) (*Scenario, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	sc, err := ParseScenario(data)
	if err != nil {
		return nil, fmt.Errorf("scenario %s: %w", path, err)
	}
	return sc, nil
}

var (
	unmarshalerType = reflect.TypeFor[yaml.Unmarshaler]()
	wants           = map[reflect.Kind]string{
		reflect.Float64: "a number", reflect.Int: "a whole number", reflect.String: "a string", reflect.Bool: "true or false",
	}
)

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	}
	if n.Tag == "!!null" {
		return "nothing"
	}
	return fmt.Sprintf("%q", n.Value)
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// decodeNode decodes n into v, walking structs and maps itself so that
// every error names the field's path.
func decodeNode(n *yaml.Node, v reflect.Value, path string) error {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	line := fmt.Sprintf(" (line %d)", n.Line)
	if reflect.PointerTo(v.Type()).Implements(unmarshalerType) {
		if err := n.Decode(v.Addr().Interface()); err != nil {
			return &FieldError{Path: path, Msg: err.Error() + line}
		}
		return nil
	}
	switch v.Kind() {
	case reflect.Struct:
		if n.Kind != yaml.MappingNode {
			return &FieldError{Path: path, Msg: "want a mapping, got " + kindName(n) + line}
		}
		t := v.Type()
		fields := map[string]int{}
		var names []string
		for i := range t.NumField() {
			name, _, _ := strings.Cut(t.Field(i).Tag.Get("yaml"), ",")
			fields[name] = i
			names = append(names, name)
		}
		var errs []error
		seen := map[string]bool{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, val := n.Content[i], n.Content[i+1]
			p := join(path, k.Value)
			fi, ok := fields[k.Value]
			switch {
			case !ok:
				errs = append(errs, &FieldError{Path: p, Msg: fmt.Sprintf("unknown field (want one of %s) (line %d)", strings.Join(names, ", "), k.Line)})
			case seen[k.Value]:
				errs = append(errs, &FieldError{Path: p, Msg: fmt.Sprintf("given twice (line %d)", k.Line)})
			default:
				seen[k.Value] = true
				if err := decodeNode(val, v.Field(fi), p); err != nil {
					errs = append(errs, err)
				}
			}
		}
		return errors.Join(errs...)
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			return &FieldError{Path: path, Msg: "want a mapping, got " + kindName(n) + line}
		}
		m := reflect.MakeMap(v.Type())
		var errs []error
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, val := n.Content[i], n.Content[i+1]
			p := join(path, k.Value)
			if m.MapIndex(reflect.ValueOf(k.Value)).IsValid() {
				errs = append(errs, &FieldError{Path: p, Msg: fmt.Sprintf("given twice (line %d)", k.Line)})
				continue
			}
			e := reflect.New(v.Type().Elem()).Elem()
			if err := decodeNode(val, e, p); err != nil {
				errs = append(errs, err)
				continue
			}
			m.SetMapIndex(reflect.ValueOf(k.Value), e)
		}
		v.Set(m)
		return errors.Join(errs...)
	}
	want := wants[v.Kind()]
	if n.Kind != yaml.ScalarNode {
		return &FieldError{Path: path, Msg: "want " + want + ", got " + kindName(n) + line}
	}
	tag := n.ShortTag()
	numeric := v.Kind() == reflect.Int && tag != "!!int" || v.Kind() == reflect.Float64 && tag != "!!int" && tag != "!!float"
	if numeric {
		return &FieldError{Path: path, Msg: "want " + want + ", got " + kindName(n) + line}
	}
	if err := n.Decode(v.Addr().Interface()); err != nil {
		return &FieldError{Path: path, Msg: "want " + want + ", got " + kindName(n) + line}
	}
	return nil
}

// Validate checks the scenario; each problem is a FieldError naming the
// field's path, joined.
func (s *Scenario) Validate() error {
	var errs []error
	bad := func(path, format string, args ...any) {
		errs = append(errs, &FieldError{Path: path, Msg: fmt.Sprintf(format, args...)})
	}
	prob := func(path string, p float64) {
		if math.IsNaN(p) || p < 0 || p > 1 {
			bad(path, "a probability must be between 0 and 1, got %v", p)
		}
	}
	positive := func(path string, d Duration) {
		if d <= 0 {
			bad(path, "must be a positive duration, got %s", d)
		}
	}
	if strings.TrimSpace(s.Name) == "" {
		bad("name", "must be given")
	}
	if !(s.Speed >= 1) || math.IsInf(s.Speed, 0) {
		bad("speed", "must be at least 1, got %v", s.Speed)
	}
	if s.Interactions < 1 {
		bad("interactions", "must be at least 1, got %d", s.Interactions)
	}
	if !(s.ArrivalRate > 0) || math.IsInf(s.ArrivalRate, 0) {
		bad("arrival_rate", "must be a positive number of arrivals per minute, got %v", s.ArrivalRate)
	}
	if len(s.Channels) == 0 {
		bad("channels", "must name at least one channel type (%s)", strings.Join(ChannelTypes, ", "))
	}
	total := 0.0
	for _, k := range sortedKeys(s.Channels) {
		w := s.Channels[k]
		if !slices.Contains(ChannelTypes, k) {
			bad("channels."+k, "unknown channel type (want one of %s)", strings.Join(ChannelTypes, ", "))
		}
		if math.IsNaN(w) || w < 0 || math.IsInf(w, 0) {
			bad("channels."+k, "a weight must be a number ≥ 0, got %v", w)
			continue
		}
		total += w
	}
	if len(s.Channels) > 0 && !(total > 0) {
		bad("channels", "the weights must not all be 0")
	}
	if s.Agents < 1 {
		bad("agents", "must be at least 1, got %d", s.Agents)
	}
	a := s.Agent
	prob("agent.accept", a.Accept)
	prob("agent.reject", a.Reject)
	if a.Accept <= 0 {
		bad("agent.accept", "must be above 0: agents who never accept serve no one")
	}
	if a.Accept+a.Reject > 1+1e-9 {
		bad("agent.reject", "agent.accept + agent.reject must be at most 1, got %v", a.Accept+a.Reject)
	}
	positive("agent.reservation_timeout", a.ReservationTimeout)
	positive("agent.handle_time", a.HandleTime)
	switch a.HandleDistribution {
	case "", "exponential", "uniform":
	default:
		bad("agent.handle_distribution", "want exponential or uniform, got %q", a.HandleDistribution)
	}
	if a.WrapupTime < 0 {
		bad("agent.wrapup_time", "must not be negative, got %s", a.WrapupTime)
	}
	positive("workflow_timeout", s.WorkflowTimeout)
	positive("task_ttl", s.TaskTTL)
	fates := []struct {
		path string
		p    float64
	}{
		{"known_agent_invite", s.KnownAgentInvite}, {"failed_create", s.FailedCreate}, {"deleted_task", s.DeletedTask},
		{"workflow_timeout_forced", s.WorkflowTimeoutForced}, {"ttl_forced", s.TTLForced},
	}
	sum := 0.0
	for _, f := range fates {
		prob(f.path, f.p)
		sum += f.p
	}
	if sum > 1+1e-9 {
		bad("known_agent_invite", "known_agent_invite + failed_create + deleted_task + workflow_timeout_forced + ttl_forced must be at most 1, got %v", sum)
	}
	prob("customer_quiet", s.CustomerQuiet)
	if s.CustomerMessages < 1 {
		bad("customer_messages", "must be at least 1, got %d", s.CustomerMessages)
	}
	positive("grace", s.Grace)
	return errors.Join(errs...)
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
