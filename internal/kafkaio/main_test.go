package kafkaio_test

import (
	"testing"

	"go.uber.org/goleak"
)

// Producers, consumers and the embedded broker must release every
// goroutine when closed; the suite creates and closes dozens.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
