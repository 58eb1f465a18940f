package projectorbench

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/flexstream/flexstream/internal/eventstore"
	"github.com/flexstream/flexstream/internal/twiliotest"
	"github.com/flexstream/flexstream/projector/domain"
	"github.com/flexstream/flexstream/projector/readmodel"
	"github.com/flexstream/flexstream/schemas"
)

// Memory is the read model's footprint with Conversations views.
type Memory struct {
	Conversations int           `json:"conversations"`
	Events        int           `json:"events"` // applied to fill it
	Elapsed       time.Duration `json:"elapsed"`
	RSS           uint64        `json:"rss"`     // resident, after runtime.GC()
	PeakRSS       uint64        `json:"peakRSS"` // VmHWM: the most resident at any time
	HeapInuse     uint64        `json:"heapInuse"`
	DiskBytes     uint64        `json:"diskBytes"`
	InProcess     bool          `json:"inProcess"` // measured in the bench's own process, beside what it holds
}

type memoryJob struct {
	Dir           string `json:"dir"`
	Conversations int    `json:"conversations"`
}

// commitEvery is the read models' events per commit at most.
const commitEvery = 500

func runMemory(ctx context.Context, cfg Config, dir string) (Memory, error) {
	res, err := run(ctx, cfg.ChildCommand, childJob{Memory: &memoryJob{Dir: dir, Conversations: cfg.Conversations}})
	if err != nil {
		return Memory{}, err
	}
	m := res.Memory
	if m == nil {
		return Memory{}, errors.New("no result")
	}
	m.InProcess = len(cfg.ChildCommand) == 0
	where := "a process of its own"
	if m.InProcess {
		where = "this process (beside everything else it holds)"
	}
	fmt.Fprintf(cfg.Out, "memory, in %s: %d conversations (%d events through Projection.Apply/Commit, %.0f events/s): resident after GC %d MiB, peak %d MiB, Go heap in use %d MiB, on disk %d MiB\n",
		where, m.Conversations, m.Events, float64(m.Events)/m.Elapsed.Seconds(), m.RSS>>20, m.PeakRSS>>20, m.HeapInuse>>20, m.DiskBytes>>20)
	return *m, nil
}

// memoryTemplate is the domain events of one handled conversation, as
// decoded from its webhooks: each conversation of the fill gets them with
// SIDs of its own.
func memoryTemplate() ([]domain.Event, error) {
	dec, err := newDecoder()
	if err != nil {
		return nil, err
	}
	recs, err := records(lifecycle(twiliotest.NewIDs(4_000_000_000), 9), time.Now())
	if err != nil {
		return nil, err
	}
	decoded, err := decodeAll(dec, schemas.DefaultTopic, recs)
	if err != nil {
		return nil, err
	}
	out := make([]domain.Event, len(decoded))
	for i, d := range decoded {
		out[i] = d.Event
	}
	return out, nil
}

// sidFields are the event's fields that hold a SID of this conversation.
func sidFields(e *domain.Event) []*string {
	return []*string{&e.ConversationSid, &e.TaskSid, &e.ReservationSid, &e.InteractionSid, &e.ChannelSid, &e.ParticipantSid, &e.MessageSid}
}

// fillAndMeasure puts job.Conversations conversations into a fresh read
// model through the real projection — Apply each recorded event, Commit
// every commitEvery — and measures the process.
func fillAndMeasure(job memoryJob) (Memory, error) {
	tmpl, err := memoryTemplate()
	if err != nil {
		return Memory{}, err
	}
	// Each distinct SID of the template becomes prefix + conversation
	// number + its own number.
	subs := map[string]int{}
	for i := range tmpl {
		for _, f := range sidFields(&tmpl[i]) {
			if _, ok := subs[*f]; *f != "" && !ok {
				subs[*f] = len(subs)
			}
		}
	}
	if err := os.MkdirAll(job.Dir, 0o700); err != nil {
		return Memory{}, err
	}
	store, err := readmodel.Open(job.Dir)
	if err != nil {
		return Memory{}, err
	}
	defer store.Close()
	p, err := readmodel.NewProjection(store)
	if err != nil {
		return Memory{}, err
	}
	m := Memory{Conversations: job.Conversations}
	created := time.Now()
	start := time.Now()
	var pos uint64
	var id uuid.UUID
	for n := range job.Conversations {
		for _, e := range tmpl {
			for _, f := range sidFields(&e) {
				if *f != "" {
					*f = fmt.Sprintf("%s%022x%08x%02x", (*f)[:2], n, 0, subs[*f])
				}
			}
			data, err := json.Marshal(e)
			if err != nil {
				return m, err
			}
			pos++
			binary.BigEndian.PutUint64(id[8:], pos)
			if err := p.Apply(eventstore.RecordedEvent{
				ID: id, Stream: domain.StreamFor(e, ""), Position: pos, Type: e.Type, ContentType: "application/json", Created: created, Data: data,
			}); err != nil {
				return m, err
			}
			m.Events++
			if p.Pending() >= commitEvery {
				if _, err := p.Commit(); err != nil {
					return m, err
				}
			}
		}
	}
	if _, err := p.Commit(); err != nil {
		return m, err
	}
	m.Elapsed = time.Since(start)
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	m.HeapInuse = ms.HeapInuse
	m.RSS, m.PeakRSS = procStatus("VmRSS:"), procStatus("VmHWM:")
	m.DiskBytes = dirSize(job.Dir)
	return m, nil
}

// procStatus reads a size from /proc/self/status, in bytes.
func procStatus(field string) uint64 {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == field {
			kb, _ := strconv.ParseUint(f[1], 10, 64)
			return kb << 10
		}
	}
	return 0
}

func dirSize(dir string) uint64 {
	var n uint64
	_ = filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if info, err := d.Info(); err == nil {
				n += uint64(info.Size())
			}
		}
		return nil
	})
	return n
}
