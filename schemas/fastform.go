package schemas

import (
	"encoding/json"
	"net/url"
	"regexp"
	"unicode/utf8"
)

// fastForm is a form schema (taskrouter-callback, conversations-webhook)
// compiled for a fast, conservative check: sure reports true only for a
// form the schema surely accepts; anything else goes through the JSON
// Schema engine, which stays the authority and names the problem. It is
// built from the schema itself and knows only the keywords those schemas
// use; a schema with any other keyword gets no fast path. The JSON Schema
// engine cost the projector ≈ 35 µs per TaskRouter callback, a fifth of
// its CPU per event. TestFormFastPathAgreesWithSchema and
// FuzzFormFastPath hold the two together.
type fastForm struct {
	required []string
	props    map[string]*fastProp
}

type fastProp struct {
	pattern   *regexp.Regexp
	enum      map[string]bool
	minLength int
	json      bool                 // contentMediaType application/json
	content   map[string]*fastProp // contentSchema: an object's string properties
	object    bool                 // contentSchema present: the JSON must be an object
}

// compileFastForm returns nil when the schema uses something it does not
// know.
func compileFastForm(schema []byte) *fastForm {
	var doc map[string]any
	if json.Unmarshal(schema, &doc) != nil {
		return nil
	}
	defs, _ := doc["$defs"].(map[string]any)
	resolve := func(m map[string]any) map[string]any {
		for depth := 0; depth < 4; depth++ {
			ref, ok := m["$ref"].(string)
			if !ok {
				return m
			}
			const prefix = "#/$defs/"
			if len(ref) <= len(prefix) || ref[:len(prefix)] != prefix {
				return nil
			}
			next, ok := defs[ref[len(prefix):]].(map[string]any)
			if !ok {
				return nil
			}
			merged := map[string]any{}
			for k, v := range next {
				merged[k] = v
			}
			for k, v := range m {
				if k != "$ref" {
					merged[k] = v
				}
			}
			m = merged
		}
		return m
	}
	known := map[string]bool{"description": true, "examples": true, "title": true, "$ref": true}
	var prop func(m map[string]any, inContent bool) *fastProp
	prop = func(m map[string]any, inContent bool) *fastProp {
		m = resolve(m)
		if m == nil {
			return nil
		}
		p := &fastProp{}
		for k, v := range m {
			switch k {
			case "type":
				if v != "string" {
					return nil
				}
			case "pattern":
				s, _ := v.(string)
				re, err := regexp.Compile(s)
				if err != nil {
					return nil
				}
				p.pattern = re
			case "enum":
				list, ok := v.([]any)
				if !ok {
					return nil
				}
				p.enum = map[string]bool{}
				for _, e := range list {
					s, ok := e.(string)
					if !ok {
						return nil
					}
					p.enum[s] = true
				}
			case "minLength":
				n, ok := v.(float64)
				if !ok {
					return nil
				}
				p.minLength = int(n)
			case "contentMediaType":
				if v != "application/json" || inContent {
					return nil
				}
				p.json = true
			case "contentSchema":
				cs, ok := v.(map[string]any)
				if !ok || inContent {
					return nil
				}
				cs = resolve(cs)
				if cs == nil {
					return nil
				}
				p.object, p.content = true, map[string]*fastProp{}
				for ck, cv := range cs {
					switch ck {
					case "type":
						if cv != "object" {
							return nil
						}
					case "additionalProperties":
						if cv != true {
							return nil
						}
					case "properties":
						props, ok := cv.(map[string]any)
						if !ok {
							return nil
						}
						for name, pv := range props {
							pm, ok := pv.(map[string]any)
							if !ok {
								return nil
							}
							sub := prop(pm, true)
							if sub == nil {
								return nil
							}
							p.content[name] = sub
						}
					default:
						if !known[ck] {
							return nil
						}
					}
				}
			default:
				if !known[k] {
					return nil
				}
			}
		}
		return p
	}
	f := &fastForm{props: map[string]*fastProp{}}
	for k, v := range doc {
		switch k {
		case "type":
			if v != "object" {
				return nil
			}
		case "required":
			list, _ := v.([]any)
			for _, r := range list {
				s, ok := r.(string)
				if !ok {
					return nil
				}
				f.required = append(f.required, s)
			}
		case "additionalProperties":
			ap, ok := v.(map[string]any)
			if !ok || len(ap) != 1 || ap["type"] != "string" {
				return nil
			}
		case "properties":
			props, _ := v.(map[string]any)
			for name, pv := range props {
				pm, ok := pv.(map[string]any)
				if !ok {
					return nil
				}
				p := prop(pm, false)
				if p == nil {
					return nil
				}
				f.props[name] = p
			}
		case "$schema", "$id", "$defs":
		default:
			if !known[k] {
				return nil
			}
		}
	}
	return f
}

// sure reports whether the schema surely accepts form (first value of
// each key, as the schema sees it).
func (f *fastForm) sure(form url.Values) bool {
	if f == nil {
		return false
	}
	for _, r := range f.required {
		if _, ok := form[r]; !ok {
			return false
		}
	}
	for k, vals := range form {
		if len(vals) == 0 {
			return false
		}
		p := f.props[k]
		if p == nil {
			continue // additional properties: strings, as every form value is
		}
		if !p.accepts(vals[0]) {
			return false
		}
	}
	return true
}

func (p *fastProp) accepts(v string) bool {
	if p.minLength > 0 && utf8.RuneCountInString(v) < p.minLength {
		return false
	}
	if p.pattern != nil && !p.pattern.MatchString(v) {
		return false
	}
	if p.enum != nil && !p.enum[v] {
		return false
	}
	if !p.json {
		return true
	}
	if !p.object {
		return json.Valid([]byte(v))
	}
	var obj map[string]any
	if json.Unmarshal([]byte(v), &obj) != nil || obj == nil {
		return false
	}
	for name, sub := range p.content {
		val, present := obj[name]
		if !present {
			continue
		}
		s, ok := val.(string)
		if !ok || !sub.accepts(s) {
			return false
		}
	}
	return true
}
