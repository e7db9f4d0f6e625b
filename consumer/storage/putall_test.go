package storage_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/certd-dev/certd/consumer/storage"
)

// certFiles are the four files of one signed certificate, PDF last.
func certFiles(t testing.TB, download, verify string) []storage.File {
	return []storage.File{
		{Key: "cert/" + verify + "/Certificate.pdf.sig", ContentType: "application/pgp-signature", Data: randomBytes(t, 500)},
		{Key: "cert/" + verify + "/valid.html", ContentType: "text/html; charset=utf-8", Data: randomBytes(t, 5<<10)},
		{Key: "cert/" + verify + "/verify.html", ContentType: "text/html; charset=utf-8", Data: randomBytes(t, 8<<10)},
		{Key: "downloads/" + download + "/Certificate.pdf", ContentType: "application/pdf", Data: randomBytes(t, 60<<10)},
	}
}

func hexID(i int) string { return fmt.Sprintf("%032x", i) }

// TestPutAllRoundTrip: every file of a certificate written with PutAll is
// readable afterwards, on both backends, also when concurrent calls share
// commits, and writing a certificate again replaces its files.
func TestPutAllRoundTrip(t *testing.T) {
	forEach(t, func(t *testing.T, b backend) {
		e := b.open(t)
		const n = 24
		certs := make([][]storage.File, n)
		var wg sync.WaitGroup
		errs := make(chan error, n)
		for i := range n {
			certs[i] = certFiles(t, hexID(2*i), hexID(2*i+1))
			wg.Go(func() { errs <- storage.PutAll(bg, e.store, certs[i]) })
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
		again := certFiles(t, hexID(0), hexID(1))
		if err := storage.PutAll(bg, e.store, again); err != nil {
			t.Fatal(err)
		}
		certs[0] = again
		for _, c := range certs {
			for _, f := range c {
				if got := mustGet(t, e.store, f.Key); !bytes.Equal(got, f.Data) {
					t.Fatalf("%s: got %d bytes, not what was written", f.Key, len(got))
				}
			}
		}
		if got := len(mustList(t, e.store, "")); got != 4*n {
			t.Errorf("List has %d objects, want %d", got, 4*n)
		}
	})
}

// TestPutAllRefusesBadKeys: one invalid key fails the whole call before
// anything is written.
func TestPutAllRefusesBadKeys(t *testing.T) {
	forEach(t, func(t *testing.T, b backend) {
		e := b.open(t)
		files := certFiles(t, uuidA, uuidB)
		files[1].Key = "cert/../etc/passwd"
		if err := storage.PutAll(bg, e.store, files); !errors.Is(err, storage.ErrInvalidKey) {
			t.Fatalf("PutAll error = %v, want ErrInvalidKey", err)
		}
		if got := mustList(t, e.store, ""); len(got) != 0 {
			t.Errorf("files written despite an invalid key: %q", got)
		}
	})
}

// TestFilePutAllBlockedLeavesNoTemporaryFiles: a directory in the way of
// the last file fails the call as permanent, and no temporary file is left
// in any directory.
func TestFilePutAllBlockedLeavesNoTemporaryFiles(t *testing.T) {
	st, _, root := newFileStore(t)
	files := certFiles(t, uuidA, uuidB)
	if err := os.MkdirAll(filepath.Join(root, filepath.FromSlash(files[3].Key)), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := storage.PutAll(bg, st, files); !errors.Is(err, storage.ErrInvalidKey) {
		t.Fatalf("PutAll error = %v, want ErrInvalidKey", err)
	}
	for _, dir := range []string{"cert/" + uuidB, "downloads/" + uuidA} {
		ents, err := os.ReadDir(filepath.Join(root, dir))
		if err != nil {
			t.Fatal(err)
		}
		for _, ent := range ents {
			if ent.Name()[0] == '.' {
				t.Errorf("temporary file %s/%s left behind", dir, ent.Name())
			}
		}
	}
}

// TestFilePutAllLastFileComesLast: whenever a reader finds the last file
// (the PDF) of a certificate, it finds all the others too.
func TestFilePutAllLastFileComesLast(t *testing.T) {
	st, _, root := newFileStore(t)
	const n = 40
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		defer close(done)
		for i := range n {
			if err := storage.PutAll(bg, st, certFiles(t, hexID(2*i), hexID(2*i+1))); err != nil {
				t.Error(err)
				return
			}
		}
	})
	exists := func(rel string) bool {
		_, err := os.Stat(filepath.Join(root, rel))
		return err == nil
	}
	checked := 0
	for stop := false; !stop; {
		select {
		case <-done:
			stop = true // one last pass below
		default:
		}
		for i := range n {
			if !exists("downloads/" + hexID(2*i) + "/Certificate.pdf") {
				continue
			}
			checked++
			for _, name := range []string{"Certificate.pdf.sig", "valid.html", "verify.html"} {
				if !exists("cert/" + hexID(2*i+1) + "/" + name) {
					t.Fatalf("PDF %d visible before its %s", i, name)
				}
			}
		}
	}
	wg.Wait()
	if checked < n {
		t.Fatalf("checked %d PDFs, want at least %d", checked, n)
	}
}

