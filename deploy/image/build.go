package main

import (
	"archive/tar"
	"bufio"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// The image's fixed settings; deploy/Dockerfile says the same.
const (
	binaryPath = "/usr/local/bin/certd"
	imageUser  = "65532:65532"
	fontsPath  = "/usr/share/fonts"
)

// defaultFontPackages are the Debian packages certd's fonts come from
// (docs/fonts.md).
var defaultFontPackages = []string{"fonts-noto-core", "fonts-noto-cjk", "fonts-hanazono"}

// epoch is the time on every file, layer and the image: fixed, so that a
// rebuild from the same inputs has the same digest.
var epoch = time.Unix(0, 0).UTC()

// options says where the image's files come from.
type options struct {
	Binary       string   // prebuilt static certd; "" builds one from Src
	Src          string   // module root to build from
	Arch         string   // GOARCH
	FontPackages []string // Debian packages whose font files go in
	FontsDir     string   // or: a tree copied as /usr/share/fonts
	DpkgInfo     string   // dpkg's database of file lists
	CACerts      string   // CA bundle ("" or absent: no layer)
	Zoneinfo     string   // time-zone database ("" or absent: no layer)
	Work         string   // scratch directory for the binary and layer files
	Log          io.Writer
}

// entry is one file of a layer: Src on this machine, Dst in the image.
type entry struct{ Src, Dst string }

// build assembles the image: an empty base, one layer per part, and a
// config that runs certd as a non-root user without a shell.
func build(ctx context.Context, o options) (v1.Image, error) {
	bin := o.Binary
	if bin == "" {
		bin = filepath.Join(o.Work, "certd")
		fmt.Fprintf(o.Log, "building %s/cmd/certd (CGO_ENABLED=0, GOARCH=%s)\n", absPath(o.Src), o.Arch)
		if err := buildBinary(ctx, o.Src, bin, o.Arch); err != nil {
			return nil, err
		}
	}
	fonts, err := fontEntries(o)
	if err != nil {
		return nil, err
	}
	type part struct {
		what    string
		entries []entry
	}
	var parts []part
	if ok, err := exists(o.CACerts); err != nil {
		return nil, err
	} else if ok {
		parts = append(parts, part{"CA certificates", []entry{{o.CACerts, "/etc/ssl/certs/ca-certificates.crt"}}})
	} else {
		fmt.Fprintf(o.Log, "no CA bundle at %q: certd will not trust HTTPS servers without one\n", o.CACerts)
	}
	if ok, err := exists(o.Zoneinfo); err != nil {
		return nil, err
	} else if ok {
		z, err := treeEntries(o.Zoneinfo, "/usr/share/zoneinfo")
		if err != nil {
			return nil, err
		}
		parts = append(parts, part{"time-zone database", z})
	} else {
		fmt.Fprintf(o.Log, "no time-zone database at %q\n", o.Zoneinfo)
	}
	parts = append(parts,
		part{"fonts", fonts},
		part{"certd", []entry{{bin, binaryPath}}})

	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, fmt.Errorf("empty image config: %w", err)
	}
	cf = cf.DeepCopy()
	cf.OS = "linux"
	cf.Architecture = o.Arch
	cf.Created = v1.Time{Time: epoch}
	cf.Config = v1.Config{
		User:       imageUser,
		Entrypoint: []string{binaryPath},
		Cmd:        []string{"--help"},
		WorkingDir: "/",
		// http-addr (health, /readyz, metrics) and grpc-addr (control)
		ExposedPorts: map[string]struct{}{"8080/tcp": {}, "9090/tcp": {}},
		Labels:       map[string]string{"org.opencontainers.image.title": "certd"},
	}
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		return nil, fmt.Errorf("image config: %w", err)
	}
	for i, p := range parts {
		l, err := writeLayer(filepath.Join(o.Work, fmt.Sprintf("layer%d.tar.gz", i)), p.entries)
		if err != nil {
			return nil, fmt.Errorf("%s layer: %w", p.what, err)
		}
		img, err = mutate.Append(img, mutate.Addendum{
			Layer:   l,
			History: v1.History{Created: v1.Time{Time: epoch}, CreatedBy: "certd image: " + p.what},
		})
		if err != nil {
			return nil, fmt.Errorf("%s layer: %w", p.what, err)
		}
	}
	return img, nil
}

