package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/certd-dev/certd/bridge/xqueuetest"
	"github.com/certd-dev/certd/consumer"
	"github.com/certd-dev/certd/consumer/courses"
	"github.com/certd-dev/certd/consumer/document"
	"github.com/certd-dev/certd/consumer/storage"
	"github.com/certd-dev/certd/internal/metrics"
	"github.com/certd-dev/certd/internal/pipeline"
	"github.com/certd-dev/certd/internal/supervise"
	certdv1 "github.com/certd-dev/certd/proto/certd/v1"
)

func init() {
	commands["bench"] = command{"run the whole pipeline in one process under load and report speed", runBench}
}

// maxBenchJobs bounds --jobs (and so every per-job table of the bench).
const maxBenchJobs = 1_000_000

// benchOpts are the settings of `certd bench` that are not certd settings.
type benchOpts struct {
	jobs    int
	rate    float64
	source  string
	timeout time.Duration
	// duration > 0 makes it a soak (soak.go): load at rate for duration,
	// sampled every every.
	duration, every time.Duration

	cpuProfile, memProfile string
}

// benchDefaults replace certd's defaults for settings not given: a private
// data directory, quiet logs, quick polls, enough workers to fill group
// commits. The backlog stays in xqueue, capped by max-pending as in production.
var benchDefaults = map[string]string{
	"log-level":       "warn",
	"poll-interval":   "20ms",
	"workers":         "16",
	"max-ack-pending": "1024",
	"data-dir":        "", // a temporary directory
}

// benchParts are the certd settings of `certd bench`.
type benchParts struct {
	Log      LogSettings
	Data     DataSettings
	NATS     NATSSettings
	XQueue   XQueueSettings
	Bridge   BridgeSettings
	Handler  HandlerSettings
	Consumer ConsumerSettings
	Control  ControlSettings
}

