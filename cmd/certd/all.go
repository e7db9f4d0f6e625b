package main

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"

	"github.com/certd-dev/certd/bridge"
	"github.com/certd-dev/certd/consumer"
	"github.com/certd-dev/certd/control"
	"github.com/certd-dev/certd/internal/pipeline"
	"github.com/certd-dev/certd/internal/supervise"
)

func init() {
	commands["all"] = command{"bridge, consumers, control and an embedded NATS in one process", func(ctx context.Context, args []string, stdout, stderr io.Writer) error {
		return runAll(ctx, "all", args, stdout, stderr, nil)
	}}
}

// runAll is `certd all` (and, with a feeder, `certd demo`).
func runAll(ctx context.Context, name string, args []string, stdout, stderr io.Writer, feed func(ctx context.Context, env *allEnv) error) error {
	var s allParts
	c := newConfig(name, stderr, &s)
	var once bool
	if feed != nil {
		c.fs.BoolVar(&once, "once", false, "exit after the sample jobs are answered")
	}
	if err := c.parse(args); err != nil {
		return err
	}
	log := newLogger(c, &s.Log, stderr)
	if s.Handler.Storage.URL == "" {
		u, err := localStorage(filepath.Join(s.Data.Dir, "www"))
		if err != nil {
			return err
		}
		s.Handler.Storage.URL = u
	}
	if s.Handler.DownloadURL == "" {
		s.Handler.DownloadURL = "http://" + s.HTTP.Addr
	}
	checkControlToken(c, &s.Control)
	if err := c.err(); err != nil {
		return err
	}
	p, closeNATS, err := startPipeline(ctx, c, &s.NATS, s.Data.Dir, log, true, true)
	if err != nil {
		return err
	}
	defer closeNATS()
	nc := p.Conn()
	xq, err := newXQueue(c, &s.XQueue, log)
	if err != nil {
		return err
	}
	obs, err := newObserver(&s.HTTP, s.NATS.Region, log, "all")
	if err != nil {
		return err
	}
	defer obs.close()
	parts, err := newHandler(ctx, c, &s.Handler, s.Data.Dir, log, signDevKey, &credIn{s: &s.Credentials, p: p}, obs.m.ObserveStage)
	if err != nil {
		return err
	}
	br := newBridge(&s.Bridge, s.NATS.Region, p, xq, log, bridge.WithMetrics(obs.m))
	cons := newConsumer(&s.Consumer, s.NATS.Region, p, parts.handler, log, consumer.WithMetrics(obs.m))
	svc, scfg := newControl(&s.Control, s.NATS.Region, s.XQueue.URL, p, xq, log, parts.creds)
	if err := c.err(); err != nil {
		return err
	}
	obs.checkNATS(nc)
	obs.checkHandler(parts)
	if xq != nil {
		obs.checkXQueue(p, xq)
	}
	// Every part runs in one group: the first to stop, for any reason,
	// stops the process (exit status 1, naming the part), so that systemd
	// or Kubernetes restarts it whole.
	g := supervise.New(ctx)
	g.Add("bridge", br.Run)
	g.Add("consumer", cons.Run)
	g.Add("control", func(ctx context.Context) error { return control.Serve(ctx, s.Control.Addr, svc, scfg) })
	if parts.creds != nil {
		g.Add("status-list", func(ctx context.Context) error { return runPublisher(ctx, parts.creds.pub, log) })
	}
	obs.serve(g, log, parts.fileDir, s.Credentials.StatusListTTL)
	log.Info("certd is running", "http", "http://"+obs.ln.Addr().String(), "grpc", s.Control.Addr, "storage", s.Handler.Storage.URL)
	if feed != nil {
		env := &allEnv{p: p, svc: svc, log: log, stdout: stdout}
		g.Add("demo", func(ctx context.Context) error {
			if err := feed(ctx, env); err != nil {
				return err
			}
			if once {
				return supervise.Done
			}
			<-ctx.Done() // fed: the rest of the process serves on
			return nil
		})
	}
	return supervised(g.Run(), log)
}

// allEnv is what a feeder gets to work with.
type allEnv struct {
	p      *pipeline.Pipeline
	svc    *control.Service
	log    *slog.Logger
	stdout io.Writer
}
