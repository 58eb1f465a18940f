// Package datadir owns the embedded default's data directory: one folder
// per component, and a lock so two processes never share one.
package datadir

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// ErrLocked says another process holds the directory.
var ErrLocked = errors.New("data directory is in use by another flexstream process")

// Dir is an open, locked data directory.
type Dir struct {
	path string
	lock *os.File
}

// Default is where `flexstream up` keeps its data when --data is not given:
// ./.flexstream, beside whoever runs it, so that a newcomer finds (and
// removes) everything in one place.
func Default() string { return ".flexstream" }

// Open creates path if needed (mode 0700: it holds customer data and keys)
// and takes an exclusive lock on it for the life of the process.
func Open(path string) (*Dir, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("data directory %q: %w", path, err)
	}
	if err := os.MkdirAll(abs, 0o700); err != nil {
		return nil, fmt.Errorf("data directory: %w", err)
	}
	// It holds customer data and keys: never let git pick it up (a
	// checkout is where `flexstream up` runs by default).
	ignore := filepath.Join(abs, ".gitignore")
	if _, err := os.Stat(ignore); errors.Is(err, os.ErrNotExist) {
		if err := os.WriteFile(ignore, []byte("# flexstream data: customer data and keys, never committed\n*\n"), 0o600); err != nil {
			return nil, fmt.Errorf("data directory: %w", err)
		}
	}
	f, err := os.OpenFile(filepath.Join(abs, "LOCK"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("data directory lock: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		holder, _ := os.ReadFile(f.Name())
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("%w: %s (held by pid %s)", ErrLocked, abs, strings.TrimSpace(string(holder)))
		}
		return nil, fmt.Errorf("data directory lock: %w", err)
	}
	// The pid is only a hint for the operator; the flock is the lock.
	_ = f.Truncate(0)
	_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	return &Dir{path: abs, lock: f}, nil
}

// Path is the directory itself.
func (d *Dir) Path() string { return d.path }

// Sub returns (and creates) a component's folder, e.g. "kafka".
func (d *Dir) Sub(name string) (string, error) {
	p := filepath.Join(d.path, name)
	if err := os.MkdirAll(p, 0o700); err != nil {
		return "", fmt.Errorf("data directory: %w", err)
	}
	return p, nil
}

// Close releases the lock.
func (d *Dir) Close() error {
	return d.lock.Close()
}

// Held returns an error wrapping ErrLocked when another process (or
// another Open in this one) holds path's lock; nil when nobody does or
// path is no data directory. It creates nothing.
func Held(path string) error {
	abs, err := filepath.Abs(path)
	if err != nil {
		return fmt.Errorf("data directory %q: %w", path, err)
	}
	f, err := os.OpenFile(filepath.Join(abs, "LOCK"), os.O_RDWR, 0)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("data directory lock: %w", err)
	}
	defer f.Close()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		if errors.Is(err, syscall.EWOULDBLOCK) {
			holder, _ := os.ReadFile(f.Name())
			return fmt.Errorf("%w: %s (held by pid %s)", ErrLocked, abs, strings.TrimSpace(string(holder)))
		}
		return fmt.Errorf("data directory lock: %w", err)
	}
	return syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
}
