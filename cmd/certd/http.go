package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/certd-dev/certd/consumer"
	"github.com/certd-dev/certd/internal/metrics"
	"github.com/certd-dev/certd/internal/pipeline"
	"github.com/certd-dev/certd/internal/supervise"
	"github.com/certd-dev/certd/internal/webserve"
)

// observer is the HTTP side of one process (every role): its metrics, its
// readiness checks and its listeners (opened early, so a taken address
// fails the start, not a running process).
type observer struct {
	m      *metrics.Metrics
	ln     net.Listener // nil: no HTTP server
	pprof  net.Listener // nil: pprof off
	ready  []webserve.Check
	served bool
}

// newObserver makes the metrics of role and opens http-addr and
// pprof-addr. A split role (bridge, consumer, control) left at the default
// http-addr while another role on the host already has it logs a warning
// and serves no HTTP, so that several roles configured alike still start;
// an address set on purpose must be free.
func newObserver(s *HTTPSettings, region string, log *slog.Logger, role string) (*observer, error) {
	o := &observer{m: metrics.New(metrics.Config{Region: region, Role: role, Version: pipeline.Version})}
	ln, err := net.Listen("tcp", s.Addr)
	switch {
	case err == nil:
		o.ln = ln
	case role != "all" && s.Addr == defaultHTTPAddr:
		log.Warn("http-addr is taken: serving no /healthz, /readyz or /metrics; give each role on this host its own http-addr", "http_addr", s.Addr, "err", err)
	default:
		return nil, fmt.Errorf("http-addr: %w", err)
	}
	if s.PprofAddr != "" {
		if o.pprof, err = net.Listen("tcp", s.PprofAddr); err != nil {
			o.close()
			return nil, fmt.Errorf("pprof-addr: %w", err)
		}
	}
	return o, nil
}

// close closes listeners that were never served.
func (o *observer) close() {
	if o.served {
		return
	}
	for _, ln := range []net.Listener{o.ln, o.pprof} {
		if ln != nil {
			ln.Close()
		}
	}
}

// check adds a readiness check.
func (o *observer) check(name string, f func(ctx context.Context) error) {
	o.ready = append(o.ready, webserve.Check{Name: name, Check: f})
}

// checkNATS makes readiness require a NATS connection.
func (o *observer) checkNATS(nc *nats.Conn) {
	o.check("nats", func(context.Context) error {
		if !nc.IsConnected() {
			return fmt.Errorf("not connected (%s)", nc.Status())
		}
		return nil
	})
}

// checkHandler makes readiness require the signing key and a storage that
// answers: the public key stored at start is read back.
func (o *observer) checkHandler(parts *handlerParts) {
	o.check("signing-key", func(context.Context) error {
		if parts.signer == nil {
			return errors.New("no signing key loaded")
		}
		return nil
	})
	o.check("storage", func(ctx context.Context) error {
		if parts.signer == nil {
			_, err := parts.store.List(ctx, "cert/keys/")
			return err
		}
		_, err := parts.store.Get(ctx, consumer.PublicKeyKey(parts.signer.Fingerprint()))
		return err
	})
}

// checkXQueue makes readiness require xqueue to answer, unless the intake
// is paused on purpose.
func (o *observer) checkXQueue(p *pipeline.Pipeline, xq interface {
	QueueLength(context.Context) (int, error)
}) {
	o.check("xqueue", func(ctx context.Context) error {
		if st, err := p.Intake(ctx); err == nil && st.Paused {
			return nil
		}
		if _, err := xq.QueueLength(ctx); err != nil {
			return fmt.Errorf("unreachable: %w", err)
		}
		return nil
	})
}

// serve adds the HTTP server (and pprof) to g; root is the local storage
// directory to serve ("" for none), its revocation lists served with
// max-age statusMaxAge.
func (o *observer) serve(g *supervise.Group, log *slog.Logger, root string, statusMaxAge time.Duration) {
	o.served = true
	if o.ln != nil {
		web := webserve.New(webserve.Config{Root: root, Logger: log, StatusMaxAge: statusMaxAge, Ready: o.ready, Metrics: o.m.Handler()})
		g.Add("http", func(ctx context.Context) error { return web.Serve(ctx, o.ln) })
	}
	if o.pprof != nil {
		log.Warn("pprof is on", "pprof_addr", o.pprof.Addr().String())
		g.Add("pprof", func(ctx context.Context) error {
			return webserve.ServePprof(ctx, o.pprof, webserve.Config{Logger: log})
		})
	}
}
