// Package bridge connects xqueue to the pipeline: it pulls certificate jobs
// from xqueue into JetStream (intake) and posts each job's result back
// exactly once (relay).
//
// One puller per queue: xqueue's get_submission is not atomic, so the
// intake pulls one submission at a time and only while it holds the
// queue's intake lock (package intakelock), which makes that hold across
// every bridge. Throughput comes from pipelining instead: a bounded accept
// stage records and publishes pulled submissions while the next
// get_submission is in flight, and every offer of one submission goes to
// the same accept worker, in pull order, so the newest key wins. It also relays the results of jobs submitted
// through the control service to their callback URLs, and answers jobs that
// were held dead longer than the grace period.
//
// Exactly once, concretely: a submission is recorded in the job records
// bucket under its submission_id before it is published
// (pipeline.Lifecycle.Submit), so a re-offer by xqueue (after a lease, or
// from a racing worker) only refreshes the stored key. A relay claims the
// post in the record (posting_key), posts the answer stored in the record
// with the newest key and records the outcome before it acks, so a
// redelivered result is recognised and not posted again. The bridge never
// sets a state itself: every change is a Lifecycle event.
//
// Parts: the two relays (each a worker.Pool over its durable consumer),
// the intake (which holds the intake lock), the reaper and the heartbeat
// run in one supervise group. A part that stops stops the bridge: Run
// returns an error naming it, and the process exits.
package bridge

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/certd-dev/certd/bridge/xqueue"
	"github.com/certd-dev/certd/internal/intakelock"
	"github.com/certd-dev/certd/internal/lms"
	"github.com/certd-dev/certd/internal/pipeline"
	"github.com/certd-dev/certd/internal/supervise"
	"github.com/certd-dev/certd/internal/worker"
	certdv1 "github.com/certd-dev/certd/proto/certd/v1"
)

// XQueue is the part of the xqueue client the bridge uses.
type XQueue interface {
	QueueLength(ctx context.Context) (int, error)
	Pull(ctx context.Context) (*xqueue.Submission, error)
	PutResult(ctx context.Context, h xqueue.Header, body []byte) error
}

// Bridge pulls jobs from xqueue and relays results back. Create it with New
// and start it with Run.
type Bridge struct {
	p   *pipeline.Pipeline
	xq  XQueue
	log *slog.Logger

	pollInterval   time.Duration
	lockTTL        time.Duration
	noLock         bool          // tests only: pull without the intake lock
	checkEvery     time.Duration // tests only: how often the relays look their consumers up
	holderID       string        // worker id plus a per-instance suffix
	maxPending     uint64
	lease          time.Duration
	holdGrace      time.Duration
	reapInterval   time.Duration
	relayWorkers   int
	callbackClient *http.Client
	// Submit callbacks: per-attempt timeout, attempts before the job is
	// held dead, first retry delay, per-host concurrency.
	callbackTimeout  time.Duration
	callbackAttempts int
	callbackBackoff  time.Duration
	hosts            *hostLimiter
	attempts         *attemptCounter
	worker           *certdv1.Worker

	life    *pipeline.Lifecycle
	metrics worker.Metrics // nil: none
	gauges  Metrics        // never nil: noMetrics when metrics has none

	rate   *rateMeter
	counts pipeline.Counters
}

// Option configures a Bridge.
type Option func(*Bridge)

// WithXQueue sets the xqueue client. Without one the bridge only relays the
// results of submitted jobs.
func WithXQueue(xq XQueue) Option { return func(b *Bridge) { b.xq = xq } }

// WithLogger sets the logger.
func WithLogger(l *slog.Logger) Option { return func(b *Bridge) { b.log = l } }

// WithPollInterval sets how long the bridge waits between polls of an idle
// queue (default 1 s).
func WithPollInterval(d time.Duration) Option { return func(b *Bridge) { b.pollInterval = d } }

// WithIntakeLockTTL sets how long the intake lock outlives its holder's
// last renewal (default 15 s): a bridge that crashes while pulling is
// replaced by a standby after about this long. Renewals run every TTL/3.
func WithIntakeLockTTL(d time.Duration) Option { return func(b *Bridge) { b.lockTTL = d } }

// WithMaxPending caps the jobs accepted and not yet finished. Zero (the
// default) sizes the cap from the measured throughput: what the consumers
// finish within one xqueue lease, and at least 64.
func WithMaxPending(n int) Option { return func(b *Bridge) { b.maxPending = uint64(max(n, 0)) } }

// WithLease tells the bridge xqueue's SUBMISSION_PROCESSING_DELAY (default
// 1 minute), used to size backpressure.
func WithLease(d time.Duration) Option { return func(b *Bridge) { b.lease = d } }

// WithHoldGrace sets how long a dead job is held for an operator before it
// is answered with an error automatically (default 24 h).
func WithHoldGrace(d time.Duration) Option { return func(b *Bridge) { b.holdGrace = d } }

// WithReapInterval sets how often held jobs are checked against the grace
// period (default 1 minute).
func WithReapInterval(d time.Duration) Option { return func(b *Bridge) { b.reapInterval = d } }

// WithCallbackClient sets the HTTP client for Submit callbacks (the default
// refuses non-public addresses and redirects).
func WithCallbackClient(c *http.Client) Option { return func(b *Bridge) { b.callbackClient = c } }

