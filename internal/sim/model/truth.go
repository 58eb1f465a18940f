package model

import (
	"math"
	"slices"
	"time"
)

// Truth is the simulator's ground truth at a moment: what the report
// states and what the product's read models are compared with. Field
// names are stable (JSON).
type Truth struct {
	Interactions int `json:"interactions"` // customers who arrived
	Tasks        int `json:"tasks"`        // tasks created, re-invites included
	Webhooks     int `json:"webhooks"`     // webhooks emitted
	// Reactions counts the REST effects received by kind: message,
	// reinvite, close (and channel_<status> for other channel updates).
	Reactions map[string]int `json:"reactions"`
	// Orphaned conversations: not closed, no live task (pending,
	// reserved, assigned), no agent present, idle longer than the grace
	// period.
	Orphaned     int      `json:"orphaned"`
	OrphanedSids []string `json:"orphaned_sids"`
	// DuplicateEffects counts the extra effects: a second message with
	// the same mark (reaction + action), a second re-invite for one
	// reaction (one ended task), a close of a closed channel.
	DuplicateEffects int `json:"duplicate_effects"`
	// Violations are rule breaches, human-readable, in order.
	Violations []string `json:"violations"`
	// Hazards counts what happened, by HazardNames.
	Hazards map[string]int `json:"hazards"`
	// ReactionLatency is the real time from a task ending unserved (and
	// leaving its conversation unattended) to the first effect on that
	// conversation.
	ReactionLatency Latency `json:"reaction_latency_ms"`
	// ReactionDelays are the samples ReactionLatency summarises, in order.
	ReactionDelays []time.Duration `json:"-"`
	// Conversations by SID (CH…).
	Conversations map[string]ConvTruth `json:"conversations"`
}

// Latency summarises durations, in milliseconds.
type Latency struct {
	Count int     `json:"count"`
	P50   float64 `json:"p50"`
	P90   float64 `json:"p90"`
	P99   float64 `json:"p99"`
	Max   float64 `json:"max"`
}

// ConvTruth is one conversation as Twilio knows it.
type ConvTruth struct {
	State          string            `json:"state"`          // active, inactive, closed
	ChannelStatus  string            `json:"channel_status"` // the interaction channel's: active, inactive, closed
	ChannelType    string            `json:"channel_type"`   // whatsapp, sms, chat
	InteractionSid string            `json:"interaction_sid"`
	ChannelSid     string            `json:"channel_sid"`
	Tasks          map[string]string `json:"tasks"`                // task SID → status (pending … completed, canceled, deleted)
	LiveTasks      []string          `json:"live_tasks,omitempty"` // pending, reserved or assigned, in creation order
	AgentPresent   bool              `json:"agent_present"`
	Messages       int               `json:"messages"`
	LastActivity   time.Time         `json:"last_activity"`              // the latest event about it
	LastCustomer   time.Time         `json:"last_customer_message"`      // the customer's latest message
	Orphaned       bool              `json:"orphaned"`                   // see Truth.Orphaned
	Fate           string            `json:"fate"`                       // what the scenario drew for its first task
	Quiet          bool              `json:"quiet,omitempty"`            // the customer stopped writing
	CreatedAt      time.Time         `json:"created_at"`                 // the customer's arrival
	Agent          string            `json:"agent_worker_sid,omitempty"` // WK… of the agent who joined
}

// Truth computes the ground truth at now. It does not advance the model.
func (m *Model) Truth(now time.Time) Truth {
	t := Truth{
		Interactions:     m.arrived,
		Tasks:            m.nTasks,
		Webhooks:         m.webhooks,
		Reactions:        map[string]int{ReactionMessage: 0, ReactionReinvite: 0, ReactionClose: 0},
		OrphanedSids:     []string{},
		DuplicateEffects: m.duplicates,
		Violations:       append([]string{}, m.violations...),
		Hazards:          map[string]int{},
		ReactionLatency:  summarise(m.latencies),
		ReactionDelays:   slices.Clone(m.latencies),
		Conversations:    make(map[string]ConvTruth, len(m.convList)),
	}
	for k, v := range m.reactions {
		t.Reactions[k] = v
	}
	for k, v := range m.hazards {
		t.Hazards[k] = v
	}
	grace := m.sc.Real(m.sc.Grace)
	for _, c := range m.convList {
		ct := ConvTruth{
			State: c.state, ChannelStatus: c.chStatus, ChannelType: c.channelType,
			InteractionSid: c.ids.Interaction, ChannelSid: c.ids.Channel,
			Tasks: map[string]string{}, AgentPresent: c.agent != nil, Messages: c.msgs,
			LastActivity: c.lastAct, LastCustomer: c.lastCust, Fate: c.fate, Quiet: c.quiet, CreatedAt: c.created,
		}
		if c.agent != nil {
			ct.Agent = c.agent.sid
		}
		for _, tk := range c.tasks {
			ct.Tasks[tk.sid] = tk.status
			if liveStatus(tk.status) {
				ct.LiveTasks = append(ct.LiveTasks, tk.sid)
			}
		}
		ct.Orphaned = m.candidate(c) && now.Sub(c.lastAct) > grace
		if ct.Orphaned {
			t.Orphaned++
			t.OrphanedSids = append(t.OrphanedSids, c.ids.Conversation)
		}
		t.Conversations[c.ids.Conversation] = ct
	}
	slices.Sort(t.OrphanedSids)
	return t
}

func summarise(ds []time.Duration) Latency {
	if len(ds) == 0 {
		return Latency{}
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	ms := func(d time.Duration) float64 { return math.Round(float64(d)/float64(time.Microsecond)) / 1000 }
	q := func(p float64) float64 {
		i := int(math.Ceil(p*float64(len(s)))) - 1
		return ms(s[max(0, min(i, len(s)-1))])
	}
	return Latency{Count: len(s), P50: q(0.50), P90: q(0.90), P99: q(0.99), Max: ms(s[len(s)-1])}
}
