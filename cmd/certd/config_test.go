package main

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/certd-dev/certd/internal/natsserver"
)

// clearCertdEnv removes every CERTD_ variable for the test (restored after).
func clearCertdEnv(t *testing.T) {
	t.Helper()
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); strings.HasPrefix(k, "CERTD_") {
			t.Setenv(k, "") // registers the restore
			os.Unsetenv(k)
		}
	}
}

func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// testParts are the settings the tests below parse.
type testParts struct {
	Log     LogSettings
	Workers WorkerSettings
	NATS    NATSSettings
	Bridge  BridgeSettings
	XQueue  XQueueSettings
}

func parsed(t *testing.T, args ...string) *testParts {
	t.Helper()
	var s testParts
	c := newConfig("test", io.Discard, &s)
	c.fs.SetOutput(&strings.Builder{})
	if err := c.parse(args); err != nil {
		t.Fatalf("parse %q: %v", args, err)
	}
	if err := c.err(); err != nil {
		t.Fatalf("parse %q: %v", args, err)
	}
	return &s
}

// A flag beats the environment, which beats the file, which beats the
// default; settings nobody set keep their defaults.
func TestSettingsPrecedence(t *testing.T) {
	clearCertdEnv(t)
	file := writeFile(t, t.TempDir(), "certd.yaml", "workers: 3\nregion: eu-west\npoll_interval: 5s\ncertd_xqueue_queue: certs-file\n")

	s := parsed(t)
	if got := s.Workers.Workers; got != 0 {
		t.Errorf("default workers = %d, want 0", got)
	}
	if got := s.XQueue.Queue; got != "certificates" {
		t.Errorf("default xqueue-queue = %q, want certificates", got)
	}
	if got := s.Bridge.PollInterval; got != time.Second {
		t.Errorf("default poll-interval = %v, want 1s", got)
	}

	s = parsed(t, "--config", file)
	if s.Workers.Workers != 3 || s.NATS.Region != "eu-west" || s.Bridge.PollInterval != 5*time.Second || s.XQueue.Queue != "certs-file" || s.Log.Level != "info" {
		t.Errorf("from file: workers %d, region %q, poll-interval %v, xqueue-queue %q, log-level %q; want 3, eu-west, 5s, certs-file, info",
			s.Workers.Workers, s.NATS.Region, s.Bridge.PollInterval, s.XQueue.Queue, s.Log.Level)
	}

	t.Setenv("CERTD_WORKERS", "5")
	s = parsed(t, "--config", file)
	if got := s.Workers.Workers; got != 5 {
		t.Errorf("env over file: workers = %d, want 5", got)
	}
	if got := s.NATS.Region; got != "eu-west" {
		t.Errorf("env for another setting changed region to %q", got)
	}

	s = parsed(t, "--config", file, "--workers=7")
	if got := s.Workers.Workers; got != 7 {
		t.Errorf("flag over env: workers = %d, want 7", got)
	}

	// CERTD_CONFIG names the file when --config is not given.
	t.Setenv("CERTD_CONFIG", file)
	s = parsed(t)
	if got := s.NATS.Region; got != "eu-west" {
		t.Errorf("CERTD_CONFIG: region = %q, want eu-west", got)
	}
}

// A key written without a value (`region:`) is YAML null: it must mean
// "not set" (the default), not the string "<nil>".
func TestSettingsEmptyYAMLValueIsUnset(t *testing.T) {
	clearCertdEnv(t)
	file := writeFile(t, t.TempDir(), "certd.yaml", "region:\nxqueue-queue:\n")
	s := parsed(t, "--config", file)
	if got := s.NATS.Region; got != "" {
		t.Errorf("region: (no value) gives %q, want the default \"\"", got)
	}
	if got := s.XQueue.Queue; got != "certificates" {
		t.Errorf("xqueue-queue: (no value) gives %q, want the default certificates", got)
	}
}

