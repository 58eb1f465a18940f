package pii

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

var testKey = []byte("0123456789abcdef0123456789abcdef")

func mustNew(t *testing.T, key []byte) *Pseudonymizer {
	t.Helper()
	p, err := New(key)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestShortKey(t *testing.T) {
	if _, err := New([]byte("short")); !errors.Is(err, ErrShortKey) {
		t.Fatalf("got %v", err)
	}
}

func TestPhoneIsStableAcrossFormatting(t *testing.T) {
	p := mustNew(t, testKey)
	a := p.Phone("+1 (555) 010-2367")
	for _, in := range []string{"+15550102367", "+1-555-010-2367", "1 555 010 2367"} {
		if got := p.Phone(in); got != a {
			t.Errorf("Phone(%q) = %q, want %q", in, got, a)
		}
	}
	if !strings.HasPrefix(a, "ph:") || !strings.HasSuffix(a, ":67") || strings.Contains(a, "555") {
		t.Fatalf("unexpected shape %q", a)
	}
}

func TestKeyAndKindSeparate(t *testing.T) {
	p1 := mustNew(t, testKey)
	p2 := mustNew(t, []byte("another-key-another-key-another-key"))
	if p1.Phone("+15550102367") == p2.Phone("+15550102367") {
		t.Fatal("different keys must give different pseudonyms")
	}
	if p1.sum(KindPhone, "12345678") == p1.sum(KindOther, "12345678") {
		t.Fatal("kinds must not collide")
	}
}

func TestAddress(t *testing.T) {
	p := mustNew(t, testKey)
	tests := []struct {
		in         string
		wantPrefix string
		keepsRaw   bool
	}{
		{"+15550102367", "ph:", false},
		{"whatsapp:+15550102367", "whatsapp:ph:", false},
		{"Ana.Lopez@Example.com", "em:", false},
		{"messenger:1234567890123", "messenger:ph:", false},
		{"messenger:page-scoped-id", "messenger:id:", false},
		{"web-visitor-42", "web-visitor-42", true},
		{"", "", true},
	}
	for _, tt := range tests {
		got := p.Address(tt.in)
		if !strings.HasPrefix(got, tt.wantPrefix) {
			t.Errorf("Address(%q) = %q, want prefix %q", tt.in, got, tt.wantPrefix)
		}
		if (got == tt.in) != tt.keepsRaw {
			t.Errorf("Address(%q) = %q, keepsRaw want %v", tt.in, got, tt.keepsRaw)
		}
	}
	if p.Address("ana.lopez@example.com ") != p.Address("ANA.LOPEZ@EXAMPLE.COM") {
		t.Error("e-mail pseudonyms must ignore case and spaces")
	}
	if p.Lookup("whatsapp:+15550102367") != p.Address("whatsapp:+1 555 010 2367") {
		t.Error("Lookup must match what was stored")
	}
}

func TestBodyKeepsOnlyLength(t *testing.T) {
	p := mustNew(t, testKey)
	got := p.Body("my card is 4111 1111 1111 1111 ñ")
	if strings.Contains(got, "4111") || !strings.HasSuffix(got, ":len=32") {
		t.Fatalf("got %q", got)
	}
}

func TestRedact(t *testing.T) {
	p := mustNew(t, testKey)
	in := "Participant +1 555 010 2367 (ana@example.com) already in CH123, attempt 3 of 12"
	got := p.Redact(in)
	for _, leaked := range []string{"555", "2367", "ana@", "example.com"} {
		if strings.Contains(got, leaked) {
			t.Fatalf("Redact leaked %q: %q", leaked, got)
		}
	}
	for _, kept := range []string{"CH123", "attempt 3 of 12", p.Phone("+15550102367"), p.Email("ana@example.com")} {
		if !strings.Contains(got, kept) {
			t.Fatalf("Redact lost %q: %q", kept, got)
		}
	}
}

func TestZapFieldsNeverCarryRaw(t *testing.T) {
	p := mustNew(t, testKey)
	var buf bytes.Buffer
	core := zapcore.NewCore(zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig()), zapcore.AddSync(&buf), zap.DebugLevel)
	zap.New(core).Info("x",
		p.PhoneField("from", "+15550102367"),
		p.EmailField("email", "ana@example.com"),
		p.AddressField("to", "whatsapp:+15550102367"),
		p.BodyField("body", "hello there"))
	for _, raw := range []string{"5550102367", "ana@example.com", "hello there"} {
		if strings.Contains(buf.String(), raw) {
			t.Fatalf("log holds %q: %s", raw, buf.String())
		}
	}
}

func TestPseudonymsAreRecognisedAndKept(t *testing.T) {
	p := mustNew(t, testKey)
	cases := []struct {
		name, in, kind string
	}{
		{"phone", "+15550102367", KindPhone},
		{"whatsapp phone", "whatsapp:+15550102367", KindPhone},
		{"email", "Jane.Doe@example.com", KindEmail},
		{"messenger id", "messenger:alice.smith.77", KindOther},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ps := p.Address(c.in)
			if ps == c.in {
				t.Fatalf("Address(%q) did not pseudonymise", c.in)
			}
			kind, ok := PseudonymKind(ps)
			if !ok || kind != c.kind {
				t.Fatalf("PseudonymKind(%q) = %q, %v; want %q", ps, kind, ok, c.kind)
			}
			if again := p.Address(ps); again != ps {
				t.Fatalf("Address(pseudonym) = %q, want it unchanged %q", again, ps)
			}
			if got := p.Redact("call " + ps + " now"); got != "call "+ps+" now" {
				t.Fatalf("Redact changed a pseudonym: %q", got)
			}
		})
	}
	body := p.Body("héllo wörld")
	if n, ok := BodyLength(body); !ok || n != 11 {
		t.Fatalf("BodyLength(%q) = %d, %v; want 11", body, n, ok)
	}
	if kind, ok := PseudonymKind(body); !ok || kind != KindBody {
		t.Fatalf("PseudonymKind(%q) = %q, %v", body, kind, ok)
	}
	for _, s := range []string{"", "alice", "+15550102367", "ph:xyz:67", "ph:0123456789abcdef012:67", "msg:0123456789abcdef0123:len=", "CH0123456789abcdef0123456789abcdef"} {
		if IsPseudonym(s) {
			t.Errorf("IsPseudonym(%q) = true", s)
		}
		if _, ok := BodyLength(s); ok {
			t.Errorf("BodyLength(%q) ok", s)
		}
	}
}

func TestRedactKeepsPseudonymsWhoseHexLooksLikeAPhone(t *testing.T) {
	p := mustNew(t, testKey)
	// 20 hex digits, all decimal: a phone number to phoneInText.
	ps := "ph:12345678901234567890:90"
	text := "from " + ps + " and +1 555 010 2367"
	got := p.Redact(text)
	if !strings.HasPrefix(got, "from "+ps+" and ph:") || strings.Contains(got, "555") {
		t.Fatalf("Redact(%q) = %q", text, got)
	}
}

func TestRedactLeavesDigitsInsideWords(t *testing.T) {
	p := mustNew(t, testKey)
	for _, in := range []string{"guest-3a4b9253682714b6", "order A12345678", "ref 9253682714x"} {
		if got := p.Redact(in); got != in {
			t.Errorf("Redact(%q) = %q", in, got)
		}
	}
	if got := p.Redact("call (555) 010-2367."); !strings.HasPrefix(got, "call (ph:") && !strings.HasPrefix(got, "call ph:") {
		t.Errorf("a typed phone number was kept: %q", got)
	}
}
