// Package testutil holds what several packages' tests need: free loopback
// ports and child processes that announce themselves on stdout.
package testutil

import (
	"bufio"
	"io"
	"net"
	"os/exec"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// FreeAddr is FreePort as host:port.
func FreeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// Process is a child process started by Start.
type Process struct {
	Cmd    *exec.Cmd
	Stderr *strings.Builder
	done   chan error
}

// Start runs cmd and waits until its stdout has matched every pattern; it
// returns each pattern's first submatch. The process is killed at the end
// of the test if it is still running.
func Start(t testing.TB, cmd *exec.Cmd, patterns ...*regexp.Regexp) (*Process, []string) {
	t.Helper()
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	p := &Process{Cmd: cmd, Stderr: &strings.Builder{}, done: make(chan error, 1)}
	cmd.Stderr = p.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	found := make(chan [2]string, len(patterns)*4)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			for i, re := range patterns {
				if m := re.FindStringSubmatch(sc.Text()); len(m) > 1 {
					found <- [2]string{string(rune('0' + i)), m[1]}
				}
			}
		}
		_, _ = io.Copy(io.Discard, stdout)
	}()
	go func() { p.done <- cmd.Wait() }()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			<-p.done
		}
	})
	got := make([]string, len(patterns))
	for n := 0; n < len(patterns); {
		select {
		case f := <-found:
			i := int(f[0][0] - '0')
			if got[i] == "" {
				got[i] = f[1]
				n++
			}
		case err := <-p.done:
			t.Fatalf("%s exited before announcing itself: %v\n%s", cmd.Path, err, p.Stderr)
		case <-time.After(60 * time.Second):
			t.Fatalf("%s did not announce itself\n%s", cmd.Path, p.Stderr)
		}
	}
	return p, got
}

// Signal sends sig and waits for the process to end, returning its exit
// error (nil for status 0).
func (p *Process) Signal(t testing.TB, sig syscall.Signal) error {
	t.Helper()
	if err := p.Cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-p.done:
		return err
	case <-time.After(30 * time.Second):
		t.Fatalf("%s ignored %v\n%s", p.Cmd.Path, sig, p.Stderr)
		return nil
	}
}
