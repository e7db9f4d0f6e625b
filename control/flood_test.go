package control_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	certdv1 "github.com/certd-dev/certd/proto/certd/v1"
)

// floodChild is set in the environment of the process that runs the flood.
const floodChild = "CERTD_CONTROL_FLOOD_CHILD"

// TestFlood attacks the control service the way it was attacked by hand:
// four clients sending unauthenticated 4 MB calls without pause, 30
// watchers that never read, and jobs changing (two changes each) until
// every stalled watcher has been ended on
// the embedded NATS server in this process. Throughout, an operator's calls
// are answered, the stalled watchers are ended, and the peak RSS of the
// whole process (test, NATS server, control service) stays under 200 MB.
//
// The flood runs in a fresh process (this test binary again), so the RSS
// measured is the flood's and not what earlier tests left behind.
func TestFlood(t *testing.T) {
	if os.Getenv(floodChild) == "" {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestFlood$", "-test.count=1", "-test.v")
		cmd.Env = append(os.Environ(), floodChild+"=1")
		out, err := cmd.CombinedOutput()
		for _, l := range strings.Split(string(out), "\n") {
			if strings.Contains(l, "flood_test.go") {
				t.Log(strings.TrimSpace(l))
			}
		}
		if err != nil {
			t.Fatalf("flood process: %v\n%s", err, out)
		}
		return
	}
	e := newEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	rssBefore := memKB(t, "VmRSS")
	peakReset := resetPeakRSS()

	// Stalled watchers (with the token: an operator's tool that hung).
	const stalled = 30
	for i := 0; i < stalled; i++ {
		s, err := stalledConn(t, e.srv.Addr().String()).WatchJobs(authed(t), &certdv1.WatchJobsRequest{})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Header(); err != nil {
			t.Fatal(err)
		}
	}

	attackCtx, stopAttack := context.WithCancel(ctx)
	var wg sync.WaitGroup
	var refused, unexpected atomic.Int64
	for a := 0; a < 4; a++ {
		conn, err := grpc.NewClient(e.srv.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		wg.Add(1)
		go func() {
			defer wg.Done()
			for attackCtx.Err() == nil {
				err := attack(attackCtx, conn)
				switch status.Code(err) {
				case codes.Unauthenticated:
					refused.Add(1)
				case codes.Canceled:
				default:
					unexpected.Add(1)
				}
			}
		}()
	}

	// The operator, throughout.
	var answered atomic.Int64
	opErr := make(chan error, 1)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for attackCtx.Err() == nil {
			_, err := e.client.GetStatus(authed(t), &certdv1.GetStatusRequest{})
			if err == nil {
				_, err = e.client.ListJobs(authed(t), &certdv1.ListJobsRequest{PageSize: 10})
			}
			if err != nil && attackCtx.Err() == nil {
				select {
				case opErr <- err:
				default:
				}
				return
			}
			answered.Add(1)
		}
	}()

	// Job churn.
	// Changes go on until every stalled watcher has been ended (at most
	// 20,000 jobs, within the test's deadline; a few hundred suffice
	// normally, more under the race detector, where the record watch lags).
	jobs, ended := 0, 0
	for ; ended < stalled && jobs < 20000 && ctx.Err() == nil; jobs++ {
		put(t, e.p, rec{id: fmt.Sprintf("xq-%d", jobs+1), user: fmt.Sprintf("learner%d", jobs)})
		ended = strings.Count(e.logs.String(), "the client reads too slowly")
	}
	// One more operator call after the churn, then stop the attack.
	if _, err := e.client.GetJob(authed(t), &certdv1.GetJobRequest{Id: fmt.Sprintf("xq-%d", jobs)}); err != nil {
		t.Errorf("operator GetJob after the flood: %v", err)
	}
	stopAttack()
	wg.Wait()
	select {
	case err := <-opErr:
		t.Errorf("an operator call failed during the flood: %v", err)
	default:
	}
	peak, rssAfter := memKB(t, "VmHWM"), memKB(t, "VmRSS")
	t.Logf("flood: %d refused 4 MB calls, %d operator rounds answered, %d/%d stalled watchers ended, %d jobs × 2 changes; RSS %d MB before, %d MB after, peak %d MB (peak reset: %v); heap in use after: %.1f MB",
		refused.Load(), answered.Load(), ended, stalled, jobs, rssBefore>>10, rssAfter>>10, peak>>10, peakReset, heapInuseMB())
	if n := unexpected.Load(); n > 0 {
		// Under the race detector the service is slow enough that some
		// attack calls time out on the client; only a normal build must
		// refuse every one with Unauthenticated.
		report(t, "%d attack calls got something other than Unauthenticated", n)
	}
	if answered.Load() == 0 {
		t.Error("no operator call was answered during the flood")
	}
	if ended != stalled {
		// Under the race detector the churn is too slow to overflow the
		// watchers' buffers within the deadline (TestSlowWatcherEnds proves
		// the ending there too).
		report(t, "%d of %d stalled watchers were ended", ended, stalled)
	}
	if peak>>10 >= 200 {
		// The race detector multiplies memory several times: the bound is
		// a normal build's.
		report(t, "peak RSS %d MB, want < 200 MB", peak>>10)
	}
}

// report fails t in a normal build and only logs under the race detector,
// for bounds that instrumentation distorts (memory, time).
func report(t *testing.T, format string, args ...any) {
	t.Helper()
	if raceEnabled {
		t.Logf("race build, not a failure: "+format, args...)
		return
	}
	t.Errorf(format, args...)
}
