package datadir

import (
	"errors"
	"os"
	"path/filepath"
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

func TestDefaultHonoursXDG(t *testing.T) {
	t.Setenv("XDG_DATA_HOME", "/x")
	if got := Default(); got != "/x/flexstream" {
		t.Fatalf("got %q", got)
	}
}