// runBench is `certd bench`: embedded NATS, the bridge fed by the xqueue
// stand-in (or the control service's Submit), consumers and storage, all in
// this process. It offers --jobs jobs, as a burst or at --rate per second,
// waits for every answer and prints throughput, latency from submission to
// answer, CPU per certificate, peak RSS and where the time went. The last
// line is machine-readable:
//
//	jobs/s=<n> p99_ms=<n> cpu_ms_per_cert=<n> rss_mb=<n>
func runBench(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var s benchParts
	c := newConfig("bench", stderr, &s)
	for n, v := range benchDefaults {
		c.setDefault(n, v)
	}
	var o benchOpts
	c.fs.IntVar(&o.jobs, "jobs", 2000, "jobs to push")
	c.fs.Float64Var(&o.rate, "rate", 0, "offer this many jobs per second (0: all at once, a backlog)")
	c.fs.StringVar(&o.source, "source", "xqueue", "where jobs come from: xqueue (the in-process xqueue stand-in) or submit (the control service's Submit)")
	c.fs.StringVar(&o.cpuProfile, "cpuprofile", "", "write a CPU profile of the measured part to this file")
	c.fs.StringVar(&o.memProfile, "memprofile", "", "write a heap profile to this file when the jobs are answered")
	c.fs.DurationVar(&o.timeout, "timeout", 10*time.Minute, "give up when the jobs are not all answered by then")
	c.fs.DurationVar(&o.duration, "duration", 0, "soak: offer --rate jobs/s for this long (instead of --jobs), printing RSS, goroutines and open files every --every")
	c.fs.DurationVar(&o.every, "every", 10*time.Second, "soak: sample interval")
	c.fs.Usage = func() {
		fmt.Fprintf(c.fs.Output(), "Usage of certd bench (--storage file (default), s3 (a versitygw started here), or a storage URL):\n")
		c.fs.PrintDefaults()
	}
	if err := c.parse(args); err != nil {
		return err
	}
	if o.jobs < 1 || o.jobs > maxBenchJobs {
		return fmt.Errorf("--jobs: want 1 to %d", maxBenchJobs)
	}
	if o.source != "xqueue" && o.source != "submit" {
		return fmt.Errorf("--source: want xqueue or submit, not %q", o.source)
	}
	if o.rate < 0 {
		return errors.New("--rate: want a positive number of jobs per second, or 0")
	}
	if err := checkSoakOpts(o); err != nil {
		return err
	}
	timeoutSet := false
	c.fs.Visit(func(f *flag.Flag) { timeoutSet = timeoutSet || f.Name == "timeout" })
	if o.duration > 0 && !timeoutSet {
		o.timeout = o.duration + 5*time.Minute
	}
	if s.Data.Dir == "" {
		dir, err := os.MkdirTemp("", "certd-bench-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		s.Data.Dir = dir
	}
	log := newLogger(c, &s.Log, stderr)

	st := &s.Handler.Storage
	switch st.URL {
	case "", "file":
		u, err := localStorage(filepath.Join(s.Data.Dir, "www"))
		if err != nil {
			return err
		}
		st.URL = u
	case "s3":
		gw, err := startVersityGW(ctx, filepath.Join(s.Data.Dir, "s3"))
		if err != nil {
			return err
		}
		defer gw.stop()
		st.URL, st.S3Endpoint, st.S3PathStyle = "s3://bench", gw.endpoint, true
		// The AWS SDK's default chain reads these; this process only.
		os.Setenv("AWS_ACCESS_KEY_ID", gw.access)
		os.Setenv("AWS_SECRET_ACCESS_KEY", gw.secret)
	}
	s.Handler.DownloadURL = "http://127.0.0.1"
	if o.source == "xqueue" {
		xs := xqueuetest.NewServer()
		defer xs.Close()
		s.XQueue.URL, s.XQueue.User, s.XQueue.Password = xs.URL(), xqueuetest.DefaultUsername, xqueuetest.DefaultPassword
		return runBenchWith(ctx, c, &s, log, o, stdout, xs)
	}
	return runBenchWith(ctx, c, &s, log, o, stdout, nil)
}

func runBenchWith(ctx context.Context, c *config, s *benchParts, log *slog.Logger, o benchOpts, stdout io.Writer, xs *xqueuetest.Server) error {
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	p, closeNATS, err := startPipeline(ctx, c, &s.NATS, s.Data.Dir, log, true, true)
	if err != nil {
		return err
	}
	defer closeNATS()
	m := metrics.New(metrics.Config{Region: s.NATS.Region, Role: "bench", Version: pipeline.Version})
	st := newStageTimes(o.jobs)
	h, err := timedHandler(ctx, s, log, st, m)
	if err != nil {
		return err
	}
	xq, err := newXQueue(c, &s.XQueue, log) // nil with --source submit
	if err != nil {
		return err
	}
	br := newBridge(&s.Bridge, s.NATS.Region, p, xq, log)
	cons := newConsumer(&s.Consumer, s.NATS.Region, p, h, log)
	svc, _ := newControl(&s.Control, s.NATS.Region, s.XQueue.URL, p, xq, log, nil)
	if err := c.err(); err != nil {
		return err
	}
	// The bench is one more part of the group: when it returns Done, the
	// group stops everything cleanly.
	wctx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	var answers <-chan *certdv1.JobRecord
	if xs == nil {
		if answers, err = p.Records.Watch(wctx, false); err != nil {
			return err
		}
	}
	g := supervise.New(ctx)
	g.Add("bridge", br.Run)
	g.Add("consumer", cons.Run)
	src := &benchSource{xs: xs, svc: svc, answers: answers}
	var res benchResult
	g.Add("bench", func(gctx context.Context) (err error) {
		defer func() {
			if err == nil {
				err = supervise.Done
			}
		}()
		// Warm up (fonts, first login, connections) outside the numbers.
		if err := src.run(gctx, 4, 0, "warm", nil); err != nil {
			return err
		}
		st.reset()
		h.sumInFlight.Store(0)
		h.starts.Store(0)
		defer func() {
			if n := h.starts.Load(); n > 0 {
				res.meanInFlight = float64(h.sumInFlight.Load()) / float64(n)
			}
		}()
		if o.cpuProfile != "" {
			f, err := os.Create(o.cpuProfile)
			if err != nil {
				return err
			}
			defer f.Close()
			if err := pprof.StartCPUProfile(f); err != nil {
				return err
			}
			defer pprof.StopCPUProfile()
		}
		b0, r0, t0 := storage.CommitStats()
		defer func() {
			b1, r1, t1 := storage.CommitStats()
			res.commits, res.commitReqs, res.commitTime = b1-b0, r1-r0, t1-t0
		}()
		var before syscall.Rusage
		syscall.Getrusage(syscall.RUSAGE_SELF, &before)
		start := time.Now()
		lat := make([]time.Duration, 0, o.jobs)
		if o.duration > 0 {
			n, err := soak(gctx, src, o, stdout, &lat)
			if err != nil {
				return err
			}
			o.jobs = n
		} else if err := src.run(gctx, o.jobs, o.rate, "u", &lat); err != nil {
			return err
		}
		res.elapsed = time.Since(start)
		if o.memProfile != "" {
			if err := writeHeapProfile(o.memProfile); err != nil {
				return err
			}
		}
		var after syscall.Rusage
		syscall.Getrusage(syscall.RUSAGE_SELF, &after)
		res.cpu = tv(after.Utime) + tv(after.Stime) - tv(before.Utime) - tv(before.Stime)
		res.latency = lat
		res.done = true
		return nil
	})
	err = g.Run()
	if errors.Is(err, supervise.Done) {
		err = nil
	}
	if !res.done {
		if err == nil {
			err = ctx.Err()
		}
		return fmt.Errorf("bench did not finish: %w", err)
	}
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	res.rssMB = float64(ru.Maxrss) / 1024
	res.print(stdout, o, s, st)
	return nil
}

func writeHeapProfile(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	return pprof.Lookup("heap").WriteTo(f, 0)
}

func tv(t syscall.Timeval) time.Duration {
	return time.Duration(t.Sec)*time.Second + time.Duration(t.Usec)*time.Microsecond
}

// benchNames are learners in several scripts; a number makes every
// certificate's name distinct, so no cache flatters the numbers.
var benchNames = []string{"Jane Doe", "王小明", "أحمد عبد الله", "Ελένη Παπαδοπούλου", "Nguyễn Thị Minh Khai", "Иван Петров", "김민준", "प्रिया शर्मा"}

// benchSource offers jobs and waits for their answers.
type benchSource struct {
	xs  *xqueuetest.Server
	svc interface {
		Submit(context.Context, *certdv1.SubmitRequest) (*certdv1.SubmitResponse, error)
	}
	answers <-chan *certdv1.JobRecord
	seen    int // xqueue callbacks consumed by earlier runs
}

// run offers n jobs (at rate per second, 0: at once) and waits for all their
// answers; lat, if not nil, gets each job's submission-to-answer time.
func (s *benchSource) run(ctx context.Context, n int, rate float64, prefix string, lat *[]time.Duration) error {
	submitted := make(map[string]time.Time, n)
	var mu sync.Mutex
	offerErr := make(chan error, 1)
	go func() { // ends when n jobs are offered or ctx ends
		start := time.Now()
		for i := range n {
			if rate > 0 {
				if d := time.Until(start.Add(time.Duration(float64(i) / rate * float64(time.Second)))); d > 0 {
					t := time.NewTimer(d)
					select {
					case <-ctx.Done():
						t.Stop()
						offerErr <- ctx.Err()
						return
					case <-t.C:
					}
				}
			}
			name := fmt.Sprintf("%s %d", benchNames[i%len(benchNames)], i)
			user := fmt.Sprintf("%s%d", prefix, i)
			now := time.Now()
			var id string
			if s.xs != nil {
				mu.Lock() // the id must be known before the answer can arrive
				id = strconv.FormatInt(s.xs.Submit(string(mustJSON(map[string]string{
					"action": "create", "username": user, "course_id": "course-v1:bench+B1+2026", "name": name,
				}))), 10)
				submitted[id] = now
				mu.Unlock()
			} else {
				mu.Lock()
				resp, err := s.svc.Submit(ctx, &certdv1.SubmitRequest{
					Action: certdv1.Action_ACTION_CREATE, Username: user,
					CourseId: "course-v1:bench+B1+2026", Name: name,
				})
				if err != nil {
					mu.Unlock()
					offerErr <- fmt.Errorf("submit: %w", err)
					return
				}
				submitted[resp.Id] = now
				mu.Unlock()
			}
		}
		offerErr <- nil
	}()
	answered := 0
	record := func(id string, at time.Time) {
		mu.Lock()
		t0, ok := submitted[id]
		if ok {
			delete(submitted, id)
		}
		mu.Unlock()
		if !ok {
			return
		}
		answered++
		if lat != nil {
			*lat = append(*lat, at.Sub(t0))
		}
	}
	if s.xs != nil {
		// Counting callbacks is cheap; the list is read once at the end
		// (each callback carries the time xqueue delivered it).
		if _, err := s.xs.WaitStats(ctx, func(st xqueuetest.Stats) bool { return st.Callbacks >= s.seen+n }); err != nil {
			return fmt.Errorf("waiting for answers (%d of %d): %w", s.xs.Stats().Callbacks-s.seen, n, err)
		}
		if err := <-offerErr; err != nil {
			return err
		}
		cbs := s.xs.Callbacks()
		for _, cb := range cbs[s.seen:] {
			record(strconv.FormatInt(cb.SubmissionID, 10), cb.Time)
		}
		s.seen = len(cbs)
		if answered != n {
			return fmt.Errorf("%d answers for %d jobs", answered, n)
		}
		return nil
	} else {
		for answered < n {
			select {
			case <-ctx.Done():
				return fmt.Errorf("waiting for answers (%d of %d): %w", answered, n, ctx.Err())
			case rec, ok := <-s.answers:
				if !ok || rec == nil {
					return errors.New("record watch ended")
				}
				if rec.State == certdv1.JobState_JOB_STATE_ANSWERED {
					record(rec.Id, time.Now())
				}
			}
		}
	}
	return <-offerErr
}

// benchResult is what one bench run measured.
type benchResult struct {
	done    bool
	elapsed time.Duration
	cpu     time.Duration
	latency []time.Duration
	rssMB   float64

	meanInFlight float64 // jobs in the handler, seen by each job as it starts

	commits, commitReqs uint64 // file store group commits and the waits they served
	commitTime          time.Duration
}

func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(float64(len(sorted))*p+0.5) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}

