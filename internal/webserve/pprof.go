package webserve

import (
	"context"
	"net"
	"net/http"
	"net/http/pprof"
)

// ServePprof serves Go's profiling endpoints (/debug/pprof/...) on ln, a
// listener of its own, until ctx ends. The handlers are registered on a
// private mux, never on http.DefaultServeMux, so they are reachable only
// through ln; a CPU profile may take up to WriteTimeout.
func ServePprof(ctx context.Context, ln net.Listener, cfg Config) error {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	s := New(Config{Logger: cfg.Logger, IdleTimeout: cfg.IdleTimeout})
	s.mux = mux
	return s.Serve(ctx, ln)
}
