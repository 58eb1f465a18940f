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
	"strconv"
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
	if raw == "" || IsPseudonym(raw) {
		// A pseudonym is no PII, and pseudonymising it again would make
		// one customer two (re-driven records carry pseudonyms).
		return raw
	}
	prefix, rest := "", raw
	if i := strings.IndexByte(raw, ':'); i > 0 && channelPrefix.MatchString(raw[:i]) {
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

	// The pseudonyms this package makes, alone (after an optional channel
	// prefix such as "whatsapp:") or inside text.
	pseudonym   = `(ph):[0-9a-f]{20}:[0-9]{0,2}|(em):[0-9a-f]{20}|(id):[0-9a-f]{20}|(msg):[0-9a-f]{20}:len=([0-9]+)`
	pseudonymRe = regexp.MustCompile(`^(?:[a-z][a-z0-9_-]*:)?(?:` + pseudonym + `)$`)
	// Kept as they are inside free text: pseudonyms, whose hex digits can
	// look like a phone number, and Twilio SIDs, for the same reason.
	keptInText = regexp.MustCompile(`(?:` + pseudonym + `|[A-Z]{2}[0-9a-fA-F]{32})`)
	// A channel's name before the address ("whatsapp:", "messenger:").
	channelPrefix = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_-]{0,31}$`)
)

// IsPseudonym reports whether s is a pseudonym this package made (with an
// optional channel prefix, as Address keeps it).
func IsPseudonym(s string) bool {
	_, ok := PseudonymKind(s)
	return ok
}

// PseudonymKind is the kind (KindPhone, KindEmail, KindOther, KindBody) of
// the pseudonym s, if s is one.
func PseudonymKind(s string) (string, bool) {
	if len(s) < 23 || !strings.Contains(s, ":") {
		return "", false
	}
	m := pseudonymRe.FindStringSubmatch(s)
	if m == nil {
		return "", false
	}
	for _, k := range m[1:5] {
		if k != "" {
			return k, true
		}
	}
	return "", false
}

// BodyLength is the length, in runes, of the message text whose pseudonym
// (Body) s is.
func BodyLength(s string) (int, bool) {
	if !strings.HasPrefix(s, KindBody+":") {
		return 0, false
	}
	m := pseudonymRe.FindStringSubmatch(s)
	if m == nil || m[4] == "" {
		return 0, false
	}
	n, err := strconv.Atoi(m[5])
	return n, err == nil
}

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
// (error messages from Twilio, for example) with its pseudonym. Pseudonyms
// and Twilio SIDs in the text are kept: their hex digits can look like a
// phone number.
func (p *Pseudonymizer) Redact(text string) string {
	locs := keptInText.FindAllStringIndex(text, -1)
	if locs == nil {
		return p.redact(text)
	}
	var b strings.Builder
	last := 0
	for _, l := range locs {
		b.WriteString(p.redact(text[last:l[0]]))
		b.WriteString(text[l[0]:l[1]])
		last = l[1]
	}
	b.WriteString(p.redact(text[last:]))
	return b.String()
}

func (p *Pseudonymizer) redact(text string) string {
	if text == "" {
		return ""
	}
	text = emailInText.ReplaceAllStringFunc(text, p.Email)
	locs := phoneInText.FindAllStringIndex(text, -1)
	if locs == nil {
		return text
	}
	var b strings.Builder
	last := 0
	for _, l := range locs {
		m := text[l[0]:l[1]]
		// Digits glued to letters are part of a word (an id, a hex
		// string), not a phone number someone typed.
		if n := len(normalisePhone(m)); n < 7 || n > 15 || (l[0] > 0 && isAlnum(text[l[0]-1])) || (l[1] < len(text) && isAlnum(text[l[1]])) {
			continue
		}
		b.WriteString(text[last:l[0]])
		b.WriteString(p.Phone(m))
		last = l[1]
	}
	b.WriteString(text[last:])
	return b.String()
}

func isAlnum(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z'
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
