package readmodel

import (
	"fmt"
	"testing"
)

// The filter never forgets a view it was given, tells the kinds apart, and
// answers "never written" for almost every other view, even past the
// number of views it was sized for.
func TestWrittenFilter(t *testing.T) {
	cases := []struct {
		name          string
		expected, add int
		maxFalse      float64 // share of absent views it may claim
	}{
		{"sized", 50_000, 50_000, 0.02},
		{"half full", 50_000, 25_000, 0.005},
		{"over-full", 10_000, 40_000, 0.5},
		{"tiny", 0, 100, 0.001},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newWrittenFilter(uint64(c.expected))
			for i := range c.add {
				f.add(writtenConversation, fmt.Sprintf("CH%032x", i))
			}
			for i := range c.add {
				if !f.mayHave(writtenConversation, fmt.Sprintf("CH%032x", i)) {
					t.Fatalf("view %d was added and is not there", i)
				}
			}
			const probes = 100_000
			falses, otherKind := 0, 0
			for i := range probes {
				if f.mayHave(writtenConversation, fmt.Sprintf("CH%032x", c.add+i)) {
					falses++
				}
				if i < c.add && f.mayHave(writtenTask, fmt.Sprintf("CH%032x", i)) {
					otherKind++
				}
			}
			if share := float64(falses) / probes; share > c.maxFalse {
				t.Errorf("%.3f of absent views reported as written, want ≤ %.3f", share, c.maxFalse)
			}
			if n := min(c.add, probes); n > 0 && float64(otherKind)/float64(n) > max(c.maxFalse, 0.001) {
				t.Errorf("%d of %d conversations reported as tasks", otherKind, n)
			}
		})
	}
}
