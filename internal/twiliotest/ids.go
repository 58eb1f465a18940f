package twiliotest

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"
)

// IDs are the SIDs (and addresses) one Flex conversation's events share: a
// WhatsApp customer's conversation routed as a TaskRouter task to one
// worker. SIDs are a two-letter prefix and 32 lowercase hex digits.
type IDs struct {
	Account      string // AC
	Workspace    string // WS
	Workflow     string // WW
	Queue        string // WQ
	Task         string // WT
	Reservation  string // WR
	Worker       string // WK
	Conversation string // CH
	Interaction  string // KD (Flex Interaction)
	Channel      string // UO (Flex Interaction Channel)
	ChatService  string // IS (Conversations Service)
	Participant  string // MB (the customer's participant)
	Message      string // IM

	// CustomerPhone is the customer's E.164 number (+1555…): the
	// WhatsApp address is "whatsapp:" + CustomerPhone.
	CustomerPhone string
	// TwilioPhone is the business's WhatsApp sender (the proxy address).
	TwilioPhone string
	// WorkerName is the worker's friendly name, also the agent's chat
	// identity.
	WorkerName string
}

// SID prefixes of IDs' fields.
const (
	PrefixAccount      = "AC"
	PrefixWorkspace    = "WS"
	PrefixWorkflow     = "WW"
	PrefixQueue        = "WQ"
	PrefixTask         = "WT"
	PrefixReservation  = "WR"
	PrefixWorker       = "WK"
	PrefixConversation = "CH"
	PrefixInteraction  = "KD"
	PrefixChannel      = "UO"
	PrefixChatService  = "IS"
	PrefixParticipant  = "MB"
	PrefixMessage      = "IM"
	PrefixEvent        = "EV"
)

// Defaults used when an IDs field is empty.
const (
	DefaultTwilioPhone = "+14155238886"
	DefaultWorkerName  = "alice"
	WorkspaceName      = "Flex Task Assignment"
	WorkflowName       = "Assign to Anyone"
	QueueName          = "Everyone"
	TaskChannel        = "chat"
)

var workerNames = []string{"alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi"}

// NewIDs returns valid-looking IDs, the same for the same seed and
// different for different seeds.
func NewIDs(seed int64) IDs {
	r := rand.New(rand.NewPCG(uint64(seed), 0x666c657873747265)) // "flexstre"
	sid := func(prefix string) string {
		return fmt.Sprintf("%s%016x%016x", prefix, r.Uint64(), r.Uint64())
	}
	return IDs{
		Account:       sid(PrefixAccount),
		Workspace:     sid(PrefixWorkspace),
		Workflow:      sid(PrefixWorkflow),
		Queue:         sid(PrefixQueue),
		Task:          sid(PrefixTask),
		Reservation:   sid(PrefixReservation),
		Worker:        sid(PrefixWorker),
		Conversation:  sid(PrefixConversation),
		Interaction:   sid(PrefixInteraction),
		Channel:       sid(PrefixChannel),
		ChatService:   sid(PrefixChatService),
		Participant:   sid(PrefixParticipant),
		Message:       sid(PrefixMessage),
		CustomerPhone: fmt.Sprintf("+1555%07d", r.IntN(10_000_000)),
		TwilioPhone:   DefaultTwilioPhone,
		WorkerName:    workerNames[r.IntN(len(workerNames))],
	}
}

// SID derives a further SID with the given prefix from the IDs' account
// and a name, e.g. ids.SID("EV", "task.created") or ids.SID("WA",
// "Available"): deterministic, and distinct for distinct names.
func (ids IDs) SID(prefix, name string) string {
	h := sha256.Sum256([]byte(ids.Account + "\x00" + prefix + "\x00" + name))
	return prefix + hex.EncodeToString(h[:16])
}

// CustomerAddress is the customer's WhatsApp address, "whatsapp:+1555…".
func (ids IDs) CustomerAddress() string { return "whatsapp:" + ids.withDefaults().CustomerPhone }

