// Package webserve is certd's small HTTP server: liveness (/healthz),
// readiness (/readyz), metrics (/metrics) and, with local (file://)
// storage, the stored certificates, so that the addresses in answers open
// in a browser. Other parts may add handlers (Handle) before Serve.
//
// Invariants of the file serving:
//   - Files are read through an os.Root opened on the storage directory
//     (its FS), so nothing outside that directory is ever read.
//   - Only the top-level downloads/ and cert/ trees (and the issuer's DID
//     document, exactly .well-known/did.json or did.json) are served, only
//     regular files, and only names whose every element is a plain name:
//     no symbolic link is followed (an element that is a link is not
//     found), no hidden (dot) element, no "..", no directory listings.
//   - The content type comes from a fixed table of extensions (pdf, sig,
//     asc, html, json); other files are not served. Every answer carries
//     X-Content-Type-Options: nosniff, and HTML a Content-Security-Policy
//     that allows no scripts, frames, forms or outside resources.
//   - /healthz answers 200 while the process serves HTTP at all (and
//     Config.Healthy, if set, passes). /readyz answers 200 only when every
//     Config.Ready check passes, each bounded by ReadyTimeout and run one
//     after another, so a probe costs at most len(Ready)*ReadyTimeout; a
//     503 names the failing checks, never a secret.
//   - Connections are bounded in time: headers must arrive within
//     ReadHeaderTimeout, idle keep-alive connections are closed after
//     IdleTimeout, and headers are capped at MaxHeaderBytes.
package webserve

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path"
	"strings"
	"sync"
	"time"
)

// Timeouts and limits of the server.
const (
	ReadHeaderTimeout = 10 * time.Second
	ReadTimeout       = 30 * time.Second
	WriteTimeout      = 2 * time.Minute
	IdleTimeout       = 60 * time.Second
	MaxHeaderBytes    = 16 << 10
	ShutdownGrace     = 5 * time.Second
)

// ContentTypes is the fixed table of served extensions.
var ContentTypes = map[string]string{
	".pdf":  "application/pdf",
	".sig":  "application/pgp-signature",
	".asc":  "application/pgp-keys",
	".html": "text/html; charset=utf-8",
	".json": "application/json",
}

// PageCSP is the Content-Security-Policy of served HTML pages: their own
// inline style, nothing else.
const PageCSP = "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// served are the top-level trees of the store that are served.
var served = []string{"downloads", "cert"}

// Config says what to serve.
type Config struct {
	// Root is the local storage directory whose downloads/ and cert/
	// trees are served ("": serve no files).
	Root string
	// Healthy reports whether the process is healthy, for GET /healthz
	// (nil: always).
	Healthy func() error
	// Ready are the readiness checks of GET /readyz (none: always ready).
	Ready []Check
	// Metrics, if set, is served on GET /metrics.
	Metrics http.Handler
	// Logger receives start and stop lines (default slog.Default()).
	Logger *slog.Logger
	// IdleTimeout closes keep-alive connections idle this long (default
	// IdleTimeout).
	IdleTimeout time.Duration
	// StatusMaxAge, if set, is the Cache-Control max-age of the revocation
	// lists under cert/status/ (their ttl).
	StatusMaxAge time.Duration
}

// Server is the HTTP server. Create it with New; add handlers with Handle;
// run it with Serve.
type Server struct {
	cfg Config
	log *slog.Logger
	mux *http.ServeMux
}

// New returns a server for cfg.
func New(cfg Config) *Server {
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = IdleTimeout
	}
	s := &Server{cfg: cfg, log: cfg.Logger, mux: http.NewServeMux()}
	if s.log == nil {
		s.log = slog.Default()
	}
	s.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Content-Type-Options", "nosniff")
		if cfg.Healthy != nil {
			if err := cfg.Healthy(); err != nil {
				http.Error(w, err.Error(), http.StatusServiceUnavailable)
				return
			}
		}
		fmt.Fprintln(w, "ok")
	})
	s.mux.HandleFunc("GET /readyz", s.ready)
	if cfg.Metrics != nil {
		s.mux.Handle("GET /metrics", cfg.Metrics)
	}
	if cfg.Root != "" {
		for _, top := range served {
			s.mux.HandleFunc("GET /"+top+"/", s.serveFile)
		}
		s.mux.HandleFunc("GET /.well-known/did.json", s.serveFile)
		s.mux.HandleFunc("GET /did.json", s.serveFile)
	}
	return s
}

