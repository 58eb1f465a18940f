package model

import (
	"fmt"
	"maps"
	"slices"
	"sort"
	"time"

	tt "github.com/flexstream/flexstream/internal/twiliotest"
)

// Twilio-time delays of the steps the scenario does not name.
const (
	flexCreateDelay = Duration(time.Second)     // first message → task.created
	routeDelay      = Duration(time.Second)     // task.created → the workflow offers it
	failDelay       = Duration(time.Second)     // task.created → a failed create's task.canceled
	joinDelay       = Duration(time.Second)     // accepted → the agent joins the conversation
	greetDelay      = Duration(2 * time.Second) // accepted → the agent's first message
	minHandle       = Duration(3 * time.Second)
	maxDecide       = Duration(8 * time.Second) // longest an agent takes to accept or reject
)

var customerBodies = []string{
	tt.DefaultBody, "It was supposed to arrive on Monday", "Order number is 4471-22", "Can someone help me please?",
}

// arrive: a customer writes; Flex creates the conversation, the
// interaction and (a second later) the task.
func (m *Model) arrive(at time.Time) {
	m.arrived++
	if m.arrived < m.sc.Interactions {
		m.at(nil, at.Add(m.expFrom(m.arr, m.minute())), m.arrive)
	}
	// Who arrives, when, and what befalls them are drawn from their own
	// stream: runs with and without reactors meet the same customers.
	channel := m.pickChannel()
	fate := m.pickFate()
	quiet := m.arr.Float64() < m.sc.CustomerQuiet
	var target *worker
	if fate == fateKnownAgent {
		target = m.workers[m.arr.IntN(len(m.workers))]
	}

	ids := m.acct
	ids.Conversation = m.sid(tt.PrefixConversation)
	ids.Interaction = m.sid(tt.PrefixInteraction)
	ids.Channel = m.sid(tt.PrefixChannel)
	ids.Participant = m.sid(tt.PrefixParticipant)
	ids.Message = m.sid(tt.PrefixMessage)
	ids.CustomerPhone = fmt.Sprintf("+1555%07d", (m.phoneBase+m.arrived*7919)%10_000_000)
	c := &conv{
		ids: ids, channelType: channel, created: at, state: "active", chStatus: "active",
		quiet: quiet, fate: fate, taskChan: tt.TaskChannel,
	}
	switch channel {
	case "whatsapp":
		c.address = ids.CustomerAddress()
	case "sms":
		c.address = ids.CustomerPhone
		c.taskChan = "sms"
	default:
		c.address = "guest-" + m.sid("")[:16]
	}
	m.convs[ids.Conversation] = c
	m.convList = append(m.convList, c)
	m.byChannel[ids.Channel] = c
	m.open[c] = true
	if quiet {
		m.hazards[HazardCustomerQuiet]++
	}
	c.baseAttrs = firstAttrs(c)
	props := map[string]any{
		"workspace_sid":            ids.Workspace,
		"workflow_sid":             ids.Workflow,
		"task_channel_unique_name": c.taskChan,
		"attributes":               maps.Clone(c.baseAttrs),
	}
	if target != nil {
		props["worker_sid"] = target.sid
	}
	m.created = append(m.created, Interaction{
		InteractionSid: ids.Interaction, ChannelSid: ids.Channel, ChatServiceSid: ids.ChatService,
		ConversationSid: ids.Conversation, ChannelType: channel,
		ParticipantSid: ids.Participant, CustomerAddress: c.address,
		Routing: map[string]any{"properties": props}, CreatedAt: at,
	})

	m.convEvent(c, at, "onConversationAdded")
	m.convEvent(c, at, "onParticipantAdded")
	for i := range m.sc.CustomerMessages {
		m.message(c, at, "", c.ids.Participant, "", customerBodies[i%len(customerBodies)], "")
	}
	m.at(c, at.Add(m.real(flexCreateDelay)), func(at time.Time) { m.firstTask(c, target, at) })
}

func (m *Model) pickChannel() string {
	keys := sortedKeys(m.sc.Channels)
	total := 0.0
	for _, k := range keys {
		total += m.sc.Channels[k]
	}
	u := m.arr.Float64() * total
	for _, k := range keys {
		if w := m.sc.Channels[k]; u < w {
			return k
		} else {
			u -= w
		}
	}
	for i := len(keys) - 1; i >= 0; i-- {
		if m.sc.Channels[keys[i]] > 0 {
			return keys[i]
		}
	}
	return keys[0]
}

