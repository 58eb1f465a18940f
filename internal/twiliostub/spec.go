package twiliostub

import (
	"context"
	"embed"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"
)

// The specs are Twilio's own, copied unmodified (oai/README.md). They are
// ~2 MB of JSON and take ~0.3 s to load, so every Server in a process shares
// one loaded copy; nothing mutates it after loadSpecs returns.
//
//go:embed oai/*.json
var specFiles embed.FS

// api is one Twilio REST API: its host, its spec and a router over it.
type api struct {
	name   string // first DNS label of host: "flex-api", "conversations", "taskrouter"
	host   string
	doc    *openapi3.T
	router routers.Router
	ops    map[*openapi3.Operation]*opInfo
}

// opInfo is what the stub needs to know about an operation beyond what
// openapi3filter checks.
type opInfo struct {
	// formFields are the declared properties of the form body.
	formFields map[string]bool
	// jsonFields are form fields the spec leaves untyped and twilio-go
	// sends as a JSON document in a string (Routing, Channel, ...).
	jsonFields []string
	// queryParams are the declared query parameters.
	queryParams map[string]bool
	// success is the 2xx status the spec documents for the operation.
	success int
}

type specSet struct {
	apis []*api // in fallback routing order: Flex, Conversations, TaskRouter
}

var (
	specsOnce sync.Once
	specs     *specSet
	specsErr  error
)

// loadSpecs loads, checks and adapts the three specs once per process.
func loadSpecs() (*specSet, error) {
	specsOnce.Do(func() { specs, specsErr = buildSpecs() })
	return specs, specsErr
}

func buildSpecs() (*specSet, error) {
	set := &specSet{}
	for _, f := range []struct{ file, host string }{
		{"oai/twilio_flex_v1.json", "flex-api.twilio.com"},
		{"oai/twilio_conversations_v1.json", "conversations.twilio.com"},
		{"oai/twilio_taskrouter_v1.json", "taskrouter.twilio.com"},
	} {
		a, err := loadAPI(f.file, f.host)
		if err != nil {
			return nil, fmt.Errorf("twiliostub: spec %s: %w", f.file, err)
		}
		set.apis = append(set.apis, a)
	}
	return set, nil
}

func loadAPI(file, host string) (*api, error) {
	data, err := specFiles.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("read embedded file: %w", err)
	}
	loader := openapi3.NewLoader()
	loader.IsExternalRefsAllowed = false
	doc, err := loader.LoadFromData(data)
	if err != nil {
		return nil, fmt.Errorf("load: %w", err)
	}
	// Validate the document itself, but not its examples: Twilio writes the
	// examples of form bodies the way they travel, every value a string
	// ("Offset": "6.985619", "Available": "true"), and kin-openapi checks
	// them against the typed schema as if they were JSON, so every spec
	// would fail on an example the real API accepts.
	if err := doc.Validate(context.Background(), openapi3.DisableExamplesValidation()); err != nil {
		return nil, fmt.Errorf("validate: %w", err)
	}
	a := &api{name: firstLabel(host), host: host, doc: doc, ops: map[*openapi3.Operation]*opInfo{}}
	adapt(doc, a.ops)
	if a.router, err = gorillamux.NewRouter(doc); err != nil {
		return nil, fmt.Errorf("router: %w", err)
	}
	return a, nil
}

// adapt makes in-memory changes to a loaded spec so kin-openapi checks what
// real Twilio checks — no more, no less — and records per-operation facts.
func adapt(doc *openapi3.T, ops map[*openapi3.Operation]*opInfo) {
	// The spec's servers name the real host (https://flex-api.twilio.com),
	// at document and path level. The router would then only match requests
	// to that scheme and host, but requests reach the stub at 127.0.0.1:port
	// with the real host in X-Forwarded-Host. The stub picks the spec by host
	// itself (pick), so the router matches on method and path only.
	doc.Servers = nil
	for _, item := range doc.Paths.Map() {
		item.Servers = nil
		for _, op := range item.Operations() {
			op.Servers = nil
			ops[op] = describe(op)
		}
	}
}

