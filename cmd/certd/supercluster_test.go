package main

// Several regions against one NATS supercluster: cluster "us" and cluster
// "eu" joined by gateways. The streams and buckets are placed in us; the
// bridge runs in us and a consumer connected only to the eu server does the
// work through the gateways.

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/certd-dev/certd/internal/natsserver"
	"github.com/certd-dev/certd/internal/pipeline"
	certdv1 "github.com/certd-dev/certd/proto/certd/v1"
)

// startSupercluster starts one JetStream server per named cluster, each
// cluster listing its own route (components.md: cluster.routes lists every
// member including itself) and every cluster's gateway.
func startSupercluster(t *testing.T, names ...string) map[string]*server.Server {
	t.Helper()
	routePort, gwPort := map[string]int{}, map[string]int{}
	for _, n := range names {
		routePort[n], gwPort[n] = freePort(t), freePort(t)
	}
	var gateways []*server.RemoteGatewayOpts
	for _, n := range names {
		gateways = append(gateways, &server.RemoteGatewayOpts{Name: n, URLs: []*url.URL{{Scheme: "nats", Host: fmt.Sprintf("127.0.0.1:%d", gwPort[n])}}})
	}
	servers := map[string]*server.Server{}
	for _, n := range names {
		s, err := natsserver.Start(natsserver.Config{
			Dir: t.TempDir(), Port: -1, Name: n + "-1",
			Customize: func(o *server.Options) {
				o.Cluster = server.ClusterOpts{Name: n, Host: "127.0.0.1", Port: routePort[n]}
				o.Routes = server.RoutesFromStr(fmt.Sprintf("nats-route://127.0.0.1:%d", routePort[n]))
				o.Gateway = server.GatewayOpts{Name: n, Host: "127.0.0.1", Port: gwPort[n], Gateways: gateways}
			},
		})
		if err != nil {
			t.Fatalf("server %s: %v", n, err)
		}
		t.Cleanup(func() { s.Shutdown(); s.WaitForShutdown() })
		servers[n] = s
	}
	return servers
}

// waitJetStream waits until JetStream answers through url: in a
// supercluster that is when the meta group has elected a leader, which
// needs the gateways up. Clients see no event for it, so this asks again
// after each "temporarily unavailable".
func waitJetStream(ctx context.Context, t *testing.T, url string) {
	t.Helper()
	js := jetStreamAt(t, url)
	for delay := 20 * time.Millisecond; ; delay = min(2*delay, 500*time.Millisecond) {
		rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		_, err := js.AccountInfo(rctx)
		cancel()
		if err == nil {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("JetStream at %s never became available: %v", url, err)
		case <-time.After(delay): // backoff between requests, not a synchronisation
		}
	}
}

// A consumer in region eu, connected only to the eu cluster, serves jobs
// whose streams live in us; every job is answered once and recorded as
// done in eu.
func TestSuperclusterConsumerInOtherRegion(t *testing.T) {
	const n = 6
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	servers := startSupercluster(t, "us", "eu")
	usURL, euURL := servers["us"].ClientURL(), servers["eu"].ClientURL()
	waitJetStream(ctx, t, usURL)
	waitJetStream(ctx, t, euURL)

	e := newSplitEnv(t, ctx)
	e.natsURL = usURL
	e.common = []string{"--nats-url", usURL, "--cluster", "us"}
	bridge := e.startBridge(t)
	if err := bridge.out.waitFor(ctx, "intake started", 1); err != nil {
		t.Fatal(err)
	}
	e.common = []string{"--nats-url", euURL, "--cluster", "us"}
	cons := e.startConsumer(t, "eu")
	if err := cons.out.waitFor(ctx, "consumer started", 1); err != nil {
		t.Fatal(err)
	}

	// The streams and buckets are in us, seen from the eu side too.
	js := jetStreamAt(t, euURL)
	for _, name := range []string{pipeline.JobsStream, pipeline.ResultsStream, "KV_" + pipeline.JobsBucket} {
		s, err := js.Stream(ctx, name)
		if err != nil {
			t.Fatalf("stream %s: %v", name, err)
		}
		info, err := s.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if info.Cluster == nil || info.Cluster.Name != "us" {
			t.Errorf("stream %s is placed in %+v, want cluster us", name, info.Cluster)
		}
	}

	ids := e.submitJobs(n)
	if _, err := e.xs.WaitCallbacks(ctx, n); err != nil {
		t.Fatal(err)
	}
	for _, p := range []*proc{bridge, cons} {
		if code, err := p.stop(20 * time.Second); err != nil || code != 0 {
			t.Errorf("%s after SIGTERM: exit %d, %v", p.name, code, err)
		}
	}
	e.checkAnsweredOnce(t, ids)

	kv, err := js.KeyValue(ctx, pipeline.JobsBucket)
	if err != nil {
		t.Fatal(err)
	}
	records := 0
	err = pipeline.NewRecords(kv).Scan(ctx, func(rec *certdv1.JobRecord) bool {
		records++
		if rec.State != certdv1.JobState_JOB_STATE_ANSWERED || rec.Region != "eu" {
			t.Errorf("job %s: state %s, region %q; want answered in eu", rec.Id, rec.State, rec.Region)
		}
		return true
	})
	if err != nil && !errors.Is(err, context.Canceled) {
		t.Fatal(err)
	}
	if records != n {
		t.Errorf("%d job records, want %d", records, n)
	}
}
