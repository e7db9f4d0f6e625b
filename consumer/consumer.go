package consumer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/certd-dev/certd/consumer/courses"
	"github.com/certd-dev/certd/consumer/document"
	"github.com/certd-dev/certd/consumer/pages"
	"github.com/certd-dev/certd/consumer/signing"
	"github.com/certd-dev/certd/consumer/storage"
	"github.com/certd-dev/certd/internal/failure"
	"github.com/certd-dev/certd/internal/lms"
	"github.com/certd-dev/certd/internal/pipeline"
	"github.com/certd-dev/certd/internal/worker"
	certdv1 "github.com/certd-dev/certd/proto/certd/v1"
)

// JobHandler does the work of one job; *Handler is the real one.
type JobHandler interface {
	Handle(ctx context.Context, job *certdv1.Job) (*certdv1.Result, error)
}

// Consumer pulls jobs of every action from JetStream and runs them on a
// worker.Pool. It never writes a job's state itself: every change goes
// through pipeline.Lifecycle (start, finish, retry, hold), which records
// before it publishes. Every failure of the handler is mapped to a kind by
// Classify alone: Invalid is answered with an error now, Held waits for an
// operator, Transient is retried with backoff and held after the last
// attempt. A panic in the handler is a Transient failure of that job.
type Consumer struct {
	p            *pipeline.Pipeline
	h            JobHandler
	log          *slog.Logger
	workers      int
	maxAttempts  int
	retryBase    time.Duration
	drainTimeout time.Duration
	worker       *certdv1.Worker
	metrics      worker.Metrics
	life         *pipeline.Lifecycle

	counts pipeline.Counters
}

// Option configures a Consumer.
type Option func(*Consumer)

// WithWorkers sets how many jobs run at once in this process (default 2).
func WithWorkers(n int) Option { return func(c *Consumer) { c.workers = max(n, 1) } }

// WithMaxAttempts sets how many times a job is tried before it is marked
// dead and held (default 5).
func WithMaxAttempts(n int) Option { return func(c *Consumer) { c.maxAttempts = max(n, 1) } }

// WithRetryDelay sets the first retry delay after a transient failure; it
// doubles each attempt, with jitter, up to 5 minutes (default 2 s).
func WithRetryDelay(d time.Duration) Option { return func(c *Consumer) { c.retryBase = d } }

// WithRegion names the region this consumer runs in; it is recorded on the
// jobs it runs and in its heartbeat.
func WithRegion(r string) Option {
	return func(c *Consumer) { c.worker = pipeline.NewWorker("consumer", r) }
}

// WithLogger sets the logger.
func WithLogger(l *slog.Logger) Option { return func(c *Consumer) { c.log = l } }

// WithDrainTimeout bounds how long jobs under way may run on after Run's
// context ends (default 1 minute); jobs still running then are cancelled
// and redelivered elsewhere.
func WithDrainTimeout(d time.Duration) Option { return func(c *Consumer) { c.drainTimeout = d } }

// WithMetrics sets where the pool reports each job's delivery and
// outcome (the metrics seam of internal/worker).
func WithMetrics(m worker.Metrics) Option { return func(c *Consumer) { c.metrics = m } }

// New returns a consumer running h over the pipeline.
func New(p *pipeline.Pipeline, h JobHandler, opts ...Option) *Consumer {
	c := &Consumer{
		p: p, h: h, log: slog.Default(), workers: 2, maxAttempts: 5, retryBase: 2 * time.Second, drainTimeout: time.Minute,
		worker: pipeline.NewWorker("consumer", ""),
	}
	for _, o := range opts {
		o(c)
	}
	c.log = c.log.With("component", "consumer", "worker", c.worker.Id)
	c.life = p.Lifecycle(c.worker.Id, c.worker.Region)
	return c
}

