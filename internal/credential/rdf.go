package credential

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"

	"github.com/piprate/json-gold/ld"
)

// toDataset converts an expanded document to an RDF dataset, as json-gold's
// ToRDF does, except that it refuses (ErrDropped) every statement json-gold
// would silently drop (relative IRIs, http(s) IRIs json-gold deems invalid,
// JSON literals, base directions), and it remembers IRI validity across calls.
func (c *Canonicalizer) toDataset(expanded []any) (*ld.RDFDataset, error) {
	issuer := ld.NewIdentifierIssuer("_:b")
	nodeMap := map[string]any{"@default": map[string]any{}}
	api := ld.NewJsonLdApi()
	if _, err := api.GenerateNodeMap(expanded, nodeMap, "@default", issuer, "", "", nil); err != nil {
		return nil, fmt.Errorf("node map: %w", err)
	}
	ds := ld.NewRDFDataset()
	for graphName, g := range nodeMap {
		if graphName != "@default" && ld.IsRelativeIri(graphName) {
			return nil, fmt.Errorf("%w: graph name %q", ErrDropped, graphName)
		}
		graph := g.(map[string]any)
		quads := make([]*ld.Quad, 0, 4*len(graph))
		for id, n := range graph {
			subject, err := c.node(id)
			if err != nil {
				return nil, err
			}
			node := n.(map[string]any)
			for property, vals := range node {
				var values []any
				var predicate ld.Node
				switch {
				case property == "@type":
					values, _ = vals.([]any)
					predicate = ld.NewIRI(ld.RDFType)
				case ld.IsKeyword(property):
					continue
				default:
					if strings.HasPrefix(property, "_:") {
						return nil, fmt.Errorf("%w: blank node property %q", ErrDropped, property)
					}
					p, err := c.node(property)
					if err != nil {
						return nil, err
					}
					predicate = p
					values, _ = vals.([]any)
				}
				for _, item := range values {
					var object ld.Node
					object, quads, err = c.object(item, issuer, graphName, quads)
					if err != nil {
						return nil, err
					}
					quads = append(quads, ld.NewQuad(subject, predicate, object, graphName))
				}
			}
		}
		ds.Graphs[graphName] = quads
	}
	blanks := map[string]struct{}{}
	for _, quads := range ds.Graphs {
		for _, q := range quads {
			for _, n := range []ld.Node{q.Subject, q.Object, q.Graph} {
				if b, ok := n.(ld.BlankNode); ok {
					blanks[b.Attribute] = struct{}{}
				}
			}
		}
	}
	if len(blanks) > MaxBlankNodes {
		return nil, fmt.Errorf("%w: %d blank nodes, more than %d", ErrTooComplex, len(blanks), MaxBlankNodes)
	}
	return ds, nil
}

// MaxBlankNodes bounds the blank nodes of a document certd canonicalizes:
// RDFC-1.0's cost can grow exponentially with many indistinguishable blank
// nodes, and certd verifies documents from anywhere. A certd credential has
// fewer than ten.
const MaxBlankNodes = 64

// ErrTooComplex is returned for documents beyond MaxBlankNodes.
var ErrTooComplex = errors.New("JSON-LD document too complex to canonicalize")

func (c *Canonicalizer) node(id string) (ld.Node, error) {
	if strings.HasPrefix(id, "_:") {
		return ld.NewBlankNode(id), nil
	}
	if !c.validIRI(id) {
		return nil, fmt.Errorf("%w: IRI %q is not absolute or not valid", ErrDropped, id)
	}
	return ld.NewIRI(id), nil
}

// maxIRICache bounds the remembered IRI validity results.
const maxIRICache = 4096

var iriCache sync.Map // string -> bool
var iriCacheSize struct {
	sync.Mutex
	n int
}

