package storage_test

import (
	"errors"
	"path"
	"strings"
	"testing"

	"github.com/certd-dev/certd/consumer/storage"
)

func TestCheckKeyAcceptsTheLayout(t *testing.T) {
	for _, key := range []string{
		"downloads/" + uuidA + "/Certificate.pdf",
		"cert/" + uuidA + "/Certificate.pdf.sig",
		"cert/" + uuidA + "/valid.html",
		"cert/" + uuidA + "/verify.html",
		"cert/keys/0123456789ABCDEF0123456789ABCDEF01234567.asc",
		"downloads/" + uuidA + "/Chứng_chỉ.pdf", // a configured, non-ASCII file name
		"downloads/" + uuidA + "/Сертификат.pdf",
		"cert/CON", // Windows device names are ordinary names here
		"cert/a-b_c.d~e+f@g=h,i",
		"downloads/" + strings.Repeat("a", 255),
		"cert/" + strings.Repeat("b/", (storage.MaxKeyLen-5)/2) + "c"[:(storage.MaxKeyLen-5)%2],
	} {
		if err := storage.CheckKey(key); err != nil {
			t.Errorf("CheckKey(%.60q) = %v, want nil", key, err)
		}
		if path.Clean(key) != key {
			t.Errorf("accepted key %q is not clean", key)
		}
	}
}

func TestCheckKeyRejects(t *testing.T) {
	for _, key := range append(hostileKeys, "cert/"+strings.Repeat("b/", storage.MaxKeyLen/2)+"c") {
		err := storage.CheckKey(key)
		if !errors.Is(err, storage.ErrInvalidKey) || !wrapsSentinel(err) {
			t.Errorf("CheckKey(%.60q) = %v, want a permanent ErrInvalidKey", key, err)
		}
	}
}

// wrapsSentinel reports whether err wraps one of the package's sentinel
// errors (a failure retrying cannot fix); anything else counts as
// transient where the consumer classifies it (consumer.Classify).
func wrapsSentinel(err error) bool {
	return errors.Is(err, storage.ErrInvalidKey) || errors.Is(err, storage.ErrNotFound)
}

// The DID document keys are the only keys outside downloads/ and cert/, and
// only exactly: nothing beside or below them.
func TestCheckKeyDIDDocument(t *testing.T) {
	for _, key := range []string{".well-known/did.json", "did.json", "cert/status/1.json"} {
		if err := storage.CheckKey(key); err != nil {
			t.Errorf("CheckKey(%q) = %v, want nil", key, err)
		}
	}
	for _, key := range []string{
		".well-known/other.json", ".well-known/did.json/x", ".well-known", ".well-known/",
		"did.json/x", "x/did.json", "did.jsonx", "DID.json", "/did.json", "./did.json",
		"other.json", ".well-known//did.json", ".well-known/../did.json",
	} {
		if err := storage.CheckKey(key); !errors.Is(err, storage.ErrInvalidKey) {
			t.Errorf("CheckKey(%q) = %v, want ErrInvalidKey", key, err)
		}
	}
}