// WithCallbackRetries sets how Submit callbacks are tried: each attempt
// is bounded by timeout (default 10 s), a failed one is retried after
// backoff doubling from first (default 2 s, or the receiver's
// Retry-After), and after attempts failures (default 8) the job is held
// dead with the reason.
func WithCallbackRetries(timeout time.Duration, attempts int, first time.Duration) Option {
	return func(b *Bridge) {
		if timeout > 0 {
			b.callbackTimeout = timeout
		}
		if attempts > 0 {
			b.callbackAttempts = attempts
		}
		if first > 0 {
			b.callbackBackoff = first
		}
	}
}

// WithCallbacksPerHost bounds the Submit callbacks in flight to one
// receiver host (default 2), so that a slow receiver cannot hold every
// relay worker.
func WithCallbacksPerHost(n int) Option {
	return func(b *Bridge) { b.hosts.limit = max(n, 1) }
}

// WithPrivateCallbacks lets Submit callbacks go to loopback and private
// addresses (for callbacks inside a trusted network, and tests).
func WithPrivateCallbacks(allow bool) Option {
	return func(b *Bridge) { b.callbackClient = newCallbackClient(allow) }
}

// WithRegion names the region this bridge runs in (for heartbeats).
func WithRegion(r string) Option {
	return func(b *Bridge) { b.worker = pipeline.NewWorker("bridge", r) }
}

// WithMetrics sets where the relays' worker pools report each result
// message and its outcome (the metrics seam of internal/worker). A value
// that also implements Metrics (internal/metrics does) is given the
// bridge's own gauges and timings too: xqueue queue length, answers
// waiting, intake holder, pull, publish and answer durations.
func WithMetrics(m worker.Metrics) Option { return func(b *Bridge) { b.metrics = m } }

// New returns a bridge over an open pipeline.
func New(p *pipeline.Pipeline, opts ...Option) *Bridge {
	b := &Bridge{
		p:              p,
		log:            slog.Default(),
		pollInterval:   time.Second,
		lockTTL:        intakelock.DefaultTTL,
		lease:          time.Minute,
		holdGrace:      24 * time.Hour,
		reapInterval:   time.Minute,
		relayWorkers:   8,
		callbackClient: newCallbackClient(false),

		callbackTimeout:  10 * time.Second,
		callbackAttempts: 8,
		callbackBackoff:  2 * time.Second,
		hosts:            &hostLimiter{limit: 2, busy: map[string]int{}},
		attempts:         &attemptCounter{n: map[string]int{}},
		worker:           pipeline.NewWorker("bridge", ""),
		rate:             newRateMeter(30),
	}
	for _, o := range opts {
		o(b)
	}
	b.log = b.log.With("component", "bridge")
	b.gauges = noMetrics{}
	if m, ok := b.metrics.(Metrics); ok && m != nil {
		b.gauges = m
	}
	b.holderID = b.worker.Id + "." + lms.NewUUID()[:8]
	b.life = p.Lifecycle(b.worker.Id, b.worker.Region)
	return b
}

// Run pulls and relays until ctx ends, then finishes the posts under way and
// returns nil. Its parts (the relays, the intake with its lock, the reaper
// and the heartbeat) run in one supervise group: a part that stops while
// ctx is live (a relay whose consumer or stream is gone, say) stops the
// whole bridge, and Run returns a *supervise.Stopped naming it.
func (b *Bridge) Run(ctx context.Context) error {
	// Bind everything first, so that a failed start leaves nothing running.
	relaySubmit, err := b.newRelay(ctx, certdv1.Source_SOURCE_SUBMIT, b.relayWorkers, b.relaySubmitted)
	if err != nil {
		return err
	}
	g := supervise.New(ctx)
	g.Add(pipeline.RelaySubmit, relaySubmit)
	if b.xq != nil {
		relayXq, err := b.newRelay(ctx, certdv1.Source_SOURCE_XQUEUE, min(b.relayWorkers, xqueuePosts), b.relayToXqueue)
		if err != nil {
			return err
		}
		g.Add(pipeline.RelayXqueue, relayXq)
		g.Add("intake", b.intake)
	} else {
		b.log.Info("no xqueue configured: intake off, relaying submitted jobs only")
	}
	g.Add("reaper", b.reap)
	if _, none := b.gauges.(noMetrics); !none {
		g.Add("answers-waiting", b.reportWaiting)
	}
	g.Add("heartbeat", func(ctx context.Context) error {
		b.p.Heartbeat(ctx, b.worker, b.counts.Fill, b.log)
		return nil
	})
	err = g.Run()
	var stopped *supervise.Stopped
	if errors.As(err, &stopped) {
		b.log.Error("bridge part stopped; stopping the bridge", "part", stopped.Part, "err", stopped.Err)
	}
	return err
}

// sleep waits for d or the end of ctx; it reports whether ctx is still live.
func sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// rateMeter counts events per second over a sliding window.
type rateMeter struct {
	mu      sync.Mutex
	buckets []int64
	stamps  []int64
}

func newRateMeter(seconds int) *rateMeter {
	return &rateMeter{buckets: make([]int64, seconds), stamps: make([]int64, seconds)}
}

func (r *rateMeter) add(n int64) {
	now := time.Now().Unix()
	i := int(now % int64(len(r.buckets)))
	r.mu.Lock()
	if r.stamps[i] != now {
		r.stamps[i], r.buckets[i] = now, 0
	}
	r.buckets[i] += n
	r.mu.Unlock()
}

// perSecond is the mean rate over the window.
func (r *rateMeter) perSecond() float64 {
	now := time.Now().Unix()
	var sum int64
	r.mu.Lock()
	for i, s := range r.stamps {
		if now-s < int64(len(r.stamps)) {
			sum += r.buckets[i]
		}
	}
	r.mu.Unlock()
	return float64(sum) / float64(len(r.buckets))
}