func ms(d time.Duration) string { return strconv.FormatFloat(float64(d)/1e6, 'f', 1, 64) }

func (r *benchResult) print(w io.Writer, o benchOpts, s *benchParts, st *stageTimes) {
	slices.Sort(r.latency)
	n := len(r.latency)
	jps := float64(n) / r.elapsed.Seconds()
	mode := "burst"
	if o.rate > 0 {
		mode = fmt.Sprintf("steady %g/s", o.rate)
	}
	fmt.Fprintf(w, "certd bench: %d jobs (%s) from %s, storage %s, %d workers, %d CPUs\n",
		n, mode, o.source, s.Handler.Storage.URL, s.Consumer.Workers, runtime.GOMAXPROCS(0))
	fmt.Fprintf(w, "elapsed %s, %.1f jobs/s\n", r.elapsed.Round(time.Millisecond), jps)
	fmt.Fprintf(w, "latency submission->answer: p50 %s ms, p90 %s ms, p99 %s ms, max %s ms\n",
		ms(percentile(r.latency, .5)), ms(percentile(r.latency, .9)), ms(percentile(r.latency, .99)), ms(percentile(r.latency, 1)))
	cpuPer := float64(r.cpu) / 1e6 / float64(n)
	fmt.Fprintf(w, "CPU %s (user+system, whole process), %.2f ms per certificate; peak RSS %.0f MB\n", r.cpu.Round(time.Millisecond), cpuPer, r.rssMB)
	fmt.Fprintf(w, "jobs in the handler at once (mean, seen by each job as it starts): %.1f\n", r.meanInFlight)
	fmt.Fprintf(w, "stages (wall time per job, mean / p99 ms):\n")
	var handle time.Duration
	for _, s := range st.names {
		d := st.durations(s)
		if len(d) == 0 {
			continue
		}
		var sum time.Duration
		for _, x := range d {
			sum += x
		}
		mean := sum / time.Duration(len(d))
		if s == "handle" {
			handle = mean
		}
		slices.Sort(d)
		fmt.Fprintf(w, "  %-8s %7s / %7s\n", s, ms(mean), ms(percentile(d, .99)))
	}
	var sum time.Duration
	for _, x := range r.latency {
		sum += x
	}
	if n > 0 {
		fmt.Fprintf(w, "  %-8s %7s        (queues, NATS, records, answer: latency minus handle)\n", "other", ms(sum/time.Duration(n)-handle))
	}
	if r.commits > 0 {
		fmt.Fprintf(w, "file store: %d group commits (syncfs) for %d waits, %.1f waits and %s ms per commit\n",
			r.commits, r.commitReqs, float64(r.commitReqs)/float64(r.commits), ms(r.commitTime/time.Duration(r.commits)))
	}
	fmt.Fprintf(w, "jobs/s=%.1f p99_ms=%s cpu_ms_per_cert=%.2f rss_mb=%.0f\n", jps, ms(percentile(r.latency, .99)), cpuPer, r.rssMB)
}

