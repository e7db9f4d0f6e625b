// Package pipeline is what the bridge, the consumers and the control service
// share: the JetStream topology (streams, consumers, KV buckets), the job
// records kept in KV and heartbeats. The LMS request and answer bodies are
// in package lms (forwarded here for existing callers).
//
// Jobs travel on certs.job.<action> in the work-queue stream CERTS_JOBS, one
// durable pull consumer per action. Results travel on certs.result.<source>
// in CERTS_RESULTS, where the relay (part of the bridge) posts them back.
// Every process calls Open at start; it creates or updates what is missing,
// so the topology is declared in one place only.
//
// Regions: streams and buckets live in one home cluster (Options.Cluster or
// PlacementTags); processes in other regions reach them through NATS
// gateways and bind to the same durable consumers, so a job is handed to
// one worker at a time wherever it runs. With Options.Overflow, workers
// outside the home region pull only while the backlog is past a threshold.
package pipeline

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/certd-dev/certd/internal/ensure"
	"github.com/certd-dev/certd/internal/statuslist"
	certdv1 "github.com/certd-dev/certd/proto/certd/v1"
)

// Names of the JetStream objects certd uses.
const (
	JobsStream    = "CERTS_JOBS"
	ResultsStream = "CERTS_RESULTS"
	JobsBucket    = "certs_jobs"
	WorkersBucket = "certs_workers"
	ControlBucket = "certs_control"

	// RelayXqueue and RelaySubmit are the durable consumers on the results
	// stream: one posts answers to xqueue, the other to Submit callbacks.
	RelayXqueue = "relay-xqueue"
	RelaySubmit = "relay-submit"
)

// Actions lists the actions a job can ask for, in subject order.
var Actions = []certdv1.Action{certdv1.Action_ACTION_CREATE, certdv1.Action_ACTION_REGEN, certdv1.Action_ACTION_REMOVE}

// ActionName is the lower-case name of an action as the LMS spells it:
// "create", "regen" or "remove".
func ActionName(a certdv1.Action) string {
	switch a {
	case certdv1.Action_ACTION_CREATE:
		return "create"
	case certdv1.Action_ACTION_REGEN:
		return "regen"
	case certdv1.Action_ACTION_REMOVE:
		return "remove"
	}
	return ""
}

// ParseAction maps the LMS's action name to an Action; ok is false for
// anything else.
func ParseAction(s string) (certdv1.Action, bool) {
	for _, a := range Actions {
		if ActionName(a) == s {
			return a, true
		}
	}
	return certdv1.Action_ACTION_UNSPECIFIED, false
}

// JobSubject is the subject jobs of an action are published on.
func JobSubject(a certdv1.Action) string { return "certs.job." + ActionName(a) }

// ConsumerName is the durable consumer that serves an action.
func ConsumerName(a certdv1.Action) string { return "job-" + ActionName(a) }

// ResultSubject is the subject results of jobs from a source are published on.
func ResultSubject(s certdv1.Source) string {
	if s == certdv1.Source_SOURCE_SUBMIT {
		return "certs.result.submit"
	}
	return "certs.result.xqueue"
}

// Options tune the topology. The zero value is usable.
type Options struct {
	// Replicas for streams and buckets (1 for a single server, 3 in a cluster).
	Replicas int
	// Cluster pins streams and buckets to a named cluster of a supercluster
	// (placement); empty lets the server choose.
	Cluster string
	// PlacementTags pins streams and buckets to servers carrying all these
	// tags (server_tags in the NATS config, e.g. "region:us"); with Cluster
	// both must hold.
	PlacementTags []string
	// Overflow, if set, turns on the regional preference: the job consumers
	// get JetStream's overflow priority policy, and consumers outside the
	// home region pull only while the backlog is past a threshold (see
	// JobPullOpts). It needs nats-server 2.11 or newer. Every process must
	// agree on it: with it on, a pull without the priority group is refused.
	Overflow *Overflow
	// Retention is how long job records are kept after their last change
	// (default 30 days). Records are also the xqueue dedupe memory.
	Retention time.Duration
	// AckWait is how long a consumer may hold a job without acking or
	// reporting progress before JetStream redelivers it (default 30 s).
	AckWait time.Duration
	// MaxAckPending bounds the jobs handed out and not yet acked per action
	// (default 256). Size it to the sum of workers over all consumers.
	MaxAckPending int
	// HeartbeatTTL is how long a worker stays listed after its last
	// heartbeat (default 15 s).
	HeartbeatTTL time.Duration
	// UpdateJobConsumers lets this process change the job consumers'
	// AckWait and MaxAckPending. Consumer processes set it; the bridge and
	// the control service only create the job consumers when missing, so a
	// process that does not run jobs never resets their settings.
	UpdateJobConsumers bool
}

