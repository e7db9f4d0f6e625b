package main

// The Kubernetes manifests in deploy/k8s decode strictly into the
// Kubernetes API types (a misspelt field fails), kustomizations name files
// that exist, and what certd and NATS read from them is accepted by certd
// and by nats-server's own parser.

import (
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"sigs.k8s.io/yaml"
)

// kustomization is the part of kustomize's Kustomization certd uses,
// decoded strictly.
type kustomization struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Namespace  string `json:"namespace,omitempty"`
	Labels     []struct {
		Pairs            map[string]string `json:"pairs"`
		IncludeSelectors bool              `json:"includeSelectors"`
	} `json:"labels,omitempty"`
	Resources []string `json:"resources,omitempty"`
	Patches   []struct {
		Path string `json:"path"`
	} `json:"patches,omitempty"`
	Replicas []struct {
		Name  string `json:"name"`
		Count int    `json:"count"`
	} `json:"replicas,omitempty"`
}

// k8sObject decodes one YAML document strictly into its API type.
func k8sObject(doc []byte) (any, error) {
	var meta struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
	}
	if err := yaml.Unmarshal(doc, &meta); err != nil {
		return nil, err
	}
	var obj any
	switch meta.APIVersion + "/" + meta.Kind {
	case "v1/Namespace":
		obj = &corev1.Namespace{}
	case "v1/ConfigMap":
		obj = &corev1.ConfigMap{}
	case "v1/Service":
		obj = &corev1.Service{}
	case "apps/v1/Deployment":
		obj = &appsv1.Deployment{}
	case "apps/v1/StatefulSet":
		obj = &appsv1.StatefulSet{}
	case "policy/v1/PodDisruptionBudget":
		obj = &policyv1.PodDisruptionBudget{}
	default:
		return nil, fmt.Errorf("unexpected kind %s %s", meta.APIVersion, meta.Kind)
	}
	if err := yaml.UnmarshalStrict(doc, obj); err != nil {
		return nil, fmt.Errorf("%s: %w", meta.Kind, err)
	}
	return obj, nil
}

var docSep = regexp.MustCompile(`(?m)^---\s*$`)

