package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/flexstream/flexstream/internal/config"
	"github.com/flexstream/flexstream/internal/sim"
	"github.com/flexstream/flexstream/internal/sim/model"
)

// loadScenario reads a scenario by name (one of the built-in ones) or
// from a YAML file.
func loadScenario(nameOrFile string) (*model.Scenario, error) {
	sc, err := sim.LoadScenario(nameOrFile)
	if err != nil {
		return nil, config.Errorf("scenario", "%s", strings.ReplaceAll(err.Error(), "\n", "; "))
	}
	return sc, nil
}

// errTruth: the run ended but the ground truth does not hold.
var errTruth = errors.New("the ground truth does not hold")

func simFlags(fs *flag.FlagSet, e env) func(context.Context, *zap.Logger) error {
	scenario := fs.String("scenario", "smoke", "scenario: a name ("+strings.Join(sim.ScenarioNames(), ", ")+") or a YAML file")
	seed := fs.Uint64("seed", 1, "random seed: the same seed, the same run")
	report := fs.String("report", "", "write the JSON report to this file")
	target := fs.String("target", "", "ingest base URL to send webhooks to (empty: run the whole product in-process against the simulator)")
	apiURL := fs.String("api-url", "", "with --target: the product's query API, compared with the truth at the end")
	restAddr := fs.String("twilio-addr", "127.0.0.1:8090", "with --target: where the simulated Twilio REST API listens (point the reactors' --twilio-api-url here)")
	withReactors := fs.Bool("reactors", true, "without --target: run the reactors (off: see the orphans they prevent)")
	data := fs.String("data", "", "without --target: data directory of the in-process product (default: a temporary one, removed afterwards; a kept one needs a new --seed for each run, since the seed decides the SIDs)")
	limit := fs.Duration("limit", time.Hour, "give up when the scenario has not settled by then")
	eventStreams := fs.Bool("event-streams", false, "send the events in Twilio Event Streams' format (CloudEvents to /webhooks/eventstreams) instead of as TaskRouter callbacks and Conversations webhooks")
	return func(ctx context.Context, log *zap.Logger) error {
		sc, err := loadScenario(*scenario)
		if err != nil {
			return err
		}
		finish := func(r sim.Report, runErr error) error {
			fmt.Fprint(e.stdout, r.Summary())
			if *report != "" {
				b, err := json.MarshalIndent(r, "", "  ")
				if err != nil {
					return err
				}
				if err := os.WriteFile(*report, append(b, '\n'), 0o644); err != nil {
					return fmt.Errorf("write the report: %w", err)
				}
			}
			if runErr != nil {
				return runErr
			}
			if !r.OK() {
				return errTruth
			}
			return nil
		}
		if *target != "" {
			sid, _ := e.lookup(envAccountSid)
			tokens := authTokens(e)
			if len(tokens) == 0 {
				return config.Errorf(envAuthToken, "the token the target's ingest checks signatures with is required")
			}
			if strings.TrimSpace(sid) == "" {
				sid = simAccount(tokens[0] + strings.Repeat("0", 32))
			}
			s, err := sim.Start(sim.Config{Scenario: sc, Seed: *seed, AuthToken: tokens[0], AccountSid: strings.TrimSpace(sid), RESTAddr: *restAddr, Limit: *limit, EventStreams: *eventStreams, Logger: log})
			if err != nil {
				return err
			}
			defer s.Close()
			fmt.Fprintf(e.stdout, "flexstream sim: scenario %q, seed %d: webhooks to %s; Twilio's REST API on %s\n", sc.Name, *seed, *target, s.URL())
			return finish(s.Run(ctx, *target, *apiURL))
		}

		dir := *data
		if dir == "" {
			tmp, err := os.MkdirTemp("", "flexstream-sim-")
			if err != nil {
				return err
			}
			defer os.RemoveAll(tmp)
			dir = tmp
		}
		c := upConfig{
			DataDir: dir, KafkaAddr: "127.0.0.1:0", Topic: "twilio.events.v1", Partitions: 1, Retention: 7 * 24 * time.Hour,
			KafkaSyncWrites: true, StoreAddr: "127.0.0.1:0", Sim: true, Scenario: *scenario, Seed: *seed, NoReactors: !*withReactors, SimEventStreams: *eventStreams,
		}
		c.Ingest.register(flag.NewFlagSet("defaults", flag.ContinueOnError))
		c.Projector.register(flag.NewFlagSet("defaults", flag.ContinueOnError))
		c.Reactors.register(flag.NewFlagSet("defaults", flag.ContinueOnError))
		c.Ingest.cfg.Addr, c.Projector.apiAddr, c.Reactors.addr = "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0"
		// The product's orphan rule and the simulator's must agree for the
		// read models to be compared with the truth.
		c.Projector.grace = max(time.Second, sc.Real(sc.Grace))
		c.Reactors.settle = 500 * time.Millisecond
		if err := c.Validate(); err != nil {
			return err
		}
		// The in-process product has no Twilio credentials: up starts the
		// simulator as its Twilio.
		quiet := env{stdout: e.stderr, stderr: e.stderr, lookup: func(k string) (string, bool) {
			switch k {
			case envAccountSid, envAuthToken, envAuthTokenSecondary:
				return "", false
			}
			return e.lookup(k)
		}}
		return up(ctx, c, quiet, log, func(ctx context.Context, st *stack) error {
			if st.sim == nil {
				return errors.New("sim: the in-process product started no simulator")
			}
			return finish(st.sim.Run(ctx, st.ingestURL, st.apiURL))
		})
	}
}
