package config

import (
	"errors"
	"flag"
	"io"
	"strings"
	"testing"
	"time"
)

func newSet() (*flag.FlagSet, *string, *int, *time.Duration, *bool) {
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	addr := fs.String("kafka-addr", "127.0.0.1:9092", "")
	n := fs.Int("partitions", 6, "")
	d := fs.Duration("wait", time.Second, "")
	b := fs.Bool("sim", true, "")
	return fs, addr, n, d, b
}

func env(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func TestParsePrecedence(t *testing.T) {
	tests := []struct {
		name      string
		env       map[string]string
		args      []string
		wantAddr  string
		wantParts int
		wantSim   bool
	}{
		{"defaults", nil, nil, "127.0.0.1:9092", 6, true},
		{"env only", map[string]string{"FLEXSTREAM_KAFKA_ADDR": "127.0.0.1:1", "FLEXSTREAM_SIM": "false"}, nil, "127.0.0.1:1", 6, false},
		{"flag beats env", map[string]string{"FLEXSTREAM_PARTITIONS": "3"}, []string{"--partitions", "9"}, "127.0.0.1:9092", 9, true},
		{"bool flag form", nil, []string{"--sim=false"}, "127.0.0.1:9092", 6, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fs, addr, n, _, sim := newSet()
			if err := Parse(fs, tt.args, env(tt.env)); err != nil {
				t.Fatal(err)
			}
			if *addr != tt.wantAddr || *n != tt.wantParts || *sim != tt.wantSim {
				t.Fatalf("got %q %d %v", *addr, *n, *sim)
			}
		})
	}
}

func TestParseErrorsNameTheSetting(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		args []string
		want string
	}{
		{"bad env", map[string]string{"FLEXSTREAM_PARTITIONS": "many"}, nil, "FLEXSTREAM_PARTITIONS"},
		{"bad flag", nil, []string{"--wait", "soon"}, "-wait"},
		{"unknown flag", nil, []string{"--nope"}, "nope"},
		{"stray argument", nil, []string{"extra"}, `"extra"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fs, _, _, _, _ := newSet()
			err := Parse(fs, tt.args, env(tt.env))
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("want ErrInvalid, got %v", err)
			}
			if !strings.Contains(err.Error(), tt.want) || strings.Contains(err.Error(), "\n") {
				t.Fatalf("error %q should be one line naming %s", err, tt.want)
			}
		})
	}
}

func TestFieldError(t *testing.T) {
	err := Errorf("kafka-addr", "must be host:port, got %q", "x")
	if !errors.Is(err, ErrInvalid) {
		t.Fatal("FieldError must match ErrInvalid")
	}
	var fe *FieldError
	if !errors.As(err, &fe) || fe.Field != "kafka-addr" {
		t.Fatalf("errors.As: %v", err)
	}
	if got, want := err.Error(), `--kafka-addr (FLEXSTREAM_KAFKA_ADDR): must be host:port, got "x"`; got != want {
		t.Fatalf("got %q want %q", got, want)
	}
}

func TestUsageListsEnv(t *testing.T) {
	fs, _, _, _, _ := newSet()
	var b strings.Builder
	fs.SetOutput(&b)
	Usage(fs, "summary")()
	for _, want := range []string{"--kafka-addr", "FLEXSTREAM_KAFKA_ADDR", "summary"} {
		if !strings.Contains(b.String(), want) {
			t.Fatalf("usage lacks %q:\n%s", want, b.String())
		}
	}
}