// buildBinary builds ./cmd/certd in src into out as a static binary.
func buildBinary(ctx context.Context, src, out, arch string) error {
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-buildvcs=false", "-ldflags=-s -w", "-o", absPath(out), "./cmd/certd")
	cmd.Dir = src
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+arch)
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build ./cmd/certd in %s: %w\n%s", src, err, b)
	}
	return nil
}

// fontEntries lists the font files: a given tree, or the files dpkg
// installed under /usr/share/fonts for the font packages.
func fontEntries(o options) ([]entry, error) {
	if o.FontsDir != "" {
		return treeEntries(o.FontsDir, fontsPath)
	}
	if len(o.FontPackages) == 0 {
		return nil, errors.New("no fonts: give -font-packages or -fonts")
	}
	var out []entry
	for _, pkg := range o.FontPackages {
		files, err := packageFiles(o.DpkgInfo, pkg)
		if err != nil {
			return nil, err
		}
		n := 0
		for _, f := range files {
			if !strings.HasPrefix(f, fontsPath+"/") {
				continue
			}
			fi, err := os.Lstat(f)
			if err != nil {
				return nil, fmt.Errorf("package %s: %w", pkg, err)
			}
			if fi.Mode().IsRegular() || fi.Mode()&fs.ModeSymlink != 0 {
				out = append(out, entry{f, f})
				n++
			}
		}
		if n == 0 {
			return nil, fmt.Errorf("package %s installed no files under %s", pkg, fontsPath)
		}
	}
	return out, nil
}

// packageFiles reads the list of files dpkg installed for pkg.
func packageFiles(info, pkg string) ([]string, error) {
	names := []string{pkg + ".list"}
	if m, _ := filepath.Glob(filepath.Join(info, pkg+":*.list")); len(m) > 0 {
		names = append(names, filepath.Base(m[0]))
	}
	for _, n := range names {
		f, err := os.Open(filepath.Join(info, n))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("package %s: %w", pkg, err)
		}
		defer f.Close()
		var files []string
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if l := strings.TrimSpace(sc.Text()); l != "" {
				files = append(files, l)
			}
		}
		if err := sc.Err(); err != nil {
			return nil, fmt.Errorf("package %s: %w", pkg, err)
		}
		return files, nil
	}
	return nil, fmt.Errorf("package %s is not installed (apt-get install %s, or give -fonts DIR)", pkg, pkg)
}

// treeEntries lists the files and symbolic links under dir as under dst.
func treeEntries(dir, dst string) ([]entry, error) {
	var out []entry
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			return nil
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		out = append(out, entry{p, path.Join(dst, filepath.ToSlash(rel))})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("listing %s: %w", dir, err)
	}
	return out, nil
}

func exists(p string) (bool, error) {
	if p == "" {
		return false, nil
	}
	_, err := os.Stat(p)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return true, nil
}

// writeLayer writes the entries as a gzip'd tar to file, sorted, with
// their parent directories, owned by root, mode 0755 for executables and
// directories and 0644 otherwise, and returns it as a layer. The digests
// are computed while writing, so the layer is read once more only to be
// copied out.
func writeLayer(file string, entries []entry) (v1.Layer, error) {
	sort.Slice(entries, func(i, j int) bool { return entries[i].Dst < entries[j].Dst })
	f, err := os.Create(file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	compressed := sha256.New()
	size := &countWriter{}
	zw, err := gzip.NewWriterLevel(io.MultiWriter(f, compressed, size), gzip.BestSpeed)
	if err != nil {
		return nil, err
	}
	uncompressed := sha256.New()
	tw := tar.NewWriter(io.MultiWriter(zw, uncompressed))
	dirs := map[string]bool{}
	var mkdirs func(d string) error
	mkdirs = func(d string) error {
		if d == "/" || dirs[d] {
			return nil
		}
		if err := mkdirs(path.Dir(d)); err != nil {
			return err
		}
		dirs[d] = true
		return tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: strings.TrimPrefix(d, "/") + "/", Mode: 0o755, ModTime: epoch, Format: tar.FormatPAX})
	}
	for _, e := range entries {
		if err := mkdirs(path.Dir(e.Dst)); err != nil {
			return nil, err
		}
		if err := addFile(tw, e); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	if err := f.Close(); err != nil {
		return nil, err
	}
	return &fileLayer{
		path:   file,
		digest: v1.Hash{Algorithm: "sha256", Hex: hexSum(compressed)},
		diffID: v1.Hash{Algorithm: "sha256", Hex: hexSum(uncompressed)},
		size:   size.n,
	}, nil
}

