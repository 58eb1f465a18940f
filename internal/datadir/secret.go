package datadir

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
)

// ErrShortSecret: a secret file holds fewer characters than required.
var ErrShortSecret = errors.New("secret too short")

// Secret returns the secret kept at path, generating it on first use: 32
// random bytes, hex, in a 0600 file that is fsynced before it is used, so
// that what was handed out survives a crash. created says it was made
// now. A file with fewer than minLen characters is refused, not replaced.
func Secret(path string, minLen int) (secret string, created bool, err error) {
	data, err := os.ReadFile(path)
	if err == nil {
		v := strings.TrimSpace(string(data))
		if len(v) < minLen {
			return "", false, fmt.Errorf("secret file %s: %w: %d characters, need %d", path, ErrShortSecret, len(v), minLen)
		}
		return v, false, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return "", false, fmt.Errorf("secret file: %w", err)
	}
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return "", false, fmt.Errorf("generate secret: %w", err)
	}
	v := hex.EncodeToString(raw)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return "", false, fmt.Errorf("secret file: %w", err)
	}
	_, err = f.WriteString(v + "\n")
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return "", false, fmt.Errorf("secret file %s: %w", path, err)
	}
	return v, true, nil
}
