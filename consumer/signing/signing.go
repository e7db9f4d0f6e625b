// Package signing makes and checks the detached OpenPGP signatures that certd
// publishes next to every certificate (cert/<verify_uuid>/Certificate.pdf.sig).
//
// Signatures are binary-mode (signature type 0x00) over the exact bytes of the
// file, ASCII-armored, made with a version 4 key, so that anyone can check a
// certificate with stock GnuPG:
//
//	gpg --import certd-signing-key.asc
//	gpg --verify Certificate.pdf.sig Certificate.pdf
//
// The package uses gopenpgp v2 (and the ProtonMail go-crypto fork under it).
package signing

import (
	"bytes"
	"crypto"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
	pgpcrypto "github.com/ProtonMail/gopenpgp/v2/crypto"
)

// Errors returned when a signing key is loaded. They all mean the operator's
// configuration is wrong; certd should refuse to start rather than retry.
var (
	// ErrNotPrivateKey means the key file holds only a public key (or no key).
	ErrNotPrivateKey = errors.New("signing: not a private key")
	// ErrPassphrase means the key is protected and the passphrase is missing or wrong.
	ErrPassphrase = errors.New("signing: wrong or missing passphrase")
	// ErrKeyExpired means the key (or its only signing subkey) has expired.
	ErrKeyExpired = errors.New("signing: key expired")
	// ErrKeyRevoked means the key carries a revocation signature.
	ErrKeyRevoked = errors.New("signing: key revoked")
	// ErrNoSigningKey means neither the primary key nor any subkey may sign.
	ErrNoSigningKey = errors.New("signing: key has no usable signing (sub)key")
)

// Errors returned by Verify. All are permanent: retrying cannot change them.
var (
	// ErrTampered means the signature was made by the given key but does not
	// match the data: the file (or the signature) was modified.
	ErrTampered = errors.New("signing: BAD signature (data does not match)")
	// ErrWrongKey means the signature was made by a key other than the given one.
	ErrWrongKey = errors.New("signing: signature made by another key")
	// ErrMalformed means the signature or the public key could not be parsed.
	ErrMalformed = errors.New("signing: malformed signature or key")
)

// Signer makes detached signatures with one unlocked private key.
// The key is decrypted once, when the Signer is made; a Signer is safe for
// concurrent use by any number of goroutines.
type Signer struct {
	entity      *openpgp.Entity
	fingerprint string
	keyID       string
	publicKey   []byte
}

// NewSigner parses an ASCII-armored (or binary) OpenPGP private key, unlocks
// it with passphrase and checks that it can sign now. A passphrase given for
// an unprotected key is ignored. The errors ErrNotPrivateKey, ErrPassphrase,
// ErrKeyExpired, ErrKeyRevoked, ErrNoSigningKey and ErrMalformed say what is
// wrong with the key.
func NewSigner(armoredPrivateKey, passphrase []byte) (*Signer, error) {
	key, err := parseKey(armoredPrivateKey)
	if err != nil {
		return nil, err
	}
	if !key.IsPrivate() {
		return nil, fmt.Errorf("%w: the key %s contains no secret key material", ErrNotPrivateKey, upper(key.GetFingerprint()))
	}
	fpr := upper(key.GetFingerprint())
	if key.IsRevoked() {
		return nil, fmt.Errorf("%w: key %s", ErrKeyRevoked, fpr)
	}
	if key.IsExpired() {
		return nil, fmt.Errorf("%w: key %s%s", ErrKeyExpired, fpr, expiryText(key.GetEntity()))
	}
	locked, err := key.IsLocked()
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNotPrivateKey, err)
	}
	if locked {
		if len(passphrase) == 0 {
			return nil, fmt.Errorf("%w: key %s is protected by a passphrase and none was given", ErrPassphrase, fpr)
		}
		unlocked, err := key.Unlock(passphrase)
		if err != nil {
			return nil, fmt.Errorf("%w: cannot unlock key %s: %v", ErrPassphrase, fpr, err)
		}
		key = unlocked
	}
	entity := key.GetEntity()
	now := pgpcrypto.GetTime()
	sk, ok := entity.SigningKey(now)
	if !ok {
		if keyExpiredAt(entity, now) {
			return nil, fmt.Errorf("%w: key %s has no unexpired signing subkey", ErrKeyExpired, fpr)
		}
		return nil, fmt.Errorf("%w: key %s", ErrNoSigningKey, fpr)
	}
	if sk.PrivateKey == nil || sk.PrivateKey.Dummy() {
		return nil, fmt.Errorf("%w: the secret part of signing key %s is not in the file (offline key stub)", ErrNotPrivateKey, upper(fmt.Sprintf("%X", sk.PublicKey.Fingerprint)))
	}
	if sk.PrivateKey.Encrypted {
		return nil, fmt.Errorf("%w: signing key of %s is still locked", ErrPassphrase, fpr)
	}
	pub, err := key.GetArmoredPublicKeyWithCustomHeaders("", "")
	if err != nil {
		return nil, fmt.Errorf("signing: export public key %s: %w", fpr, err)
	}
	s := &Signer{
		entity:      entity,
		fingerprint: fpr,
		keyID:       upper(key.GetHexKeyID()),
		publicKey:   []byte(pub),
	}
	// Prove the key works (and that the secret matches the public part)
	// before anyone relies on it.
	probe := []byte("certd signing self-test")
	sig, err := s.Sign(probe)
	if err != nil {
		return nil, fmt.Errorf("signing: self-test with key %s: %w", fpr, err)
	}
	if err := Verify(probe, sig, s.publicKey); err != nil {
		return nil, fmt.Errorf("signing: self-test with key %s: %w", fpr, err)
	}
	return s, nil
}

