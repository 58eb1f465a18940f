package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/flexstream/flexstream/internal/config"
	"github.com/flexstream/flexstream/internal/datadir"
	"github.com/flexstream/flexstream/internal/esserver"
	"github.com/flexstream/flexstream/internal/eventstore"
	"github.com/flexstream/flexstream/internal/kafkaio"
	"github.com/flexstream/flexstream/internal/logging"
	"github.com/flexstream/flexstream/internal/redrive"
	"github.com/flexstream/flexstream/projector/api"
	"github.com/flexstream/flexstream/projector/readmodel"
)

const replaySummary = "rebuild the read models from the event store's $all into a new generation and swap it in (a running projector switches to it); --verify compares a rebuild with the live views instead; --to-topic re-drives a period's Twilio events to a Kafka topic"

// errDiffer: --verify found views that differ.
var errDiffer = errors.New("the rebuilt views differ from the live ones")

type replayConfig struct {
	Data        string
	Store       string
	Views       string
	Verify      bool
	APIURL      string
	ReadBatch   uint64
	CommitEvery int
	// Re-drive.
	ToTopic            string
	From, To           string
	from, to           time.Time
	KafkaBrokers       string
	ToTopicPartitions  int
	ToTopicReplication int
	// poll is how long to wait for a running projector to switch.
	switchWait time.Duration
}

func (c *replayConfig) validate() error {
	switch {
	case c.Store != "" && c.Data != "":
		return config.Errorf("store", "give --store URL --views DIR (a running event store) or --data DIR (the embedded default's directory), not both")
	case c.Store != "" && c.Views == "":
		return config.Errorf("views", "with --store, name the read models' directory (the projector's --data)")
	case c.Store == "" && c.Views != "":
		return config.Errorf("views", "--views goes with --store; with --data the views are DIR/readmodel")
	case c.ReadBatch < 1:
		return config.Errorf("read-batch", "want at least 1")
	case c.CommitEvery < 1:
		return config.Errorf("commit-every", "want at least 1")
	}
	if c.ToTopic != "" || c.From != "" || c.To != "" {
		if err := c.validateRedrive(); err != nil {
			return err
		}
	}
	if c.Verify {
		if _, err := url.Parse(c.APIURL); err != nil || !strings.HasPrefix(c.APIURL, "http") {
			return config.Errorf("api-url", "want an http(s) URL, got %q", c.APIURL)
		}
	}
	return nil
}

func (c *replayConfig) validateRedrive() error {
	switch {
	case c.ToTopic == "":
		return config.Errorf("to-topic", "--from and --to choose the period to re-drive: name the topic to publish it to")
	case c.Verify:
		return config.Errorf("to-topic", "re-drive (--to-topic) and --verify are separate runs")
	case c.From == "":
		return config.Errorf("from", "re-drive needs the start of the period (RFC 3339, e.g. 2026-11-24T00:00:00Z)")
	case c.To == "":
		return config.Errorf("to", "re-drive needs the end of the period (RFC 3339, e.g. 2026-11-25T00:00:00Z)")
	case c.ToTopicPartitions < 1:
		return config.Errorf("to-topic-partitions", "want at least 1")
	case c.ToTopicReplication < 1:
		return config.Errorf("to-topic-replication", "want at least 1")
	}
	var err error
	if c.from, err = parseWhen(c.From); err != nil {
		return config.Errorf("from", "%v", err)
	}
	if c.to, err = parseWhen(c.To); err != nil {
		return config.Errorf("to", "%v", err)
	}
	if !c.from.Before(c.to) {
		return config.Errorf("to", "the period ends (%s) before it starts (%s)", c.To, c.From)
	}
	if err := (kafkaio.TopicSpec{Name: c.ToTopic, Partitions: c.ToTopicPartitions, ReplicationFactor: c.ToTopicReplication}).Validate(); err != nil {
		return config.Errorf("to-topic", "%v", err)
	}
	if len(splitList(c.KafkaBrokers)) == 0 {
		return config.Errorf("kafka-brokers", "at least one host:port is required")
	}
	return nil
}

// parseWhen reads an RFC 3339 time, or a date (midnight UTC).
func parseWhen(s string) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	if t, err := time.Parse("2006-01-02", s); err == nil {
		return t, nil
	}
	return time.Time{}, fmt.Errorf("want an RFC 3339 time (2026-11-25T09:00:00Z) or a date (2026-11-25), got %q", s)
}

