package main

import (
	"archive/tar"
	"bytes"
	"context"
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// TestImage builds the image the way an operator does (go run ./deploy/image
// -o certd.tar: certd built here with CGO off, the host's CA bundle,
// time-zone database and the Debian font packages' files), reads the
// tarball back, and checks what a container runtime would see: the config
// runs certd in exec form as a non-root uid, no layer holds a shell, the
// binary is static, the fonts are there, and certd, run as uid 65532 in a
// root holding only the image's files, renders a name that only those
// fonts can draw.
func TestImage(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	dir := t.TempDir()
	out := filepath.Join(dir, "certd.tar")
	var stdout, stderr bytes.Buffer
	start := time.Now()
	if err := run(ctx, []string{"-src", "../..", "-o", out}, &stdout, &stderr); err != nil {
		t.Fatalf("building the image: %v\n%s", err, stderr.String())
	}
	t.Logf("built in %s: %s%s", time.Since(start).Round(time.Millisecond), stderr.String(), stdout.String())

	img, err := tarball.ImageFromPath(out, nil)
	if err != nil {
		t.Fatalf("reading %s back: %v", out, err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	checkConfig(t, cf)

	m, err := img.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	size, err := imageSize(img)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("image: %d layers, %.1f MB compressed", len(m.Layers), float64(size)/1e6)
	if len(cf.History) != len(m.Layers) {
		t.Errorf("%d history entries for %d layers", len(cf.History), len(m.Layers))
	}

	// Unpack every layer into root, as a runtime would.
	root := filepath.Join(dir, "root")
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	files := map[string]*tar.Header{}
	for i, l := range layers {
		n, err := unpack(l, root, files)
		if err != nil {
			t.Fatalf("layer %d: %v", i, err)
		}
		what := ""
		if i < len(cf.History) {
			what = cf.History[i].CreatedBy
		}
		t.Logf("layer %d (%s): %d entries, %.1f MB compressed", i, what, n, float64(m.Layers[i].Size)/1e6)
	}

	var unpacked int64
	for _, h := range files {
		unpacked += h.Size
	}
	t.Logf("unpacked: %d entries, %.1f MB", len(files), float64(unpacked)/1e6)

	// No shell, no other program: certd is the only executable file.
	for name, h := range files {
		if slices.Contains([]string{"sh", "bash", "dash", "ash", "busybox"}, path.Base(name)) {
			t.Errorf("the image holds %s", name)
		}
		if h.Typeflag == tar.TypeReg && h.Mode&0o111 != 0 && name != binaryPath {
			t.Errorf("the image holds another executable: %s", name)
		}
	}
	if h := files[binaryPath]; h == nil || h.Mode&0o755 != 0o755 || h.Uid != 0 {
		t.Fatalf("%s: %+v, want a root-owned executable any user can run", binaryPath, h)
	}
	if err := staticELF(filepath.Join(root, binaryPath)); err != nil {
		t.Error(err)
	}

	// The host's CA bundle and time zones, when it has them (this machine
	// does), and every font file the Debian packages installed.
	if _, err := os.Stat("/etc/ssl/certs/ca-certificates.crt"); err == nil && files["/etc/ssl/certs/ca-certificates.crt"] == nil {
		t.Error("no CA bundle in the image")
	}
	if _, err := os.Stat("/usr/share/zoneinfo/Europe/Paris"); err == nil && files["/usr/share/zoneinfo/Europe/Paris"] == nil {
		t.Error("no time-zone database in the image")
	}
	nfonts := 0
	for _, pkg := range defaultFontPackages {
		list, err := packageFiles("/var/lib/dpkg/info", pkg)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range list {
			fi, err := os.Lstat(f)
			if err != nil || !strings.HasPrefix(f, fontsPath+"/") || !fi.Mode().IsRegular() {
				continue
			}
			if h := files[f]; h == nil || h.Size != fi.Size() {
				t.Errorf("%s (package %s) is not in the image as it is on this machine", f, pkg)
			}
			nfonts++
		}
	}
	for _, f := range []string{"NotoSerif-Regular.ttf", "NotoSansCJK-Regular.ttc", "HanaMinB.ttf"} {
		if !slices.ContainsFunc(keys(files), func(n string) bool { return path.Base(n) == f }) {
			t.Errorf("no %s in the image", f)
		}
	}
	for name := range files {
		if strings.HasPrefix(name, fontsPath+"/") && files[name].Typeflag == tar.TypeReg {
			nfonts--
		}
	}
	if nfonts != 0 {
		t.Errorf("%d font files in the image that the packages did not install (negative: extra)", -nfonts)
	}

	runInImage(t, ctx, root)
}

// checkConfig checks what a runtime takes from the image config.
func checkConfig(t *testing.T, cf *v1.ConfigFile) {
	t.Helper()
	if cf.OS != "linux" || cf.Architecture == "" {
		t.Errorf("platform %s/%s", cf.OS, cf.Architecture)
	}
	uid, gid, ok := strings.Cut(cf.Config.User, ":")
	u, err1 := strconv.Atoi(uid)
	g, err2 := strconv.Atoi(gid)
	if !ok || err1 != nil || err2 != nil || u == 0 || g == 0 {
		t.Errorf("User %q: want numeric non-root uid:gid (Kubernetes runAsNonRoot checks numbers)", cf.Config.User)
	}
	if !slices.Equal(cf.Config.Entrypoint, []string{binaryPath}) {
		t.Errorf("Entrypoint %q, want exec form [%s]", cf.Config.Entrypoint, binaryPath)
	}
	if len(cf.Config.Shell) > 0 || slices.ContainsFunc(append(cf.Config.Entrypoint, cf.Config.Cmd...), func(a string) bool { return strings.HasSuffix(a, "/sh") }) {
		t.Errorf("config runs a shell: Shell %q Entrypoint %q Cmd %q", cf.Config.Shell, cf.Config.Entrypoint, cf.Config.Cmd)
	}
	for _, p := range []string{"8080/tcp", "9090/tcp"} {
		if _, ok := cf.Config.ExposedPorts[p]; !ok {
			t.Errorf("port %s not exposed", p)
		}
	}
}

// staticELF says why bin is not a static executable: a PT_INTERP program
// header (it needs a dynamic loader) or DT_NEEDED entries (shared
// libraries).
func staticELF(bin string) error {
	f, err := elf.Open(bin)
	if err != nil {
		return err
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return fmt.Errorf("%s has an interpreter (PT_INTERP): dynamically linked", bin)
		}
	}
	libs, err := f.ImportedLibraries()
	if err != nil && !errors.Is(err, elf.ErrNoSymbols) {
		return err
	}
	if len(libs) > 0 {
		return fmt.Errorf("%s needs shared libraries %q", bin, libs)
	}
	return nil
}

// The static check tells a dynamically linked program (the system shell,
// dynamically linked on Debian) from a static one.
func TestImageStaticCheck(t *testing.T) {
	sh, err := filepath.EvalSymlinks("/bin/sh")
	if err != nil {
		t.Fatal(err)
	}
	if err := staticELF(sh); err == nil {
		t.Errorf("%s passes as static", sh)
	} else {
		t.Logf("%v", err)
	}
}

// runInImage runs certd from the unpacked image: chrooted into it as uid
// 65532, with an empty environment and no shell in between, rendering two
// names: one only Hanazono Mincho draws (𡒄, CJK extension B), one in kana
// (Noto Sans CJK JP). certd's embedded fallback fonts cover neither, so the
// certificates prove the image's fonts are found at certd's default
// fonts-dir. Without root (no chroot), certd runs from the unpacked path
// with fonts-dir pointed into the image.
func runInImage(t *testing.T, ctx context.Context, root string) {
	t.Helper()
	tmp := filepath.Join(root, "tmp")
	if err := os.Mkdir(tmp, 0o1777); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(tmp, 0o1777); err != nil { // past the umask
		t.Fatal(err)
	}
	jobs := `{"action":"create","username":"a","course_id":"course-v1:x+y+z","course_name":"Image","name":"𡒄 太郎"}
{"action":"create","username":"b","course_id":"course-v1:x+y+z","course_name":"Image","name":"さくら"}
`
	if err := os.WriteFile(filepath.Join(tmp, "jobs.jsonl"), []byte(jobs), 0o644); err != nil {
		t.Fatal(err)
	}
	var cmd *exec.Cmd
	outDir := "/tmp/out"
	if os.Geteuid() == 0 {
		cmd = exec.CommandContext(ctx, binaryPath, "render", "--no-sign", "--jobs", "/tmp/jobs.jsonl", "--out", outDir)
		cmd.SysProcAttr = &syscall.SysProcAttr{Chroot: root, Credential: &syscall.Credential{Uid: 65532, Gid: 65532}}
		cmd.Dir = "/"
	} else {
		t.Log("not root: running certd from the unpacked image without chroot")
		outDir = filepath.Join(root, outDir)
		cmd = exec.CommandContext(ctx, filepath.Join(root, binaryPath), "render", "--no-sign", "--jobs", filepath.Join(tmp, "jobs.jsonl"), "--out", outDir, "--fonts-dir", filepath.Join(root, fontsPath))
	}
	cmd.Env = []string{}
	b, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("certd render in the image: %v\n%s", err, b)
	}
	t.Logf("certd render in the image: %s", bytes.TrimSpace(b))

	var pdfs [][]byte
	err = filepath.WalkDir(filepath.Join(root, "tmp", "out"), func(p string, d os.DirEntry, err error) error {
		if err == nil && strings.HasSuffix(p, ".pdf") {
			b, err := os.ReadFile(p)
			pdfs = append(pdfs, b)
			return err
		}
		return err
	})
	if err != nil || len(pdfs) != 2 {
		t.Fatalf("%d certificates (%v), want 2", len(pdfs), err)
	}
	all := bytes.Join(pdfs, nil)
	for _, font := range []string{"HanaMinB", "NotoSansCJK"} {
		if !bytes.Contains(all, []byte(font)) {
			t.Errorf("no certificate uses %s from the image", font)
		}
	}
}

// unpack extracts a layer under root and records its entries by absolute
// path. Paths leaving root are refused.
func unpack(l v1.Layer, root string, files map[string]*tar.Header) (int, error) {
	rc, err := l.Uncompressed()
	if err != nil {
		return 0, err
	}
	defer rc.Close()
	tr := tar.NewReader(rc)
	n := 0
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return n, nil
		}
		if err != nil {
			return n, err
		}
		n++
		name := path.Clean("/" + h.Name)
		if name != "/"+strings.TrimSuffix(h.Name, "/") {
			return n, fmt.Errorf("entry %q is not a clean path", h.Name)
		}
		files[name] = h
		dst := filepath.Join(root, filepath.FromSlash(name))
		switch h.Typeflag {
		case tar.TypeDir:
			err = os.MkdirAll(dst, 0o755)
		case tar.TypeSymlink:
			err = os.Symlink(h.Linkname, dst)
		case tar.TypeReg:
			var f *os.File
			if f, err = os.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_WRONLY, os.FileMode(h.Mode)&0o777); err == nil {
				_, err = io.Copy(f, tr)
				if cerr := f.Close(); err == nil {
					err = cerr
				}
			}
		default:
			err = fmt.Errorf("entry %s: unexpected type %c", name, h.Typeflag)
		}
		if err != nil {
			return n, err
		}
	}
}

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