// stageTimes collects per-job stage durations for the breakdown; each
// stage holds at most cap samples (the number of jobs).
type stageTimes struct {
	mu    sync.Mutex
	names []string
	cap   int
	d     map[string][]time.Duration
}

func newStageTimes(n int) *stageTimes {
	return &stageTimes{names: []string{"handle", "render", "sign", "store"}, cap: n, d: map[string][]time.Duration{}}
}

func (s *stageTimes) add(stage string, d time.Duration) {
	s.mu.Lock()
	if len(s.d[stage]) < s.cap {
		s.d[stage] = append(s.d[stage], d)
	}
	s.mu.Unlock()
}

func (s *stageTimes) reset() {
	s.mu.Lock()
	clear(s.d)
	s.mu.Unlock()
}

func (s *stageTimes) durations(stage string) []time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.d[stage])
}

// timedHandler is a job handler like the one of `certd all` (storage of
// the configuration, the development key unless --signing-key is set, the
// default designs and course settings) with every stage timed into st and m.
func timedHandler(ctx context.Context, s *benchParts, log *slog.Logger, st *stageTimes, m *metrics.Metrics) (*timedJobs, error) {
	ss := &s.Handler.Storage
	sopts := []storage.Option{storage.WithLogger(log), storage.WithRegion(ss.S3Region), storage.WithPathStyle(ss.S3PathStyle)}
	if ss.S3Endpoint != "" {
		sopts = append(sopts, storage.WithEndpoint(ss.S3Endpoint))
	}
	store, err := storage.Open(ctx, ss.URL, sopts...)
	if err != nil {
		return nil, fmt.Errorf("storage: %w", err)
	}
	signer, err := loadSigner(&s.Handler.Signing, s.Data.Dir, log, true)
	if err != nil {
		return nil, fmt.Errorf("signing key: %w", err)
	}
	if err := store.Put(ctx, consumer.PublicKeyKey(signer.Fingerprint()), signer.PublicKey(), "application/pgp-keys"); err != nil {
		return nil, fmt.Errorf("store public key: %w", err)
	}
	renderer, err := document.NewRenderer(document.WithLogger(log))
	if err != nil {
		return nil, err
	}
	catalog, err := courses.Load("", courses.Site{}, courses.WithLogger(log))
	if err != nil {
		return nil, err
	}
	obs := func(stage string, t0 time.Time) {
		d := time.Since(t0)
		st.add(stage, d)
		m.ObserveStage(stage, d)
	}
	cfg := consumer.HandlerConfig{
		Store:       &timedStore{Store: store, obs: obs},
		Renderer:    &timedRenderer{Renderer: renderer, obs: obs},
		Catalog:     catalog,
		Signer:      &timedSigner{Signer: signer, obs: obs},
		DownloadURL: s.Handler.DownloadURL, VerifyURL: s.Handler.DownloadURL, Logger: log,
	}
	return &timedJobs{h: consumer.NewHandler(cfg), obs: obs, m: m}, nil
}

