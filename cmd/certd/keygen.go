package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/certd-dev/certd/consumer/signing"
	"github.com/certd-dev/certd/internal/credential"
)

func init() {
	commands["keygen"] = command{"make an OpenPGP signing key pair for a site (--credential: the credential key)", runKeygen}
}

func runKeygen(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("certd keygen", flag.ContinueOnError)
	fs.SetOutput(stderr)
	name := fs.String("name", "", "who signs, e.g. \"Example University Certificates\" (required)")
	email := fs.String("email", "", "contact e-mail in the key (required)")
	out := fs.String("out", ".", "directory for signing-key.asc (private) and signing-key.pub.asc")
	passFile := fs.String("passphrase-file", "", "protect the private key with the passphrase in this file")
	rsa := fs.Bool("rsa", false, "make an RSA-3072 key instead of Ed25519 (for old verifiers)")
	cred := fs.Bool("credential", false, "make the Ed25519 key that signs Open Badges credentials (credential-key.pem) instead")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *cred {
		path, pub, err := keygenCredential(*out)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "credential key: %s (keep it secret; set CERTD_CREDENTIAL_KEY to this path)\npublic key:     %s\n", path, credential.PublicKeyMultibase(pub))
		return nil
	}
	if *name == "" || *email == "" {
		fmt.Fprintln(stderr, "certd keygen: --name and --email are required")
		fs.Usage()
		return errUsage
	}
	var opts []signing.KeyOption
	if *passFile != "" {
		b, err := os.ReadFile(*passFile)
		if err != nil {
			return fmt.Errorf("passphrase file: %w", err)
		}
		opts = append(opts, signing.WithPassphrase([]byte(strings.TrimRight(string(b), "\r\n"))))
	}
	if *rsa {
		opts = append(opts, signing.WithRSA(3072))
	}
	priv, pub, err := signing.GenerateKey(*name, *email, opts...)
	if err != nil {
		return err
	}
	privPath := filepath.Join(*out, "signing-key.asc")
	pubPath := filepath.Join(*out, "signing-key.pub.asc")
	if _, err := os.Stat(privPath); err == nil {
		return fmt.Errorf("%s exists; refusing to overwrite a signing key", privPath)
	}
	if err := os.MkdirAll(*out, 0o700); err != nil {
		return err
	}
	if err := os.WriteFile(privPath, priv, 0o600); err != nil {
		return err
	}
	if err := os.WriteFile(pubPath, pub, 0o644); err != nil {
		return err
	}
	var pass []byte
	if *passFile != "" {
		b, _ := os.ReadFile(*passFile)
		pass = []byte(strings.TrimRight(string(b), "\r\n"))
	}
	s, err := signing.NewSigner(priv, pass)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "private key: %s (keep it secret; set CERTD_SIGNING_KEY to this path)\npublic key:  %s\nfingerprint: %s\n", privPath, pubPath, s.Fingerprint())
	return nil
}
