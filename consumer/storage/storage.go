// Package storage keeps certificates and their verification files where users
// can fetch them: a local web root (file://) or an S3 bucket (s3://).
//
// All keys are confined to the two public namespaces of the file layout,
// downloads/ and cert/ (see CheckKey), so a hostile or buggy caller can never
// write, read or delete anything else, on either backend.
//
// Durability: Put and PutAll return nil only once what they wrote is
// durable. PutAll stores the files of one certificate together and makes
// the last one (the PDF) visible only after the others are durable; on the
// file backend it shares fsyncs with concurrent calls (group commit, see
// committer), which is what makes bulk issuing fast.
//
// Errors: failures that retrying cannot fix wrap the sentinels ErrInvalidKey
// or ErrNotFound. Every other error, including context cancellation, an
// unreachable S3 endpoint, denied access or a full disk, wraps none of
// them: redelivering the job may succeed once the cause is fixed. What a
// job does about an error is decided in one place, consumer.Classify.
package storage

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Store is where certificates and their verification files live.
//
// Implementations are safe for concurrent use by multiple goroutines.
type Store interface {
	// Put stores data under key, replacing any previous object. Overwriting
	// is the normal case (a redelivered job writes the same files again).
	// Readers never observe a partially written object. contentType is sent
	// as the object's Content-Type on S3; the file backend ignores it (a web
	// server derives it from the file extension). An empty contentType is
	// derived from the key's extension.
	Put(ctx context.Context, key string, data []byte, contentType string) error
	// Get returns the object stored under key, or an error wrapping
	// ErrNotFound.
	Get(ctx context.Context, key string) ([]byte, error)
	// Delete removes the object stored under key. Deleting a missing object
	// is not an error, so a retried removal succeeds.
	Delete(ctx context.Context, key string) error
	// List returns, sorted, the keys of all objects whose key starts with
	// prefix (plain string-prefix semantics, as in S3: "cert/ab" matches
	// "cert/abc/valid.html"). prefix is "" (everything), "downloads/",
	// "cert/", or a valid key optionally followed by "/". List is meant for
	// tools and tests, not for hot paths.
	List(ctx context.Context, prefix string) ([]string, error)
}

// backend does the work of one kind of store (file or S3). The store
// wrapper calls it only with a valid key or prefix and a context that was
// live when the call began, and adds the operation and key to its errors.
type backend interface {
	put(ctx context.Context, key string, data []byte, contentType string) error
	// putAll stores files (valid keys, at least one) with the guarantees
	// of PutAll.
	putAll(ctx context.Context, files []File) error
	get(ctx context.Context, key string) ([]byte, error)
	delete(ctx context.Context, key string) error
	list(ctx context.Context, prefix string) ([]string, error)
}

// store is the Store that Open returns. It keeps what every backend shares
// in one place: key and prefix validation, the context check before any
// I/O, errors of the form `storage <op> "<key>": ...` and the debug log.
type store struct {
	b   backend
	log *slog.Logger
}

// begin reports why a call must not reach the backend: the result of the
// key or prefix check, else a finished context.
func begin(ctx context.Context, checkErr error) error {
	if checkErr != nil {
		return checkErr
	}
	return ctx.Err()
}

// wrap adds the operation and key (or prefix) to err; nil stays nil.
func wrap(op, key string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("storage %s %s: %w", op, quoteShort(key), err)
}

func (s *store) Put(ctx context.Context, key string, data []byte, contentType string) error {
	start := time.Now()
	err := begin(ctx, CheckKey(key))
	if err == nil {
		err = s.b.put(ctx, key, data, contentType)
	}
	if err != nil {
		return wrap("put", key, err)
	}
	if s.log.Enabled(ctx, slog.LevelDebug) {
		s.log.DebugContext(ctx, "storage put", "key", key, "bytes", len(data), "took", time.Since(start))
	}
	return nil
}

// File is one object written by PutAll.
type File struct {
	Key         string
	ContentType string // as for Store.Put
	Data        []byte
}

// PutAll stores the files of one certificate in one go. It returns nil only
// when every file is durable (on disk, or acknowledged by S3). The last file
// becomes visible only once all the others are durable, so a reader that
// finds it (the PDF) finds everything it points to. On error some of the
// files may have been written; writing them again is safe.
//
// On the file backend the files share directories, fsyncs are batched with
// those of concurrent calls (group commit), and each directory is created and
// opened once per call, which makes PutAll much cheaper than one Put per
// file. Stores that do not come from Open get one Put per file, in order.
func PutAll(ctx context.Context, st Putter, files []File) error {
	if b, ok := st.(interface {
		PutAll(context.Context, []File) error
	}); ok {
		return b.PutAll(ctx, files)
	}
	for _, f := range files {
		if err := st.Put(ctx, f.Key, f.Data, f.ContentType); err != nil {
			return err
		}
	}
	return nil
}

