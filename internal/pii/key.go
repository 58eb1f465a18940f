package pii

import (
	"errors"
	"fmt"
	"strings"

	"github.com/flexstream/flexstream/internal/datadir"
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
	v, created, err := datadir.Secret(path, MinKeyLen)
	if errors.Is(err, datadir.ErrShortSecret) {
		return nil, "", fmt.Errorf("pseudonym key file %s: %w", path, ErrShortKey)
	}
	if err != nil {
		return nil, "", fmt.Errorf("pseudonym key: %w", err)
	}
	if created {
		return []byte(v), KeyFromNewFile, nil
	}
	return []byte(v), KeyFromFile, nil
}
