package main

import (
	"context"
	"flag"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/flexstream/flexstream/internal/config"
	"github.com/flexstream/flexstream/internal/datadir"
	"github.com/flexstream/flexstream/internal/eventstore"
	"github.com/flexstream/flexstream/internal/pii"
	"github.com/flexstream/flexstream/projector"
	"github.com/flexstream/flexstream/projector/api"
	"github.com/flexstream/flexstream/schemas"
)

// projectorOptions are the projector flags `projector` and `up` share.
type projectorOptions struct {
	apiAddr string
	grace   time.Duration
	workers int
}

func (o *projectorOptions) register(fs *flag.FlagSet) {
	fs.StringVar(&o.apiAddr, "api-addr", api.DefaultAddr, "address of the query API (/v1/conversations, /v1/stats, /v1/events, /openapi.json)")
	fs.DurationVar(&o.grace, "orphan-grace", projector.DefaultGrace, "how long a conversation with no task and no agent may be idle before it counts as orphaned")
	fs.IntVar(&o.workers, "projector-workers", 64, "events appended to the event store at once (one key is always in order)")
}

func (o projectorOptions) validate() error {
	if err := config.CheckListenAddr(o.apiAddr); err != nil {
		return config.Errorf("api-addr", "%v", err)
	}
	if o.grace < time.Second {
		return config.Errorf("orphan-grace", "want at least 1s, got %s", o.grace)
	}
	if o.workers < 1 || o.workers > 4096 {
		return config.Errorf("projector-workers", "want 1..4096, got %d", o.workers)
	}
	return nil
}

func apiToken(e env) (string, error) {
	tok, _ := e.lookup(api.BearerTokenEnv)
	tok = strings.TrimSpace(tok)
	if tok != "" && len(tok) < api.MinTokenLength {
		return "", config.Errorf(api.BearerTokenEnv, "want at least %d characters", api.MinTokenLength)
	}
	return tok, nil
}

func startProjector(ctx context.Context, o projectorOptions, brokers []string, topic string, es *eventstore.Client, dir string, p *pii.Pseudonymizer, token string, log *zap.Logger) (*projector.Projector, error) {
	return projector.Start(ctx, projector.Config{
		Brokers: brokers, Topic: topic, Events: es, DataDir: dir, APIAddr: o.apiAddr, APIToken: token,
		Grace: o.grace, Pseudonymizer: p, Workers: o.workers, Logger: log,
	})
}

func projectorFlags(fs *flag.FlagSet, e env) func(context.Context, *zap.Logger) error {
	var o projectorOptions
	o.register(fs)
	brokers := fs.String("kafka-brokers", "127.0.0.1:9092", "Kafka bootstrap brokers, comma-separated host:port")
	topic := fs.String("kafka-topic", schemas.DefaultTopic, "the events topic (dead letters go to <topic>.dlq)")
	store := fs.String("store", "esdb://127.0.0.1:2113?tls=false", "event store connection string (KurrentDB)")
	data := fs.String("data", filepath.Join(datadir.Default(), "projector"), "directory of the read models")
	return func(ctx context.Context, log *zap.Logger) error {
		if err := o.validate(); err != nil {
			return err
		}
		token, err := apiToken(e)
		if err != nil {
			return err
		}
		envKey, _ := e.lookup(pii.KeyEnv)
		key, _, err := pii.LoadKey(envKey, "")
		if err != nil {
			return config.Errorf(pii.KeyEnv, "%v", err)
		}
		pz, err := pii.New(key)
		if err != nil {
			return config.Errorf(pii.KeyEnv, "%v", err)
		}
		dir, err := datadir.Open(*data)
		if err != nil {
			return err
		}
		defer dir.Close()
		es, err := eventstore.Connect(ctx, eventstore.Config{ConnString: *store, ConnectTimeout: 30 * time.Second, Logger: log})
		if err != nil {
			return err
		}
		defer es.Close()
		p, err := startProjector(ctx, o, splitList(*brokers), *topic, es, dir.Path(), pz, token, log)
		if err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "flexstream projector: %s -> %s; query API on %s\n", *topic, *store, p.APIURL())
		<-ctx.Done()
		log.Info("shutting down")
		return p.Close()
	}
}
