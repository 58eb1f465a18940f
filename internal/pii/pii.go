// Package pii turns customer data — phone numbers, e-mail addresses, message
// bodies — into keyed pseudonyms before anything stores or logs it.
//
// A pseudonym is HMAC-SHA256(key, kind || 0x00 || normalised value), cut to
// 80 bits and hex-encoded, with a short hint a person can use to tell two
// customers apart on a screen ("ph:3f9a…:67" ends in the last two digits).
// The same input under the same key always gives the same pseudonym, so an
// operator holding the key can find a customer's records (Lookup) while
// anyone without it learns nothing but the hint.
package pii

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"unicode"

	"go.uber.org/zap"
)

// MinKeyLen is the shortest key accepted: 32 bytes, HMAC-SHA256's block of
// security; a shorter key makes pseudonyms of phone numbers brute-forceable.
const MinKeyLen = 32

// KeyEnv is the environment variable that holds the key in every role.
const KeyEnv = "FLEXSTREAM_PSEUDONYM_KEY"

// ErrShortKey is returned for a key under MinKeyLen bytes.
var ErrShortKey = errors.New("pseudonym key too short")

// Kinds of value, part of the HMAC input so a phone number and an e-mail
// address that happen to share bytes never share a pseudonym.
const (
	KindPhone = "ph"
	KindEmail = "em"
	KindBody  = "msg"
	KindOther = "id"
)

// Pseudonymizer holds the key. It is safe for concurrent use.
type Pseudonymizer struct {
	key []byte
}

// New returns a Pseudonymizer for key.
func New(key []byte) (*Pseudonymizer, error) {
	if len(key) < MinKeyLen {
		return nil, fmt.Errorf("%w: %d bytes, need at least %d", ErrShortKey, len(key), MinKeyLen)
	}
	return &Pseudonymizer{key: append([]byte(nil), key...)}, nil
}

func (p *Pseudonymizer) sum(kind, normalised string) string {
	m := hmac.New(sha256.New, p.key)
	m.Write([]byte(kind))
	m.Write([]byte{0})
	m.Write([]byte(normalised))
	return hex.EncodeToString(m.Sum(nil)[:10])
}

// Phone pseudonymises a phone number; formatting (spaces, dashes, brackets)
// does not change the result. The hint is the last two digits.
func (p *Pseudonymizer) Phone(raw string) string {
	digits := normalisePhone(raw)
	hint := digits
	if len(hint) > 2 {
		hint = hint[len(hint)-2:]
	}
	return KindPhone + ":" + p.sum(KindPhone, digits) + ":" + hint
}

// Email pseudonymises an e-mail address, case-insensitively. No hint: the
// domain can name the customer's employer.
func (p *Pseudonymizer) Email(raw string) string {
	return KindEmail + ":" + p.sum(KindEmail, strings.ToLower(strings.TrimSpace(raw)))
}

// Body pseudonymises message text, keeping only its length in runes, which
// dashboards use and which says nothing about the content.
func (p *Pseudonymizer) Body(raw string) string {
	return fmt.Sprintf("%s:%s:len=%d", KindBody, p.sum(KindBody, raw), len([]rune(raw)))
}

// Address pseudonymises a Twilio participant address or identity: "+1555…",
// "whatsapp:+1555…", "messenger:…", an e-mail address, or a chat identity.
// The channel prefix is kept because routing decisions need it (a WhatsApp
// customer has a 24-hour window). An identity that is neither a phone number
// nor an e-mail address is not PII by itself and is returned unchanged.
func (p *Pseudonymizer) Address(raw string) string {
	if raw == "" {
		return ""
	}
	prefix, rest := "", raw
	if i := strings.IndexByte(raw, ':'); i > 0 && !strings.Contains(raw[:i], "@") {
		prefix, rest = raw[:i+1], raw[i+1:]
	}
	switch {
	case IsEmail(rest):
		return prefix + p.Email(rest)
	case IsPhone(rest):
		return prefix + p.Phone(rest)
	case prefix != "":
		// Channel-specific ids (messenger:…, rcs:…) identify a person too.
		return prefix + KindOther + ":" + p.sum(KindOther, rest)
	}
	return raw
}

// Lookup returns the pseudonym an operator should search for: the one
// Address would have produced for raw.
func (p *Pseudonymizer) Lookup(raw string) string { return p.Address(raw) }

var (
	emailRe = regexp.MustCompile(`^[^\s@]+@[^\s@]+\.[^\s@]+$`)
	phoneRe = regexp.MustCompile(`^\+?[0-9][0-9 ().\-]{5,22}$`)

	// In free text: an e-mail address, or a run of 7–15 digits with the
	// separators people type, optionally after a plus.
	emailInText = regexp.MustCompile(`[A-Za-z0-9._%+\-]+@[A-Za-z0-9.\-]+\.[A-Za-z]{2,}`)
	phoneInText = regexp.MustCompile(`\+?\d[\d ().\-]{5,20}\d`)
)

// IsEmail reports whether s looks like an e-mail address.
func IsEmail(s string) bool { return emailRe.MatchString(strings.TrimSpace(s)) }

// IsPhone reports whether s looks like a phone number (7 to 15 digits).
func IsPhone(s string) bool {
	s = strings.TrimSpace(s)
	if !phoneRe.MatchString(s) {
		return false
	}
	n := len(normalisePhone(s))
	return n >= 7 && n <= 15
}

// Redact replaces every e-mail address and phone number inside free text
// (error messages from Twilio, for example) with its pseudonym.
func (p *Pseudonymizer) Redact(text string) string {
	text = emailInText.ReplaceAllStringFunc(text, p.Email)
	return phoneInText.ReplaceAllStringFunc(text, func(m string) string {
		if n := len(normalisePhone(m)); n < 7 || n > 15 {
			return m
		}
		return p.Phone(m)
	})
}

// PhoneField, EmailField and AddressField are zap fields that carry only
// the pseudonym, so a log call cannot forget to pseudonymise.
func (p *Pseudonymizer) PhoneField(key, raw string) zap.Field {
	return zap.String(key, p.Phone(raw))
}

// EmailField: see PhoneField.
func (p *Pseudonymizer) EmailField(key, raw string) zap.Field {
	return zap.String(key, p.Email(raw))
}

// AddressField: see PhoneField.
func (p *Pseudonymizer) AddressField(key, raw string) zap.Field {
	return zap.String(key, p.Address(raw))
}

// BodyField logs a message body's pseudonym and length, never its text.
func (p *Pseudonymizer) BodyField(key, raw string) zap.Field {
	return zap.String(key, p.Body(raw))
}

func normalisePhone(s string) string {
	var b strings.Builder
	for _, r := range s {
		if unicode.IsDigit(r) {
			b.WriteRune(r)
		}
	}
	return b.String()
}
