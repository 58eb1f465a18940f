package main

import (
	"context"
	"flag"
	"fmt"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/flexstream/flexstream/internal/config"
	"github.com/flexstream/flexstream/internal/eventstore"
	"github.com/flexstream/flexstream/internal/twilioapi"
	"github.com/flexstream/flexstream/reactors"
	"github.com/flexstream/flexstream/reactors/act"
	"github.com/flexstream/flexstream/reactors/engine"
	"github.com/flexstream/flexstream/reactors/policy"
)

const envAccountSid = "TWILIO_ACCOUNT_SID"

// reactorOptions are the reactor flags `reactors` and `up` share.
type reactorOptions struct {
	policyFile string
	dryRun     bool
	apiURL     string
	timeout    time.Duration
	instance   string
	addr       string
	workers    int
	settle     time.Duration
	lease      time.Duration
	attempts   int

	// Credentials set by the program (the simulator's), not by flags;
	// empty: TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN.
	accountSid, authToken string
}

func (o *reactorOptions) register(fs *flag.FlagSet) {
	fs.StringVar(&o.policyFile, "policy", "", "reactor policy file (YAML); empty: the built-in defaults (reactors/policy/default.yaml)")
	fs.BoolVar(&o.dryRun, "dry-run", false, "record the reactors' decisions in the event store without calling Twilio")
	fs.StringVar(&o.apiURL, "twilio-api-url", "", "base URL that replaces every Twilio API host, e.g. a simulator's http://127.0.0.1:8090 (empty: Twilio)")
	fs.DurationVar(&o.timeout, "twilio-timeout", twilioapi.DefaultTimeout, "timeout of one Twilio REST call")
	fs.StringVar(&o.instance, "instance", engine.DefaultInstance, "this reactor's name: unique among running reactors, the same across its restarts")
	fs.StringVar(&o.addr, "reactors-addr", reactors.DefaultAddr, "address of the reactors' /metrics, /healthz and /readyz (empty: none)")
	fs.IntVar(&o.workers, "reactor-workers", engine.DefaultWorkers, "triggers answered at once (one conversation's are always in order)")
	fs.DurationVar(&o.settle, "settle", engine.DefaultSettle, "how long a trigger waits for the other events of its moment before it is decided")
	fs.DurationVar(&o.lease, "lease", engine.DefaultLease, "how long a reaction another instance started is left to it")
	fs.IntVar(&o.attempts, "max-attempts", engine.DefaultMaxAttempts, "calls per action before its reaction is abandoned")
}

// validate checks the flags and loads the policy, so that a bad policy
// file stops the command before anything starts.
func (o reactorOptions) validate() (*policy.Policy, error) {
	if o.addr != "" {
		if err := config.CheckListenAddr(o.addr); err != nil {
			return nil, config.Errorf("reactors-addr", "%v", err)
		}
	}
	if o.policyFile == "" {
		return policy.Default(), nil
	}
	p, err := policy.Load(o.policyFile)
	if err != nil {
		// Every problem of the file, on the one line a bad setting gets.
		return nil, config.Errorf("policy", "%s", strings.ReplaceAll(err.Error(), "\n", "; "))
	}
	return p, nil
}

// engineConfig builds the engine's configuration; the store is set by the
// caller.
func (o reactorOptions) engineConfig(e env) (engine.Config, error) {
	p, err := o.validate()
	if err != nil {
		return engine.Config{}, err
	}
	cfg := engine.Config{
		Policy: p, DryRun: o.dryRun, Instance: o.instance, Workers: o.workers,
		Settle: o.settle, Lease: o.lease, MaxAttempts: o.attempts,
	}
	if !o.dryRun {
		sid, _ := e.lookup(envAccountSid)
		tokens := authTokens(e)
		tok := ""
		if len(tokens) > 0 {
			tok = tokens[0]
		}
		if o.accountSid != "" {
			sid, tok = o.accountSid, o.authToken
		}
		api, err := twilioapi.New(twilioapi.Config{AccountSid: strings.TrimSpace(sid), AuthToken: tok, BaseURL: o.apiURL, Timeout: o.timeout})
		if err != nil {
			return engine.Config{}, fmt.Errorf("%w (or run the reactors with --dry-run)", err)
		}
		cfg.Actor = act.New(api)
	}
	return cfg, nil
}

// hasTwilioCredentials: both of Twilio's variables are set.
func hasTwilioCredentials(e env) bool {
	sid, _ := e.lookup(envAccountSid)
	return strings.TrimSpace(sid) != "" && len(authTokens(e)) > 0
}

func startReactors(ctx context.Context, o reactorOptions, ec engine.Config, es *eventstore.Client, log *zap.Logger) (*reactors.Reactors, error) {
	ec.Store = es
	return reactors.Start(ctx, reactors.Config{Engine: ec, Addr: o.addr, Logger: log})
}

func reactorsFlags(fs *flag.FlagSet, e env) func(context.Context, *zap.Logger) error {
	var o reactorOptions
	o.register(fs)
	store := fs.String("store", "esdb://127.0.0.1:2113?tls=false", "event store connection string (KurrentDB)")
	return func(ctx context.Context, log *zap.Logger) error {
		ec, err := o.engineConfig(e)
		if err != nil {
			return err
		}
		ec.Store = noStore{} // validated here, replaced once connected
		if err := ec.Validate(); err != nil {
			return err
		}
		es, err := eventstore.Connect(ctx, eventstore.Config{ConnString: *store, ConnectTimeout: 30 * time.Second, Logger: log})
		if err != nil {
			return err
		}
		defer es.Close()
		r, err := startReactors(ctx, o, ec, es, log)
		if err != nil {
			return err
		}
		mode := "calling Twilio"
		if o.dryRun {
			mode = "dry run: decisions recorded, Twilio not called"
		} else if o.apiURL != "" {
			mode = "calling " + o.apiURL
		}
		fmt.Fprintf(e.stdout, "flexstream reactors: %s as %q (%s); metrics on %s\n", *store, o.instance, mode, r.URL())
		<-ctx.Done()
		log.Info("shutting down")
		if err := r.Close(); err != nil {
			return err
		}
		return r.Err()
	}
}

// noStore stands in for the store while the flags are validated.
type noStore struct{ engine.Store }
