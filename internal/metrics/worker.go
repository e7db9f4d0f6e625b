package metrics

import (
	"strings"
	"time"

	"github.com/certd-dev/certd/internal/worker"
)

// Metrics is the worker pool's metrics seam: deliveries of jobs under way
// are counted as jobs in flight. The bridge's relay pools report to the
// same seam (in certd all, to the same Metrics); their deliveries are
// answers being posted, not jobs, and are not counted.
var _ worker.Metrics = (*Metrics)(nil)

// jobSource reports whether a pool source is a job consumer ("job-<action>",
// as pipeline.ConsumerName names them).
func jobSource(source string) bool { return strings.HasPrefix(source, "job-") }

// Started counts a delivery of a job source as in flight (worker.Metrics).
func (m *Metrics) Started(source string) {
	if m != nil && jobSource(source) {
		m.inFlight.Inc()
	}
}

// Settled ends the count that Started began (worker.Metrics).
func (m *Metrics) Settled(source string, outcome worker.Outcome, took time.Duration) {
	if m != nil && jobSource(source) {
		m.inFlight.Dec()
	}
}