func (m *Model) pickFate() string {
	u := m.arr.Float64()
	for _, f := range []struct {
		name string
		p    float64
	}{
		{fateFailed, m.sc.FailedCreate}, {fateDeleted, m.sc.DeletedTask}, {fateWFTimeout, m.sc.WorkflowTimeoutForced},
		{fateTTL, m.sc.TTLForced}, {fateKnownAgent, m.sc.KnownAgentInvite},
	} {
		if u < f.p {
			return f.name
		}
		u -= f.p
	}
	return fateNormal
}

// firstTask: Flex creates the interaction's task; its fate decides what
// TaskRouter does with it.
func (m *Model) firstTask(c *conv, target *worker, at time.Time) {
	t := m.newTask(c, at, "", nil, target)
	wt, ttl := m.real(m.sc.WorkflowTimeout), m.real(m.sc.TaskTTL)
	switch c.fate {
	case fateFailed:
		m.at(c, at.Add(m.real(failDelay)), func(at time.Time) {
			if t.status == TaskPending {
				m.hazards[HazardFailedCreate]++
				m.endTask(t, at, TaskCanceled, ReasonCreateFailed)
			}
		})
	case fateDeleted:
		hi := min(m.sc.WorkflowTimeout, m.sc.TaskTTL) / 2
		m.at(c, at.Add(m.uniform(min(2*Duration(time.Second), hi/2), hi)), func(at time.Time) {
			if t.status == TaskPending {
				m.hazards[HazardDeleted]++
				m.endTask(t, at, TaskDeleted, "")
			}
		})
	case fateWFTimeout: // routed nowhere: sits until the workflow times out
		t.wf = m.at(c, at.Add(wt), func(at time.Time) { m.expire(t, at, true) })
	case fateTTL: // routed nowhere, by a workflow with no timeout: sits until its TTL
		t.ttl = m.at(c, at.Add(ttl), func(at time.Time) { m.expire(t, at, false) })
	default:
		t.forceRej = c.fate == fateKnownAgent
		m.routeLater(t, at)
	}
	if !c.quiet { // the customer asks again while waiting
		m.at(c, at.Add(min(wt, ttl)/2), func(at time.Time) {
			if c.state != "closed" && c.agent == nil {
				m.message(c, at, "", c.ids.Participant, "", "Hello? Is anyone there?", "")
			}
		})
	}
}

// newTask creates a task of the conversation and emits task.created.
func (m *Model) newTask(c *conv, at time.Time, sid string, extra map[string]any, target *worker) *task {
	if sid == "" {
		sid = m.sid(tt.PrefixTask)
	}
	t := &task{sid: sid, conv: c, status: TaskPending, created: at, entered: at, target: target, declined: map[*worker]bool{}}
	ws := ""
	if target != nil {
		ws = target.sid
	}
	t.attrs = taskAttrs(c.baseAttrs, extra, sid, ws)
	c.tasks = append(c.tasks, t)
	m.tasks[sid] = t
	m.nTasks++
	m.taskEvent(t, nil, at, "task.created")
	return t
}

// routeLater arms the task's workflow timeout and TTL and hands it to the
// workflow.
func (m *Model) routeLater(t *task, at time.Time) {
	c := t.conv
	t.wf = m.at(c, at.Add(m.real(m.sc.WorkflowTimeout)), func(at time.Time) { m.expire(t, at, true) })
	t.ttl = m.at(c, at.Add(m.real(m.sc.TaskTTL)), func(at time.Time) { m.expire(t, at, false) })
	m.at(c, at.Add(m.real(routeDelay)), func(at time.Time) {
		if t.status == TaskPending {
			m.enqueue(t)
			m.dispatch(at)
		}
	})
}

// enqueue puts a task in the waiting line by the time it entered the queue.
func (m *Model) enqueue(t *task) {
	i := sort.Search(len(m.waiting), func(i int) bool { return m.waiting[i].entered.After(t.entered) })
	m.waiting = slices.Insert(m.waiting, i, t)
}

func (m *Model) unqueue(t *task) {
	if i := slices.Index(m.waiting, t); i >= 0 {
		m.waiting = slices.Delete(m.waiting, i, i+1)
	}
}

// dispatch offers waiting tasks, oldest first, to available workers,
// longest idle first; a targeted task waits for its worker.
func (m *Model) dispatch(at time.Time) {
	if len(m.waiting) == 0 {
		return
	}
	var free []*worker
	for _, w := range m.workers {
		if w.available() {
			free = append(free, w)
		}
	}
	if len(free) == 0 {
		return
	}
	slices.SortStableFunc(free, func(a, b *worker) int { return a.since.Compare(b.since) })
	for i := 0; i < len(m.waiting) && len(free) > 0; {
		t := m.waiting[i]
		k := -1
		if t.target != nil {
			k = slices.Index(free, t.target)
		} else {
			for j, w := range free {
				if !t.declined[w] {
					k = j
					break
				}
			}
			if k < 0 {
				k = 0 // everyone free declined it: offer it again
			}
		}
		if k < 0 {
			i++
			continue
		}
		w := free[k]
		free = slices.Delete(free, k, k+1)
		m.waiting = slices.Delete(m.waiting, i, i+1)
		m.offer(t, w, at)
	}
}

