package esstore

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"
)

// crashChildEnv switches the test binary into the crash child: it appends
// to the store in the directory named by the variable until killed.
const crashChildEnv = "ESSTORE_CRASH_CHILD_DIR"

// crashChild appends from several goroutines, with fsync, and prints each
// acknowledged event as "E stream revision position id" and each
// acknowledged tombstone as "T stream position", one line per write(2), so
// that what the parent has read was acknowledged before the kill.
func crashChild(dir string) int {
	ctx := context.Background()
	s, err := Open(ctx, dir, Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, "crash child: open:", err)
		return 2
	}
	var mu sync.Mutex
	emit := func(line string) {
		mu.Lock()
		defer mu.Unlock()
		if _, err := io.WriteString(os.Stdout, line); err != nil {
			os.Exit(5) // the parent went away
		}
	}
	run := uint64(time.Now().UnixNano()) // ids must differ from the previous run's
	for g := range 8 {
		go func() {
			stream := fmt.Sprintf("crash-%d", g)
			for i := uint64(0); ; i++ {
				n := 1 + int(i%3)
				events := make([]EventData, n)
				for k := range events {
					binary.BigEndian.PutUint64(events[k].ID[:8], run)
					binary.BigEndian.PutUint64(events[k].ID[8:], uint64(g)<<40|i<<2|uint64(k))
					events[k].Type = "Crash"
					events[k].ContentType = "application/json"
					events[k].Data = []byte(`{"padding":"` + strings.Repeat("x", 250) + `"}`)
				}
				res, err := s.Append(ctx, stream, Any(), events)
				if err != nil {
					fmt.Fprintln(os.Stderr, "crash child: append:", err)
					os.Exit(3)
				}
				var b strings.Builder
				for k := range events {
					fmt.Fprintf(&b, "E %s %d %d %x\n", stream, res.Revision-uint64(n-1-k), res.Position-uint64(n-1-k), events[k].ID[:])
				}
				emit(b.String())
				if g == 0 && i%20 == 0 {
					victim := fmt.Sprintf("tomb-%d-%d", run, i)
					if _, err := s.Append(ctx, victim, NoStream(), events[:1]); err != nil {
						os.Exit(3)
					}
					pos, err := s.Tombstone(ctx, victim, Any())
					if err != nil {
						os.Exit(3)
					}
					emit(fmt.Sprintf("T %s %d\n", victim, pos))
				}
			}
		}()
	}
	time.Sleep(2 * time.Minute) // bounded even if the parent never kills it
	return 4
}

type ackedEvent struct {
	stream   string
	rev, pos uint64
	id       ID
}

type ackedTombstone struct {
	stream string
	pos    uint64
}

// runAndKill starts the child on dir, SIGKILLs it once it has acknowledged
// at least minAcks events, and returns everything it acknowledged.
func runAndKill(t *testing.T, dir string, minAcks int) ([]ackedEvent, []ackedTombstone) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), crashChildEnv+"="+dir)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	timer := time.AfterFunc(90*time.Second, func() { _ = cmd.Process.Kill() })
	defer timer.Stop()

	var events []ackedEvent
	var tombs []ackedTombstone
	r := bufio.NewReader(out)
	killed := false
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			break // EOF after the kill; a partial last line was never acknowledged
		}
		f := strings.Fields(line)
		switch {
		case len(f) == 5 && f[0] == "E":
			var e ackedEvent
			e.stream = f[1]
			fmt.Sscan(f[2], &e.rev)
			fmt.Sscan(f[3], &e.pos)
			b, _ := hex.DecodeString(f[4])
			copy(e.id[:], b)
			events = append(events, e)
		case len(f) == 3 && f[0] == "T":
			var tb ackedTombstone
			tb.stream = f[1]
			fmt.Sscan(f[2], &tb.pos)
			tombs = append(tombs, tb)
		default:
			t.Fatalf("child printed %q", line)
		}
		if !killed && len(events) >= minAcks {
			killed = true
			if err := cmd.Process.Kill(); err != nil { // SIGKILL, in the middle of appends
				t.Fatal(err)
			}
		}
	}
	err = cmd.Wait()
	var exit *exec.ExitError
	if !killed || !errors.As(err, &exit) || exit.ExitCode() != -1 {
		t.Fatalf("child ended with %v before being killed (killed=%v, %d acks)", err, killed, len(events))
	}
	return events, tombs
}

func TestCrashRecovery(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: the crash test re-executes the test binary and kills it twice")
	}
	dir := t.TempDir()
	var events []ackedEvent
	var tombs []ackedTombstone
	for round := range 2 { // the second crash lands on a store recovered from the first
		e, tb := runAndKill(t, dir, 20000)
		events, tombs = append(events, e...), append(tombs, tb...)
		t.Logf("round %d: %d events and %d tombstones acknowledged before SIGKILL", round, len(e), len(tb))
		verifyRecovered(t, dir, events, tombs)
	}
}

func verifyRecovered(t *testing.T, dir string, events []ackedEvent, tombs []ackedTombstone) {
	t.Helper()
	st, err := Open(context.Background(), dir, Options{})
	if err != nil {
		t.Fatalf("reopen after crash: %v", err)
	}
	defer st.Close()
	s := st.(*diskStore)
	head, _ := s.Head()

	// Every acknowledged event is there, at its revision and position.
	byStream := map[string]map[uint64]RecordedEvent{}
	var maxPos uint64
	for _, a := range events {
		m := byStream[a.stream]
		if m == nil {
			m = map[uint64]RecordedEvent{}
			for _, e := range readStream(t, s, a.stream, 0, true) {
				m[e.Revision] = e
			}
			byStream[a.stream] = m
		}
		got, ok := m[a.rev]
		if !ok || got.Position != a.pos || got.ID != a.id {
			t.Fatalf("acknowledged %+v: found %+v (present %v)", a, got, ok)
		}
		maxPos = max(maxPos, a.pos)
	}
	all := readAll(t, s, 0, true)
	for i, e := range all {
		if e.Position != uint64(i+1) {
			t.Fatalf("$all position %d at index %d: positions must be 1, 2, 3, ...", e.Position, i)
		}
	}
	if uint64(len(all)) != head {
		t.Fatalf("$all has %d events, head is %d", len(all), head)
	}
	for _, tb := range tombs {
		if !state(t, s, tb.stream).Tombstoned || all[tb.pos-1].Type != tombstoneType || all[tb.pos-1].Stream != tb.stream {
			t.Fatalf("acknowledged tombstone %+v lost", tb)
		}
		maxPos = max(maxPos, tb.pos)
	}
	if head < maxPos {
		t.Fatalf("head %d below acknowledged position %d", head, maxPos)
	}
	t.Logf("recovered head %d; highest acknowledged position %d", head, maxPos)
	// The store goes on from the recovered head.
	res := mustAppend(t, s, "after-crash", Any(), evs(uint64(head)))
	if res.Position != head+1 {
		t.Fatalf("append after recovery at position %d, want %d", res.Position, head+1)
	}
}
