package credential

import (
	"bytes"
	"embed"
	"encoding/json"
	"fmt"
	"sync"

	"github.com/piprate/json-gold/ld"
)

// Context URLs certd signs with. Every one of them is embedded.
const (
	ContextCredentialsV2 = "https://www.w3.org/ns/credentials/v2"
	ContextOB303         = "https://purl.imsglobal.org/spec/ob/v3p0/context-3.0.3.json"
	ContextDIDv1         = "https://www.w3.org/ns/did/v1"
	ContextMultikeyV1    = "https://w3id.org/security/multikey/v1"
)

//go:embed contexts/*.jsonld contexts/*.json
var contextFS embed.FS

var pinnedFiles = map[string]string{
	ContextCredentialsV2: "contexts/credentials-v2.jsonld",
	ContextOB303:         "contexts/ob-context-3.0.3.json",
	ContextDIDv1:         "contexts/did-v1.jsonld",
	ContextMultikeyV1:    "contexts/multikey-v1.jsonld",
}

// PinnedContext returns the embedded bytes of a pinned context, for a
// verifier or test harness that must serve exactly what certd signs with.
func PinnedContext(url string) ([]byte, bool) {
	name, ok := pinnedFiles[url]
	if !ok {
		return nil, false
	}
	b, err := contextFS.ReadFile(name)
	if err != nil {
		return nil, false
	}
	return b, true
}

// PinnedContextURLs lists the URLs the default loader serves.
func PinnedContextURLs() []string {
	out := make([]string, 0, len(pinnedFiles))
	for u := range pinnedFiles {
		out = append(out, u)
	}
	return out
}

// Loader is a JSON-LD document loader that serves only documents it was
// given; it refuses every other URL and never opens a connection.
type Loader struct {
	docs map[string]*ld.RemoteDocument
}

var _ ld.DocumentLoader = (*Loader)(nil)

// NewLoader returns a loader that serves the pinned contexts plus extra
// (URL to JSON bytes), for tests that need other contexts.
func NewLoader(extra map[string][]byte) (*Loader, error) {
	l := &Loader{docs: make(map[string]*ld.RemoteDocument, len(pinnedFiles)+len(extra))}
	for u := range pinnedFiles {
		b, _ := PinnedContext(u)
		if err := l.add(u, b); err != nil {
			return nil, err
		}
	}
	for u, b := range extra {
		if err := l.add(u, b); err != nil {
			return nil, err
		}
	}
	return l, nil
}

func (l *Loader) add(u string, b []byte) error {
	var doc any
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if err := dec.Decode(&doc); err != nil {
		return fmt.Errorf("context %s: %w", u, err)
	}
	l.docs[u] = &ld.RemoteDocument{DocumentURL: u, Document: doc}
	return nil
}

// LoadDocument implements ld.DocumentLoader. The returned document is shared:
// json-gold only reads contexts.
func (l *Loader) LoadDocument(u string) (*ld.RemoteDocument, error) {
	d, ok := l.docs[u]
	if !ok {
		return nil, ld.NewJsonLdError(ld.LoadingDocumentFailed,
			fmt.Sprintf("context %q is not pinned in certd; refusing to fetch it", u))
	}
	return d, nil
}

var (
	defaultLoaderOnce sync.Once
	defaultLoader     *Loader
	defaultLoaderErr  error
)

// DefaultLoader is the loader with only the pinned contexts.
func DefaultLoader() (*Loader, error) {
	defaultLoaderOnce.Do(func() { defaultLoader, defaultLoaderErr = NewLoader(nil) })
	return defaultLoader, defaultLoaderErr
}
