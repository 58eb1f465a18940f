package datadir

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestOpenLocksAndReopens(t *testing.T) {
	path := filepath.Join(t.TempDir(), "data")
	d, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(path); err != nil || st.Mode().Perm() != 0o700 {
		t.Fatalf("mode: %v %v", st.Mode(), err)
	}
	if _, err := Open(path); !errors.Is(err, ErrLocked) {
		t.Fatalf("second Open: got %v, want ErrLocked", err)
	}
	sub, err := d.Sub("kafka")
	if err != nil || filepath.Dir(sub) != d.Path() {
		t.Fatalf("Sub: %q %v", sub, err)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	d2, err := Open(path)
	if err != nil {
		t.Fatalf("reopen after Close: %v", err)
	}
	d2.Close()
}

func TestDefaultIsBesideTheCaller(t *testing.T) {
	if got := Default(); got != ".flexstream" {
		t.Fatalf("got %q", got)
	}
}

// The data directory ignores itself, so a `git add -A` in the checkout
// where `up` ran cannot commit customer data.
func TestDataDirectoryIsIgnoredByGit(t *testing.T) {
	path := filepath.Join(t.TempDir(), ".flexstream")
	d, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	b, err := os.ReadFile(filepath.Join(path, ".gitignore"))
	if err != nil || !strings.Contains(string(b), "\n*\n") {
		t.Fatalf(".gitignore: %q, %v", b, err)
	}
}

func TestHeldCreatesNothingAndSeesTheLock(t *testing.T) {
	path := filepath.Join(t.TempDir(), "data")
	if err := Held(path); err != nil {
		t.Fatalf("no directory: %v", err)
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("Held created %s", path)
	}
	d, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := Held(path); !errors.Is(err, ErrLocked) {
		t.Fatalf("held: got %v", err)
	}
	d.Close()
	if err := Held(path); err != nil {
		t.Fatalf("released: %v", err)
	}
	d2, err := Open(path) // Held released what it probed
	if err != nil {
		t.Fatal(err)
	}
	d2.Close()
}
