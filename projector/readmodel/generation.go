package readmodel

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
)

// A read-model directory holds generations: gen-<n>/, each a Pebble store
// of its own, and the pointer file GENERATION naming the current one
// ("gen-<n>\n"). A replay builds a new generation beside the live one and
// flips the pointer; a running projector notices and switches to it. A
// directory laid out the old way — a Pebble store directly in it, no
// pointer — is generation 0, and stays where it is until a replay replaces
// it.

// PointerFile names the current generation. (Not CURRENT: Pebble keeps a
// file of that name in every store.)
const PointerFile = "GENERATION"

var genName = regexp.MustCompile(`^gen-([0-9]+)$`)

// GenerationPath is generation n's directory under dir (0: dir itself, the
// old layout).
func GenerationPath(dir string, n int) string {
	if n == 0 {
		return dir
	}
	return filepath.Join(dir, "gen-"+strconv.Itoa(n))
}

// CurrentGeneration reads the pointer: the current generation's number and
// directory. With no pointer, the directory is generation 0 (the old
// layout, or a new empty directory).
func CurrentGeneration(dir string) (int, string, error) {
	b, err := os.ReadFile(filepath.Join(dir, PointerFile))
	if errors.Is(err, os.ErrNotExist) {
		return 0, dir, nil
	}
	if err != nil {
		return 0, "", fmt.Errorf("read model: generation pointer: %w", err)
	}
	name := strings.TrimSpace(string(b))
	m := genName.FindStringSubmatch(name)
	if m == nil {
		return 0, "", fmt.Errorf("read model: generation pointer %s names %q, want gen-<n>", filepath.Join(dir, PointerFile), name)
	}
	n, err := strconv.Atoi(m[1])
	if err != nil || n < 1 {
		return 0, "", fmt.Errorf("read model: generation pointer names %q", name)
	}
	return n, GenerationPath(dir, n), nil
}

// NewGeneration creates the next generation's empty directory (one more
// than any there is) and returns its number and path. Two builders never
// get the same one: the directory is made with Mkdir, which fails if it
// exists.
func NewGeneration(dir string) (int, string, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return 0, "", fmt.Errorf("read model: %w", err)
	}
	for range 100 {
		n := 0
		entries, err := os.ReadDir(dir)
		if err != nil {
			return 0, "", fmt.Errorf("read model: %w", err)
		}
		for _, e := range entries {
			if m := genName.FindStringSubmatch(e.Name()); m != nil {
				if k, _ := strconv.Atoi(m[1]); k > n {
					n = k
				}
			}
		}
		if cur, _, err := CurrentGeneration(dir); err == nil && cur > n {
			n = cur
		}
		n++
		p := GenerationPath(dir, n)
		if err := os.Mkdir(p, 0o700); errors.Is(err, os.ErrExist) {
			continue
		} else if err != nil {
			return 0, "", fmt.Errorf("read model: %w", err)
		}
		return n, p, nil
	}
	return 0, "", fmt.Errorf("read model: no free generation in %s", dir)
}

// SetCurrentGeneration points dir at generation n, atomically: a temporary
// file, fsynced, renamed over the pointer, and the directory fsynced.
func SetCurrentGeneration(dir string, n int) error {
	if n < 1 {
		return fmt.Errorf("read model: generation %d cannot be made current", n)
	}
	f, err := os.CreateTemp(dir, PointerFile+".tmp-*")
	if err != nil {
		return fmt.Errorf("read model: generation pointer: %w", err)
	}
	tmp := f.Name()
	_, err = fmt.Fprintf(f, "gen-%d\n", n)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, filepath.Join(dir, PointerFile))
	}
	if err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("read model: generation pointer: %w", err)
	}
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("read model: generation pointer: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("read model: generation pointer: sync %s: %w", dir, err)
	}
	return nil
}

// pebbleFile matches what Pebble keeps in a store's directory: what
// removing generation 0 (the old layout, a store directly in dir) deletes,
// leaving the generations, the pointer and anyone else's files alone.
// Pebble's LOCK is left too: the `projector` command's data-directory lock
// has the same name.
var pebbleFile = regexp.MustCompile(`^(CURRENT|OPTIONS-[0-9]+|MANIFEST-[0-9]+|[0-9]+\.(sst|log|blob)|marker\..*|archive|temporary\..*|.*\.dbtmp)$`)

// RemoveGeneration deletes generation n's files (it must not be open).
func RemoveGeneration(dir string, n int) error {
	if n != 0 {
		if err := os.RemoveAll(GenerationPath(dir, n)); err != nil {
			return fmt.Errorf("read model: remove generation %d: %w", n, err)
		}
		return nil
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("read model: remove generation 0: %w", err)
	}
	var errs []error
	for _, e := range entries {
		if pebbleFile.MatchString(e.Name()) {
			errs = append(errs, os.RemoveAll(filepath.Join(dir, e.Name())))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("read model: remove generation 0: %w", err)
	}
	return nil
}
