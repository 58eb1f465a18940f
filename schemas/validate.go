package schemas

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"mime"
	"net/url"
	"path"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/santhosh-tekuri/jsonschema/v6/kind"
)

//go:embed json/*.json
var schemaFS embed.FS

// SchemaBaseURL is the base of every schema's $id: a schema file's $id is
// SchemaBaseURL + its file name. A breaking change gets a new base (v2).
const SchemaBaseURL = "https://flexstream.dev/schemas/v1/"

// Schema file names (keys of Schemas).
const (
	SchemaEnvelope      = "envelope.schema.json"
	SchemaTaskRouter    = FamilyTaskRouter + ".schema.json"
	SchemaConversations = FamilyConversations + ".schema.json"
	SchemaEventStreams  = FamilyEventStreams + ".schema.json"
)

// Schemas returns the contract's JSON Schemas (draft 2020-12), file name →
// bytes, for docs and tools. The caller may modify the returned map and
// slices.
func Schemas() map[string][]byte {
	entries, err := fs.ReadDir(schemaFS, "json")
	if err != nil {
		panic(err) // embedded at build time
	}
	out := make(map[string][]byte, len(entries))
	for _, e := range entries {
		b, err := schemaFS.ReadFile(path.Join("json", e.Name()))
		if err != nil {
			panic(err)
		}
		out[e.Name()] = b
	}
	return out
}

// ErrInvalid is wrapped by every error a Validator returns: the record's
// headers or value do not satisfy the contract.
var ErrInvalid = errors.New("invalid")

// SchemaError says which family (or "envelope"), which field and which
// schema keyword failed. It never carries payload values: payloads hold
// phone numbers and message text.
type SchemaError struct {
	// Family is a Family* constant, or "envelope" for headers.
	Family string
	// Field is a JSON pointer to the failing field ("" for the whole
	// value); a failure inside a string holding JSON continues after " → "
	// (e.g. "/TaskAttributes → /conversationSid", "/TaskAttributes → (root)").
	Field string
	// Keyword is the failing schema keyword (required, pattern, enum, …),
	// or "decode" when the value does not parse.
	Keyword string
	// Reason is a short description built from the schema only.
	Reason string
	// More counts further failures not described.
	More int

	rank int // report order among failures at one field
}

func (e *SchemaError) Error() string {
	var b strings.Builder
	b.WriteString(e.Family)
	b.WriteString(": ")
	b.WriteString(ErrInvalid.Error())
	b.WriteString(": ")
	if e.Field != "" {
		b.WriteString(e.Field)
		b.WriteString(": ")
	}
	b.WriteString(e.Reason)
	if e.More > 0 {
		fmt.Fprintf(&b, " (and %d more)", e.More)
	}
	return b.String()
}

// Unwrap makes errors.Is(err, ErrInvalid) true.
func (e *SchemaError) Unwrap() error { return ErrInvalid }

const familyEnvelope = "envelope"

// Validator checks records against the contract's schemas. Build it once
// with NewValidator (or share DefaultValidator); it is safe for concurrent
// use. The zero Validator is not usable.
type Validator struct {
	envelope, taskRouter, conversations, eventStreams, eventStreamsData *jsonschema.Schema
	fastTaskRouter, fastConversations                                   *fastForm
}

// NewValidator compiles the embedded schemas (draft 2020-12, format and
// content assertions on). It reads nothing outside the binary.
func NewValidator() (*Validator, error) {
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	c.AssertFormat()
	c.AssertContent()
	// Only the embedded resources: never fetch a $ref from the network.
	c.UseLoader(noLoader{})
	for name, b := range Schemas() {
		doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
		if err != nil {
			return nil, fmt.Errorf("schemas: %s: %w", name, err)
		}
		if err := c.AddResource(SchemaBaseURL+name, doc); err != nil {
			return nil, fmt.Errorf("schemas: %s: %w", name, err)
		}
	}
	var v Validator
	for _, s := range []struct {
		dst *(*jsonschema.Schema)
		loc string
	}{
		{&v.envelope, SchemaEnvelope},
		{&v.taskRouter, SchemaTaskRouter},
		{&v.conversations, SchemaConversations},
		{&v.eventStreams, SchemaEventStreams},
		{&v.eventStreamsData, SchemaEventStreams + "#/$defs/data"},
	} {
		sch, err := c.Compile(SchemaBaseURL + s.loc)
		if err != nil {
			return nil, fmt.Errorf("schemas: compile %s: %w", s.loc, err)
		}
		*s.dst = sch
	}
	v.fastTaskRouter = compileFastForm(Schemas()[SchemaTaskRouter])
	v.fastConversations = compileFastForm(Schemas()[SchemaConversations])
	return &v, nil
}

