package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"path/filepath"
	"time"

	"go.uber.org/zap"

	"github.com/flexstream/flexstream/ingest"
	"github.com/flexstream/flexstream/internal/config"
	"github.com/flexstream/flexstream/internal/datadir"
	"github.com/flexstream/flexstream/internal/embedkafka"
	"github.com/flexstream/flexstream/internal/esserver"
	"github.com/flexstream/flexstream/internal/eventstore"
	"github.com/flexstream/flexstream/internal/kafkaio"
	"github.com/flexstream/flexstream/internal/pii"
	"github.com/flexstream/flexstream/internal/sim"
	"github.com/flexstream/flexstream/reactors"
)

// upConfig is everything `flexstream up` needs.
type upConfig struct {
	DataDir         string
	KafkaAddr       string
	Topic           string
	Partitions      int
	Retention       time.Duration
	KafkaSyncWrites bool
	StoreAddr       string
	Ingest          ingestOptions
	Projector       projectorOptions
	Reactors        reactorOptions
	// Sim: without Twilio credentials, the simulator plays Twilio.
	Sim      bool
	Scenario string
	Seed     uint64
	// SimEventStreams: the simulator sends Event Streams deliveries.
	SimEventStreams bool
	// NoReactors starts no reactors (to show what they prevent).
	NoReactors bool
}

// Validate names the bad field.
func (c upConfig) Validate() error {
	if c.DataDir == "" {
		return config.Errorf("data", "a directory is required")
	}
	if err := config.CheckListenAddr(c.KafkaAddr); err != nil {
		return config.Errorf("kafka-addr", "%v", err)
	}
	if err := config.CheckListenAddr(c.StoreAddr); err != nil {
		return config.Errorf("store-addr", "%v", err)
	}
	cfg := c.Ingest.cfg
	cfg.Publisher, cfg.SkipSignatureCheck = noPublisher{}, true // the token may come from the data directory
	if err := cfg.Validate(); err != nil {
		return err
	}
	if err := c.Projector.validate(); err != nil {
		return err
	}
	if _, err := c.Reactors.validate(); err != nil {
		return err
	}
	if c.Retention < time.Hour {
		return config.Errorf("kafka-retention", "want at least 1h, got %s", c.Retention)
	}
	// Topic name and partitions are checked by the specs they become.
	for _, s := range c.topics() {
		if err := s.Validate(); err != nil {
			return err
		}
	}
	return nil
}

// topics are the events topic and its dead-letter topic. Both hold what
// Twilio sent — phone numbers and message text — so both have the short
// retention that makes the raw topic the PII boundary.
func (c upConfig) topics() []kafkaio.TopicSpec {
	cfgs := map[string]string{"retention.ms": fmt.Sprint(c.Retention.Milliseconds())}
	return []kafkaio.TopicSpec{
		{Name: c.Topic, Partitions: c.Partitions, ReplicationFactor: 1, Configs: cfgs},
		{Name: c.Topic + ".dlq", Partitions: c.Partitions, ReplicationFactor: 1, Configs: cfgs},
	}
}

func upFlags(fs *flag.FlagSet, e env) func(context.Context, *zap.Logger) error {
	var c upConfig
	fs.StringVar(&c.DataDir, "data", datadir.Default(), "data directory: Kafka's log, keys; kept across restarts")
	fs.StringVar(&c.KafkaAddr, "kafka-addr", "127.0.0.1:9092", "address the embedded Kafka broker listens on and advertises")
	fs.StringVar(&c.Topic, "kafka-topic", "twilio.events.v1", "the events topic (its dead-letter topic is <topic>.dlq)")
	fs.IntVar(&c.Partitions, "kafka-partitions", 1, "partitions of the events topic, created if missing (the embedded broker fsyncs each partition's batch on its own: one partition is fastest here)")
	fs.DurationVar(&c.Retention, "kafka-retention", 7*24*time.Hour, "retention of the raw topics, which hold customer data")
	fs.StringVar(&c.StoreAddr, "store-addr", "127.0.0.1:2113", "address the embedded event store (KurrentDB protocol) listens on")
	fs.BoolVar(&c.KafkaSyncWrites, "kafka-sync-writes", true, "fsync every produced batch before acknowledging it (off: faster, a crash may lose acknowledged records)")
	c.Ingest.register(fs)
	c.Projector.register(fs)
	c.Reactors.register(fs)
	fs.BoolVar(&c.Sim, "sim", true, "without Twilio credentials, run the simulator as the Twilio on the other side (webhooks in, REST calls answered)")
	fs.StringVar(&c.Scenario, "scenario", "gentle", "the simulator's scenario: a name (smoke, day, gentle) or a YAML file")
	fs.Uint64Var(&c.Seed, "seed", 0, "the simulator's random seed (the same seed, the same run; 0: a new one each start, printed, so that a restart on the same data meets new customers)")
	return func(ctx context.Context, log *zap.Logger) error {
		if err := c.Validate(); err != nil {
			return err
		}
		return up(ctx, c, e, log, func(ctx context.Context, st *stack) error {
			if st.sim != nil {
				go func() {
					r, err := st.sim.Run(ctx, st.ingestURL, st.apiURL)
					if err != nil && ctx.Err() == nil {
						log.Warn("simulator", zap.Error(err))
					}
					if ctx.Err() == nil {
						fmt.Fprintf(e.stdout, "flexstream up: the simulator's scenario %q ended:\n%s", c.Scenario, r.Summary())
					}
				}()
			}
			<-ctx.Done()
			return nil
		})
	}
}

