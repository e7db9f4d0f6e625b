package main

// Regions and their loss, in-process on loopback: NATS clusters of several
// servers (one per region) joined by gateways, certd split into processes,
// and faults.Check at the end of every test. Streams and buckets live in the
// home cluster "us"; consumers in "eu" bind to the same durable consumers
// through the gateways.

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/certd-dev/certd/bridge/xqueuetest"
	"github.com/certd-dev/certd/internal/intakelock"
	"github.com/certd-dev/certd/internal/natsserver"
	"github.com/certd-dev/certd/internal/pipeline"
	certdv1 "github.com/certd-dev/certd/proto/certd/v1"
)

// region is one NATS cluster of the test supercluster.
type region struct {
	name    string
	servers []*server.Server
}

// url lists every server of the region, as a certd process there gets it.
func (r *region) url() string {
	var urls []string
	for _, s := range r.servers {
		urls = append(urls, s.ClientURL())
	}
	return strings.Join(urls, ",")
}

// shutdown stops every server of the region.
func (r *region) shutdown() {
	for _, s := range r.servers {
		s.Shutdown()
	}
	for _, s := range r.servers {
		s.WaitForShutdown()
	}
}

// startRegions starts a cluster per region with sizes[i] JetStream servers
// each; with more than one region the clusters are joined by gateways.
// Every cluster's routes list all its members, every gateway list all
// regions.
func startRegions(t *testing.T, names []string, sizes []int) map[string]*region {
	t.Helper()
	routes, gws := map[string][]int{}, map[string][]int{}
	for i, n := range names {
		for range sizes[i] {
			routes[n] = append(routes[n], freePort(t))
			gws[n] = append(gws[n], freePort(t))
		}
	}
	var gateways []*server.RemoteGatewayOpts
	for _, n := range names {
		g := &server.RemoteGatewayOpts{Name: n}
		for _, p := range gws[n] {
			g.URLs = append(g.URLs, &url.URL{Scheme: "nats", Host: fmt.Sprintf("127.0.0.1:%d", p)})
		}
		gateways = append(gateways, g)
	}
	out := map[string]*region{}
	for i, n := range names {
		var rs []string
		for _, p := range routes[n] {
			rs = append(rs, fmt.Sprintf("nats-route://127.0.0.1:%d", p))
		}
		r := &region{name: n}
		for j := range sizes[i] {
			s, err := natsserver.Start(natsserver.Config{
				Dir: t.TempDir(), Port: -1, Name: fmt.Sprintf("%s-%d", n, j+1),
				Customize: func(o *server.Options) {
					o.Cluster = server.ClusterOpts{Name: n, Host: "127.0.0.1", Port: routes[n][j]}
					o.Routes = server.RoutesFromStr(strings.Join(rs, ","))
					if len(names) > 1 {
						o.Gateway = server.GatewayOpts{Name: n, Host: "127.0.0.1", Port: gws[n][j], Gateways: gateways}
					}
				},
			})
			if err != nil {
				t.Fatalf("server %s-%d: %v", n, j+1, err)
			}
			t.Cleanup(func() { s.Shutdown(); s.WaitForShutdown() })
			r.servers = append(r.servers, s)
		}
		out[n] = r
	}
	return out
}

// regionEnv is a split-process certd over several regions.
type regionEnv struct {
	*splitEnv
	regions map[string]*region
	topo    []string // topology flags every process gets
}

func newRegionEnv(t *testing.T, ctx context.Context, names []string, sizes []int, topo ...string) *regionEnv {
	t.Helper()
	rs := startRegions(t, names, sizes)
	for _, r := range rs {
		for _, s := range r.servers {
			waitJetStream(ctx, t, s.ClientURL())
		}
	}
	e := &regionEnv{splitEnv: newSplitEnv(t, ctx), regions: rs, topo: topo}
	e.xs.Close()
	// xqueue offers an unanswered submission again after its lease (a
	// lost bridge's posts come back this way).
	e.xs = xqueuetest.NewServer(xqueuetest.WithUser(splitXQueueUser, splitXQueuePassword), xqueuetest.WithLease(5*time.Second))
	t.Cleanup(e.xs.Close)
	e.natsURL = rs[names[0]].url()
	return e
}

// in points the next processes at a region's servers.
func (e *regionEnv) in(region string) *regionEnv {
	e.common = append([]string{"--nats-url", e.regions[region].url()}, e.topo...)
	return e
}

// bridgeIn starts a bridge in region with the bridge settings extra.
func (e *regionEnv) bridgeIn(t *testing.T, ctx context.Context, region string, extra ...string) *proc {
	t.Helper()
	e.in(region)
	args := append([]string{"bridge", "--region", region, "--xqueue-url", e.xs.URL(), "--xqueue-user", splitXQueueUser, "--poll-interval", "20ms"}, e.common...)
	p := startProc(t, "bridge-"+region, []string{"CERTD_XQUEUE_PASSWORD=" + splitXQueuePassword}, append(args, extra...)...)
	if err := p.out.waitFor(ctx, "intake started", 1); err != nil {
		t.Fatal(err)
	}
	return p
}

