package consumer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/certd-dev/certd/internal/pipeline"
	certdv1 "github.com/certd-dev/certd/proto/certd/v1"
)

// JobHandler does the work of one job; *Handler is the real one.
type JobHandler interface {
	Handle(ctx context.Context, job *certdv1.Job) (*certdv1.Result, error)
}

// Consumer pulls jobs of every action from JetStream and runs them.
type Consumer struct {
	p            *pipeline.Pipeline
	h            JobHandler
	log          *slog.Logger
	workers      int
	maxAttempts  int
	retryBase    time.Duration
	drainTimeout time.Duration
	worker       *certdv1.Worker

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
	return c
}

// Run serves jobs until ctx ends. It then stops taking jobs, finishes the
// ones it holds and returns.
func (c *Consumer) Run(ctx context.Context) error {
	var its []jetstream.MessagesContext
	stopAll := func() {
		for _, it := range its {
			it.Stop()
		}
	}
	for _, a := range pipeline.Actions {
		cons, err := c.p.JS.Consumer(ctx, pipeline.JobsStream, pipeline.ConsumerName(a))
		if err != nil {
			stopAll()
			return fmt.Errorf("bind consumer %s: %w", pipeline.ConsumerName(a), err)
		}
		it, err := cons.Messages(jetstream.PullMaxMessages(1))
		if err != nil {
			stopAll()
			return fmt.Errorf("consume %s: %w", pipeline.ConsumerName(a), err)
		}
		its = append(its, it)
	}
	c.log.Info("consumer started", "workers", c.workers, "region", c.worker.Region)

	// One slot per worker, shared by the three actions. A loop takes a
	// message first and then waits for a slot (holding at most one message
	// unstarted, kept alive meanwhile): taking the slot first would let the
	// idle actions' loops hold every slot while waiting for messages.
	slots := make(chan struct{}, c.workers)
	var jobs sync.WaitGroup
	var loops sync.WaitGroup
	// In-flight jobs finish after ctx ends, but not for longer than the
	// drain timeout: a job cut off then is redelivered elsewhere.
	workCtx, cancelWork := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelWork()
	stopDrainTimer := context.AfterFunc(ctx, func() { time.AfterFunc(c.drainTimeout, cancelWork) })
	defer stopDrainTimer()
	for _, it := range its {
		loops.Add(1)
		go func() {
			defer loops.Done()
			for {
				msg, err := it.Next(jetstream.NextContext(ctx))
				if err != nil {
					if ctx.Err() != nil || errors.Is(err, jetstream.ErrMsgIteratorClosed) {
						return
					}
					c.log.Warn("receive failed", "err", err)
					select { // do not spin on a broken connection
					case <-ctx.Done():
						return
					case <-time.After(time.Second):
					}
					continue
				}
				alive := pipeline.KeepAlive(workCtx, msg, c.p.Opts.AckWait/3)
				select {
				case slots <- struct{}{}:
				case <-ctx.Done():
					alive()
					_ = msg.Nak() // not started: let another worker have it now
					return
				}
				jobs.Add(1)
				go func() {
					defer jobs.Done()
					defer func() { <-slots }()
					c.process(workCtx, msg, alive)
				}()
			}
		}()
	}
	hbCtx, stopHB := context.WithCancel(context.WithoutCancel(ctx))
	hbDone := make(chan struct{})
	go func() {
		defer close(hbDone)
		c.p.Heartbeat(hbCtx, c.worker, c.counts.Fill, c.log)
	}()

	loops.Wait()
	stopAll() // prefetched, unstarted messages are redelivered elsewhere
	jobs.Wait()
	stopHB()
	<-hbDone
	c.log.Info("consumer stopped")
	return nil
}

var errSkip = errors.New("skip")

