// Package worker is the one pool that serves certd's JetStream pull
// consumers: the job consumers and, in the bridge, the result relays. It
// owns the pull loops, the bound on work in progress, the keep-alive of
// messages under way, the settling of every message (ack, nak with delay,
// term) and the middleware that wraps every handler: Recover, a
// message-scoped logger and a Metrics seam.
//
// Invariants:
//   - At most Config.Workers handlers run at once, over all sources
//     together; each pull loop holds at most one message that has not
//     started (kept alive meanwhile).
//   - Every message taken is settled exactly once, by the pool, from what
//     its handler returned (see Handler). A handler never acks itself.
//   - A panicking handler never stops the process: Recover turns the panic
//     into a Transient failure for that message (nak with backoff) and logs
//     the stack.
//   - Run returns only after every handler it started has returned. When
//     its context ends it stops pulling, lets handlers under way finish for
//     at most Config.DrainTimeout and then cancels them; unstarted
//     messages are redelivered elsewhere.
//   - A source whose consumer or stream goes away stops Run with an error
//     naming it, so that supervision can stop the process.
package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/certd-dev/certd/internal/failure"
	"github.com/certd-dev/certd/internal/pipeline"
)

// Delivery is one message being handled.
type Delivery struct {
	Msg    jetstream.Msg
	Source string // the name of the Source it came from
	// Delivered is JetStream's delivery count of the message (1 on a first
	// delivery). It also counts deliveries that never ran (a nak at
	// shutdown); callers that count attempts keep their own count.
	Delivered int
	// Log is the message-scoped logger. A handler adds what it learns
	// (job id, attempt, region) with Annotate, so that every later line
	// about this message, including the pool's own, carries it.
	Log *slog.Logger
}

// Annotate adds attributes to every later log line about d.
func (d *Delivery) Annotate(args ...any) { d.Log = d.Log.With(args...) }

type deliveryKey struct{}

// Log is the message-scoped logger of the delivery being handled with ctx
// (with every Annotate made so far), or slog.Default outside a handler.
// Code below a handler (a job handler that knows nothing of JetStream)
// logs through it, so its lines carry the job id too.
func Log(ctx context.Context) *slog.Logger {
	if d, ok := ctx.Value(deliveryKey{}).(*Delivery); ok {
		return d.Log
	}
	return slog.Default()
}

// Handler handles one delivery. What it returns settles the message:
//   - nil: done (double-acked);
//   - an error from Drop: the message can never be handled (termed);
//   - an error from RetryAfter: nak, redelivered after its delay;
//   - any other error: nak with backoff by delivery count; such an error
//     is Transient whatever its kind says, since the handler chose not to
//     settle it otherwise.
type Handler func(ctx context.Context, d *Delivery) error

// Middleware wraps a Handler.
type Middleware func(Handler) Handler

// Metrics is the seam where a metrics package counts deliveries. Its
// methods must be cheap and safe for concurrent use.
type Metrics interface {
	// Started is called when a handler starts on a delivery of source.
	Started(source string)
	// Settled is called once the delivery is settled.
	Settled(source string, outcome Outcome, took time.Duration)
}

// Outcome is how a delivery was settled.
type Outcome string

// The outcomes.
const (
	Acked   Outcome = "acked"
	Retried Outcome = "retried" // nak, with delay
	Dropped Outcome = "dropped" // term
)

type dropError struct{ reason string }

func (e *dropError) Error() string { return "dropped: " + e.reason }

// Drop settles the message as one that can never be handled (term): an
// undecodable message, or one whose job has no record.
func Drop(reason string) error { return &dropError{reason} }

type retryError struct {
	after time.Duration
	err   error
}

func (e *retryError) Error() string { return e.err.Error() }
func (e *retryError) Unwrap() error { return e.err }

// RetryAfter settles the message with a nak redelivered after d; err says
// why (it is logged by the handler's caller, not by the pool).
func RetryAfter(d time.Duration, err error) error { return &retryError{after: d, err: err} }

// Source is one durable pull consumer and its handler.
type Source struct {
	Name     string
	Consumer jetstream.Consumer
	Handle   Handler
	// Pull are extra options of every pull (for example a priority group
	// and its min_pending, see pipeline.Options.JobPullOpts).
	Pull []jetstream.PullMessagesOpt
}