func (e *regionEnv) consumerIn(t *testing.T, ctx context.Context, region string) *proc {
	t.Helper()
	e.in(region)
	p := e.startConsumer(t, region)
	if err := p.out.waitFor(ctx, "consumer started", 1); err != nil {
		t.Fatal(err)
	}
	return p
}

// jobRegions counts the answered jobs by the region of the worker that ran
// them, from the job records.
func jobRegions(ctx context.Context, t *testing.T, natsURL string) map[string]int {
	t.Helper()
	kv, err := jetStreamAt(t, natsURL).KeyValue(ctx, pipeline.JobsBucket)
	if err != nil {
		t.Fatal(err)
	}
	by := map[string]int{}
	err = pipeline.NewRecords(kv).Scan(ctx, func(rec *certdv1.JobRecord) bool {
		by[rec.Region]++
		return true
	})
	if err != nil && !errors.Is(err, context.Canceled) {
		t.Fatal(err)
	}
	return by
}

func stopAll(t *testing.T, ps ...*proc) {
	t.Helper()
	for _, p := range ps {
		if code, err := p.stop(20 * time.Second); err != nil || code != 0 {
			t.Errorf("%s after SIGTERM: exit %d, %v", p.name, code, err)
		}
	}
}

// A supercluster of two regions (us: 3 servers holding the streams, eu: 2)
// with consumers in both: a batch with the us consumer alone, then one with
// both regions; every job is answered exactly once and job records show
// work done in both regions.
func TestSuperclusterConsumersInBothRegions(t *testing.T) {
	const n = 40
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	e := newRegionEnv(t, ctx, []string{"us", "eu"}, []int{3, 2}, "--cluster", "us")
	bridge := e.bridgeIn(t, ctx, "us")
	us := e.consumerIn(t, ctx, "us")
	rec := recordAcceptance(ctx, t, e.natsURL)

	start := time.Now()
	ids := e.submitJobs(n)
	if _, err := e.xs.WaitCallbacks(ctx, n); err != nil {
		t.Fatal(err)
	}
	one := time.Since(start)
	eu := e.consumerIn(t, ctx, "eu")
	start = time.Now()
	ids = append(ids, e.submitJobs(n)...)
	if _, err := e.xs.WaitCallbacks(ctx, 2*n); err != nil {
		t.Fatal(err)
	}
	two := time.Since(start)
	t.Logf("THROUGHPUT consumers in us only: %d jobs in %s (%.1f jobs/s); in us and eu: %d jobs in %s (%.1f jobs/s)",
		n, one.Round(time.Millisecond), float64(n)/one.Seconds(), n, two.Round(time.Millisecond), float64(n)/two.Seconds())
	stopAll(t, bridge, us, eu)
	e.checkExactlyOnce(ctx, t, rec, ids)
	by := jobRegions(ctx, t, e.natsURL)
	t.Logf("jobs by region: %v", by)
	if by["eu"] == 0 || by["us"] == 0 {
		t.Errorf("jobs by region %v: want work done in both", by)
	}
}

// The second region's servers are shut down in the middle of a batch while
// its consumer holds jobs. Those jobs are redelivered after ack-wait to the
// home region's consumer and the batch completes exactly once.
func TestSuperclusterRemoteRegionLost(t *testing.T) {
	const n = 30
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	e := newRegionEnv(t, ctx, []string{"us", "eu"}, []int{3, 2}, "--cluster", "us", "--ack-wait", "2s")
	bridge := e.bridgeIn(t, ctx, "us")
	us := e.consumerIn(t, ctx, "us")
	e.common = append(e.common, "--drain-timeout", "1s")
	eu := e.consumerIn(t, ctx, "eu")
	rec := recordAcceptance(ctx, t, e.natsURL)
	ids := e.submitJobs(n)
	if err := eu.out.waitFor(ctx, "job done", 1); err != nil {
		t.Fatal(err)
	}
	lost := time.Now()
	answered := len(e.xs.Callbacks())
	e.regions["eu"].shutdown()
	if _, err := e.xs.WaitCallbacks(ctx, n); err != nil {
		t.Fatal(err)
	}
	t.Logf("REGION LOSS eu servers shut down with %d of %d answered; the batch finished %s later", answered, n, time.Since(lost).Round(time.Millisecond))
	stopAll(t, bridge, us)
	_ = eu.cmd.Process.Kill() // its region is gone
	e.checkExactlyOnce(ctx, t, rec, ids)
	t.Logf("jobs by region: %v", jobRegions(ctx, t, e.natsURL))
}