// addFile writes one regular file or symbolic link.
func addFile(tw *tar.Writer, e entry) error {
	fi, err := os.Lstat(e.Src)
	if err != nil {
		return err
	}
	h := &tar.Header{Name: strings.TrimPrefix(e.Dst, "/"), ModTime: epoch, Format: tar.FormatPAX}
	switch {
	case fi.Mode()&fs.ModeSymlink != 0:
		target, err := os.Readlink(e.Src)
		if err != nil {
			return err
		}
		h.Typeflag, h.Linkname, h.Mode = tar.TypeSymlink, target, 0o777
		return tw.WriteHeader(h)
	case fi.Mode().IsRegular():
		h.Typeflag, h.Size, h.Mode = tar.TypeReg, fi.Size(), 0o644
		if fi.Mode()&0o111 != 0 {
			h.Mode = 0o755
		}
	default:
		return fmt.Errorf("%s: not a regular file or link", e.Src)
	}
	if err := tw.WriteHeader(h); err != nil {
		return err
	}
	src, err := os.Open(e.Src)
	if err != nil {
		return err
	}
	defer src.Close()
	if n, err := io.Copy(tw, src); err != nil {
		return fmt.Errorf("%s: %w", e.Src, err)
	} else if n != fi.Size() {
		return fmt.Errorf("%s: changed while being copied", e.Src)
	}
	return nil
}

type countWriter struct{ n int64 }

func (c *countWriter) Write(p []byte) (int, error) { c.n += int64(len(p)); return len(p), nil }

func hexSum(h hash.Hash) string { return fmt.Sprintf("%x", h.Sum(nil)) }

// fileLayer is a gzip'd tar layer on disk with its digests known.
type fileLayer struct {
	path           string
	digest, diffID v1.Hash
	size           int64
}

func (l *fileLayer) Digest() (v1.Hash, error)            { return l.digest, nil }
func (l *fileLayer) DiffID() (v1.Hash, error)            { return l.diffID, nil }
func (l *fileLayer) Size() (int64, error)                { return l.size, nil }
func (l *fileLayer) MediaType() (types.MediaType, error) { return types.OCILayer, nil }
func (l *fileLayer) Compressed() (io.ReadCloser, error)  { return os.Open(l.path) }
func (l *fileLayer) Uncompressed() (io.ReadCloser, error) {
	f, err := os.Open(l.path)
	if err != nil {
		return nil, err
	}
	zr, err := gzip.NewReader(f)
	if err != nil {
		f.Close()
		return nil, err
	}
	return readCloser{zr, func() error { zr.Close(); return f.Close() }}, nil
}

type readCloser struct {
	io.Reader
	close func() error
}

func (r readCloser) Close() error { return r.close() }

// write stores the image as a tarball or an OCI layout directory.
func write(img v1.Image, format, out, tag string) error {
	ref, err := name.NewTag(tag)
	if err != nil {
		return fmt.Errorf("tag %q: %w", tag, err)
	}
	switch format {
	case "docker":
		if err := tarball.WriteToFile(out, ref, img); err != nil {
			return fmt.Errorf("writing %s: %w", out, err)
		}
	case "oci":
		p, err := layout.Write(out, empty.Index)
		if err != nil {
			return fmt.Errorf("writing %s: %w", out, err)
		}
		if err := p.AppendImage(img, layout.WithAnnotations(map[string]string{"org.opencontainers.image.ref.name": ref.String()})); err != nil {
			return fmt.Errorf("writing %s: %w", out, err)
		}
	default:
		return fmt.Errorf("-format %q: want docker or oci", format)
	}
	return nil
}

// imageSize is the compressed size of the image: its layers, config and
// manifest.
func imageSize(img v1.Image) (int64, error) {
	m, err := img.Manifest()
	if err != nil {
		return 0, fmt.Errorf("manifest: %w", err)
	}
	raw, err := img.RawManifest()
	if err != nil {
		return 0, fmt.Errorf("manifest: %w", err)
	}
	n := m.Config.Size + int64(len(raw))
	for _, l := range m.Layers {
		n += l.Size
	}
	return n, nil
}
