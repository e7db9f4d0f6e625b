package main

// The example configurations in deploy/ are part of the product: they must
// parse and be accepted by the programs they are written for.

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"go.yaml.in/yaml/v3"
	"google.golang.org/grpc"

	"github.com/certd-dev/certd/internal/pipeline"
	certdv1 "github.com/certd-dev/certd/proto/certd/v1"
)

const deployDir = "../../deploy"

// natsTLSEnv writes a self-signed certificate and key and points the TLS
// placeholders of the NATS configs (NATS_TLS_CERT, NATS_TLS_KEY,
// NATS_TLS_CA) at them, and sets every password the configs read.
func natsTLSEnv(t *testing.T) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "nats.internal"},
		DNSNames: []string{"localhost"}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cert, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(cert, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	for k, v := range map[string]string{"NATS_TLS_CERT": cert, "NATS_TLS_KEY": keyFile, "NATS_TLS_CA": cert,
		"NATS_BRIDGE_PASSWORD": "bridge-pw", "NATS_CONSUMER_PASSWORD": "consumer-pw", "NATS_CONTROL_PASSWORD": "control-pw",
		"NATS_ADMIN_PASSWORD": "admin-pw"} {
		t.Setenv(k, v)
	}
}

// checkCertdAccount: the config has the CERTD account with JetStream and
// one user per role with permissions from the environment's passwords, and
// the system account.
func checkCertdAccount(t *testing.T, path string, o *server.Options) {
	t.Helper()
	if o.SystemAccount != "SYS" {
		t.Errorf("%s: system account %q, want SYS", path, o.SystemAccount)
	}
	var certd *server.Account
	for _, a := range o.Accounts {
		if a.Name == "CERTD" {
			certd = a
		}
	}
	if certd == nil {
		t.Fatalf("%s: no CERTD account", path)
	}
	roles := map[string]bool{}
	for _, u := range o.Users {
		if u.Account == nil || u.Account.Name != "CERTD" {
			continue
		}
		roles[u.Username] = true
		if u.Password != u.Username+"-pw" {
			t.Errorf("%s: user %s does not take its password from NATS_%s_PASSWORD", path, u.Username, strings.ToUpper(u.Username))
		}
		if u.Permissions == nil || u.Permissions.Publish == nil || len(u.Permissions.Publish.Allow) == 0 {
			t.Errorf("%s: user %s may publish anything", path, u.Username)
		}
	}
	for _, r := range []string{"bridge", "consumer", "control"} {
		if !roles[r] {
			t.Errorf("%s: no %s user in CERTD (users: %v)", path, r, roles)
		}
	}
	if o.TLSConfig == nil {
		t.Errorf("%s: clients are not offered TLS", path)
	}
	if o.Cluster.TLSConfig == nil {
		t.Errorf("%s: routes without TLS", path)
	}
}

// The NATS configs load with nats-server's own parser: a three-node
// cluster (nats/cluster) and a two-region supercluster (nats/us.conf,
// nats/eu.conf) whose clusters route to every member, itself included, and
// whose gateways name both regions; all with JetStream, the certd account
// with a user per role, and TLS for clients, routes and gateways.
func TestDeployNATSConfigs(t *testing.T) {
	natsTLSEnv(t)
	names := map[string]bool{}
	for i := 1; i <= 3; i++ {
		path := filepath.Join(deployDir, "nats", "cluster", fmt.Sprintf("nats-%d.conf", i))
		o, err := server.ProcessConfigFile(path)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if names[o.ServerName] || !o.JetStream || o.Cluster.Name != "certd" || len(o.Routes) != 3 {
			t.Errorf("%s: server %q (unique: %v), JetStream %v, cluster %q, %d routes", path, o.ServerName, !names[o.ServerName], o.JetStream, o.Cluster.Name, len(o.Routes))
		}
		names[o.ServerName] = true
		checkCertdAccount(t, path, o)
	}
	members := map[string]int{"us": 3, "eu": 2}
	for _, region := range []string{"us", "eu"} {
		path := filepath.Join(deployDir, "nats", region+".conf")
		o, err := server.ProcessConfigFile(path)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if !o.JetStream || o.StoreDir == "" {
			t.Errorf("%s: JetStream %v, store_dir %q", path, o.JetStream, o.StoreDir)
		}
		if names[o.ServerName] || !strings.HasPrefix(o.ServerName, region+"-") {
			t.Errorf("%s: server_name %q is not unique or not of region %s", path, o.ServerName, region)
		}
		names[o.ServerName] = true
		if !slices.Contains(o.Tags, "region:"+region) {
			t.Errorf("%s: server tags %v lack region:%s", path, o.Tags, region)
		}
		if o.Cluster.Name != region || o.Cluster.Port == 0 {
			t.Errorf("%s: cluster %q port %d", path, o.Cluster.Name, o.Cluster.Port)
		}
		self := false
		for _, r := range o.Routes {
			if strings.HasPrefix(r.Hostname(), o.ServerName+".") && r.Port() == fmt.Sprint(o.Cluster.Port) {
				self = true
			}
			if !strings.HasPrefix(r.Hostname(), region+"-") {
				t.Errorf("%s: route %s leaves the cluster", path, r)
			}
		}
		if !self || len(o.Routes) != members[region] {
			t.Errorf("%s: routes %v must list every member (%d), %s itself included", path, o.Routes, members[region], o.ServerName)
		}
		if o.Gateway.Name != region || o.Gateway.Port == 0 || o.Gateway.TLSConfig == nil {
			t.Errorf("%s: gateway name %q (must be the cluster name) port %d, TLS %v", path, o.Gateway.Name, o.Gateway.Port, o.Gateway.TLSConfig != nil)
		}
		var gws []string
		for _, g := range o.Gateway.Gateways {
			gws = append(gws, g.Name)
			if len(g.URLs) != members[g.Name] {
				t.Errorf("%s: gateway %s has %d URLs, want one per server (%d)", path, g.Name, len(g.URLs), members[g.Name])
			}
		}
		slices.Sort(gws)
		if !slices.Equal(gws, []string{"eu", "us"}) {
			t.Errorf("%s: gateways %v, want eu and us", path, gws)
		}
		checkCertdAccount(t, path, o)
	}
}

