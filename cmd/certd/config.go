package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// setting is one configuration value. Every setting is a flag
// (--xqueue-url), an environment variable (CERTD_XQUEUE_URL) and a key in
// the optional YAML file (xqueue-url or xqueue_url); a flag beats the
// environment, which beats the file, which beats the default.
type setting struct {
	name, def, help string
	secret          bool
}

// settings is the table of every setting certd knows, by name.
var settings = map[string]setting{}

func def(name, value, help string) { settings[name] = setting{name: name, def: value, help: help} }
func secret(name, help string)     { settings[name] = setting{name: name, help: help, secret: true} }

func init() {
	def("xqueue-url", "", "base URL of xqueue, e.g. https://xqueue.example.org (empty: no xqueue intake)")
	def("xqueue-queue", "certificates", "xqueue queue name")
	def("xqueue-user", "", "xqueue user name")
	secret("xqueue-password", "xqueue password")
	secret("xqueue-basic-auth", "user:pass for HTTP basic auth in front of xqueue (optional)")
	def("xqueue-lease", "1m", "xqueue's SUBMISSION_PROCESSING_DELAY; sizes backpressure")
	def("poll-interval", "1s", "wait between polls of an empty queue")
	def("intake-lock-ttl", "15s", "how long the xqueue intake lock outlives a crashed holder; one bridge pulls per queue")
	def("max-pending", "0", "cap on accepted, unfinished jobs (0: what consumers finish within a lease, at least 64)")
	def("nats-url", "", "NATS server URL(s), comma separated (empty: an embedded server under the data dir; all and demo only)")
	def("nats-creds", "", "NATS credentials file (optional)")
	def("data-dir", "certd-data", "directory for the embedded NATS server, the development key and local storage")
	def("storage", "", "file:///abs/dir or s3://bucket[/prefix] (all/demo default: file://<data-dir>/www)")
	def("s3-endpoint", "", "S3 endpoint URL for S3-compatible servers (empty: AWS)")
	def("s3-region", "us-east-1", "S3 region")
	def("s3-path-style", "false", "use path-style S3 addressing")
	def("s3-cache-control", "", "Cache-Control header for stored objects, e.g. public, max-age=86400 (optional)")
	def("s3-acl", "", "canned ACL for stored objects, e.g. public-read (default none: use a bucket policy)")
	def("download-url", "", "public base URL of stored PDFs (all/demo default: http://<http-addr>)")
	def("verify-url", "", "public base URL of verification pages (default: download-url)")
	def("signing-key", "", "path to the ASCII-armored OpenPGP private key that signs certificates")
	secret("signing-passphrase", "passphrase of the signing key")
	def("signing-key-readable", "false", "accept a signing key file that group or others can read (default: refused)")
	def("signing-passphrase-file", "", "file holding the passphrase of the signing key")
	def("cert-data", "", "the old agent's cert-data.yml: per-course settings (optional)")
	def("site-config", "", "YAML with site defaults and CERT_ORGS_LONG (optional)")
	def("designs", "", "directory of YAML designs and template PDFs (optional)")
	def("strict-designs", "false", "fail a job whose course TEMPLATEFILE or LMS template_pdf names no configured design, instead of falling back")
	def("fonts-dir", "", "font directories searched by file name, ':'-separated (default: /usr/share/fonts and /usr/local/share/fonts; \"none\": embedded fonts only)")
	def("han-style", "zh-Hans", "regional style of Han characters in names with neither kana nor Hangul: ja, zh-Hans, zh-Hant or ko")
	def("grpc-addr", "127.0.0.1:9090", "control service listen address")
	secret("control-token", "bearer token the control service requires (empty: loopback only)")
	def("grpc-tls-cert", "", "TLS certificate file for the control service (optional)")
	def("grpc-tls-key", "", "TLS key file for the control service (optional)")
	def("http-addr", "127.0.0.1:8080", "HTTP listen address for health and, with file storage, the certificates")
	def("region", "", "region this process runs in (recorded on jobs and heartbeats)")
	def("workers", "0", "jobs run at once by this consumer (0: one per CPU)")
	def("drain-timeout", "60s", "on stop, how long jobs under way may finish before they are cut off and redelivered")
	def("max-attempts", "5", "tries before a job is held dead")
	def("retry-delay", "2s", "first retry delay after a transient failure (doubles each try)")
	def("max-ack-pending", "256", "jobs handed out and not yet acked per action, over all consumers (at least the sum of their workers)")
	def("ack-wait", "30s", "how long a job may go without progress before JetStream redelivers it")
	def("callback-allow-private", "false", "let Submit callbacks go to loopback and private addresses (default: public addresses only)")
	def("hold-grace", "24h", "how long a dead job is held before it is answered with an error")
	def("retention", "720h", "how long job records are kept after their last change")
	def("replicas", "1", "JetStream replicas for streams and buckets")
	def("cluster", "", "pin streams and buckets to this NATS cluster (supercluster placement)")
	def("overflow-threshold", "0", "regional preference: with N > 0, consumers outside home-region pull an action's jobs only while N or more wait (0: off; every process must agree)")
	def("home-region", "", "region whose consumers always pull when overflow-threshold is on (default: the cluster setting)")
	def("log-level", "info", "debug, info, warn or error")
	def("log-format", "text", "text or json")
}