type noLoader struct{}

func (noLoader) Load(u string) (any, error) {
	return nil, fmt.Errorf("schemas: %s is not an embedded schema", u)
}

var defaultValidator = sync.OnceValues(NewValidator)

// DefaultValidator returns a process-wide Validator, compiled on first use.
func DefaultValidator() (*Validator, error) { return defaultValidator() }

// ValidateEnvelope checks a record's headers (name → value).
func (v *Validator) ValidateEnvelope(headers map[string]string) error {
	if envelopeSurelyValid(headers) {
		return nil
	}
	m := make(map[string]any, len(headers))
	for k, val := range headers {
		m[k] = val
	}
	return check(v.envelope, familyEnvelope, m)
}

// ValidateTaskRouterForm checks a TaskRouter callback's form fields
// (first value of each key).
func (v *Validator) ValidateTaskRouterForm(form url.Values) error {
	if v.fastTaskRouter.sure(form) {
		return nil
	}
	return check(v.taskRouter, FamilyTaskRouter, formMap(form))
}

// ValidateConversationsForm checks a Conversations webhook's form fields
// (first value of each key).
func (v *Validator) ValidateConversationsForm(form url.Values) error {
	if v.fastConversations.sure(form) {
		return nil
	}
	return check(v.conversations, FamilyConversations, formMap(form))
}

// ValidateEventStreams checks an Event Streams webhook body: a non-empty
// JSON array of CloudEvents.
func (v *Validator) ValidateEventStreams(body []byte) error {
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(body))
	if err != nil {
		return &SchemaError{Family: FamilyEventStreams, Keyword: "decode", Reason: "body is not JSON"}
	}
	return check(v.eventStreams, FamilyEventStreams, doc)
}

// ValidatePayload checks a record value by its flexstream_family header:
// form fields for taskrouter-callback and conversations-webhook, the data
// object of one Event Streams event for eventstreams. contentType is the
// record's content-type header; empty means the family's own, anything
// else must name it (parameters are ignored).
func (v *Validator) ValidatePayload(family, contentType string, value []byte) error {
	var sch *jsonschema.Schema
	want := ContentTypeForm
	switch family {
	case FamilyTaskRouter:
		sch = v.taskRouter
	case FamilyConversations:
		sch = v.conversations
	case FamilyEventStreams:
		sch, want = v.eventStreamsData, ContentTypeJSON
	default:
		return &SchemaError{Family: familyEnvelope, Field: "/" + HeaderFamily, Keyword: "enum", Reason: "unknown family " + quote(family)}
	}
	if contentType != "" {
		mt, _, err := mime.ParseMediaType(contentType)
		if err != nil || mt != want {
			return &SchemaError{Family: family, Field: "/" + HeaderContentType, Keyword: "const", Reason: "content type must be " + want}
		}
	}
	if want == ContentTypeJSON {
		doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(value))
		if err != nil {
			return &SchemaError{Family: family, Keyword: "decode", Reason: "value is not JSON"}
		}
		return check(sch, family, doc)
	}
	form, err := url.ParseQuery(string(value))
	if err != nil {
		return &SchemaError{Family: family, Keyword: "decode", Reason: "value is not a form body"}
	}
	return check(sch, family, formMap(form))
}

// formMap is the JSON object the form schemas describe: each key's first
// value.
func formMap(form url.Values) map[string]any {
	m := make(map[string]any, len(form))
	for k, vs := range form {
		if len(vs) > 0 {
			m[k] = vs[0]
		}
	}
	return m
}