type timedJobs struct {
	inFlight, sumInFlight, starts atomic.Int64
	h                             *consumer.Handler
	obs                           func(string, time.Time)
	m                             *metrics.Metrics
}

func (t *timedJobs) Handle(ctx context.Context, job *certdv1.Job) (*certdv1.Result, error) {
	defer t.m.JobStarted()()
	n := t.inFlight.Add(1)
	defer t.inFlight.Add(-1)
	t.sumInFlight.Add(n)
	t.starts.Add(1)
	defer t.obs("handle", time.Now())
	res, err := t.h.Handle(ctx, job)
	if err == nil {
		outcome := "ok"
		if !res.Ok {
			outcome = "error"
		}
		t.m.JobDone("create", "", outcome)
	}
	return res, err
}

type timedRenderer struct {
	consumer.Renderer
	obs func(string, time.Time)
}

func (t *timedRenderer) Render(design string, f document.Fields) ([]byte, error) {
	defer t.obs("render", time.Now())
	return t.Renderer.Render(design, f)
}

type timedSigner struct {
	consumer.Signer
	obs func(string, time.Time)
}

func (t *timedSigner) Sign(data []byte) ([]byte, error) {
	defer t.obs("sign", time.Now())
	return t.Signer.Sign(data)
}

// timedStore keeps the store's PutAll (one call per certificate).
type timedStore struct {
	storage.Store
	obs func(string, time.Time)
}

