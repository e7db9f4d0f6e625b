package metrics

import (
	"time"

	"github.com/certd-dev/certd/internal/worker"
)

// Metrics is the worker pool's metrics seam: deliveries under way are
// counted as jobs in flight.
var _ worker.Metrics = (*Metrics)(nil)

// Started counts a delivery of source as in flight (worker.Metrics).
func (m *Metrics) Started(source string) {
	if m != nil {
		m.inFlight.Inc()
	}
}

// Settled ends the count that Started began (worker.Metrics).
func (m *Metrics) Settled(source string, outcome worker.Outcome, took time.Duration) {
	if m != nil {
		m.inFlight.Dec()
	}
}
