package twiliostub

import (
	"encoding/json"
	"time"
)

// InteractionFixture is a Flex interaction with one channel and its
// conversation, as a test sets it up. Empty SIDs are generated; AddInteraction
// returns the fixture with them filled in.
type InteractionFixture struct {
	InteractionSid    string // KD…
	ChannelSid        string // UO…
	ChannelType       string // default "whatsapp"
	ChannelStatus     string // default "active"
	ChatServiceSid    string // IS…
	ConversationSid   string // CH…
	ConversationState string // default "active"
	// Routing is the interaction's original routing, which FetchInteraction
	// returns as "routing": {"properties": {workspace_sid, workflow_sid,
	// task_channel_unique_name, attributes, …}}. A map without a
	// "properties" key is taken as the properties themselves. Nil gives
	// generated workspace and workflow SIDs and attributes naming the
	// conversation, interaction and channel.
	Routing map[string]any
}

// Message is a message of a fake conversation.
type Message struct {
	Sid              string // IM…
	Index            int
	Author           string
	Body             string
	ContentSid       string // HX…, a content template
	ContentVariables string
	Attributes       string // JSON; "{}" when not set
	// WebhookEnabled is whether the request that created the message said
	// X-Twilio-Webhook-Enabled: true (only then does Twilio fire webhooks).
	WebhookEnabled bool
	// ConversationState is the conversation's state when the message was
	// created: a message into a closed conversation shows up here.
	ConversationState string
	DateCreated       time.Time
}

// Invite is an invite created on a fake interaction channel.
type Invite struct {
	Sid            string // KG…
	InteractionSid string
	ChannelSid     string
	TaskSid        string         // WT…, the task the invite created
	Routing        map[string]any // as the request sent it
	DateCreated    time.Time
}

type chanKey struct{ interaction, channel string }
type convKey struct{ service, conversation string }

type interaction struct {
	sid     string
	routing map[string]any
	channel string // the first channel's SID, for "channel" in the response
}

type channel struct {
	key     chanKey
	typ     string
	status  string
	conv    convKey
	invites []*Invite
}

type conversation struct {
	key      convKey
	state    string
	created  time.Time
	updated  time.Time
	messages []*Message
	timers   map[string]string // "inactive"/"closed" → ISO 8601 duration
}

// AddInteraction adds (or replaces) an interaction, its channel and the
// channel's conversation.
func (s *Server) AddInteraction(f InteractionFixture) InteractionFixture {
	f.InteractionSid = orNew(f.InteractionSid, "KD")
	f.ChannelSid = orNew(f.ChannelSid, "UO")
	f.ChatServiceSid = orNew(f.ChatServiceSid, "IS")
	f.ConversationSid = orNew(f.ConversationSid, "CH")
	f.ChannelType = orDefault(f.ChannelType, "whatsapp")
	f.ChannelStatus = orDefault(f.ChannelStatus, "active")
	f.ConversationState = orDefault(f.ConversationState, "active")
	routing := cloneJSON(f.Routing)
	if routing == nil {
		routing = map[string]any{"properties": map[string]any{
			"workspace_sid":            newSid("WS"),
			"workflow_sid":             newSid("WW"),
			"task_channel_unique_name": "chat",
			"attributes": map[string]any{
				"conversationSid":           f.ConversationSid,
				"flexInteractionSid":        f.InteractionSid,
				"flexInteractionChannelSid": f.ChannelSid,
				"channelType":               f.ChannelType,
			},
		}}
	} else if _, ok := routing["properties"]; !ok {
		routing = map[string]any{"properties": routing}
	}
	f.Routing = cloneJSON(routing)

	s.mu.Lock()
	defer s.mu.Unlock()
	in := s.interactions[f.InteractionSid]
	if in == nil {
		in = &interaction{sid: f.InteractionSid, channel: f.ChannelSid}
		s.interactions[f.InteractionSid] = in
	}
	in.routing = routing
	ck := chanKey{f.InteractionSid, f.ChannelSid}
	conv := convKey{f.ChatServiceSid, f.ConversationSid}
	s.channels[ck] = &channel{key: ck, typ: f.ChannelType, status: f.ChannelStatus, conv: conv}
	s.addConversation(conv, f.ConversationState)
	return f
}

