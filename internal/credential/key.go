package credential

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// Credential keys are stored as PEM "PRIVATE KEY" blocks (PKCS #8, RFC 8410
// for Ed25519), the form `openssl genpkey -algorithm ed25519` writes, with
// file mode 0600. The key is the credential key only: never the OpenPGP key.

// maxKeyFile bounds what LoadKeyFile reads.
const maxKeyFile = 16 << 10

// GenerateKey makes a new Ed25519 credential key.
func GenerateKey() (ed25519.PrivateKey, error) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate credential key: %w", err)
	}
	return priv, nil
}

// MarshalKeyPEM encodes priv as a PKCS #8 PEM block.
func MarshalKeyPEM(priv ed25519.PrivateKey) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return nil, fmt.Errorf("encode credential key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// ParseKeyPEM decodes a PKCS #8 PEM Ed25519 key.
func ParseKeyPEM(b []byte) (ed25519.PrivateKey, error) {
	blk, _ := pem.Decode(b)
	if blk == nil || blk.Type != "PRIVATE KEY" {
		return nil, errors.New("credential key: no PEM \"PRIVATE KEY\" block")
	}
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("credential key: %w", err)
	}
	priv, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("credential key: %T, want Ed25519", k)
	}
	return priv, nil
}

// WriteKeyFile writes priv to path with mode 0600, refusing to replace an
// existing file.
func WriteKeyFile(path string, priv ed25519.PrivateKey) error {
	b, err := MarshalKeyPEM(priv)
	if err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("write credential key: %w", err)
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return fmt.Errorf("write credential key %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write credential key %s: %w", path, err)
	}
	return nil
}

// LoadKeyFile reads a key written by WriteKeyFile (or openssl genpkey).
func LoadKeyFile(path string) (ed25519.PrivateKey, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("load credential key: %w", err)
	}
	defer f.Close()
	b := make([]byte, maxKeyFile+1)
	n, _ := f.Read(b)
	if n > maxKeyFile {
		return nil, fmt.Errorf("load credential key %s: larger than %d bytes", path, maxKeyFile)
	}
	priv, err := ParseKeyPEM(b[:n])
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", path, err)
	}
	return priv, nil
}

// LoadOrCreateKey loads the key at path, or, if there is no file, makes one
// and writes it there (parent folders 0700). created reports the latter:
// the caller warns loudly when that is a development key.
func LoadOrCreateKey(path string) (priv ed25519.PrivateKey, created bool, err error) {
	priv, err = LoadKeyFile(path)
	if err == nil {
		return priv, false, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, false, err
	}
	if priv, err = GenerateKey(); err != nil {
		return nil, false, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, false, fmt.Errorf("credential key folder: %w", err)
	}
	if err := WriteKeyFile(path, priv); err != nil {
		if errors.Is(err, os.ErrExist) { // another process made it first
			priv, err = LoadKeyFile(path)
			return priv, false, err
		}
		return nil, false, err
	}
	return priv, true, nil
}
