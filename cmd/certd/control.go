package main

import (
	"context"
	"io"
	"log/slog"
	"net"
	"strings"

	"github.com/certd-dev/certd/bridge/xqueue"
	"github.com/certd-dev/certd/control"
	"github.com/certd-dev/certd/internal/pipeline"
	"github.com/certd-dev/certd/internal/supervise"
)

func init() {
	commands["control"] = command{"serve the gRPC control service", runControl}
}

// checkControlToken refuses, before anything starts, a control token too
// short for a listen address beyond loopback (the control service checks
// it again when it listens).
func checkControlToken(c *config, s *ControlSettings) {
	tok := s.Token
	if tok == "" || len(tok) >= control.MinToken {
		return
	}
	host, _, err := net.SplitHostPort(s.Addr)
	if err != nil {
		return // Listen reports the address
	}
	if ip := net.ParseIP(host); strings.EqualFold(host, "localhost") || (ip != nil && ip.IsLoopback()) {
		return
	}
	c.bad(&s.Token, "%d bytes is too short for grpc-addr %s beyond loopback; use at least %d (e.g. openssl rand -hex 24)", len(tok), s.Addr, control.MinToken)
}

// newControl makes the control service; with creds (not nil) it serves
// Revoke.
func newControl(s *ControlSettings, region, xqueueURL string, p *pipeline.Pipeline, xq *xqueue.Client, log *slog.Logger, creds *credParts) (*control.Service, control.ServerConfig) {
	opts := []control.Option{control.WithLogger(log), control.WithRegion(region)}
	if creds != nil {
		opts = append(opts, control.WithRevoker(creds.rev))
	}
	if xq != nil {
		opts = append(opts, control.WithXQueue(xq), control.WithXqueueURL(redactURL(xqueueURL)))
	}
	return control.NewService(p, opts...), control.ServerConfig{
		Token: s.Token, TLSCert: s.TLSCert, TLSKey: s.TLSKey, Logger: log,
	}
}

func runControl(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var s controlParts
	c, log, err := loadConfig("control", args, stderr, &s, &s.Log)
	if err != nil {
		return err
	}
	checkControlToken(c, &s.Control)
	if err := c.err(); err != nil {
		return err
	}
	xq, err := newXQueue(c, &s.XQueue, log)
	if err != nil {
		return err
	}
	p, closeNATS, err := startPipeline(ctx, c, &s.NATS, s.Data.Dir, log, false, false)
	if err != nil {
		return err
	}
	defer closeNATS()
	// With storage, control revokes (Revoke) and republishes the
	// revocation lists; without, Revoke is refused.
	var creds *credParts
	if s.Storage.URL != "" {
		store, _, _, verify := openStore(ctx, c, &s.Storage, &s.URLs, log)
		if err := c.err(); err != nil {
			return err
		}
		if creds, err = newCredentials(ctx, c, &s.Credentials, s.Data.Dir, s.KeyFile.KeyReadable, log, p, store, verify, false); err != nil {
			return err
		}
	}
	obs, err := newObserver(&s.HTTP, s.NATS.Region, log, "control")
	if err != nil {
		return err
	}
	defer obs.close()
	obs.checkNATS(p.Conn())
	svc, scfg := newControl(&s.Control, s.NATS.Region, s.XQueue.URL, p, xq, log, creds)
	g := supervise.New(ctx)
	g.Add("control", func(ctx context.Context) error { return control.Serve(ctx, s.Control.Addr, svc, scfg) })
	if creds != nil {
		g.Add("status-list", func(ctx context.Context) error { return runPublisher(ctx, creds.pub, log) })
	}
	obs.serve(g, log, "", 0)
	return supervised(g.Run(), log)
}