// The home region loses its bridge and consumer (SIGKILL), not its stream
// servers, in the middle of a batch; a second batch reaches xqueue after
// the loss. A second bridge has been running in eu all along, standing by
// on the intake lock (and relaying results): it takes the intake over once
// the lock has gone unrenewed for its TTL and pulls the second batch; the
// eu consumer finishes both, the dead consumer's jobs after ack-wait;
// exactly once.
func TestSuperclusterHomeWorkersLost(t *testing.T) {
	const (
		n       = 30
		lockTTL = 3 * time.Second
	)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	e := newRegionEnv(t, ctx, []string{"us", "eu"}, []int{3, 2}, "--cluster", "us", "--ack-wait", "2s")
	ttl := []string{"--intake-lock-ttl", lockTTL.String()}
	usBridge := e.bridgeIn(t, ctx, "us", ttl...)
	if err := usBridge.out.waitFor(ctx, "intake lock taken", 1); err != nil {
		t.Fatal(err)
	}
	euBridge := e.bridgeIn(t, ctx, "eu", ttl...)
	if err := euBridge.out.waitFor(ctx, "standing by", 1); err != nil {
		t.Fatal(err)
	}
	usCons := e.consumerIn(t, ctx, "us")
	euCons := e.consumerIn(t, ctx, "eu")
	rec := recordAcceptance(ctx, t, e.natsURL)
	ids := e.submitJobs(n)
	if _, err := e.xs.WaitCallbacks(ctx, 3); err != nil {
		t.Fatal(err)
	}
	lost := time.Now()
	for _, p := range []*proc{usBridge, usCons} {
		_ = p.cmd.Process.Kill()
		<-p.done
	}
	answered := len(e.xs.Callbacks())
	// The second half of the batch reaches xqueue after the loss: only a
	// bridge that took the intake over can pull it.
	ids = append(ids, e.submitJobs(n)...)
	if err := euBridge.out.waitFor(ctx, "intake lock taken over", 1); err != nil {
		t.Fatal(err)
	}
	takeover := time.Since(lost)
	holders, err := intakelock.Holders(ctx, jetStreamAt(t, e.regions["eu"].url()))
	if err != nil {
		t.Fatal(err)
	}
	if len(holders) != 1 || holders[0].Region != "eu" {
		t.Errorf("intake lock holders after the loss: %+v, want the eu bridge", holders)
	}
	if _, err := e.xs.WaitCallbacks(ctx, 2*n); err != nil {
		t.Fatal(err)
	}
	t.Logf("REGION LOSS us bridge and consumer killed with %d of %d answered; standing eu bridge took the intake over %s after the loss (lock TTL %s); all %d finished %s after the loss",
		answered, n, takeover.Round(time.Millisecond), lockTTL, 2*n, time.Since(lost).Round(time.Millisecond))
	stopAll(t, euBridge, euCons)
	e.checkExactlyOnce(ctx, t, rec, ids)
	t.Logf("jobs by region: %v; second attempts in eu: %d", jobRegions(ctx, t, e.natsURL), euCons.out.count("attempt=2"))
}

// One cluster of three servers with streams and buckets at three replicas:
// the server leading the jobs stream is shut down in the middle of a
// batch. The others elect a new leader, the processes reconnect, and the
// batch completes exactly once.
func TestRegionClusterR3ServerStopped(t *testing.T) {
	const n = 30
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	e := newRegionEnv(t, ctx, []string{"us"}, []int{3}, "--replicas", "3", "--ack-wait", "3s")
	bridge := e.bridgeIn(t, ctx, "us")
	c1 := e.consumerIn(t, ctx, "us")
	c2 := e.consumerIn(t, ctx, "us")
	rec := recordAcceptance(ctx, t, e.natsURL)
	js := jetStreamAt(t, e.natsURL)
	s, err := js.Stream(ctx, pipeline.JobsStream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.Config.Replicas != 3 || info.Cluster == nil || len(info.Cluster.Replicas) != 2 {
		t.Fatalf("jobs stream: %d replicas, cluster %+v", info.Config.Replicas, info.Cluster)
	}
	ids := e.submitJobs(n)
	if _, err := e.xs.WaitCallbacks(ctx, 3); err != nil {
		t.Fatal(err)
	}
	var leader *server.Server
	for _, srv := range e.regions["us"].servers {
		if srv.Name() == info.Cluster.Leader {
			leader = srv
		}
	}
	if leader == nil {
		t.Fatalf("no server is the leader %q", info.Cluster.Leader)
	}
	lost := time.Now()
	answered := len(e.xs.Callbacks())
	leader.Shutdown()
	leader.WaitForShutdown()
	if _, err := e.xs.WaitCallbacks(ctx, n); err != nil {
		t.Fatal(err)
	}
	t.Logf("R3: stream leader %s shut down with %d of %d answered; the batch finished %s later", info.Cluster.Leader, answered, n, time.Since(lost).Round(time.Millisecond))
	stopAll(t, bridge, c1, c2)
	e.checkExactlyOnce(ctx, t, rec, ids)
}