// process runs one delivery of a job: record, work, publish, ack.
// alive stops the keep-alive of the message; process calls it once the
// outcome is published.
func (c *Consumer) process(ctx context.Context, msg jetstream.Msg, alive func()) {
	var once sync.Once
	stop := func() { once.Do(alive) }
	defer stop()
	job := &certdv1.Job{}
	if err := proto.Unmarshal(msg.Data(), job); err != nil || job.Id == "" {
		c.log.Error("undecodable job dropped", "subject", msg.Subject(), "err", err)
		_ = msg.TermWithReason("undecodable job")
		return
	}
	log := c.log.With("job", job.Id)

	// Record the attempt; skip deliveries that are stale or already done.
	// Attempts are counted here, when work starts, not from JetStream's
	// delivery count, which also counts deliveries that never ran (a nak at
	// shutdown, a prefetched message redelivered).
	var attempt int
	_, err := c.p.Records.Update(ctx, job.Id, func(r *certdv1.JobRecord) error {
		if r.Generation > job.Generation {
			return errSkip
		}
		switch r.State {
		case certdv1.JobState_JOB_STATE_RESULT_READY, certdv1.JobState_JOB_STATE_ANSWERED,
			certdv1.JobState_JOB_STATE_ANSWER_UNKNOWN, certdv1.JobState_JOB_STATE_DEAD:
			if r.Generation == job.Generation {
				return errSkip // result published before a crash, or held
			}
		}
		r.Attempts++
		attempt = int(r.Attempts)
		r.Worker, r.Region = c.worker.Id, c.worker.Region
		c.p.Records.Transition(r, certdv1.JobState_JOB_STATE_RUNNING, fmt.Sprintf("attempt %d", attempt), c.worker.Id, c.worker.Region)
		return nil
	})
	switch {
	case errors.Is(err, errSkip):
		log.Debug("delivery skipped: stale or already done")
		_ = msg.Ack()
		return
	case errors.Is(err, pipeline.ErrNotFound):
		log.Error("job without record dropped")
		_ = msg.TermWithReason("no job record")
		return
	case err != nil:
		log.Warn("record attempt failed", "err", err)
		_ = msg.NakWithDelay(c.retryBase)
		return
	}
	if attempt > c.maxAttempts {
		// Delivered again after the last attempt (a worker died while
		// holding it): hold it without running it once more.
		c.dead(ctx, msg, job, fmt.Errorf("worker lost the job %d times", attempt-1))
		return
	}

	c.counts.Add(1, 0, 0)
	o, err := run(ctx, c.h, job)
	res := o.Result
	if err == nil {
		res.Worker, res.Region = c.worker.Id, c.worker.Region
		err = c.p.PublishResult(ctx, job.Source, res)
	}
	stop()
	c.counts.Add(-1, 0, 0)

	if err != nil {
		c.counts.Add(0, 0, 1)
		if attempt >= c.maxAttempts {
			c.dead(ctx, msg, job, err)
			return
		}
		delay := pipeline.Backoff(attempt, c.retryBase, 5*time.Minute)
		log.Warn("job failed; will retry", "attempt", attempt, "retry_in", delay.Round(time.Millisecond), "err", err)
		_ = c.mark(ctx, job.Id, certdv1.JobState_JOB_STATE_RETRYING, err.Error(), false)
		_ = msg.NakWithDelay(delay)
		return
	}
	c.counts.Add(0, 1, 0)
	if res.Ok {
		log.Info("job done", "attempt", attempt)
	} else {
		log.Info("job answered with error", "reason", res.ErrorReason)
	}
	// The relay may already have moved the record on; only a RUNNING record
	// becomes RESULT_READY here.
	_, _ = c.p.Records.Update(ctx, job.Id, func(r *certdv1.JobRecord) error {
		if r.Generation != job.Generation {
			return pipeline.ErrNoChange
		}
		if r.State != certdv1.JobState_JOB_STATE_RUNNING {
			// Keep the design decision on the record all the same.
			if r.Design == o.Design && r.DesignNote == o.DesignNote {
				return pipeline.ErrNoChange
			}
			r.Design, r.DesignNote = o.Design, o.DesignNote
			return nil
		}
		r.LastError = res.ErrorReason
		r.Design, r.DesignNote = o.Design, o.DesignNote
		note := res.ErrorReason
		if note == "" {
			note = o.DesignNote // a design fallback shows in the history
		}
		c.p.Records.Transition(r, certdv1.JobState_JOB_STATE_RESULT_READY, note, c.worker.Id, c.worker.Region)
		return nil
	})
	if err := msg.DoubleAck(ctx); err != nil {
		log.Warn("ack failed; the redelivery will be skipped", "err", err)
	}
}

// dead marks a job dead and held, and only then removes it from the
// stream: a job whose record could not be marked stays in the stream.
func (c *Consumer) dead(ctx context.Context, msg jetstream.Msg, job *certdv1.Job, cause error) {
	if err := c.mark(ctx, job.Id, certdv1.JobState_JOB_STATE_DEAD, cause.Error(), true); err != nil {
		_ = msg.NakWithDelay(c.retryBase)
		return
	}
	c.log.Error("job dead after its last attempt; held for an operator", "job", job.Id, "err", cause)
	_ = msg.TermWithReason("dead: " + cause.Error())
}

func (c *Consumer) mark(ctx context.Context, id string, state certdv1.JobState, note string, dead bool) error {
	_, err := c.p.Records.Update(ctx, id, func(r *certdv1.JobRecord) error {
		r.LastError = note
		if dead {
			r.DeadAt = timestamppb.Now()
		}
		c.p.Records.Transition(r, state, note, c.worker.Id, c.worker.Region)
		return nil
	})
	if err != nil {
		c.log.Warn("record state failed", "job", id, "state", state.String(), "err", err)
	}
	return err
}