func TestSettingsUnknownYAMLKeyRejected(t *testing.T) {
	clearCertdEnv(t)
	dir := t.TempDir()
	file := writeFile(t, dir, "certd.yaml", "nats-url: nats://127.0.0.1:4222\nwokers: 3\nsigning_kee: /x\n")
	r := runCmd(context.Background(), "bridge", "--config", file)
	if r.code == 0 {
		t.Fatalf("certd bridge accepted a config with unknown keys:\n%s", r.stderr)
	}
	for _, want := range []string{"unknown settings", "signing_kee", "wokers", file} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("message does not mention %q:\n%s", want, r.stderr)
		}
	}
	if r := runCmd(context.Background(), "bridge", "--config", filepath.Join(dir, "missing.yaml")); r.code == 0 || !strings.Contains(r.stderr, "missing.yaml") {
		t.Errorf("missing config file: exit %d, stderr:\n%s", r.code, r.stderr)
	}
}

// TestSettingsRemovedPullConcurrencyRefused: a config that still sets
// pull-concurrency is refused with the reason, not silently ignored.
func TestSettingsRemovedPullConcurrencyRefused(t *testing.T) {
	clearCertdEnv(t)
	file := writeFile(t, t.TempDir(), "certd.yaml", "nats-url: nats://127.0.0.1:4222\npull-concurrency: 4\n")
	r := runCmd(context.Background(), "bridge", "--config", file)
	if r.code == 0 {
		t.Fatalf("certd bridge accepted pull-concurrency:\n%s", r.stderr)
	}
	for _, want := range []string{"pull-concurrency", "removed", "duplicate LMS callbacks", "intake-lock-ttl"} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("message does not mention %q:\n%s", want, r.stderr)
		}
	}
}

// startNATS starts a NATS server for tests that need one to get past the
// connection step.
func startNATS(t *testing.T) string {
	t.Helper()
	s, err := natsserver.Start(natsserver.Config{Dir: t.TempDir(), Port: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Shutdown(); s.WaitForShutdown() })
	return s.ClientURL()
}

// A bad value stops the command at start with a message naming the setting,
// its flag and its environment variable; the environment is checked as
// well as flags.
func TestSettingsBadValueStopsStart(t *testing.T) {
	clearCertdEnv(t)
	url := startNATS(t)
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	keygen := runCmd(ctx, "keygen", "--name", "Test", "--email", "t@example.test", "--out", dir)
	if keygen.code != 0 {
		t.Fatalf("keygen: %s", keygen.stderr)
	}
	key := filepath.Join(dir, "signing-key.asc")
	if err := os.Mkdir(filepath.Join(dir, "www"), 0o755); err != nil {
		t.Fatal(err)
	}
	storage := "file://" + filepath.Join(dir, "www")

	cases := []struct {
		name    string
		env     map[string]string
		args    []string
		setting string
	}{
		{"bridge ack-wait flag", nil, []string{"bridge", "--nats-url", url, "--ack-wait=soon"}, "ack-wait"},
		{"bridge poll-interval env", map[string]string{"CERTD_POLL_INTERVAL": "often"}, []string{"bridge", "--nats-url", url}, "poll-interval"},
		{"bridge replicas", nil, []string{"bridge", "--nats-url", url, "--replicas=three"}, "replicas"},
		{"consumer workers", nil, []string{"consumer", "--nats-url", url, "--storage", storage, "--signing-key", key, "--download-url", "https://certs.example.test", "--workers=abc"}, "workers"},
		{"consumer retry-delay env", map[string]string{"CERTD_RETRY_DELAY": "-1s"}, []string{"consumer", "--nats-url", url, "--storage", storage, "--signing-key", key, "--download-url", "https://certs.example.test"}, "retry-delay"},
		{"consumer download-url", nil, []string{"consumer", "--nats-url", url, "--storage", storage, "--signing-key", key, "--download-url", "ftp://x"}, "download-url"},
		{"consumer s3-path-style", nil, []string{"consumer", "--nats-url", url, "--storage", storage, "--signing-key", key, "--download-url", "https://x", "--s3-path-style=maybe"}, "s3-path-style"},
		{"all log-level", nil, []string{"all", "--nats-url", url, "--data-dir", dir, "--log-level=loud"}, "log-level"},
		{"render workers", nil, []string{"render", "--out", filepath.Join(dir, "render"), "--name", "X", "--signing-key", key, "--workers=abc"}, "workers"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			r := runCmd(ctx, tc.args...)
			if r.code == 0 {
				t.Fatalf("certd %s started (exit 0) with a bad %s:\n%s%s", strings.Join(tc.args, " "), tc.setting, r.stdout, r.stderr)
			}
			for _, want := range []string{"--" + tc.setting, envName(tc.setting)} {
				if !strings.Contains(r.stderr, want) {
					t.Errorf("message does not name %s:\n%s", want, r.stderr)
				}
			}
		})
	}
}