// ProxyAddress is the business's WhatsApp address.
func (ids IDs) ProxyAddress() string { return "whatsapp:" + ids.withDefaults().TwilioPhone }

// ChatParticipantSid is the participant SID of a chat (SDK) participant,
// e.g. the agent: distinct from the customer's Participant.
func (ids IDs) ChatParticipantSid(identity string) string {
	return ids.SID(PrefixParticipant, "chat:"+identity)
}

func (ids IDs) withDefaults() IDs {
	if ids.CustomerPhone == "" {
		ids.CustomerPhone = "+15550100001"
	}
	if ids.TwilioPhone == "" {
		ids.TwilioPhone = DefaultTwilioPhone
	}
	if ids.WorkerName == "" {
		ids.WorkerName = DefaultWorkerName
	}
	return ids
}

// BaseTime is the time payloads are built at: task.created happens at
// BaseTime, the rest of a conversation's lifecycle a few seconds or
// minutes around it (EventTime).
func BaseTime() time.Time { return time.Date(2025, time.June, 2, 9, 30, 0, 0, time.UTC) }

// offsets place each event type in a plausible lifecycle, so that events
// built without WithTimestamp / WithDate are in order.
var offsets = map[string]time.Duration{
	// Conversations: the customer writes, the conversation is created,
	// Flex creates the task.
	"onConversationAdd":          -4 * time.Second,
	"onConversationAdded":        -4 * time.Second,
	"onParticipantAdd":           -4 * time.Second,
	"onParticipantAdded":         -4 * time.Second,
	"onMessageAdd":               -3 * time.Second,
	"onMessageAdded":             -3 * time.Second,
	"onConversationUpdate":       -1 * time.Second,
	"onConversationUpdated":      -1 * time.Second,
	"onDeliveryUpdated":          15 * time.Second,
	"onMessageUpdate":            20 * time.Second,
	"onMessageUpdated":           20 * time.Second,
	"onParticipantUpdate":        30 * time.Second,
	"onParticipantUpdated":       30 * time.Second,
	"onUserAdded":                -5 * time.Second,
	"onUserUpdate":               30 * time.Second,
	"onUserUpdated":              30 * time.Second,
	"onMessageRemove":            40 * time.Second,
	"onMessageRemoved":           40 * time.Second,
	"onParticipantRemove":        5 * time.Minute,
	"onParticipantRemoved":       5 * time.Minute,
	"onConversationStateUpdated": 15 * time.Minute,
	"onConversationRemove":       30 * time.Minute,
	"onConversationRemoved":      30 * time.Minute,

	// TaskRouter.
	"worker.activity.update":  -1 * time.Hour,
	"task.created":            0,
	"task-queue.entered":      0,
	"workflow.entered":        0,
	"workflow.target-matched": 1 * time.Second,
	"reservation.created":     2 * time.Second,
	"reservation.rejected":    5 * time.Second,
	"reservation.rescinded":   6 * time.Second,
	"reservation.accepted":    8 * time.Second,
	"task.updated":            9 * time.Second,
	"reservation.timeout":     2*time.Second + 2*time.Minute,
	"task.canceled":           3 * time.Minute,
	"reservation.canceled":    3 * time.Minute,
	"workflow.timeout":        1 * time.Hour,
	"task.wrapup":             5 * time.Minute,
	"reservation.wrapup":      5 * time.Minute,
	"task.completed":          6 * time.Minute,
	"reservation.completed":   6 * time.Minute,
	"task.deleted":            10 * time.Minute,
}

// EventTime is when an event of the given type happens by default:
// BaseTime plus the type's place in the lifecycle. It accepts TaskRouter
// event types, Conversations webhook EventTypes and Event Streams types.
func EventTime(eventType string) time.Time {
	t := strings.TrimPrefix(eventType, "com.twilio.taskrouter.")
	if d, ok := offsets[t]; ok {
		return BaseTime().Add(d)
	}
	if w, ok := webhookEventType(eventType); ok {
		return BaseTime().Add(offsets[w])
	}
	return BaseTime()
}