// stack is what up started, for what runs on top of it.
type stack struct {
	ingestURL string
	apiURL    string
	storeConn string
	sim       *sim.Sim // nil when Twilio is real (or absent)
}

func up(ctx context.Context, c upConfig, e env, log *zap.Logger, then func(context.Context, *stack) error) error {
	dir, err := datadir.Open(c.DataDir)
	if err != nil {
		return err
	}
	defer dir.Close()
	log = log.With(zap.String("data", dir.Path()))

	envKey, _ := e.lookup(pii.KeyEnv)
	key, source, err := pii.LoadKey(envKey, filepath.Join(dir.Path(), "pseudonym.key"))
	if err != nil {
		return fmt.Errorf("%w: %v", config.ErrInvalid, err)
	}
	log.Info("pseudonym key loaded", zap.String("source", source))
	pseudonyms, err := pii.New(key)
	if err != nil {
		return fmt.Errorf("%w: %v", config.ErrInvalid, err)
	}
	token, err := apiToken(e)
	if err != nil {
		return err
	}

	kafkaDir, err := dir.Sub("kafka")
	if err != nil {
		return err
	}
	broker, err := embedkafka.Start(embedkafka.Config{Addr: c.KafkaAddr, DataDir: kafkaDir, SyncWrites: c.KafkaSyncWrites, Logger: log})
	if err != nil {
		return err
	}
	// Close writes the broker's state to disk; it must run on every path.
	defer func() {
		broker.Close()
		log.Info("embedded kafka stopped; state flushed to disk")
	}()

	// Topics are created over the Kafka protocol through kafka-go, exactly
	// as against a production cluster.
	setupCtx, cancel := context.WithTimeout(ctx, time.Minute)
	states, err := kafkaio.EnsureTopics(setupCtx, []string{broker.Addr()}, c.topics(), log)
	cancel()
	if errors.Is(err, kafkaio.ErrPartitionMismatch) {
		log.Warn("keeping the existing partition count: adding partitions would move conversations to other partitions", zap.Error(err))
	} else if err != nil {
		return err
	}

	storeDir, err := dir.Sub("eventstore")
	if err != nil {
		return err
	}
	store, err := esserver.Start(ctx, esserver.Config{Addr: c.StoreAddr, DataDir: storeDir, Logger: log})
	if err != nil {
		return err
	}
	defer func() {
		if err := store.Close(); err != nil {
			log.Error("event store close", zap.Error(err))
		}
		log.Info("event store stopped")
	}()
	// The roles reach the store only through the KurrentDB client; prove
	// that path answers before saying we are up.
	es, err := eventstore.Connect(ctx, eventstore.Config{ConnString: store.ConnectionString(), ConnectTimeout: 30 * time.Second, Logger: log})
	if err != nil {
		return err
	}
	defer es.Close()
	readDir, err := dir.Sub("readmodel")
	if err != nil {
		return err
	}
	proj, err := startProjector(ctx, c.Projector, []string{broker.Addr()}, c.Topic, es, readDir, pseudonyms, token, log)
	if err != nil {
		return err
	}
	defer func() {
		if err := proj.Close(); err != nil {
			log.Error("projector close", zap.Error(err))
		}
	}()

	tokens, tokenSource, err := upAuthTokens(e, dir.Path())
	if err != nil {
		return err
	}
	// Without Twilio credentials there is no Twilio to call: the
	// simulator plays it (signing its webhooks with the local token,
	// accepting it for REST calls), or else the reactors record their
	// decisions without calling anyone (dry run).
	var simulator *sim.Sim
	if !hasTwilioCredentials(e) {
		if c.Sim && tokenSource != envAuthToken {
			sc, err := loadScenario(c.Scenario)
			if err != nil {
				return err
			}
			if c.Seed == 0 {
				// The model's SIDs follow from the seed: the same seed on
				// the same data would replay Twilio SIDs the store has seen.
				c.Seed = uint64(time.Now().UnixNano())
			}
			simulator, err = sim.Start(sim.Config{Scenario: sc, Seed: c.Seed, AuthToken: tokens[0], AccountSid: simAccount(tokens[0]), EventStreams: c.SimEventStreams, Logger: log})
			if err != nil {
				return err
			}
			defer simulator.Close()
			c.Reactors.apiURL = simulator.URL()
			c.Reactors.accountSid, c.Reactors.authToken = simAccount(tokens[0]), tokens[0]
		} else {
			c.Reactors.dryRun = true
		}
	}
	var react *reactors.Reactors
	if !c.NoReactors {
		ec, err := c.Reactors.engineConfig(e)
		if err != nil {
			return err
		}
		react, err = startReactors(ctx, c.Reactors, ec, es, log)
		if err != nil {
			return err
		}
		defer func() {
			if err := react.Close(); err != nil {
				log.Error("reactors close", zap.Error(err))
			}
		}()
	}

	c.Ingest.cfg.AuthTokens = tokens
	ingestSrv, stopIngest, err := startIngest(c.Ingest, []string{broker.Addr()}, c.Topic, log)
	if err != nil {
		return err
	}
	defer stopIngest() // before the broker closes: requests in flight still get Kafka's answer

	log.Info("kafka listening", zap.String("addr", broker.Addr()), zap.Bool("sync_writes", c.KafkaSyncWrites))
	fmt.Fprintf(e.stdout, "flexstream up: Kafka listening on %s\n", broker.Addr())
	for _, s := range states {
		unit := "partitions"
		if s.Partitions == 1 {
			unit = "partition"
		}
		fmt.Fprintf(e.stdout, "flexstream up: topic %s (%d %s)\n", s.Name, s.Partitions, unit)
	}
	fmt.Fprintf(e.stdout, "flexstream up: event store (KurrentDB protocol) on %s, connection string %s\n", store.Addr(), store.ConnectionString())
	fmt.Fprintf(e.stdout, "flexstream up: Twilio webhooks on %s%s, %s, %s (signatures checked with %s)\n", ingestSrv.URL(),
		ingest.RouteTaskRouter.Path(), ingest.RouteConversations.Path(), ingest.RouteEventStreams.Path(), tokenSource)
	fmt.Fprintf(e.stdout, "flexstream up: query API on %s (/v1/conversations, /v1/stats, /v1/events, /openapi.json)\n", proj.APIURL())
	if simulator != nil {
		fmt.Fprintf(e.stdout, "flexstream up: simulator playing Twilio (scenario %q, seed %d): webhooks to %s, Twilio's REST API on %s\n", c.Scenario, c.Seed, ingestSrv.URL(), simulator.URL())
	}
	if react != nil {
		reactMode := "calling Twilio"
		switch {
		case simulator != nil:
			reactMode = "calling the simulator"
		case c.Reactors.dryRun:
			reactMode = "dry run (no Twilio credentials: decisions recorded, Twilio not called)"
		case c.Reactors.apiURL != "":
			reactMode = "calling " + c.Reactors.apiURL
		}
		fmt.Fprintf(e.stdout, "flexstream up: reactors %s; metrics on %s\n", reactMode, react.URL())
	} else {
		fmt.Fprintf(e.stdout, "flexstream up: reactors off\n")
	}
	fmt.Fprintf(e.stdout, "flexstream up: data in %s; Ctrl-C or SIGTERM stops\n", dir.Path())
	fmt.Fprintf(e.stdout, "flexstream up: open %s/v1/stats, %s/v1/conversations?orphaned=true\n", proj.APIURL(), proj.APIURL())

	err = then(ctx, &stack{ingestURL: ingestSrv.URL(), apiURL: proj.APIURL(), storeConn: store.ConnectionString(), sim: simulator})
	log.Info("shutting down")
	return err
}

// simAccount is the account SID the simulator answers to: derived from
// the local token, so that it is stable across restarts.
func simAccount(token string) string { return "AC" + token[:32] }

// upAuthTokens are the tokens webhooks are checked with: Twilio's, from
// the environment, or else a local one kept in the data directory, so
// that the embedded default never accepts unsigned webhooks; whoever
// sends them (the simulator, a developer's script) signs with it.
func upAuthTokens(e env, dir string) ([]string, string, error) {
	if ts := authTokens(e); len(ts) > 0 {
		return ts, envAuthToken, nil
	}
	path := filepath.Join(dir, webhookTokenFile)
	tok, _, err := datadir.Secret(path, 32)
	if err != nil {
		return nil, "", fmt.Errorf("%w: webhook auth token: %v", config.ErrInvalid, err)
	}
	return []string{tok}, "the local token in " + path, nil
}

// webhookTokenFile holds the embedded default's webhook auth token.
const webhookTokenFile = "webhook-auth-token"