func TestConsumerRefusesWithoutSigningKey(t *testing.T) {
	clearCertdEnv(t)
	dir := t.TempDir()
	// No NATS is needed: the check comes before connecting.
	r := runCmd(context.Background(), "consumer", "--nats-url", "nats://127.0.0.1:1", "--storage", "file://"+dir, "--download-url", "https://certs.example.test")
	if r.code == 0 {
		t.Fatal("certd consumer started without a signing key")
	}
	if !strings.Contains(r.stderr, "--signing-key") || !strings.Contains(r.stderr, "CERTD_SIGNING_KEY") {
		t.Errorf("message does not name the signing key setting:\n%s", r.stderr)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("the refused consumer wrote into storage: %v", entries)
	}
}

func TestBridgeRefusesWithoutNATSURL(t *testing.T) {
	clearCertdEnv(t)
	dataDir := t.TempDir()
	r := runCmd(context.Background(), "bridge", "--data-dir", dataDir)
	if r.code == 0 {
		t.Fatal("certd bridge started without --nats-url")
	}
	if !strings.Contains(r.stderr, "--nats-url") || !strings.Contains(r.stderr, "CERTD_NATS_URL") {
		t.Errorf("message does not name nats-url:\n%s", r.stderr)
	}
	if _, err := os.Stat(filepath.Join(dataDir, "nats")); err == nil {
		t.Error("certd bridge started an embedded NATS server")
	}
	for _, args := range [][]string{
		{"consumer", "--storage", "file://" + dataDir, "--signing-key", "/nonexistent"},
		{"control", "--grpc-addr", freeAddr(t)},
	} {
		r := runCmd(context.Background(), args...)
		if r.code == 0 || !strings.Contains(r.stderr, "--nats-url") {
			t.Errorf("certd %s without --nats-url: exit %d, stderr:\n%s", args[0], r.code, r.stderr)
		}
	}
}

