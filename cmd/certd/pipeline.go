package main

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/certd-dev/certd/internal/natsserver"
	"github.com/certd-dev/certd/internal/pipeline"
)

// connect returns a NATS connection: to --nats-url, or, when that is empty
// and embedding is allowed, to a server started in this process under
// dataDir. The returned stop closes both.
func connect(c *config, s *NATSSettings, dataDir string, log *slog.Logger, embed bool) (*nats.Conn, func(), error) {
	url := s.URL
	if err := checkServerURLs(url); err != nil {
		c.bad(&s.URL, "%v", err)
		return nil, nil, c.err()
	}
	var ns *server.Server
	if url == "" {
		if !embed {
			c.bad(&s.URL, "required (only 'all' and 'demo' embed a NATS server)")
			return nil, nil, c.err()
		}
		dir, err := filepath.Abs(filepath.Join(dataDir, "nats"))
		if err != nil {
			return nil, nil, err
		}
		ns, err = natsserver.Start(natsserver.Config{Dir: dir, Port: -1})
		if err != nil {
			return nil, nil, err
		}
		url = ns.ClientURL()
		log.Info("embedded NATS server started", "url", url, "store", dir)
	}
	opts := []nats.Option{
		nats.Name("certd"),
		nats.MaxReconnects(-1),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				log.Warn("NATS disconnected", "err", err)
			}
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) { log.Info("NATS reconnected", "url", nc.ConnectedUrlRedacted()) }),
	}
	if creds := s.Creds; creds != "" {
		opts = append(opts, nats.UserCredentials(creds))
	}
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		if ns != nil {
			ns.Shutdown()
		}
		return nil, nil, fmt.Errorf("connect to NATS at %s: %w", redactURLs(url), err)
	}
	return nc, func() {
		// Every publish and ack is synchronous, so nothing is buffered;
		// flush what may be in flight and close before the embedded
		// server goes.
		_ = nc.FlushTimeout(2 * time.Second)
		nc.Close()
		if ns != nil {
			ns.Shutdown()
			ns.WaitForShutdown()
		}
	}, nil
}

// startPipeline connects to NATS (or embeds it) and opens the pipeline.
// runsJobs is true for processes that run consumers: only they set the job
// consumers' ack-wait and max-ack-pending.
func startPipeline(ctx context.Context, c *config, s *NATSSettings, dataDir string, log *slog.Logger, embed, runsJobs bool) (*pipeline.Pipeline, func(), error) {
	nc, closeNATS, err := connect(c, s, dataDir, log, embed)
	if err != nil {
		return nil, nil, err
	}
	p, err := openPipeline(ctx, c, s, nc, runsJobs)
	if err != nil {
		closeNATS()
		return nil, nil, err
	}
	return p, closeNATS, nil
}

func openPipeline(ctx context.Context, c *config, s *NATSSettings, nc *nats.Conn, runsJobs bool) (*pipeline.Pipeline, error) {
	opts := pipeline.Options{
		Replicas:  s.Replicas,
		Cluster:   s.Cluster,
		Retention: s.Retention,
		AckWait:   s.AckWait,

		MaxAckPending:      s.MaxAckPending,
		UpdateJobConsumers: runsJobs,
	}
	if s.OverflowThreshold > 0 {
		home := cmp.Or(s.HomeRegion, opts.Cluster)
		if home == "" {
			c.bad(&s.HomeRegion, "required with overflow-threshold (or set cluster)")
		}
		opts.Overflow = &pipeline.Overflow{HomeRegion: home, Threshold: s.OverflowThreshold}
	}
	if err := c.err(); err != nil {
		return nil, err
	}
	p, err := pipeline.Open(ctx, nc, opts)
	if err != nil {
		return nil, fmt.Errorf("set up JetStream: %w", err)
	}
	return p, nil
}
