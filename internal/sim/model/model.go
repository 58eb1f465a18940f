package model

import (
	"container/heap"
	"fmt"
	"math/rand/v2"
	"net/url"
	"time"

	"github.com/flexstream/flexstream/internal/twiliotest"
)

// Webhook families: the route a webhook is delivered to
// (/webhooks/<family>).
const (
	FamilyTaskRouter    = "taskrouter"
	FamilyConversations = "conversations"
)

// Webhook is one webhook Twilio would send.
type Webhook struct {
	Family string     // FamilyTaskRouter or FamilyConversations
	Form   url.Values // the form fields, built with twiliotest
	// Idem is the idempotency token Twilio repeats on a retry
	// (I-Twilio-Idempotency-Token): unique per event.
	Idem string
	// Conversation is the CH… the event concerns ("" if none).
	Conversation string
	// At is when the event happened (the form's Timestamp / DateUpdated).
	At time.Time
}

// EventType is the webhook's EventType.
func (w Webhook) EventType() string { return w.Form.Get("EventType") }

// Interaction is what the REST stand-in must know of an interaction to
// serve the reactors: the interaction, its channel and conversation, and
// the routing the interaction was created with (the first task's
// attributes, which a re-invite re-sends).
type Interaction struct {
	InteractionSid  string // KD…
	ChannelSid      string // UO…
	ChatServiceSid  string // IS…
	ConversationSid string // CH…
	ChannelType     string // whatsapp, sms, chat
	// ParticipantSid and CustomerAddress are the customer's participant
	// (MB…) and address (whatsapp:+1…, +1…, or a chat identity).
	ParticipantSid  string
	CustomerAddress string
	// Routing is {"properties": {"workspace_sid", "workflow_sid",
	// "task_channel_unique_name", "attributes": {…}}}, plus "worker_sid"
	// in properties when the first task targeted a known agent.
	Routing   map[string]any
	CreatedAt time.Time
}

// Model is the simulated Twilio: conversations, interactions, tasks and
// workers. Not safe for concurrent use.
type Model struct {
	sc    *Scenario
	rng   *rand.Rand // behaviour
	arr   *rand.Rand // arrivals and their fates: the same customers whatever the product does
	sids  *rand.Rand // SIDs and tokens
	acct  twiliotest.IDs
	clock time.Time // the time of the latest event processed

	q    timerQueue
	seq  uint64
	live int // timers scheduled and not canceled

	out     []Webhook
	created []Interaction

	arrived   int
	phoneBase int

	workers   []*worker
	convs     map[string]*conv // by CH…
	convList  []*conv          // in creation order
	byChannel map[string]*conv // by UO…
	open      map[*conv]bool   // not closed
	tasks     map[string]*task
	waiting   []*task // routable tasks without a reservation, FIFO by queue entry

	// truth
	nTasks      int
	webhooks    int
	reactions   map[string]int
	hazards     map[string]int
	duplicates  int
	violations  []string
	marks       map[string]int // message marks: reaction \x00 action → count
	reinvites   map[string]int // re-invites by reaction
	latencies   []time.Duration
	unservedEnd map[*conv]time.Time

	// outcomeFor, when set (by tests), decides reservations: "accepted",
	// "rejected" or "timeout" ("" : the scenario's probabilities).
	outcomeFor func(taskSid, workerSid string) string
}

type conv struct {
	ids         twiliotest.IDs // the conversation's SIDs; Task/Reservation/Worker vary per use
	channelType string
	address     string // the customer's address or chat identity
	created     time.Time
	state       string // active, inactive, closed
	chStatus    string // the interaction channel: active, inactive, closed
	quiet       bool
	fate        string

	agent     *worker // the agent who joined, if any
	agentPart string  // the agent participant's SID
	tasks     []*task
	msgs      int // messages so far (the next index)
	lastAct   time.Time
	lastCust  time.Time
	baseAttrs map[string]any // the first task's attributes, without worker_sid
	taskChan  string         // task channel unique name
	timers    []*timer
}

type task struct {
	sid       string
	conv      *conv
	attrs     string // TaskAttributes JSON
	status    string // pending, reserved, assigned, wrapping, completed, canceled, deleted
	created   time.Time
	entered   time.Time // entered the queue (FIFO order)
	target    *worker
	forceRej  bool         // the known-agent hazard: the target declines
	res       *reservation // the outstanding reservation
	acc       *reservation // the accepted reservation
	declined  map[*worker]bool
	wf, ttl   *timer
	completeT *timer
}

type reservation struct {
	sid    string
	task   *task
	worker *worker
	status string // pending, accepted, rejected, timeout, canceled, wrapup, completed
	timer  *timer
}

