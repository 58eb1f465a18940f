package main

import (
	"context"
	"flag"
	"fmt"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/flexstream/flexstream/ingest"
	"github.com/flexstream/flexstream/internal/config"
	"github.com/flexstream/flexstream/internal/kafkaio"
	"github.com/flexstream/flexstream/schemas"
)

// Twilio's own names for the credentials (DESIGN §11).
const (
	envAuthToken          = "TWILIO_AUTH_TOKEN"
	envAuthTokenSecondary = "TWILIO_AUTH_TOKEN_SECONDARY"
)

// ingestOptions are the ingest flags `ingest` and `up` share.
type ingestOptions struct {
	cfg          ingest.Config
	batchTimeout time.Duration
}

func (o *ingestOptions) register(fs *flag.FlagSet) {
	fs.StringVar(&o.cfg.Addr, "ingest-addr", "127.0.0.1:8080", "address the webhook endpoints listen on")
	fs.StringVar(&o.cfg.PublicURL, "public-url", "", "scheme://host[:port][/prefix] Twilio calls, when a proxy or load balancer is in front (signatures cover that URL); empty: the request's Host")
	fs.BoolVar(&o.cfg.SkipSignatureCheck, "insecure-skip-signature", false, "accept webhooks without checking X-Twilio-Signature (development only; logged as a warning)")
	fs.Int64Var(&o.cfg.MaxBody, "max-body", ingest.DefaultMaxBody, "largest webhook body accepted, in bytes (413 above)")
	fs.IntVar(&o.cfg.MaxInFlight, "max-in-flight", ingest.DefaultMaxInFlight, "webhooks processed at once; more get 503 with Retry-After")
	fs.DurationVar(&o.cfg.ProduceTimeout, "produce-timeout", ingest.DefaultProduceTimeout, "longest wait for Kafka's acknowledgement before answering 503")
	fs.DurationVar(&o.cfg.PreEventDeadline, "pre-event-deadline", ingest.DefaultPreEventDeadline, "pre-event webhooks are answered 200 by then even if Kafka has not acknowledged")
	fs.DurationVar(&o.batchTimeout, "kafka-batch-timeout", kafkaio.DefaultBatchTimeout, "how long a produce waits for company in its batch")
}

// tokens reads the auth tokens from the environment.
func authTokens(e env) []string {
	var out []string
	for _, name := range []string{envAuthToken, envAuthTokenSecondary} {
		if v, ok := e.lookup(name); ok && strings.TrimSpace(v) != "" {
			out = append(out, strings.TrimSpace(v))
		}
	}
	return out
}

// startIngest builds the producer and the server on brokers/topic.
func startIngest(o ingestOptions, brokers []string, topic string, log *zap.Logger) (*ingest.Server, func(), error) {
	producer, err := kafkaio.NewProducer(kafkaio.ProducerConfig{Brokers: brokers, Topic: topic, BatchTimeout: o.batchTimeout, Logger: log})
	if err != nil {
		return nil, nil, err
	}
	cfg := o.cfg
	cfg.Publisher = producer
	cfg.Ping = func(ctx context.Context) error { return kafkaio.Ping(ctx, brokers, topic) }
	cfg.Logger = log
	srv, err := ingest.Start(cfg)
	if err != nil {
		producer.Close()
		return nil, nil, err
	}
	stop := func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			log.Error("ingest shutdown", zap.Error(err))
		}
		if err := producer.Close(); err != nil {
			log.Error("kafka producer close", zap.Error(err))
		}
	}
	return srv, stop, nil
}

func ingestFlags(fs *flag.FlagSet, e env) func(context.Context, *zap.Logger) error {
	var o ingestOptions
	o.register(fs)
	brokers := fs.String("kafka-brokers", "127.0.0.1:9092", "Kafka bootstrap brokers, comma-separated host:port")
	topic := fs.String("kafka-topic", schemas.DefaultTopic, "the events topic")
	return func(ctx context.Context, log *zap.Logger) error {
		o.cfg.AuthTokens = authTokens(e)
		bs := splitList(*brokers)
		pc := kafkaio.ProducerConfig{Brokers: bs, Topic: *topic, BatchTimeout: o.batchTimeout}
		if err := pc.Validate(); err != nil {
			return err
		}
		if *topic == "" {
			return config.Errorf("kafka-topic", "a topic is required")
		}
		cfg := o.cfg
		cfg.Publisher = noPublisher{} // checked here; the real one is built by startIngest
		if err := cfg.Validate(); err != nil {
			return err
		}
		srv, stop, err := startIngest(o, bs, *topic, log)
		if err != nil {
			return err
		}
		defer stop()
		fmt.Fprintf(e.stdout, "flexstream ingest: webhooks on %s%s, %s, %s -> Kafka %s topic %s\n", srv.URL(),
			ingest.RouteTaskRouter.Path(), ingest.RouteConversations.Path(), ingest.RouteEventStreams.Path(), strings.Join(bs, ","), *topic)
		<-ctx.Done()
		log.Info("shutting down: finishing requests in flight")
		return nil
	}
}

type noPublisher struct{ ingest.Publisher }

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
