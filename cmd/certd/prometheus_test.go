package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"google.golang.org/grpc"

	certdv1 "github.com/certd-dev/certd/proto/certd/v1"
)

// A real Prometheus server scraping a running `certd all` receives the job
// counters and stage histograms of the jobs it ran, labelled with the
// process's region and role; /readyz says the process is ready.
func TestPrometheusScrapesAll(t *testing.T) {
	clearCertdEnv(t)
	bin, err := exec.LookPath("prometheus")
	if err != nil {
		t.Fatalf("prometheus is needed (Debian package prometheus): %v", err)
	}
	httpAddr, grpcAddr, promAddr := freeAddr(t), freeAddr(t), freeAddr(t)
	all := runBackground(t, "all", "--data-dir", t.TempDir(), "--region", "eu-test",
		"--http-addr", httpAddr, "--grpc-addr", grpcAddr)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()

	dir := t.TempDir()
	cfg := fmt.Sprintf("global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: certd\n    static_configs:\n      - targets: [%q]\n", httpAddr)
	if err := os.WriteFile(filepath.Join(dir, "prometheus.yml"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	prom := exec.Command(bin, "--config.file="+filepath.Join(dir, "prometheus.yml"),
		"--storage.tsdb.path="+filepath.Join(dir, "data"), "--web.listen-address="+promAddr)
	prom.Stdout, prom.Stderr = &logs, &logs
	if err := prom.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		prom.Process.Signal(os.Interrupt)
		prom.Wait()
	}()

	cl := controlClient(t, grpcAddr)
	watch, err := cl.WatchJobs(ctx, &certdv1.WatchJobsRequest{Filter: &certdv1.JobFilter{CourseId: "course-v1:edX+DemoX+Demo_Course"}}, grpc.WaitForReady(true))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := watch.Header(); err != nil {
		t.Fatal(err)
	}
	const n = 3
	ids := map[string]bool{}
	for i := range n {
		sub, err := cl.Submit(ctx, &certdv1.SubmitRequest{
			Action: certdv1.Action_ACTION_CREATE, Username: "u" + strconv.Itoa(i), CourseId: "course-v1:edX+DemoX+Demo_Course",
			Name: "Learner " + strconv.Itoa(i), Grade: "Pass",
		})
		if err != nil {
			t.Fatal(err)
		}
		ids[sub.Id] = true
	}
	for answered := 0; answered < n; {
		ev, err := watch.Recv()
		if err != nil {
			t.Fatalf("watch: %v\n%s", err, all.errOut.text())
		}
		if ids[ev.Id] && ev.State == certdv1.JobState_JOB_STATE_ANSWERED {
			delete(ids, ev.Id)
			answered++
		}
	}

	resp, err := http.Get("http://" + httpAddr + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("/readyz: %d %s", resp.StatusCode, body)
	}

	want := map[string]float64{
		`sum(certd_jobs_total{region="eu-test",role="all",action="create",source="submit",outcome="ok"})`: n,
		`sum(certd_stage_duration_seconds_count{region="eu-test",role="all",stage="render"})`:             n,
		`sum(certd_stage_duration_seconds_count{region="eu-test",role="all",stage="store"})`:              n,
		`sum(certd_stage_duration_seconds_count{region="eu-test",role="all",stage="answer"})`:             n,
		`certd_jobs_in_flight{region="eu-test",role="all"}`:                                               0,
	}
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for q, v := range want {
		for {
			got, ok := promQuery(ctx, promAddr, q)
			if ok && got >= v {
				if got != v {
					t.Errorf("%s = %v, want %v", q, got, v)
				}
				break
			}
			select {
			case <-ctx.Done():
				t.Fatalf("%s never reached %v in Prometheus (last %v, %v); its log:\n%s", q, v, got, ok, logs.String())
			case <-tick.C: // Prometheus offers no event to wait for
			}
		}
	}
}

// promQuery returns the value of the first series of an instant query.
func promQuery(ctx context.Context, addr, q string) (float64, bool) {
	req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+addr+"/api/v1/query?query="+url.QueryEscape(q), nil)
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
	s, _ := r.Data.Result[0].Value[1].(string)
	v, err := strconv.ParseFloat(s, 64)
	return v, err == nil
}