// Secrets given in the environment, a flag or the file never appear in
// help, error messages or logs.
func TestSecretsNeverPrinted(t *testing.T) {
	clearCertdEnv(t)
	const (
		password = "xq-Pa55word-7781"
		basic    = "nginx:Basic-Secret-9917"
		token    = "Control-Token-4471"
		pass     = "Key-Passphrase-1234"
		natsPw   = "Nats-Password-8812"
	)
	dir := t.TempDir()
	file := writeFile(t, dir, "certd.yaml", "control-token: "+token+"\n")
	t.Setenv("CERTD_XQUEUE_PASSWORD", password)
	t.Setenv("CERTD_XQUEUE_BASIC_AUTH", basic)
	t.Setenv("CERTD_SIGNING_PASSPHRASE", pass)
	url := startNATS(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	var outputs []string
	add := func(r runResult) { outputs = append(outputs, r.stdout+r.stderr) }
	// A start that fails on a bad setting, with every secret set.
	add(runCmd(ctx, "all", "--config", file, "--nats-url", url, "--data-dir", dir, "--xqueue-url", "http://127.0.0.1:1", "--xqueue-user", "certd", "--workers=bad"))
	// A start that fails on a wrong passphrase (the key is not protected).
	add(runCmd(ctx, "keygen", "--name", "T", "--email", "t@example.test", "--out", dir))
	add(runCmd(ctx, "consumer", "--config", file, "--nats-url", url, "--storage", "file://"+dir, "--download-url", "https://x", "--signing-key", filepath.Join(dir, "missing.asc")))
	// A bad xqueue setting.
	add(runCmd(ctx, "bridge", "--config", file, "--nats-url", url, "--xqueue-url", "http://127.0.0.1:1", "--xqueue-basic-auth", "no-colon-"+basic))
	// A NATS URL with credentials that cannot be reached.
	add(runCmd(ctx, "bridge", "--nats-url", "nats://certd:"+natsPw+"@127.0.0.1:1"))
	// Help, with the secrets set.
	add(runCmd(ctx, "all", "--help"))
	for i, out := range outputs {
		for _, s := range []string{password, basic, token, pass, natsPw} {
			if strings.Contains(out, s) {
				t.Errorf("output %d prints the secret %q:\n%s", i, s, out)
			}
		}
	}
}

// `certd <command> --help` lists every setting of the command with its
// environment variable and exits 0; run writes it to the stderr it is given.
func TestHelpListsSettingsWithEnvNames(t *testing.T) {
	clearCertdEnv(t)
	for cmd, names := range map[string][]string{
		"bridge":   join(natsSettings, bridgeSettings, httpSettings),
		"consumer": join(natsSettings, handlerSettings, credentialSettings, consumerSettings, httpSettings),
		"control":  join(natsSettings, controlSettings, storageSettings, credentialSettings, httpSettings),
		"all":      join(natsSettings, bridgeSettings, handlerSettings, credentialSettings, consumerSettings, controlSettings, httpSettings),
	} {
		r := runCmd(context.Background(), cmd, "--help")
		if r.code != 0 {
			t.Errorf("certd %s --help: exit %d", cmd, r.code)
		}
		for _, n := range names {
			if !strings.Contains(r.stderr, "-"+n+" ") || !strings.Contains(r.stderr, "$"+envName(n)) {
				t.Errorf("certd %s --help does not list %s with $%s", cmd, n, envName(n))
				break
			}
		}
	}
	r := runCmd(context.Background())
	if r.code != 2 || !strings.Contains(r.stderr, "Commands:") {
		t.Errorf("certd without a command: exit %d, stderr:\n%s", r.code, r.stderr)
	}
	if r := runCmd(context.Background(), "frobnicate"); r.code != 2 || !strings.Contains(r.stderr, `unknown command "frobnicate"`) {
		t.Errorf("unknown command: exit %d, stderr:\n%s", r.code, r.stderr)
	}
}

// settings is every setting certd has, by name (for the tests that check
// the deploy files and the docs against it).
var settings = catalog()

// settingNames lists the settings the given parts declare.
func settingNames(parts ...part) []string {
	c := &config{}
	for _, p := range parts {
		p.declare(c)
	}
	var out []string
	for _, b := range c.list {
		out = append(out, b.name)
	}
	return out
}

// The settings of each part, as the commands combine them.
var (
	natsSettings    = settingNames(&NATSSettings{}, &DataSettings{}, &LogSettings{})
	xqueueSettings  = settingNames(&XQueueSettings{})
	bridgeSettings  = settingNames(&BridgeSettings{})
	handlerSettings = settingNames(&HandlerSettings{})
	// storageSettings: what control reads to revoke (with credentialSettings).
	storageSettings    = settingNames(&StorageSettings{}, &PublicURLSettings{}, &KeyFileSettings{})
	credentialSettings = settingNames(&CredentialSettings{})
	consumerSettings   = settingNames(&ConsumerSettings{})
	controlSettings    = settingNames(&ControlSettings{})
	httpSettings       = settingNames(&HTTPSettings{})
)

func join(lists ...[]string) []string {
	var out []string
	for _, l := range lists {
		out = append(out, l...)
	}
	return out
}

// Every bad value is reported at once, each naming its flag and its
// environment variable, and a typed field holds what was given.
func TestSettingsAllBadValuesAtOnce(t *testing.T) {
	clearCertdEnv(t)
	t.Setenv("CERTD_POLL_INTERVAL", "often")
	var s testParts
	c := newConfig("test", io.Discard, &s)
	if err := c.parse([]string{"--workers=many", "--replicas=3", "--callback-allow-private=maybe", "--ack-wait=-1s", "--max-pending=12"}); err != nil {
		t.Fatal(err)
	}
	err := c.err()
	if err == nil {
		t.Fatal("bad values accepted")
	}
	for _, n := range []string{"workers", "poll-interval", "callback-allow-private", "ack-wait"} {
		if !strings.Contains(err.Error(), "--"+n+" / "+envName(n)) {
			t.Errorf("the error does not name %s:\n%v", n, err)
		}
	}
	if strings.Contains(err.Error(), "replicas") || strings.Contains(err.Error(), "max-pending") {
		t.Errorf("good values reported as bad:\n%v", err)
	}
	if s.NATS.Replicas != 3 || s.Bridge.MaxPending != 12 {
		t.Errorf("replicas %d, max-pending %d; want 3 and 12", s.NATS.Replicas, s.Bridge.MaxPending)
	}
}

// A setting is declared once: two parts declaring one name, or a default
// of the wrong kind, stop the program on its first test.
func TestSettingsDeclaredOnce(t *testing.T) {
	for name, f := range map[string]func(c *config){
		"twice":       func(c *config) { (&WorkerSettings{}).declare(c); (&WorkerSettings{}).declare(c) },
		"bad default": func(c *config) { var d time.Duration; c.Duration(&d, "x", "soon", "") },
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s: no panic", name)
				}
			}()
			f(newConfig("test", io.Discard))
		}()
	}
	// Every command's settings are in the catalog, which is what --config
	// files are checked against.
	for _, parts := range []any{&bridgeParts{}, &consumerParts{}, &controlParts{}, &renderParts{}} {
		c := newConfig("test", io.Discard, parts)
		for _, b := range c.list {
			if settings[b.name] != b.setting {
				t.Errorf("%T: %s is not in the catalog as declared", parts, b.name)
			}
		}
	}
}

