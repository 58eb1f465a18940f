package benchkit

import (
	"testing"
	"time"
)

func TestQuantileAndMedian(t *testing.T) {
	d := []time.Duration{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}
	for q, want := range map[float64]time.Duration{0: 1, 0.5: 5, 0.9: 9, 0.99: 10, 1: 10} {
		if got := Quantile(d, q); got != want {
			t.Errorf("Quantile(%v) = %v, want %v", q, got, want)
		}
	}
	if Quantile(nil, 0.5) != 0 {
		t.Error("Quantile of nothing")
	}
	if got := MedianFloat([]float64{3, 1, 2}); got != 2 {
		t.Errorf("MedianFloat = %v", got)
	}
	if got := MedianFloat([]float64{4, 1, 3, 2}); got != 3 {
		t.Errorf("MedianFloat of an even count = %v, want the upper one", got)
	}
}