func (t *timedStore) PutAll(ctx context.Context, files []storage.File) error {
	defer t.obs("store", time.Now())
	return storage.PutAll(ctx, t.Store, files)
}

// versityGW is a versitygw process started for the bench.
type versityGW struct {
	cmd                      *exec.Cmd
	endpoint, access, secret string
	exited                   chan struct{}
}

// startVersityGW starts versitygw (from PATH) on a loopback port with its
// data under dir and creates the bucket "bench".
func startVersityGW(ctx context.Context, dir string) (*versityGW, error) {
	bin, err := exec.LookPath("versitygw")
	if err != nil {
		return nil, fmt.Errorf("--storage s3 needs versitygw on PATH: %w", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	addr := ln.Addr().String()
	ln.Close()
	root, meta := filepath.Join(dir, "root"), filepath.Join(dir, "meta")
	for _, d := range []string{root, meta} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, err
		}
	}
	gw := &versityGW{endpoint: "http://" + addr, access: "certdbench", secret: "certdbench-secret", exited: make(chan struct{})}
	gw.cmd = exec.Command(bin, "--access", gw.access, "--secret", gw.secret, "--port", addr, "posix", "--sidecar", meta, root)
	gw.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := gw.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start versitygw: %w", err)
	}
	go func() { gw.cmd.Wait(); close(gw.exited) }() // ends when the process does
	client := s3.New(s3.Options{
		BaseEndpoint: aws.String(gw.endpoint), Region: "us-east-1", UsePathStyle: true,
		Credentials: credentials.NewStaticCredentialsProvider(gw.access, gw.secret, ""),
	})
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		_, err := client.CreateBucket(wctx, &s3.CreateBucketInput{Bucket: aws.String("bench")})
		if err == nil {
			return gw, nil
		}
		select {
		case <-gw.exited:
			return nil, errors.New("versitygw exited while starting")
		case <-wctx.Done():
			gw.stop()
			return nil, fmt.Errorf("versitygw not ready: %w", err)
		case <-tick.C: // versitygw offers no readiness event
		}
	}
}

func (g *versityGW) stop() {
	syscall.Kill(-g.cmd.Process.Pid, syscall.SIGKILL)
	<-g.exited
}
