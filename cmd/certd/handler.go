package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/certd-dev/certd/consumer"
	"github.com/certd-dev/certd/consumer/courses"
	"github.com/certd-dev/certd/consumer/document"
	"github.com/certd-dev/certd/consumer/fonts"
	"github.com/certd-dev/certd/consumer/signing"
	"github.com/certd-dev/certd/consumer/storage"
	"github.com/certd-dev/certd/internal/pipeline"
)

// parts of a handler, kept for the commands that need more than the handler.
type handlerParts struct {
	handler *consumer.Handler
	store   storage.Store
	signer  *signing.Signer
	fileDir string     // file storage: its directory ("" for S3)
	creds   *credParts // nil: no credentials
}

// signMode says what to do about the signing key.
type signMode int

const (
	signRequired signMode = iota // a missing key is a configuration error
	signDevKey                   // a missing key is replaced by a development key in the data dir
	signNone                     // do not sign at all
)

// newRenderer makes the certificate renderer from the designs, fonts-dir
// and han-style settings.
func newRenderer(c *config, s *RendererSettings, log *slog.Logger) (*document.Renderer, error) {
	ropts := []document.Option{document.WithLogger(log), document.WithFontsDir(fonts.ParseDirs(s.FontsDir))}
	if dir := s.Designs; dir != "" {
		ropts = append(ropts, document.WithDesignDir(dir))
	}
	han, err := fonts.ParseHanStyle(s.HanStyle)
	if err != nil {
		c.bad(&s.HanStyle, "%v", err)
	}
	return document.NewRenderer(append(ropts, document.WithHanStyle(han))...)
}

// openStore opens the storage and returns it with its location and the
// public download and verify base URLs (problems go to c).
func openStore(ctx context.Context, c *config, st *StorageSettings, u *PublicURLSettings, log *slog.Logger) (store storage.Store, loc storageLoc, download, verify string) {
	var sopts []storage.Option
	if v := st.S3Endpoint; v != "" {
		sopts = append(sopts, storage.WithEndpoint(v))
	}
	sopts = append(sopts, storage.WithRegion(st.S3Region), storage.WithPathStyle(st.S3PathStyle), storage.WithLogger(log))
	if v := st.CacheControl; v != "" {
		sopts = append(sopts, storage.WithCacheControl(v))
	}
	if v := st.ACL; v != "" {
		sopts = append(sopts, storage.WithObjectACL(v))
	}
	loc, err := parseStorage(c.require(&st.URL))
	if err != nil {
		c.bad(&st.URL, "%v", err)
	}
	if err == nil {
		if store, err = storage.Open(ctx, loc.url, sopts...); err != nil {
			c.bad(&st.URL, "%v", err)
		}
	}
	for _, p := range []*string{&u.DownloadURL, &u.VerifyURL} {
		if v := *p; v != "" || p == &u.DownloadURL {
			if err := checkPublicURL(v); err != nil {
				c.bad(p, "%v", err)
			}
		}
	}
	download = strings.TrimRight(u.DownloadURL, "/")
	verify = strings.TrimRight(u.VerifyURL, "/")
	if verify == "" {
		verify = download
	}
	return store, loc, download, verify
}

// credIn is what a handler that issues credentials is built from: the
// credential settings and the pipeline holding the status lists.
type credIn struct {
	s *CredentialSettings
	p *pipeline.Pipeline
}