// Overflow is the regional preference of job consumers.
type Overflow struct {
	// Group is the priority group every job pull names (default "certd").
	Group string
	// HomeRegion is the region whose consumers always pull.
	HomeRegion string
	// Threshold is the backlog per action (jobs not yet handed out) from
	// which consumers in other regions get work too (at least 1).
	Threshold int
}

// JobPullOpts are the options a consumer in region passes when it pulls
// jobs (Consumer.Messages): none without a regional preference; the
// priority group in the home region; the group and the backlog threshold
// (min_pending) elsewhere.
func (o Options) JobPullOpts(region string) []jetstream.PullMessagesOpt {
	if o.Overflow == nil {
		return nil
	}
	ov := o.Overflow.normal()
	opts := []jetstream.PullMessagesOpt{jetstream.PullPriorityGroup(ov.Group)}
	if region != ov.HomeRegion {
		opts = append(opts, jetstream.PullMinPending(ov.Threshold))
	}
	return opts
}

func (ov Overflow) normal() Overflow {
	if ov.Group == "" {
		ov.Group = "certd"
	}
	ov.Threshold = max(ov.Threshold, 1)
	return ov
}

func (o *Options) defaults() {
	if o.Replicas <= 0 {
		o.Replicas = 1
	}
	if o.Retention <= 0 {
		o.Retention = 30 * 24 * time.Hour
	}
	if o.AckWait <= 0 {
		o.AckWait = 30 * time.Second
	}
	if o.MaxAckPending <= 0 {
		o.MaxAckPending = 256
	}
	if o.HeartbeatTTL <= 0 {
		o.HeartbeatTTL = 15 * time.Second
	}
}

// Pipeline is an open handle on certd's JetStream objects.
//
// NC, JS and Opts are this package's own: other packages reach streams,
// consumers and settings only through the accessors in access.go (and no
// code outside internal/pipeline uses the fields any more).
type Pipeline struct {
	NC      *nats.Conn
	JS      jetstream.JetStream
	Records *Records
	Workers jetstream.KeyValue
	Control jetstream.KeyValue
	// Status is the bucket of revocation bits and of each credential's
	// status index (package statuslist).
	Status jetstream.KeyValue
	Opts   Options
}