// offer reserves the task for the worker, who will accept, reject or let
// the reservation time out.
func (m *Model) offer(t *task, w *worker, at time.Time) {
	r := &reservation{sid: m.sid(tt.PrefixReservation), task: t, worker: w, status: "pending"}
	t.res, t.status, w.res = r, TaskReserved, r
	m.taskEvent(t, r, at, "reservation.created")
	a := m.sc.Agent
	u := m.rng.Float64()
	outcome := "timeout"
	switch {
	case t.forceRej && w == t.target:
		outcome = "rejected"
	case u < a.Accept:
		outcome = "accepted"
	case u < a.Accept+a.Reject:
		outcome = "rejected"
	}
	if m.outcomeFor != nil {
		if o := m.outcomeFor(t.sid, w.sid); o != "" {
			outcome = o
		}
	}
	delay := m.real(a.ReservationTimeout)
	if outcome != "timeout" {
		hi := min(maxDecide, a.ReservationTimeout/2)
		delay = m.uniform(hi/8, hi)
	}
	r.timer = m.at(t.conv, at.Add(delay), func(at time.Time) { m.decided(r, outcome, at) })
}

// decided: the worker answered the reservation (or did not in time).
func (m *Model) decided(r *reservation, outcome string, at time.Time) {
	t, w := r.task, r.worker
	if r.status != "pending" || t.res != r {
		return
	}
	r.status = outcome
	w.res, t.res = nil, nil
	if outcome == "accepted" {
		m.accepted(t, r, at)
		return
	}
	t.status = TaskPending
	t.declined[w] = true
	if outcome == "rejected" {
		m.taskEvent(t, r, at, "reservation.rejected")
	} else {
		m.taskEvent(t, r, at, "reservation.timeout")
	}
	switch {
	case t.target != nil:
		m.hazards[HazardKnownAgentDeclined]++
		reason := ReasonTargetRejected
		if outcome == "timeout" {
			reason = ReasonTargetTimeout
		}
		m.endTask(t, at, TaskCanceled, reason)
	case outcome == "rejected":
		m.hazards[HazardReservationReject]++
		m.enqueue(t)
	default:
		m.hazards[HazardReservationTimeout]++
		m.enqueue(t)
	}
	m.dispatch(at)
}

// accepted: the agent joins, greets the customer, handles the
// conversation, then wraps up and closes it.
func (m *Model) accepted(t *task, r *reservation, at time.Time) {
	c, w := t.conv, r.worker
	t.status, w.task, t.acc = TaskAssigned, t, r
	m.cancel(t.wf)
	m.cancel(t.ttl)
	m.taskEvent(t, r, at, "reservation.accepted")
	a := m.sc.Agent
	var h Duration
	if a.HandleDistribution == "uniform" {
		h = a.HandleTime/2 + Duration(m.rng.Float64()*float64(a.HandleTime))
	} else {
		h = Duration(m.rng.ExpFloat64() * float64(a.HandleTime))
	}
	h = max(h, minHandle)
	m.at(c, at.Add(m.real(joinDelay)), func(at time.Time) {
		if t.status != TaskAssigned {
			return
		}
		c.agent, c.agentPart = w, m.sid(tt.PrefixParticipant)
		m.agentJoined(c, at)
	})
	m.at(c, at.Add(m.real(greetDelay)), func(at time.Time) {
		if t.status == TaskAssigned && c.agent == w {
			m.message(c, at, w.name, c.agentPart, "", "Hi, this is "+w.name+". How can I help?", "")
		}
	})
	if !c.quiet {
		m.at(c, at.Add(m.real(greetDelay+(h-greetDelay)/2)), func(at time.Time) {
			if t.status == TaskAssigned && c.state != "closed" {
				m.message(c, at, "", c.ids.Participant, "", "Thanks, that's it.", "")
			}
		})
	}
	m.at(c, at.Add(m.real(h)), func(at time.Time) { m.wrapup(t, r, at) })
}

