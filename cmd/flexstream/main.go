// Command flexstream is the whole product in one binary: each subcommand is
// a role (or all of them, `up`).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"

	"go.uber.org/zap"

	"github.com/flexstream/flexstream/internal/config"
	"github.com/flexstream/flexstream/internal/logging"
)

// Exit codes scripts can rely on.
const (
	exitOK      = 0
	exitFailure = 1 // the command ran and failed
	exitUsage   = 2 // bad command line or configuration; nothing was started
)

// command is one subcommand. Only commands that work are registered, so
// `flexstream --help` never lists a promise.
type command struct {
	summary string
	// flags declares the command's flags on fs and returns the function
	// that runs it once they are parsed.
	flags func(fs *flag.FlagSet, env env) func(ctx context.Context, log *zap.Logger) error
	// arg is the flag a command's one positional argument sets ("":
	// none), as in `flexstream audit CH…`.
	arg string
}

// env is what a command may read from its surroundings; tests substitute it.
type env struct {
	stdout, stderr io.Writer
	lookup         func(string) (string, bool)
}

var commands = map[string]command{
	"up":              {summary: "run everything in one process on the embedded default (Kafka broker, event store, webhook ingest, projector and query API)", flags: upFlags},
	"ingest":          {summary: "receive Twilio webhooks, check their signatures and produce them to Kafka", flags: ingestFlags},
	"audit":           {summary: auditSummary, flags: auditFlags, arg: "sid"},
	"replay":          {summary: replaySummary, flags: replayFlags},
	"replay bench":    {summary: "measure a replay: load realistic conversation lifecycles into an embedded store, rebuild the read models from $all, report events/s and peak memory", flags: replayBenchFlags},
	"sim":             {summary: "simulate a Twilio Flex contact centre against the product and check the ground truth (no orphan, no duplicate effect, no violation)", flags: simFlags},
	"reactors":        {summary: "answer workflow timeouts, canceled and deleted tasks through Twilio (re-invite, message, close), exactly once", flags: reactorsFlags},
	"projector bench": {summary: "measure the projector: Kafka → event store against the store alone, the fold, webhook → query API latency, read-model memory", flags: projectorBenchFlags},
	"projector":       {summary: "turn the events topic into history (event store) and views, and serve the query API", flags: projectorFlags},
	"ingest bench":    {summary: "measure webhook ingest over HTTP into in-process Kafka, against raw kafka-go produces", flags: ingestBenchFlags},
	"store bench":     {summary: "measure the event store through the client, against the client+gRPC ceiling", flags: storeBenchFlags},
	"store serve":     {summary: "serve the embedded event store alone (KurrentDB gRPC protocol) for any KurrentDB client", flags: storeServeFlags},
	"version":         {summary: "print the version of flexstream and of the protocols' client libraries", flags: versionFlags},
}

// groups are first words of two-word commands.
var groups = map[string]bool{"store": true, "ingest": true, "projector": true, "replay": true}

func main() {
	os.Exit(run(os.Args[1:], env{stdout: os.Stdout, stderr: os.Stderr, lookup: os.LookupEnv}))
}

func run(args []string, e env) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		if len(args) == 2 && args[0] == "help" {
			return run([]string{args[1], "--help"}, e)
		}
		usage(e.stdout)
		if len(args) == 0 {
			return exitUsage
		}
		return exitOK
	}
	name := args[0]
	if _, group := groups[name]; group && len(args) > 1 && !strings.HasPrefix(args[1], "-") {
		// Two-word commands: "store serve".
		name += " " + args[1]
		args = args[1:]
	}
	cmd, ok := commands[name]
	if !ok && groups[args[0]] && !strings.Contains(name, " ") {
		var subs []string
		for n := range commands {
			if sub, found := strings.CutPrefix(n, name+" "); found {
				subs = append(subs, sub)
			}
		}
		sort.Strings(subs)
		fmt.Fprintf(e.stderr, "flexstream %s: want a subcommand: %s\n", name, strings.Join(subs, ", "))
		return exitUsage
	}
	if !ok {
		fmt.Fprintf(e.stderr, "flexstream: unknown command %q (see flexstream --help)\n", name)
		return exitUsage
	}
	fs := flag.NewFlagSet("flexstream "+name, flag.ContinueOnError)
	// The flag package would print its own message and the whole usage on
	// a bad flag; a bad setting gets one line (below), help goes to stdout.
	fs.SetOutput(io.Discard)
	logCfg := logging.Config{}
	fs.StringVar(&logCfg.Level, "log-level", "info", "log level: debug, info, warn or error")
	fs.StringVar(&logCfg.Format, "log-format", logging.FormatAuto, "log format: auto (console on a terminal, else JSON), json or console")
	runCmd := cmd.flags(fs, e)
	fs.Usage = func() {}

	rest := args[1:]
	if cmd.arg != "" {
		rest = positionalAsFlag(fs, rest, cmd.arg)
	}
	if err := config.Parse(fs, rest, e.lookup); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fs.SetOutput(e.stdout)
			config.Usage(fs, fmt.Sprintf("Usage: flexstream %s [flags]\n\n%s.", name, cmd.summary))()
			return exitOK
		}
		fmt.Fprintf(e.stderr, "flexstream %s: %v\n", name, err)
		return exitUsage
	}
	log, err := logging.New(logCfg)
	if err != nil {
		fmt.Fprintf(e.stderr, "flexstream %s: %v: %v\n", name, config.ErrInvalid, err)
		return exitUsage
	}
	defer func() { _ = log.Sync() }()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		// After the first signal a second one kills the process the usual way.
		<-ctx.Done()
		stop()
	}()
	if err := runCmd(ctx, log); err != nil {
		if errors.Is(err, config.ErrInvalid) {
			fmt.Fprintf(e.stderr, "flexstream %s: %v: %v\n", name, config.ErrInvalid, err)
			return exitUsage
		}
		log.Error("failed", zap.String("command", name), zap.Error(err))
		fmt.Fprintf(e.stderr, "flexstream %s: %v\n", name, err)
		return exitFailure
	}
	return exitOK
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "flexstream — keeps the history of Twilio Flex Conversations and rescues orphaned customers.")
	fmt.Fprintln(w, "\nUsage: flexstream <command> [flags]\n\nCommands:")
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-15s %s\n", n, commands[n].summary)
	}
	fmt.Fprintln(w, "\nEvery flag also reads FLEXSTREAM_<FLAG> from the environment (--kafka-addr: FLEXSTREAM_KAFKA_ADDR).")
	fmt.Fprintln(w, "Run 'flexstream <command> --help' for a command's flags.")
}
