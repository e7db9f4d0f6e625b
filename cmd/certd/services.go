package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/certd-dev/certd/bridge"
	"github.com/certd-dev/certd/bridge/xqueue"
	"github.com/certd-dev/certd/consumer"
	"github.com/certd-dev/certd/consumer/courses"
	"github.com/certd-dev/certd/consumer/document"
	"github.com/certd-dev/certd/consumer/fonts"
	"github.com/certd-dev/certd/consumer/signing"
	"github.com/certd-dev/certd/consumer/storage"
	"github.com/certd-dev/certd/control"
	"github.com/certd-dev/certd/internal/natsserver"
	"github.com/certd-dev/certd/internal/pipeline"
	"github.com/certd-dev/certd/internal/supervise"
)

// Settings used by each part; a command declares the union of its parts'.
var (
	natsSettings     = []string{"nats-url", "nats-creds", "data-dir", "replicas", "cluster", "retention", "ack-wait", "max-ack-pending", "region", "log-level", "log-format"}
	xqueueSettings   = []string{"xqueue-url", "xqueue-queue", "xqueue-user", "xqueue-password", "xqueue-basic-auth"}
	bridgeSettings   = []string{"xqueue-lease", "poll-interval", "intake-lock-ttl", "max-pending", "hold-grace", "callback-allow-private"}
	handlerSettings  = []string{"storage", "s3-endpoint", "s3-region", "s3-path-style", "s3-cache-control", "s3-acl", "download-url", "verify-url", "signing-key", "signing-key-readable", "signing-passphrase", "signing-passphrase-file", "cert-data", "site-config", "designs", "strict-designs", "fonts-dir", "han-style"}
	consumerSettings = []string{"workers", "max-attempts", "retry-delay", "drain-timeout"}
	controlSettings  = []string{"grpc-addr", "control-token", "grpc-tls-cert", "grpc-tls-key"}
	httpSettings     = observeSettings
)

func join(lists ...[]string) []string {
	var out []string
	for _, l := range lists {
		out = append(out, l...)
	}
	return out
}

func init() {
	commands["all"] = command{"bridge, consumers, control and an embedded NATS in one process", func(ctx context.Context, args []string, stdout, stderr io.Writer) error {
		return runAll(ctx, "all", args, stdout, stderr, nil)
	}}
	commands["bridge"] = command{"pull jobs from xqueue into NATS and post results back", runBridge}
	commands["consumer"] = command{"render, sign and store certificates for jobs from NATS", runConsumer}
	commands["control"] = command{"serve the gRPC control service", runControl}
}

