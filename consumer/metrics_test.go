package consumer_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/certd-dev/certd/bridge"
	"github.com/certd-dev/certd/consumer"
	"github.com/certd-dev/certd/internal/metrics"
	"github.com/certd-dev/certd/internal/pipeline"
	"github.com/certd-dev/certd/internal/testenv"
	certdv1 "github.com/certd-dev/certd/proto/certd/v1"
)

// metricValue is the value of the series of name whose labels include
// want (0 when there is none).
func metricValue(t *testing.T, m *metrics.Metrics, name string, want map[string]string) float64 {
	t.Helper()
	fams, err := m.Gatherer().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		if f.GetName() != name {
			continue
		}
	series:
		for _, s := range f.GetMetric() {
			got := map[string]string{}
			for _, l := range s.GetLabel() {
				got[l.GetName()] = l.GetValue()
			}
			for k, v := range want {
				if got[k] != v {
					continue series
				}
			}
			if s.Counter != nil {
				return s.Counter.GetValue()
			}
			return s.Gauge.GetValue()
		}
	}
	return 0
}

// A consumer given metrics counts a retried and then held job, and a job
// answered, under its region and role; nothing stays in flight.
func TestConsumerReportsJobMetrics(t *testing.T) {
	env := testenv.Start(t, pipeline.Options{AckWait: 2 * time.Second})
	xs, xq := env.XQueue(t)
	env.RunBridge(t, bridge.WithXQueue(xq))
	fs := &failingStore{Store: env.Store}
	fs.broken.Store(true)
	m := metrics.New(metrics.Config{Region: "eu", Role: "consumer"})
	stop := env.RunConsumer(t, nil, testenv.NewHandler(t, env, fs), consumer.WithMaxAttempts(2), consumer.WithRetryDelay(50*time.Millisecond), consumer.WithMetrics(m))
	ctx := ctxFor(t)

	held := xs.Submit(createBody(t, "jdoe", "Jane Doe"))
	if _, err := testenv.WaitState(ctx, env, fmt.Sprintf("xq-%d", held), certdv1.JobState_JOB_STATE_DEAD); err != nil {
		t.Fatal(err)
	}
	fs.broken.Store(false)
	ok := xs.Submit(createBody(t, "ana", "Ana Lima"))
	if _, err := testenv.WaitState(ctx, env, fmt.Sprintf("xq-%d", ok), certdv1.JobState_JOB_STATE_ANSWERED); err != nil {
		t.Fatal(err)
	}
	stop() // every handler has returned: its counts are in
	base := map[string]string{"region": "eu", "role": "consumer", "action": "create"}
	with := func(k, v string) map[string]string {
		out := map[string]string{k: v}
		for a, b := range base {
			out[a] = b
		}
		return out
	}
	for _, c := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{metrics.NameRetries, base, 1},
		{metrics.NameDead, base, 1},
		{metrics.NameJobs, with("outcome", "held"), 1},
		{metrics.NameJobs, with("outcome", "ok"), 1},
		{metrics.NameJobs, with("source", "xqueue"), 1}, // the first series: each outcome once
		{metrics.NameInFlight, map[string]string{"region": "eu", "role": "consumer"}, 0},
	} {
		if got := metricValue(t, m, c.name, c.labels); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
}
