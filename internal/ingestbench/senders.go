package ingestbench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/flexstream/flexstream/internal/benchkit"
)

// ChildEnv carries a sender process's job. The webhook senders run in a
// process of their own, as Twilio does: sharing ingest's Go scheduler with
// hundreds of client goroutines adds a scheduling delay to every network
// wake-up of the server (measured: p99 at 5,000/s of 13–17 ms in one
// process against 5–8 ms from another), which no deployment has.
const ChildEnv = "FLEXSTREAM_INGEST_BENCH_SENDER"

// senderJob is what a sender process is asked to do.
type senderJob struct {
	URL      string        `json:"url"`
	Requests int           `json:"requests"` // callbacks to build (the same set as the parent's)
	N        int           `json:"n"`        // throughput: send the first N callbacks from Clients goroutines
	Clients  int           `json:"clients"`
	Rate     float64       `json:"rate"` // > 0: the open-loop latency phase instead
	Duration time.Duration `json:"duration"`
	Senders  int           `json:"senders"`
}

// senderResult is what it answers, on stdout.
type senderResult struct {
	Result  Result   `json:"result"`
	Latency *Latency `json:"latency,omitempty"`
	Err     string   `json:"error,omitempty"`
}

// senders runs the HTTP side of a phase: in a child process made from
// cfg.SenderCommand, or in this process when that is empty.
type senders struct {
	command []string
	url     string
	cbs     []callback
	client  *http.Client
}

func (s *senders) throughput(ctx context.Context, cbs int, clients int) (Result, error) {
	if len(s.command) == 0 {
		return ingestPhase(ctx, s.client, s.url, s.cbs[:cbs], clients)
	}
	res, err := s.run(ctx, senderJob{URL: s.url, Requests: len(s.cbs), N: cbs, Clients: clients})
	return res.Result, err
}

func (s *senders) latency(ctx context.Context, rate float64, d time.Duration, n int) (Latency, error) {
	if len(s.command) == 0 {
		return latencyPhase(ctx, func(i int) error { return post(ctx, s.client, s.url, s.cbs[i%len(s.cbs)]) }, rate, d, n)
	}
	res, err := s.run(ctx, senderJob{URL: s.url, Requests: len(s.cbs), Rate: rate, Duration: d, Senders: n})
	if err != nil {
		return Latency{}, err
	}
	if res.Latency == nil {
		return Latency{}, errors.New("sender process gave no latencies")
	}
	return *res.Latency, nil
}

func (s *senders) run(ctx context.Context, job senderJob) (senderResult, error) {
	var res senderResult
	err := benchkit.RunChild(ctx, s.command, ChildEnv, job, &res)
	if res.Err != "" {
		return res, errors.New(res.Err)
	}
	return res, err
}

// RunSender is the sender process's side: it builds the same signed
// callbacks as its parent, runs the job in spec and writes the outcome as
// one JSON line to out. A failure is reported there too.
func RunSender(ctx context.Context, spec string, out io.Writer) error {
	var job senderJob
	res := senderResult{}
	err := json.Unmarshal([]byte(spec), &job)
	if err == nil {
		res, err = runSenderJob(ctx, job)
	}
	if err != nil {
		res.Err = err.Error()
	}
	benchkit.Reply(out, res)
	return err
}

func runSenderJob(ctx context.Context, job senderJob) (senderResult, error) {
	cbs, err := callbacks(job.URL, job.Requests, false)
	if err != nil {
		return senderResult{}, err
	}
	client, closeClient := benchkit.HTTPClient(max(job.Clients, job.Senders))
	defer closeClient()
	if job.Rate > 0 {
		l, err := latencyPhase(ctx, func(i int) error { return post(ctx, client, job.URL, cbs[i%len(cbs)]) }, job.Rate, job.Duration, job.Senders)
		return senderResult{Latency: &l}, err
	}
	if job.N < 1 || job.N > len(cbs) {
		return senderResult{}, fmt.Errorf("sender job: %d callbacks of %d", job.N, len(cbs))
	}
	r, err := ingestPhase(ctx, client, job.URL, cbs[:job.N], job.Clients)
	return senderResult{Result: r}, err
}