func replayFlags(fs *flag.FlagSet, e env) func(context.Context, *zap.Logger) error {
	c := replayConfig{switchWait: 30 * time.Second}
	fs.StringVar(&c.Data, "data", "", "the embedded default's directory: views in DIR/readmodel, the store `up` serves ("+localStore+"), or DIR/eventstore when nothing runs (default "+datadir.Default()+" when --store is not given)")
	fs.StringVar(&c.Store, "store", "", "event store to read (KurrentDB connection string); needs --views")
	fs.StringVar(&c.Views, "views", "", "with --store: the read models' directory (the projector's --data)")
	fs.BoolVar(&c.Verify, "verify", false, "rebuild beside the live views (never swapped in), list every conversation and task whose view differs, exit 1 if any")
	fs.StringVar(&c.APIURL, "api-url", "http://127.0.0.1:8081", "with --verify, while a projector runs: its query API, where the live views are read (the token from "+api.BearerTokenEnv+")")
	fs.Uint64Var(&c.ReadBatch, "read-batch", 10_000, "events per read of $all")
	fs.IntVar(&c.CommitEvery, "commit-every", 50_000, "events per commit of the new views at most (bounds the memory)")
	fs.StringVar(&c.ToTopic, "to-topic", "", "re-drive instead of rebuilding: publish the topic records of the Twilio events of --from … --to, pseudonymised, to this Kafka topic (created if missing)")
	fs.StringVar(&c.From, "from", "", "with --to-topic: start of the period, by Twilio's event time (RFC 3339 or a date; included)")
	fs.StringVar(&c.To, "to", "", "with --to-topic: end of the period (RFC 3339 or a date; excluded)")
	fs.StringVar(&c.KafkaBrokers, "kafka-brokers", "127.0.0.1:9092", "with --to-topic: Kafka bootstrap brokers, comma-separated host:port")
	fs.IntVar(&c.ToTopicPartitions, "to-topic-partitions", 1, "with --to-topic: partitions of the topic if it has to be created")
	fs.IntVar(&c.ToTopicReplication, "to-topic-replication", 1, "with --to-topic: replication factor of the topic if it has to be created")
	return func(ctx context.Context, log *zap.Logger) error {
		if err := c.validate(); err != nil {
			return err
		}
		if c.ToTopic != "" {
			return redriveCmd(ctx, c, e, log)
		}
		return replay(ctx, c, e, log)
	}
}

// replaySource is what a replay reads and writes.
type replaySource struct {
	es       *eventstore.Client
	views    string // the read-model directory
	where    string // the store, for messages
	unlocked bool   // we hold the views' lock: no projector runs on them
	close    func()
}

