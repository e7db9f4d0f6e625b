// Package promtest runs a real Prometheus server (Debian's prometheus) for
// tests: it scrapes one target every second, and Query reads an instant
// query back through its HTTP API. The server stops when the test ends.
package promtest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
)

// Server is a Prometheus server scraping one target.
type Server struct {
	Addr string // host:port of its HTTP API

	mu   sync.Mutex
	logs bytes.Buffer
}

// Start runs prometheus against target (host:port serving /metrics); the
// test fails if prometheus is not installed.
func Start(t testing.TB, target string) *Server {
	t.Helper()
	bin, err := exec.LookPath("prometheus")
	if err != nil {
		t.Fatalf("prometheus is needed (Debian package prometheus): %v", err)
	}
	dir := t.TempDir()
	cfg := fmt.Sprintf("global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: certd\n    static_configs:\n      - targets: [%q]\n", target)
	if err := os.WriteFile(filepath.Join(dir, "prometheus.yml"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{Addr: ln.Addr().String()}
	ln.Close()
	cmd := exec.Command(bin, "--config.file="+filepath.Join(dir, "prometheus.yml"),
		"--storage.tsdb.path="+filepath.Join(dir, "data"), "--web.listen-address="+s.Addr)
	cmd.Stdout, cmd.Stderr = (*logWriter)(s), (*logWriter)(s)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		_ = cmd.Wait()
	})
	return s
}

type logWriter Server

func (w *logWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.logs.Write(p)
}

// Logs is what prometheus printed so far.
func (s *Server) Logs() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.logs.String()
}

// Query returns the value of the first series of an instant query; false
// while there is none (or Prometheus does not answer yet).
func (s *Server) Query(ctx context.Context, q string) (float64, bool) {
	req, err := http.NewRequestWithContext(ctx, "GET", "http://"+s.Addr+"/api/v1/query?query="+url.QueryEscape(q), nil)
	if err != nil {
		return 0, false
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, false
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	var r struct {
		Data struct {
			Result []struct {
				Value [2]any `json:"value"`
			} `json:"result"`
		} `json:"data"`
	}
	if json.Unmarshal(b, &r) != nil || len(r.Data.Result) == 0 {
		return 0, false
	}
	v, _ := r.Data.Result[0].Value[1].(string)
	f, err := strconv.ParseFloat(v, 64)
	return f, err == nil
}
