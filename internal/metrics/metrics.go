// Package metrics defines what certd exports to Prometheus and the HTTP
// handler that serves it.
//
// Invariants:
//   - Every series carries the labels region and role (constant per
//     process), so one dashboard serves every region and process kind.
//   - Label values are bounded: action, source, outcome and stage are
//     checked against fixed sets and anything else is counted as "other",
//     so a bug or a hostile job can never create unbounded series.
//   - A nil *Metrics is valid and records nothing, so components take one
//     as an optional dependency without checks at every call site.
//   - Each Metrics has its own registry; two in one process (tests, or
//     `certd bench`) never collide.
package metrics

import (
	"net/http"
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Label values accepted for the job and stage labels.
var (
	Actions  = []string{"create", "regen", "remove"}
	Sources  = []string{"xqueue", "submit"}
	Outcomes = []string{"ok", "error", "dead", "held", "unknown"}
	Stages   = []string{"pull", "render", "sign", "store", "publish", "answer"}
)

// Metric names, exported for dashboards and their tests.
const (
	NameJobs           = "certd_jobs_total"
	NameStageDuration  = "certd_stage_duration_seconds"
	NameRetries        = "certd_job_retries_total"
	NameDead           = "certd_jobs_dead_total"
	NameHeld           = "certd_jobs_held"
	NameInFlight       = "certd_jobs_in_flight"
	NameXQueueLength   = "certd_xqueue_queue_length"
	NameAnswersWaiting = "certd_answers_waiting"
	NameIntakeHolder   = "certd_intake_holder"
	NameBuildInfo      = "certd_build_info"
)

// Names lists every certd_* metric this package exports (histograms by
// their base name; Prometheus adds _bucket, _sum and _count).
func Names() []string {
	return []string{NameJobs, NameStageDuration, NameRetries, NameDead, NameHeld,
		NameInFlight, NameXQueueLength, NameAnswersWaiting, NameIntakeHolder, NameBuildInfo}
}

// Metrics holds the metrics of one certd process.
type Metrics struct {
	reg            *prometheus.Registry
	jobs           *prometheus.CounterVec
	stage          *prometheus.HistogramVec
	retries        *prometheus.CounterVec
	dead           *prometheus.CounterVec
	held           prometheus.Gauge
	inFlight       prometheus.Gauge
	xqueueLength   prometheus.Gauge
	answersWaiting prometheus.Gauge
	intakeHolder   prometheus.Gauge
}

// Config says where the process runs and what it is.
type Config struct {
	Region  string // "" is exported as "default"
	Role    string // all, bridge, consumer, control, bench
	Version string
}

// New returns the metrics of a process, registered with a fresh registry
// together with the Go runtime and process collectors.
func New(cfg Config) *Metrics {
	if cfg.Region == "" {
		cfg.Region = "default"
	}
	reg := prometheus.NewRegistry()
	r := prometheus.WrapRegistererWith(prometheus.Labels{"region": cfg.Region, "role": cfg.Role}, reg)
	m := &Metrics{
		reg: reg,
		jobs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: NameJobs,
			Help: "Jobs finished, by action, source (xqueue or submit) and outcome.",
		}, []string{"action", "source", "outcome"}),
		stage: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    NameStageDuration,
			Help:    "Time spent in each stage of a job: pull, render, sign, store, publish, answer.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"stage"}),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: NameRetries,
			Help: "Job attempts that failed transiently and will be tried again, by action.",
		}, []string{"action"}),
		dead: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: NameDead,
			Help: "Jobs that ran out of attempts and were held dead, by action.",
		}, []string{"action"}),
		held: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: NameHeld,
			Help: "Dead jobs currently held before they are answered with an error.",
		}),
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: NameInFlight,
			Help: "Jobs being worked on by this process now.",
		}),
		xqueueLength: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: NameXQueueLength,
			Help: "Submissions waiting in the xqueue queue, as last reported by xqueue.",
		}),
		answersWaiting: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: NameAnswersWaiting,
			Help: "Results computed but not yet delivered to xqueue or the callback.",
		}),
		intakeHolder: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: NameIntakeHolder,
			Help: "1 when this process holds the xqueue intake (pulls submissions), else 0.",
		}),
	}
	build := prometheus.NewGauge(prometheus.GaugeOpts{
		Name:        NameBuildInfo,
		Help:        "Always 1; the version label is the running certd version.",
		ConstLabels: prometheus.Labels{"version": cfg.Version},
	})
	build.Set(1)
	r.MustRegister(m.jobs, m.stage, m.retries, m.dead, m.held, m.inFlight,
		m.xqueueLength, m.answersWaiting, m.intakeHolder, build)
	r.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// bound returns v if it is one of allowed, else "other".
func bound(v string, allowed []string) string {
	if slices.Contains(allowed, v) {
		return v
	}
	return "other"
}

// JobDone counts a finished job.
func (m *Metrics) JobDone(action, source, outcome string) {
	if m == nil {
		return
	}
	m.jobs.WithLabelValues(bound(action, Actions), bound(source, Sources), bound(outcome, Outcomes)).Inc()
}

// ObserveStage records how long one stage of a job took.
func (m *Metrics) ObserveStage(stage string, d time.Duration) {
	if m == nil {
		return
	}
	m.stage.WithLabelValues(bound(stage, Stages)).Observe(d.Seconds())
}

// Retry counts a transient failure that will be retried.
func (m *Metrics) Retry(action string) {
	if m == nil {
		return
	}
	m.retries.WithLabelValues(bound(action, Actions)).Inc()
}

// Dead counts a job held dead after its last attempt.
func (m *Metrics) Dead(action string) {
	if m == nil {
		return
	}
	m.dead.WithLabelValues(bound(action, Actions)).Inc()
}

// SetHeld sets how many dead jobs are held now.
func (m *Metrics) SetHeld(n int) {
	if m != nil {
		m.held.Set(float64(n))
	}
}

// JobStarted counts a job as in flight until the returned func is called.
func (m *Metrics) JobStarted() (done func()) {
	if m == nil {
		return func() {}
	}
	m.inFlight.Inc()
	return m.inFlight.Dec
}

// SetXQueueLength records the queue length xqueue last reported.
func (m *Metrics) SetXQueueLength(n int) {
	if m != nil {
		m.xqueueLength.Set(float64(n))
	}
}

// SetAnswersWaiting records how many answers wait to be delivered.
func (m *Metrics) SetAnswersWaiting(n int) {
	if m != nil {
		m.answersWaiting.Set(float64(n))
	}
}

// SetIntakeHolder records whether this process holds the xqueue intake.
func (m *Metrics) SetIntakeHolder(holding bool) {
	if m == nil {
		return
	}
	v := 0.0
	if holding {
		v = 1
	}
	m.intakeHolder.Set(v)
}

// Handler serves the metrics in the Prometheus exposition format (for
// /metrics). A nil Metrics serves 404.
func (m *Metrics) Handler() http.Handler {
	if m == nil {
		return http.NotFoundHandler()
	}
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// Gatherer gives access to the collected metrics (tests, bench).
func (m *Metrics) Gatherer() prometheus.Gatherer { return m.reg }