func openReplaySource(ctx context.Context, c replayConfig, log *zap.Logger) (*replaySource, error) {
	quiet := logging.AtLeast(log, zapcore.WarnLevel)
	src := &replaySource{}
	var closers []func()
	src.close = func() {
		for i := len(closers) - 1; i >= 0; i-- {
			closers[i]()
		}
	}
	fail := func(err error) (*replaySource, error) { src.close(); return nil, err }
	if c.Store != "" {
		es, err := eventstore.Connect(ctx, eventstore.Config{ConnString: c.Store, ConnectTimeout: 15 * time.Second, Logger: quiet})
		if err != nil {
			return nil, err
		}
		closers = append(closers, func() { _ = es.Close() })
		src.es, src.views, src.where = es, c.Views, c.Store
		// `up` locks its data directory, whose readmodel these may be: a
		// projector serves them then.
		if abs, err := filepath.Abs(c.Views); err == nil && filepath.Base(abs) == "readmodel" {
			if err := datadir.Held(filepath.Dir(abs)); errors.Is(err, datadir.ErrLocked) {
				return src, nil
			}
		}
		// The projector command locks its directory: if we get the lock,
		// nobody serves these views.
		if l, err := datadir.Open(c.Views); err == nil {
			closers = append(closers, func() { _ = l.Close() })
			src.unlocked = true
		} else if !errors.Is(err, datadir.ErrLocked) {
			return fail(err)
		}
		return src, nil
	}
	dir := c.Data
	if dir == "" {
		dir = datadir.Default()
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	src.views = filepath.Join(abs, "readmodel")
	l, err := datadir.Open(abs)
	if errors.Is(err, datadir.ErrLocked) {
		// `up` runs on it: its store is the one to read, its projector
		// switches to the new generation.
		es, cerr := eventstore.Connect(ctx, eventstore.Config{ConnString: localStore, ConnectTimeout: 5 * time.Second, Logger: quiet})
		if cerr != nil {
			return nil, fmt.Errorf("%w, but its event store does not answer at %s (%v): give --store URL --views %s", err, localStore, cerr, src.views)
		}
		closers = append(closers, func() { _ = es.Close() })
		src.es, src.where = es, localStore
		return src, nil
	}
	if err != nil {
		return nil, err
	}
	closers = append(closers, func() { _ = l.Close() })
	src.unlocked = true
	storeDir, err := findStoreDir(abs)
	if err != nil {
		return fail(err)
	}
	srv, err := esserver.Start(ctx, esserver.Config{Addr: "127.0.0.1:0", DataDir: storeDir, Logger: quiet})
	if err != nil {
		return fail(err)
	}
	closers = append(closers, func() { _ = srv.Close() })
	es, err := eventstore.Connect(ctx, eventstore.Config{ConnString: srv.ConnectionString(), ConnectTimeout: 15 * time.Second, Logger: quiet})
	if err != nil {
		return fail(err)
	}
	closers = append(closers, func() { _ = es.Close() })
	src.es, src.where = es, storeDir
	return src, nil
}

func replay(ctx context.Context, c replayConfig, e env, log *zap.Logger) error {
	src, err := openReplaySource(ctx, c, log)
	if err != nil {
		return err
	}
	defer src.close()
	if err := os.MkdirAll(src.views, 0o700); err != nil {
		return err
	}
	oldGen, _, err := readmodel.CurrentGeneration(src.views)
	if err != nil {
		return err
	}
	prog := newProgress(e.stderr, log)
	rc := readmodel.RebuildConfig{Dir: src.views, Events: src.es, ReadBatch: c.ReadBatch, CommitEvery: c.CommitEvery, Progress: prog.update}
	log.Info("replaying $all into a new read-model generation", zap.String("store", src.where), zap.String("views", src.views), zap.Bool("verify", c.Verify))
	if c.Verify {
		return replayVerify(ctx, c, e, src, rc, prog)
	}
	res, err := readmodel.Rebuild(ctx, rc)
	prog.finish()
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "flexstream replay: %d events of $all (up to position %d, %d folded) in %s (%.0f events/s) into %s\n",
		res.Read, res.Head, res.Applied, res.Elapsed.Round(time.Millisecond), rate(res.Read, res.Elapsed), res.Path)
	if src.unlocked {
		// No projector holds the old generation: remove it here.
		if err := readmodel.RemoveGeneration(src.views, oldGen); err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "flexstream replay: generation %d is current; generation %d removed\n", res.Generation, oldGen)
		return nil
	}
	// A projector runs on the views: it switches within a second or so,
	// then removes the old generation.
	deadline := time.Now().Add(c.switchWait)
	for time.Now().Before(deadline) && generationExists(src.views, oldGen) {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	if generationExists(src.views, oldGen) {
		fmt.Fprintf(e.stdout, "flexstream replay: generation %d is current; the running projector has not switched yet (it removes generation %d when it does)\n", res.Generation, oldGen)
		return nil
	}
	fmt.Fprintf(e.stdout, "flexstream replay: generation %d is current; the running projector switched to it and removed generation %d\n", res.Generation, oldGen)
	return nil
}

