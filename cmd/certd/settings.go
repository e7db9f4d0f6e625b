package main

import "time"

// The settings of certd, one struct per part. Each field is declared once,
// in its part's declare method, with its name, default and help (see
// config.go). A command's settings are a struct of the parts it runs.

// LogSettings is the process logger (every command that logs).
type LogSettings struct {
	Level  string // debug, info, warn or error (checked by newLogger)
	Format string // text or json (checked by newLogger)
}

func (s *LogSettings) declare(c *config) {
	c.String(&s.Level, "log-level", "info", "debug, info, warn or error")
	c.String(&s.Format, "log-format", "text", "text or json")
}

// DataSettings is the local data directory.
type DataSettings struct {
	Dir string
}

func (s *DataSettings) declare(c *config) {
	c.String(&s.Dir, "data-dir", "certd-data", "directory for the embedded NATS server, the development key and local storage")
}

// NATSSettings is how a process joins the pipeline: the NATS connection,
// the JetStream topology and the region it records.
type NATSSettings struct {
	URL           string // comma-separated server URLs (checked by connect)
	Creds         string
	Replicas      int
	Cluster       string
	Retention     time.Duration
	AckWait       time.Duration
	MaxAckPending int
	Region        string
	// OverflowThreshold > 0 turns on the regional preference: consumers
	// outside HomeRegion pull only while that many jobs of an action wait.
	OverflowThreshold int
	HomeRegion        string
}

func (s *NATSSettings) declare(c *config) {
	c.String(&s.URL, "nats-url", "", "NATS server URL(s), comma separated (empty: an embedded server under the data dir; all and demo only)")
	c.String(&s.Creds, "nats-creds", "", "NATS credentials file (optional)")
	c.Int(&s.Replicas, "replicas", "1", "JetStream replicas for streams and buckets")
	c.String(&s.Cluster, "cluster", "", "pin streams and buckets to this NATS cluster (supercluster placement)")
	c.Duration(&s.Retention, "retention", "720h", "how long job records are kept after their last change")
	c.Duration(&s.AckWait, "ack-wait", "30s", "how long a job may go without progress before JetStream redelivers it")
	c.Int(&s.MaxAckPending, "max-ack-pending", "256", "jobs handed out and not yet acked per action, over all consumers (at least the sum of their workers)")
	c.String(&s.Region, "region", "", "region this process runs in (recorded on jobs and heartbeats)")
	c.Int(&s.OverflowThreshold, "overflow-threshold", "0", "regional preference: with N > 0, consumers outside home-region pull an action's jobs only while N or more wait (0: off; every process must agree)")
	c.String(&s.HomeRegion, "home-region", "", "region whose consumers always pull when overflow-threshold is on (default: the cluster setting)")
}

// XQueueSettings is the xqueue account (bridge, control, all).
type XQueueSettings struct {
	URL       string // empty: no xqueue (checked by newXQueue)
	Queue     string
	User      string
	Password  string
	BasicAuth string
}

func (s *XQueueSettings) declare(c *config) {
	c.String(&s.URL, "xqueue-url", "", "base URL of xqueue, e.g. https://xqueue.example.org (empty: no xqueue intake)")
	c.String(&s.Queue, "xqueue-queue", "certificates", "xqueue queue name")
	c.String(&s.User, "xqueue-user", "", "xqueue user name")
	c.Secret(&s.Password, "xqueue-password", "xqueue password")
	c.Secret(&s.BasicAuth, "xqueue-basic-auth", "user:pass for HTTP basic auth in front of xqueue (optional)")
}

// BridgeSettings is the intake and the relay.
type BridgeSettings struct {
	Lease            time.Duration
	PollInterval     time.Duration
	IntakeLockTTL    time.Duration
	MaxPending       int
	HoldGrace        time.Duration
	PrivateCallbacks bool
}

func (s *BridgeSettings) declare(c *config) {
	c.Duration(&s.Lease, "xqueue-lease", "1m", "xqueue's SUBMISSION_PROCESSING_DELAY; sizes backpressure")
	c.Duration(&s.PollInterval, "poll-interval", "1s", "wait between polls of an empty queue")
	c.Duration(&s.IntakeLockTTL, "intake-lock-ttl", "15s", "how long the xqueue intake lock outlives a crashed holder; one bridge pulls per queue")
	c.Int(&s.MaxPending, "max-pending", "0", "cap on accepted, unfinished jobs (0: what consumers finish within a lease, at least 64)")
	c.Duration(&s.HoldGrace, "hold-grace", "24h", "how long a dead job is held before it is answered with an error")
	c.Bool(&s.PrivateCallbacks, "callback-allow-private", "false", "let Submit callbacks go to loopback and private addresses (default: public addresses only)")
}

