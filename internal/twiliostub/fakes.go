package twiliostub

// handler is the fake of one operation. It runs with s.mu held, after the
// request passed the spec check, so it may trust types, enums and required
// fields, and must only check what the spec says in prose.
type handler struct {
	api string // the API (first host label) the operation ID belongs to
	fn  func(*Server, *request) reply
}

// handlers are the operations the reactors use. Every other valid operation
// is answered 501 and counted (Unhandled); TaskRouter's Task resource is
// answered 404 and counted (TaskAPICalls).
var handlers = map[string]handler{
	"FetchInteraction":                 {"flex-api", (*Server).fetchInteraction},
	"FetchInteractionChannel":          {"flex-api", (*Server).fetchInteractionChannel},
	"UpdateInteractionChannel":         {"flex-api", (*Server).updateInteractionChannel},
	"CreateInteractionChannelInvite":   {"flex-api", (*Server).createInteractionChannelInvite},
	"ListInteractionChannelInvite":     {"flex-api", (*Server).listInteractionChannelInvite},
	"CreateServiceConversationMessage": {"conversations", (*Server).createServiceConversationMessage},
	"ListServiceConversationMessage":   {"conversations", (*Server).listServiceConversationMessage},
	"FetchServiceConversation":         {"conversations", (*Server).fetchServiceConversation},
	"UpdateServiceConversation":        {"conversations", (*Server).updateServiceConversation},
}