func check(sch *jsonschema.Schema, family string, doc any) error {
	err := sch.Validate(doc)
	if err == nil {
		return nil
	}
	var verr *jsonschema.ValidationError
	if !errors.As(err, &verr) {
		return &SchemaError{Family: family, Keyword: "validate", Reason: "validation failed"}
	}
	var leaves []*SchemaError
	collect(verr, "", nil, &leaves)
	if len(leaves) == 0 {
		return &SchemaError{Family: family, Keyword: "validate", Reason: "validation failed"}
	}
	// Validation visits properties in map order: sort for a stable report.
	slices.SortFunc(leaves, func(a, b *SchemaError) int {
		if c := strings.Compare(a.Field, b.Field); c != 0 {
			return c
		}
		if a.rank != b.rank {
			return a.rank - b.rank
		}
		return strings.Compare(a.Keyword, b.Keyword)
	})
	leaves = slices.CompactFunc(leaves, func(a, b *SchemaError) bool {
		return a.Field == b.Field && a.Keyword == b.Keyword
	})
	e := leaves[0]
	e.Family, e.More = family, len(leaves)-1
	return e
}

// collect gathers the leaf failures of a validation error tree. prefix
// is the location of the string whose JSON content is being validated,
// inside a contentSchema; known is the nearest ancestor's instance
// location.
func collect(e *jsonschema.ValidationError, prefix string, known []string, out *[]*SchemaError) {
	if _, ok := e.ErrorKind.(*kind.ContentSchema); ok {
		// jsonschema v6.0.3 gives a contentSchema failure a location that
		// aliases the validator's scratch path, overwritten by the time we
		// read it; its length is right. The enclosing $ref (the schemas
		// reach every contentSchema through one) has the true location.
		tokens := known
		loc := pointer(tokens)
		if len(tokens) != len(e.InstanceLocation) {
			loc += "/…"
		}
		inner := prefix + loc + " → "
		for _, c := range e.Causes {
			collect(c, inner, nil, out)
		}
		if len(e.Causes) == 0 {
			*out = append(*out, &SchemaError{Field: prefix + loc, Keyword: "contentSchema", Reason: "JSON content does not match its schema"})
		}
		return
	}
	if len(e.Causes) > 0 {
		for _, c := range e.Causes {
			collect(c, prefix, e.InstanceLocation, out)
		}
		return
	}
	se := describe(e.ErrorKind, prefix, e.InstanceLocation)
	// A conditional (if/then) constraint only narrows one stated
	// elsewhere: report the unconditional failure first.
	if strings.Contains(e.SchemaURL, "/then/") || strings.Contains(e.SchemaURL, "/else/") {
		se.rank = 1
	}
	*out = append(*out, se)
}

// describe builds a leaf's report from the schema side of the error only:
// kinds that carry the instance value (Got) never have it printed.
func describe(k jsonschema.ErrorKind, prefix string, tokens []string) *SchemaError {
	kw := strings.Join(k.KeywordPath(), "/")
	loc := pointer(tokens)
	reason := "fails " + kw
	switch k := k.(type) {
	case *kind.Required:
		// Names come from the schema's required list, not the payload.
		names := slices.Clone(k.Missing)
		slices.Sort(names)
		reason = "required field is missing"
		if len(names) == 1 {
			loc += "/" + escapeToken(names[0])
		} else {
			reason = "required fields are missing: " + strings.Join(names, ", ")
		}
	case *kind.Pattern:
		reason = "does not match " + k.Want
	case *kind.Enum:
		reason = fmt.Sprintf("not one of the %d allowed values", len(k.Want))
		if len(k.Want) <= 6 {
			reason = "must be one of " + displayValues(k.Want)
		}
	case *kind.Const:
		reason = "must be " + displayValues([]any{k.Want})
	case *kind.Type:
		reason = fmt.Sprintf("is %s, want %s", k.Got, strings.Join(k.Want, " or "))
	case *kind.Format:
		reason = "is not a valid " + k.Want
	case *kind.MinItems:
		reason = fmt.Sprintf("must have at least %d item(s)", k.Want)
		if k.Got == 0 {
			reason = "must not be empty"
		}
	case *kind.MinLength:
		reason = fmt.Sprintf("must have at least %d character(s)", k.Want)
	case *kind.ContentMediaType:
		reason = "is not " + k.Want
	case *kind.ContentEncoding:
		reason = "is not " + k.Want + " encoded"
	case *kind.AdditionalProperties:
		reason = fmt.Sprintf("%d property(ies) not allowed", len(k.Properties))
	case *kind.FalseSchema:
		reason = "not allowed"
	}
	if prefix != "" && loc == "" {
		loc = "(root)"
	}
	return &SchemaError{Field: prefix + loc, Keyword: kw, Reason: reason}
}