// deploy/certd.yaml names every setting with its default value and nothing
// else, and certd accepts it.
func TestDeployCertdYAML(t *testing.T) {
	clearCertdEnv(t)
	path := filepath.Join(deployDir, "certd.yaml")
	m, err := readYAML(path)
	if err != nil {
		t.Fatalf("certd rejects %s: %v", path, err)
	}
	b, _ := os.ReadFile(path)
	var raw map[string]any
	if err := yaml.Unmarshal(b, &raw); err != nil {
		t.Fatal(err)
	}
	for name, s := range settings {
		v, ok := raw[name]
		if !ok {
			t.Errorf("%s does not document %s", path, name)
			continue
		}
		if v == nil {
			t.Errorf("%s: %s has no value (YAML null); write %q", path, name, s.def)
		}
		if m[name] != s.def && !(m[name] == "" && s.def == "") {
			t.Errorf("%s: %s is %q, but the default is %q", path, name, m[name], s.def)
		}
	}

	// certd all starts with it and stops cleanly.
	dataDir := t.TempDir()
	httpAddr, grpcAddr := freeAddr(t), freeAddr(t)
	all := runBackground(t, "all", "--config", path, "--data-dir", dataDir, "--http-addr", httpAddr, "--grpc-addr", grpcAddr)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// Every part is up (stopping earlier hits the start-up bug that
	// TestAllStopRightAfterStartExitsZero shows).
	for _, line := range []string{"certd is running", "consumer started", "no xqueue configured"} {
		if err := all.errOut.waitFor(ctx, line, 1); err != nil {
			t.Fatalf("certd all --config %s: %v", path, err)
		}
	}
	if code := all.stop(t); code != 0 {
		t.Errorf("certd all --config %s: exit %d", path, code)
	}

	// certd consumer with it alone refuses for the missing key only.
	r := runCmd(ctx, "consumer", "--config", path)
	if r.code == 0 || !strings.Contains(r.stderr, "--signing-key") || strings.Contains(r.stderr, "unknown") {
		t.Errorf("certd consumer --config %s: exit %d\n%s", path, r.code, r.stderr)
	}
}

