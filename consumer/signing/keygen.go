package signing

import (
	"crypto"
	"errors"
	"fmt"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
	"github.com/ProtonMail/go-crypto/openpgp/s2k"
	pgpcrypto "github.com/ProtonMail/gopenpgp/v2/crypto"
)

// KeyOption changes how GenerateKey makes a key.
type KeyOption func(*keyOptions)

type keyOptions struct {
	passphrase []byte
	rsaBits    int
	lifetime   time.Duration
}

// WithPassphrase protects the generated secret key with passphrase
// (iterated+salted S2K, SHA-256, AES-256: the scheme GnuPG 2.2 uses, so the
// secret key can also be imported into gpg).
func WithPassphrase(passphrase []byte) KeyOption {
	return func(o *keyOptions) { o.passphrase = append([]byte(nil), passphrase...) }
}

// WithRSA makes an RSA key of the given size (3072 if bits is 0) instead of
// the default Ed25519 key, for verifiers with very old OpenPGP software.
// RSA signing is much slower than Ed25519.
func WithRSA(bits int) KeyOption {
	return func(o *keyOptions) {
		if bits == 0 {
			bits = 3072
		}
		o.rsaBits = bits
	}
}

// WithLifetime makes the key expire d after its creation (default: never).
func WithLifetime(d time.Duration) KeyOption {
	return func(o *keyOptions) { o.lifetime = d }
}

// GenerateKey makes a new version 4 OpenPGP signing key for name <email> and
// returns it armored, private and public. The default is an Ed25519 (EdDSA)
// primary key with a Curve25519 encryption subkey, which GnuPG 2.2 imports and
// verifies; WithRSA selects RSA. The private key is unprotected unless
// WithPassphrase is given.
func GenerateKey(name, email string, opts ...KeyOption) (armoredPrivate, armoredPublic []byte, err error) {
	var o keyOptions
	for _, opt := range opts {
		opt(&o)
	}
	if name == "" && email == "" {
		return nil, nil, errors.New("signing: generate key: name or email required")
	}
	cfg := &packet.Config{
		Algorithm:              packet.PubKeyAlgoEdDSA,
		DefaultHash:            crypto.SHA256,
		DefaultCipher:          packet.CipherAES256,
		DefaultCompressionAlgo: packet.CompressionZLIB,
		Time:                   pgpcrypto.GetTime,
	}
	if o.rsaBits > 0 {
		if o.rsaBits < 2048 {
			return nil, nil, fmt.Errorf("signing: generate key: RSA key of %d bits is too small", o.rsaBits)
		}
		cfg.Algorithm = packet.PubKeyAlgoRSA
		cfg.RSABits = o.rsaBits
	}
	if o.lifetime > 0 {
		cfg.KeyLifetimeSecs = uint32(o.lifetime / time.Second)
	}
	entity, err := openpgp.NewEntity(name, "", email, cfg)
	if err != nil {
		return nil, nil, fmt.Errorf("signing: generate key: %w", err)
	}
	key, err := pgpcrypto.NewKeyFromEntity(entity)
	if err != nil {
		return nil, nil, fmt.Errorf("signing: generate key: %w", err)
	}
	pub, err := key.GetArmoredPublicKeyWithCustomHeaders("", "")
	if err != nil {
		return nil, nil, fmt.Errorf("signing: export public key: %w", err)
	}
	if len(o.passphrase) > 0 {
		keys := []*packet.PrivateKey{entity.PrivateKey}
		for _, sk := range entity.Subkeys {
			keys = append(keys, sk.PrivateKey)
		}
		enc := &packet.Config{
			DefaultCipher: packet.CipherAES256,
			S2KConfig:     &s2k.Config{S2KMode: s2k.IteratedSaltedS2K, S2KCount: 65011712, Hash: crypto.SHA256},
		}
		if err := packet.EncryptPrivateKeys(keys, o.passphrase, enc); err != nil {
			return nil, nil, fmt.Errorf("signing: protect key: %w", err)
		}
	}
	priv, err := key.ArmorWithCustomHeaders("", "")
	if err != nil {
		return nil, nil, fmt.Errorf("signing: export private key: %w", err)
	}
	return []byte(priv), []byte(pub), nil
}

func secs(n uint32) time.Duration { return time.Duration(n) * time.Second }