// Config tunes a Pool. The zero value of each field takes its default.
type Config struct {
	Workers      int           // handlers at once over all sources (default 2)
	AckWait      time.Duration // the consumers' AckWait: keep-alive every third (default 30 s)
	DrainTimeout time.Duration // how long handlers may run after Run's ctx ends (default 1 min)
	RetryBase    time.Duration // first backoff of a plain error (default 1 s)
	RetryLimit   time.Duration // longest backoff (default 2 min)
	// CheckEvery is how often each source's consumer is looked up: a pull
	// iterator does not notice its consumer being deleted, so the pool
	// asks, and stops when it or its stream is found gone twice in a row
	// (default 5 s).
	CheckEvery time.Duration
	Log        *slog.Logger
	Metrics    Metrics // nil: none
}

// Pool runs handlers over sources. Create it with New.
type Pool struct {
	cfg Config
	mw  []Middleware
}

// New returns a pool. Middleware runs outermost first, inside the pool's
// own: Recover (outermost), then the message logger and Metrics.
func New(cfg Config, mw ...Middleware) *Pool {
	if cfg.Workers <= 0 {
		cfg.Workers = 2
	}
	if cfg.AckWait <= 0 {
		cfg.AckWait = 30 * time.Second
	}
	if cfg.DrainTimeout <= 0 {
		cfg.DrainTimeout = time.Minute
	}
	if cfg.RetryBase <= 0 {
		cfg.RetryBase = time.Second
	}
	if cfg.RetryLimit <= 0 {
		cfg.RetryLimit = 2 * time.Minute
	}
	if cfg.CheckEvery <= 0 {
		cfg.CheckEvery = 5 * time.Second
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	return &Pool{cfg: cfg, mw: mw}
}

// ErrSourceStopped is returned (wrapped, naming the source) when a source's
// messages end while Run's context is still live: its consumer or stream
// was deleted, or the connection closed.
var ErrSourceStopped = errors.New("message source stopped")

// Run serves the sources until ctx ends or one of them stops. The pull
// loop is nats.go's Messages iterator, one per source, taking one message
// at a time so that an idle source never holds a worker slot.
func (p *Pool) Run(ctx context.Context, sources ...Source) error {
	type running struct {
		src Source
		it  jetstream.MessagesContext
	}
	var its []running
	stopAll := func() {
		for _, r := range its {
			r.it.Stop()
		}
	}
	for _, s := range sources {
		it, err := s.Consumer.Messages(append([]jetstream.PullMessagesOpt{jetstream.PullMaxMessages(1)}, s.Pull...)...)
		if err != nil {
			stopAll()
			return fmt.Errorf("consume %s: %w", s.Name, err)
		}
		its = append(its, running{s, it})
	}
	loopCtx, stopLoops := context.WithCancelCause(ctx)
	defer stopLoops(nil)
	workCtx, cancelWork := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelWork()
	stopDrain := context.AfterFunc(loopCtx, func() { time.AfterFunc(p.cfg.DrainTimeout, cancelWork) })
	defer stopDrain()

	slots := make(chan struct{}, p.cfg.Workers)
	var jobs, loops sync.WaitGroup
	for _, r := range its {
		h := p.wrap(r.src.Name, r.src.Handle)
		loops.Add(1)
		go func() {
			defer loops.Done()
			for {
				msg, err := r.it.Next(jetstream.NextContext(loopCtx))
				if err != nil {
					if loopCtx.Err() != nil {
						return
					}
					if errors.Is(err, jetstream.ErrMsgIteratorClosed) || errors.Is(err, jetstream.ErrConsumerDeleted) ||
						errors.Is(err, jetstream.ErrBadRequest) || errors.Is(err, jetstream.ErrConsumerNotFound) {
						stopLoops(fmt.Errorf("%s: %w: %w", r.src.Name, ErrSourceStopped, err))
						return
					}
					p.cfg.Log.Warn("receive failed", "source", r.src.Name, "err", err)
					select { // do not spin on a broken connection
					case <-loopCtx.Done():
						return
					case <-time.After(time.Second):
					}
					continue
				}
				alive := pipeline.KeepAlive(workCtx, msg, p.cfg.AckWait/3)
				select {
				case slots <- struct{}{}:
				case <-loopCtx.Done():
					alive()
					_ = msg.Nak() // not started: let another worker have it now
					return
				}
				jobs.Add(1)
				go func() {
					defer jobs.Done()
					defer func() { <-slots }()
					p.serve(workCtx, r.src.Name, msg, h, alive)
				}()
			}
		}()
	}
	loops.Add(1)
	go func() {
		defer loops.Done()
		p.watch(loopCtx, stopLoops, sources)
	}()
	loops.Wait()
	stopAll() // prefetched, unstarted messages are redelivered elsewhere
	jobs.Wait()
	if err := context.Cause(loopCtx); err != nil && ctx.Err() == nil {
		return err
	}
	return nil
}

// watch looks the sources' consumers up every CheckEvery and stops the
// pool when one is gone.
func (p *Pool) watch(ctx context.Context, stop context.CancelCauseFunc, sources []Source) {
	t := time.NewTicker(p.cfg.CheckEvery)
	defer t.Stop()
	missing := make([]int, len(sources)) // consecutive lookups that found none
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		for i, s := range sources {
			_, err := s.Consumer.Info(ctx)
			if !errors.Is(err, jetstream.ErrConsumerNotFound) && !errors.Is(err, jetstream.ErrStreamNotFound) {
				missing[i] = 0 // found, or the lookup itself failed: no verdict
				continue
			}
			// Twice in a row, so that a cluster electing a leader is not
			// taken for a deleted consumer.
			if missing[i]++; missing[i] >= 2 {
				stop(fmt.Errorf("%s: %w: %w", s.Name, ErrSourceStopped, err))
				return
			}
		}
	}
}