// validIRI is json-gold's test (absolute, and an http(s) IRI must pass its
// URL check), remembered across calls up to maxIRICache entries.
func (c *Canonicalizer) validIRI(s string) bool {
	if v, ok := iriCache.Load(s); ok {
		return v.(bool)
	}
	ok := absoluteIRI(s) && ld.IsAbsoluteIri(s)
	if ok && (strings.HasPrefix(s, "http://") || strings.HasPrefix(s, "https://")) {
		ok = ld.IsURL(s)
	}
	iriCacheSize.Lock()
	if iriCacheSize.n < maxIRICache {
		iriCacheSize.n++
		iriCache.Store(s, ok)
	}
	iriCacheSize.Unlock()
	return ok
}

func (c *Canonicalizer) object(item any, issuer *ld.IdentifierIssuer, graph string, quads []*ld.Quad) (ld.Node, []*ld.Quad, error) {
	if s, isString := item.(string); isString { // a type IRI
		n, err := c.node(s)
		return n, quads, err
	}
	m, isMap := item.(map[string]any)
	if !isMap {
		return nil, quads, fmt.Errorf("%w: unexpected %T in node map", ErrDropped, item)
	}
	if value, ok := m["@value"]; ok {
		n, err := c.literal(m, value)
		return n, quads, err
	}
	if list, ok := m["@list"]; ok {
		items, _ := list.([]any)
		return c.list(items, issuer, graph, quads)
	}
	id, _ := m["@id"].(string)
	n, err := c.node(id)
	return n, quads, err
}

func (c *Canonicalizer) literal(m map[string]any, value any) (ld.Node, error) {
	if _, ok := m["@direction"]; ok {
		return nil, fmt.Errorf("%w: @direction is not supported", ErrDropped)
	}
	dt, _ := m["@type"].(string)
	if dt == "@json" || dt == ld.RDFJSONLiteral {
		return nil, fmt.Errorf("%w: JSON literals are not supported", ErrDropped)
	}
	if dt != "" && !c.validIRI(dt) {
		return nil, fmt.Errorf("%w: datatype %q", ErrDropped, dt)
	}
	switch v := value.(type) {
	case bool:
		if dt == "" {
			dt = ld.XSDBoolean
		}
		return ld.NewLiteral(strconv.FormatBool(v), dt, ""), nil
	case float64, json.Number:
		f, _ := v.(float64)
		if n, isNum := v.(json.Number); isNum {
			var err error
			if f, err = n.Float64(); err != nil {
				return nil, fmt.Errorf("%w: number %s", ErrDropped, n)
			}
		}
		if f != float64(int64(f)) || dt == ld.XSDDouble {
			if dt == "" {
				dt = ld.XSDDouble
			}
			return ld.NewLiteral(ld.GetCanonicalDouble(f), dt, ""), nil
		}
		if dt == "" {
			dt = ld.XSDInteger
		}
		return ld.NewLiteral(fmt.Sprintf("%d", int64(f)), dt, ""), nil
	case string:
		if lang, ok := m["@language"].(string); ok {
			return ld.NewLiteral(v, ld.RDFLangString, lang), nil
		}
		if dt == "" {
			dt = ld.XSDString
		}
		return ld.NewLiteral(v, dt, ""), nil
	}
	return nil, fmt.Errorf("%w: value of type %T", ErrDropped, value)
}

func (c *Canonicalizer) list(items []any, issuer *ld.IdentifierIssuer, graph string, quads []*ld.Quad) (ld.Node, []*ld.Quad, error) {
	first, rest, nilIRI := ld.NewIRI(ld.RDFFirst), ld.NewIRI(ld.RDFRest), ld.NewIRI(ld.RDFNil)
	if len(items) == 0 {
		return nilIRI, quads, nil
	}
	head := ld.NewBlankNode(issuer.GetId(""))
	subj := ld.Node(head)
	for i, it := range items {
		var obj ld.Node
		var err error
		obj, quads, err = c.object(it, issuer, graph, quads)
		if err != nil {
			return nil, quads, err
		}
		var next ld.Node = nilIRI
		if i < len(items)-1 {
			next = ld.NewBlankNode(issuer.GetId(""))
		}
		quads = append(quads, ld.NewQuad(subj, first, obj, graph), ld.NewQuad(subj, rest, next, graph))
		subj = next
	}
	return head, quads, nil
}