// StorageSettings is where certificates are stored.
type StorageSettings struct {
	URL          string // file:///dir or s3://bucket[/prefix] (checked by newHandler)
	S3Endpoint   string
	S3Region     string
	S3PathStyle  bool
	CacheControl string
	ACL          string
}

func (s *StorageSettings) declare(c *config) {
	c.String(&s.URL, "storage", "", "file:///abs/dir or s3://bucket[/prefix] (all/demo default: file://<data-dir>/www)")
	c.String(&s.S3Endpoint, "s3-endpoint", "", "S3 endpoint URL for S3-compatible servers (empty: AWS)")
	c.String(&s.S3Region, "s3-region", "us-east-1", "S3 region")
	c.Bool(&s.S3PathStyle, "s3-path-style", "false", "use path-style S3 addressing")
	c.String(&s.CacheControl, "s3-cache-control", "", "Cache-Control header for stored objects, e.g. public, max-age=86400 (optional)")
	c.String(&s.ACL, "s3-acl", "", "canned ACL for stored objects, e.g. public-read (default none: use a bucket policy)")
}

// KeyFileSettings is how private key files are checked (the signing key
// and the credential key).
type KeyFileSettings struct {
	KeyReadable bool
}

func (s *KeyFileSettings) declare(c *config) {
	c.Bool(&s.KeyReadable, "signing-key-readable", "false", "accept a signing or credential key file that group or others can read (default: refused)")
}

// SigningSettings is the key that signs certificates.
type SigningSettings struct {
	Key        string
	Passphrase string
	KeyFileSettings
	PassphraseFile string
}

func (s *SigningSettings) declare(c *config) {
	c.String(&s.Key, "signing-key", "", "path to the ASCII-armored OpenPGP private key that signs certificates")
	c.Secret(&s.Passphrase, "signing-passphrase", "passphrase of the signing key")
	s.KeyFileSettings.declare(c)
	c.String(&s.PassphraseFile, "signing-passphrase-file", "", "file holding the passphrase of the signing key")
}

// RendererSettings is how certificates are drawn.
type RendererSettings struct {
	Designs  string
	FontsDir string
	HanStyle string // checked by newRenderer
}

func (s *RendererSettings) declare(c *config) {
	c.String(&s.Designs, "designs", "", "directory of YAML designs and template PDFs (optional)")
	c.String(&s.FontsDir, "fonts-dir", "", "font directories searched by file name, ':'-separated (default: /usr/share/fonts and /usr/local/share/fonts; \"none\": embedded fonts only)")
	c.String(&s.HanStyle, "han-style", "zh-Hans", "regional style of Han characters in names with neither kana nor Hangul: ja, zh-Hans, zh-Hant or ko")
}

// PublicURLSettings is where the public finds certificates and their
// verification pages.
type PublicURLSettings struct {
	DownloadURL string // checked by openStore (checkPublicURL)
	VerifyURL   string // checked by openStore (checkPublicURL)
}

func (s *PublicURLSettings) declare(c *config) {
	c.String(&s.DownloadURL, "download-url", "", "public base URL of stored PDFs (all/demo default: http://<http-addr>)")
	c.String(&s.VerifyURL, "verify-url", "", "public base URL of verification pages (default: download-url)")
}

// HandlerSettings is everything the job handler is built from (consumer,
// render, all).
type HandlerSettings struct {
	Storage  StorageSettings
	Signing  SigningSettings
	Renderer RendererSettings
	PublicURLSettings
	CertData      string
	SiteConfig    string
	StrictDesigns bool
}

func (s *HandlerSettings) declare(c *config) {
	s.Storage.declare(c)
	s.PublicURLSettings.declare(c)
	s.Signing.declare(c)
	c.String(&s.CertData, "cert-data", "", "the old agent's cert-data.yml: per-course settings (optional)")
	c.String(&s.SiteConfig, "site-config", "", "YAML with site defaults and CERT_ORGS_LONG (optional)")
	s.Renderer.declare(c)
	c.Bool(&s.StrictDesigns, "strict-designs", "false", "fail a job whose course TEMPLATEFILE or LMS template_pdf names no configured design, instead of falling back")
}

// WorkerSettings is how many jobs run at once (consumer, render).
type WorkerSettings struct {
	Workers int // 0: one per CPU
}

func (s *WorkerSettings) declare(c *config) {
	c.Int(&s.Workers, "workers", "0", "jobs run at once by this consumer (0: one per CPU)")
}

// ConsumerSettings is the job consumer.
type ConsumerSettings struct {
	WorkerSettings
	MaxAttempts  int
	RetryDelay   time.Duration
	DrainTimeout time.Duration
}