type worker struct {
	sid, name string
	res       *reservation // an outstanding reservation
	task      *task        // the assigned (or wrapping) task
	since     time.Time    // available since
	idx       int
}

func (w *worker) available() bool { return w.res == nil && w.task == nil }

// Task statuses, TaskRouter's names. Written out here rather than taken
// from the product (projector/fold), so that the simulator, which judges
// the product, shares none of its code.
const (
	TaskPending   = "pending"
	TaskReserved  = "reserved"
	TaskAssigned  = "assigned"
	TaskWrapping  = "wrapping"
	TaskCompleted = "completed"
	TaskCanceled  = "canceled"
	TaskDeleted   = "deleted"
)

func liveStatus(s string) bool { return s == TaskPending || s == TaskReserved || s == TaskAssigned }

// Canceled reasons TaskRouter and Flex report.
const (
	ReasonWorkflowTimeout = "Workflow Timeout"
	ReasonTTL             = "Task TTL Exceeded"
	ReasonTargetRejected  = "Reservation rejected by the targeted worker"
	ReasonTargetTimeout   = "Reservation timed out for the targeted worker"
	ReasonCreateFailed    = "Interaction create failed"
	ReasonChannelClosed   = "Interaction channel closed"
)

// Hazard names, the keys of Truth.Hazards: what happened, counted when
// it happened.
const (
	HazardKnownAgentDeclined = "known_agent_declined" // a targeted task's worker declined (or let it time out)
	HazardFailedCreate       = "failed_create"
	HazardDeleted            = "deleted"
	HazardWorkflowTimeout    = "workflow_timeout"
	HazardTTL                = "ttl"
	HazardReservationReject  = "reservation_rejected" // an untargeted reservation rejected (the task is re-routed)
	HazardReservationTimeout = "reservation_timeout"  // an untargeted reservation timed out (re-routed)
	HazardCustomerQuiet      = "customer_quiet"
)

// HazardNames lists the hazards, in report order.
var HazardNames = []string{
	HazardKnownAgentDeclined, HazardFailedCreate, HazardDeleted, HazardWorkflowTimeout, HazardTTL,
	HazardReservationReject, HazardReservationTimeout, HazardCustomerQuiet,
}

// fates of an interaction's first task.
const (
	fateNormal     = "normal"
	fateKnownAgent = "known_agent_invite"
	fateFailed     = "failed_create"
	fateDeleted    = "deleted_task"
	fateWFTimeout  = "workflow_timeout_forced"
	fateTTL        = "ttl_forced"
)

var workerNames = []string{"alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy", "mallory", "niaj", "olivia", "peggy", "rupert", "sybil", "trent", "victor", "walter", "yasmin"}

// New returns a model of sc (which must be valid: ParseScenario
// validates; New panics otherwise) whose first customer arrives after
// start. The same scenario, seed and calls give the same webhooks.
func New(sc *Scenario, seed uint64, start time.Time) *Model {
	if err := sc.Validate(); err != nil {
		panic(fmt.Sprintf("model.New: invalid scenario: %v", err))
	}
	m := &Model{
		sc:          sc,
		rng:         rand.New(rand.NewPCG(seed, seed)),
		arr:         rand.New(rand.NewPCG(seed, seed^0x6172726976616c73)), // "arrivals"
		sids:        rand.New(rand.NewPCG(seed, seed^0x5349447367656e21)), // "SIDsgen!"
		acct:        twiliotest.NewIDs(int64(seed)),
		clock:       start,
		convs:       map[string]*conv{},
		byChannel:   map[string]*conv{},
		open:        map[*conv]bool{},
		tasks:       map[string]*task{},
		reactions:   map[string]int{},
		hazards:     map[string]int{},
		marks:       map[string]int{},
		reinvites:   map[string]int{},
		unservedEnd: map[*conv]time.Time{},
	}
	for _, h := range HazardNames {
		m.hazards[h] = 0
	}
	m.phoneBase = m.sids.IntN(10_000_000)
	for i := range sc.Agents {
		m.workers = append(m.workers, &worker{
			sid:   m.sid(twiliotest.PrefixWorker),
			name:  fmt.Sprintf("%s.%03d", workerNames[i%len(workerNames)], i+1),
			since: start,
			idx:   i,
		})
	}
	m.at(nil, start.Add(m.exp(m.minute())), m.arrive)
	return m
}

// minute is the mean inter-arrival time in Twilio time.
func (m *Model) minute() Duration {
	return Duration(float64(time.Minute) / m.sc.ArrivalRate)
}