// Open creates or updates the streams, consumers and buckets and returns a
// handle on them. It is safe to call from many processes at once.
func Open(ctx context.Context, nc *nats.Conn, opts Options) (*Pipeline, error) {
	opts.defaults()
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("jetstream: %w", err)
	}
	var placement *jetstream.Placement
	if opts.Cluster != "" || len(opts.PlacementTags) > 0 {
		placement = &jetstream.Placement{Cluster: opts.Cluster, Tags: opts.PlacementTags}
	}
	streams := []jetstream.StreamConfig{{
		Name:        JobsStream,
		Description: "certificate jobs, one subject per action",
		Subjects:    []string{"certs.job.>"},
		Retention:   jetstream.WorkQueuePolicy,
		Storage:     jetstream.FileStorage,
		Replicas:    opts.Replicas,
		Duplicates:  2 * time.Minute,
		Placement:   placement,
	}, {
		Name:        ResultsStream,
		Description: "job results waiting to be posted back",
		Subjects:    []string{"certs.result.>"},
		Retention:   jetstream.WorkQueuePolicy,
		Storage:     jetstream.FileStorage,
		Replicas:    opts.Replicas,
		Duplicates:  2 * time.Minute,
		Placement:   placement,
	}}
	for _, sc := range streams {
		if err := ensure.Stream(ctx, js, sc); err != nil {
			return nil, fmt.Errorf("stream %s: %w", sc.Name, err)
		}
	}
	for _, a := range Actions {
		cc := jetstream.ConsumerConfig{
			Durable:       ConsumerName(a),
			Description:   "certificate jobs: " + ActionName(a),
			FilterSubject: JobSubject(a),
			AckPolicy:     jetstream.AckExplicitPolicy,
			AckWait:       opts.AckWait,
			// Unlimited deliveries: the consumer counts attempts itself and
			// marks a job dead, so no job is ever stranded by MaxDeliver.
			MaxDeliver:    -1,
			MaxAckPending: opts.MaxAckPending,
		}
		if opts.Overflow != nil {
			cc.PriorityPolicy = jetstream.PriorityPolicyOverflow
			cc.PriorityGroups = []string{opts.Overflow.normal().Group}
		}
		upsert := js.CreateOrUpdateConsumer
		if !opts.UpdateJobConsumers {
			upsert = js.CreateConsumer
		}
		if _, err := upsert(ctx, JobsStream, cc); err != nil && !errors.Is(err, jetstream.ErrConsumerExists) {
			return nil, fmt.Errorf("consumer %s: %w", cc.Durable, err)
		}
	}
	for _, r := range []struct {
		name   string
		source certdv1.Source
	}{{RelayXqueue, certdv1.Source_SOURCE_XQUEUE}, {RelaySubmit, certdv1.Source_SOURCE_SUBMIT}} {
		cc := jetstream.ConsumerConfig{
			Durable:       r.name,
			Description:   "results to post back",
			FilterSubject: ResultSubject(r.source),
			AckPolicy:     jetstream.AckExplicitPolicy,
			// A post may take a minute (xqueue calls the LMS synchronously);
			// the relay reports progress every AckWait/3 meanwhile.
			AckWait:       opts.AckWait,
			MaxDeliver:    -1, // results are never dropped
			MaxAckPending: 1024,
		}
		if _, err := js.CreateOrUpdateConsumer(ctx, ResultsStream, cc); err != nil {
			return nil, fmt.Errorf("consumer %s: %w", cc.Durable, err)
		}
	}
	kv := func(cfg jetstream.KeyValueConfig) (jetstream.KeyValue, error) {
		cfg.Storage = jetstream.FileStorage
		cfg.Replicas = opts.Replicas
		cfg.Placement = placement
		b, err := ensure.KeyValue(ctx, js, cfg)
		if err != nil {
			return nil, fmt.Errorf("bucket %s: %w", cfg.Bucket, err)
		}
		return b, nil
	}
	jobs, err := kv(jetstream.KeyValueConfig{Bucket: JobsBucket, Description: "job records, keyed by job id", TTL: opts.Retention})
	if err != nil {
		return nil, err
	}
	workers, err := kv(jetstream.KeyValueConfig{Bucket: WorkersBucket, Description: "worker heartbeats", TTL: opts.HeartbeatTTL})
	if err != nil {
		return nil, err
	}
	control, err := kv(jetstream.KeyValueConfig{Bucket: ControlBucket, Description: "operator switches (intake pause)"})
	if err != nil {
		return nil, err
	}
	status, err := kv(statuslist.BucketConfig())
	if err != nil {
		return nil, err
	}
	return &Pipeline{NC: nc, JS: js, Records: NewRecords(jobs), Workers: workers, Control: control, Status: status, Opts: opts}, nil
}

// JobsPending is the number of jobs in the jobs stream: queued or being
// worked on. The bridge uses it for backpressure.
func (p *Pipeline) JobsPending(ctx context.Context) (uint64, error) {
	s, err := p.JS.Stream(ctx, JobsStream)
	if err != nil {
		return 0, fmt.Errorf("stream %s: %w", JobsStream, err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		return 0, fmt.Errorf("stream %s info: %w", JobsStream, err)
	}
	return info.State.Msgs, nil
}

const intakeKey = "intake"

// Intake reads the intake switch.
func (p *Pipeline) Intake(ctx context.Context) (*certdv1.IntakeStatus, error) {
	e, err := p.Control.Get(ctx, intakeKey)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return &certdv1.IntakeStatus{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read intake switch: %w", err)
	}
	st := &certdv1.IntakeStatus{}
	if err := unmarshal(e.Value(), st); err != nil {
		return nil, fmt.Errorf("decode intake switch: %w", err)
	}
	return st, nil
}

// SetIntake sets the intake switch; the bridge reads it before every pull.
func (p *Pipeline) SetIntake(ctx context.Context, st *certdv1.IntakeStatus) error {
	b, err := marshal(st)
	if err != nil {
		return err
	}
	if _, err := p.Control.Put(ctx, intakeKey, b); err != nil {
		return fmt.Errorf("write intake switch: %w", err)
	}
	return nil
}
