package pipeline

import (
	"testing"
	"time"
)

func TestBackoffGrowsWithinBounds(t *testing.T) {
	for attempt := 1; attempt <= 20; attempt++ {
		want := min(time.Second<<(attempt-1), time.Minute)
		for i := 0; i < 50; i++ {
			d := Backoff(attempt, time.Second, time.Minute)
			if d < want/2 || d > want {
				t.Fatalf("attempt %d: %v, want within [%v, %v]", attempt, d, want/2, want)
			}
		}
	}
}
