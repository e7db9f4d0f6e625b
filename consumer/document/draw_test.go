package document

import (
	"strconv"
	"testing"
)

// TestAppendNum: PDF numbers with at most three decimals, no exponent,
// no trailing zeros, matching strconv's rounding.
func TestAppendNum(t *testing.T) {
	for v, want := range map[float64]string{
		0: "0", 1: "1", -1: "-1", 0.5: "0.5", 12.3456: "12.346", -0.0004: "0", -0.25: "-0.25",
		595.2756: "595.276", 1e-9: "0", 100.1: "100.1", 2.005: "2.005", 841.89: "841.89",
	} {
		if got := string(appendNum(nil, v)); got != want {
			t.Errorf("appendNum(%v) = %q, want %q", v, got, want)
		}
	}
	for i := -5000; i <= 5000; i++ {
		v := float64(i) * 0.0137
		got, _ := strconv.ParseFloat(string(appendNum(nil, v)), 64)
		if d := got - v; d > 0.0005+1e-9 || d < -0.0005-1e-9 {
			t.Fatalf("appendNum(%v) = %v", v, got)
		}
	}
}
