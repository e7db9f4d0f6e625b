package control

import (
	"log/slog"
	"sync"
	"time"
)

// denyLog logs refused calls at a bounded rate: the first refusal of a
// quiet period is logged at once; refusals that follow within the interval
// are counted and logged as one line when it ends, carrying the count and
// the last refusal's method, peer and reason. A flood of refused calls
// thus costs a handful of log lines, and the counts of the lines add up to
// the number of refused calls (close logs what is still counted).
type denyLog struct {
	log      *slog.Logger
	interval time.Duration

	mu                   sync.Mutex
	count                int
	method, peer, reason string
	last                 time.Time   // when a line was last written
	timer                *time.Timer // pending flush, if any
	closed               bool
}

func newDenyLog(log *slog.Logger, interval time.Duration) *denyLog {
	return &denyLog{log: log, interval: interval}
}

func (d *denyLog) add(method, peer, reason string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.count++
	d.method, d.peer, d.reason = method, peer, reason
	now := time.Now()
	switch {
	case d.closed || now.Sub(d.last) >= d.interval:
		d.emitLocked(now)
	case d.timer == nil:
		d.timer = time.AfterFunc(d.interval-now.Sub(d.last), d.flush)
	}
}

func (d *denyLog) flush() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.timer = nil
	if d.count > 0 {
		d.emitLocked(time.Now())
	}
}

// close logs what is counted and stops the pending flush; refusals after
// close are logged one line each.
func (d *denyLog) close() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.closed = true
	if d.timer != nil {
		d.timer.Stop()
		d.timer = nil
	}
	if d.count > 0 {
		d.emitLocked(time.Now())
	}
}

func (d *denyLog) emitLocked(now time.Time) {
	d.log.Warn("control calls denied", "count", d.count, "method", d.method, "peer", d.peer, "reason", d.reason, "per", d.interval)
	d.count = 0
	d.last = now
}
