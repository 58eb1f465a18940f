package twiliostub

import (
	"crypto/rand"
	"encoding/hex"
)

// newSid returns a Twilio-shaped SID: a two-letter prefix and 32 lowercase
// hex digits, random so SIDs from different stubs never collide.
func newSid(prefix string) string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	return prefix + hex.EncodeToString(b[:])
}