// displayValues prints schema-side values (enum and const members).
func displayValues(vs []any) string {
	parts := make([]string, len(vs))
	for i, v := range vs {
		if s, ok := v.(string); ok {
			parts[i] = `"` + s + `"`
		} else {
			parts[i] = fmt.Sprint(v)
		}
	}
	return strings.Join(parts, ", ")
}

func pointer(tokens []string) string {
	var b strings.Builder
	for _, t := range tokens {
		b.WriteByte('/')
		b.WriteString(escapeToken(t))
	}
	return b.String()
}

func escapeToken(t string) string {
	return strings.NewReplacer("~", "~0", "/", "~1").Replace(t)
}

// Shapes the envelope schema surely accepts, for the fast path.
var (
	rfc3339Shape     = regexp.MustCompile(`^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,9})?(Z|[+-][0-9]{2}:[0-9]{2})$`)
	plainSourceShape = regexp.MustCompile(`^(https://[a-z0-9.-]+)?(/[A-Za-z0-9._~-]+)*$|^[A-Za-z0-9._~-]+$`)
	dataSchemaShape  = regexp.MustCompile(`^https://[a-z0-9.-]+(/[A-Za-z0-9._~-]+)*$`)
	traceparentShape = regexp.MustCompile(`^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$`)
)

// envelopeSurelyValid is a fast, conservative check of the envelope: true
// only for headers of the shapes ingest writes, which the schema accepts
// (TestEnvelopeFastPathAgreesWithSchema and FuzzEnvelopeFastPath hold the
// two together). Anything else — rarer shapes, and every invalid record —
// goes through the schema, which stays the authority and names the
// problem. Compiling the whole envelope through the JSON Schema engine
// for every record was a sixth of the projector's decode time.
func envelopeSurelyValid(h map[string]string) bool {
	if h[HeaderSpecVersion] != SpecVersion || h[HeaderID] == "" {
		return false
	}
	ceType, ct := h[HeaderType], h[HeaderContentType]
	switch h[HeaderFamily] {
	case FamilyTaskRouter:
		if ct != ContentTypeForm || !strings.HasPrefix(ceType, TypePrefixTaskRouter) {
			return false
		}
	case FamilyConversations:
		if ct != ContentTypeForm || !strings.HasPrefix(ceType, TypePrefixConversations) {
			return false
		}
	case FamilyEventStreams:
		if ct != ContentTypeJSON || (!strings.HasPrefix(ceType, TypePrefixTaskRouter) && !strings.HasPrefix(ceType, TypePrefixConversations)) {
			return false
		}
	default:
		return false
	}
	if !surelyTime(h[HeaderReceivedAt]) || !plainSourceShape.MatchString(h[HeaderSource]) || h[HeaderSource] == "" {
		return false
	}
	if t, ok := h[HeaderTime]; ok && !surelyTime(t) {
		return false
	}
	if d, ok := h[HeaderDataSchema]; ok && !dataSchemaShape.MatchString(d) {
		return false
	}
	if tp, ok := h[HeaderTraceparent]; ok && !traceparentShape.MatchString(tp) {
		return false
	}
	return true
}

func surelyTime(s string) bool {
	if !rfc3339Shape.MatchString(s) {
		return false
	}
	_, err := time.Parse(time.RFC3339Nano, s)
	return err == nil
}
