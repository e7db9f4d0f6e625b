package pipeline

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"sync/atomic"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	certdv1 "github.com/certd-dev/certd/proto/certd/v1"
)

// Version is certd's version, reported in heartbeats.
var Version = "dev"

// NewWorker describes this process for heartbeats.
func NewWorker(role, region string) *certdv1.Worker {
	host, _ := os.Hostname()
	return &certdv1.Worker{
		Id:        fmt.Sprintf("%s.%s.%d", role, sanitizeKey(host), os.Getpid()),
		Role:      role,
		Region:    region,
		Host:      host,
		Version:   Version,
		StartedAt: timestamppb.Now(),
	}
}

// Heartbeat writes the worker's state to the workers bucket every interval
// until ctx ends, then removes it. fill is called before each write to
// refresh counters. It blocks; run it in a goroutine owned by the caller.
func (p *Pipeline) Heartbeat(ctx context.Context, w *certdv1.Worker, fill func(*certdv1.Worker), log *slog.Logger) {
	interval := p.Opts.HeartbeatTTL / 3
	t := time.NewTicker(interval)
	defer t.Stop()
	beat := func() {
		if fill != nil {
			fill(w)
		}
		w.LastHeartbeat = timestamppb.Now()
		b, err := marshal(w)
		if err == nil {
			_, err = p.Workers.Put(ctx, w.Id, b)
		}
		if err != nil && ctx.Err() == nil {
			log.Warn("heartbeat failed", "worker", w.Id, "err", err)
		}
	}
	beat()
	for {
		select {
		case <-ctx.Done():
			dctx, cancel := context.WithTimeout(context.Background(), time.Second)
			_ = p.Workers.Delete(dctx, w.Id)
			cancel()
			return
		case <-t.C:
			beat()
		}
	}
}

// ListWorkers returns the workers that sent a heartbeat within the TTL.
func (p *Pipeline) ListWorkers(ctx context.Context) ([]*certdv1.Worker, error) {
	lister, err := p.Workers.ListKeys(ctx)
	if err != nil {
		return nil, fmt.Errorf("list workers: %w", err)
	}
	var out []*certdv1.Worker
	for k := range lister.Keys() {
		e, err := p.Workers.Get(ctx, k)
		if err != nil {
			continue // expired in between
		}
		w := &certdv1.Worker{}
		if unmarshal(e.Value(), w) == nil {
			out = append(out, w)
		}
	}
	return out, nil
}

// sanitizeKey keeps only the characters allowed in a KV key.
func sanitizeKey(s string) string {
	b := []byte(s)
	for i, c := range b {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			b[i] = '_'
		}
	}
	return string(b)
}

// Counters are a worker's job counts, reported in its heartbeat. Safe for
// concurrent use.
type Counters struct {
	inFlight, done, failed atomic.Int64
}

// Add changes the counts by the given amounts.
func (c *Counters) Add(inFlight, done, failed int64) {
	c.inFlight.Add(inFlight)
	c.done.Add(done)
	c.failed.Add(failed)
}

// Fill copies the counts into a heartbeat.
func (c *Counters) Fill(w *certdv1.Worker) {
	w.InFlight, w.Done, w.Failed = c.inFlight.Load(), c.done.Load(), c.failed.Load()
}