// TestPutAllFallsBackToPut: a Store that is not from Open (a wrapper) gets
// one Put per file, in order.
func TestPutAllFallsBackToPut(t *testing.T) {
	st, _, _ := newFileStore(t)
	rec := &recordingStore{Store: st}
	files := certFiles(t, uuidA, uuidB)
	if err := storage.PutAll(bg, rec, files); err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, f := range files {
		want = append(want, f.Key)
	}
	if !slices.Equal(rec.keys, want) {
		t.Errorf("Put order %q, want %q", rec.keys, want)
	}
}

type recordingStore struct {
	storage.Store
	keys []string
}

func (r *recordingStore) Put(ctx context.Context, key string, data []byte, ct string) error {
	r.keys = append(r.keys, key)
	return r.Store.Put(ctx, key, data, ct)
}

// TestFilePutAllRedeliverySweepsCrashRemains: a delivery of a job again
// (same keys) replaces the files and removes the temporary files a crashed
// writer left in its directories, but not a recent one that may belong to
// a writer still at work.
func TestFilePutAllRedeliverySweepsCrashRemains(t *testing.T) {
	st, _, root := newFileStore(t)
	if err := storage.PutAll(bg, st, certFiles(t, uuidA, uuidB)); err != nil {
		t.Fatal(err)
	}
	stale := filepath.Join(root, "cert", uuidB, ".certd-tmp-0123456789ab-1")
	recent := filepath.Join(root, "downloads", uuidA, ".certd-tmp-0123456789ab-2")
	for _, p := range []string{stale, recent} {
		if err := os.WriteFile(p, []byte("partial"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	old := time.Now().Add(-10 * time.Minute)
	if err := os.Chtimes(stale, old, old); err != nil {
		t.Fatal(err)
	}
	again := certFiles(t, uuidA, uuidB)
	if err := storage.PutAll(bg, st, again); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(stale); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("temporary file of a crashed writer left behind: %v", err)
	}
	if _, err := os.Stat(recent); err != nil {
		t.Errorf("recent temporary file removed: %v", err)
	}
	for _, f := range again {
		got, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(f.Key)))
		if err != nil || !bytes.Equal(got, f.Data) {
			t.Errorf("%s: not the redelivered content (err %v)", f.Key, err)
		}
	}
}

// TestFilePutAllConcurrentDeliveries: deliveries of one job written at the
// same time (a redelivery while the first is still writing) all succeed,
// and each key ends up holding one of the written versions whole, with no
// temporary file left.
func TestFilePutAllConcurrentDeliveries(t *testing.T) {
	st, _, root := newFileStore(t)
	const jobs, copies = 20, 3
	var wg sync.WaitGroup
	written := make([][][]storage.File, jobs)
	for j := range jobs {
		written[j] = make([][]storage.File, copies)
		for c := range copies {
			written[j][c] = certFiles(t, hexID(2*j), hexID(2*j+1))
		}
	}
	for j := range jobs {
		for c := range copies {
			wg.Go(func() {
				if err := storage.PutAll(bg, st, written[j][c]); err != nil {
					t.Error(err)
				}
			})
		}
	}
	wg.Wait()
	for j := range jobs {
		for i, f := range written[j][0] {
			got, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(f.Key)))
			if err != nil {
				t.Fatal(err)
			}
			if !slices.ContainsFunc(written[j], func(v []storage.File) bool { return bytes.Equal(v[i].Data, got) }) {
				t.Errorf("%s holds none of the written versions", f.Key)
			}
			ents, _ := os.ReadDir(filepath.Dir(filepath.Join(root, filepath.FromSlash(f.Key))))
			for _, e := range ents {
				if strings.HasPrefix(e.Name(), ".") {
					t.Errorf("temporary file %s left in %s", e.Name(), path.Dir(f.Key))
				}
			}
		}
	}
}

// TestFileDeleteSweepsCrashRemains: removing a certificate whose directory
// holds a crashed writer's temporary file removes the directory too.
func TestFileDeleteSweepsCrashRemains(t *testing.T) {
	st, _, root := newFileStore(t)
	files := certFiles(t, uuidA, uuidB)
	if err := storage.PutAll(bg, st, files); err != nil {
		t.Fatal(err)
	}
	stale := filepath.Join(root, "downloads", uuidA, ".certd-tmp-0123456789ab-1")
	if err := os.WriteFile(stale, []byte("partial"), 0o644); err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-10 * time.Minute)
	if err := os.Chtimes(stale, old, old); err != nil {
		t.Fatal(err)
	}
	if err := st.Delete(bg, files[3].Key); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "downloads", uuidA)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("certificate directory left behind: %v", err)
	}
}