// Putter is the part of a Store that PutAll needs.
type Putter interface {
	Put(ctx context.Context, key string, data []byte, contentType string) error
}

// PutAll is the method behind the package function PutAll.
func (s *store) PutAll(ctx context.Context, files []File) error {
	if len(files) == 0 {
		return nil
	}
	start := time.Now()
	for _, f := range files {
		if err := begin(ctx, CheckKey(f.Key)); err != nil {
			return wrap("put", f.Key, err)
		}
	}
	if err := s.b.putAll(ctx, files); err != nil {
		return err // the backend names the key
	}
	if s.log.Enabled(ctx, slog.LevelDebug) {
		s.log.DebugContext(ctx, "storage put all", "files", len(files), "last", files[len(files)-1].Key, "took", time.Since(start))
	}
	return nil
}

func (s *store) Get(ctx context.Context, key string) ([]byte, error) {
	if err := begin(ctx, CheckKey(key)); err != nil {
		return nil, wrap("get", key, err)
	}
	data, err := s.b.get(ctx, key)
	return data, wrap("get", key, err)
}

func (s *store) Delete(ctx context.Context, key string) error {
	if err := begin(ctx, CheckKey(key)); err != nil {
		return wrap("delete", key, err)
	}
	return wrap("delete", key, s.b.delete(ctx, key))
}

func (s *store) List(ctx context.Context, prefix string) ([]string, error) {
	if err := begin(ctx, checkPrefix(prefix)); err != nil {
		return nil, wrap("list", prefix, err)
	}
	keys, err := s.b.list(ctx, prefix)
	return keys, wrap("list", prefix, err)
}

var (
	// ErrNotFound reports that no object exists under a key. It is permanent.
	ErrNotFound = errors.New("storage: object not found")
	// ErrInvalidKey reports a key or prefix outside the allowed layout (see
	// CheckKey), or a key that cannot exist in a file store because a
	// directory (or a file) is in its way. Retrying cannot fix it;
	// consumer.Classify decides what a job does about it.
	ErrInvalidKey = errors.New("storage: invalid key")
)

// MaxKeyLen is the longest key, in bytes, that CheckKey accepts. It leaves
// room for an S3 prefix within S3's 1024-byte key limit.
const MaxKeyLen = 512

// maxSegmentLen is the longest path segment (NAME_MAX on common file systems).
const maxSegmentLen = 255

// topLevel lists the only namespaces keys may live in.
var topLevel = map[string]bool{"downloads": true, "cert": true}

// DIDDocumentKeys are the only keys outside downloads/ and cert/: where a
// did:web resolver fetches the issuer's DID document, relative to the
// verify URL. ".well-known/did.json" serves did:web:<host> (a verify URL
// without a path), "did.json" serves did:web:<host>:<path> (the verify URL
// is https://<host>/<path>). They are allowed as exact keys, nothing below
// or beside them.
var DIDDocumentKeys = []string{".well-known/did.json", "did.json"}

// CheckKey reports whether key may be used as an object key. It returns nil
// or an error wrapping ErrInvalidKey.
//
// A valid key is a clean, relative, slash-separated path of at least two
// segments whose first segment is "downloads" or "cert", for example
// "downloads/<32hex>/Certificate.pdf", "cert/<32hex>/valid.html" or
// "cert/keys/<fingerprint>.asc"; the only other keys are the exact
// DIDDocumentKeys. It is at most MaxKeyLen bytes of UTF-8;
// each segment is non-empty, at most 255 bytes, does not start with "." (no
// ".", "..", or hidden files such as .htaccess), and consists only of
// Unicode letters and digits and the characters - _ . ~ + @ = ,
// Consequently slashes at either end, "//", backslashes, spaces, control
// characters and NUL, and URL-special characters (? # %) are rejected, and
// path.Clean never changes a valid key.
func CheckKey(key string) error {
	if reason := keyProblem(key); reason != "" {
		return fmt.Errorf("%w %s: %s", ErrInvalidKey, quoteShort(key), reason)
	}
	return nil
}

func keyProblem(key string) string {
	switch {
	case key == "":
		return "empty"
	case len(key) > MaxKeyLen:
		return fmt.Sprintf("longer than %d bytes", MaxKeyLen)
	case !utf8.ValidString(key):
		return "not valid UTF-8"
	case strings.HasPrefix(key, "/"):
		return "absolute path"
	}
	if slices.Contains(DIDDocumentKeys, key) {
		return ""
	}
	segs := strings.Split(key, "/")
	if !topLevel[segs[0]] {
		return `not under "downloads/" or "cert/"`
	}
	if len(segs) < 2 {
		return "no object name below the top-level directory"
	}
	for _, seg := range segs[1:] {
		if p := segmentProblem(seg); p != "" {
			return p
		}
	}
	return ""
}

