// Package control is certd's operator interface: the gRPC service
// certd.v1.Control. It shows what the pipeline is doing (GetStatus,
// ListJobs, GetJob, WatchJobs) and fixes what is stuck without touching
// NATS by hand (Requeue, Fail, PauseIntake, ResumeIntake). Submit queues a
// job without xqueue.
//
// The service only reads and writes the shared pipeline objects (job
// records, the intake switch, the jobs and results streams); the bridge and
// the consumers do the rest. Service implements the RPCs; Listen and Serve
// put it on the network with bearer-token authentication, optional TLS,
// grpc.health.v1 and server reflection, and send the process's heartbeat
// (role "control").
//
// Security: every call, reflection included, needs "authorization: Bearer
// <token>", compared in constant time. Only grpc.health.v1 (for load
// balancers and orchestrators) is open. With grpcurl, which sends its -H
// headers with reflection requests too:
//
//	grpcurl -plaintext -H "authorization: Bearer $TOKEN" localhost:9090 list
//	grpcurl -plaintext -H "authorization: Bearer $TOKEN" localhost:9090 describe certd.v1.Control
//	grpcurl -plaintext -H "authorization: Bearer $TOKEN" \
//	    -d '{"filter": {"states": ["JOB_STATE_DEAD"]}, "dry_run": true}' \
//	    localhost:9090 certd.v1.Control/Requeue
//
// work as expected (drop -plaintext with TLS). Without a token the service
// listens on loopback only and says so at start; a token shorter than
// MinToken bytes is refused beyond loopback. Denied calls are logged at a
// bounded rate: one line per interval with the count and the last call's
// method, peer and reason, never the token.
//
// Limits (each proven by a test):
//   - The token is checked when a call's headers arrive (grpc.InTapHandle),
//     before any message is read: a caller without it costs the headers
//     only. Messages are capped at MaxRecvMsgSize, headers at
//     MaxHeaderListSize, calls per connection at MaxConcurrentStreams.
//   - WatchJobs streams are capped in number, and each buffers a bounded
//     count and size of changes (WithWatchLimits); a client that falls
//     behind gets ResourceExhausted "watcher too slow", and its buffer and
//     record watch are dropped at once.
//   - Submit remove and regen may only name uuids that job records tie to
//     the same username and course id (PermissionDenied otherwise).
//
// ListJobs, Requeue/Fail by filter and GetStatus's job counts read every
// job record (one KV watch); that is fine for the records of the retention
// period (30 days by default) at LMS volumes, and is the price of having
// no second index to keep consistent.
package control

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/certd-dev/certd/internal/pipeline"
	certdv1 "github.com/certd-dev/certd/proto/certd/v1"
)

// QueueLengther reports how many submissions wait in xqueue. The xqueue
// client (*xqueue.Client) satisfies it.
type QueueLengther interface {
	QueueLength(ctx context.Context) (int, error)
}

// Service implements certd.v1.Control over an open pipeline. Create it with
// NewService; it is safe for concurrent use.
type Service struct {
	certdv1.UnimplementedControlServer

	p          *pipeline.Pipeline
	xq         QueueLengther
	xqURL      string
	log        *slog.Logger
	worker     *certdv1.Worker
	stuckAfter time.Duration
	xqTimeout  time.Duration
	now        func() time.Time
	revoker    Revoker

	maxWatchers int64
	watchEvents int
	watchBytes  int
	watchGrace  time.Duration
	watchers    watcherCount

	mu                     sync.Mutex
	inFlight, done, failed int64
}

// Option configures a Service.
type Option func(*Service)

// WithXQueue lets GetStatus report whether xqueue is reachable and how long
// its queue is. Without it (or with nil) xqueue is reported as not
// configured.
func WithXQueue(q QueueLengther) Option {
	return func(s *Service) {
		if v := reflect.ValueOf(q); q != nil && v.Kind() == reflect.Pointer && v.IsNil() {
			q = nil // a nil *xqueue.Client means not configured too
		}
		s.xq = q
	}
}

// WithXqueueURL is the xqueue address shown in GetStatus. It is display
// only; pass it without credentials.
func WithXqueueURL(u string) Option { return func(s *Service) { s.xqURL = u } }

// WithLogger sets the logger (default slog.Default()).
func WithLogger(l *slog.Logger) Option {
	return func(s *Service) {
		if l != nil {
			s.log = l
		}
	}
}

// WithRegion names the region the control process runs in, for its
// heartbeat.
func WithRegion(r string) Option {
	return func(s *Service) { s.worker = pipeline.NewWorker("control", r) }
}

// WithStuckAfter sets how long a job may stay ACCEPTED (recorded but not
// published) before Requeue treats it as stuck (default 1 minute). Younger
// ACCEPTED jobs are being published by the bridge right now.
func WithStuckAfter(d time.Duration) Option {
	return func(s *Service) { s.stuckAfter = max(d, 0) }
}

// WithXqueueTimeout bounds the queue-length check of GetStatus (default
// 5 s), so an unreachable xqueue does not hang the status call.
func WithXqueueTimeout(d time.Duration) Option {
	return func(s *Service) {
		if d > 0 {
			s.xqTimeout = d
		}
	}
}

// NewService returns the control service over an open pipeline.
func NewService(p *pipeline.Pipeline, opts ...Option) *Service {
	s := &Service{
		p:          p,
		log:        slog.Default(),
		worker:     pipeline.NewWorker("control", ""),
		stuckAfter: time.Minute,
		xqTimeout:  5 * time.Second,
		now:        time.Now,

		maxWatchers: DefaultMaxWatchers,
		watchEvents: DefaultWatchBufferEvents,
		watchBytes:  DefaultWatchBufferBytes,
		watchGrace:  DefaultWatchGrace,
	}
	for _, o := range opts {
		o(s)
	}
	s.log = s.log.With("component", "control")
	return s
}

// Worker is the heartbeat identity of this control process (role
// "control").
func (s *Service) Worker() *certdv1.Worker { return s.worker }

// Heartbeat publishes this process's heartbeat (role "control", the calls
// in flight and served) until ctx ends. Serve runs it; call it yourself only
// when you serve the Service some other way.
func (s *Service) Heartbeat(ctx context.Context) {
	s.p.Heartbeat(ctx, s.worker, s.fill, s.log)
}

func (s *Service) fill(w *certdv1.Worker) {
	s.mu.Lock()
	w.InFlight, w.Done, w.Failed = s.inFlight, s.done, s.failed
	s.mu.Unlock()
}

// track counts one call for the heartbeat; the returned func ends it.
func (s *Service) track() func(err error) {
	s.mu.Lock()
	s.inFlight++
	s.mu.Unlock()
	return func(err error) {
		s.mu.Lock()
		s.inFlight--
		if err != nil {
			s.failed++
		} else {
			s.done++
		}
		s.mu.Unlock()
	}
}

// grpcError maps an internal error to a gRPC status, logging what the
// client does not see.
func (s *Service) grpcError(op string, err error) error {
	if err == nil {
		return nil
	}
	if _, ok := status.FromError(err); ok {
		return err
	}
	switch {
	case errors.Is(err, pipeline.ErrNotFound):
		return status.Error(codes.NotFound, err.Error())
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return status.FromContextError(err).Err()
	}
	s.log.Error("control call failed", "op", op, "err", err)
	return status.Error(codes.Unavailable, fmt.Sprintf("%s: %v", op, err))
}

func invalid(format string, args ...any) error {
	return status.Errorf(codes.InvalidArgument, format, args...)
}
