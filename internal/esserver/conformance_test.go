package esserver_test

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	"github.com/testcontainers/testcontainers-go"
	"github.com/testcontainers/testcontainers-go/wait"
	"go.uber.org/goleak"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/flexstream/flexstream/internal/esserver"
	"github.com/flexstream/flexstream/internal/eventstore/estest"
	"github.com/flexstream/flexstream/internal/testutil"
)

// The server, its store and every esdb client the suite opens must release
// their goroutines when closed; the suite opens and closes dozens.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// envKurrentDB points the suite at a real KurrentDB, e.g.
// "esdb://127.0.0.1:2113?tls=false".
const envKurrentDB = "FLEXSTREAM_TEST_KURRENTDB"

// kurrentImage is the KurrentDB image for machines with Docker.
const kurrentImage = "kurrentplatform/kurrentdb:latest"

func TestConformanceEmbedded(t *testing.T) {
	dir := t.TempDir()
	logger := zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel))
	start := func(ctx context.Context, addr string) (*esserver.Server, error) {
		return esserver.Start(ctx, esserver.Config{Addr: addr, DataDir: dir, Logger: logger})
	}
	srv, err := start(context.Background(), "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := srv.Addr()
	t.Cleanup(func() {
		if srv != nil {
			if err := srv.Close(); err != nil {
				t.Errorf("close: %v", err)
			}
		}
	})
	estest.Run(t, estest.Backend{
		Name:       "embedded",
		ConnString: srv.ConnectionString(),
		Restart: func(ctx context.Context) error {
			err := srv.Close()
			srv = nil
			if err != nil {
				return fmt.Errorf("close: %w", err)
			}
			ns, err := start(ctx, addr)
			if err != nil {
				return fmt.Errorf("start again on %s: %w", addr, err)
			}
			srv = ns
			return nil
		},
	})
}

func TestConformanceKurrentDB(t *testing.T) {
	conn := os.Getenv(envKurrentDB)
	if conn == "" {
		t.Skipf("no real KurrentDB: set %s to its connection string, e.g. esdb://127.0.0.1:2113?tls=false", envKurrentDB)
	}
	estest.Run(t, estest.Backend{
		Name:       "kurrentdb",
		ConnString: conn,
		NoRestart:  envKurrentDB + " names a server this test cannot restart",
	})
}

// TestConformanceContainer runs KurrentDB in Docker. The database is on the
// container's disk (not --mem-db), so a stop and start keeps every event
// and the restart case runs against a real KurrentDB too.
func TestConformanceContainer(t *testing.T) {
	testcontainers.SkipIfProviderIsNotHealthy(t)
	ctx := context.Background()
	port := testutil.FreePort(t)
	c, err := testcontainers.GenericContainer(ctx, testcontainers.GenericContainerRequest{
		ContainerRequest: testcontainers.ContainerRequest{
			Image:        kurrentImage,
			ExposedPorts: []string{"2113/tcp"},
			// A fixed host port: the connection string the suite holds must
			// reach the server again after the restart.
			HostConfigModifier: func(hc *container.HostConfig) {
				hc.PortBindings = network.PortMap{network.MustParsePort("2113/tcp"): {{HostIP: netip.MustParseAddr("127.0.0.1"), HostPort: fmt.Sprint(port)}}}
			},
			Env: map[string]string{
				"KURRENTDB_INSECURE":                  "true",
				"KURRENTDB_MEM_DB":                    "false",
				"KURRENTDB_RUN_PROJECTIONS":           "None",
				"KURRENTDB_ENABLE_ATOM_PUB_OVER_HTTP": "true",
			},
			// Live once the HTTP/gRPC endpoint answers; the suite then waits
			// for the node to take writes (leader election) before each use.
			WaitingFor: wait.ForHTTP("/health/live").WithPort("2113/tcp").
				WithStatusCodeMatcher(func(code int) bool { return code >= 200 && code < 300 }).
				WithStartupTimeout(3 * time.Minute),
		},
		Started: true,
	})
	testcontainers.CleanupContainer(t, c)
	if err != nil {
		t.Fatalf("start %s: %v", kurrentImage, err)
	}
	estest.Run(t, estest.Backend{
		Name:       "container " + kurrentImage,
		ConnString: fmt.Sprintf("esdb://127.0.0.1:%d?tls=false", port),
		Restart: func(ctx context.Context) error {
			timeout := 30 * time.Second
			if err := c.Stop(ctx, &timeout); err != nil {
				return err
			}
			return c.Start(ctx)
		},
	})
}
