package main

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/flexstream/flexstream/internal/kafkaio"
	"github.com/flexstream/flexstream/internal/twiliotest"
	"github.com/flexstream/flexstream/schemas"
)

// TestUpIngestsSignedWebhooks is a newcomer's first webhook: `up` checks
// signatures with the local token it keeps in its data directory, puts
// what is signed with it on the topic, refuses what is not, and keeps the
// same token across restarts.
func TestUpIngestsSignedWebhooks(t *testing.T) {
	data := t.TempDir()
	p := startUp(t, data, freeAddr(t))
	raw, err := os.ReadFile(filepath.Join(data, webhookTokenFile))
	if err != nil {
		t.Fatal(err)
	}
	token := strings.TrimSpace(string(raw))
	if info, _ := os.Stat(filepath.Join(data, webhookTokenFile)); info.Mode().Perm() != 0o600 {
		t.Errorf("token file mode %v, want 0600", info.Mode().Perm())
	}
	ids := twiliotest.NewIDs(42)
	client := &http.Client{Timeout: 20 * time.Second}
	defer client.CloseIdleConnections()
	post := func(tok string, form map[string][]string) int {
		req, err := twiliotest.FormRequest(tok, p.ingest+"/webhooks/taskrouter", form, "")
		if err != nil {
			t.Fatal(err)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := post(twiliotest.AuthToken, twiliotest.TaskRouterEvent(ids, "task.created")); code != http.StatusForbidden {
		t.Errorf("webhook signed with another token: %d, want 403", code)
	}
	if code := post(token, twiliotest.TaskRouterEvent(ids, "task.canceled", twiliotest.WithEventSid(ids.SID("EV", "first")))); code != http.StatusOK {
		t.Fatalf("signed webhook: %d, want 200", code)
	}
	if err := p.stop(t, syscall.SIGTERM); err != nil {
		t.Fatalf("SIGTERM: %v\n%s", err, p.Stderr)
	}
	p = startUp(t, data, p.addr)
	if code := post(token, twiliotest.TaskRouterEvent(ids, "task.deleted", twiliotest.WithEventSid(ids.SID("EV", "second")))); code != http.StatusOK {
		t.Fatalf("signed webhook after restart: %d, want 200", code)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c, err := kafkaio.NewConsumer(kafkaio.ConsumerConfig{Brokers: []string{p.addr}, GroupID: "up-ingest-test", Topics: []string{schemas.DefaultTopic},
		SessionTimeout: 10 * time.Second, HeartbeatInterval: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	want := map[string]string{ids.SID("EV", "first"): "com.twilio.taskrouter.task.canceled", ids.SID("EV", "second"): "com.twilio.taskrouter.task.deleted"}
	for len(want) > 0 {
		m, err := c.Fetch(ctx)
		if err != nil {
			t.Fatalf("waiting for %v: %v", want, err)
		}
		hd := map[string]string{}
		for _, h := range m.Headers {
			hd[h.Key] = string(h.Value)
		}
		if typ, ok := want[hd["ce_id"]]; !ok || hd["ce_type"] != typ || string(m.Key) != ids.Conversation {
			t.Fatalf("unexpected record %s key %s headers %v", m.Value, m.Key, hd)
		}
		delete(want, hd["ce_id"])
	}
	if err := p.stop(t, syscall.SIGTERM); err != nil {
		t.Fatalf("SIGTERM: %v\n%s", err, p.Stderr)
	}
}
