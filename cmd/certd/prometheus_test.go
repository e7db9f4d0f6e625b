package main

import (
	"context"
	"io"
	"net/http"
	"strconv"
	"testing"
	"time"

	"google.golang.org/grpc"

	"github.com/certd-dev/certd/internal/metrics/promtest"
	certdv1 "github.com/certd-dev/certd/proto/certd/v1"
)

// A real Prometheus server scraping a running `certd all` receives the job
// counters and stage histograms of the jobs it ran, labelled with the
// process's region and role; /readyz says the process is ready.
func TestPrometheusScrapesAll(t *testing.T) {
	clearCertdEnv(t)
	httpAddr, grpcAddr := freeAddr(t), freeAddr(t)
	all := runBackground(t, "all", "--data-dir", t.TempDir(), "--region", "eu-test",
		"--http-addr", httpAddr, "--grpc-addr", grpcAddr)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()

	prom := promtest.Start(t, httpAddr)

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
			got, ok := prom.Query(ctx, q)
			if ok && got >= v {
				if got != v {
					t.Errorf("%s = %v, want %v", q, got, v)
				}
				break
			}
			select {
			case <-ctx.Done():
				t.Fatalf("%s never reached %v in Prometheus (last %v, %v); its log:\n%s", q, v, got, ok, prom.Logs())
			case <-tick.C: // Prometheus offers no event to wait for
			}
		}
	}
}
