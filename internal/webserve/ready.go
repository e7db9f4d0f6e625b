package webserve

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"
)

// ReadyTimeout bounds each readiness check.
const ReadyTimeout = 2 * time.Second

// Check is one readiness condition, such as "nats" (connected) or "storage"
// (reachable). Its error is shown to the prober: it must not carry secrets.
type Check struct {
	Name  string
	Check func(ctx context.Context) error
}

// ready serves GET /readyz: 200 "ok" when every check passes, else 503
// with one line per check.
func (s *Server) ready(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	var b strings.Builder
	failed := 0
	for _, c := range s.cfg.Ready {
		ctx, cancel := context.WithTimeout(r.Context(), ReadyTimeout)
		err := c.Check(ctx)
		cancel()
		if err != nil {
			failed++
			fmt.Fprintf(&b, "%s: not ready: %v\n", c.Name, err)
			continue
		}
		fmt.Fprintf(&b, "%s: ok\n", c.Name)
	}
	if failed > 0 {
		s.log.Debug("not ready", "checks", b.String())
		w.WriteHeader(http.StatusServiceUnavailable)
	}
	fmt.Fprint(w, b.String())
	if failed == 0 {
		fmt.Fprintln(w, "ok")
	}
}
