// Package benchkit is what the bench commands share: a child process
// that runs part of a bench (the load of webhooks comes from outside the
// measured process, as Twilio's does), order statistics, and an HTTP
// client sized for a load.
package benchkit

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strings"
	"time"

	"github.com/flexstream/flexstream/internal/twiliotest"
)

// RunChild starts command with job, as JSON, in the environment variable
// env, and decodes into result the JSON line the child prints last (see
// Reply). A child that prints nothing decodable is an error that carries
// its stderr.
func RunChild(ctx context.Context, command []string, env string, job, result any) error {
	spec, err := json.Marshal(job)
	if err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, command[0], command[1:]...)
	cmd.Env = append(os.Environ(), env+"="+string(spec))
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	runErr := cmd.Run()
	if err := json.Unmarshal(lastLine(out.Bytes()), result); err != nil {
		return fmt.Errorf("child process: %v; %v; stderr: %s", runErr, err, strings.TrimSpace(errOut.String()))
	}
	return runErr
}

// Reply is the child's side: result as one JSON line on out.
func Reply(out io.Writer, result any) {
	line, _ := json.Marshal(result)
	_, _ = fmt.Fprintf(out, "%s\n", line)
}

func lastLine(b []byte) []byte {
	b = bytes.TrimSpace(b)
	if i := bytes.LastIndexByte(b, '\n'); i >= 0 {
		return b[i+1:]
	}
	return b
}

// Quantile is the nearest-rank quantile of sorted durations.
func Quantile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(q*float64(len(sorted)))) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

// MedianFloat is the median of xs (the upper one of an even count).
func MedianFloat(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	sorted := slices.Clone(xs)
	slices.Sort(sorted)
	return sorted[len(sorted)/2]
}

// HTTPClient is a keep-alive client for conns concurrent requests over
// loopback, and the function that closes its idle connections.
func HTTPClient(conns int) (*http.Client, func()) {
	transport := &http.Transport{
		Proxy:               nil, // loopback; never an environment's proxy
		MaxIdleConns:        conns + 16,
		MaxIdleConnsPerHost: conns + 16,
		IdleConnTimeout:     time.Minute,
		DisableCompression:  true,
	}
	return &http.Client{Transport: transport, Timeout: 30 * time.Second}, transport.CloseIdleConnections
}

// PostWebhook sends a form webhook signed beforehand (signing is not what
// a bench measures), with Twilio's headers, and wants 200. The answer is
// read to the end so the connection is reused.
func PostWebhook(ctx context.Context, c *http.Client, url string, body []byte, signature, idempotencyToken string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", twiliotest.ContentTypeForm)
	req.Header.Set("User-Agent", twiliotest.UserAgent)
	req.Header.Set(twiliotest.HeaderSignature, signature)
	if idempotencyToken != "" {
		req.Header.Set(twiliotest.HeaderIdempotency, idempotencyToken)
	}
	resp, err := c.Do(req)
	if err != nil {
		return fmt.Errorf("webhook: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 200))
		return fmt.Errorf("webhook answered %d %s, want 200: %s", resp.StatusCode, http.StatusText(resp.StatusCode), bytes.TrimSpace(msg))
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	return nil
}