// segmentProblem checks one path segment of a key or of an S3 prefix.
func segmentProblem(seg string) string {
	switch {
	case seg == "":
		return "empty path segment (leading, trailing or double slash)"
	case seg == "." || seg == "..":
		return "dot segment"
	case strings.HasPrefix(seg, "."):
		return "segment starts with a dot"
	case len(seg) > maxSegmentLen:
		return fmt.Sprintf("segment longer than %d bytes", maxSegmentLen)
	}
	for _, r := range seg {
		if unicode.IsLetter(r) || unicode.IsDigit(r) || strings.ContainsRune("-_.~+@=,", r) {
			continue
		}
		return fmt.Sprintf("character %q not allowed", r)
	}
	return ""
}

// checkPrefix validates a List prefix; see Store.List.
func checkPrefix(prefix string) error {
	if prefix == "" {
		return nil
	}
	k := strings.TrimSuffix(prefix, "/")
	if k != prefix && topLevel[k] {
		return nil
	}
	if reason := keyProblem(k); reason != "" {
		return fmt.Errorf("%w: prefix %s: %s", ErrInvalidKey, quoteShort(prefix), reason)
	}
	return nil
}

// quoteShort quotes s for an error message, truncating hostile long input.
func quoteShort(s string) string {
	const max = 80
	if len(s) > max {
		return fmt.Sprintf("%q...(%d bytes)", s[:max], len(s))
	}
	return fmt.Sprintf("%q", s)
}

// Option configures Open.
type Option func(*options)

type options struct {
	endpoint     string
	region       string
	pathStyle    bool
	cacheControl string
	acl          string
	accessKey    string
	secret       string
	logger       *slog.Logger
}

// WithEndpoint (S3 only) sets the endpoint URL (for example
// "http://127.0.0.1:7070" for versitygw or MinIO). Without it the SDK's
// standard AWS endpoint resolution applies.
func WithEndpoint(url string) Option { return func(o *options) { o.endpoint = url } }

// WithRegion (S3 only) sets the region. Without it the SDK's standard chain
// (AWS_REGION, shared config) applies, falling back to "us-east-1".
// versitygw accepts only "us-east-1".
func WithRegion(region string) Option { return func(o *options) { o.region = region } }

// WithPathStyle (S3 only) selects path-style addressing (endpoint/bucket/key), which
// most non-AWS servers, versitygw included, need.
func WithPathStyle(on bool) Option { return func(o *options) { o.pathStyle = on } }

// WithCacheControl sets the Cache-Control header stored with every object
// written to S3 (for example "public, max-age=300"). The file backend
// ignores it; configure the web server instead.
func WithCacheControl(v string) Option { return func(o *options) { o.cacheControl = v } }

// WithObjectACL (S3 only) sets a canned ACL (for example "public-read") on every
// object written to S3. It is off by default because public access is a
// bucket-policy matter: AWS buckets reject ACLs unless object ownership
// allows them, and versitygw ignores them.
func WithObjectACL(acl string) Option { return func(o *options) { o.acl = acl } }

// WithCredentials (S3 only) sets static credentials, mainly for tests. Without it
// the SDK's standard credential chain applies (environment, shared
// files, instance roles).
func WithCredentials(accessKey, secret string) Option {
	return func(o *options) { o.accessKey, o.secret = accessKey, secret }
}

// WithLogger sets the logger for debug traces and warnings. The default is
// slog.Default().
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.logger = l } }

// Open returns the Store described by rawURL:
//
//   - "file:///abs/dir": files under an existing directory (a web root).
//   - "s3://bucket" or "s3://bucket/some/prefix": objects in an S3 bucket,
//     with the optional prefix prepended to every key (and stripped by List).
//
// Open does no network I/O; S3 problems surface on the first operation.
func Open(ctx context.Context, rawURL string, opts ...Option) (Store, error) {
	o := options{logger: slog.Default()}
	for _, opt := range opts {
		opt(&o)
	}
	if o.logger == nil {
		o.logger = slog.Default()
	}
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("storage open: %w", err)
	}
	if u.User != nil || u.RawQuery != "" || u.Fragment != "" || u.Opaque != "" {
		return nil, fmt.Errorf("storage open %s: user info, query, fragment and opaque URLs are not supported", u.Redacted())
	}
	switch u.Scheme {
	case "file":
		return openFile(u, o)
	case "s3":
		return openS3(ctx, u, o)
	default:
		return nil, fmt.Errorf("storage open %s: unsupported scheme %q (want file or s3)", u.Redacted(), u.Scheme)
	}
}
