package webserve_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/certd-dev/certd/internal/webserve"
)

func probe(t *testing.T, h http.Handler, path string) (int, string) {
	t.Helper()
	rr := httptest.NewRecorder()
	h.ServeHTTP(rr, httptest.NewRequest("GET", path, nil))
	return rr.Code, rr.Body.String()
}

// /readyz is 200 only when every check passes and names the one that
// fails; /healthz stays 200 (the process is alive); /metrics is served
// when given; pprof is not on the main server.
func TestReadinessLivenessAndMetrics(t *testing.T) {
	natsUp := true
	srv := webserve.New(webserve.Config{Logger: slog.New(slog.DiscardHandler),
		Ready: []webserve.Check{
			{Name: "nats", Check: func(context.Context) error {
				if !natsUp {
					return errors.New("not connected")
				}
				return nil
			}},
			{Name: "storage", Check: func(context.Context) error { return nil }},
		},
		Metrics: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "certd_up 1\n") }),
	})
	h := srv.Handler()
	if code, body := probe(t, h, "/readyz"); code != 200 || !strings.Contains(body, "nats: ok") || !strings.HasSuffix(body, "ok\n") {
		t.Errorf("/readyz when ready: %d %q", code, body)
	}
	natsUp = false
	if code, body := probe(t, h, "/readyz"); code != http.StatusServiceUnavailable || !strings.Contains(body, "nats: not ready: not connected") || !strings.Contains(body, "storage: ok") {
		t.Errorf("/readyz with NATS down: %d %q", code, body)
	}
	if code, _ := probe(t, h, "/healthz"); code != 200 {
		t.Errorf("/healthz with NATS down: %d, want 200 (alive)", code)
	}
	if code, body := probe(t, h, "/metrics"); code != 200 || body != "certd_up 1\n" {
		t.Errorf("/metrics: %d %q", code, body)
	}
	if code, _ := probe(t, h, "/debug/pprof/"); code != http.StatusNotFound {
		t.Errorf("/debug/pprof/ on the main server: %d, want 404", code)
	}
}

// A readiness check that hangs is cut off at ReadyTimeout and reported.
func TestReadinessCheckIsBounded(t *testing.T) {
	srv := webserve.New(webserve.Config{Logger: slog.New(slog.DiscardHandler), Ready: []webserve.Check{
		{Name: "xqueue", Check: func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() }},
	}})
	if code, body := probe(t, srv.Handler(), "/readyz"); code != http.StatusServiceUnavailable || !strings.Contains(body, "xqueue: not ready: context deadline exceeded") {
		t.Errorf("/readyz with a hanging check: %d %q", code, body)
	}
}

// ServePprof serves the profiles on its own listener.
func TestPprofOnItsOwnAddress(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- webserve.ServePprof(ctx, ln, webserve.Config{Logger: slog.New(slog.DiscardHandler)}) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	resp, err := http.Get("http://" + ln.Addr().String() + "/debug/pprof/goroutine?debug=1")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(b), "goroutine profile:") {
		t.Errorf("pprof goroutine profile: %d %.200q", resp.StatusCode, b)
	}
	http.DefaultClient.CloseIdleConnections()
}
