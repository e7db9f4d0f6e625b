package control

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/reflection"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/tap"

	certdv1 "github.com/certd-dev/certd/proto/certd/v1"
)

// ServerConfig says how the control service is put on the network.
type ServerConfig struct {
	// Token is the bearer token every call must carry as
	// "authorization: Bearer <token>", reflection included; only health
	// checks are open.
	// Without a token the service refuses to listen on anything but a
	// loopback address, and every local caller is trusted.
	Token string
	// TLSCert and TLSKey are PEM files; with both set the service speaks
	// TLS only. Set both or neither.
	TLSCert, TLSKey string
	// Logger receives start, stop and denied-call logs (default the
	// service's logger). Tokens are never logged.
	Logger *slog.Logger
	// ShutdownGrace bounds how long calls under way may take to finish
	// after the serve context ends (default 10 s); streams such as
	// WatchJobs end at once.
	ShutdownGrace time.Duration
	// DenyLogInterval is how often refused calls are logged: one line per
	// interval carries the count and the last refusal (default 10 s).
	DenyLogInterval time.Duration
}

// Limits of the control service. A caller without the token costs only
// the request headers: the token is checked when the headers arrive, before
// any message is read (grpc.InTapHandle).
const (
	// MaxRecvMsgSize bounds one request message. The largest real
	// requests are a Requeue or Fail naming MaxIDs ids (10,000 ids of up to
	// 64 characters take about 700 KB) and a Submit, whose job body is
	// capped at 64 KiB.
	MaxRecvMsgSize = 1 << 20
	// MaxConcurrentStreams bounds the calls open at once on one connection.
	MaxConcurrentStreams = 64
	// MaxHeaderListSize bounds the request headers of one call.
	MaxHeaderListSize = 16 << 10
	// MinToken is the shortest token accepted when the service
	// listens beyond loopback.
	MinToken = 16
)

// ErrNoTokenNotLoopback is returned by Listen for a non-loopback address
// without a token: an unauthenticated control service must not be
// reachable from other machines.
var ErrNoTokenNotLoopback = errors.New("control: no token configured; refusing to listen on a non-loopback address")

// ErrShortToken is returned by Listen for a token shorter than MinToken
// bytes on a non-loopback address.
var ErrShortToken = errors.New("control: the token is too short for a non-loopback address")

// Server is the control service on a listening socket. Create it with
// Listen, run it with Serve.
type Server struct {
	svc    *Service
	cfg    ServerConfig
	log    *slog.Logger
	lis    net.Listener
	gs     *grpc.Server
	health *health.Server
	denied *denyLog

	stopCtx context.Context // ends when Serve's context ends; ends streams
	stop    context.CancelFunc
}

// servedName is the gRPC service name health reports on.
const servedName = "certd.v1.Control"

// Listen checks cfg, binds addr (host:port; port 0 picks a free port, see
// Addr) and returns the server ready to Serve. Without cfg.Token the host
// must be a loopback address or "localhost".
func Listen(addr string, svc *Service, cfg ServerConfig) (*Server, error) {
	if svc == nil {
		return nil, errors.New("control: no service")
	}
	log := svc.log // already names the component
	if cfg.Logger != nil {
		log = cfg.Logger.With("component", "control")
	}
	if cfg.ShutdownGrace <= 0 {
		cfg.ShutdownGrace = 10 * time.Second
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("control: listen address %q: %w", addr, err)
	}
	if cfg.Token == "" && !isLoopbackHost(host) {
		return nil, fmt.Errorf("%w (%s): set a token, or listen on 127.0.0.1, [::1] or localhost", ErrNoTokenNotLoopback, addr)
	}
	if strings.ContainsAny(cfg.Token, " \t\r\n") {
		return nil, errors.New("control: the token must not contain spaces or line breaks")
	}
	if cfg.Token != "" && len(cfg.Token) < MinToken && !isLoopbackHost(host) {
		return nil, fmt.Errorf("%w: it is %d bytes long; make one of at least %d (e.g. openssl rand -hex 24), or listen on loopback", ErrShortToken, len(cfg.Token), MinToken)
	}
	if cfg.DenyLogInterval <= 0 {
		cfg.DenyLogInterval = 10 * time.Second
	}
	var opts []grpc.ServerOption
	useTLS := cfg.TLSCert != "" || cfg.TLSKey != ""
	if useTLS {
		if cfg.TLSCert == "" || cfg.TLSKey == "" {
			return nil, errors.New("control: TLS needs both a certificate and a key file")
		}
		cert, err := tls.LoadX509KeyPair(cfg.TLSCert, cfg.TLSKey)
		if err != nil {
			return nil, fmt.Errorf("control: load TLS key pair %s, %s: %w", cfg.TLSCert, cfg.TLSKey, err)
		}
		opts = append(opts, grpc.Creds(credentials.NewTLS(&tls.Config{
			Certificates: []tls.Certificate{cert},
			MinVersion:   tls.VersionTLS12,
		})))
	}
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("control: listen %s: %w", addr, err)
	}
	if cfg.Token == "" {
		// "localhost" could resolve to something odd; check what was bound.
		if ta, ok := lis.Addr().(*net.TCPAddr); !ok || !ta.IP.IsLoopback() {
			lis.Close()
			return nil, fmt.Errorf("%w (%s resolved to %s)", ErrNoTokenNotLoopback, addr, lis.Addr())
		}
	}
	s := &Server{svc: svc, cfg: cfg, log: log, lis: lis}
	s.stopCtx, s.stop = context.WithCancel(context.Background())
	s.denied = newDenyLog(s.log, cfg.DenyLogInterval)
	a := &authenticator{denied: s.denied}
	if cfg.Token != "" {
		sum := sha256.Sum256([]byte(cfg.Token))
		a.want = sum[:]
	}
	opts = append(opts,
		grpc.InTapHandle(a.tap),
		grpc.MaxRecvMsgSize(MaxRecvMsgSize),
		grpc.MaxConcurrentStreams(MaxConcurrentStreams),
		grpc.MaxHeaderListSize(MaxHeaderListSize),
		grpc.ChainUnaryInterceptor(a.unary, s.countUnary),
		grpc.ChainStreamInterceptor(a.stream, s.streamUntilStop),
	)
	s.gs = grpc.NewServer(opts...)
	certdv1.RegisterControlServer(s.gs, svc)
	s.health = health.NewServer()
	healthpb.RegisterHealthServer(s.gs, s.health)
	s.setHealth()
	reflection.Register(s.gs)

	switch {
	case cfg.Token == "":
		s.log.Warn("control service has no token: listening on loopback only, every local caller is trusted", "addr", lis.Addr().String())
	case !useTLS && !isLoopbackHost(host):
		s.log.Warn("control service without TLS on a non-loopback address: the token travels in clear text", "addr", lis.Addr().String())
	}
	return s, nil
}

