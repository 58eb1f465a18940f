package api_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/flexstream/flexstream/internal/config"
	"github.com/flexstream/flexstream/projector/api"
)

func TestConfigValidate(t *testing.T) {
	good := func() api.Config {
		return api.Config{Store: newMemStore(), Timeline: &memTimeline{}, Feed: newMemFeed()}
	}
	c := good()
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if c.Addr != api.DefaultAddr || c.HeartbeatInterval != api.DefaultHeartbeatInterval || c.Logger == nil {
		t.Errorf("defaults not applied: %+v", c)
	}
	const secret = "short/secret"
	cases := []struct {
		name   string
		change func(*api.Config)
		field  string
	}{
		{"bad addr", func(c *api.Config) { c.Addr = "8081" }, "--api-addr"},
		{"bad port", func(c *api.Config) { c.Addr = "127.0.0.1:99999" }, "--api-addr"},
		{"short token", func(c *api.Config) { c.BearerToken = secret }, api.BearerTokenEnv},
		{"token with spaces", func(c *api.Config) { c.BearerToken = "a token with spaces in it" }, api.BearerTokenEnv},
		{"heartbeat", func(c *api.Config) { c.HeartbeatInterval = -time.Second }, "--api-heartbeat-interval"},
		{"no store", func(c *api.Config) { c.Store = nil }, "--data"},
		{"no timeline", func(c *api.Config) { c.Timeline = nil }, "--store"},
		{"no feed", func(c *api.Config) { c.Feed = nil }, "--data"},
	}
	for _, tc := range cases {
		c := good()
		tc.change(&c)
		err := c.Validate()
		if err == nil || !errors.Is(err, config.ErrInvalid) || !strings.HasPrefix(err.Error(), tc.field) {
			t.Errorf("%s: %v, want an error naming %s", tc.name, err, tc.field)
			continue
		}
		if strings.Contains(err.Error(), secret) || strings.Contains(err.Error(), "spaces in it") {
			t.Errorf("%s: the error repeats the token: %v", tc.name, err)
		}
	}
	c = good()
	c.BearerToken = "abcdefghijklmnopqrstuvwxyz0123-._~+/=="
	if err := c.Validate(); err != nil {
		t.Errorf("good token: %v", err)
	}
}