// wrapup: the agent ends the conversation: the task wraps up, the
// interaction channel and the conversation close; after the wrap-up time
// the task completes and the worker is free again.
func (m *Model) wrapup(t *task, r *reservation, at time.Time) {
	if t.status != TaskAssigned {
		return
	}
	c := t.conv
	t.status, r.status = TaskWrapping, "wrapup"
	m.taskEvent(t, r, at, "task.wrapup")
	m.taskEvent(t, r, at, "reservation.wrapup")
	m.closeChannel(c, at, t)
	t.completeT = m.at(c, at.Add(m.real(m.sc.Agent.WrapupTime)), func(at time.Time) { m.complete(t, r, at) })
}

func (m *Model) complete(t *task, r *reservation, at time.Time) {
	if t.status != TaskWrapping {
		return
	}
	t.status, r.status = TaskCompleted, "completed"
	m.cancel(t.completeT)
	m.taskEvent(t, r, at, "task.completed")
	m.taskEvent(t, r, at, "reservation.completed")
	if w := r.worker; w.task == t {
		w.task, w.since = nil, at
	}
	m.dispatch(at)
}

// expire: the workflow timed out (wf) or the TTL passed, before any
// worker accepted the task.
func (m *Model) expire(t *task, at time.Time, wf bool) {
	if t.status != TaskPending && t.status != TaskReserved {
		return
	}
	m.releaseReservation(t, at)
	if wf {
		m.hazards[HazardWorkflowTimeout]++
		m.taskEvent(t, nil, at, "workflow.timeout")
		m.endTask(t, at, TaskCanceled, ReasonWorkflowTimeout)
	} else {
		m.hazards[HazardTTL]++
		m.endTask(t, at, TaskCanceled, ReasonTTL)
	}
	m.dispatch(at)
}

// releaseReservation cancels the task's outstanding reservation, if any.
func (m *Model) releaseReservation(t *task, at time.Time) {
	r := t.res
	if r == nil {
		return
	}
	m.cancel(r.timer)
	r.status = "canceled"
	t.res = nil
	r.worker.res = nil
	m.taskEvent(t, r, at, "reservation.canceled")
}

// endTask ends a task that was not served: canceled (with a reason) or
// deleted.
func (m *Model) endTask(t *task, at time.Time, status, reason string) {
	t.status = status
	m.cancel(t.wf)
	m.cancel(t.ttl)
	m.unqueue(t)
	if status == TaskDeleted {
		m.taskEvent(t, nil, at, "task.deleted")
	} else {
		m.taskEvent(t, nil, at, "task.canceled", tt.WithCanceledReason(reason))
	}
	c := t.conv
	if _, ok := m.unservedEnd[c]; !ok && m.candidate(c) {
		m.unservedEnd[c] = at
	}
}

// closeChannel closes the conversation's interaction channel: its live
// tasks (but keep) end — reserved and pending ones canceled, assigned ones
// wrapped up and completed — and the conversation closes (Reason API).
// No timer of the conversation fires after it, except keep's completion.
func (m *Model) closeChannel(c *conv, at time.Time, keep *task) {
	c.chStatus = "closed"
	for _, t := range c.tasks {
		if t == keep {
			continue
		}
		m.stopTask(t, at)
	}
	for _, x := range c.timers {
		m.cancel(x)
	}
	c.timers = c.timers[:0]
	if c.state != "closed" {
		m.stateUpdated(c, at, "closed", "API")
	}
	delete(m.open, c)
	delete(m.unservedEnd, c)
	m.dispatch(at)
}

// stopTask ends a task because its channel closed or went inactive.
func (m *Model) stopTask(t *task, at time.Time) {
	switch t.status {
	case TaskPending, TaskReserved:
		m.releaseReservation(t, at)
		m.endTask(t, at, TaskCanceled, ReasonChannelClosed)
	case TaskAssigned:
		r := t.acc
		t.status = TaskWrapping
		m.taskEvent(t, r, at, "task.wrapup")
		if r != nil {
			r.status = "wrapup"
			m.taskEvent(t, r, at, "reservation.wrapup")
		}
		m.finish(t, r, at)
	case TaskWrapping:
		m.finish(t, t.acc, at)
	}
}

func (m *Model) finish(t *task, r *reservation, at time.Time) {
	if r != nil {
		m.complete(t, r, at)
		return
	}
	t.status = TaskCompleted
	m.cancel(t.completeT)
	m.taskEvent(t, nil, at, "task.completed")
}

// candidate: open, no live task, no agent present.
func (m *Model) candidate(c *conv) bool {
	if c.state == "closed" || c.agent != nil {
		return false
	}
	for _, t := range c.tasks {
		if liveStatus(t.status) {
			return false
		}
	}
	return true
}
