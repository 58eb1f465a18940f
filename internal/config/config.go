// Package config binds command-line flags to FLEXSTREAM_* environment
// variables and reports invalid settings as one line that names the setting.
//
// Precedence is flag > environment > default: operators set the environment
// once per deployment and override single settings on the command line.
package config

import (
	"errors"
	"flag"
	"fmt"
	"net"
	"sort"
	"strconv"
	"strings"
)

// EnvPrefix is put before every flag's environment variable.
const EnvPrefix = "FLEXSTREAM_"

// EnvName is the environment variable that feeds the flag called name:
// "kafka-addr" reads FLEXSTREAM_KAFKA_ADDR.
func EnvName(name string) string {
	return EnvPrefix + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
}

// FieldError names the setting that is wrong. Every Validate in the project
// returns one, so the command line can print a single line an operator can act on.
type FieldError struct {
	// Field is the flag name, without dashes, or the name of a setting
	// read only from the environment (upper case: TWILIO_AUTH_TOKEN).
	Field string
	Err   error
}

func (e *FieldError) Error() string {
	if e.Field == strings.ToUpper(e.Field) {
		return fmt.Sprintf("%s: %v", e.Field, e.Err)
	}
	return fmt.Sprintf("--%s (%s): %v", e.Field, EnvName(e.Field), e.Err)
}

func (e *FieldError) Unwrap() error { return e.Err }

// Is makes every FieldError match ErrInvalid.
func (e *FieldError) Is(target error) bool { return target == ErrInvalid }

// Errorf builds a FieldError for field.
func Errorf(field, format string, args ...any) error {
	return &FieldError{Field: field, Err: fmt.Errorf(format, args...)}
}

// ErrInvalid marks every configuration error so callers can tell a bad
// setting (exit code 2) from a failure at run time.
var ErrInvalid = errors.New("invalid configuration")

// Parse applies the environment and then args to fs. lookup is os.LookupEnv
// outside tests. An environment variable that does not parse is reported with
// its variable name, because that is where the operator has to look.
func Parse(fs *flag.FlagSet, args []string, lookup func(string) (string, bool)) error {
	var envErr error
	fs.VisitAll(func(f *flag.Flag) {
		if envErr != nil {
			return
		}
		name := EnvName(f.Name)
		v, ok := lookup(name)
		if !ok {
			return
		}
		if err := fs.Set(f.Name, v); err != nil {
			envErr = fmt.Errorf("%w: %s=%q: %v", ErrInvalid, name, v, err)
		}
	})
	if envErr != nil {
		return envErr
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: unexpected argument %q", ErrInvalid, fs.Arg(0))
	}
	return nil
}

// Usage writes a flag set's help with each flag's environment variable, in
// the --name form the documentation uses.
func Usage(fs *flag.FlagSet, summary string) func() {
	return func() {
		w := fs.Output()
		fmt.Fprintln(w, summary)
		fmt.Fprintln(w, "\nFlags (each also read from its environment variable):")
		var flags []*flag.Flag
		fs.VisitAll(func(f *flag.Flag) { flags = append(flags, f) })
		sort.Slice(flags, func(i, j int) bool { return flags[i].Name < flags[j].Name })
		for _, f := range flags {
			arg, usage := flag.UnquoteUsage(f)
			head := "  --" + f.Name
			if arg != "" {
				head += " " + arg
			}
			fmt.Fprintf(w, "%s\n      %s (default %q, env %s)\n", head, usage, f.DefValue, EnvName(f.Name))
		}
	}
}

// CheckHostPort reports whether s is host:port with a port in 1..65535.
func CheckHostPort(s string) error { return checkHostPort(s, 1) }

// CheckListenAddr is CheckHostPort for an address to listen on, where
// port 0 asks the kernel for a free one.
func CheckListenAddr(s string) error { return checkHostPort(s, 0) }

func checkHostPort(s string, minPort int) error {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return fmt.Errorf("want host:port, got %q", s)
	}
	if host == "" {
		return fmt.Errorf("want host:port, got %q: empty host", s)
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < minPort || n > 65535 {
		return fmt.Errorf("want host:port, got %q: bad port", s)
	}
	return nil
}
