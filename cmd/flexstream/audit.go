package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/flexstream/flexstream/internal/audit"
	"github.com/flexstream/flexstream/internal/config"
	"github.com/flexstream/flexstream/internal/datadir"
	"github.com/flexstream/flexstream/internal/esserver"
	"github.com/flexstream/flexstream/internal/eventstore"
	"github.com/flexstream/flexstream/internal/logging"
	"github.com/flexstream/flexstream/internal/pii"
)

const auditSummary = "explain a conversation or a task (--sid CH…|WT…): its Twilio events and the reactors' decisions and actions, in order, as a table, JSON or CSV; --customer NUMBER prints a customer's pseudonyms"

// localStore is where `up` serves its event store by default: what to
// audit through while it runs.
const localStore = "esdb://127.0.0.1:2113?tls=false"

type auditConfig struct {
	SID      string
	Store    string
	Data     string
	Format   string
	Customer string
}

func (c *auditConfig) validate() error {
	if !audit.ValidFormat(c.Format) {
		return config.Errorf("format", "want %s, got %q", strings.Join(audit.Formats, ", "), c.Format)
	}
	if c.Store != "" && c.Data != "" {
		return config.Errorf("store", "give --store (a running event store) or --data (a stopped embedded default's directory), not both")
	}
	if c.Customer != "" {
		if c.SID != "" {
			return config.Errorf("customer", "give a SID to audit or --customer, not both")
		}
		return nil
	}
	if c.SID == "" {
		return config.Errorf("sid", "want the conversation (CH…) or task (WT…) to audit: flexstream audit --sid CH…")
	}
	if _, err := audit.KindOf(c.SID); err != nil {
		return config.Errorf("sid", "%v", err)
	}
	return nil
}

// dataDir is the embedded default's directory to read: --data, else the
// default one.
func (c *auditConfig) dataDir() string {
	if c.Data != "" {
		return c.Data
	}
	return datadir.Default()
}

func auditFlags(fs *flag.FlagSet, e env) func(context.Context, *zap.Logger) error {
	c := auditConfig{}
	fs.StringVar(&c.SID, "sid", "", "the conversation (CH…) or task (WT…) to audit")
	fs.StringVar(&c.Store, "store", "", "event store to read (KurrentDB connection string), e.g. "+localStore+" while `flexstream up` runs")
	fs.StringVar(&c.Data, "data", "", "data directory of a stopped embedded default, read in place (default "+datadir.Default()+" when --store is not given)")
	fs.StringVar(&c.Format, "format", audit.FormatTable, "output: table (for a terminal), json or csv")
	fs.StringVar(&c.Customer, "customer", "", "print the pseudonyms a customer's phone number or address has in the store (needs "+pii.KeyEnv+", or the key of --data)")
	return func(ctx context.Context, log *zap.Logger) error {
		if err := c.validate(); err != nil {
			return err
		}
		if c.Customer != "" {
			return auditCustomer(c, e)
		}
		rd, where, closeStore, err := openAuditStore(ctx, c, log)
		if err != nil {
			return err
		}
		defer closeStore()
		a, err := audit.Collect(ctx, rd, c.SID, audit.Options{Progress: func(n uint64) {
			log.Info("reading $all for the task's conversation", zap.String("task", c.SID), zap.Uint64("events", n))
		}})
		if err != nil {
			if errors.Is(err, audit.ErrUnknownSID) {
				return fmt.Errorf("%w (read %s)", err, where)
			}
			return err
		}
		return audit.Write(e.stdout, c.Format, a)
	}
}

// auditCustomer prints a customer's pseudonyms; the number itself is
// never printed.
func auditCustomer(c auditConfig, e env) error {
	key, err := auditKey(c, e)
	if err != nil {
		return err
	}
	p, err := pii.New(key)
	if err != nil {
		return config.Errorf(pii.KeyEnv, "%v", err)
	}
	ps, err := audit.Pseudonyms(p, c.Customer)
	if err != nil {
		return config.Errorf("customer", "%v", err)
	}
	return audit.WritePseudonyms(e.stdout, c.Format, ps)
}

// auditKey is the pseudonymisation key: FLEXSTREAM_PSEUDONYM_KEY, else the
// key an embedded default keeps in its data directory (never generated
// here: a new key would give pseudonyms nothing in the store has).
func auditKey(c auditConfig, e env) ([]byte, error) {
	if v, _ := e.lookup(pii.KeyEnv); strings.TrimSpace(v) != "" {
		key, _, err := pii.LoadKey(v, "")
		if err != nil {
			return nil, config.Errorf(pii.KeyEnv, "%v", err)
		}
		return key, nil
	}
	if c.Store == "" {
		path := filepath.Join(c.dataDir(), "pseudonym.key")
		if _, err := os.Stat(path); err == nil {
			key, _, err := pii.LoadKey("", path)
			if err != nil {
				return nil, config.Errorf(pii.KeyEnv, "%v", err)
			}
			return key, nil
		}
	}
	return nil, config.Errorf(pii.KeyEnv, "not set: looking up a customer needs the pseudonymisation key the projector uses (or --data DIR of an embedded default, which keeps it in DIR/pseudonym.key)")
}