func (s *ConsumerSettings) declare(c *config) {
	s.WorkerSettings.declare(c)
	c.Duration(&s.DrainTimeout, "drain-timeout", "60s", "on stop, how long jobs under way may finish before they are cut off and redelivered")
	c.Int(&s.MaxAttempts, "max-attempts", "5", "tries before a job is held dead")
	c.Duration(&s.RetryDelay, "retry-delay", "2s", "first retry delay after a transient failure (doubles each try)")
}

// CredentialSettings is how Open Badges credentials are issued, revoked
// and their revocation lists published (consumer, control, all).
type CredentialSettings struct {
	On            bool
	Key           string // required by consumer while On (checked by newCredentials)
	KeyID         string
	KeysRetired   string // ID=PEM-FILE@YYYY-MM-DD,... (checked by newCredentials)
	DIDMethod     string // "", web or key (checked by newCredentials)
	StatusListTTL time.Duration
}

func (s *CredentialSettings) declare(c *config) {
	c.Bool(&s.On, "credentials", "true", "issue an Open Badges 3.0 credential (credential.json) beside each signed certificate; false: none (removals still revoke earlier ones)")
	c.String(&s.Key, "credential-key", "", "PEM Ed25519 private key that signs credentials (certd keygen --credential; all/demo: a development key in data-dir)")
	c.String(&s.KeyID, "credential-key-id", "key-1", "fragment of the credential key in the DID document (the next one, key-2, after a rotation)")
	c.String(&s.KeysRetired, "credential-keys-retired", "", "retired credential keys still listed in the DID document until a date: comma-separated ID=PEM-FILE@YYYY-MM-DD")
	c.String(&s.DIDMethod, "did-method", "", "issuer DID: web (did:web from verify-url, did.json published in storage) or key (did:key); default web when verify-url is https or loopback, else key")
	c.Duration(&s.StatusListTTL, "status-list-ttl", "5m", "how long verifiers may cache the revocation list (its ttl; file storage serves it with that max-age)")
}

// ControlSettings is the gRPC control service.
type ControlSettings struct {
	Addr    string
	Token   string // checked by checkControlToken
	TLSCert string
	TLSKey  string
}

func (s *ControlSettings) declare(c *config) {
	c.String(&s.Addr, "grpc-addr", "127.0.0.1:9090", "control service listen address")
	c.Secret(&s.Token, "control-token", "bearer token the control service requires (empty: loopback only)")
	c.String(&s.TLSCert, "grpc-tls-cert", "", "TLS certificate file for the control service (optional)")
	c.String(&s.TLSKey, "grpc-tls-key", "", "TLS key file for the control service (optional)")
}

// HTTPSettings is the HTTP side of every role (all, demo, bridge,
// consumer, control): /healthz, /readyz, /metrics and, in all and demo
// with file storage, the certificates; and Go's pprof on an address of its
// own.
type HTTPSettings struct {
	Addr      string
	PprofAddr string // empty: off
}

// defaultHTTPAddr is the default http-addr.
const defaultHTTPAddr = "127.0.0.1:8080"

func (s *HTTPSettings) declare(c *config) {
	c.String(&s.Addr, "http-addr", defaultHTTPAddr, "HTTP listen address for /healthz, /readyz, /metrics and (all, file storage) the certificates; give each role on a host its own")
	c.String(&s.PprofAddr, "pprof-addr", "", "listen address of Go's pprof profiling endpoints (empty: off; keep it on loopback)")
}

// The settings of each command: a struct of the parts it runs (every field
// a part; newConfig declares them all).
type (
	allParts struct {
		Log         LogSettings
		Data        DataSettings
		NATS        NATSSettings
		XQueue      XQueueSettings
		Bridge      BridgeSettings
		Handler     HandlerSettings
		Credentials CredentialSettings
		Consumer    ConsumerSettings
		Control     ControlSettings
		HTTP        HTTPSettings
	}
	bridgeParts struct {
		Log    LogSettings
		Data   DataSettings
		NATS   NATSSettings
		XQueue XQueueSettings
		Bridge BridgeSettings
		HTTP   HTTPSettings
	}
	consumerParts struct {
		Log         LogSettings
		Data        DataSettings
		NATS        NATSSettings
		Handler     HandlerSettings
		Credentials CredentialSettings
		Consumer    ConsumerSettings
		HTTP        HTTPSettings
	}
	// controlParts: with storage, control also revokes (Revoke) and
	// republishes the revocation lists, which takes the credential key.
	controlParts struct {
		Log         LogSettings
		Data        DataSettings
		NATS        NATSSettings
		XQueue      XQueueSettings
		Control     ControlSettings
		Storage     StorageSettings
		URLs        PublicURLSettings
		KeyFile     KeyFileSettings
		Credentials CredentialSettings
		HTTP        HTTPSettings
	}
	renderParts struct {
		Log     LogSettings
		Data    DataSettings
		Handler HandlerSettings
		Workers WorkerSettings
	}
)