// Addr is the address the server listens on (with the port chosen when
// addr asked for port 0).
func (s *Server) Addr() net.Addr { return s.lis.Addr() }

// Serve serves until ctx ends, then stops gracefully: streams end at once,
// unary calls under way get ShutdownGrace to finish. While serving it also
// sends the control process's heartbeat (role "control") and reports
// health SERVING while the NATS connection is up. It returns nil after a
// shutdown caused by ctx.
func (s *Server) Serve(ctx context.Context) error {
	s.log.Info("control service listening", "addr", s.lis.Addr().String(), "tls", s.cfg.TLSCert != "", "auth", s.cfg.Token != "")
	var wg sync.WaitGroup
	defer wg.Wait()
	bg, cancel := context.WithCancel(ctx)
	defer cancel()
	wg.Add(2)
	go func() { defer wg.Done(); s.svc.Heartbeat(bg) }()
	go func() { defer wg.Done(); s.watchHealth(bg) }()

	served := make(chan error, 1)
	go func() { served <- s.gs.Serve(s.lis) }()
	select {
	case err := <-served:
		s.stop()
		s.denied.close()
		if err != nil {
			return fmt.Errorf("control: serve: %w", err)
		}
		return nil
	case <-ctx.Done():
	}
	s.log.Info("control service stopping")
	s.health.Shutdown()
	s.stop() // ends WatchJobs streams
	stopped := make(chan struct{})
	go func() { s.gs.GracefulStop(); close(stopped) }()
	t := time.NewTimer(s.cfg.ShutdownGrace)
	defer t.Stop()
	select {
	case <-stopped:
	case <-t.C:
		s.log.Warn("control calls did not finish in time; closing them", "grace", s.cfg.ShutdownGrace)
		s.gs.Stop()
		<-stopped
	}
	<-served
	s.denied.close()
	return nil
}

// Close stops the server at once, closing open calls and the listener: for
// a server that will not be served, or to abort. Serve then returns.
func (s *Server) Close() {
	s.stop()
	s.health.Shutdown()
	s.gs.Stop()
	s.lis.Close()
	s.denied.close()
}

// Serve listens on addr and serves svc until ctx ends (Listen, then
// Server.Serve).
func Serve(ctx context.Context, addr string, svc *Service, cfg ServerConfig) error {
	s, err := Listen(addr, svc, cfg)
	if err != nil {
		return err
	}
	return s.Serve(ctx)
}

// setHealth reports SERVING while the pipeline's NATS connection is up.
func (s *Server) setHealth() {
	st := healthpb.HealthCheckResponse_NOT_SERVING
	if nc := s.svc.p.Conn(); nc == nil || nc.IsConnected() {
		st = healthpb.HealthCheckResponse_SERVING
	}
	s.health.SetServingStatus("", st)
	s.health.SetServingStatus(servedName, st)
}