// connect returns a NATS connection: to --nats-url, or, when that is empty
// and embedding is allowed, to a server started in this process. The
// returned stop closes both.
func connect(c *config, log *slog.Logger, embed bool) (*nats.Conn, func(), error) {
	url := c.str("nats-url")
	if err := checkServerURLs(url); err != nil {
		c.bad("nats-url", "%v", err)
		return nil, nil, c.err()
	}
	var ns *server.Server
	if url == "" {
		if !embed {
			c.bad("nats-url", "required (only 'all' and 'demo' embed a NATS server)")
			return nil, nil, c.err()
		}
		dir, err := filepath.Abs(filepath.Join(c.str("data-dir"), "nats"))
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
	if creds := c.str("nats-creds"); creds != "" {
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
func startPipeline(ctx context.Context, c *config, log *slog.Logger, embed, runsJobs bool) (*pipeline.Pipeline, func(), error) {
	nc, closeNATS, err := connect(c, log, embed)
	if err != nil {
		return nil, nil, err
	}
	p, err := openPipeline(ctx, c, nc, runsJobs)
	if err != nil {
		closeNATS()
		return nil, nil, err
	}
	return p, closeNATS, nil
}

func openPipeline(ctx context.Context, c *config, nc *nats.Conn, runsJobs bool) (*pipeline.Pipeline, error) {
	opts := pipeline.Options{
		Replicas:  c.int("replicas"),
		Cluster:   c.str("cluster"),
		Retention: c.duration("retention"),
		AckWait:   c.duration("ack-wait"),

		MaxAckPending:      c.int("max-ack-pending"),
		UpdateJobConsumers: runsJobs,
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

// newXQueue returns the xqueue client, or nil when no xqueue is configured.
func newXQueue(c *config, log *slog.Logger) (*xqueue.Client, error) {
	if c.str("xqueue-url") == "" {
		return nil, nil
	}
	if _, err := parseURL(c.str("xqueue-url")); err != nil {
		c.bad("xqueue-url", "%v", err)
		return nil, c.err()
	}
	cl, err := xqueue.New(xqueue.Config{
		BaseURL:   c.str("xqueue-url"),
		Queue:     c.str("xqueue-queue"),
		Username:  c.require("xqueue-user"),
		Password:  c.require("xqueue-password"),
		BasicAuth: c.str("xqueue-basic-auth"),
		Logger:    log,
	})
	if err != nil {
		c.bad("xqueue-url", "%v", err)
	}
	return cl, c.err()
}

func newBridge(c *config, p *pipeline.Pipeline, xq *xqueue.Client, log *slog.Logger, extra ...bridge.Option) *bridge.Bridge {
	opts := []bridge.Option{
		bridge.WithLogger(log),
		bridge.WithRegion(c.str("region")),
		bridge.WithPollInterval(c.duration("poll-interval")),
		bridge.WithIntakeLockTTL(c.duration("intake-lock-ttl")),
		bridge.WithMaxPending(c.int("max-pending")),
		bridge.WithLease(c.duration("xqueue-lease")),
		bridge.WithHoldGrace(c.duration("hold-grace")),
		bridge.WithPrivateCallbacks(c.bool("callback-allow-private")),
	}
	if xq != nil {
		opts = append(opts, bridge.WithXQueue(xq))
	}
	return bridge.New(p, append(opts, extra...)...)
}

// parts of a handler, kept for the commands that need more than the handler.
type handlerParts struct {
	handler *consumer.Handler
	store   storage.Store
	signer  *signing.Signer
	fileDir string // file storage: its directory ("" for S3)
}

// signMode says what to do about the signing key.
type signMode int

const (
	signRequired signMode = iota // a missing key is a configuration error
	signDevKey                   // a missing key is replaced by a development key in the data dir
	signNone                     // do not sign at all
)

// newRenderer makes the certificate renderer from the designs, fonts-dir
// and han-style settings.
func newRenderer(c *config, log *slog.Logger) (*document.Renderer, error) {
	ropts := []document.Option{document.WithLogger(log), document.WithFontsDir(fonts.ParseDirs(c.str("fonts-dir")))}
	if dir := c.str("designs"); dir != "" {
		ropts = append(ropts, document.WithDesignDir(dir))
	}
	han, err := fonts.ParseHanStyle(c.str("han-style"))
	if err != nil {
		c.bad("han-style", "%v", err)
	}
	return document.NewRenderer(append(ropts, document.WithHanStyle(han))...)
}

// newHandler wires storage, renderer, signer and course settings.
func newHandler(ctx context.Context, c *config, log *slog.Logger, mode signMode, obs ...consumer.StageObserver) (*handlerParts, error) {
	var sopts []storage.Option
	if v := c.str("s3-endpoint"); v != "" {
		sopts = append(sopts, storage.WithEndpoint(v))
	}
	sopts = append(sopts, storage.WithRegion(c.str("s3-region")), storage.WithPathStyle(c.bool("s3-path-style")), storage.WithLogger(log))
	if v := c.str("s3-cache-control"); v != "" {
		sopts = append(sopts, storage.WithCacheControl(v))
	}
	if v := c.str("s3-acl"); v != "" {
		sopts = append(sopts, storage.WithObjectACL(v))
	}
	loc, err := parseStorage(c.require("storage"))
	if err != nil {
		c.bad("storage", "%v", err)
	}
	var store storage.Store
	if err == nil {
		if store, err = storage.Open(ctx, loc.url, sopts...); err != nil {
			c.bad("storage", "%v", err)
		}
	}
	for _, n := range []string{"download-url", "verify-url"} {
		if v := c.str(n); v != "" || n == "download-url" {
			if err := checkPublicURL(v); err != nil {
				c.bad(n, "%v", err)
			}
		}
	}
	download := strings.TrimRight(c.str("download-url"), "/")
	verify := strings.TrimRight(c.str("verify-url"), "/")
	if verify == "" {
		verify = download
	}
	var signer *signing.Signer
	if mode != signNone {
		var err error
		if signer, err = loadSigner(c, log, mode == signDevKey); err != nil {
			c.bad("signing-key", "%v", err)
		}
	}
	site := courses.Site{}
	if path := c.str("site-config"); path != "" {
		if site, err = courses.LoadSite(path); err != nil {
			c.bad("site-config", "%v", err)
		}
	}
	catalog, err := courses.Load(c.str("cert-data"), site, courses.WithLogger(log))
	if err != nil {
		c.bad("cert-data", "%v", err)
	}
	renderer, err := newRenderer(c, log)
	if err != nil {
		c.bad("designs", "%v", err)
	}
	if err := c.err(); err != nil {
		return nil, err
	}
	cfg := consumer.HandlerConfig{
		Store: store, Renderer: renderer, Catalog: catalog,
		DownloadURL: download, VerifyURL: verify, Logger: log,
		StrictDesigns: c.bool("strict-designs"),
	}
	if signer != nil {
		cfg.Signer = signer
		// The public key lives next to the certificates for verify.html.
		if err := store.Put(ctx, consumer.PublicKeyKey(signer.Fingerprint()), signer.PublicKey(), "application/pgp-keys"); err != nil {
			return nil, fmt.Errorf("store public key: %w", err)
		}
	}
	for _, o := range obs {
		cfg = consumer.ObserveStages(cfg, o)
	}
	return &handlerParts{handler: consumer.NewHandler(cfg), store: store, signer: signer, fileDir: loc.dir}, nil
}

// loadSigner loads the configured key, or generates a development key.
func loadSigner(c *config, log *slog.Logger, devKey bool) (*signing.Signer, error) {
	path := c.str("signing-key")
	pass := []byte(c.str("signing-passphrase"))
	if f := c.str("signing-passphrase-file"); f != "" {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("passphrase file: %w", err)
		}
		pass = []byte(strings.TrimRight(string(b), "\r\n"))
	}
	if path == "" {
		if !devKey {
			return nil, errors.New("required: certificates must be signed (make a key with 'certd keygen')")
		}
		path = filepath.Join(c.str("data-dir"), "dev-signing-key.asc")
		if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
			priv, pub, err := signing.GenerateKey("certd development key", "certd-dev@localhost")
			if err != nil {
				return nil, fmt.Errorf("generate development key: %w", err)
			}
			if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
				return nil, err
			}
			if err := os.WriteFile(path, priv, 0o600); err != nil {
				return nil, err
			}
			_ = os.WriteFile(strings.TrimSuffix(path, ".asc")+".pub.asc", pub, 0o644)
		}
		log.Warn("!!! NO SIGNING KEY CONFIGURED: signing with a DEVELOPMENT key. Certificates signed with it prove nothing. Make a real key with 'certd keygen' and set CERTD_SIGNING_KEY.", "dev_key", path)
		pass = nil
	}
	if err := checkKeyFile(path, c.bool("signing-key-readable")); err != nil {
		return nil, err
	}
	s, err := signing.LoadSigner(path, pass)
	if err != nil {
		return nil, err
	}
	log.Info("signing key loaded", "fingerprint", s.Fingerprint())
	return s, nil
}

// checkKeyFile refuses a private key file that group or others can read,
// unless allowed.
func checkKeyFile(path string, allowReadable bool) error {
	fi, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("signing key: %w", err)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 && !allowReadable {
		return fmt.Errorf("signing key %s can be read by group or others (mode %04o): chmod 600 it, or set signing-key-readable=true to accept that", path, perm)
	}
	return nil
}

func newConsumer(c *config, p *pipeline.Pipeline, h consumer.JobHandler, log *slog.Logger, extra ...consumer.Option) *consumer.Consumer {
	workers := c.int("workers")
	if workers <= 0 {
		workers = runtime.NumCPU()
	}
	return consumer.New(p, h, append([]consumer.Option{
		consumer.WithLogger(log),
		consumer.WithRegion(c.str("region")),
		consumer.WithWorkers(workers),
		consumer.WithMaxAttempts(c.int("max-attempts")),
		consumer.WithRetryDelay(c.duration("retry-delay")),
		consumer.WithDrainTimeout(c.duration("drain-timeout")),
	}, extra...)...)
}

// checkControlToken refuses, before anything starts, a control token too
// short for a listen address beyond loopback (the control service checks
// it again when it listens).
func checkControlToken(c *config) {
	tok := c.str("control-token")
	if tok == "" || len(tok) >= control.MinToken {
		return
	}
	host, _, err := net.SplitHostPort(c.str("grpc-addr"))
	if err != nil {
		return // Listen reports the address
	}
	if ip := net.ParseIP(host); strings.EqualFold(host, "localhost") || (ip != nil && ip.IsLoopback()) {
		return
	}
	c.bad("control-token", "%d bytes is too short for grpc-addr %s beyond loopback; use at least %d (e.g. openssl rand -hex 24)", len(tok), c.str("grpc-addr"), control.MinToken)
}

func newControl(c *config, p *pipeline.Pipeline, xq *xqueue.Client, log *slog.Logger) (*control.Service, control.ServerConfig) {
	opts := []control.Option{control.WithLogger(log), control.WithRegion(c.str("region"))}
	if xq != nil {
		opts = append(opts, control.WithXQueue(xq), control.WithXqueueURL(redactURL(c.str("xqueue-url"))))
	}
	return control.NewService(p, opts...), control.ServerConfig{
		Token: c.str("control-token"), TLSCert: c.str("grpc-tls-cert"), TLSKey: c.str("grpc-tls-key"), Logger: log,
	}
}

// runAll is `certd all` (and, with a feeder, `certd demo`).
func runAll(ctx context.Context, name string, args []string, stdout, stderr io.Writer, feed func(ctx context.Context, env *allEnv) error) error {
	names := join(natsSettings, xqueueSettings, bridgeSettings, handlerSettings, consumerSettings, controlSettings, httpSettings)
	c := newConfig(name, stderr, names...)
	var once bool
	if feed != nil {
		c.fs.BoolVar(&once, "once", false, "exit after the sample jobs are answered")
	}
	if err := c.parse(args); err != nil {
		return err
	}
	log := newLogger(c, stderr)
	if c.str("storage") == "" {
		if err := c.useLocalStorage(filepath.Join(c.str("data-dir"), "www")); err != nil {
			return err
		}
	}
	if c.str("download-url") == "" {
		c.values["download-url"] = "http://" + c.str("http-addr")
	}
	checkControlToken(c)
	if err := c.err(); err != nil {
		return err
	}
	p, closeNATS, err := startPipeline(ctx, c, log, true, true)
	if err != nil {
		return err
	}
	defer closeNATS()
	nc := p.NC
	xq, err := newXQueue(c, log)
	if err != nil {
		return err
	}
	obs, err := newObserver(c, log, "all")
	if err != nil {
		return err
	}
	defer obs.close()
	parts, err := newHandler(ctx, c, log, signDevKey, obs.m.ObserveStage)
	if err != nil {
		return err
	}
	br := newBridge(c, p, xq, log, bridge.WithMetrics(obs.m))
	cons := newConsumer(c, p, parts.handler, log, consumer.WithMetrics(obs.m))
	svc, scfg := newControl(c, p, xq, log)
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
	g.Add("control", func(ctx context.Context) error { return control.Serve(ctx, c.str("grpc-addr"), svc, scfg) })
	obs.serve(g, log, parts.fileDir)
	log.Info("certd is running", "http", "http://"+obs.ln.Addr().String(), "grpc", c.str("grpc-addr"), "storage", c.str("storage"))
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

// supervised logs the line naming the part that stopped the process.
func supervised(err error, log *slog.Logger) error {
	var s *supervise.Stopped
	if errors.As(err, &s) {
		log.Error("a part stopped; stopping the process", "part", s.Part, "err", s.Err)
	}
	return err
}

// runPart runs a command's single part under supervision, with its HTTP
// side (health, readiness, metrics, pprof).
func runPart(ctx context.Context, name string, log *slog.Logger, f func(context.Context) error, obs *observer) error {
	g := supervise.New(ctx)
	g.Add(name, f)
	obs.serve(g, log, "")
	return supervised(g.Run(), log)
}

// allEnv is what a feeder gets to work with.
type allEnv struct {
	p      *pipeline.Pipeline
	svc    *control.Service
	log    *slog.Logger
	stdout io.Writer
}

func runBridge(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	c, log, err := loadConfig("bridge", args, stderr, join(natsSettings, xqueueSettings, bridgeSettings, httpSettings)...)
	if err != nil {
		return err
	}
	xq, err := newXQueue(c, log)
	if err != nil {
		return err
	}
	if xq == nil {
		log.Warn("no xqueue-url: this bridge relays the results of submitted jobs only")
	}
	p, closeNATS, err := startPipeline(ctx, c, log, false, false)
	if err != nil {
		return err
	}
	defer closeNATS()
	obs, err := newObserver(c, log, "bridge")
	if err != nil {
		return err
	}
	defer obs.close()
	br := newBridge(c, p, xq, log, bridge.WithMetrics(obs.m))
	if err := c.err(); err != nil {
		return err
	}
	obs.checkNATS(p.NC)
	if xq != nil {
		obs.checkXQueue(p, xq)
	}
	return runPart(ctx, "bridge", log, br.Run, obs)
}

func runConsumer(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	c, log, err := loadConfig("consumer", args, stderr, join(natsSettings, handlerSettings, consumerSettings, httpSettings)...)
	if err != nil {
		return err
	}
	c.require("storage")
	c.require("signing-key")
	if err := c.err(); err != nil {
		return err
	}
	p, closeNATS, err := startPipeline(ctx, c, log, false, true)
	if err != nil {
		return err
	}
	defer closeNATS()
	obs, err := newObserver(c, log, "consumer")
	if err != nil {
		return err
	}
	defer obs.close()
	parts, err := newHandler(ctx, c, log, signRequired, obs.m.ObserveStage)
	if err != nil {
		return err
	}
	cons := newConsumer(c, p, parts.handler, log, consumer.WithMetrics(obs.m))
	if err := c.err(); err != nil {
		return err
	}
	obs.checkNATS(p.NC)
	obs.checkHandler(parts)
	return runPart(ctx, "consumer", log, cons.Run, obs)
}

func runControl(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	c, log, err := loadConfig("control", args, stderr, join(natsSettings, controlSettings, xqueueSettings, httpSettings)...)
	if err != nil {
		return err
	}
	checkControlToken(c)
	if err := c.err(); err != nil {
		return err
	}
	xq, err := newXQueue(c, log)
	if err != nil {
		return err
	}
	p, closeNATS, err := startPipeline(ctx, c, log, false, false)
	if err != nil {
		return err
	}
	defer closeNATS()
	obs, err := newObserver(c, log, "control")
	if err != nil {
		return err
	}
	defer obs.close()
	obs.checkNATS(p.NC)
	svc, scfg := newControl(c, p, xq, log)
	return runPart(ctx, "control", log, func(ctx context.Context) error { return control.Serve(ctx, c.str("grpc-addr"), svc, scfg) }, obs)
}
