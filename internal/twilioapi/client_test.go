package twilioapi

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twilio/twilio-go"
	"github.com/twilio/twilio-go/client"
	"go.uber.org/goleak"

	"github.com/flexstream/flexstream/internal/config"
	"github.com/flexstream/flexstream/internal/twiliostub"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestConfigValidateNamesTheField(t *testing.T) {
	for _, tc := range []struct {
		cfg   Config
		field string
	}{
		{Config{AuthToken: "x"}, "TWILIO_ACCOUNT_SID"},
		{Config{AccountSid: "AC1"}, "TWILIO_AUTH_TOKEN"},
		{Config{AccountSid: "AC1", AuthToken: "x", Timeout: -time.Second}, "twilio-timeout"},
		{Config{AccountSid: "AC1", AuthToken: "x", BaseURL: "127.0.0.1:80"}, "twilio-api-url"},
		{Config{AccountSid: "AC1", AuthToken: "x", BaseURL: "http://h/v1"}, "twilio-api-url"},
	} {
		err := tc.cfg.Validate()
		var fe *config.FieldError
		require.ErrorAs(t, err, &fe, "%+v", tc.cfg)
		require.Equal(t, tc.field, fe.Field)
	}
	ok := Config{AccountSid: "AC1", AuthToken: "x", BaseURL: "http://127.0.0.1:1"}
	require.NoError(t, ok.Validate())
	require.Equal(t, DefaultTimeout, ok.Timeout)
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC)
	require.Equal(t, 3*time.Second, parseRetryAfter("3", now))
	require.Equal(t, time.Duration(0), parseRetryAfter("", now))
	require.Equal(t, time.Duration(0), parseRetryAfter("-1", now))
	require.Equal(t, time.Duration(0), parseRetryAfter("soon", now))
	require.Equal(t, 90*time.Second, parseRetryAfter(now.Add(90*time.Second).Format(http.TimeFormat), now))
	require.Equal(t, time.Duration(0), parseRetryAfter(now.Add(-time.Minute).Format(http.TimeFormat), now))
}

// The stand-in sees every call at Twilio's path, with the API's host in
// X-Forwarded-Host, and a refusal comes back with its status and
// Retry-After.
func TestCallsReachTheStandInWithTheirStatus(t *testing.T) {
	stub := twiliostub.New(twiliostub.WithCredentials("AC"+hex32, "token"))
	require.NoError(t, stub.Start())
	t.Cleanup(func() { _ = stub.Close() })
	fx := stub.AddInteraction(twiliostub.InteractionFixture{})

	c, err := New(Config{AccountSid: "AC" + hex32, AuthToken: "token", BaseURL: stub.URL()})
	require.NoError(t, err)
	resp, err := c.Do(context.Background(), func(r *twilio.RestClient) error {
		_, err := r.FlexV1.FetchInteractionChannel(fx.InteractionSid, fx.ChannelSid)
		return err
	})
	require.NoError(t, err)
	require.Equal(t, 200, resp.Status)
	calls := stub.Calls()
	require.Len(t, calls, 1)
	require.Equal(t, "flex-api.twilio.com", calls[0].Host)

	stub.FailNext("FetchInteractionChannel", 1, http.StatusTooManyRequests, "7")
	resp, err = c.Do(context.Background(), func(r *twilio.RestClient) error {
		_, err := r.FlexV1.FetchInteractionChannel(fx.InteractionSid, fx.ChannelSid)
		return err
	})
	require.Error(t, err)
	var te *client.TwilioRestError
	require.ErrorAs(t, err, &te)
	require.Equal(t, 429, Status(resp, err))
	require.Equal(t, 7*time.Second, resp.RetryAfter)
	require.True(t, Retryable(Status(resp, err)))
	require.False(t, Ambiguous(resp, err), "a 429 was not acted on")
	stub.RequireNoViolations(t)
}

const hex32 = "0123456789abcdef0123456789abcdef"

// A call is bounded by the timeout, and by the caller's context; neither
// leaves a goroutine behind (goleak).
func TestTimeoutAndCancellation(t *testing.T) {
	block := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-block:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(block)

	c, err := New(Config{AccountSid: "AC" + hex32, AuthToken: "t", BaseURL: srv.URL, Timeout: 100 * time.Millisecond})
	require.NoError(t, err)
	fetch := func(r *twilio.RestClient) error {
		_, err := r.FlexV1.FetchInteraction("KD" + hex32)
		return err
	}
	resp, err := c.Do(context.Background(), fetch)
	require.Error(t, err)
	require.Equal(t, 0, resp.Status)
	require.True(t, Ambiguous(resp, err), "no answer: the call may have been acted on")

	c, err = New(Config{AccountSid: "AC" + hex32, AuthToken: "t", BaseURL: srv.URL, Timeout: time.Minute})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(50*time.Millisecond, cancel)
	_, err = c.Do(ctx, fetch)
	require.True(t, errors.Is(err, context.Canceled), "%v", err)
}
