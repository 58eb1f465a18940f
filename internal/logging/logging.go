// Package logging builds the project's zap loggers: JSON for machines,
// console lines for a person at a terminal.
//
// Nothing here knows about PII; callers pass customer data through
// internal/pii before it reaches a field.
package logging

import (
	"io"
	"os"

	"github.com/flexstream/flexstream/internal/config"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// Formats accepted by Config.Format.
const (
	FormatAuto    = "auto"
	FormatJSON    = "json"
	FormatConsole = "console"
)

// Config selects the level and encoding.
type Config struct {
	Level  string    // debug, info, warn, error
	Format string    // auto, json, console; auto = console on a terminal
	Out    io.Writer // default os.Stderr
}

// Validate names the bad field.
func (c Config) Validate() error {
	if _, err := zapcore.ParseLevel(c.Level); err != nil || c.Level == "" {
		return config.Errorf("log-level", "want debug, info, warn or error, got %q", c.Level)
	}
	switch c.Format {
	case FormatAuto, FormatJSON, FormatConsole:
		return nil
	}
	return config.Errorf("log-format", "want auto, json or console, got %q", c.Format)
}

// New returns a logger writing to c.Out. The caller Syncs it at exit.
func New(c Config) (*zap.Logger, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	level, _ := zapcore.ParseLevel(c.Level)
	out := c.Out
	if out == nil {
		out = os.Stderr
	}
	format := c.Format
	if format == FormatAuto {
		format = FormatJSON
		if isTerminal(out) {
			format = FormatConsole
		}
	}
	var enc zapcore.Encoder
	if format == FormatConsole {
		ec := zap.NewDevelopmentEncoderConfig()
		ec.EncodeTime = zapcore.TimeEncoderOfLayout("15:04:05.000")
		ec.EncodeLevel = zapcore.CapitalColorLevelEncoder
		if !isTerminal(out) {
			ec.EncodeLevel = zapcore.CapitalLevelEncoder
		}
		enc = zapcore.NewConsoleEncoder(ec)
	} else {
		ec := zap.NewProductionEncoderConfig()
		ec.EncodeTime = zapcore.RFC3339NanoTimeEncoder
		enc = zapcore.NewJSONEncoder(ec)
	}
	core := zapcore.NewCore(enc, zapcore.Lock(zapcore.AddSync(out)), level)
	return zap.New(core, zap.ErrorOutput(zapcore.Lock(os.Stderr))), nil
}

// isTerminal reports whether w is a character device, which is how a
// terminal looks from here without another dependency.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// AtLeast raises log's level to lvl, unless it is that high already (zap's
// IncreaseLevel complains on stderr when asked to lower it).
func AtLeast(log *zap.Logger, lvl zapcore.Level) *zap.Logger {
	if log.Core().Enabled(lvl - 1) {
		return log.WithOptions(zap.IncreaseLevel(lvl))
	}
	return log
}
