// Command image builds certd's container image without Docker: the same
// image deploy/Dockerfile describes, assembled from files on this machine
// onto an empty base and written as a tarball (docker/podman load, crane
// push) or an OCI image layout directory. From the repository root:
//
//	go run ./deploy/image -o certd.tar
//
// Layers, in the Dockerfile's order, each a gzip'd tar with fixed owners
// (root), modes and times so that the same inputs give the same digests:
//
//  1. /etc/ssl/certs/ca-certificates.crt (omitted if this machine has none)
//  2. /usr/share/zoneinfo (omitted likewise)
//  3. /usr/share/fonts: the files the Debian packages fonts-noto-core,
//     fonts-noto-cjk and fonts-hanazono installed here (from dpkg's file
//     lists, so other fonts on the machine stay out), or a directory given
//     with -fonts
//  4. /usr/local/bin/certd: a static binary (CGO off), built here unless
//     -binary names one
//
// Invariants of the image: no shell or other program but certd; the config
// runs certd in exec form as uid:gid 65532:65532 (never root); certd finds
// the fonts at its default fonts-dir.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(0)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "image:", err)
		os.Exit(1)
	}
}

// run parses the flags, builds the image and writes it.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("image", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o options
	out := fs.String("o", "certd.tar", "output: a tarball file (-format docker) or a directory (-format oci)")
	format := fs.String("format", "docker", "docker: a tarball for docker load, podman load or crane push; oci: an OCI image layout directory")
	tag := fs.String("tag", "certd:latest", "image name recorded in the output")
	fs.StringVar(&o.Binary, "binary", "", "a static certd binary to put in the image (default: build ./cmd/certd from -src with CGO off)")
	fs.StringVar(&o.Src, "src", ".", "certd's module root, to build from")
	fs.StringVar(&o.Arch, "arch", runtime.GOARCH, "GOARCH to build for and to record in the image")
	pkgs := fs.String("font-packages", strings.Join(defaultFontPackages, ","), "Debian packages whose files under /usr/share/fonts go into the image")
	fs.StringVar(&o.FontsDir, "fonts", "", "copy this directory tree as /usr/share/fonts instead of the packages' files (machines without dpkg)")
	fs.StringVar(&o.CACerts, "ca", "/etc/ssl/certs/ca-certificates.crt", "CA bundle to copy (skipped if absent)")
	fs.StringVar(&o.Zoneinfo, "zoneinfo", "/usr/share/zoneinfo", "time-zone database to copy (skipped if absent)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if *pkgs != "" {
		o.FontPackages = strings.Split(*pkgs, ",")
	}
	o.DpkgInfo = "/var/lib/dpkg/info"
	o.Log = stderr

	work, err := os.MkdirTemp("", "certd-image-")
	if err != nil {
		return fmt.Errorf("work directory: %w", err)
	}
	defer os.RemoveAll(work)
	o.Work = work

	start := time.Now()
	img, err := build(ctx, o)
	if err != nil {
		return err
	}
	if err := write(img, *format, *out, *tag); err != nil {
		return err
	}
	size, err := imageSize(img)
	if err != nil {
		return err
	}
	d, err := img.Digest()
	if err != nil {
		return fmt.Errorf("image digest: %w", err)
	}
	fmt.Fprintf(stdout, "wrote %s (%s) %s: %.1f MB compressed, in %s\n", *out, *format, d, float64(size)/1e6, time.Since(start).Round(time.Millisecond))
	return nil
}

// absPath resolves p against the current directory (for messages and
// go build's -o, which runs in another directory).
func absPath(p string) string {
	if a, err := filepath.Abs(p); err == nil {
		return a
	}
	return p
}
