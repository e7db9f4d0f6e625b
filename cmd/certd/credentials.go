package main

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	neturl "net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/certd-dev/certd/consumer"
	"github.com/certd-dev/certd/consumer/storage"
	"github.com/certd-dev/certd/internal/credential"
	"github.com/certd-dev/certd/internal/pipeline"
	"github.com/certd-dev/certd/internal/statuslist"
)

// credParts are the credential pieces of a process.
type credParts struct {
	cr  *consumer.Credentials
	rev *consumer.Revoker
	pub *statuslist.Publishers
}

// loopbackHTTP reports whether u is http:// on a loopback host (tests, demo).
func loopbackHTTP(u *neturl.URL) bool {
	if u.Scheme != "http" {
		return false
	}
	h := u.Hostname()
	ip := net.ParseIP(h)
	return h == "localhost" || (ip != nil && ip.IsLoopback())
}

// issuerDID picks the issuer DID for verify (the verify base URL).
func issuerDID(method, verify string, pub ed25519.PublicKey) (did, vmFragment string, err error) {
	u, err := neturl.Parse(verify)
	if err != nil {
		return "", "", err
	}
	if method == "" {
		method = "key"
		if u.Scheme == "https" || loopbackHTTP(u) {
			method = "web"
		}
	}
	switch method {
	case "key":
		return credential.DIDKey(pub), "", nil
	case "web":
		base := verify
		if loopbackHTTP(u) {
			base = "https" + strings.TrimPrefix(verify, "http")
		}
		did, err := credential.DIDWeb(base)
		return did, "web", err
	}
	return "", "", fmt.Errorf("%q: want web or key", method)
}

// didDocumentKey is the storage key (relative to verify-url) of a
// did:web's document.
func didDocumentKey(did string) string {
	if strings.Contains(strings.TrimPrefix(did, "did:web:"), ":") {
		return "did.json"
	}
	return ".well-known/did.json"
}

// loadCredentialKey loads credential-key, or makes the development key
// under dataDir.
func loadCredentialKey(s *CredentialSettings, dataDir string, keyReadable bool, log *slog.Logger, devKey bool) (ed25519.PrivateKey, error) {
	path := s.Key
	if path == "" {
		if !devKey {
			return nil, errors.New("required while credentials=true (make a key with 'certd keygen --credential', or set credentials=false)")
		}
		path = filepath.Join(dataDir, "dev-credential-key.pem")
		priv, created, err := credential.LoadOrCreateKey(path)
		if err != nil {
			return nil, err
		}
		log.Warn("!!! NO CREDENTIAL KEY CONFIGURED: signing credentials with a DEVELOPMENT key. Credentials signed with it prove nothing. Make a real key with 'certd keygen --credential' and set CERTD_CREDENTIAL_KEY.", "dev_key", path, "created", created)
		return priv, nil
	}
	if err := checkKeyFile(path, keyReadable); err != nil {
		return nil, err
	}
	return credential.LoadKeyFile(path)
}

// retiredKeys parses credential-keys-retired.
func retiredKeys(v string) ([]credential.IssuerKey, error) {
	var out []credential.IssuerKey
	for _, item := range strings.Split(v, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		id, rest, ok1 := strings.Cut(item, "=")
		path, date, ok2 := strings.Cut(rest, "@")
		if !ok1 || !ok2 {
			return nil, fmt.Errorf("%q: want ID=PEM-FILE@YYYY-MM-DD", item)
		}
		until, err := time.Parse("2006-01-02", date)
		if err != nil {
			return nil, fmt.Errorf("%q: date: %w", item, err)
		}
		priv, err := credential.LoadKeyFile(path)
		if err != nil {
			return nil, fmt.Errorf("%q: %w", item, err)
		}
		out = append(out, credential.IssuerKey{Fragment: id, Public: priv.Public().(ed25519.PublicKey), ListedUntil: until})
	}
	return out, nil
}