// wrap applies the middleware: Recover outermost, then the caller's.
func (p *Pool) wrap(source string, h Handler) Handler {
	for i := len(p.mw) - 1; i >= 0; i-- {
		h = p.mw[i](h)
	}
	if p.cfg.Metrics != nil {
		h = metered(p.cfg.Metrics, source, h)
	}
	return Recover(h)
}

// serve runs one delivery and settles it.
func (p *Pool) serve(ctx context.Context, source string, msg jetstream.Msg, h Handler, alive func()) {
	d := &Delivery{Msg: msg, Source: source, Delivered: 1, Log: p.cfg.Log.With("source", source)}
	if md, err := msg.Metadata(); err == nil {
		d.Delivered = int(md.NumDelivered)
	}
	start := time.Now()
	err := h(context.WithValue(ctx, deliveryKey{}, d), d)
	alive()
	outcome := p.settle(ctx, d, err)
	if p.cfg.Metrics != nil {
		p.cfg.Metrics.Settled(source, outcome, time.Since(start))
	}
}

func (p *Pool) settle(ctx context.Context, d *Delivery, err error) Outcome {
	var drop *dropError
	var retry *retryError
	switch {
	case err == nil:
		if aerr := d.Msg.DoubleAck(ctx); aerr != nil {
			d.Log.Warn("ack failed; the redelivery will find the work done", "err", aerr)
		}
		return Acked
	case errors.As(err, &drop):
		d.Log.Error("message dropped", "reason", drop.reason)
		_ = d.Msg.TermWithReason(drop.reason)
		return Dropped
	case errors.As(err, &retry):
		_ = d.Msg.NakWithDelay(retry.after)
		return Retried
	}
	delay := pipeline.Backoff(d.Delivered, p.cfg.RetryBase, p.cfg.RetryLimit)
	d.Log.Warn("failed; will retry", "kind", failure.KindOf(err), "retry_in", delay.Round(time.Millisecond), "err", err)
	_ = d.Msg.NakWithDelay(delay)
	return Retried
}

// Recover turns a panic in h into a Transient failure of that delivery
// (nak with backoff), logging the stack, so the process keeps serving.
func Recover(h Handler) Handler {
	return func(ctx context.Context, d *Delivery) (err error) {
		defer func() {
			if v := recover(); v != nil {
				err = panicked(d.Log, v)
			}
		}()
		return h(ctx, d)
	}
}

// Safely runs f, turning a panic into a Transient failure logged with its
// stack. Handlers use it around one step (rendering a job) so that they
// can record the failure like any other; Recover catches the rest.
func Safely(log *slog.Logger, f func() error) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = panicked(log, v)
		}
	}()
	return f()
}

func panicked(log *slog.Logger, v any) error {
	log.Error("panic; the process keeps serving", "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
	return failure.E("panic", failure.Transient, fmt.Errorf("%v", v))
}

func metered(m Metrics, source string, h Handler) Handler {
	return func(ctx context.Context, d *Delivery) error {
		m.Started(source)
		return h(ctx, d)
	}
}
