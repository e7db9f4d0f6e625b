package storage_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"

	"github.com/certd-dev/certd/consumer/storage"
)

// newFileStore returns a store on outer/root and the two directories.
func newFileStore(t *testing.T) (st storage.Store, outer, root string) {
	t.Helper()
	outer = t.TempDir()
	root = filepath.Join(outer, "root")
	if err := os.Mkdir(root, 0o755); err != nil {
		t.Fatal(err)
	}
	st, err := storage.Open(bg, "file://"+root)
	if err != nil {
		t.Fatal(err)
	}
	return st, outer, root
}

func TestFileModesAndLayout(t *testing.T) {
	st, _, root := newFileStore(t)
	key := "downloads/" + uuidA + "/Certificate.pdf"
	mustPut(t, st, key, []byte("pdf"), "application/pdf")
	fi, err := os.Lstat(filepath.Join(root, "downloads", uuidA, "Certificate.pdf"))
	if err != nil {
		t.Fatalf("object is not at the layout path: %v", err)
	}
	if !fi.Mode().IsRegular() || fi.Mode().Perm() != 0o644 {
		t.Fatalf("object mode = %v, want a regular file with 0644", fi.Mode())
	}
}

func TestFileDeleteRemovesEmptyDirectories(t *testing.T) {
	st, _, root := newFileStore(t)
	sig := "cert/" + uuidA + "/Certificate.pdf.sig"
	valid := "cert/" + uuidA + "/valid.html"
	deep := "cert/keys/sub/dir/k.asc"
	for _, k := range []string{sig, valid, deep} {
		mustPut(t, st, k, []byte("x"), "")
	}
	exists := func(rel string) bool {
		_, err := os.Lstat(filepath.Join(root, filepath.FromSlash(rel)))
		return err == nil
	}
	if err := st.Delete(bg, sig); err != nil {
		t.Fatal(err)
	}
	if !exists("cert/" + uuidA) {
		t.Fatal("Delete removed a directory that still holds valid.html")
	}
	if err := st.Delete(bg, valid); err != nil {
		t.Fatal(err)
	}
	if exists("cert/" + uuidA) {
		t.Fatal("empty certificate directory left behind after deleting its last file")
	}
	if err := st.Delete(bg, deep); err != nil {
		t.Fatal(err)
	}
	if exists("cert/keys") {
		t.Fatal("empty cert/keys/sub/dir chain left behind")
	}
	if !exists("cert") {
		t.Fatal("the top-level cert/ directory must stay")
	}
	// Deleting a "directory" key is a no-op, not an rmdir.
	mustPut(t, st, valid, []byte("x"), "")
	if err := st.Delete(bg, "cert/"+uuidA); err != nil {
		t.Fatal(err)
	}
	if got := mustGet(t, st, valid); string(got) != "x" {
		t.Fatalf("Delete of the directory key touched its contents: %q", got)
	}
}