// newHandler wires storage, renderer, signer, course settings and, with
// cred (not nil) and a signer, credentials; a development key is kept
// under dataDir. Each of obs is told how long the render, sign and store
// stages of every job take.
func newHandler(ctx context.Context, c *config, s *HandlerSettings, dataDir string, log *slog.Logger, mode signMode, cred *credIn, obs ...consumer.StageObserver) (*handlerParts, error) {
	store, loc, download, verify := openStore(ctx, c, &s.Storage, &s.PublicURLSettings, log)
	var err error
	var signer *signing.Signer
	if mode != signNone {
		var err error
		if signer, err = loadSigner(&s.Signing, dataDir, log, mode == signDevKey); err != nil {
			c.bad(&s.Signing.Key, "%v", err)
		}
	}
	site := courses.Site{}
	if path := s.SiteConfig; path != "" {
		if site, err = courses.LoadSite(path); err != nil {
			c.bad(&s.SiteConfig, "%v", err)
		}
	}
	catalog, err := courses.Load(s.CertData, site, courses.WithLogger(log))
	if err != nil {
		c.bad(&s.CertData, "%v", err)
	}
	renderer, err := newRenderer(c, &s.Renderer, log)
	if err != nil {
		c.bad(&s.Renderer.Designs, "%v", err)
	}
	if err := c.err(); err != nil {
		return nil, err
	}
	cfg := consumer.HandlerConfig{
		Store: store, Renderer: renderer, Catalog: catalog,
		DownloadURL: download, VerifyURL: verify, Logger: log,
		StrictDesigns: s.StrictDesigns,
	}
	var creds *credParts
	if cred != nil && signer != nil {
		if creds, err = newCredentials(ctx, c, cred.s, dataDir, s.Signing.KeyReadable, log, cred.p, store, verify, mode == signDevKey); err != nil {
			return nil, err
		}
		cfg.Credentials = creds.cr
	}
	if signer != nil {
		cfg.Signer = signer
		// The public key lives next to the certificates for verify.html.
		if err := store.Put(ctx, consumer.PublicKeyKey(signer.Fingerprint()), signer.PublicKey(), "application/pgp-keys"); err != nil {
			return nil, fmt.Errorf("store public key: %w", err)
		}
	}
	for _, o := range obs {
		cfg = consumer.ObserveStages(cfg, o)
	}
	return &handlerParts{handler: consumer.NewHandler(cfg), store: store, signer: signer, fileDir: loc.dir, creds: creds}, nil
}

// loadSigner loads the configured key, or generates a development key
// under dataDir.
func loadSigner(s *SigningSettings, dataDir string, log *slog.Logger, devKey bool) (*signing.Signer, error) {
	path := s.Key
	pass := []byte(s.Passphrase)
	if f := s.PassphraseFile; f != "" {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("passphrase file: %w", err)
		}
		pass = []byte(strings.TrimRight(string(b), "\r\n"))
	}
	if path == "" {
		if !devKey {
			return nil, errors.New("required: certificates must be signed (make a key with 'certd keygen')")
		}
		path = filepath.Join(dataDir, "dev-signing-key.asc")
		if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
			priv, pub, err := signing.GenerateKey("certd development key", "certd-dev@localhost")
			if err != nil {
				return nil, fmt.Errorf("generate development key: %w", err)
			}
			if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
				return nil, err
			}
			if err := os.WriteFile(path, priv, 0o600); err != nil {
				return nil, err
			}
			_ = os.WriteFile(strings.TrimSuffix(path, ".asc")+".pub.asc", pub, 0o644)
		}
		log.Warn("!!! NO SIGNING KEY CONFIGURED: signing with a DEVELOPMENT key. Certificates signed with it prove nothing. Make a real key with 'certd keygen' and set CERTD_SIGNING_KEY.", "dev_key", path)
		pass = nil
	}
	if err := checkKeyFile(path, s.KeyReadable); err != nil {
		return nil, err
	}
	sg, err := signing.LoadSigner(path, pass)
	if err != nil {
		return nil, err
	}
	log.Info("signing key loaded", "fingerprint", sg.Fingerprint())
	return sg, nil
}

// checkKeyFile refuses a private key file that group or others can read,
// unless allowed.
func checkKeyFile(path string, allowReadable bool) error {
	fi, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("signing key: %w", err)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 && !allowReadable {
		return fmt.Errorf("signing key %s can be read by group or others (mode %04o): chmod 600 it, or set signing-key-readable=true to accept that", path, perm)
	}
	return nil
}
