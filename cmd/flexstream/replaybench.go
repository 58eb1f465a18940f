package main

import (
	"bufio"
	"cmp"
	"context"
	"flag"
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/flexstream/flexstream/internal/config"
	"github.com/flexstream/flexstream/internal/esbench"
	"github.com/flexstream/flexstream/internal/esserver"
	"github.com/flexstream/flexstream/internal/eventstore"
	"github.com/flexstream/flexstream/internal/logging"
	"github.com/flexstream/flexstream/internal/projectorbench"
	"github.com/flexstream/flexstream/projector/readmodel"
)

func replayBenchFlags(fs *flag.FlagSet, e env) func(context.Context, *zap.Logger) error {
	events := fs.Int("events", 1_000_000, "events to load and replay (realistic conversation lifecycles, about 9 events each)")
	data := fs.String("data", "", "directory for the store and the views (default: a temporary one, removed afterwards); a directory kept from an earlier run is replayed as it is")
	commitEvery := fs.Int("commit-every", 50_000, "events per commit of the views at most")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the replay (not the load) to this file")
	return func(ctx context.Context, log *zap.Logger) error {
		if *events < 1 {
			return config.Errorf("events", "want at least 1")
		}
		dir := *data
		if dir == "" {
			tmp, err := os.MkdirTemp("", "flexstream-replay-bench-")
			if err != nil {
				return err
			}
			defer os.RemoveAll(tmp)
			dir = tmp
		}
		quiet := logging.AtLeast(log, zapcore.WarnLevel)
		srv, err := esserver.Start(ctx, esserver.Config{Addr: "127.0.0.1:0", DataDir: dir + "/eventstore", Logger: quiet})
		if err != nil {
			return err
		}
		defer srv.Close()
		es, err := eventstore.Connect(ctx, eventstore.Config{ConnString: srv.ConnectionString(), ConnectTimeout: 15 * time.Second, Logger: quiet})
		if err != nil {
			return err
		}
		defer es.Close()
		head, err := es.HeadPosition(ctx)
		if err != nil {
			return err
		}
		if head > 0 {
			// A kept --data directory: replay what it holds (loading a
			// million events takes minutes).
			fmt.Fprintf(e.stdout, "the store in %s already holds events up to position %d: replaying them (--events ignored)\n", dir, head)
		} else {
			start := time.Now()
			loaded, err := loadReplayWorkload(ctx, es, *events)
			if err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "loaded %d events in %s\n", loaded, time.Since(start).Round(time.Millisecond))
		}
		// A kept directory keeps one generation: the one this run replaces
		// is removed after it, as replay does.
		oldGen, _, err := readmodel.CurrentGeneration(dir + "/readmodel")
		if err != nil {
			return err
		}
		runtime.GC()
		debug.FreeOSMemory()
		stopProfile, err := startCPUProfile(*cpuProfile)
		if err != nil {
			return err
		}
		peak := watchRSS()
		cpu := esbench.CPUTime()
		var heapPeak atomic.Uint64
		res, err := readmodel.Rebuild(ctx, readmodel.RebuildConfig{Dir: dir + "/readmodel", Events: es, CommitEvery: *commitEvery,
			Progress: func(done, total uint64) {
				// Progress comes once per read batch: cheap enough to sample.
				var ms runtime.MemStats
				runtime.ReadMemStats(&ms)
				heapPeak.Store(max(heapPeak.Load(), ms.HeapInuse))
			}})
		rss := peak()
		cpu = esbench.CPUTime() - cpu
		stopProfile()
		if err != nil {
			return err
		}
		if oldGen > 0 {
			if err := readmodel.RemoveGeneration(dir+"/readmodel", oldGen); err != nil {
				return err
			}
		}
		fmt.Fprintf(e.stdout, "replayed %d events (%d folded) in %s: %.0f events/s; %.1f µs of CPU per event, %.2f cores busy; peak RSS during the replay %d MiB (the process, store server included), Go heap in use ≤ %d MiB\n",
			res.Read, res.Applied, res.Elapsed.Round(time.Millisecond), rate(res.Read, res.Elapsed),
			float64(cpu.Microseconds())/float64(max(res.Read, 1)), cpu.Seconds()/res.Elapsed.Seconds(), rss>>20, heapPeak.Load()>>20)
		return nil
	}
}

// loadReplayWorkload appends about n events of realistic lifecycles,
// 5,000 conversations at a time (memory bounded), each stream's events of
// a chunk in one append, 32 appends at once.
func loadReplayWorkload(ctx context.Context, es *eventstore.Client, n int) (int, error) {
	loaded := 0
	for first := int64(700_000_000); loaded < n; first += 5_000 {
		evs, err := projectorbench.Workload(first, 5_000)
		if err != nil {
			return loaded, err
		}
		if rest := n - loaded; len(evs) > rest {
			evs = evs[:rest]
		}
		order := []string{}
		byStream := map[string][]eventstore.Event{}
		for _, d := range evs {
			ev, err := projectorbench.StoreEvent(d)
			if err != nil {
				return loaded, err
			}
			if _, ok := byStream[d.Stream]; !ok {
				order = append(order, d.Stream)
			}
			byStream[d.Stream] = append(byStream[d.Stream], ev)
		}
		sem := make(chan struct{}, 32)
		var wg sync.WaitGroup
		var firstErr error
		var mu sync.Mutex
		for _, s := range order {
			sem <- struct{}{}
			wg.Add(1)
			go func() {
				defer func() { <-sem; wg.Done() }()
				if _, err := es.Append(ctx, s, eventstore.Any, byStream[s]...); err != nil {
					mu.Lock()
					firstErr = cmp.Or(firstErr, err)
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		if firstErr != nil {
			return loaded, firstErr
		}
		loaded += len(evs)
	}
	return loaded, nil
}

// watchRSS samples the process's resident set every 20 ms until the
// returned function is called, which returns the peak.
func watchRSS() func() uint64 {
	var peak atomic.Uint64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(20 * time.Millisecond)
		defer t.Stop()
		for {
			peak.Store(max(peak.Load(), rssBytes()))
			select {
			case <-stop:
				return
			case <-t.C:
			}
		}
	}()
	return func() uint64 {
		close(stop)
		wg.Wait()
		return peak.Load()
	}
}

func rssBytes() uint64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, _ := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}
