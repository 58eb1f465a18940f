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
	return func(ctx context.Context, log *zap.Logger) error {
		if err := c.Validate(); err != nil {
			return err
		}
		return up(ctx, c, e, log)
	}
}

func up(ctx context.Context, c upConfig, e env, log *zap.Logger) error {
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

	// Without Twilio credentials there is no Twilio to call: the
	// reactors record their decisions (dry run) until credentials or a
	// stand-in (--twilio-api-url, with credentials for it) are given.
	if !hasTwilioCredentials(e) {
		c.Reactors.dryRun = true
	}
	ec, err := c.Reactors.engineConfig(e)
	if err != nil {
		return err
	}
	react, err := startReactors(ctx, c.Reactors, ec, es, log)
	if err != nil {
		return err
	}
	defer func() {
		if err := react.Close(); err != nil {
			log.Error("reactors close", zap.Error(err))
		}
	}()

	tokens, tokenSource, err := upAuthTokens(e, dir.Path())
	if err != nil {
		return err
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
	reactMode := "calling Twilio"
	switch {
	case c.Reactors.dryRun:
		reactMode = "dry run (no Twilio credentials: decisions recorded, Twilio not called)"
	case c.Reactors.apiURL != "":
		reactMode = "calling " + c.Reactors.apiURL
	}
	fmt.Fprintf(e.stdout, "flexstream up: reactors %s; metrics on %s\n", reactMode, react.URL())
	fmt.Fprintf(e.stdout, "flexstream up: data in %s; Ctrl-C or SIGTERM stops\n", dir.Path())

	<-ctx.Done()
	log.Info("shutting down")
	return nil
}

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
