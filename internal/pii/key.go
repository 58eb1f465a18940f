package pii

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
)

// Where a key came from, for the start-up log (never the key itself).
const (
	KeyFromEnv     = "env"
	KeyFromFile    = "file"
	KeyFromNewFile = "generated"
)

// LoadKey returns the pseudonym key: envValue (FLEXSTREAM_PSEUDONYM_KEY)
// when set; otherwise the key kept at path, generating it on first use
// (32 random bytes, hex, mode 0600). The embedded default keeps its key in
// its data directory so pseudonyms stay stable across restarts; production
// roles pass path "" and must be given the key, because every replica has
// to produce the same pseudonyms.
func LoadKey(envValue, path string) (key []byte, source string, err error) {
	if v := strings.TrimSpace(envValue); v != "" {
		if len(v) < MinKeyLen {
			return nil, "", fmt.Errorf("%s: %w: %d bytes, need at least %d", KeyEnv, ErrShortKey, len(v), MinKeyLen)
		}
		return []byte(v), KeyFromEnv, nil
	}
	if path == "" {
		return nil, "", fmt.Errorf("%s is not set: every replica needs the same key (at least %d bytes)", KeyEnv, MinKeyLen)
	}
	data, err := os.ReadFile(path)
	if err == nil {
		v := strings.TrimSpace(string(data))
		if len(v) < MinKeyLen {
			return nil, "", fmt.Errorf("pseudonym key file %s: %w", path, ErrShortKey)
		}
		return []byte(v), KeyFromFile, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, "", fmt.Errorf("pseudonym key file: %w", err)
	}
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return nil, "", fmt.Errorf("generate pseudonym key: %w", err)
	}
	v := hex.EncodeToString(raw)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, "", fmt.Errorf("pseudonym key file: %w", err)
	}
	if _, err := f.WriteString(v + "\n"); err != nil {
		f.Close()
		return nil, "", fmt.Errorf("pseudonym key file: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return nil, "", fmt.Errorf("pseudonym key file: %w", err)
	}
	if err := f.Close(); err != nil {
		return nil, "", fmt.Errorf("pseudonym key file: %w", err)
	}
	return []byte(v), KeyFromNewFile, nil
}