// AddConversation adds (or resets the state of) a conversation with no
// interaction; state "" means "active".
func (s *Server) AddConversation(chatServiceSid, conversationSid, state string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.addConversation(convKey{chatServiceSid, conversationSid}, orDefault(state, "active"))
}

func (s *Server) addConversation(k convKey, state string) {
	if c := s.conversations[k]; c != nil {
		c.state = state
		return
	}
	now := time.Now().UTC().Truncate(time.Second)
	s.conversations[k] = &conversation{key: k, state: state, created: now, updated: now}
}

// AddMessage adds a message to a conversation as if a participant sent it
// (a customer's message, say). Sid, Index and DateCreated are filled in
// when empty. ok is false if the conversation does not exist.
func (s *Server) AddMessage(chatServiceSid, conversationSid string, m Message) (Message, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.conversations[convKey{chatServiceSid, conversationSid}]
	if c == nil {
		return Message{}, false
	}
	return *c.add(m), true
}

// add appends a message, filling in what the caller left out; s.mu is held.
func (c *conversation) add(m Message) *Message {
	m.Sid = orNew(m.Sid, "IM")
	m.Index = len(c.messages)
	m.Author = orDefault(m.Author, "system")
	m.Attributes = orDefault(m.Attributes, "{}")
	m.ConversationState = c.state
	if m.DateCreated.IsZero() {
		m.DateCreated = time.Now().UTC().Truncate(time.Second)
	}
	c.messages = append(c.messages, &m)
	return &m
}

// SetChannelStatus changes a channel's status, as Flex would on its own
// (the customer left, an agent closed it); false if there is no such channel.
func (s *Server) SetChannelStatus(interactionSid, channelSid, status string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	ch := s.channels[chanKey{interactionSid, channelSid}]
	if ch == nil {
		return false
	}
	ch.status = status
	return true
}

// SetConversationState changes a conversation's state, as Twilio's timers
// would; false if there is no such conversation.
func (s *Server) SetConversationState(chatServiceSid, conversationSid, state string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.conversations[convKey{chatServiceSid, conversationSid}]
	if c == nil {
		return false
	}
	c.state = state
	return true
}

// Channel returns an interaction channel's status.
func (s *Server) Channel(interactionSid, channelSid string) (status string, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ch := s.channels[chanKey{interactionSid, channelSid}]
	if ch == nil {
		return "", false
	}
	return ch.status, true
}

// Conversation returns a conversation's state.
func (s *Server) Conversation(chatServiceSid, conversationSid string) (state string, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.conversations[convKey{chatServiceSid, conversationSid}]
	if c == nil {
		return "", false
	}
	return c.state, true
}

// Messages returns a conversation's messages, oldest first.
func (s *Server) Messages(chatServiceSid, conversationSid string) []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.conversations[convKey{chatServiceSid, conversationSid}]
	if c == nil {
		return nil
	}
	out := make([]Message, len(c.messages))
	for i, m := range c.messages {
		out[i] = *m
	}
	return out
}

// Invites returns the invites created on a channel, oldest first.
func (s *Server) Invites(interactionSid, channelSid string) []Invite {
	s.mu.Lock()
	defer s.mu.Unlock()
	ch := s.channels[chanKey{interactionSid, channelSid}]
	if ch == nil {
		return nil
	}
	out := make([]Invite, len(ch.invites))
	for i, inv := range ch.invites {
		out[i] = *inv
		out[i].Routing = cloneJSON(inv.Routing)
	}
	return out
}

func orNew(sid, prefix string) string {
	if sid == "" {
		return newSid(prefix)
	}
	return sid
}

func orDefault(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

// cloneJSON deep-copies a JSON-shaped map, so neither the test nor the
// fakes see the other's later changes.
func cloneJSON(m map[string]any) map[string]any {
	if m == nil {
		return nil
	}
	b, err := json.Marshal(m)
	if err != nil {
		return m
	}
	var out map[string]any
	if err := json.Unmarshal(b, &out); err != nil {
		return m
	}
	return out
}
