package policy

import (
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// The YAML decoder reports type errors and unknown fields by line only
// ("line 7: field acitons not found in type policy.Rule"). decodeError
// turns them into FieldErrors that name the field by its path, found by
// walking the document's node tree.

var (
	lineMsgRe   = regexp.MustCompile(`^line (\d+): (.*)$`)
	unknownRe   = regexp.MustCompile(`^field (.+) not found in type (\S+)$`)
	unmarshalRe = regexp.MustCompile("^cannot unmarshal (!!\\w+)(?: `(.*)`)? into (.+)$")
)

// fieldsOf lists the YAML fields of the policy's types, by the type name
// the decoder prints.
var fieldsOf = func() map[string][]string {
	m := map[string][]string{}
	type action Action // the name Action.UnmarshalYAML decodes into
	for _, v := range []any{Policy{}, Rule{}, When{}, action{}, Message{}, Reinvite{}, Close{}} {
		t := reflect.TypeOf(v)
		var names []string
		for i := range t.NumField() {
			name, _, _ := strings.Cut(t.Field(i).Tag.Get("yaml"), ",")
			names = append(names, name)
		}
		m[t.String()] = names
	}
	return m
}()

// friendly names of the Go types a value is decoded into.
var friendly = map[string]string{
	"int": "a whole number", "string": "a string", "bool": "true or false",
	"policy.List": "a string or a list of strings", "policy.Duration": "a duration such as 90s, 10m or 1h",
	"policy.action": "an action (message, reinvite or close)",
	"[]policy.Rule": "a list of rules", "[]policy.Action": "a list of actions",
	"map[string][]policy.Rule": "a mapping of trigger to rules",
	"map[string]string":        "a mapping of names to strings",
}

// located is a node of the document and its path.
type located struct {
	path string
	key  bool // the node is a mapping key
	node *yaml.Node
}

// index maps each line of the document to the nodes on it.
func index(data []byte) map[int][]located {
	var doc yaml.Node
	if yaml.Unmarshal(data, &doc) != nil {
		return nil
	}
	idx := map[int][]located{}
	var walk func(n *yaml.Node, path string, depth int)
	walk = func(n *yaml.Node, path string, depth int) {
		if n == nil || depth > 64 {
			return
		}
		idx[n.Line] = append(idx[n.Line], located{path: path, node: n})
		switch n.Kind {
		case yaml.DocumentNode:
			for _, c := range n.Content {
				walk(c, path, depth+1)
			}
		case yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				k, val := n.Content[i], n.Content[i+1]
				p := k.Value
				if path != "" {
					p = path + "." + k.Value
				}
				idx[k.Line] = append(idx[k.Line], located{path: p, key: true, node: k})
				walk(val, p, depth+1)
			}
		case yaml.SequenceNode:
			for i, c := range n.Content {
				walk(c, fmt.Sprintf("%s[%d]", path, i), depth+1)
			}
		}
	}
	walk(&doc, "", 0)
	return idx
}

// decodeError turns the decoder's error into FieldErrors where it can.
func decodeError(data []byte, err error) error {
	var te *yaml.TypeError
	if !errors.As(err, &te) {
		return fmt.Errorf("policy: %w", err)
	}
	idx := index(data)
	errs := make([]error, 0, len(te.Errors))
	for _, s := range te.Errors {
		errs = append(errs, fieldError(idx, s))
	}
	return errors.Join(errs...)
}

func fieldError(idx map[int][]located, s string) *FieldError {
	m := lineMsgRe.FindStringSubmatch(s)
	if m == nil {
		return &FieldError{Msg: s}
	}
	line, _ := strconv.Atoi(m[1])
	msg := m[2]
	on := idx[line]
	if u := unknownRe.FindStringSubmatch(msg); u != nil {
		msg = fmt.Sprintf("unknown field %q", u[1])
		if names := fieldsOf[u[2]]; len(names) > 0 {
			msg += " (want one of " + strings.Join(names, ", ") + ")"
		}
		for _, l := range on {
			if l.key && l.node.Value == u[1] {
				return &FieldError{Path: l.path, Msg: msg + fmt.Sprintf(" (line %d)", line)}
			}
		}
		return &FieldError{Msg: fmt.Sprintf("line %d: %s", line, msg)}
	}
	path, found := "", false
	if u := unmarshalRe.FindStringSubmatch(msg); u != nil {
		want := friendly[u[3]]
		if want == "" {
			want = "a " + strings.TrimPrefix(u[3], "policy.")
		}
		got := map[string]string{"!!map": "a mapping", "!!seq": "a list", "!!null": "nothing"}[u[1]]
		if got == "" {
			got = fmt.Sprintf("%q", u[2])
		}
		msg = fmt.Sprintf("want %s, got %s", want, got)
		path, found = pick(on, u[1], u[2])
	} else {
		path, found = pick(on, "", "")
	}
	if !found {
		return &FieldError{Msg: fmt.Sprintf("line %d: %s", line, msg)}
	}
	return &FieldError{Path: path, Msg: msg + fmt.Sprintf(" (line %d)", line)}
}

// pick chooses the value node on a line the decoder complained about: of
// the tag it printed, with the (maybe shortened) value it printed.
func pick(on []located, tag, value string) (string, bool) {
	prefix, short := strings.CutSuffix(value, "...")
	var last *located
	for i := len(on) - 1; i >= 0; i-- { // the deepest node first: nodes are indexed parents first
		l := &on[i]
		if l.key || l.node.Kind == yaml.DocumentNode {
			continue
		}
		if last == nil {
			last = l
		}
		switch {
		case tag == "!!map" && l.node.Kind == yaml.MappingNode,
			tag == "!!seq" && l.node.Kind == yaml.SequenceNode:
			return l.path, true
		case tag != "" && l.node.Kind == yaml.ScalarNode &&
			(l.node.Value == value || short && strings.HasPrefix(l.node.Value, prefix)):
			return l.path, true
		}
	}
	if last != nil {
		return last.path, true
	}
	return "", false
}