// The systemd units run an existing certd command with the shared config
// and environment file, stop it with SIGTERM and are hardened.
func TestDeploySystemdUnits(t *testing.T) {
	for _, role := range []string{"bridge", "consumer", "control"} {
		path := filepath.Join(deployDir, "systemd", "certd-"+role+".service")
		f, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		keys := map[string][]string{}
		section := ""
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			line := strings.TrimSpace(sc.Text())
			switch {
			case line == "" || strings.HasPrefix(line, "#"):
			case strings.HasPrefix(line, "["):
				section = strings.Trim(line, "[]")
				keys[section] = nil
			default:
				k, v, ok := strings.Cut(line, "=")
				if !ok || section == "" {
					t.Errorf("%s: bad line %q", path, line)
				}
				keys[section+"."+k] = append(keys[section+"."+k], v)
			}
		}
		f.Close()
		for _, s := range []string{"Unit", "Service", "Install"} {
			if _, ok := keys[s]; !ok {
				t.Errorf("%s: no [%s] section", path, s)
			}
		}
		exec := keys["Service.ExecStart"]
		if len(exec) != 1 {
			t.Fatalf("%s: ExecStart %v", path, exec)
		}
		args := strings.Fields(exec[0])
		if len(args) < 2 || filepath.Base(args[0]) != "certd" || args[1] != role {
			t.Errorf("%s: ExecStart %q does not run certd %s", path, exec[0], role)
		}
		if _, ok := commands[args[1]]; !ok {
			t.Errorf("%s: certd has no command %q", path, args[1])
		}
		for _, a := range args[2:] {
			if n, ok := strings.CutPrefix(a, "--"); ok {
				n, _, _ = strings.Cut(n, "=")
				if _, known := settings[n]; !known && n != "config" {
					t.Errorf("%s: unknown setting --%s", path, n)
				}
			}
		}
		for k, want := range map[string]string{
			"Service.EnvironmentFile": "/etc/certd/certd.env", "Service.KillSignal": "SIGTERM",
			"Service.NoNewPrivileges": "yes", "Service.ProtectSystem": "strict", "Service.User": "certd",
			"Service.PrivateTmp": "yes", "Service.ProtectHome": "yes", "Service.CapabilityBoundingSet": "",
			"Service.MemoryDenyWriteExecute": "yes", "Service.RestrictNamespaces": "yes", "Service.ProtectKernelTunables": "yes",
			"Service.RemoveIPC": "yes", "Service.PrivateIPC": "yes", "Service.KeyringMode": "private", "Service.DevicePolicy": "closed",
			"Service.SystemCallErrorNumber": "EPERM", "Service.PrivateDevices": "yes", "Service.RestrictSUIDSGID": "yes",
		} {
			if v := keys[k]; len(v) != 1 || v[0] != want {
				t.Errorf("%s: %s = %v, want %q", path, k, v, want)
			}
		}
		// systemd waits longer than certd's drain-timeout (default 60s)
		// before SIGKILL, so jobs under way finish.
		if v := keys["Service.TimeoutStopSec"]; len(v) != 1 {
			t.Errorf("%s: TimeoutStopSec %v", path, v)
		} else if d, err := time.ParseDuration(v[0]); err != nil || d <= time.Minute {
			t.Errorf("%s: TimeoutStopSec %s must exceed drain-timeout 60s", path, v[0])
		}
		if f := keys["Service.SystemCallFilter"]; !slices.Contains(f, "@system-service") {
			t.Errorf("%s: SystemCallFilter %v does not start from @system-service", path, f)
		}
	}
}

// startDeployNATS runs one server with deploy/nats/cluster/nats-1.conf as
// parsed, on loopback: its accounts, users and permissions unchanged;
// listen port, store, cluster routes and TLS replaced for the test.
func startDeployNATS(t *testing.T) int {
	t.Helper()
	natsTLSEnv(t)
	o, err := server.ProcessConfigFile(filepath.Join(deployDir, "nats", "cluster", "nats-1.conf"))
	if err != nil {
		t.Fatal(err)
	}
	o.Host, o.Port, o.HTTPPort = "127.0.0.1", freePort(t), 0
	o.StoreDir = t.TempDir()
	o.Cluster, o.Routes, o.RoutesStr = server.ClusterOpts{}, nil, ""
	o.TLS, o.TLSVerify, o.TLSConfig = false, false, nil
	o.NoSigs, o.NoLog = true, true
	s, err := server.NewServer(o)
	if err != nil {
		t.Fatal(err)
	}
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		t.Fatal("NATS with the deploy config did not start")
	}
	t.Cleanup(func() { s.Shutdown(); s.WaitForShutdown() })
	return o.Port
}

// violations connects as a role and collects the permission errors the
// server sends it.
func connectAs(t *testing.T, port int, role string) (*nats.Conn, <-chan error) {
	t.Helper()
	errs := make(chan error, 16)
	nc, err := nats.Connect(fmt.Sprintf("nats://%s:%s-pw@127.0.0.1:%d", role, role, port),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			select {
			case errs <- err:
			default:
			}
		}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return nc, errs
}