// README's Settings table names every setting, and nothing else, with
// the defaults certd has.
func TestReadmeSettingsTable(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, table, ok := strings.Cut(string(b), "\n## Settings\n")
	if !ok {
		t.Fatal("README has no Settings section")
	}
	table, _, _ = strings.Cut(table, "\n#")
	documented := map[string]bool{}
	for _, line := range strings.Split(table, "\n") {
		if !strings.HasPrefix(line, "| `") {
			continue
		}
		cells := strings.Split(line, "|")
		defaults := strings.Split(cells[2], ",")
		for i, n := range strings.Split(cells[1], ",") {
			n = strings.Trim(strings.TrimSpace(n), "`")
			documented[n] = true
			// A default written as `code` is the built-in one.
			if i >= len(defaults) || settings[n].def == "" {
				continue
			}
			if d, ok := strings.CutPrefix(strings.TrimSpace(defaults[i]), "`"); ok {
				if d, _, _ = strings.Cut(d, "`"); d != settings[n].def {
					t.Errorf("README's Settings table gives %s the default %q; it is %q", n, d, settings[n].def)
				}
			}
		}
	}
	for n := range settings {
		if !documented[n] {
			t.Errorf("README's Settings table does not list %s", n)
		}
	}
	for n := range documented {
		if _, ok := settings[n]; !ok {
			t.Errorf("README's Settings table lists %s, which certd does not have", n)
		}
	}
}
