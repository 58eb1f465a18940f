package esserver_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/EventStore/EventStore-Client-Go/v4/protos/serverfeatures"
	"github.com/EventStore/EventStore-Client-Go/v4/protos/shared"
	"github.com/EventStore/EventStore-Client-Go/v4/protos/streams"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/flexstream/flexstream/internal/config"
	"github.com/flexstream/flexstream/internal/esserver"
)

func start(t *testing.T) *esserver.Server {
	t.Helper()
	srv, err := esserver.Start(context.Background(), esserver.Config{Addr: "127.0.0.1:0", DataDir: t.TempDir(), Logger: zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	return srv
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		cfg  esserver.Config
		want string
	}{
		{esserver.Config{Addr: "nope", DataDir: "d"}, "store-addr"},
		{esserver.Config{Addr: "127.0.0.1:0"}, "data"},
		{esserver.Config{Addr: "127.0.0.1:0", NullStore: true}, ""},
	}
	for _, tt := range tests {
		err := tt.cfg.Validate()
		var fe *config.FieldError
		got := ""
		if errors.As(err, &fe) {
			got = fe.Field
		}
		if got != tt.want {
			t.Errorf("%+v: field %q, want %q (%v)", tt.cfg, got, tt.want, err)
		}
	}
}

// Raw gRPC, below the client: what the server advertises and what it
// refuses.
func TestFeaturesAndUnimplementedRPCs(t *testing.T) {
	srv := start(t)
	conn, err := grpc.NewClient(srv.Addr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	fm, err := serverfeatures.NewServerFeaturesClient(conn).GetSupportedMethods(ctx, &shared.Empty{})
	if err != nil {
		t.Fatal(err)
	}
	if fm.GetEventStoreServerVersion() != esserver.Version {
		t.Fatalf("version %q", fm.GetEventStoreServerVersion())
	}
	for _, m := range fm.GetMethods() {
		if m.GetMethodName() == "batchappend" {
			t.Fatal("batch append is advertised but not implemented")
		}
	}

	ba, err := streams.NewStreamsClient(conn).BatchAppend(ctx)
	if err == nil {
		_, err = ba.Recv()
	}
	if status.Code(err) != codes.Unimplemented {
		t.Fatalf("BatchAppend: %v, want Unimplemented", err)
	}

	// Through the client, persistent subscriptions are an unsupported
	// feature, not a hang or a crash.
	settings, _ := esdb.ParseConnectionString(srv.ConnectionString())
	c, err := esdb.NewClient(settings)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	err = c.CreatePersistentSubscription(ctx, "s-1", "g", esdb.PersistentStreamSubscriptionOptions{})
	var ee *esdb.Error
	if !errors.As(err, &ee) || ee.Code() != esdb.ErrorCodeUnsupportedFeature {
		t.Fatalf("persistent subscription: %v, want ErrorCodeUnsupportedFeature", err)
	}
}

// The client pings every 10 s even when nothing happens. A server with
// grpc-go's default keep-alive policy answers the third ping with
// too_many_pings and drops every subscription after about 30 s; this one
// must keep an idle subscription alive and deliver the next event.
func TestIdleSubscriptionSurvivesClientPings(t *testing.T) {
	if testing.Short() {
		t.Skip("takes 35 s of idle time; -short skips it")
	}
	t.Parallel()
	srv := start(t)
	settings, _ := esdb.ParseConnectionString(srv.ConnectionString())
	c, err := esdb.NewClient(settings)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	sub, err := c.SubscribeToStream(ctx, "idle-1", esdb.SubscribeToStreamOptions{From: esdb.Start{}})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	if ev := sub.Recv(); ev.CaughtUp == nil {
		t.Fatalf("want caught up first, got %+v", ev)
	}
	time.Sleep(35 * time.Second)
	if _, err := c.AppendToStream(ctx, "idle-1", esdb.AppendToStreamOptions{}, esdb.EventData{EventType: "Ping", ContentType: esdb.ContentTypeJson, Data: []byte(`{}`)}); err != nil {
		t.Fatal(err)
	}
	ev := sub.Recv()
	if ev.SubscriptionDropped != nil {
		t.Fatalf("idle subscription dropped: %v", ev.SubscriptionDropped.Error)
	}
	if ev.EventAppeared == nil || ev.EventAppeared.OriginalEvent().EventType != "Ping" {
		t.Fatalf("got %+v", ev)
	}
}
