package main

import (
	"fmt"
	"os"
	"runtime/pprof"
)

// benchDir is where a bench writes: dir, or else a fresh temporary
// directory that cleanup removes.
func benchDir(dir, pattern string) (path string, cleanup func(), err error) {
	if dir != "" {
		return dir, func() {}, nil
	}
	tmp, err := os.MkdirTemp("", pattern)
	if err != nil {
		return "", nil, err
	}
	return tmp, func() { os.RemoveAll(tmp) }, nil
}

// startCPUProfile profiles this process into path until stop is called;
// an empty path profiles nothing.
func startCPUProfile(path string) (stop func(), err error) {
	if path == "" {
		return func() {}, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("cpu profile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("cpu profile: %w", err)
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}, nil
}

// benchSetup is a bench's directory (benchDir) and CPU profile
// (startCPUProfile); done ends the profile and removes a temporary
// directory.
func benchSetup(data, pattern, cpuProfile string) (dir string, done func(), err error) {
	dir, cleanup, err := benchDir(data, pattern)
	if err != nil {
		return "", nil, err
	}
	stop, err := startCPUProfile(cpuProfile)
	if err != nil {
		cleanup()
		return "", nil, err
	}
	return dir, func() { stop(); cleanup() }, nil
}

// selfCommand runs this binary again with args: a bench's child process.
func selfCommand(args ...string) ([]string, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("child process: %w", err)
	}
	return append([]string{exe}, args...), nil
}