// redriveCmd publishes the period's records to the topic (internal/redrive).
func redriveCmd(ctx context.Context, c replayConfig, e env, log *zap.Logger) error {
	brokers := splitList(c.KafkaBrokers)
	if _, err := kafkaio.EnsureTopics(ctx, brokers, []kafkaio.TopicSpec{{Name: c.ToTopic, Partitions: c.ToTopicPartitions, ReplicationFactor: c.ToTopicReplication}}, log); err != nil && !errors.Is(err, kafkaio.ErrPartitionMismatch) {
		return fmt.Errorf("re-drive to %s: %w", c.ToTopic, err)
	}
	// The records name their topic (kafka-go refuses a topic on both).
	prod, err := kafkaio.NewProducer(kafkaio.ProducerConfig{Brokers: brokers, Logger: log})
	if err != nil {
		return err
	}
	defer prod.Close()
	src, err := openReplaySource(ctx, c, log)
	if err != nil {
		return err
	}
	defer src.close()
	log.Info("re-driving a period to a topic", zap.String("store", src.where), zap.String("topic", c.ToTopic), zap.Time("from", c.from), zap.Time("to", c.to))
	prog := newProgress(e.stderr, log)
	res, err := redrive.Run(ctx, redrive.Config{
		Events: src.es, Publisher: prod, Topic: c.ToTopic, From: c.from, To: c.to, ReadBatch: c.ReadBatch,
		Progress: func(r redrive.Result) { prog.update(r.Read, r.Head) },
	})
	prog.finish()
	fmt.Fprintf(e.stdout, "flexstream replay --to-topic %s: %d records of %s … %s published (%d events of $all read, up to position %d) in %s\n",
		c.ToTopic, res.Published, c.from.Format(time.RFC3339), c.to.Format(time.RFC3339), res.Read, res.Head, res.Elapsed.Round(time.Millisecond))
	if errors.Is(err, redrive.ErrUnkept) {
		fmt.Fprintf(e.stdout, "flexstream replay --to-topic %s: %d events of the period were stored before records were kept with them and were not published\n", c.ToTopic, res.Unkept)
	}
	return err
}

func generationExists(dir string, n int) bool {
	if n == 0 {
		m, _ := filepath.Glob(filepath.Join(dir, "MANIFEST-*"))
		return len(m) > 0
	}
	_, err := os.Stat(readmodel.GenerationPath(dir, n))
	return err == nil
}

// replayVerify rebuilds beside the live views and lists what differs.
// The live views: when no projector holds them, the current generation,
// opened here, and the rebuild stops at its checkpoint (the same events
// on both sides); while a projector runs, its query API (Pebble admits
// one process per store, read-only or not, and the views move on while
// the rebuild runs: views that differ are checked again after the rebuild
// folds what came since).
func replayVerify(ctx context.Context, c replayConfig, e env, src *replaySource, rc readmodel.RebuildConfig, prog *progress) error {
	var live readmodel.LiveViews
	what := ""
	if src.unlocked {
		_, path, err := readmodel.CurrentGeneration(src.views)
		if err != nil {
			return err
		}
		s, err := readmodel.Open(path)
		if err != nil {
			return err
		}
		defer s.Close()
		pos, ok, err := s.Checkpoint()
		if err != nil {
			return err
		}
		if ok {
			rc.To = max(pos, 1) // 0 would mean the head
		}
		live, what = readmodel.StoreViews{Store: s}, path
	} else {
		tok, _ := e.lookup(api.BearerTokenEnv)
		live, what = &apiViews{base: strings.TrimRight(c.APIURL, "/"), token: strings.TrimSpace(tok), http: &http.Client{Timeout: 30 * time.Second}}, c.APIURL
	}
	diffs, res, err := readmodel.Verify(ctx, readmodel.VerifyConfig{Rebuild: rc, Live: live})
	prog.finish()
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "flexstream replay --verify: %d events of $all (up to position %d) rebuilt in %s, compared with the live views of %s\n",
		res.Read, res.Head, res.Elapsed.Round(time.Millisecond), what)
	if len(diffs) == 0 {
		fmt.Fprintln(e.stdout, "flexstream replay --verify: every view is the same, and so are the stats")
		return nil
	}
	for _, d := range diffs {
		why := "differs"
		switch {
		case d.Live == nil:
			why = "only in the rebuild"
		case d.Rebuilt == nil:
			why = "only in the live views"
		}
		what := d.Kind + " " + d.SID
		if d.SID == "" {
			what = d.Kind
		}
		fmt.Fprintf(e.stdout, "%s: %s\n  live:    %s\n  rebuilt: %s\n", what, why, orNone(d.Live), orNone(d.Rebuilt))
	}
	fmt.Fprintf(e.stdout, "flexstream replay --verify: %d views differ\n", len(diffs))
	return fmt.Errorf("%w: %d views", errDiffer, len(diffs))
}

func orNone(b []byte) string {
	if b == nil {
		return "(none)"
	}
	return string(b)
}

// apiViews reads the live views through a projector's query API.
type apiViews struct {
	base, token string
	http        *http.Client
}