// watchHealth follows the NATS connection's state until ctx ends.
func (s *Server) watchHealth(ctx context.Context) {
	nc := s.svc.p.Conn()
	if nc == nil {
		return
	}
	ch := nc.StatusChanged(nats.CONNECTED, nats.RECONNECTING, nats.DISCONNECTED, nats.CLOSED)
	defer nc.RemoveStatusListener(ch)
	s.setHealth()
	for {
		select {
		case <-ctx.Done():
			return
		case _, ok := <-ch:
			if ctx.Err() != nil {
				return // health is shut down; leave it NOT_SERVING
			}
			s.setHealth()
			if !ok {
				return
			}
		}
	}
}

func isLoopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// countUnary counts control calls for the heartbeat.
func (s *Server) countUnary(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	if !isControl(info.FullMethod) {
		return handler(ctx, req)
	}
	end := s.svc.track()
	start := time.Now()
	resp, err := handler(ctx, req)
	end(err)
	s.log.Debug("control call", "method", info.FullMethod, "code", status.Code(err).String(), "took", time.Since(start))
	return resp, err
}

// streamUntilStop counts streams and ends them when the server stops:
// GracefulStop would otherwise wait for WatchJobs clients forever.
func (s *Server) streamUntilStop(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	ctx, cancel := context.WithCancel(ss.Context())
	defer cancel()
	abort := abortFunc(ss.Context())
	stopAfter := context.AfterFunc(s.stopCtx, func() { cancel(); abort() })
	defer stopAfter()
	var end func(error)
	if isControl(info.FullMethod) {
		end = s.svc.track()
	}
	err := handler(srv, &ctxStream{ServerStream: ss, ctx: ctx})
	if end != nil {
		end(err)
	}
	return err
}

type ctxStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (c *ctxStream) Context() context.Context { return c.ctx }

func isControl(method string) bool { return strings.HasPrefix(method, "/"+servedName+"/") }

// open reports whether a method needs no token: only health checks, for
// load balancers and orchestrators. Reflection needs the token too (grpcurl
// sends its -H headers with reflection requests).
func open(method string) bool {
	return strings.HasPrefix(method, "/grpc.health.v1.Health/")
}

// authenticator checks the bearer token of every call except health
// checks. want is the SHA-256 of the token (nil: no token, all allowed);
// comparing fixed-size digests in constant time leaks neither the token
// nor its length. tap runs when a call's headers arrive, before its
// message is read; the interceptors check again (for calls that reach the
// service some other way).
type authenticator struct {
	want   []byte
	denied *denyLog
}

func (a *authenticator) tap(ctx context.Context, info *tap.Info) (context.Context, error) {
	if reason := a.reason(info.FullMethodName, info.Header); reason != "" {
		return ctx, a.refuse(ctx, info.FullMethodName, reason)
	}
	if info.FullMethodName == watchMethod {
		// The stream's transport context: cancelling it unblocks a Send
		// to a client that does not read (see WatchJobs).
		ctx = withAbort(ctx)
	}
	return ctx, nil
}

const watchMethod = "/" + servedName + "/WatchJobs"

func (a *authenticator) unary(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	if err := a.check(ctx, info.FullMethod); err != nil {
		return nil, err
	}
	return handler(ctx, req)
}

func (a *authenticator) stream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	if err := a.check(ss.Context(), info.FullMethod); err != nil {
		return err
	}
	return handler(srv, ss)
}

func (a *authenticator) check(ctx context.Context, method string) error {
	md, _ := metadata.FromIncomingContext(ctx)
	if reason := a.reason(method, md); reason != "" {
		return a.refuse(ctx, method, reason)
	}
	return nil
}

// reason says why a call with these headers is refused ("" if it is not).
func (a *authenticator) reason(method string, md metadata.MD) string {
	if a.want == nil || open(method) {
		return ""
	}
	vals := md.Get("authorization")
	switch {
	case len(vals) == 0:
		return "no authorization header"
	case len(vals) > 1:
		return "more than one authorization header"
	}
	scheme, tok, ok := strings.Cut(strings.TrimSpace(vals[0]), " ")
	tok = strings.TrimSpace(tok)
	if !ok || !strings.EqualFold(scheme, "Bearer") || tok == "" {
		return "authorization header is not \"Bearer <token>\""
	}
	got := sha256.Sum256([]byte(tok))
	if subtle.ConstantTimeCompare(got[:], a.want) != 1 {
		return "wrong token"
	}
	return ""
}

func (a *authenticator) refuse(ctx context.Context, method, reason string) error {
	from := "unknown"
	if p, ok := peer.FromContext(ctx); ok && p.Addr != nil {
		from = p.Addr.String()
	}
	a.denied.add(clip(method, 100), from, reason)
	return status.Error(codes.Unauthenticated, "control: "+reason+"; send \"authorization: Bearer <token>\"")
}