// openAuditStore connects to --store, or serves the store of a stopped
// embedded default on a free loopback port and connects to that: one
// code path, the client, either way. where names it for messages.
func openAuditStore(ctx context.Context, c auditConfig, log *zap.Logger) (rd audit.Reader, where string, closeFn func(), err error) {
	quiet := logging.AtLeast(log, zapcore.WarnLevel)
	if c.Store != "" {
		es, err := eventstore.Connect(ctx, eventstore.Config{ConnString: c.Store, ConnectTimeout: 15 * time.Second, Logger: log})
		if err != nil {
			return nil, "", nil, err
		}
		return es, c.Store, func() { _ = es.Close() }, nil
	}
	dir := c.dataDir()
	storeDir, err := findStoreDir(dir)
	if err != nil {
		return nil, "", nil, err
	}
	var locks []*datadir.Dir
	release := func() {
		for i := len(locks) - 1; i >= 0; i-- {
			_ = locks[i].Close()
		}
	}
	// The embedded default's lock (held by `up`), and the store's own
	// (held by `store serve`).
	for _, d := range uniq(dir, storeDir) {
		l, err := datadir.Open(d)
		if err != nil {
			release()
			if errors.Is(err, datadir.ErrLocked) {
				return nil, "", nil, fmt.Errorf("%w; while it runs, audit through its event store: --store %s (or the address it was started with)", err, localStore)
			}
			return nil, "", nil, err
		}
		locks = append(locks, l)
	}
	srv, err := esserver.Start(ctx, esserver.Config{Addr: "127.0.0.1:0", DataDir: storeDir, Logger: quiet})
	if err != nil {
		release()
		return nil, "", nil, err
	}
	es, err := eventstore.Connect(ctx, eventstore.Config{ConnString: srv.ConnectionString(), ConnectTimeout: 15 * time.Second, Logger: quiet})
	if err != nil {
		_ = srv.Close()
		release()
		return nil, "", nil, err
	}
	return es, storeDir, func() {
		_ = es.Close()
		_ = srv.Close()
		release()
	}, nil
}

// findStoreDir is the event store of a data directory: DIR/eventstore
// (what `up` makes), or DIR itself when it is a store (what `store serve
// --data DIR` makes). Nothing is created.
func findStoreDir(dir string) (string, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", fmt.Errorf("--data %s: %w", dir, err)
	}
	if fi, err := os.Stat(abs); err != nil || !fi.IsDir() {
		return "", fmt.Errorf("--data %s: no such directory (give the data directory of an embedded default, or --store URL of a running event store)", dir)
	}
	for _, d := range []string{filepath.Join(abs, "eventstore"), abs} {
		// A store is a Pebble database: it has a manifest.
		if m, _ := filepath.Glob(filepath.Join(d, "MANIFEST-*")); len(m) > 0 {
			return d, nil
		}
	}
	return "", fmt.Errorf("--data %s: no event store in it (neither %s nor the directory itself holds one)", dir, filepath.Join(abs, "eventstore"))
}

func uniq(a, b string) []string {
	a, _ = filepath.Abs(a)
	if a == b {
		return []string{a}
	}
	return []string{a, b}
}

// positionalAsFlag rewrites a command's one positional argument — before,
// between or after its flags — as --name VALUE, because config.Parse
// refuses positional arguments: `audit CH… --format json` becomes
// `audit --sid CH… --format json`. A second positional argument is left
// in place for config.Parse to refuse. (For main's run, when it lets a
// command take one.)
func positionalAsFlag(fs *flag.FlagSet, args []string, name string) []string {
	out := make([]string, 0, len(args)+1)
	found := false
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--":
			rest := args[i+1:]
			if !found && len(rest) > 0 {
				out = append(out, "--"+name, rest[0])
				rest = rest[1:]
			}
			if len(rest) > 0 {
				out = append(out, "--")
				out = append(out, rest...)
			}
			return out
		case len(a) > 1 && a[0] == '-':
			out = append(out, a)
			n := strings.TrimLeft(a, "-")
			if strings.Contains(n, "=") {
				continue
			}
			if f := fs.Lookup(n); f != nil && !isBoolFlag(f) && i+1 < len(args) {
				i++
				out = append(out, args[i])
			}
		case !found:
			found = true
			out = append(out, "--"+name, a)
		default:
			out = append(out, a)
		}
	}
	return out
}

func isBoolFlag(f *flag.Flag) bool {
	b, ok := f.Value.(interface{ IsBoolFlag() bool })
	return ok && b.IsBoolFlag()
}
