package projectorbench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
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
	spec, err := json.Marshal(job)
	if err != nil {
		return childResult{}, err
	}
	cmd := exec.CommandContext(ctx, command[0], command[1:]...)
	cmd.Env = append(os.Environ(), ChildEnv+"="+string(spec))
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	runErr := cmd.Run()
	var res childResult
	if err := json.Unmarshal(lastLine(out.Bytes()), &res); err != nil {
		return res, fmt.Errorf("child process: %v; %v; stderr: %s", runErr, err, strings.TrimSpace(errOut.String()))
	}
	if res.Err != "" {
		return res, errors.New(res.Err)
	}
	return res, runErr
}

func lastLine(b []byte) []byte {
	b = bytes.TrimSpace(b)
	if i := bytes.LastIndexByte(b, '\n'); i >= 0 {
		return b[i+1:]
	}
	return b
}
