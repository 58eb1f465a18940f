package pii

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestLoadKey(t *testing.T) {
	path := filepath.Join(t.TempDir(), "pseudonym.key")

	k1, src, err := LoadKey("", path)
	if err != nil || src != KeyFromNewFile || len(k1) < MinKeyLen {
		t.Fatalf("first use: %q %q %v", k1, src, err)
	}
	if st, _ := os.Stat(path); st.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode %v", st.Mode())
	}
	k2, src, err := LoadKey("", path)
	if err != nil || src != KeyFromFile || string(k2) != string(k1) {
		t.Fatalf("second use must reuse the key: %q %v", src, err)
	}
	env := strings.Repeat("k", 40)
	k3, src, err := LoadKey(env, path)
	if err != nil || src != KeyFromEnv || string(k3) != env {
		t.Fatalf("env wins: %q %v", src, err)
	}
	if _, _, err := LoadKey("short", path); !errors.Is(err, ErrShortKey) || !strings.Contains(err.Error(), KeyEnv) {
		t.Fatalf("short env key: %v", err)
	}
	if _, _, err := LoadKey("", ""); err == nil || !strings.Contains(err.Error(), KeyEnv) {
		t.Fatalf("no key and no file: %v", err)
	}
}
