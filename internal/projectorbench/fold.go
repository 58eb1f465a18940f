package projectorbench

import (
	"context"
	"fmt"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/flexstream/flexstream/internal/twiliotest"
	"github.com/flexstream/flexstream/projector/decode"
	"github.com/flexstream/flexstream/projector/domain"
	"github.com/flexstream/flexstream/projector/fold"
	"github.com/flexstream/flexstream/schemas"
)

// Fold is the pure fold's rate.
type Fold struct {
	Events int // events per pass
	Rounds int
	Median Result
}

// Rate is events per second.
func (f Fold) Rate() float64 { return f.Median.Rate() }

// foldEvent is a domain event with its stored id.
type foldEvent struct {
	id string
	e  domain.Event
}

// runFold folds the decoded events of FoldConversations conversations'
// lifecycles into in-memory views, as fold's BenchmarkFold "memory" does:
// each event into its conversation's view and its task's view, fresh
// views every pass, passes repeated for FoldDuration; Rounds times.
func runFold(cfg Config) (Fold, error) {
	dec, err := newDecoder()
	if err != nil {
		return Fold{}, err
	}
	var decoded []decode.Decoded
	setup(context.Background(), func() {
		var hooks []webhook
		for c := range cfg.FoldConversations {
			hooks = append(hooks, lifecycle(twiliotest.NewIDs(int64(900_000_000+c)), c)...)
		}
		var recs []kafka.Message
		if recs, err = records(hooks, time.Now()); err == nil {
			decoded, err = decodeAll(dec, schemas.DefaultTopic, recs)
		}
	})
	if err != nil {
		return Fold{}, err
	}
	events := make([]foldEvent, len(decoded))
	for i, d := range decoded {
		events[i] = foldEvent{id: d.ID.String(), e: d.Event}
	}
	f := Fold{Events: len(events), Rounds: cfg.Rounds}
	var rs []Result
	for round := 1; round <= cfg.Rounds; round++ {
		passes := 0
		start := time.Now()
		for passes == 0 || time.Since(start) < cfg.FoldDuration {
			foldPass(events, cfg.FoldConversations)
			passes++
		}
		r := Result{Events: passes * len(events), Elapsed: time.Since(start)}
		rs = append(rs, r)
		fmt.Fprintf(cfg.Out, "round %d fold, %d events of %d conversations, %d passes: %8.0f events/s\n", round, len(events), cfg.FoldConversations, passes, r.Rate())
	}
	f.Median = median(rs)
	return f, nil
}

func foldPass(events []foldEvent, conversations int) {
	convs := make(map[string]*fold.ConversationView, conversations)
	tasks := make(map[string]*fold.TaskView, conversations)
	for _, x := range events {
		if s := x.e.ConversationSid; s != "" {
			v := convs[s]
			if v == nil {
				v = &fold.ConversationView{Sid: s}
				convs[s] = v
			}
			v.Apply(x.e, x.id)
		}
		if s := x.e.TaskSid; s != "" {
			v := tasks[s]
			if v == nil {
				v = &fold.TaskView{Sid: s}
				tasks[s] = v
			}
			v.Apply(x.e, x.id)
		}
	}
}