func (a *apiViews) get(ctx context.Context, path string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, a.base+path, nil)
	if err != nil {
		return nil, err
	}
	if a.token != "" {
		req.Header.Set("Authorization", "Bearer "+a.token)
	}
	resp, err := a.http.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	switch resp.StatusCode {
	case http.StatusOK:
		return body, nil
	case http.StatusNotFound:
		return nil, readmodel.ErrNotFound
	}
	return nil, fmt.Errorf("GET %s: %s: %s", a.base+path, resp.Status, strings.TrimSpace(string(body)))
}

func (a *apiViews) EachConversation(ctx context.Context, fn func(string, json.RawMessage) error) error {
	cursor := ""
	for {
		q := url.Values{"limit": {fmt.Sprint(api.MaxLimit)}}
		if cursor != "" {
			q.Set("cursor", cursor)
		}
		body, err := a.get(ctx, "/v1/conversations?"+q.Encode())
		if err != nil {
			return err
		}
		var page struct {
			Items      []json.RawMessage `json:"items"`
			NextCursor string            `json:"next_cursor"`
		}
		if err := json.Unmarshal(body, &page); err != nil {
			return fmt.Errorf("the query API's page: %w", err)
		}
		for _, it := range page.Items {
			var v struct {
				Sid string `json:"sid"`
			}
			if err := json.Unmarshal(it, &v); err != nil {
				return err
			}
			if err := fn(v.Sid, it); err != nil {
				return err
			}
		}
		if page.NextCursor == "" {
			return nil
		}
		cursor = page.NextCursor
	}
}

func (a *apiViews) Conversation(ctx context.Context, sid string) (json.RawMessage, error) {
	return a.get(ctx, "/v1/conversations/"+url.PathEscape(sid))
}

func (a *apiViews) Task(ctx context.Context, sid string) (json.RawMessage, error) {
	return a.get(ctx, "/v1/tasks/"+url.PathEscape(sid))
}

// Stats are the views' totals: the "views" member of /v1/stats (the
// rest is the running projector's own counters).
func (a *apiViews) Stats(ctx context.Context) (json.RawMessage, error) {
	body, err := a.get(ctx, "/v1/stats")
	if err != nil {
		return nil, err
	}
	var st struct {
		Views json.RawMessage `json:"views"`
	}
	if err := json.Unmarshal(body, &st); err != nil || st.Views == nil {
		return nil, fmt.Errorf("the query API's /v1/stats has no views member: %s", strings.TrimSpace(string(body)))
	}
	return st.Views, nil
}

// progress shows a rebuild's progress: a bar on a terminal, a log line
// every few seconds otherwise.
type progress struct {
	w        io.Writer
	log      *zap.Logger
	terminal bool
	start    time.Time
	mu       sync.Mutex
	last     time.Time
	shown    bool
}

func newProgress(w io.Writer, log *zap.Logger) *progress {
	p := &progress{w: w, log: log, start: time.Now()}
	if f, ok := w.(*os.File); ok {
		if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
			p.terminal = true
		}
	}
	return p
}

func (p *progress) update(done, total uint64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := time.Now()
	every := 5 * time.Second
	if p.terminal {
		every = 100 * time.Millisecond
	}
	if now.Sub(p.last) < every {
		return
	}
	p.last = now
	elapsed := now.Sub(p.start)
	r := rate(done, elapsed)
	eta := time.Duration(0)
	if r > 0 && total > done {
		eta = time.Duration(float64(total-done) / r * float64(time.Second))
	}
	if !p.terminal {
		p.log.Info("replay progress", zap.Uint64("events", done), zap.Uint64("total", total), zap.Float64("events_per_second", r), zap.Duration("eta", eta.Round(time.Second)))
		return
	}
	frac := 1.0
	if total > 0 {
		frac = min(1, float64(done)/float64(total))
	}
	const width = 30
	n := int(frac * width)
	bar := strings.Repeat("=", n) + strings.Repeat(" ", width-n)
	fmt.Fprintf(p.w, "\rreplay [%s] %d/%d events %3.0f%%  %.0f events/s  ETA %s   ", bar, done, total, frac*100, r, eta.Round(time.Second))
	p.shown = true
}

func (p *progress) finish() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.shown {
		fmt.Fprintln(p.w)
		p.shown = false
	}
}

func rate(n uint64, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(n) / d.Seconds()
}
