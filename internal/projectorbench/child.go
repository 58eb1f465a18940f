package projectorbench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/flexstream/flexstream/internal/benchkit"
)

// ChildEnv carries a child process's job: the webhook senders of the
// latency part, or the memory part's fill and measurement.
const ChildEnv = "FLEXSTREAM_PROJECTOR_BENCH_CHILD"

type childJob struct {
	Sender *senderJob `json:"sender,omitempty"`
	Memory *memoryJob `json:"memory,omitempty"`
}

type childResult struct {
	Sender *senderResult `json:"sender,omitempty"`
	Memory *Memory       `json:"memory,omitempty"`
	Err    string        `json:"error,omitempty"`
}

// RunChild is a child process's side: it runs the job in spec and writes
// the outcome as one JSON line to out, a failure included.
func RunChild(ctx context.Context, spec string, out io.Writer) error {
	var job childJob
	var res childResult
	err := json.Unmarshal([]byte(spec), &job)
	if err == nil {
		res, err = runJob(ctx, job)
	}
	if err != nil {
		res.Err = err.Error()
	}
	line, _ := json.Marshal(res)
	_, _ = fmt.Fprintf(out, "%s\n", line)
	return err
}

func runJob(ctx context.Context, job childJob) (childResult, error) {
	switch {
	case job.Sender != nil:
		r, err := runSender(ctx, *job.Sender)
		return childResult{Sender: &r}, err
	case job.Memory != nil:
		m, err := fillAndMeasure(*job.Memory)
		return childResult{Memory: &m}, err
	}
	return childResult{}, errors.New("child job: nothing to do")
}

// run runs job in a child process made from command, or in this process
// when command is empty.
func run(ctx context.Context, command []string, job childJob) (childResult, error) {
	if len(command) == 0 {
		return runJob(ctx, job)
	}
	var res childResult
	err := benchkit.RunChild(ctx, command, ChildEnv, job, &res)
	if res.Err != "" {
		return res, errors.New(res.Err)
	}
	return res, err
}
