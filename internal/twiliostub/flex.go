package twiliostub

import (
	"encoding/json"
	"maps"
)

// The Flex Interactions fakes. Response shapes follow the spec's schemas
// (flex.v1.interaction…) and its examples; serve checks every reply against
// the schema.

const flexBase = "https://flex-api.twilio.com/v1/Interactions/"

func (s *Server) fetchInteraction(q *request) reply {
	sid := q.params["Sid"]
	in := s.interactions[sid]
	if in == nil {
		return notFound("Interaction", sid)
	}
	typ := ""
	if ch := s.channels[chanKey{sid, in.channel}]; ch != nil {
		typ = ch.typ
	}
	return reply{status: q.info.success, body: map[string]any{
		"sid":                     sid,
		"channel":                 map[string]any{"type": typ, "sid": in.channel},
		"routing":                 cloneJSON(in.routing),
		"interaction_context_sid": nil,
		"webhook_ttid":            nil,
		"url":                     flexBase + sid,
		"links":                   map[string]any{"channels": flexBase + sid + "/Channels"},
	}}
}

func (s *Server) fetchInteractionChannel(q *request) reply {
	ch := s.channels[chanKey{q.params["InteractionSid"], q.params["Sid"]}]
	if ch == nil {
		return notFound("Interaction Channel", q.params["Sid"])
	}
	return reply{status: q.info.success, body: ch.json()}
}

// updateInteractionChannel is how the product closes a conversation:
// Status=closed (or inactive) and Routing={"status":"closed"}. Closing a
// channel closes its conversation, as Flex does.
func (s *Server) updateInteractionChannel(q *request) reply {
	ch := s.channels[chanKey{q.params["InteractionSid"], q.params["Sid"]}]
	if ch == nil {
		return notFound("Interaction Channel", q.params["Sid"])
	}
	status := q.form.Get("Status")
	// The spec's description of Routing: required when Status is inactive,
	// and its only allowed status is "closed".
	routing, hasRouting := jsonField(q, "Routing")
	if hasRouting && routing["status"] != "closed" {
		return invalid(`Routing must be {"status":"closed"}: "closed" is the only routing status allowed`)
	}
	if status == "inactive" && !hasRouting {
		return invalid(`Routing {"status":"closed"} is required when Status is inactive`)
	}
	ch.status = status
	if status == "closed" {
		if c := s.conversations[ch.conv]; c != nil {
			c.state = "closed"
			c.updated = stamp(q.now)
		}
	}
	eff := &Effect{Operation: q.op(), At: q.now, InteractionSid: ch.key.interaction, ChannelSid: ch.key.channel, Status: status,
		ChatServiceSid: ch.conv.service, ConversationSid: ch.conv.conversation}
	return reply{status: q.info.success, body: ch.json(), effect: eff}
}

// createInteractionChannelInvite creates a task for the channel, as Flex
// does: the response's routing.properties.sid is the new task's SID, and its
// attributes are the request's plus the SIDs Flex adds.
func (s *Server) createInteractionChannelInvite(q *request) reply {
	ck := chanKey{q.params["InteractionSid"], q.params["ChannelSid"]}
	ch := s.channels[ck]
	if ch == nil {
		return notFound("Interaction Channel", ck.channel)
	}
	routing, _ := jsonField(q, "Routing")
	props, ok := routing["properties"].(map[string]any)
	if !ok {
		return invalid(`Routing must have an object "properties" (workspace_sid, workflow_sid or queue_sid, …)`)
	}
	if _, ok := props["workspace_sid"].(string); !ok {
		return invalid(`Routing.properties.workspace_sid is required`)
	}
	if props["workflow_sid"] == nil && props["queue_sid"] == nil && props["worker_sid"] == nil {
		return invalid(`Routing.properties needs workflow_sid, queue_sid or worker_sid to route the task`)
	}
	inv := &Invite{
		Sid:            newSid("KG"),
		InteractionSid: ck.interaction,
		ChannelSid:     ck.channel,
		TaskSid:        newSid("WT"),
		Routing:        routing,
		DateCreated:    q.now.UTC(),
	}
	ch.invites = append(ch.invites, inv)
	eff := &Effect{Operation: q.op(), At: q.now, InteractionSid: ck.interaction, ChannelSid: ck.channel, TaskSid: inv.TaskSid,
		Routing: cloneJSON(routing), ChatServiceSid: ch.conv.service, ConversationSid: ch.conv.conversation}
	return reply{status: q.info.success, body: s.inviteJSON(ch, inv), effect: eff}
}

func (s *Server) listInteractionChannelInvite(q *request) reply {
	ch := s.channels[chanKey{q.params["InteractionSid"], q.params["ChannelSid"]}]
	if ch == nil {
		return notFound("Interaction Channel", q.params["ChannelSid"])
	}
	items := make([]any, len(ch.invites))
	for i, inv := range ch.invites {
		items[i] = s.inviteJSON(ch, inv)
	}
	return reply{status: q.info.success, body: listPage(q, "invites", items)}
}

func (ch *channel) json() map[string]any {
	u := flexBase + ch.key.interaction + "/Channels/" + ch.key.channel
	return map[string]any{
		"sid":             ch.key.channel,
		"interaction_sid": ch.key.interaction,
		"type":            ch.typ,
		"status":          ch.status,
		"error_code":      nil,
		"error_message":   nil,
		"url":             u,
		"links": map[string]any{
			"participants": u + "/Participants",
			"invites":      u + "/Invites",
			"transfers":    u + "/Transfers",
		},
	}
}

// inviteJSON is an invite as Flex answers it: the routing properties are the
// task's, with attributes as a JSON string.
func (s *Server) inviteJSON(ch *channel, inv *Invite) map[string]any {
	req, _ := inv.Routing["properties"].(map[string]any)
	props := maps.Clone(req)
	attrs := map[string]any{}
	switch a := req["attributes"].(type) {
	case map[string]any:
		attrs = maps.Clone(a)
	case string:
		_ = json.Unmarshal([]byte(a), &attrs) // not JSON: Flex would keep none
	}
	attrs["flexChannelInviteSid"] = inv.Sid
	attrs["flexInteractionSid"] = inv.InteractionSid
	attrs["flexInteractionChannelSid"] = inv.ChannelSid
	attrs["conversationSid"] = ch.conv.conversation
	attrJSON, _ := json.Marshal(attrs)
	created := inv.DateCreated.Unix()
	props["attributes"] = string(attrJSON)
	props["account_sid"] = s.accountSid
	props["sid"] = inv.TaskSid
	props["date_created"] = created
	props["date_updated"] = created
	props["assignment_status"] = "pending"
	props["priority"] = 0
	props["age"] = 0
	props["reason"] = ""
	props["timeout"] = 86400
	props["task_queue_entered_date"] = created
	props["age_in_queue"] = 0
	props["addons"] = "{}"
	if props["task_channel_unique_name"] == nil {
		props["task_channel_unique_name"] = "default"
	}
	return map[string]any{
		"sid":             inv.Sid,
		"interaction_sid": inv.InteractionSid,
		"channel_sid":     inv.ChannelSid,
		"routing":         map[string]any{"reservation": nil, "properties": props},
		"url":             flexBase + inv.InteractionSid + "/Channels/" + inv.ChannelSid + "/Invites/" + inv.Sid,
	}
}

// jsonField decodes a JSON-object form field; strictChecks has already
// rejected a value that is not one.
func jsonField(q *request, name string) (map[string]any, bool) {
	v, ok := q.form[name]
	if !ok || len(v) == 0 {
		return nil, false
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(v[0]), &m); err != nil {
		return nil, false
	}
	return m, true
}