// Run serves jobs until ctx ends. It then stops taking jobs, finishes the
// ones it holds (for at most the drain timeout) and returns. It returns an
// error if a job consumer goes away while it runs.
func (c *Consumer) Run(ctx context.Context) error {
	var sources []worker.Source
	for _, a := range pipeline.Actions {
		cons, err := c.p.JobMessages(ctx, a)
		if err != nil {
			return err
		}
		sources = append(sources, worker.Source{Name: pipeline.ConsumerName(a), Consumer: cons, Handle: c.handle, Pull: c.p.Opts.JobPullOpts(c.worker.Region)})
	}
	pool := worker.New(worker.Config{
		Workers: c.workers, AckWait: c.p.AckWait(), DrainTimeout: c.drainTimeout,
		RetryBase: c.retryBase, RetryLimit: maxRetryDelay, Log: c.log, Metrics: c.metrics,
	})
	c.log.Info("consumer started", "workers", c.workers, "region", c.worker.Region)

	hbCtx, stopHB := context.WithCancel(context.WithoutCancel(ctx))
	hbDone := make(chan struct{})
	go func() {
		defer close(hbDone)
		c.p.Heartbeat(hbCtx, c.worker, c.counts.Fill, c.log)
	}()
	err := pool.Run(ctx, sources...)
	stopHB()
	<-hbDone
	c.log.Info("consumer stopped", "err", err)
	return err
}

// maxRetryDelay caps the backoff between attempts of a job.
const maxRetryDelay = 5 * time.Minute

// handle runs one delivery of a job: start the attempt, work, then record
// the outcome through the lifecycle (which records before it publishes).
// What it returns settles the message (see worker.Handler).
func (c *Consumer) handle(ctx context.Context, d *worker.Delivery) error {
	job := &certdv1.Job{}
	if err := proto.Unmarshal(d.Msg.Data(), job); err != nil || job.Id == "" {
		return worker.Drop(fmt.Sprintf("undecodable job on %s: %v", d.Msg.Subject(), err))
	}
	d.Annotate("job", job.Id, "region", c.worker.Region)

	// Attempts are counted in the record when work starts, not from
	// JetStream's delivery count, which also counts deliveries that never
	// ran (a nak at shutdown, a prefetched message redelivered).
	a, err := c.life.Start(ctx, job, d.Delivered)
	switch {
	case errors.Is(err, pipeline.ErrStale):
		d.Log.Debug("delivery skipped: an older generation")
		return nil
	case errors.Is(err, pipeline.ErrDone):
		// Answered before a crash, or held. A RESULT_READY record may have
		// lost its result message: send it again (deduplicated).
		if err := c.life.Resend(ctx, a.Record); err != nil {
			d.Log.Warn("sending the stored result again failed", "err", err)
			return worker.RetryAfter(c.retryBase, err)
		}
		d.Log.Debug("delivery skipped: already answered or held")
		return nil
	case errors.Is(err, pipeline.ErrNotFound):
		return worker.Drop("no job record")
	case err != nil:
		d.Log.Warn("record attempt failed", "err", err)
		return worker.RetryAfter(c.retryBase, err)
	}
	d.Annotate("attempt", a.N)
	if a.N > c.maxAttempts {
		// Delivered again after the last attempt (a worker died while
		// holding it): hold it without running it once more.
		return c.hold(ctx, d, a, fmt.Errorf("worker lost the job %d times", a.N-1))
	}

	c.counts.Add(1, 0, 0)
	var res *certdv1.Result
	err = worker.Safely(d.Log, func() (err error) {
		res, err = c.h.Handle(ctx, job)
		return err
	})
	c.counts.Add(-1, 0, 0)

	if err != nil {
		switch Classify(err) {
		case failure.Invalid:
			reason := err.Error()
			res = &certdv1.Result{JobId: job.Id, Ok: false, ErrorReason: reason,
				Answer: lms.ErrorAnswer(a.Record.Username, a.Record.CourseId, reason)}
		case failure.Held:
			c.counts.Add(0, 0, 1)
			return c.hold(ctx, d, a, err)
		default:
			c.counts.Add(0, 0, 1)
			if a.N >= c.maxAttempts {
				return c.hold(ctx, d, a, err)
			}
			delay := pipeline.Backoff(a.N, c.retryBase, maxRetryDelay)
			d.Log.Warn("job failed; will retry", "retry_in", delay.Round(time.Millisecond), "err", err)
			c.jobMetrics().Retry(actionLabel(job.Action))
			if rerr := c.life.Retry(ctx, a, err); rerr != nil {
				d.Log.Warn("record retry failed", "err", rerr)
			}
			return worker.RetryAfter(delay, err)
		}
	}
	c.counts.Add(0, 1, 0)
	res.Generation = job.Generation
	if _, err := c.life.Finish(ctx, a, res); err != nil {
		if errors.Is(err, pipeline.ErrTransition) || errors.Is(err, pipeline.ErrStale) {
			// Answered meanwhile by another delivery, or requeued.
			d.Log.Info("answer not stored: the job moved on", "err", err)
			return nil
		}
		// If the answer was stored but not published, the redelivery
		// finds it RESULT_READY and sends it.
		d.Log.Warn("recording the answer failed; will retry", "err", err)
		return worker.RetryAfter(c.retryBase, err)
	}
	action, source := jobLabels(job.Action, job.Source)
	c.jobMetrics().JobDone(action, source, map[bool]string{true: "ok", false: "error"}[res.Ok])
	if res.Ok {
		d.Log.Info("job done")
	} else {
		d.Log.Info("job answered with error", "reason", res.ErrorReason)
	}
	return nil
}

