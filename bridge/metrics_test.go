package bridge_test

import (
	"testing"
	"time"

	"github.com/certd-dev/certd/bridge"
	"github.com/certd-dev/certd/internal/metrics"
	"github.com/certd-dev/certd/internal/pipeline"
	"github.com/certd-dev/certd/internal/testenv"
)

// stageCount is how many durations of stage m holds.
func stageCount(t *testing.T, m *metrics.Metrics, stage string) uint64 {
	t.Helper()
	fams, err := m.Gatherer().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		if f.GetName() != metrics.NameStageDuration {
			continue
		}
		for _, s := range f.GetMetric() {
			for _, l := range s.GetLabel() {
				if l.GetName() == "stage" && l.GetValue() == stage {
					return s.GetHistogram().GetSampleCount()
				}
			}
		}
	}
	return 0
}

// gauge is the value of the gauge name.
func gauge(t *testing.T, m *metrics.Metrics, name string) float64 {
	t.Helper()
	fams, err := m.Gatherer().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		if f.GetName() == name && len(f.GetMetric()) == 1 {
			return f.GetMetric()[0].GetGauge().GetValue()
		}
	}
	t.Fatalf("no gauge %s", name)
	return 0
}

// A bridge given metrics times its pulls, publishes and answers, and shows
// that it holds the intake while it does and not after it stops.
func TestBridgeReportsMetrics(t *testing.T) {
	env := testenv.Start(t, pipeline.Options{AckWait: 2 * time.Second})
	xs, xq := env.XQueue(t)
	m := metrics.New(metrics.Config{Region: "eu", Role: "bridge"})
	stop := env.RunBridge(t, bridge.WithXQueue(xq), bridge.WithMetrics(m))
	env.RunConsumer(t, nil, nil)
	const n = 3
	for i := range n {
		xs.Submit(body(t, create("u"+string(rune('a'+i)), "Jane Doe")))
	}
	if _, err := xs.WaitCallbacks(waitCtx(t), n); err != nil {
		t.Fatal(err)
	}
	if h := gauge(t, m, metrics.NameIntakeHolder); h != 1 {
		t.Errorf("intake holder while pulling = %v, want 1", h)
	}
	stop()
	if h := gauge(t, m, metrics.NameIntakeHolder); h != 0 {
		t.Errorf("intake holder after stop = %v, want 0", h)
	}
	if c := stageCount(t, m, "pull"); c < n {
		t.Errorf("pull durations: %d, want at least %d", c, n)
	}
	for _, s := range []string{"publish", "answer"} {
		if c := stageCount(t, m, s); c != n {
			t.Errorf("%s durations: %d, want %d", s, c, n)
		}
	}
}