// LoadSigner reads a private key file (armored or binary) and calls NewSigner.
func LoadSigner(path string, passphrase []byte) (*Signer, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("signing: read key %s: %w", path, err)
	}
	s, err := NewSigner(b, passphrase)
	if err != nil {
		return nil, fmt.Errorf("load key %s: %w", path, err)
	}
	return s, nil
}

// signConfig is shared by all Sign calls; packet.Config is only read.
var signConfig = &packet.Config{DefaultHash: crypto.SHA256}

// Sign returns a detached, ASCII-armored binary signature of exactly data.
// gpg --verify accepts it against the unmodified bytes.
func (s *Signer) Sign(data []byte) ([]byte, error) {
	var buf bytes.Buffer
	buf.Grow(1024)
	if err := openpgp.ArmoredDetachSign(&buf, s.entity, bytes.NewReader(data), signConfig); err != nil {
		return nil, fmt.Errorf("sign with key %s: %w", s.fingerprint, err)
	}
	buf.WriteByte('\n')
	return buf.Bytes(), nil
}

// Fingerprint returns the primary key's v4 fingerprint as 40 upper-case hex
// digits, the form gpg prints, for verification pages.
func (s *Signer) Fingerprint() string { return s.fingerprint }

// KeyID returns the primary key's long key id (16 upper-case hex digits).
func (s *Signer) KeyID() string { return s.keyID }

// PublicKey returns the ASCII-armored public key, to be published so users
// can `gpg --import` it. The returned slice must not be modified.
func (s *Signer) PublicKey() []byte { return s.publicKey }

// Verify checks a detached signature (armored or binary) of data against one
// public key (armored or binary). It returns nil if the signature is valid,
// ErrTampered if the key made the signature but data differs from what was
// signed, ErrWrongKey if another key made it, and ErrMalformed if either
// input cannot be parsed. Key and signature expiry are not checked: a
// certificate signed while the key was valid stays valid.
func Verify(data, armoredSig, armoredPublicKey []byte) error {
	key, err := parseKey(armoredPublicKey)
	if err != nil {
		return fmt.Errorf("public key: %w", err)
	}
	if key.IsPrivate() {
		if key, err = key.ToPublic(); err != nil {
			return fmt.Errorf("%w: public key: %v", ErrMalformed, err)
		}
	}
	sigBin, err := unarmor(armoredSig, "PGP SIGNATURE")
	if err != nil {
		return fmt.Errorf("signature: %w", err)
	}
	p, err := packet.Read(bytes.NewReader(sigBin))
	if err != nil {
		return fmt.Errorf("%w: signature: %v", ErrMalformed, err)
	}
	sigPkt, ok := p.(*packet.Signature)
	if !ok {
		return fmt.Errorf("%w: signature: found a %T packet, not a signature", ErrMalformed, p)
	}
	issuer, known := issuerOf(sigPkt)
	if !known {
		return fmt.Errorf("%w: signature names no issuer key", ErrMalformed)
	}
	if !hasKeyID(key.GetEntity(), issuer) {
		return fmt.Errorf("%w: signed by key %016X, not by %s", ErrWrongKey, issuer, upper(key.GetFingerprint()))
	}
	ring, err := pgpcrypto.NewKeyRing(key)
	if err != nil {
		return fmt.Errorf("%w: public key: %v", ErrMalformed, err)
	}
	if err := ring.VerifyDetached(pgpcrypto.NewPlainMessage(data), pgpcrypto.NewPGPSignature(sigBin), 0); err != nil {
		return fmt.Errorf("%w: key %016X: %v", ErrTampered, issuer, err)
	}
	return nil
}