// TestFileSymlinksCannotEscape: symlinks placed inside the root that point
// outside it are never followed: nothing outside is read, written, listed
// or deleted.
func TestFileSymlinksCannotEscape(t *testing.T) {
	st, outer, root := newFileStore(t)
	outside := filepath.Join(outer, "outside")
	if err := os.Mkdir(outside, 0o755); err != nil {
		t.Fatal(err)
	}
	secret := filepath.Join(outside, "secret.html")
	if err := os.WriteFile(secret, []byte("secret"), 0o644); err != nil {
		t.Fatal(err)
	}
	mkdir := func(rel string) {
		if err := os.MkdirAll(filepath.Join(root, rel), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	symlink := func(target, rel string) {
		if err := os.Symlink(target, filepath.Join(root, rel)); err != nil {
			t.Fatal(err)
		}
	}
	mkdir("cert/file")
	mkdir("downloads")
	symlink("../../outside", "cert/rel")                            // relative, escaping directory link
	symlink(outside, "cert/abs")                                    // absolute directory link
	symlink("../../../outside/secret.html", "cert/file/valid.html") // escaping file link

	for _, key := range []string{"cert/rel/secret.html", "cert/abs/secret.html", "cert/file/valid.html"} {
		if got, err := st.Get(bg, key); err == nil {
			t.Errorf("Get(%q) read %q through a symlink out of the root", key, got)
		}
		if err := st.Delete(bg, key); err == nil {
			if _, statErr := os.Stat(secret); statErr != nil {
				t.Errorf("Delete(%q) removed a file outside the root", key)
			}
		}
	}
	for _, key := range []string{"cert/rel/new.html", "cert/abs/new.html", "cert/rel/secret.html"} {
		if err := st.Put(bg, key, []byte("pwned"), "text/html"); err == nil {
			t.Errorf("Put(%q) succeeded through a symlink out of the root", key)
		} else if wrapsSentinel(err) {
			// Misconfiguration of the root, not bad input: stays transient.
			t.Errorf("Put(%q) through an escaping symlink is permanent: %v", key, err)
		}
	}
	// A Put onto an escaping file symlink replaces the link, not its target.
	mustPut(t, st, "cert/file/valid.html", []byte("mine"), "text/html")
	if fi, err := os.Lstat(filepath.Join(root, "cert/file/valid.html")); err != nil || !fi.Mode().IsRegular() {
		t.Errorf("after Put the key is %v (err %v), want a regular file", fi.Mode(), err)
	}
	if got := mustList(t, st, "cert/"); !slices.Equal(got, []string{"cert/file/valid.html"}) {
		t.Errorf("List(cert/) = %q, want only the regular file (links skipped)", got)
	}
	entries, _ := os.ReadDir(outside)
	if len(entries) != 1 {
		t.Errorf("outside directory now holds %d entries, want only secret.html", len(entries))
	}
	if got, _ := os.ReadFile(secret); string(got) != "secret" {
		t.Errorf("file outside the root changed: %q", got)
	}

	// The whole top-level namespace being a link out of the root.
	if err := os.Remove(filepath.Join(root, "downloads")); err != nil {
		t.Fatal(err)
	}
	symlink(outside, "downloads")
	if err := st.Put(bg, "downloads/"+uuidA+"/Certificate.pdf", []byte("pwned"), ""); err == nil {
		t.Error("Put through a symlinked downloads/ pointing outside succeeded")
	}
	if got, err := st.List(bg, "downloads/"); err == nil && len(got) > 0 {
		t.Errorf("List(downloads/) followed the link out: %q", got)
	}
	entries, _ = os.ReadDir(outside)
	if len(entries) != 1 {
		t.Errorf("outside directory now holds %d entries, want only secret.html", len(entries))
	}
}

// TestFileSymlinkInsideRootIsFollowed documents the other half: links that
// stay inside the root work.
func TestFileSymlinkInsideRootIsFollowed(t *testing.T) {
	st, _, root := newFileStore(t)
	mustPut(t, st, "cert/real/valid.html", []byte("v"), "")
	if err := os.Symlink("real", filepath.Join(root, "cert", "alias")); err != nil {
		t.Fatal(err)
	}
	if got := mustGet(t, st, "cert/alias/valid.html"); string(got) != "v" {
		t.Fatalf("Get through in-root link = %q", got)
	}
	if err := st.Delete(bg, "cert/alias/valid.html"); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Lstat(filepath.Join(root, "cert", "alias")); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Fatalf("Delete removed the in-root symlink itself (err %v)", err)
	}
}

func TestFileKeyBlockedByFileOrDirectory(t *testing.T) {
	st, _, _ := newFileStore(t)
	mustPut(t, st, "cert/"+uuidA+"/valid.html", []byte("x"), "")
	// A directory where the object should go, and a file where a directory
	// should go: the key cannot exist here, retrying will not help.
	for _, key := range []string{"cert/" + uuidA, "cert/" + uuidA + "/valid.html/x"} {
		err := st.Put(bg, key, []byte("y"), "")
		if !errors.Is(err, storage.ErrInvalidKey) {
			t.Errorf("Put(%q) error = %v, want ErrInvalidKey", key, err)
		}
	}
	if got := mustList(t, st, ""); !slices.Equal(got, []string{"cert/" + uuidA + "/valid.html"}) {
		t.Errorf("List = %q after refused Puts (temp files left?)", got)
	}
}

// TestFilePutDeleteRace: Delete prunes empty directories while other Puts
// create files in them; every Put must still succeed.
func TestFilePutDeleteRace(t *testing.T) {
	st, _, _ := newFileStore(t)
	var wg sync.WaitGroup
	errs := make(chan error, 400)
	for w := range 4 {
		wg.Go(func() {
			for i := range 50 {
				key := fmt.Sprintf("cert/%s/f%d-%d.html", uuidA, w, i)
				if err := st.Put(bg, key, []byte("x"), ""); err != nil {
					errs <- err
				}
				if err := st.Delete(bg, key); err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if got := mustList(t, st, ""); len(got) != 0 {
		t.Errorf("left behind: %q", got)
	}
}

func TestFileListSkipsForeignFiles(t *testing.T) {
	st, _, root := newFileStore(t)
	mustPut(t, st, "cert/"+uuidA+"/valid.html", []byte("x"), "")
	for _, rel := range []string{"cert/" + uuidA + "/.certd-tmp-dead", "cert/has space.html", "cert/.git/config", "other/x", "toplevel.txt"} {
		p := filepath.Join(root, filepath.FromSlash(rel))
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte("foreign"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if got := mustList(t, st, ""); !slices.Equal(got, []string{"cert/" + uuidA + "/valid.html"}) {
		t.Fatalf("List = %q, want only the valid object", got)
	}
}

func TestOpenRejectsBadURLs(t *testing.T) {
	notDir := filepath.Join(t.TempDir(), "f")
	os.WriteFile(notDir, nil, 0o644)
	for _, u := range []string{
		"",
		"/abs/path/without/scheme",
		"file://relative/dir",
		"file:relative",
		"file:///does/not/exist/" + uuidA,
		"file://" + notDir,
		"file:///tmp?x=1",
		"ftp://host/x",
		"s3://",
		"s3:///prefix",
		"s3://bucket/../x",
		"s3://bucket/a//b",
		"s3://bucket/.hidden",
		"s3://user:pass@bucket/x",
	} {
		if st, err := storage.Open(bg, u); err == nil {
			t.Errorf("Open(%q) = %T, want an error", u, st)
		}
	}
	for _, u := range []string{"file://" + t.TempDir(), "file://localhost" + t.TempDir(), "s3://bucket", "s3://bucket/a/b/"} {
		if _, err := storage.Open(bg, u, storage.WithRegion("us-east-1")); err != nil {
			t.Errorf("Open(%q): %v", u, err)
		}
	}
}