// certd runs with the deploy account and its least-privilege users: the
// bridge (holding the intake lock), a consumer and the control service
// (which reads the lock holder), each logged in as its role, answer a
// batch exactly once. Each role is refused what it must not do:
// the consumer publishing jobs or pulling results, the control service
// publishing results, any role deleting a stream.
func TestDeployNATSAccountPermissions(t *testing.T) {
	const n = 5
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	port := startDeployNATS(t)
	url := func(role string) string { return fmt.Sprintf("nats://%s:%s-pw@127.0.0.1:%d", role, role, port) }
	e := newSplitEnv(t, ctx)
	e.natsURL = url("control")
	e.common = []string{"--nats-url", url("bridge")}
	bridge := e.startBridge(t)
	e.common = []string{"--nats-url", url("consumer")}
	cons := e.startConsumer(t, "us-east")
	e.common = []string{"--nats-url", url("control")}
	grpcAddr := freeAddr(t)
	ctl := e.startControl(t, grpcAddr)
	for p, line := range map[*proc]string{bridge: "intake started", cons: "consumer started", ctl: "control service listening"} {
		if err := p.out.waitFor(ctx, line, 1); err != nil {
			t.Fatal(err)
		}
	}
	rec := recordAcceptance(ctx, t, url("control"))
	ids := e.submitJobs(n)
	if _, err := e.xs.WaitCallbacks(ctx, n); err != nil {
		t.Fatal(err)
	}
	st, err := controlClient(t, grpcAddr).GetStatus(ctx, &certdv1.GetStatusRequest{}, grpc.WaitForReady(true))
	if err != nil {
		t.Fatalf("GetStatus as the control user: %v", err)
	}
	if len(st.Workers) == 0 {
		t.Error("GetStatus lists no workers")
	}
	// The bridge holds the intake lock; the control user may read it.
	if len(st.IntakeHolders) != 1 || st.IntakeHolders[0].Region != "us-east" {
		t.Errorf("GetStatus intake holders %v, want the bridge in us-east", st.IntakeHolders)
	}
	stopAll(t, bridge, cons, ctl)
	e.checkExactlyOnce(ctx, t, rec, ids)
	for _, p := range []*proc{bridge, cons, ctl} {
		if strings.Contains(p.out.text(), "ermission") {
			t.Errorf("%s hit a permission error:\n%s", p.name, p.out.text())
		}
	}

	refused := func(role, what string, do func(nc *nats.Conn) error) {
		t.Helper()
		nc, errs := connectAs(t, port, role)
		err := do(nc)
		if err == nil {
			err = nc.Flush()
		}
		if err == nil {
			select {
			case err = <-errs:
			case <-time.After(5 * time.Second):
			}
		}
		if err == nil || !strings.Contains(strings.ToLower(err.Error()), "permission") {
			t.Errorf("%s may %s (err %v)", role, what, err)
		}
	}
	refused("consumer", "publish jobs", func(nc *nats.Conn) error { return nc.Publish("certs.job.create", []byte("{}")) })
	refused("consumer", "pull results", func(nc *nats.Conn) error {
		return nc.PublishRequest("$JS.API.CONSUMER.MSG.NEXT.CERTS_RESULTS.relay-xqueue", nc.NewRespInbox(), []byte(`{"batch":1}`))
	})
	refused("control", "publish results", func(nc *nats.Conn) error { return nc.Publish("certs.result.xqueue", []byte("{}")) })
	refused("bridge", "pull jobs", func(nc *nats.Conn) error {
		return nc.PublishRequest("$JS.API.CONSUMER.MSG.NEXT.CERTS_JOBS.job-create", nc.NewRespInbox(), []byte(`{"batch":1}`))
	})
	for _, role := range []string{"bridge", "consumer", "control"} {
		refused(role, "delete a stream", func(nc *nats.Conn) error {
			return nc.Publish("$JS.API.STREAM.DELETE."+pipeline.JobsStream, nil)
		})
	}
}

// deploy/certd/<region>/<role>.yaml: certd accepts each, every key is a
// setting its command reads, and all agree on the topology (home cluster
// us, three replicas, the same regional preference) while naming their own
// region.
func TestDeployCertdRoleConfigs(t *testing.T) {
	clearCertdEnv(t)
	roles := map[string][]string{
		"bridge":   join(natsSettings, xqueueSettings, bridgeSettings, httpSettings),
		"consumer": join(natsSettings, handlerSettings, credentialSettings, consumerSettings, httpSettings),
		"control":  join(natsSettings, controlSettings, xqueueSettings, storageSettings, credentialSettings, httpSettings),
	}
	for _, region := range []string{"us", "eu"} {
		for role, known := range roles {
			path := filepath.Join(deployDir, "certd", region, role+".yaml")
			m, err := readYAML(path)
			if err != nil {
				t.Errorf("certd %s rejects %s: %v", role, path, err)
				continue
			}
			for k := range m {
				if !slices.Contains(known, k) {
					t.Errorf("%s: certd %s does not read %s", path, role, k)
				}
				if settings[k].secret {
					t.Errorf("%s: secret %s belongs in the environment", path, k)
				}
			}
			if m["region"] != region || m["cluster"] != "us" || m["replicas"] != "3" {
				t.Errorf("%s: region %q cluster %q replicas %q; want %s, us, 3", path, m["region"], m["cluster"], m["replicas"], region)
			}
			if m["home-region"] != "us" || m["overflow-threshold"] != "0" {
				t.Errorf("%s: home-region %q overflow-threshold %q; every process must agree (us, 0)", path, m["home-region"], m["overflow-threshold"])
			}
		}
	}
}
