package metrics_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/certd-dev/certd/internal/metrics"
	"github.com/certd-dev/certd/internal/metrics/promtest"
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
	target := httptest.NewServer(exercised().Handler())
	defer target.Close()
	prom := promtest.Start(t, strings.TrimPrefix(target.URL, "http://"))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	query := `certd_xqueue_queue_length{region="eu",role="consumer"}`
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		if v, ok := prom.Query(ctx, query); ok {
			if v != 17 {
				t.Fatalf("Prometheus has certd_xqueue_queue_length = %v, want 17", v)
			}
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("the series never arrived in Prometheus; its log:\n%s", prom.Logs())
		case <-tick.C: // Prometheus offers no event to wait for
		}
	}
}
