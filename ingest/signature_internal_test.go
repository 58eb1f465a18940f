package ingest

import (
	"math/rand/v2"
	"net/url"
	"strings"
	"testing"

	"github.com/twilio/twilio-go/client"

	"github.com/flexstream/flexstream/internal/twiliotest"
)

// TestFormPayloadSignsAsTwilioGo: handing twilio-go the parameters
// concatenated once gives the same verdict as handing it the map, for
// right and wrong signatures, realistic and random forms.
func TestFormPayloadSignsAsTwilioGo(t *testing.T) {
	ids := twiliotest.NewIDs(1)
	var forms []url.Values
	for _, et := range twiliotest.TaskRouterEventTypes() {
		forms = append(forms, twiliotest.TaskRouterEvent(ids, et))
	}
	forms = append(forms, twiliotest.ConversationsEvent(ids, "onMessageAdded"), url.Values{}, url.Values{"": {""}}, url.Values{"a": {"2", "1"}, "A": {"x"}})
	rng := rand.New(rand.NewPCG(1, 2))
	alphabet := []rune("aZ09 _.-+&=%/:é€\x00\n")
	word := func() string {
		var b strings.Builder
		for i := rng.IntN(12); i > 0; i-- {
			b.WriteRune(alphabet[rng.IntN(len(alphabet))])
		}
		return b.String()
	}
	for i := 0; i < 500; i++ {
		f := url.Values{}
		for j := rng.IntN(40); j > 0; j-- {
			f.Add(word(), word())
		}
		forms = append(forms, f)
	}
	rv := client.NewRequestValidator(twiliotest.AuthToken)
	for i, f := range forms {
		for _, u := range []string{"https://hooks.example.com/twilio/webhooks/taskrouter", "http://127.0.0.1:8080/webhooks/taskrouter?x=1"} {
			first := map[string]string{}
			for k, v := range f {
				first[k] = v[0]
			}
			for _, sig := range []string{twiliotest.Sign(twiliotest.AuthToken, u, f), "bm90IGEgc2lnbmF0dXJl", ""} {
				want := rv.Validate(u, first, sig)
				got := rv.Validate(u, map[string]string{"": formPayload(f)}, sig)
				if got != want {
					t.Fatalf("form %d %v at %s, signature %q: concatenated %v, map %v", i, f, u, sig, got, want)
				}
			}
		}
	}
}

func BenchmarkVerifyTaskRouterForm(b *testing.B) {
	form := twiliotest.TaskRouterEvent(twiliotest.NewIDs(1), "task.canceled")
	u := "https://hooks.example.com/webhooks/taskrouter"
	sig := twiliotest.Sign(twiliotest.AuthToken, u, form)
	rv := client.NewRequestValidator(twiliotest.AuthToken)
	b.Run("twilio-go map", func(b *testing.B) {
		for b.Loop() {
			first := make(map[string]string, len(form))
			for k, v := range form {
				first[k] = v[0]
			}
			if !rv.Validate(u, first, sig) {
				b.Fatal("rejected")
			}
		}
	})
	b.Run("concatenated once", func(b *testing.B) {
		for b.Loop() {
			if !rv.Validate(u, map[string]string{"": formPayload(form)}, sig) {
				b.Fatal("rejected")
			}
		}
	})
}