// k8sManifests decodes every manifest under deploy/k8s, keyed by
// "<file>#<kind>/<name>".
func k8sManifests(t *testing.T) map[string]any {
	t.Helper()
	root := filepath.Join(deployDir, "k8s")
	out := map[string]any{}
	err := filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		if !strings.HasSuffix(path, ".yaml") {
			t.Errorf("%s: not a YAML manifest", path)
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		if d.Name() == "kustomization.yaml" {
			var k kustomization
			if err := yaml.UnmarshalStrict(b, &k); err != nil {
				t.Errorf("%s: %v", path, err)
				return nil
			}
			if k.Kind != "Kustomization" {
				t.Errorf("%s: kind %q", path, k.Kind)
			}
			files := k.Resources
			for _, p := range k.Patches {
				files = append(files, p.Path)
			}
			for _, f := range files {
				if _, err := os.Stat(filepath.Join(filepath.Dir(path), f)); err != nil {
					t.Errorf("%s names %s: %v", path, f, err)
				}
			}
			out[rel] = &k
			return nil
		}
		for i, doc := range docSep.Split(string(b), -1) {
			if strings.TrimSpace(doc) == "" {
				continue
			}
			obj, err := k8sObject([]byte(doc))
			if err != nil {
				t.Errorf("%s document %d: %v", path, i+1, err)
				continue
			}
			var name, kind string
			switch o := obj.(type) {
			case *corev1.Namespace:
				kind, name = "Namespace", o.Name
			case *corev1.ConfigMap:
				kind, name = "ConfigMap", o.Name
			case *corev1.Service:
				kind, name = "Service", o.Name
			case *appsv1.Deployment:
				kind, name = "Deployment", o.Name
			case *appsv1.StatefulSet:
				kind, name = "StatefulSet", o.Name
			case *policyv1.PodDisruptionBudget:
				kind, name = "PodDisruptionBudget", o.Name
			}
			out[rel+"#"+kind+"/"+name] = obj
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// The strict decoder refuses a misspelt field (the check below would be
// worthless otherwise).
func TestDeployKubernetesStrictDecodingRefusesTypos(t *testing.T) {
	doc := "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\nspec:\n  template:\n    spec:\n      terminationGracePeriodSecond: 90\n"
	if _, err := k8sObject([]byte(doc)); err == nil || !strings.Contains(err.Error(), "terminationGracePeriodSecond") {
		t.Errorf("a misspelt field decoded: %v", err)
	}
}

// Every manifest decodes strictly; the consumers are ready on /readyz, ask
// for resources, have a PodDisruptionBudget and more grace than
// drain-timeout; every certd container runs an existing command with known
// settings, as a non-root user with a read-only root; certd accepts the
// shared config; the NATS configs (base and each region's overlay) load
// with nats-server's parser and include the account file of deploy/nats.
func TestDeployKubernetesManifests(t *testing.T) {
	objs := k8sManifests(t)
	for _, want := range []string{
		"base/kustomization.yaml", "overlays/us/kustomization.yaml", "overlays/eu/kustomization.yaml",
		"base/bridge.yaml#Deployment/certd-bridge", "base/consumer.yaml#Deployment/certd-consumer",
		"base/control.yaml#Deployment/certd-control", "base/consumer-pdb.yaml#PodDisruptionBudget/certd-consumer",
		"base/nats.yaml#StatefulSet/nats", "base/config.yaml#ConfigMap/certd-config",
	} {
		if objs[want] == nil {
			t.Errorf("deploy/k8s lacks %s", want)
		}
	}

	// certd's shared config is accepted by certd.
	cm, _ := objs["base/config.yaml#ConfigMap/certd-config"].(*corev1.ConfigMap)
	var drain time.Duration
	if cm != nil {
		f := filepath.Join(t.TempDir(), "certd.yaml")
		if err := os.WriteFile(f, []byte(cm.Data["certd.yaml"]), 0o600); err != nil {
			t.Fatal(err)
		}
		m, err := readYAML(f)
		if err != nil {
			t.Errorf("certd rejects the ConfigMap's certd.yaml: %v", err)
		}
		if drain, err = time.ParseDuration(m["drain-timeout"]); err != nil {
			t.Errorf("drain-timeout %q: %v", m["drain-timeout"], err)
		}
	}

	for key, o := range objs {
		d, ok := o.(*appsv1.Deployment)
		if !ok || !strings.HasPrefix(key, "base/") {
			continue
		}
		spec := d.Spec.Template.Spec
		sc := spec.SecurityContext
		if sc == nil || sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot || sc.RunAsUser == nil || *sc.RunAsUser == 0 {
			t.Errorf("%s: pods may run as root", key)
		}
		if !maps.Equal(d.Spec.Selector.MatchLabels, selectorOf(d.Spec.Template.Labels, d.Spec.Selector.MatchLabels)) {
			t.Errorf("%s: selector %v does not match the pod labels %v", key, d.Spec.Selector.MatchLabels, d.Spec.Template.Labels)
		}
		for _, c := range spec.Containers {
			if len(c.Args) == 0 {
				t.Errorf("%s: container %s has no certd command", key, c.Name)
				continue
			}
			if _, ok := commands[c.Args[0]]; !ok {
				t.Errorf("%s: certd has no command %q", key, c.Args[0])
			}
			for _, a := range c.Args[1:] {
				if n, ok := strings.CutPrefix(a, "--"); ok {
					n, _, _ = strings.Cut(n, "=")
					if _, known := settings[n]; !known && n != "config" {
						t.Errorf("%s: unknown setting --%s", key, n)
					}
				}
			}
			for _, e := range c.Env {
				if n, ok := strings.CutPrefix(e.Name, "CERTD_"); ok {
					if _, known := settings[strings.ReplaceAll(strings.ToLower(n), "_", "-")]; !known {
						t.Errorf("%s: unknown setting in %s", key, e.Name)
					}
				}
			}
			if c.SecurityContext == nil || c.SecurityContext.ReadOnlyRootFilesystem == nil || !*c.SecurityContext.ReadOnlyRootFilesystem ||
				c.SecurityContext.AllowPrivilegeEscalation == nil || *c.SecurityContext.AllowPrivilegeEscalation {
				t.Errorf("%s: container %s may write its root or escalate", key, c.Name)
			}
			if c.Resources.Requests.Cpu().IsZero() || c.Resources.Requests.Memory().IsZero() {
				t.Errorf("%s: container %s requests no CPU or memory", key, c.Name)
			}
		}
	}

	if d, ok := objs["base/consumer.yaml#Deployment/certd-consumer"].(*appsv1.Deployment); ok {
		spec := d.Spec.Template.Spec
		c := spec.Containers[0]
		if c.ReadinessProbe == nil || c.ReadinessProbe.HTTPGet == nil || c.ReadinessProbe.HTTPGet.Path != "/readyz" {
			t.Errorf("consumer readiness probe %+v, want GET /readyz", c.ReadinessProbe)
		}
		if g := spec.TerminationGracePeriodSeconds; g == nil || time.Duration(*g)*time.Second <= drain {
			t.Errorf("consumer terminationGracePeriodSeconds %v must exceed drain-timeout %s", g, drain)
		}
		if pdb, ok := objs["base/consumer-pdb.yaml#PodDisruptionBudget/certd-consumer"].(*policyv1.PodDisruptionBudget); ok {
			for k, v := range pdb.Spec.Selector.MatchLabels {
				if d.Spec.Template.Labels[k] != v {
					t.Errorf("the PodDisruptionBudget selects %v, not the consumer pods %v", pdb.Spec.Selector.MatchLabels, d.Spec.Template.Labels)
				}
			}
		}
	}

	// NATS: the base and each region's config parse, with the accounts
	// file of deploy/nats.
	accounts, err := os.ReadFile(filepath.Join(deployDir, "nats", "accounts.conf"))
	if err != nil {
		t.Fatal(err)
	}
	natsTLSEnv(t)
	t.Setenv("POD_NAME", "nats-0")
	for key, o := range objs {
		cm, ok := o.(*corev1.ConfigMap)
		if !ok || cm.Name != "nats-config" {
			continue
		}
		if a, ok := cm.Data["accounts.conf"]; ok && a != string(accounts) {
			t.Errorf("%s: accounts.conf differs from deploy/nats/accounts.conf", key)
		}
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "accounts.conf"), accounts, 0o600); err != nil {
			t.Fatal(err)
		}
		conf := filepath.Join(dir, "nats.conf")
		if err := os.WriteFile(conf, []byte(cm.Data["nats.conf"]), 0o600); err != nil {
			t.Fatal(err)
		}
		opts, err := server.ProcessConfigFile(conf)
		if err != nil {
			t.Errorf("%s: nats.conf: %v", key, err)
			continue
		}
		region := opts.Cluster.Name
		if opts.ServerName != "nats-0" || !opts.JetStream || opts.Gateway.Name != region || len(opts.Gateway.Gateways) != 2 {
			t.Errorf("%s: server %q JetStream %v cluster %q gateway %q with %d gateways", key, opts.ServerName, opts.JetStream, region, opts.Gateway.Name, len(opts.Gateway.Gateways))
		}
		checkCertdAccount(t, key, opts)
		if !strings.HasPrefix(key, "overlays/") && region != "us" {
			t.Errorf("%s: the base is the home region us, not %q", key, region)
		}
		if strings.HasPrefix(key, "overlays/") && !strings.HasPrefix(key, "overlays/"+region+"/") {
			t.Errorf("%s: cluster %q in another region's overlay", key, region)
		}
	}
}

// selectorOf returns the labels of pod that the selector names (equal to
// the selector when it matches).
func selectorOf(pod, sel map[string]string) map[string]string {
	out := map[string]string{}
	for k := range sel {
		if v, ok := pod[k]; ok {
			out[k] = v
		}
	}
	return out
}

// Each region's overlay changes only what the base has: every patch names
// an object of the base (kind and name), and every replicas entry a
// Deployment or StatefulSet of the base. kustomize is not run here; a patch
// or a replicas entry that matches nothing would fail `kubectl apply -k`.
func TestDeployKubernetesOverlaysPatchBase(t *testing.T) {
	objs := k8sManifests(t)
	base := map[string]bool{}
	for key := range objs {
		if rest, ok := strings.CutPrefix(key, "base/"); ok {
			if _, id, ok := strings.Cut(rest, "#"); ok {
				base[id] = true
			}
		}
	}
	for _, region := range []string{"us", "eu"} {
		dir := "overlays/" + region + "/"
		k, ok := objs[dir+"kustomization.yaml"].(*kustomization)
		if !ok {
			t.Errorf("no kustomization in %s", dir)
			continue
		}
		if len(k.Resources) != 1 || k.Resources[0] != "../../base" {
			t.Errorf("%s: resources %v, want the base only", dir, k.Resources)
		}
		patched := 0
		for key := range objs {
			rest, ok := strings.CutPrefix(key, dir)
			if !ok || rest == "kustomization.yaml" {
				continue
			}
			_, id, _ := strings.Cut(rest, "#")
			patched++
			if !base[id] {
				t.Errorf("%s patches %s, which the base does not have", key, id)
			}
		}
		if patched == 0 {
			t.Errorf("%s patches nothing", dir)
		}
		for _, r := range k.Replicas {
			if !base["Deployment/"+r.Name] && !base["StatefulSet/"+r.Name] {
				t.Errorf("%s: replicas for %s, which the base does not have", dir, r.Name)
			}
		}
	}
}
