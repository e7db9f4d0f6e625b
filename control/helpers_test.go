package control_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/certd-dev/certd/control"
	"github.com/certd-dev/certd/internal/lms"
	"github.com/certd-dev/certd/internal/natsserver"
	"github.com/certd-dev/certd/internal/pipeline"
	"github.com/certd-dev/certd/internal/pipeline/pipelinetest"
	certdv1 "github.com/certd-dev/certd/proto/certd/v1"
)

const token = "tok-3f9a1c77e2b04d5e"

// logBuf collects log output for assertions.
type logBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// startPipeline runs a real embedded NATS server and opens the pipeline.
func startPipeline(t *testing.T, opts pipeline.Options) *pipeline.Pipeline {
	t.Helper()
	ns, err := natsserver.Start(natsserver.Config{Dir: t.TempDir(), Port: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ns.Shutdown)
	nc, err := nats.Connect(ns.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	p, err := pipeline.Open(ctx, nc, opts)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// env is a control service served over gRPC on a real NATS pipeline.
type env struct {
	p      *pipeline.Pipeline
	svc    *control.Service
	srv    *control.Server
	conn   *grpc.ClientConn
	client certdv1.ControlClient
	logs   *logBuf
	stop   func() // stops the server and waits for Serve to return
}

func newEnv(t *testing.T, opts ...control.Option) *env {
	t.Helper()
	return newEnvOn(t, startPipeline(t, pipeline.Options{}), control.ServerConfig{Token: token}, opts...)
}

func newEnvOn(t *testing.T, p *pipeline.Pipeline, cfg control.ServerConfig, opts ...control.Option) *env {
	t.Helper()
	logs := &logBuf{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	svc := control.NewService(p, append([]control.Option{control.WithLogger(log)}, opts...)...)
	cfg.Logger = log
	srv, err := control.Listen("127.0.0.1:0", svc, cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ctx) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			if err := <-served; err != nil {
				t.Errorf("Serve: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	conn, err := grpc.NewClient(srv.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return &env{p: p, svc: svc, srv: srv, conn: conn, client: certdv1.NewControlClient(conn), logs: logs, stop: stop}
}

// authed is a context carrying the bearer token.
func authed(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+token)
}

func wantCode(t *testing.T, err error, code codes.Code, contains string) {
	t.Helper()
	st, _ := status.FromError(err)
	if st.Code() != code {
		t.Fatalf("err = %v, want code %s", err, code)
	}
	if contains != "" && !bytes.Contains([]byte(st.Message()), []byte(contains)) {
		t.Fatalf("error message %q does not mention %q", st.Message(), contains)
	}
}

// rec is a job record for tests.
type rec struct {
	id, course, user string
	state            certdv1.JobState
	action           certdv1.Action
	source           certdv1.Source
	created          time.Time
	lastError        string
	worker           string
	answer           []byte // the answer waiting or given, if any
}

// put stores a record as the bridge and consumers would have left it, with
// a chosen creation time.
func put(t *testing.T, p *pipeline.Pipeline, r rec) *certdv1.JobRecord {
	t.Helper()
	ctx := context.Background()
	if r.action == 0 {
		r.action = certdv1.Action_ACTION_CREATE
	}
	if r.source == 0 {
		r.source = certdv1.Source_SOURCE_XQUEUE
	}
	if r.course == "" {
		r.course = "course-v1:edX+DemoX+Demo"
	}
	if r.user == "" {
		r.user = "learner"
	}
	req := map[string]string{"action": pipeline.ActionName(r.action), "username": r.user, "course_id": r.course, "name": "Jane Doe"}
	jr := &certdv1.JobRecord{
		Id: r.id, Source: r.source, Action: r.action, State: certdv1.JobState_JOB_STATE_ACCEPTED,
		Username: r.user, CourseId: r.course, Request: mustJSON(t, req),
		DownloadUuid: lms.NewUUID(), VerifyUuid: lms.NewUUID(),
		SubmissionId: 1, XqueueKey: "k",
	}
	if !r.created.IsZero() {
		jr.CreatedAt = timestamppb.New(r.created)
	}
	jr.LastError, jr.Worker, jr.Answer = r.lastError, r.worker, r.answer
	jr.History = []*certdv1.StateChange{{State: jr.State, At: timestamppb.Now()}}
	if r.state != 0 && r.state != jr.State {
		if r.state == certdv1.JobState_JOB_STATE_DEAD {
			jr.DeadAt = timestamppb.Now()
			jr.Attempts = 2
		}
		pipelinetest.SetState(jr, r.state, "test", r.worker)
	}
	kv, err := pipelinetest.Bucket(ctx, p.Conn())
	if err != nil {
		t.Fatal(err)
	}
	if err := pipelinetest.Put(ctx, kv, jr); err != nil {
		t.Fatal(err)
	}
	out, err := p.Records.Get(ctx, r.id)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// fetch takes the want messages waiting on a durable consumer (double
// acked, so they are gone from the work-queue stream) and checks that no
// more are there. Only used where nothing else consumes the stream.
func fetch(t *testing.T, p *pipeline.Pipeline, stream, durable string, want int) []jetstream.Msg {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	js, err := jetstream.New(p.Conn())
	if err != nil {
		t.Fatal(err)
	}
	c, err := js.Consumer(ctx, stream, durable)
	if err != nil {
		t.Fatal(err)
	}
	var out []jetstream.Msg
	if want > 0 {
		batch, err := c.Fetch(want, jetstream.FetchMaxWait(10*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		for m := range batch.Messages() {
			out = append(out, m)
			if err := m.DoubleAck(ctx); err != nil {
				t.Fatal(err)
			}
		}
		if err := batch.Error(); err != nil && !errors.Is(err, nats.ErrTimeout) {
			t.Fatal(err)
		}
	}
	// Whatever else was published is in the stream now: a publish returns
	// once stored.
	info, err := c.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(out) != want || info.NumPending != 0 || info.NumAckPending != 0 {
		t.Fatalf("%s: %d messages fetched, %d more pending, %d unacked; want exactly %d",
			durable, len(out), info.NumPending, info.NumAckPending, want)
	}
	return out
}

func decodeJob(t *testing.T, m jetstream.Msg) *certdv1.Job {
	t.Helper()
	j := &certdv1.Job{}
	if err := proto.Unmarshal(m.Data(), j); err != nil {
		t.Fatal(err)
	}
	return j
}

func decodeResult(t *testing.T, m jetstream.Msg) *certdv1.Result {
	t.Helper()
	r := &certdv1.Result{}
	if err := proto.Unmarshal(m.Data(), r); err != nil {
		t.Fatal(err)
	}
	return r
}

func get(t *testing.T, p *pipeline.Pipeline, id string) *certdv1.JobRecord {
	t.Helper()
	r, err := p.Records.Get(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func ids(recs []*certdv1.JobRecord) []string {
	var out []string
	for _, r := range recs {
		out = append(out, r.Id)
	}
	return out
}

func reasons(sk []*certdv1.Skipped) map[string]string {
	out := map[string]string{}
	for _, s := range sk {
		out[s.Id] = s.Reason
	}
	return out
}
