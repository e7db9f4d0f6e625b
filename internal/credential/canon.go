package credential

import (
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/piprate/json-gold/ld"
)

// ErrDropped is wrapped by every refusal to canonicalize a document whose
// JSON-LD expansion would lose something: a property no context defines, a
// type or id that does not become an absolute IRI. Signing such a document
// would sign less than its JSON shows, and the reference verifier (safe mode)
// refuses it.
var ErrDropped = errors.New("JSON-LD expansion drops part of the document")

// Canonicalizer turns JSON-LD documents into RDFC-1.0 canonical N-Quads,
// with the pinned contexts only. It caches the processed top-level context of
// each distinct @context list it sees (bounded: maxCachedContexts). Safe for
// concurrent use.
type Canonicalizer struct {
	loader ld.DocumentLoader

	mu    sync.Mutex
	cache map[string]*ld.Context
}

const maxCachedContexts = 32

// NewCanonicalizer returns a canonicalizer that resolves contexts with
// loader (use DefaultLoader, or NewLoader in tests).
func NewCanonicalizer(loader ld.DocumentLoader) *Canonicalizer {
	return &Canonicalizer{loader: loader, cache: make(map[string]*ld.Context)}
}

func (c *Canonicalizer) options() *ld.JsonLdOptions {
	opts := ld.NewJsonLdOptions("")
	opts.DocumentLoader = c.loader
	opts.ProcessingMode = ld.JsonLd_1_1
	opts.SafeMode = true
	opts.Algorithm = ld.AlgorithmURDNA2015
	opts.Format = "application/n-quads"
	return opts
}

// contextKey names a @context value made only of URL strings; other forms
// (inline objects) are not cached.
func contextKey(v any) (string, bool) {
	switch t := v.(type) {
	case string:
		return t, true
	case []any:
		parts := make([]string, len(t))
		for i, e := range t {
			s, ok := e.(string)
			if !ok {
				return "", false
			}
			parts[i] = s
		}
		return strings.Join(parts, "\n"), true
	}
	return "", false
}

// activeContext returns the processed context for the document's @context
// and the document without it, when the context can be cached.
func (c *Canonicalizer) activeContext(doc map[string]any, opts *ld.JsonLdOptions) (*ld.Context, map[string]any, error) {
	raw, ok := doc["@context"]
	if !ok {
		return ld.NewContext(nil, opts), doc, nil
	}
	key, cacheable := contextKey(raw)
	if !cacheable {
		return ld.NewContext(nil, opts), doc, nil
	}
	c.mu.Lock()
	ctx, hit := c.cache[key]
	c.mu.Unlock()
	if !hit {
		var err error
		ctx, err = ld.NewContext(nil, opts).Parse(raw)
		if err != nil {
			return nil, nil, fmt.Errorf("process @context: %w", err)
		}
		c.mu.Lock()
		if len(c.cache) < maxCachedContexts {
			c.cache[key] = ctx
		}
		c.mu.Unlock()
	}
	rest := make(map[string]any, len(doc))
	for k, v := range doc {
		if k != "@context" {
			rest[k] = v
		}
	}
	return ctx, rest, nil
}

// Canonicalize returns the RDFC-1.0 canonical N-Quads of doc (a JSON object
// decoded with encoding/json). It refuses, wrapping ErrDropped, a document
// whose expansion drops anything.
func (c *Canonicalizer) Canonicalize(doc map[string]any) (nquads string, err error) {
	// json-gold type-asserts its way through documents; a hostile document
	// (certd verify reads them from anywhere) must give an error, not a crash.
	defer func() {
		if r := recover(); r != nil {
			nquads, err = "", fmt.Errorf("%w: JSON-LD processing failed: %v", ErrDropped, r)
		}
	}()
	opts := c.options()
	activeCtx, body, err := c.activeContext(doc, opts)
	if err != nil {
		return "", err
	}
	api := ld.NewJsonLdApi()
	expanded, err := api.Expand(activeCtx, "", body, opts, false, nil)
	if err != nil {
		var jerr *ld.JsonLdError
		if errors.As(err, &jerr) && jerr.Code == ld.InvalidProperty {
			return "", fmt.Errorf("%w: %v", ErrDropped, err)
		}
		return "", fmt.Errorf("expand: %w", err)
	}
	if err := checkExpanded(expanded, ""); err != nil {
		return "", err
	}
	var list []any
	switch t := expanded.(type) {
	case nil:
		return "", fmt.Errorf("%w: the whole document", ErrDropped)
	case []any:
		list = t
	case map[string]any:
		if g, ok := t["@graph"]; ok && len(t) == 1 {
			list, _ = g.([]any)
		} else {
			list = []any{t}
		}
	}
	dataset, err := c.toDataset(list)
	if err != nil {
		return "", err
	}
	out, err := api.Normalize(dataset, opts)
	if err != nil {
		return "", fmt.Errorf("canonicalize: %w", err)
	}
	s, ok := out.(string)
	if !ok {
		return "", fmt.Errorf("canonicalize: unexpected output %T", out)
	}
	return s, nil
}

// checkExpanded walks an expanded document: every @id must be an absolute
// IRI or a blank node, every @type an absolute IRI; otherwise RDF conversion
// would drop the statement.
func checkExpanded(v any, path string) error {
	switch t := v.(type) {
	case []any:
		for i, e := range t {
			if err := checkExpanded(e, fmt.Sprintf("%s[%d]", path, i)); err != nil {
				return err
			}
		}
	case map[string]any:
		_, isValue := t["@value"]
		for k, e := range t {
			switch k {
			case "@id":
				s, _ := e.(string)
				if !absoluteIRI(s) && !strings.HasPrefix(s, "_:") {
					return fmt.Errorf("%w: %s @id %q is not an absolute IRI", ErrDropped, path, s)
				}
			case "@type":
				if isValue {
					if s, ok := e.(string); ok && s != "@json" && !absoluteIRI(s) {
						return fmt.Errorf("%w: %s datatype %q is not an absolute IRI", ErrDropped, path, s)
					}
					continue
				}
				types, _ := e.([]any)
				if s, ok := e.(string); ok {
					types = []any{s}
				}
				for _, ty := range types {
					s, _ := ty.(string)
					if !absoluteIRI(s) && !strings.HasPrefix(s, "_:") {
						return fmt.Errorf("%w: %s type %q is not defined by any context", ErrDropped, path, s)
					}
				}
			case "@value":
				if e == nil {
					return fmt.Errorf("%w: %s null value", ErrDropped, path)
				}
			default:
				if isValue {
					continue
				}
				if err := checkExpanded(e, path+"/"+k); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// absoluteIRI reports whether s has a scheme (RFC 3987): a letter, then
// letters, digits, '+', '-' or '.', then ':'.
func absoluteIRI(s string) bool {
	i := strings.IndexByte(s, ':')
	if i < 1 {
		return false
	}
	for j := 0; j < i; j++ {
		c := s[j]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z':
		case j > 0 && (c >= '0' && c <= '9' || c == '+' || c == '-' || c == '.'):
		default:
			return false
		}
	}
	return !strings.ContainsAny(s, " <>\"{}|\\^`")
}
