package logging

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/flexstream/flexstream/internal/config"
)

func TestNewFormats(t *testing.T) {
	tests := []struct {
		format   string
		wantJSON bool
	}{
		{FormatAuto, true}, // a buffer is not a terminal
		{FormatJSON, true},
		{FormatConsole, false},
	}
	for _, tt := range tests {
		t.Run(tt.format, func(t *testing.T) {
			var buf bytes.Buffer
			log, err := New(Config{Level: "info", Format: tt.format, Out: &buf})
			if err != nil {
				t.Fatal(err)
			}
			log.Debug("hidden")
			log.Info("shown")
			out := buf.String()
			if strings.Contains(out, "hidden") || !strings.Contains(out, "shown") {
				t.Fatalf("level not applied: %q", out)
			}
			var m map[string]any
			isJSON := json.Unmarshal(bytes.TrimSpace(buf.Bytes()), &m) == nil
			if isJSON != tt.wantJSON {
				t.Fatalf("json=%v want %v: %q", isJSON, tt.wantJSON, out)
			}
		})
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		c    Config
		want string
	}{
		{Config{Level: "loud", Format: FormatAuto}, "log-level"},
		{Config{Level: "", Format: FormatAuto}, "log-level"},
		{Config{Level: "warn", Format: "xml"}, "log-format"},
	}
	for _, tt := range tests {
		err := tt.c.Validate()
		var fe *config.FieldError
		if !errors.As(err, &fe) || fe.Field != tt.want {
			t.Errorf("%+v: got %v, want error naming %s", tt.c, err, tt.want)
		}
	}
	if err := (Config{Level: "debug", Format: FormatJSON}).Validate(); err != nil {
		t.Fatal(err)
	}
}
