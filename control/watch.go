package control

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	certdv1 "github.com/certd-dev/certd/proto/certd/v1"
)

// Default WatchJobs limits (see WithWatchLimits). With every stream full,
// the buffers hold at most DefaultMaxWatchers × DefaultWatchBufferBytes
// (32 MiB).
const (
	DefaultMaxWatchers       = 32
	DefaultWatchBufferEvents = 512
	DefaultWatchBufferBytes  = 1 << 20
	// DefaultWatchGrace is how long a stream that fell behind may wait
	// for its client to take what was already sent before it is cut off
	// (the client then sees Canceled instead of "watcher too slow").
	DefaultWatchGrace = 10 * time.Second
)

// WithWatchLimits bounds WatchJobs: at most streams open at once (more are
// refused with ResourceExhausted), and per stream at most events changes
// of at most bytes (encoded size) waiting to be sent. A stream whose
// client reads too slowly to keep within that ends with ResourceExhausted
// "watcher too slow"; the client watches again and catches up with
// ListJobs. Zero keeps a default.
func WithWatchLimits(streams, events, bytes int) Option {
	return func(s *Service) {
		if streams > 0 {
			s.maxWatchers = int64(streams)
		}
		if events > 0 {
			s.watchEvents = events
		}
		if bytes > 0 {
			s.watchBytes = bytes
		}
	}
}

// abortKey carries, in a stream's context, the func that ends the stream
// at the transport (set by the server's tap for WatchJobs): it unblocks a
// Send that waits for a client that does not read.
type abortKey struct{}

func withAbort(ctx context.Context) context.Context {
	ctx, cancel := context.WithCancel(ctx)
	return context.WithValue(ctx, abortKey{}, cancel)
}

func abortFunc(ctx context.Context) context.CancelFunc {
	if f, ok := ctx.Value(abortKey{}).(context.CancelFunc); ok {
		return f
	}
	return func() {}
}

// errTooSlow ends a watch whose client fell behind.
var errTooSlow = status.Error(codes.ResourceExhausted, "watcher too slow: more changes waited than the stream may buffer; watch again and catch up with ListJobs")

// WatchJobs streams the changes of matching job records as they happen,
// until the client goes away or the server stops. The response headers are
// sent once the watch is live: a client that waits for them sees every
// job's changes made afterwards, in order. Changes of one job that follow
// each other quickly may arrive coalesced (job records are a KV bucket
// keeping the latest value), but the latest state of every job always
// arrives, and each event carries the whole record, history included.
//
// Each stream buffers a bounded number of changes (count and bytes, see
// WithWatchLimits); a client that falls further behind gets
// ResourceExhausted "watcher too slow". The number of streams is capped
// too.
func (s *Service) WatchJobs(req *certdv1.WatchJobsRequest, stream grpc.ServerStreamingServer[certdv1.JobEvent]) error {
	f, err := newFilter(req.GetFilter())
	if err != nil {
		return err
	}
	if n := s.watchers.Add(1); n > s.maxWatchers {
		s.watchers.Add(-1)
		return status.Errorf(codes.ResourceExhausted, "too many WatchJobs streams (at most %d); close one or try later", s.maxWatchers)
	}
	defer s.watchers.Add(-1)

	ctx, cancel := context.WithCancel(stream.Context())
	defer cancel()
	watchCtx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	changes, err := s.p.Records.Watch(watchCtx, false)
	if err != nil {
		return s.grpcError("watch jobs", err)
	}
	if err := stream.SendHeader(metadata.Pairs("certd-watch", "live")); err != nil {
		return err
	}
	q := &eventQueue{maxEvents: s.watchEvents, maxBytes: s.watchBytes, ready: make(chan struct{}, 1)}
	var (
		wg       sync.WaitGroup
		abortMu  sync.Mutex
		abortAt  *time.Timer
		transEnd = abortFunc(stream.Context())
	)
	defer func() {
		abortMu.Lock()
		if abortAt != nil {
			abortAt.Stop()
		}
		abortMu.Unlock()
	}()
	defer wg.Wait() // after cancel (deferred later, runs first)
	defer cancel()
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-ctx.Done():
				q.end(nil)
				return
			case rec, ok := <-changes:
				if !ok {
					if ctx.Err() != nil {
						q.end(nil)
					} else {
						q.end(status.Error(codes.Unavailable, "watch jobs: the record watch ended; watch again"))
					}
					return
				}
				if !f.match(rec) {
					continue
				}
				at := rec.UpdatedAt
				if at == nil {
					at = timestamppb.New(s.now())
				}
				if q.push(&certdv1.JobEvent{Id: rec.Id, State: rec.State, At: at, Job: rec}) {
					continue
				}
				// Fallen behind: drop the buffer and the record watch now,
				// so nothing more is held for this client. A Send under
				// way finishes when the client reads (and the client then
				// gets errTooSlow); one that waits longer than watchGrace
				// is cut off at the transport.
				s.log.Warn("WatchJobs stream ended: the client reads too slowly", "buffered", q.maxEvents, "buffer_bytes", q.maxBytes)
				q.end(errTooSlow)
				stopWatch()
				abortMu.Lock()
				abortAt = time.AfterFunc(s.watchGrace, transEnd)
				abortMu.Unlock()
				return
			}
		}
	}()
	for {
		ev, err := q.pop(ctx)
		if ev == nil {
			return err
		}
		if err := stream.Send(ev); err != nil {
			if qerr := q.failed(); qerr != nil {
				return qerr
			}
			return err
		}
	}
}

// eventQueue is one watch's buffer between the record watch and the
// client: bounded in events and encoded bytes.
type eventQueue struct {
	maxEvents, maxBytes int
	ready               chan struct{} // signalled (cap 1) on push and end

	mu     sync.Mutex
	events []*certdv1.JobEvent
	sizes  []int
	bytes  int
	done   bool
	err    error
}

// push adds ev; false if that would exceed a bound.
func (q *eventQueue) push(ev *certdv1.JobEvent) bool {
	n := proto.Size(ev)
	q.mu.Lock()
	if len(q.events)+1 > q.maxEvents || q.bytes+n > q.maxBytes {
		q.mu.Unlock()
		return false
	}
	q.events = append(q.events, ev)
	q.sizes = append(q.sizes, n)
	q.bytes += n
	q.mu.Unlock()
	q.signal()
	return true
}

// end marks the queue finished: with err, pop returns it at once; with nil
// pop returns what is queued first.
func (q *eventQueue) end(err error) {
	q.mu.Lock()
	q.done, q.err = true, err
	if err != nil {
		q.events, q.sizes, q.bytes = nil, nil, 0
	}
	q.mu.Unlock()
	q.signal()
}

func (q *eventQueue) failed() error {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.err
}

func (q *eventQueue) signal() {
	select {
	case q.ready <- struct{}{}:
	default:
	}
}

// pop returns the next event, or nil and the reason the watch ended.
func (q *eventQueue) pop(ctx context.Context) (*certdv1.JobEvent, error) {
	for {
		q.mu.Lock()
		if q.err != nil {
			q.mu.Unlock()
			return nil, q.err
		}
		if len(q.events) > 0 {
			ev := q.events[0]
			q.bytes -= q.sizes[0]
			q.events[0] = nil
			q.events, q.sizes = q.events[1:], q.sizes[1:]
			q.mu.Unlock()
			return ev, nil
		}
		done := q.done
		q.mu.Unlock()
		if done {
			return nil, nil
		}
		select {
		case <-q.ready:
		case <-ctx.Done():
			return nil, nil
		}
	}
}

// watcherCount is the number of open WatchJobs streams.
type watcherCount = atomic.Int64
