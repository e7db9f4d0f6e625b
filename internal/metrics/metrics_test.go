package metrics_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/certd-dev/certd/internal/metrics"
)

// exercised returns metrics with every series touched once.
func exercised() *metrics.Metrics {
	m := metrics.New(metrics.Config{Region: "eu", Role: "consumer", Version: "test"})
	m.JobDone("create", "xqueue", "ok")
	m.JobDone("remove", "submit", "error")
	for _, s := range metrics.Stages {
		m.ObserveStage(s, 3*time.Millisecond)
	}
	m.Retry("create")
	m.Dead("regen")
	m.SetHeld(2)
	m.JobStarted() // one job still under way
	m.SetXQueueLength(17)
	m.SetAnswersWaiting(3)
	m.SetIntakeHolder(true)
	return m
}

func scrape(t *testing.T, h http.Handler) string {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if rec.Code != 200 {
		t.Fatalf("GET /metrics: %d", rec.Code)
	}
	return rec.Body.String()
}

// TestExposition: every certd metric is served with region and role.
func TestExposition(t *testing.T) {
	body := scrape(t, exercised().Handler())
	for _, want := range []string{
		`certd_jobs_total{action="create",outcome="ok",region="eu",role="consumer",source="xqueue"} 1`,
		`certd_stage_duration_seconds_count{region="eu",role="consumer",stage="render"} 1`,
		`certd_job_retries_total{action="create",region="eu",role="consumer"} 1`,
		`certd_jobs_dead_total{action="regen",region="eu",role="consumer"} 1`,
		`certd_jobs_held{region="eu",role="consumer"} 2`,
		`certd_jobs_in_flight{region="eu",role="consumer"} 1`,
		`certd_xqueue_queue_length{region="eu",role="consumer"} 17`,
		`certd_answers_waiting{region="eu",role="consumer"} 3`,
		`certd_intake_holder{region="eu",role="consumer"} 1`,
		`certd_build_info{region="eu",role="consumer",version="test"} 1`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("exposition lacks %s", want)
		}
	}
}

// TestUnknownLabelValuesAreBounded: values outside the fixed sets are
// counted as "other", never as new series.
func TestUnknownLabelValuesAreBounded(t *testing.T) {
	m := metrics.New(metrics.Config{Role: "all"})
	for i := range 50 {
		m.JobDone(fmt.Sprint("act", i), "evil", "x")
	}
	body := scrape(t, m.Handler())
	if n := strings.Count(body, "certd_jobs_total{"); n != 1 {
		t.Errorf("%d series of certd_jobs_total, want 1", n)
	}
	if !strings.Contains(body, `certd_jobs_total{action="other",outcome="other",region="default",role="all",source="other"} 50`) {
		t.Errorf("unknown values not counted as other:\n%s", body)
	}
}

// TestNilMetricsRecordsNothing: components may hold a nil *Metrics.
func TestNilMetricsRecordsNothing(t *testing.T) {
	var m *metrics.Metrics
	m.JobDone("create", "xqueue", "ok")
	m.ObserveStage("render", time.Second)
	m.JobStarted()()
	m.SetIntakeHolder(true)
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if rec.Code != http.StatusNotFound {
		t.Errorf("nil metrics handler: %d, want 404", rec.Code)
	}
}

// TestPromtoolAcceptsMetrics: names and help pass `promtool check metrics`.
func TestPromtoolAcceptsMetrics(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Fatalf("promtool is needed (Debian package prometheus): %v", err)
	}
	cmd := exec.Command(promtool, "check", "metrics")
	cmd.Stdin = strings.NewReader(scrape(t, exercised().Handler()))
	out, err := cmd.CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) != 0 {
		t.Fatalf("promtool check metrics: %v\n%s", err, out)
	}
}

// TestPrometheusScrapes: a real Prometheus server scraping the handler
// stores the certd series, as its query API shows.
func TestPrometheusScrapes(t *testing.T) {
	bin, err := exec.LookPath("prometheus")
	if err != nil {
		t.Fatalf("prometheus is needed (Debian package prometheus): %v", err)
	}
	target := httptest.NewServer(exercised().Handler())
	defer target.Close()
	dir := t.TempDir()
	cfg := fmt.Sprintf("global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: certd\n    static_configs:\n      - targets: [%q]\n",
		strings.TrimPrefix(target.URL, "http://"))
	if err := os.WriteFile(filepath.Join(dir, "prometheus.yml"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var logs bytes.Buffer
	cmd := exec.CommandContext(ctx, bin, "--config.file="+filepath.Join(dir, "prometheus.yml"),
		"--storage.tsdb.path="+filepath.Join(dir, "data"), "--web.listen-address="+addr)
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		cmd.Process.Signal(os.Interrupt)
		cmd.Wait()
	}()
	query := "http://" + addr + "/api/v1/query?query=" + url.QueryEscape(`certd_xqueue_queue_length{region="eu",role="consumer"}`)
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		if v, ok := queryValue(ctx, query); ok {
			if v != "17" {
				t.Fatalf("Prometheus has certd_xqueue_queue_length = %s, want 17", v)
			}
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("the series never arrived in Prometheus; its log:\n%s", logs.String())
		case <-tick.C: // Prometheus offers no event to wait for
		}
	}
}

// queryValue returns the value of the first series of an instant query.
func queryValue(ctx context.Context, q string) (string, bool) {
	req, _ := http.NewRequestWithContext(ctx, "GET", q, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", false
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
		return "", false
	}
	s, _ := r.Data.Result[0].Value[1].(string)
	return s, true
}