// hold marks a job dead and held, and only then removes it from the
// stream: a job whose record could not be marked stays in the stream.
func (c *Consumer) hold(ctx context.Context, d *worker.Delivery, a *pipeline.Attempt, cause error) error {
	if err := c.life.Hold(ctx, a, cause); err != nil {
		d.Log.Warn("record hold failed", "err", err)
		return worker.RetryAfter(c.retryBase, err)
	}
	d.Log.Error("job held for an operator", "err", cause)
	action, source := jobLabels(a.Record.Action, a.Record.Source)
	c.jobMetrics().Dead(action)
	c.jobMetrics().JobDone(action, source, "held")
	return worker.Drop("held: " + cause.Error())
}

// Classify is the one place that decides what a failed job step means
// (see internal/failure): it maps the errors of the handler and of the
// packages below it to a kind. An explicit kind (failure.E) wins; then the
// leaf packages' sentinels; anything else is Transient.
//
//   - Invalid: the job's own data cannot be drawn or resolved: answered
//     with an error now.
//   - Held: the signing key or the storage layout is broken: retrying
//     cannot help and it is not the job's fault; an operator must look.
//   - Transient: everything else (storage or NATS trouble, a panic).
func Classify(err error) failure.Kind {
	var fe *failure.Error
	var perm *PermanentError
	switch {
	case err == nil:
		return failure.Transient
	case errors.As(err, &fe):
		return fe.Kind
	case errors.As(err, &perm),
		errors.Is(err, document.ErrUnknownDesign), errors.Is(err, document.ErrUnrenderable),
		errors.Is(err, document.ErrTextTooLong), errors.Is(err, pages.ErrInvalid), errors.Is(err, pages.ErrNoLinks),
		errors.Is(err, courses.ErrInvalidCourseID), errors.Is(err, courses.ErrInvalidDate):
		return failure.Invalid
	case errors.Is(err, storage.ErrInvalidKey),
		errors.Is(err, signing.ErrKeyExpired), errors.Is(err, signing.ErrKeyRevoked),
		errors.Is(err, signing.ErrNoSigningKey), errors.Is(err, signing.ErrNotPrivateKey), errors.Is(err, signing.ErrPassphrase):
		return failure.Held
	}
	return failure.Transient
}
