package policy

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"unicode/utf8"
)

// FieldError is one problem of a policy file, at a field named by its
// path from the top of the file: "triggers.workflow.timeout[1].actions[0].reinvite.workflow".
// An empty Path is the file as a whole.
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

// MaxTextLen is the longest message text Twilio accepts (characters).
const MaxTextLen = 1600

var (
	nameRe    = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`)
	sidLikeRe = regexp.MustCompile(`^[A-Z]{2}[0-9a-fA-F]{16,}$`)
	hexRe     = regexp.MustCompile(`^[0-9a-fA-F]+$`)
)

type validator struct{ errs []error }

func (v *validator) add(path, format string, args ...any) {
	v.errs = append(v.errs, &FieldError{Path: path, Msg: fmt.Sprintf(format, args...)})
}

// Validate checks the policy and returns every problem, joined
// (errors.Join); each is a *FieldError.
func (p *Policy) Validate() error {
	v := &validator{}
	if p.Version != Version {
		v.add("version", "%d is not a supported version (want %d)", p.Version, Version)
	}
	if p.Deadline <= 0 {
		v.add("deadline", "%s: must be more than 0", p.Deadline)
	}
	if p.MaxReinvites < 0 {
		v.add("max_reinvites", "%d: must be 0 or more", p.MaxReinvites)
	}
	v.sid("fallback_workflow", "WW", "workflow", p.FallbackWorkflow, true)
	kinds := make([]string, 0, len(p.Triggers))
	for k := range p.Triggers {
		kinds = append(kinds, k)
	}
	slices.SortFunc(kinds, func(a, b string) int { // known kinds in file order, then the rest
		ia, ib := slices.Index(Triggers, a), slices.Index(Triggers, b)
		if ia < 0 {
			ia = len(Triggers)
		}
		if ib < 0 {
			ib = len(Triggers)
		}
		if ia != ib {
			return ia - ib
		}
		return strings.Compare(a, b)
	})
	for _, k := range kinds {
		path := "triggers." + k
		if !slices.Contains(Triggers, k) {
			v.add(path, "unknown trigger %q (want one of %s)", k, strings.Join(Triggers, ", "))
			continue
		}
		names := map[string]int{}
		for i := range p.Triggers[k] {
			r := &p.Triggers[k][i]
			rp := fmt.Sprintf("%s[%d]", path, i)
			if j, dup := names[r.Name]; dup && r.Name != "" {
				v.add(rp+".name", "%q is also the name of rule %d: names must be unique per trigger", r.Name, j)
			} else {
				names[r.Name] = i
			}
			v.rule(rp, k, r)
		}
	}
	return errors.Join(v.errs...)
}

func (v *validator) rule(path, kind string, r *Rule) {
	switch {
	case r.Name == "":
		v.add(path+".name", "missing: every rule needs a name")
	case !nameRe.MatchString(r.Name):
		v.add(path+".name", "%q: use letters, digits, '.', '_' and '-' only", r.Name)
	}
	if r.Deadline != nil && *r.Deadline <= 0 {
		v.add(path+".deadline", "%s: must be more than 0", *r.Deadline)
	}
	v.when(path+".when", kind, &r.When)
	ap := path + ".actions"
	if len(r.Actions) == 0 {
		v.add(ap, "missing: a rule needs at least one action")
	}
	reinvites, closes := 0, 0
	for i, a := range r.Actions {
		p := fmt.Sprintf("%s[%d]", ap, i)
		n := 0
		if a.Message != nil {
			n++
			v.message(p+".message", a.Message)
		}
		if a.Reinvite != nil {
			n++
			reinvites++
			if reinvites > 1 {
				v.add(p+".reinvite", "a rule may re-invite only once")
			}
			v.sid(p+".reinvite.workflow", "WW", "workflow", a.Reinvite.Workflow, true)
		}
		if a.Close != nil {
			n++
			closes++
			if i != len(r.Actions)-1 {
				v.add(p+".close", "close must be the last action (nothing can follow a close)")
			}
		}
		if n != 1 {
			v.add(p, "set exactly one of message, reinvite, close (found %d)", n)
		}
	}
	if reinvites > 0 && closes > 0 {
		v.add(ap, "a rule cannot both re-invite and close (the close would end the new task)")
	}
}

func (v *validator) when(path, kind string, w *When) {
	for i, c := range w.ChannelType {
		if !slices.Contains(ChannelTypes, strings.ToLower(c)) {
			v.add(fmt.Sprintf("%s.channel_type[%d]", path, i), "unknown channel type %q (want one of %s)", c, strings.Join(ChannelTypes, ", "))
		}
	}
	v.refs(path+".task_queue", "WQ", "queue", w.TaskQueue)
	v.refs(path+".workflow", "WW", "workflow", w.Workflow)
	for i, re := range w.CancelReason {
		if _, err := regexp.Compile(re); err != nil {
			v.add(fmt.Sprintf("%s.cancel_reason[%d]", path, i), "%q is not a regular expression: %v", re, err)
		}
	}
	for i, c := range w.Cause {
		p := fmt.Sprintf("%s.cause[%d]", path, i)
		switch {
		case kind != TriggerTaskCanceled:
			v.add(p, "cause only applies to %s rules", TriggerTaskCanceled)
		case !slices.Contains(Causes, c):
			v.add(p, "unknown cause %q (want one of %s)", c, strings.Join(Causes, ", "))
		}
	}
	if w.AttemptsBelow != nil && *w.AttemptsBelow < 1 {
		v.add(path+".attempts_below", "%d: must be 1 or more (0 never holds)", *w.AttemptsBelow)
	}
	if w.AttemptsAtLeast != nil && *w.AttemptsAtLeast < 0 {
		v.add(path+".attempts_at_least", "%d: must be 0 or more", *w.AttemptsAtLeast)
	}
	if w.AttemptsBelow != nil && w.AttemptsAtLeast != nil && *w.AttemptsAtLeast >= *w.AttemptsBelow && *w.AttemptsBelow >= 1 {
		v.add(path+".attempts_at_least", "%d with attempts_below %d never holds", *w.AttemptsAtLeast, *w.AttemptsBelow)
	}
}

// refs checks a list of SIDs or names: an entry that looks like a SID must
// be a well-formed SID of the right kind.
func (v *validator) refs(path, prefix, what string, l List) {
	for i, s := range l {
		p := fmt.Sprintf("%s[%d]", path, i)
		switch {
		case strings.TrimSpace(s) == "":
			v.add(p, "empty: want a %s SID (%s…) or name", what, prefix)
		case !IsSid(prefix, s) && (sidLikeRe.MatchString(s) || strings.HasPrefix(s, prefix) && hexRe.MatchString(s[2:])):
			v.add(p, "%q is not a %s SID (%s + 32 hex); a name that looks like a SID is not allowed", s, what, prefix)
		}
	}
}

// sid checks a SID field.
func (v *validator) sid(path, prefix, what, s string, optional bool) {
	if s == "" && optional {
		return
	}
	if !IsSid(prefix, s) {
		v.add(path, "%q is not a %s SID (%s + 32 hex)", s, what, prefix)
	}
}

func (v *validator) message(path string, m *Message) {
	if m.Text == "" && m.ContentSid == "" {
		v.add(path, "set text, content_sid, or both")
	}
	switch {
	case !utf8.ValidString(m.Text):
		v.add(path+".text", "not valid UTF-8")
	case utf8.RuneCountInString(m.Text) > MaxTextLen:
		v.add(path+".text", "%d characters: Twilio accepts at most %d", utf8.RuneCountInString(m.Text), MaxTextLen)
	}
	v.sid(path+".content_sid", "HX", "content template", m.ContentSid, true)
	if len(m.ContentVariables) > 0 && m.ContentSid == "" {
		v.add(path+".content_variables", "only used with content_sid")
	}
	keys := make([]string, 0, len(m.ContentVariables))
	for k := range m.ContentVariables {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		if strings.TrimSpace(k) == "" {
			v.add(path+".content_variables", "a variable has an empty name")
		}
	}
}
