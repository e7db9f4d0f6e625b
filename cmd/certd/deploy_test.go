package main

// The example configurations in deploy/ are part of the product: they must
// parse and be accepted by the programs they are written for.

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"go.yaml.in/yaml/v3"
)

const deployDir = "../../deploy"

// The two NATS configs make a supercluster: JetStream on, one cluster per
// region whose routes list the server itself, gateways naming both regions.
func TestDeployNATSConfigs(t *testing.T) {
	t.Setenv("NATS_CERTD_PASSWORD", "test-password")
	names := map[string]bool{}
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
		if !self || len(o.Routes) < 3 {
			t.Errorf("%s: routes %v must list every member, %s itself included", path, o.Routes, o.ServerName)
		}
		if o.Gateway.Name != region || o.Gateway.Port == 0 {
			t.Errorf("%s: gateway name %q (must be the cluster name) port %d", path, o.Gateway.Name, o.Gateway.Port)
		}
		var gws []string
		for _, g := range o.Gateway.Gateways {
			gws = append(gws, g.Name)
			if len(g.URLs) == 0 {
				t.Errorf("%s: gateway %s has no URLs", path, g.Name)
			}
		}
		slices.Sort(gws)
		if !slices.Equal(gws, []string{"eu", "us"}) {
			t.Errorf("%s: gateways %v, want eu and us", path, gws)
		}
		if len(o.Users) == 0 || o.Users[0].Password != "test-password" {
			t.Errorf("%s: clients do not need the password from the environment", path)
		}
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
		} {
			if v := keys[k]; len(v) != 1 || v[0] != want {
				t.Errorf("%s: %s = %v, want %q", path, k, v, want)
			}
		}
	}
}