// TestImageLayout writes an image in the OCI layout format and reads it
// back by its recorded name: the form skopeo, podman and crane take as
// oci:DIR. (A small image: the format, not the contents, is under test.)
func TestImageLayout(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "certd")
	if err := os.WriteFile(bin, []byte("not a real binary"), 0o755); err != nil {
		t.Fatal(err)
	}
	fonts := filepath.Join(dir, "fonts")
	if err := os.MkdirAll(filepath.Join(fonts, "truetype"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(fonts, "truetype", "A.ttf"), []byte("font"), 0o644); err != nil {
		t.Fatal(err)
	}
	work := filepath.Join(dir, "work")
	if err := os.Mkdir(work, 0o755); err != nil {
		t.Fatal(err)
	}
	o := options{Binary: bin, Arch: "amd64", FontsDir: fonts, Work: work, Log: io.Discard}
	img, err := build(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	again, err := build(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	d1, err1 := img.Digest()
	d2, err2 := again.Digest()
	if err1 != nil || err2 != nil || d1 != d2 {
		t.Errorf("two builds from the same files: %s (%v) and %s (%v), want the same digest", d1, err1, d2, err2)
	}
	out := filepath.Join(dir, "oci")
	if err := write(img, "oci", out, "example.org/certd:1"); err != nil {
		t.Fatal(err)
	}
	p, err := layout.FromPath(out)
	if err != nil {
		t.Fatal(err)
	}
	idx, err := p.ImageIndex()
	if err != nil {
		t.Fatal(err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if len(im.Manifests) != 1 || im.Manifests[0].Annotations["org.opencontainers.image.ref.name"] != "example.org/certd:1" {
		t.Fatalf("index %+v: want one image named example.org/certd:1", im.Manifests)
	}
	back, err := p.Image(im.Manifests[0].Digest)
	if err != nil {
		t.Fatal(err)
	}
	cf, err := back.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	checkConfig(t, cf)
	if mt, err := back.MediaType(); err != nil || mt != types.OCIManifestSchema1 {
		t.Errorf("manifest media type %s (%v), want %s", mt, err, types.OCIManifestSchema1)
	}
	layers, err := back.Layers()
	if err != nil {
		t.Fatal(err)
	}
	files := map[string]*tar.Header{}
	for _, l := range layers {
		if _, err := unpack(l, filepath.Join(dir, "root"), files); err != nil {
			t.Fatal(err)
		}
	}
	if h := files["/usr/share/fonts/truetype/A.ttf"]; h == nil || h.Mode != 0o644 {
		t.Errorf("font from -fonts: %+v", h)
	}
	if h := files[binaryPath]; h == nil || h.Mode != 0o755 {
		t.Errorf("binary: %+v", h)
	}
}

// The default font packages are the ones docs/fonts.md tells operators to
// install (and deploy/Dockerfile installs: checked in cmd/certd).
func TestImageFontPackages(t *testing.T) {
	doc, err := os.ReadFile("../../docs/fonts.md")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`apt-get install ([a-z0-9 -]+)`).FindSubmatch(doc)
	if m == nil {
		t.Fatal("docs/fonts.md: no apt-get install line")
	}
	if got := strings.Fields(string(m[1])); !slices.Equal(got, defaultFontPackages) {
		t.Errorf("docs/fonts.md installs %q, the image takes %q", got, defaultFontPackages)
	}
}
