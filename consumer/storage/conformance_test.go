package storage_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/certd-dev/certd/consumer/storage"
)

var bg = context.Background()

const uuidA = "0123456789abcdef0123456789abcdef"
const uuidB = "fedcba9876543210fedcba9876543210"

func randomBytes(t testing.TB, n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

func mustPut(t testing.TB, st storage.Store, key string, data []byte, ct string) {
	t.Helper()
	if err := st.Put(bg, key, data, ct); err != nil {
		t.Fatalf("Put(%q): %v", key, err)
	}
}

func mustGet(t testing.TB, st storage.Store, key string) []byte {
	t.Helper()
	b, err := st.Get(bg, key)
	if err != nil {
		t.Fatalf("Get(%q): %v", key, err)
	}
	return b
}

func mustList(t testing.TB, st storage.Store, prefix string) []string {
	t.Helper()
	keys, err := st.List(bg, prefix)
	if err != nil {
		t.Fatalf("List(%q): %v", prefix, err)
	}
	return keys
}

func TestRoundTrip(t *testing.T) {
	forEach(t, func(t *testing.T, b backend) {
		e := b.open(t, storage.WithCacheControl("public, max-age=300"))
		allBytes := make([]byte, 0, 256*4)
		for i := range 256 * 4 {
			allBytes = append(allBytes, byte(i))
		}
		cases := []struct {
			key, ct string
			data    []byte
		}{
			{"downloads/" + uuidA + "/Certificate.pdf", "application/pdf", append([]byte("%PDF-1.7\n"), randomBytes(t, 60<<10)...)},
			{"cert/" + uuidA + "/Certificate.pdf.sig", "application/pgp-signature", allBytes},
			{"cert/" + uuidA + "/valid.html", "text/html; charset=utf-8", []byte("<!doctype html><p>Jane Doe — Nguyễn Thị Ánh — 王小明</p>")},
			{"cert/" + uuidA + "/empty.txt", "text/plain; charset=utf-8", []byte{}},
			{"cert/keys/ABCDEF0123456789.asc", "", []byte("-----BEGIN PGP PUBLIC KEY BLOCK-----\n")},
		}
		for _, c := range cases {
			mustPut(t, e.store, c.key, c.data, c.ct)
		}
		for _, c := range cases {
			if got := mustGet(t, e.store, c.key); !bytes.Equal(got, c.data) {
				t.Errorf("Get(%q) = %d bytes, want the %d bytes put", c.key, len(got), len(c.data))
			}
			body, _ := e.fetch(t, c.key)
			if !bytes.Equal(body, c.data) {
				t.Errorf("served %q = %d bytes, want the %d bytes put", c.key, len(body), len(c.data))
			}
		}
		// What a browser gets for the files users open directly.
		for _, c := range cases[:3:3] {
			if c.ct == "application/pgp-signature" {
				continue // file backend: up to the web server's mime table
			}
			_, h := e.fetch(t, c.key)
			if got := h.Get("Content-Type"); got != c.ct {
				t.Errorf("served %q with Content-Type %q, want %q", c.key, got, c.ct)
			}
		}
	})
}

func TestOverwrite(t *testing.T) {
	forEach(t, func(t *testing.T, b backend) {
		e := b.open(t)
		key := "downloads/" + uuidA + "/Certificate.pdf"
		long := bytes.Repeat([]byte("old version "), 10000)
		short := []byte("new, shorter version")
		mustPut(t, e.store, key, long, "application/pdf")
		mustPut(t, e.store, key, short, "application/pdf")
		if got := mustGet(t, e.store, key); !bytes.Equal(got, short) {
			t.Fatalf("after overwrite Get = %q..., want %q (no leftover tail of the old object)", got[:min(len(got), 40)], short)
		}
		if got := mustList(t, e.store, "downloads/"); !slices.Equal(got, []string{key}) {
			t.Fatalf("List after overwrite = %q, want exactly %q", got, key)
		}
	})
}

func TestNotFound(t *testing.T) {
	forEach(t, func(t *testing.T, b backend) {
		e := b.open(t)
		mustPut(t, e.store, "cert/"+uuidA+"/valid.html", []byte("x"), "text/html")
		for _, key := range []string{
			"cert/" + uuidB + "/valid.html",     // never written
			"cert/" + uuidA,                     // a "directory", not an object
			"cert/" + uuidA + "/valid.html/sub", // below an object
		} {
			_, err := e.store.Get(bg, key)
			if !errors.Is(err, storage.ErrNotFound) {
				t.Errorf("Get(%q) error = %v, want ErrNotFound", key, err)
			}
			if !wrapsSentinel(err) {
				t.Errorf("%v wraps no sentinel", err)
			}
			if err != nil && !strings.Contains(err.Error(), key) {
				t.Errorf("error %q does not name the key %q", err, key)
			}
		}
	})
}

func TestDelete(t *testing.T) {
	forEach(t, func(t *testing.T, b backend) {
		e := b.open(t)
		pdf := "downloads/" + uuidA + "/Certificate.pdf"
		keep := "downloads/" + uuidB + "/Certificate.pdf"
		mustPut(t, e.store, pdf, []byte("pdf"), "application/pdf")
		mustPut(t, e.store, keep, []byte("other"), "application/pdf")
		for i := range 2 { // second delete: already gone, still fine
			if err := e.store.Delete(bg, pdf); err != nil {
				t.Fatalf("Delete #%d: %v", i+1, err)
			}
			if _, err := e.store.Get(bg, pdf); !errors.Is(err, storage.ErrNotFound) {
				t.Fatalf("Get after Delete: error = %v, want ErrNotFound", err)
			}
		}
		if err := e.store.Delete(bg, "cert/"+uuidB+"/never-written.html"); err != nil {
			t.Fatalf("Delete of a never-written key: %v", err)
		}
		if got := mustGet(t, e.store, keep); string(got) != "other" {
			t.Fatalf("unrelated object changed: %q", got)
		}
		if got := mustList(t, e.store, ""); !slices.Equal(got, []string{keep}) {
			t.Fatalf("List after Delete = %q, want [%q]", got, keep)
		}
	})
}

func TestList(t *testing.T) {
	forEach(t, func(t *testing.T, b backend) {
		e := b.open(t)
		keys := []string{
			"cert/" + uuidA + "/Certificate.pdf.sig",
			"cert/" + uuidA + "/valid.html",
			"cert/" + uuidA + "/verify.html",
			"cert/" + uuidA[:30] + "ff/valid.html",
			"cert/" + uuidB + "/valid.html",
			"cert/keys/ABCDEF.asc",
			"downloads/" + uuidA + "/Certificate.pdf",
			"downloads/" + uuidB + "/Certificate.pdf",
		}
		for _, i := range []int{5, 2, 7, 0, 4, 1, 6, 3} { // write out of order
			mustPut(t, e.store, keys[i], []byte(keys[i]), "")
		}
		tests := []struct {
			prefix string
			want   []string
		}{
			{"", keys},
			{"cert/", keys[:6]},
			{"downloads/", keys[6:]},
			{"cert/" + uuidA + "/", keys[:3]},
			{"cert/" + uuidA, keys[:3]},                  // string prefix: not uuidA[:30]+"ff"
			{"cert/" + uuidA[:30], keys[:4]},             // string prefix across directories
			{"cert/" + uuidA + "/v", keys[1:3]},          // partial file name
			{"cert/" + uuidA + "/valid.html", keys[1:2]}, // a key is a prefix of itself
			{"cert/keys/", keys[5:6]},
			{"downloads/" + strings.Repeat("0", 32) + "/", []string{}},
			{"cert/nothing-here", []string{}},
		}
		for _, tt := range tests {
			got := mustList(t, e.store, tt.prefix)
			if got == nil {
				t.Errorf("List(%q) = nil, want a non-nil (possibly empty) slice", tt.prefix)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("List(%q) =\n  %q\nwant\n  %q", tt.prefix, got, tt.want)
			}
		}
		// Every listed key is usable as is.
		for _, k := range mustList(t, e.store, "") {
			if got := mustGet(t, e.store, k); string(got) != k {
				t.Errorf("Get(listed %q) = %q", k, got)
			}
		}
	})
}

// hostileKeys must be refused by every operation.
var hostileKeys = []string{
	"",
	"../x",
	"../../etc/passwd",
	"/etc/passwd",
	"/downloads/x",
	"downloads/../../x",
	"downloads/../cert/x",
	"cert/a/../../x",
	"cert/a/..",
	"cert/./a",
	"./cert/a",
	"downloads\\x",
	"downloads/..\\..\\x",
	"C:\\Windows\\x",
	"downloads/a\x00b",
	"downloads/a\nb",
	"downloads/a\rb",
	"downloads/\x1b[31m",
	"downloads/a\x7fb",
	"downloads/" + strings.Repeat("a", 10000),
	"cert/" + strings.Repeat("b", 256) + "/x",
	"other/x",
	"tmp/x",
	"downloads",
	"cert",
	"downloads/",
	"cert/" + uuidA + "/",
	"downloads//x",
	"downloads/x//y",
	"downloads/.htaccess",
	"cert/.well-known/x",
	"cert/a/.certd-tmp-1234",
	"downloads/%2e%2e/x",
	"downloads/a b.pdf",
	"downloads/a?b",
	"downloads/a#b",
	"downloads/a:b",
	"downloads/\xff\xfe",
	"downloads/a\u202eb", // right-to-left override
	"Downloads/x",
	" downloads/x",
}

func TestKeyConfinement(t *testing.T) {
	forEach(t, func(t *testing.T, b backend) {
		e := b.open(t)
		for _, key := range hostileKeys {
			name := fmt.Sprintf("%.40q", key)
			checkInvalid := func(op string, err error) {
				t.Helper()
				if !errors.Is(err, storage.ErrInvalidKey) {
					t.Errorf("%s(%s) error = %v, want ErrInvalidKey", op, name, err)
				}
				if !wrapsSentinel(err) {
					t.Errorf("%s(%s): wraps no sentinel", op, name)
				}
				if err != nil && len(err.Error()) > 400 {
					t.Errorf("%s(%s): error message is %d bytes; hostile input must be truncated", op, name, len(err.Error()))
				}
			}
			checkInvalid("CheckKey", storage.CheckKey(key))
			checkInvalid("Put", e.store.Put(bg, key, []byte("pwned"), "text/plain"))
			_, err := e.store.Get(bg, key)
			checkInvalid("Get", err)
			checkInvalid("Delete", e.store.Delete(bg, key))
		}
		for _, prefix := range []string{"/", "../", "..", "other/", "cert", "downloads", "cert//", "cert/./",
			"cert/../", "cert/a/../../", "/cert/", "cert\\", "cert/\x00", "cert/.", "downloads/.."} {
			if _, err := e.store.List(bg, prefix); !errors.Is(err, storage.ErrInvalidKey) {
				t.Errorf("List(%q) error = %v, want ErrInvalidKey", prefix, err)
			}
		}
		if all := e.everything(t); len(all) != 0 {
			t.Fatalf("hostile keys left objects behind: %q", all)
		}
	})
}

func TestConcurrentPutSameKey(t *testing.T) {
	forEach(t, func(t *testing.T, b backend) {
		e := b.open(t)
		key := "downloads/" + uuidA + "/Certificate.pdf"
		const writers = 8
		payloads := make([][]byte, writers)
		for i := range payloads {
			// Different length and content per writer, so a mix is detectable.
			payloads[i] = bytes.Repeat([]byte{byte('a' + i)}, 60<<10+i*1000)
		}
		var wg sync.WaitGroup
		errs := make(chan error, writers)
		for i := range writers {
			wg.Go(func() {
				errs <- e.store.Put(bg, key, payloads[i], "application/pdf")
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Errorf("concurrent Put: %v", err)
			}
		}
		got := mustGet(t, e.store, key)
		if !slices.ContainsFunc(payloads, func(p []byte) bool { return bytes.Equal(p, got) }) {
			t.Fatalf("after concurrent Puts the object (%d bytes, starts %q) is none of the written ones", len(got), got[:min(len(got), 8)])
		}
		if all := e.everything(t); !slices.Equal(all, []string{e.inside + key}) {
			t.Fatalf("storage holds %q, want only %q (no temp files)", all, e.inside+key)
		}
	})
}

func TestReadersNeverSeePartialObjects(t *testing.T) {
	forEach(t, func(t *testing.T, b backend) {
		e := b.open(t)
		key := "downloads/" + uuidA + "/Certificate.pdf"
		a := bytes.Repeat([]byte("A"), 512<<10)
		bb := bytes.Repeat([]byte("B"), 300<<10)
		mustPut(t, e.store, key, a, "application/pdf")
		done := make(chan struct{})
		var reads sync.WaitGroup
		bad := make(chan string, 4)
		for range 2 {
			reads.Go(func() {
				for {
					select {
					case <-done:
						return
					default:
					}
					got, err := e.store.Get(bg, key)
					if err != nil {
						bad <- fmt.Sprintf("Get during overwrites: %v", err)
						return
					}
					if !bytes.Equal(got, a) && !bytes.Equal(got, bb) {
						bad <- fmt.Sprintf("reader saw a partial object: %d bytes", len(got))
						return
					}
				}
			})
		}
		for i := range 40 {
			data := a
			if i%2 == 0 {
				data = bb
			}
			mustPut(t, e.store, key, data, "application/pdf")
		}
		close(done)
		reads.Wait()
		close(bad)
		for msg := range bad {
			t.Error(msg)
		}
	})
}

func TestCanceledContext(t *testing.T) {
	forEach(t, func(t *testing.T, b backend) {
		e := b.open(t)
		key := "cert/" + uuidA + "/valid.html"
		ctx, cancel := context.WithCancel(bg)
		cancel()
		check := func(op string, err error) {
			t.Helper()
			if !errors.Is(err, context.Canceled) {
				t.Errorf("%s with canceled context: error = %v, want context.Canceled", op, err)
			}
			if wrapsSentinel(err) {
				t.Errorf("%s: a canceled context must not be permanent", op)
			}
		}
		check("Put", e.store.Put(ctx, key, []byte("x"), "text/html"))
		if all := e.everything(t); len(all) != 0 {
			t.Errorf("Put with canceled context wrote %q", all)
		}
		mustPut(t, e.store, key, []byte("x"), "text/html")
		_, err := e.store.Get(ctx, key)
		check("Get", err)
		check("Delete", e.store.Delete(ctx, key))
		_, err = e.store.List(ctx, "")
		check("List", err)
		if got := mustGet(t, e.store, key); string(got) != "x" {
			t.Errorf("object changed by canceled calls: %q", got)
		}
	})
}