// parseKey accepts an armored or binary key.
func parseKey(b []byte) (*pgpcrypto.Key, error) {
	trimmed := bytes.TrimSpace(b)
	if len(trimmed) == 0 {
		return nil, fmt.Errorf("%w: empty key", ErrMalformed)
	}
	var (
		key *pgpcrypto.Key
		err error
	)
	if bytes.HasPrefix(trimmed, []byte("-----BEGIN")) {
		if bytes.Contains(trimmed[:min(len(trimmed), 64)], []byte("PGP SIGNATURE")) ||
			bytes.Contains(trimmed[:min(len(trimmed), 64)], []byte("PGP MESSAGE")) {
			return nil, fmt.Errorf("%w: armored block is not a key", ErrMalformed)
		}
		key, err = pgpcrypto.NewKeyFromArmored(string(trimmed))
	} else {
		key, err = pgpcrypto.NewKey(b)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	return key, nil
}

// unarmor returns the binary body of an armored block of the wanted type, or
// b itself when it is not armored.
func unarmor(b []byte, wantType string) ([]byte, error) {
	trimmed := bytes.TrimSpace(b)
	if len(trimmed) == 0 {
		return nil, fmt.Errorf("%w: empty", ErrMalformed)
	}
	if !bytes.HasPrefix(trimmed, []byte("-----BEGIN")) {
		return b, nil
	}
	blk, err := armor.Decode(bytes.NewReader(trimmed))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if blk.Type != wantType {
		return nil, fmt.Errorf("%w: armored %q, want %q", ErrMalformed, blk.Type, wantType)
	}
	var out bytes.Buffer
	if _, err := out.ReadFrom(blk.Body); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	return out.Bytes(), nil
}

func issuerOf(sig *packet.Signature) (uint64, bool) {
	if sig.IssuerKeyId != nil {
		return *sig.IssuerKeyId, true
	}
	if n := len(sig.IssuerFingerprint); n >= 20 {
		// v4 key id: the low 64 bits of the fingerprint.
		fp := sig.IssuerFingerprint[n-8:]
		var id uint64
		for _, c := range fp {
			id = id<<8 | uint64(c)
		}
		return id, true
	}
	return 0, false
}

func hasKeyID(e *openpgp.Entity, id uint64) bool {
	if e.PrimaryKey.KeyId == id {
		return true
	}
	for _, sk := range e.Subkeys {
		if sk.PublicKey.KeyId == id {
			return true
		}
	}
	return false
}

func keyExpiredAt(e *openpgp.Entity, now time.Time) bool {
	for _, sk := range e.Subkeys {
		if sk.Sig != nil && sk.Sig.FlagsValid && sk.Sig.FlagSign && sk.Sig.KeyLifetimeSecs != nil && *sk.Sig.KeyLifetimeSecs != 0 {
			if sk.PublicKey.CreationTime.Unix()+int64(*sk.Sig.KeyLifetimeSecs) <= now.Unix() {
				return true
			}
		}
	}
	return false
}

func expiryText(e *openpgp.Entity) string {
	id := e.PrimaryIdentity()
	if id == nil || id.SelfSignature == nil || id.SelfSignature.KeyLifetimeSecs == nil || *id.SelfSignature.KeyLifetimeSecs == 0 {
		return ""
	}
	t := e.PrimaryKey.CreationTime.Add(secs(*id.SelfSignature.KeyLifetimeSecs))
	return " (expired " + t.UTC().Format("2006-01-02") + "; extend it with gpg --quick-set-expire or make a new key)"
}

func upper(s string) string { return strings.ToUpper(s) }
