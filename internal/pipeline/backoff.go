package pipeline

import (
	"math/rand/v2"
	"time"
)

// Backoff is the wait before retry number attempt (1-based): base doubled
// per attempt up to limit, with jitter over its upper half so that many
// retrying workers spread out instead of retrying in step.
func Backoff(attempt int, base, limit time.Duration) time.Duration {
	d := base
	for i := 1; i < attempt && d < limit; i++ {
		d *= 2
	}
	d = min(d, limit)
	if d <= 1 {
		return d
	}
	return d/2 + time.Duration(rand.Int64N(int64(d/2)))
}
