package main

import (
	"context"
	"fmt"
	"os/exec"
	"regexp"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/flexstream/flexstream/internal/eventstore"
	"github.com/flexstream/flexstream/internal/testutil"
)

var storeLine = regexp.MustCompile(`connection string ([^\s)]+)`)

// startStore runs `flexstream store serve` and returns it with its
// connection string.
func startStore(t *testing.T, dataDir, addr string) (*testutil.Process, string) {
	t.Helper()
	p, got := testutil.Start(t, exec.Command(binary, "store", "serve", "--data", dataDir, "--addr", addr, "--log-format", "json"), storeLine)
	return p, got[0]
}

type acked struct {
	stream   string
	revision uint64
	position uint64
	id       uuid.UUID
}

// TestStoreSurvivesKill9MidWrite kills the event store process hard while
// eight writers append, restarts it on the same data, and checks that
// every acknowledged event is there — same stream, revision, id and
// position — that $all positions still increase, and that new appends
// land after everything that was there.
func TestStoreSurvivesKill9MidWrite(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	data := t.TempDir()
	addr := freeAddr(t)
	p, conn := startStore(t, data, addr)

	es, err := eventstore.Connect(ctx, eventstore.Config{ConnString: conn})
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var acks []acked
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			stream := fmt.Sprintf("conversation-CH%02d", w)
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				id := uuid.New()
				res, err := es.Append(ctx, stream, eventstore.Any, eventstore.Event{ID: id, Type: "MessageAdded", Data: []byte(fmt.Sprintf(`{"i":%d}`, i))})
				if err != nil {
					return // the server is gone: this one was not acknowledged
				}
				mu.Lock()
				acks = append(acks, acked{stream, res.NextRevision, res.Position, id})
				mu.Unlock()
			}
		}(w)
	}
	for {
		mu.Lock()
		n := len(acks)
		mu.Unlock()
		if n >= 400 {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	_ = p.Signal(t, syscall.SIGKILL)
	close(stop)
	wg.Wait()
	es.Close()
	t.Logf("%d appends acknowledged before kill -9", len(acks))

	p, conn = startStore(t, data, addr)
	es, err = eventstore.Connect(ctx, eventstore.Config{ConnString: conn})
	if err != nil {
		t.Fatal(err)
	}
	defer es.Close()
	for _, a := range acks {
		var got []eventstore.RecordedEvent
		if err := es.ReadStream(ctx, a.stream, a.revision, 1, func(e eventstore.RecordedEvent) error { got = append(got, e); return nil }); err != nil {
			t.Fatalf("read %s@%d: %v", a.stream, a.revision, err)
		}
		if len(got) != 1 || got[0].ID != a.id || got[0].Position != a.position || got[0].Revision != a.revision {
			t.Fatalf("acknowledged %s@%d (position %d, id %s) is not there after kill -9: %+v", a.stream, a.revision, a.position, a.id, got)
		}
	}
	var last uint64
	n := 0
	if err := es.ReadAll(ctx, 0, eventstore.All, func(e eventstore.RecordedEvent) error {
		if e.Position <= last {
			return fmt.Errorf("$all position %d after %d", e.Position, last)
		}
		last = e.Position
		n++
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if n < len(acks) {
		t.Fatalf("$all holds %d events, %d were acknowledged", n, len(acks))
	}
	res, err := es.Append(ctx, "conversation-after", eventstore.NoStream, eventstore.Event{Type: "ConversationAdded", Data: []byte(`{}`)})
	if err != nil {
		t.Fatal(err)
	}
	if res.Position <= last {
		t.Fatalf("new append at position %d, not after the recovered head %d", res.Position, last)
	}
	if err := p.Signal(t, syscall.SIGTERM); err != nil {
		t.Fatalf("store serve after SIGTERM: %v\n%s", err, p.Stderr)
	}
}