// newCredentials wires issuance, revocation and the status list publisher,
// and publishes the DID document (did:web) in store. With devKey a missing
// credential-key is replaced by a development key under dataDir;
// keyReadable accepts a key file others can read (signing-key-readable).
func newCredentials(ctx context.Context, c *config, s *CredentialSettings, dataDir string, keyReadable bool, log *slog.Logger, p *pipeline.Pipeline, store storage.Store, verify string, devKey bool) (*credParts, error) {
	on := s.On
	ttl := s.StatusListTTL
	if ttl < time.Second {
		c.bad(&s.StatusListTTL, "at least 1s")
	}
	if err := c.err(); err != nil {
		return nil, err
	}
	status := statuslist.NewStore(p.Status)
	parts := &credParts{rev: &consumer.Revoker{Status: status, Store: store, Log: log}}
	priv, err := loadCredentialKey(s, dataDir, keyReadable, log, devKey)
	if err != nil {
		if !on {
			// Revocation without issuance: bits are set, but the list
			// cannot be re-signed without the key.
			log.Warn("credentials are off and no credential-key is set: removals set revocation bits, but the revocation list is not republished")
			parts.cr = &consumer.Credentials{Status: status, Off: true}
			return parts, nil
		}
		c.bad(&s.Key, "%v", err)
		return nil, c.err()
	}
	pub := priv.Public().(ed25519.PublicKey)
	did, kind, err := issuerDID(s.DIDMethod, verify, pub)
	if err != nil {
		c.bad(&s.DIDMethod, "%v", err)
		return nil, c.err()
	}
	suite, err := credential.NewSuite()
	if err != nil {
		return nil, err
	}
	signer := credential.Signer{Key: priv, VerificationMethod: credential.DIDKeyVerificationMethod(pub)}
	if kind == "web" {
		frag := s.KeyID
		keys := []credential.IssuerKey{{Fragment: frag, Public: pub}}
		retired, err := retiredKeys(s.KeysRetired)
		if err != nil {
			c.bad(&s.KeysRetired, "%v", err)
			return nil, c.err()
		}
		keys = append(keys, retired...)
		doc, err := credential.NewDIDDocument(did, keys, time.Now())
		if err != nil {
			c.bad(&s.KeyID, "%v", err)
			return nil, c.err()
		}
		b, err := doc.JSON()
		if err != nil {
			return nil, err
		}
		// Idempotent: every process writes the same document.
		if err := store.Put(ctx, didDocumentKey(did), b, "application/did+json"); err != nil {
			return nil, fmt.Errorf("publish DID document: %w", err)
		}
		signer.VerificationMethod = did + "#" + frag
	}
	parts.cr = &consumer.Credentials{
		Suite: suite, Signer: signer, IssuerDID: did, Status: status, VerifyURL: verify, Off: !on,
	}
	parts.pub = &statuslist.Publishers{
		Store: status, URL: parts.cr.ListURL, IssuerDID: did, TTL: ttl, Log: log,
		Sign: func(ctx context.Context, unsigned []byte) ([]byte, error) {
			return suite.Sign(unsigned, signer, time.Now())
		},
		Put: func(ctx context.Context, list string, signed []byte) error {
			return store.Put(ctx, consumer.StatusListKey(list), signed, "application/json")
		},
	}
	log.Info("credentials", "issue", on, "issuer", did, "verification_method", signer.VerificationMethod, "status_lists", parts.cr.ListURL("<n>"))
	return parts, nil
}

// runPublisher keeps the status list published until ctx ends, restarting
// the publisher (after a pause that grows to a minute) when it fails.
func runPublisher(ctx context.Context, pub *statuslist.Publishers, log *slog.Logger) error {
	if pub == nil {
		<-ctx.Done()
		return nil
	}
	delay := time.Second
	for {
		err := pub.Run(ctx)
		if ctx.Err() != nil {
			return nil
		}
		log.Error("status list publisher stopped; restarting", "err", err, "in", delay)
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
		delay = min(2*delay, time.Minute)
	}
}

// keygenCredential writes a new credential key (certd keygen --credential).
func keygenCredential(out string) (string, ed25519.PublicKey, error) {
	path := filepath.Join(out, "credential-key.pem")
	if err := os.MkdirAll(out, 0o700); err != nil {
		return "", nil, err
	}
	priv, err := credential.GenerateKey()
	if err != nil {
		return "", nil, err
	}
	if err := credential.WriteKeyFile(path, priv); err != nil {
		return "", nil, fmt.Errorf("%s: %w (refusing to overwrite a key)", path, err)
	}
	return path, priv.Public().(ed25519.PublicKey), nil
}

// verdictText explains each verdict of `certd verify` in one line.
var verdictText = map[credential.Verdict]string{
	credential.Valid:    "the credential's proof, issuer key, PDF digest, dates and revocation status all check out",
	credential.Revoked:  "the issuer revoked this certificate",
	credential.Expired:  "the credential is not valid at this time",
	credential.Tampered: "the credential, its PDF or its revocation list does not match what the issuer signed",
	credential.WrongKey: "the credential was not signed by a key its issuer lists",
}

// checkCredential checks the credential at credURL (Suite.Check) and
// prints its verdict. The issuer's DID document and the revocation list
// are fetched over https; when the certificate's own URL (page) is plain
// http on loopback (a local certd), https URLs on loopback are fetched over
// http too.
func checkCredential(ctx context.Context, page, credURL string, pdf []byte, stdout io.Writer) error {
	fetch := credential.HTTPFetcher(&http.Client{})
	if u, err := neturl.Parse(page); err == nil && loopbackHTTP(u) {
		inner := fetch
		fetch = func(ctx context.Context, raw string) ([]byte, error) {
			if u, err := neturl.Parse(raw); err == nil && u.Scheme == "https" {
				u.Scheme = "http"
				if loopbackHTTP(u) {
					raw = u.String()
				}
			}
			return inner(ctx, raw)
		}
	}
	signed, err := fetch(ctx, credURL)
	if err != nil {
		return fmt.Errorf("credential: %w", err)
	}
	suite, err := credential.NewSuite()
	if err != nil {
		return err
	}
	res, err := suite.Check(ctx, signed, pdf, fetch, time.Now())
	if err != nil {
		return fmt.Errorf("credential %s: cannot check: %w", credURL, err)
	}
	line := fmt.Sprintf("%s: %s", res.Verdict, verdictText[res.Verdict])
	if res.Reason != "" {
		line += " (" + res.Reason + ")"
	}
	fmt.Fprintln(stdout, line)
	fmt.Fprintf(stdout, "credential: %s\nissuer: %s\n", credURL, res.Issuer)
	if res.Verdict != credential.Valid {
		return errors.New("verification failed")
	}
	return nil
}