// removedSettings are settings certd no longer has, with why; setting one
// is refused so that an operator notices.
var removedSettings = map[string]string{
	"pull-concurrency": "removed: parallel get_submission calls make xqueue hand one submission out twice (duplicate LMS callbacks); " +
		"certd now pulls one submission at a time per queue across all bridges (see intake-lock-ttl). Delete this setting",
}

// config is the resolved configuration of one command.
type config struct {
	fs     *flag.FlagSet
	names  []string
	flags  map[string]*string
	file   map[string]string
	values map[string]string
	errs   []string
}

// newConfig declares the named settings as flags of a command; help and
// flag errors go to out.
func newConfig(cmd string, out io.Writer, names ...string) *config {
	c := &config{fs: flag.NewFlagSet("certd "+cmd, flag.ContinueOnError), names: names, flags: map[string]*string{}}
	c.fs.SetOutput(out)
	c.fs.String("config", "", "YAML file with settings (keys as the flag names)")
	for _, n := range names {
		s, ok := settings[n]
		if !ok {
			panic("unknown setting " + n)
		}
		help := s.help + " [$" + envName(n) + "]"
		c.flags[n] = c.fs.String(n, "", help)
		if s.def != "" {
			c.fs.Lookup(n).DefValue = s.def
		}
	}
	c.fs.Usage = func() {
		fmt.Fprintf(c.fs.Output(), "Usage of certd %s:\n", cmd)
		c.fs.PrintDefaults()
	}
	return c
}

func envName(n string) string { return "CERTD_" + strings.ToUpper(strings.ReplaceAll(n, "-", "_")) }

// parse reads flags, the environment and the YAML file.
func (c *config) parse(args []string) error {
	if err := c.fs.Parse(args); err != nil {
		return err
	}
	for n, why := range removedSettings {
		if _, ok := os.LookupEnv(envName(n)); ok {
			return fmt.Errorf("%s: %s", envName(n), why)
		}
	}
	set := map[string]bool{}
	c.fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	path := c.fs.Lookup("config").Value.String()
	if path == "" {
		path = os.Getenv("CERTD_CONFIG")
	}
	if path != "" {
		m, err := readYAML(path)
		if err != nil {
			return err
		}
		c.file = m
	}
	c.values = map[string]string{}
	for _, n := range c.names {
		switch v, inEnv := os.LookupEnv(envName(n)); {
		case set[n]:
			c.values[n] = *c.flags[n]
		case inEnv:
			c.values[n] = v
		case c.file[n] != "":
			c.values[n] = c.file[n]
		default:
			c.values[n] = settings[n].def
		}
	}
	c.checkKinds()
	return nil
}