// Handle adds a handler (for example /metrics); call it before Serve.
func (s *Server) Handle(pattern string, h http.Handler) { s.mux.Handle(pattern, h) }

// Handler is the server's handler, for tests and embedding.
func (s *Server) Handler() http.Handler { return s.mux }

// Serve serves on ln until ctx ends, then shuts down, giving requests
// under way ShutdownGrace to finish. It returns nil after a shutdown
// caused by ctx.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{
		Handler:           s.mux,
		ReadHeaderTimeout: ReadHeaderTimeout,
		ReadTimeout:       ReadTimeout,
		WriteTimeout:      WriteTimeout,
		IdleTimeout:       s.cfg.IdleTimeout,
		MaxHeaderBytes:    MaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	errc := make(chan error, 1)
	wg.Add(1)
	go func() { defer wg.Done(); errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("http server: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), ShutdownGrace)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		_ = srv.Close()
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("http server: %w", err)
	}
	s.log.Info("http server stopped")
	return nil
}

// serveFile serves one stored file (see the package invariants).
// /cert/<name> without an extension shows /cert/<name>/valid.html (the
// address printed on certificates).
func (s *Server) serveFile(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("X-Content-Type-Options", "nosniff")
	name, ok := fileName(r.URL.Path)
	if !ok {
		http.NotFound(w, r)
		return
	}
	root, err := os.OpenRoot(s.cfg.Root)
	if err != nil {
		s.log.Error("http: open the storage directory", "err", err)
		http.Error(w, "storage unavailable", http.StatusServiceUnavailable)
		return
	}
	defer root.Close()
	fsys := root.FS()
	f, info, err := openPlain(fsys, name)
	if err != nil {
		http.NotFound(w, r)
		return
	}
	defer f.Close()
	rs, ok := f.(io.ReadSeeker)
	if !ok {
		http.NotFound(w, r)
		return
	}
	ct := ContentTypes[path.Ext(name)]
	w.Header().Set("Content-Type", ct)
	if s.cfg.StatusMaxAge > 0 && strings.HasPrefix(name, "cert/status/") {
		w.Header().Set("Cache-Control", fmt.Sprintf("max-age=%d", int(s.cfg.StatusMaxAge/time.Second)))
	}
	if strings.HasPrefix(ct, "text/html") {
		w.Header().Set("Content-Security-Policy", PageCSP)
		w.Header().Set("Referrer-Policy", "no-referrer")
	}
	http.ServeContent(w, r, "", info.ModTime(), rs)
}

// fileName maps a request path to a store name, or reports that it names
// nothing that may be served.
func fileName(urlPath string) (string, bool) {
	name := strings.TrimPrefix(urlPath, "/")
	if name == ".well-known/did.json" || name == "did.json" {
		return name, true // the issuer's DID document (did:web)
	}
	if strings.HasSuffix(name, "/") {
		// /cert/<name>/ is the summary page too; other directories are
		// not listed.
		parts := strings.Split(strings.TrimSuffix(name, "/"), "/")
		if len(parts) != 2 || parts[0] != "cert" {
			return "", false
		}
		name = strings.TrimSuffix(name, "/")
	}
	if !fs.ValidPath(name) || strings.ContainsAny(name, "\\\x00") {
		return "", false
	}
	parts := strings.Split(name, "/")
	for _, p := range parts {
		if p == "" || strings.HasPrefix(p, ".") {
			return "", false
		}
	}
	if len(parts) == 2 && parts[0] == "cert" && path.Ext(parts[1]) == "" {
		name += "/valid.html"
		parts = append(parts, "valid.html")
	}
	if len(parts) < 2 || (parts[0] != "downloads" && parts[0] != "cert") {
		return "", false
	}
	if _, ok := ContentTypes[path.Ext(name)]; !ok {
		return "", false
	}
	return name, true
}

// openPlain opens name in fsys if no element of it is a symbolic link and
// it is a regular file.
func openPlain(fsys fs.FS, name string) (fs.File, fs.FileInfo, error) {
	parts := strings.Split(name, "/")
	for i := range parts {
		fi, err := fs.Lstat(fsys, strings.Join(parts[:i+1], "/"))
		if err != nil {
			return nil, nil, err
		}
		if fi.Mode()&fs.ModeSymlink != 0 {
			return nil, nil, fs.ErrNotExist
		}
	}
	f, err := fsys.Open(name)
	if err != nil {
		return nil, nil, err
	}
	info, err := f.Stat()
	if err != nil || !info.Mode().IsRegular() {
		f.Close()
		return nil, nil, fs.ErrNotExist
	}
	return f, info, nil
}
