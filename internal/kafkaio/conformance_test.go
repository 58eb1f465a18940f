package kafkaio_test

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/testcontainers/testcontainers-go"
	"github.com/testcontainers/testcontainers-go/wait"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"

	"github.com/flexstream/flexstream/internal/embedkafka"
	"github.com/flexstream/flexstream/internal/kafkaio/kafkatest"
	"github.com/flexstream/flexstream/internal/testutil"
)

// Environment that points the suite at a real broker; the project's test
// command (deploy/kafka/kafka.sh via the Makefile) sets all three.
const (
	envBrokers = "FLEXSTREAM_TEST_KAFKA_BROKERS"
	envRestart = "FLEXSTREAM_TEST_KAFKA_RESTART" // shell command that restarts that broker keeping its data
	envVersion = "FLEXSTREAM_TEST_KAFKA_VERSION"
)

// containerImage is the Apache Kafka image for machines with Docker; its
// version matches deploy/kafka/pom.xml.
const containerImage = "apache/kafka:4.1.2"

func TestKafkaConformanceEmbedded(t *testing.T) {
	dir := t.TempDir()
	b, err := embedkafka.Start(embedkafka.Config{Addr: "127.0.0.1:0", DataDir: dir, SyncWrites: true, Logger: zaptest.NewLogger(t, zaptest.Level(zap.InfoLevel))})
	if err != nil {
		t.Fatal(err)
	}
	addr := b.Addr()
	t.Cleanup(func() { b.Close() })
	kafkatest.Run(t, kafkatest.Backend{
		Name:    "kfake",
		Version: moduleVersion("github.com/twmb/franz-go/pkg/kfake"),
		Brokers: []string{addr},
		Restart: func(context.Context) error {
			b.Close()
			nb, err := embedkafka.Start(embedkafka.Config{Addr: addr, DataDir: dir, SyncWrites: true, Logger: zaptest.NewLogger(t, zaptest.Level(zap.InfoLevel))})
			if err != nil {
				return err
			}
			b = nb
			return nil
		},
	})
}

func TestKafkaConformanceApacheKafka(t *testing.T) {
	brokers := os.Getenv(envBrokers)
	if brokers == "" {
		t.Skipf("no real Apache Kafka broker: set %s (the project's test command, make test, starts one from Maven Central jars)", envBrokers)
	}
	b := kafkatest.Backend{
		Name:      "apache-kafka",
		Version:   os.Getenv(envVersion),
		Brokers:   strings.Split(brokers, ","),
		NoRestart: envRestart + " is not set",
	}
	if cmd := os.Getenv(envRestart); cmd != "" {
		b.Restart = func(ctx context.Context) error {
			out, err := exec.CommandContext(ctx, "sh", "-c", cmd).CombinedOutput()
			if err != nil {
				return fmt.Errorf("%s: %v\n%s", cmd, err, out)
			}
			return nil
		}
	}
	kafkatest.Run(t, b)
}

func TestKafkaConformanceContainer(t *testing.T) {
	testcontainers.SkipIfProviderIsNotHealthy(t)
	ctx := context.Background()
	port := testutil.FreePort(t)
	c, err := testcontainers.GenericContainer(ctx, testcontainers.GenericContainerRequest{
		ContainerRequest: testcontainers.ContainerRequest{
			Image:        containerImage,
			ExposedPorts: []string{"9092/tcp"},
			// A fixed host port: Kafka advertises it, and it must survive a
			// container restart for the restart case.
			HostConfigModifier: func(hc *container.HostConfig) {
				hc.PortBindings = network.PortMap{network.MustParsePort("9092/tcp"): {{HostIP: netip.MustParseAddr("127.0.0.1"), HostPort: fmt.Sprint(port)}}}
			},
			Env: map[string]string{
				"KAFKA_NODE_ID":                                  "1",
				"KAFKA_PROCESS_ROLES":                            "broker,controller",
				"KAFKA_LISTENERS":                                "PLAINTEXT://:9092,CONTROLLER://:9093",
				"KAFKA_ADVERTISED_LISTENERS":                     fmt.Sprintf("PLAINTEXT://127.0.0.1:%d", port),
				"KAFKA_CONTROLLER_LISTENER_NAMES":                "CONTROLLER",
				"KAFKA_LISTENER_SECURITY_PROTOCOL_MAP":           "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
				"KAFKA_CONTROLLER_QUORUM_VOTERS":                 "1@localhost:9093",
				"KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR":         "1",
				"KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR": "1",
				"KAFKA_TRANSACTION_STATE_LOG_MIN_ISR":            "1",
				"KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS":         "0",
				"KAFKA_HEAP_OPTS":                                "-Xms256m -Xmx512m",
			},
			WaitingFor: wait.ForLog("Kafka Server started").WithStartupTimeout(2 * time.Minute),
		},
		Started: true,
	})
	testcontainers.CleanupContainer(t, c)
	if err != nil {
		t.Fatalf("start %s: %v", containerImage, err)
	}
	kafkatest.Run(t, kafkatest.Backend{
		Name:    "container",
		Version: containerImage,
		Brokers: []string{fmt.Sprintf("127.0.0.1:%d", port)},
		Restart: func(ctx context.Context) error {
			timeout := 30 * time.Second
			if err := c.Stop(ctx, &timeout); err != nil {
				return err
			}
			return c.Start(ctx)
		},
	})
}

// moduleVersion reads a dependency's version from go.mod, the one place
// that pins it.
func moduleVersion(path string) string {
	data, err := os.ReadFile("../../go.mod")
	if err != nil {
		return "unknown"
	}
	for _, line := range strings.Split(string(data), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == path {
			return f[1]
		}
	}
	return "unknown"
}