// checkKinds reports, up front and all at once, every value that does not
// have the kind of its default (a number, a duration, true or false).
func (c *config) checkKinds() {
	for _, n := range c.names {
		switch def := settings[n].def; {
		case def == "true" || def == "false":
			c.bool(n)
		case isInt(def):
			c.int(n)
		case isDuration(def):
			c.duration(n)
		}
	}
}

func isInt(s string) bool {
	_, err := strconv.Atoi(s)
	return err == nil
}

func isDuration(s string) bool {
	_, err := time.ParseDuration(s)
	return err == nil
}

func readYAML(path string) (map[string]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config file: %w", err)
	}
	var raw map[string]any
	if err := yaml.Unmarshal(b, &raw); err != nil {
		return nil, fmt.Errorf("config file %s: %w", path, err)
	}
	out := map[string]string{}
	var unknown []string
	for k, v := range raw {
		name := strings.ReplaceAll(strings.ToLower(k), "_", "-")
		name = strings.TrimPrefix(name, "certd-")
		if why, ok := removedSettings[name]; ok {
			return nil, fmt.Errorf("config file %s: %s: %s", path, k, why)
		}
		if _, ok := settings[name]; !ok {
			unknown = append(unknown, k)
			continue
		}
		switch v.(type) {
		case nil:
			continue // `key:` without a value: not set
		case map[string]any, []any:
			return nil, fmt.Errorf("config file %s: %s: want a single value, not a list or map", path, k)
		}
		out[name] = fmt.Sprint(v)
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		return nil, fmt.Errorf("config file %s: unknown settings: %s", path, strings.Join(unknown, ", "))
	}
	return out, nil
}

func (c *config) str(n string) string {
	if _, ok := c.values[n]; !ok {
		panic("setting not declared for this command: " + n)
	}
	return c.values[n]
}

func (c *config) bad(n, format string, args ...any) {
	msg := fmt.Sprintf("%s (--%s / %s): %s", n, n, envName(n), fmt.Sprintf(format, args...))
	if !slices.Contains(c.errs, msg) {
		c.errs = append(c.errs, msg)
	}
}

func (c *config) require(n string) string {
	v := c.str(n)
	if v == "" {
		c.bad(n, "required")
	}
	return v
}

func (c *config) int(n string) int {
	v, err := strconv.Atoi(strings.TrimSpace(c.str(n)))
	if err != nil {
		c.bad(n, "%q is not a whole number", c.str(n))
	}
	return v
}

func (c *config) duration(n string) time.Duration {
	v, err := time.ParseDuration(strings.TrimSpace(c.str(n)))
	if err != nil || v < 0 {
		c.bad(n, "%q is not a duration like 30s or 5m", c.str(n))
	}
	return v
}

func (c *config) bool(n string) bool {
	v, err := strconv.ParseBool(strings.TrimSpace(c.str(n)))
	if err != nil {
		c.bad(n, "%q is not true or false", c.str(n))
	}
	return v
}

// err reports every bad setting at once.
func (c *config) err() error {
	if len(c.errs) == 0 {
		return nil
	}
	return errors.New("bad settings:\n  " + strings.Join(c.errs, "\n  "))
}

// loadConfig declares and parses a command's settings and builds its
// logger (on stderr).
func loadConfig(cmd string, args []string, stderr io.Writer, names ...string) (*config, *slog.Logger, error) {
	c := newConfig(cmd, stderr, names...)
	if err := c.parse(args); err != nil {
		return nil, nil, err
	}
	return c, newLogger(c, stderr), nil
}

// useLocalStorage sets the storage setting to the directory dir (made if
// missing), as an absolute file:// URL.
func (c *config) useLocalStorage(dir string) error {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(abs, 0o755); err != nil {
		return err
	}
	c.values["storage"] = fileURL(abs)
	return nil
}