func describe(op *openapi3.Operation) *opInfo {
	info := &opInfo{formFields: map[string]bool{}, queryParams: map[string]bool{}, success: http.StatusOK}
	for _, p := range op.Parameters {
		if p.Value != nil && p.Value.In == openapi3.ParameterInQuery {
			info.queryParams[p.Value.Name] = true
		}
	}
	for code := range op.Responses.Map() {
		var n int
		if _, err := fmt.Sscanf(code, "%d", &n); err == nil && n >= 200 && n < 300 {
			info.success = n
			break
		}
	}
	if op.RequestBody == nil || op.RequestBody.Value == nil {
		return info
	}
	body := op.RequestBody.Value
	mt := body.Content.Get("application/x-www-form-urlencoded")
	if mt == nil || mt.Schema == nil || mt.Schema.Value == nil {
		return info
	}
	schema := mt.Schema.Value
	for name, prop := range schema.Properties {
		info.formFields[name] = true
		// Twilio leaves JSON-valued form fields untyped (Routing, Channel,
		// MediaProperties...); twilio-go json.Marshals them into one form
		// value. kin-openapi's form decoder cannot decode a value for an
		// untyped schema: it yields null, and then fails "Value is not
		// nullable" for the genuine twilio-go request. So such a field is
		// typed string here, and the stub checks separately that the
		// value is a JSON document (checkJSONFields).
		if prop.Value != nil && (prop.Value.Type == nil || prop.Value.Type.IsEmpty()) &&
			len(prop.Value.AllOf)+len(prop.Value.AnyOf)+len(prop.Value.OneOf) == 0 {
			prop.Value.Type = &openapi3.Types{openapi3.TypeString}
			info.jsonFields = append(info.jsonFields, name)
		}
	}
	slices.Sort(info.jsonFields)
	// Twilio never marks a request body required, even when its schema has
	// required fields. openapi3filter skips the schema of an absent body, so
	// POST .../Invites with no form fields at all would pass without the
	// required Routing. A body whose schema requires a field is required.
	if len(schema.Required) > 0 {
		body.Required = true
	}
	return info
}

// pick finds the API and route of a request. The product's transport sends
// the real host in X-Forwarded-Host; a request that names a Twilio host in
// Host (a proxy in front of the simulator) is taken at its word too. Without
// either, the path decides, trying Flex, Conversations, TaskRouter in turn;
// a few paths (/v1/Configuration) exist in more than one API and then the
// first wins.
func (set *specSet) pick(r *http.Request) (*api, *routers.Route, map[string]string, error) {
	host := firstForwarded(r.Header.Get("X-Forwarded-Host"))
	if host == "" && strings.HasSuffix(stripPort(r.Host), ".twilio.com") {
		host = r.Host
	}
	if host != "" {
		a := set.byHost(host)
		if a == nil {
			return nil, nil, nil, fmt.Errorf("no Twilio spec for host %q", host)
		}
		route, params, err := a.router.FindRoute(r)
		return a, route, params, err
	}
	var firstErr error
	for _, a := range set.apis {
		route, params, err := a.router.FindRoute(r)
		if err == nil {
			return a, route, params, nil
		}
		// "method not allowed" says more than "no such path".
		if firstErr == nil || err == routers.ErrMethodNotAllowed {
			firstErr = err
		}
	}
	return nil, nil, nil, firstErr
}

// byHost matches on the host's first label, so regional and edge hosts
// (flex-api.dublin.ie1.twilio.com) find their API too.
func (set *specSet) byHost(host string) *api {
	label := firstLabel(stripPort(host))
	for _, a := range set.apis {
		if a.name == label {
			return a
		}
	}
	return nil
}

// firstForwarded is the client's own host when proxies appended theirs
// ("flex-api.twilio.com, proxy.local").
func firstForwarded(h string) string {
	first, _, _ := strings.Cut(h, ",")
	return strings.TrimSpace(first)
}

func firstLabel(host string) string {
	label, _, _ := strings.Cut(strings.ToLower(host), ".")
	return label
}

func stripPort(host string) string {
	if i := strings.LastIndexByte(host, ':'); i >= 0 && !strings.Contains(host[i:], "]") {
		return host[:i]
	}
	return host
}
