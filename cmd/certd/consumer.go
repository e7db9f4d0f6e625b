package main

import (
	"context"
	"io"
	"log/slog"
	"runtime"

	"github.com/certd-dev/certd/consumer"
	"github.com/certd-dev/certd/internal/pipeline"
	"github.com/certd-dev/certd/internal/supervise"
)

func init() {
	commands["consumer"] = command{"render, sign and store certificates for jobs from NATS", runConsumer}
}

func newConsumer(s *ConsumerSettings, region string, p *pipeline.Pipeline, h consumer.JobHandler, log *slog.Logger, extra ...consumer.Option) *consumer.Consumer {
	workers := s.Workers
	if workers <= 0 {
		workers = runtime.NumCPU()
	}
	return consumer.New(p, h, append([]consumer.Option{
		consumer.WithLogger(log),
		consumer.WithRegion(region),
		consumer.WithWorkers(workers),
		consumer.WithMaxAttempts(s.MaxAttempts),
		consumer.WithRetryDelay(s.RetryDelay),
		consumer.WithDrainTimeout(s.DrainTimeout),
	}, extra...)...)
}

func runConsumer(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var s consumerParts
	c, log, err := loadConfig("consumer", args, stderr, &s, &s.Log)
	if err != nil {
		return err
	}
	c.require(&s.Handler.Storage.URL)
	c.require(&s.Handler.Signing.Key)
	if err := c.err(); err != nil {
		return err
	}
	p, closeNATS, err := startPipeline(ctx, c, &s.NATS, s.Data.Dir, log, false, true)
	if err != nil {
		return err
	}
	defer closeNATS()
	obs, err := newObserver(&s.HTTP, s.NATS.Region, log, "consumer")
	if err != nil {
		return err
	}
	defer obs.close()
	parts, err := newHandler(ctx, c, &s.Handler, s.Data.Dir, log, signRequired, &credIn{s: &s.Credentials, p: p}, obs.m.ObserveStage)
	if err != nil {
		return err
	}
	cons := newConsumer(&s.Consumer, s.NATS.Region, p, parts.handler, log, consumer.WithMetrics(obs.m))
	if err := c.err(); err != nil {
		return err
	}
	obs.checkNATS(p.Conn())
	obs.checkHandler(parts)
	g := supervise.New(ctx)
	g.Add("consumer", cons.Run)
	if parts.creds != nil {
		g.Add("status-list", func(ctx context.Context) error { return runPublisher(ctx, parts.creds.pub, log) })
	}
	obs.serve(g, log, "", 0)
	return supervised(g.Run(), log)
}