// Advance processes everything due by now and returns the webhooks
// emitted since the last call (including those effects caused), in
// causal order, and the interactions created (register them with the
// REST stand-in before delivering the webhooks).
func (m *Model) Advance(now time.Time) (hooks []Webhook, created []Interaction) {
	m.run(now)
	hooks, created = m.out, m.created
	m.out, m.created = nil, nil
	return hooks, created
}

// run fires the timers due by now.
func (m *Model) run(now time.Time) {
	for m.q.Len() > 0 && !m.q[0].at.After(now) {
		t := heap.Pop(&m.q).(*timer)
		if t.dead {
			continue
		}
		t.dead = true
		m.live--
		if t.at.After(m.clock) {
			m.clock = t.at
		}
		t.fn(t.at)
	}
	if now.After(m.clock) {
		m.clock = now
	}
}

// Done reports whether nothing more will happen without an effect: every
// customer has arrived, no timer is pending, every webhook was returned,
// and every open conversation without a live task or agent has been idle
// past the grace period (so its place in the truth is settled).
func (m *Model) Done(now time.Time) bool {
	if m.arrived < m.sc.Interactions || m.live > 0 || len(m.out) > 0 || len(m.created) > 0 {
		return false
	}
	grace := m.sc.Real(m.sc.Grace)
	for c := range m.open {
		if m.candidate(c) && now.Sub(c.lastAct) <= grace {
			return false
		}
	}
	return true
}

// ConversationState is a conversation's state (active, inactive,
// closed); ok is false for an unknown SID.
func (m *Model) ConversationState(conversationSid string) (state string, ok bool) {
	c := m.convs[conversationSid]
	if c == nil {
		return "", false
	}
	return c.state, true
}

// ChannelStatus is an interaction channel's status (active, inactive,
// closed); ok is false for an unknown interaction or channel.
func (m *Model) ChannelStatus(interactionSid, channelSid string) (status string, ok bool) {
	c := m.byChannel[channelSid]
	if c == nil || c.ids.Interaction != interactionSid {
		return "", false
	}
	return c.chStatus, true
}

// ---- timers -----------------------------------------------------------------

type timer struct {
	at   time.Time
	seq  uint64
	fn   func(at time.Time)
	dead bool
}

type timerQueue []*timer

func (q timerQueue) Len() int { return len(q) }
func (q timerQueue) Less(i, j int) bool {
	if !q[i].at.Equal(q[j].at) {
		return q[i].at.Before(q[j].at)
	}
	return q[i].seq < q[j].seq
}
func (q timerQueue) Swap(i, j int) { q[i], q[j] = q[j], q[i] }
func (q *timerQueue) Push(x any)   { *q = append(*q, x.(*timer)) }
func (q *timerQueue) Pop() any {
	old := *q
	t := old[len(old)-1]
	old[len(old)-1] = nil
	*q = old[:len(old)-1]
	return t
}

// at schedules fn at a time (never before the clock); c, when not nil,
// owns the timer (closing its channel cancels it).
func (m *Model) at(c *conv, at time.Time, fn func(time.Time)) *timer {
	if at.Before(m.clock) {
		at = m.clock
	}
	m.seq++
	t := &timer{at: at, seq: m.seq, fn: fn}
	heap.Push(&m.q, t)
	m.live++
	if c != nil {
		if len(c.timers) >= 8 {
			kept := c.timers[:0]
			for _, x := range c.timers {
				if !x.dead {
					kept = append(kept, x)
				}
			}
			clear(c.timers[len(kept):])
			c.timers = kept
		}
		c.timers = append(c.timers, t)
	}
	return t
}

func (m *Model) cancel(t *timer) {
	if t != nil && !t.dead {
		t.dead = true
		m.live--
	}
}

// ---- randomness ---------------------------------------------------------------

// sid returns a fresh SID: prefix and 32 lower-case hex digits.
func (m *Model) sid(prefix string) string {
	return fmt.Sprintf("%s%016x%016x", prefix, m.sids.Uint64(), m.sids.Uint64())
}

// real converts Twilio time to real time.
func (m *Model) real(d Duration) time.Duration { return m.sc.Real(d) }

// exp draws an exponential duration of mean d (Twilio time), in real time.
func (m *Model) exp(d Duration) time.Duration { return m.expFrom(m.rng, d) }

func (m *Model) expFrom(r *rand.Rand, d Duration) time.Duration {
	return m.real(Duration(r.ExpFloat64() * float64(d)))
}

// uniform draws a duration in [lo, hi) (Twilio time), in real time.
func (m *Model) uniform(lo, hi Duration) time.Duration {
	if hi <= lo {
		return m.real(lo)
	}
	return m.real(lo + Duration(m.rng.Float64()*float64(hi-lo)))
}
