package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/certd-dev/certd/consumer/pages"
	"github.com/certd-dev/certd/consumer/signing"
)

func init() {
	commands["verify"] = command{"check a certificate PDF against its signature (files or a verification URL)", runVerify}
}

// runVerify checks a certificate: local files, or a verification URL.
func runVerify(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("certd verify", flag.ContinueOnError)
	fs.SetOutput(stderr)
	pdfPath := fs.String("pdf", "", "the certificate PDF")
	sigPath := fs.String("sig", "", "its detached signature (default: PDF path + .sig)")
	keyPath := fs.String("key", "", "the signer's public key (with --url: overrides the published one)")
	pageURL := fs.String("url", "", "verification URL printed on the certificate, <verify base>/cert/<uuid>")
	timeout := fs.Duration("timeout", 30*time.Second, "give up on fetching after this long")
	if err := fs.Parse(args); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	var pdf, sig, key []byte
	var links pages.Links
	var err error
	switch {
	case *pageURL != "":
		var keyURL string
		pdf, sig, key, keyURL, links, err = fetchCertificate(ctx, *pageURL)
		if err != nil {
			return err
		}
		if *keyPath != "" {
			if key, err = os.ReadFile(*keyPath); err != nil {
				return err
			}
		} else {
			fmt.Fprintf(stdout, "using the public key published at %s\n", keyURL)
		}
	case *pdfPath != "":
		if *sigPath == "" {
			*sigPath = *pdfPath + ".sig"
		}
		if *keyPath == "" {
			fmt.Fprintln(stderr, "certd verify: --key is required with --pdf")
			return errUsage
		}
		for _, f := range []struct {
			path string
			dst  *[]byte
		}{{*pdfPath, &pdf}, {*sigPath, &sig}, {*keyPath, &key}} {
			if *f.dst, err = os.ReadFile(f.path); err != nil {
				return err
			}
		}
	default:
		fmt.Fprintln(stderr, "certd verify: give --url URL, or --pdf FILE --key KEY [--sig FILE]")
		return errUsage
	}
	switch err := signing.Verify(pdf, sig, key); {
	case err == nil && links.Credential != "":
		fmt.Fprintln(stdout, "signature: the PDF is exactly what the key's owner signed")
		return checkCredential(ctx, *pageURL, links.Credential, pdf, stdout)
	case err == nil:
		fmt.Fprintln(stdout, "VALID: the certificate is exactly what the key's owner signed")
		return nil
	case errors.Is(err, signing.ErrTampered):
		fmt.Fprintln(stdout, "TAMPERED: the signature does not match this file; it was changed after signing")
	case errors.Is(err, signing.ErrWrongKey):
		fmt.Fprintln(stdout, "WRONG KEY: the signature was made by a different key")
	default:
		fmt.Fprintln(stdout, "INVALID: cannot check:", err)
	}
	return errors.New("verification failed")
}

// fetchCertificate follows a verification URL to the PDF, signature and
// public key linked from its verify.html.
func fetchCertificate(ctx context.Context, page string) (pdf, sig, key []byte, keyURL string, links pages.Links, err error) {
	base, err := url.Parse(strings.TrimRight(page, "/") + "/")
	if err != nil || (base.Scheme != "http" && base.Scheme != "https") {
		return nil, nil, nil, "", links, fmt.Errorf("--url %q is not an http(s) URL", page)
	}
	verifyURL := base.ResolveReference(&url.URL{Path: "verify.html"})
	html, err := fetch(ctx, verifyURL.String())
	if err != nil {
		return nil, nil, nil, "", links, err
	}
	links, err = pages.ParseVerifyLinks(html)
	if err != nil {
		return nil, nil, nil, "", links, fmt.Errorf("%s: %w", verifyURL, err)
	}
	pdfRef, sigRef, keyRef := links.PDF, links.Signature, links.PublicKey
	if links.Credential != "" {
		u, err := verifyURL.Parse(links.Credential)
		if err != nil {
			return nil, nil, nil, "", links, fmt.Errorf("%s: credential link: %w", verifyURL, err)
		}
		links.Credential = u.String()
	}
	get := func(ref string) ([]byte, string, error) {
		u, err := verifyURL.Parse(ref)
		if err != nil {
			return nil, "", err
		}
		b, err := fetch(ctx, u.String())
		return b, u.String(), err
	}
	if pdf, _, err = get(pdfRef); err != nil {
		return
	}
	if sig, _, err = get(sigRef); err != nil {
		return
	}
	key, keyURL, err = get(keyRef)
	return
}

func fetch(ctx context.Context, u string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("fetch %s: %w", u, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("fetch %s: HTTP %d", u, resp.StatusCode)
	}
	return io.ReadAll(io.LimitReader(resp.Body, 64<<20))
}
