package main

import (
	"context"
	"io"
	"log/slog"

	"github.com/certd-dev/certd/bridge"
	"github.com/certd-dev/certd/bridge/xqueue"
	"github.com/certd-dev/certd/internal/pipeline"
)

func init() {
	commands["bridge"] = command{"pull jobs from xqueue into NATS and post results back", runBridge}
}

// newXQueue returns the xqueue client, or nil when no xqueue is configured.
func newXQueue(c *config, s *XQueueSettings, log *slog.Logger) (*xqueue.Client, error) {
	if s.URL == "" {
		return nil, nil
	}
	if _, err := parseURL(s.URL); err != nil {
		c.bad(&s.URL, "%v", err)
		return nil, c.err()
	}
	cl, err := xqueue.New(xqueue.Config{
		BaseURL:   s.URL,
		Queue:     s.Queue,
		Username:  c.require(&s.User),
		Password:  c.require(&s.Password),
		BasicAuth: s.BasicAuth,
		Logger:    log,
	})
	if err != nil {
		c.bad(&s.URL, "%v", err)
	}
	return cl, c.err()
}

func newBridge(s *BridgeSettings, region string, p *pipeline.Pipeline, xq *xqueue.Client, log *slog.Logger, extra ...bridge.Option) *bridge.Bridge {
	opts := []bridge.Option{
		bridge.WithLogger(log),
		bridge.WithRegion(region),
		bridge.WithPollInterval(s.PollInterval),
		bridge.WithIntakeLockTTL(s.IntakeLockTTL),
		bridge.WithMaxPending(s.MaxPending),
		bridge.WithLease(s.Lease),
		bridge.WithHoldGrace(s.HoldGrace),
		bridge.WithPrivateCallbacks(s.PrivateCallbacks),
	}
	if xq != nil {
		opts = append(opts, bridge.WithXQueue(xq))
	}
	return bridge.New(p, append(opts, extra...)...)
}

func runBridge(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var s bridgeParts
	c, log, err := loadConfig("bridge", args, stderr, &s, &s.Log)
	if err != nil {
		return err
	}
	xq, err := newXQueue(c, &s.XQueue, log)
	if err != nil {
		return err
	}
	if xq == nil {
		log.Warn("no xqueue-url: this bridge relays the results of submitted jobs only")
	}
	p, closeNATS, err := startPipeline(ctx, c, &s.NATS, s.Data.Dir, log, false, false)
	if err != nil {
		return err
	}
	defer closeNATS()
	obs, err := newObserver(&s.HTTP, s.NATS.Region, log, "bridge")
	if err != nil {
		return err
	}
	defer obs.close()
	br := newBridge(&s.Bridge, s.NATS.Region, p, xq, log, bridge.WithMetrics(obs.m))
	if err := c.err(); err != nil {
		return err
	}
	obs.checkNATS(p.Conn())
	if xq != nil {
		obs.checkXQueue(p, xq)
	}
	return runPart(ctx, "bridge", log, br.Run, obs)
}
