package courses

import (
	"errors"
	"fmt"
	"sort"

	"go.yaml.in/yaml/v3"
)

// maxYAMLNodes bounds alias expansion ("billion laughs") in settings files.
const maxYAMLNodes = 1 << 20

// parseYAMLMap parses a YAML document whose top level is a mapping into
// plain Go values: map[string]any, []any, string, bool (only for YAML
// booleans) and nil. It follows PyYAML, which wrote the files certd reads:
// a repeated key keeps its last value instead of failing, merge keys (<<)
// are honoured, and scalars keep their text as written (VERSION: 1 is "1",
// LONG_COURSE: 6.00 is "6.00").
func parseYAMLMap(b []byte) (map[string]any, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(b, &doc); err != nil {
		return nil, fmt.Errorf("parse YAML: %w", err)
	}
	if doc.Kind == 0 { // empty file
		return map[string]any{}, nil
	}
	w := walker{}
	v, err := w.value(&doc, 0)
	if err != nil {
		return nil, err
	}
	switch m := v.(type) {
	case nil:
		return map[string]any{}, nil
	case map[string]any:
		return m, nil
	}
	return nil, errors.New("parse YAML: the top level must be a mapping")
}

type walker struct{ nodes int }

func (w *walker) value(n *yaml.Node, depth int) (any, error) {
	w.nodes++
	if w.nodes > maxYAMLNodes || depth > 64 {
		return nil, errors.New("parse YAML: document too large or too deeply nested (alias expansion?)")
	}
	switch n.Kind {
	case yaml.DocumentNode:
		if len(n.Content) == 0 {
			return nil, nil
		}
		return w.value(n.Content[0], depth+1)
	case yaml.AliasNode:
		return w.value(n.Alias, depth+1)
	case yaml.ScalarNode:
		switch n.ShortTag() {
		case "!!null":
			return nil, nil
		case "!!bool":
			var b bool
			if err := n.Decode(&b); err == nil {
				return b, nil
			}
		}
		return n.Value, nil
	case yaml.SequenceNode:
		out := make([]any, 0, len(n.Content))
		for _, c := range n.Content {
			v, err := w.value(c, depth+1)
			if err != nil {
				return nil, err
			}
			out = append(out, v)
		}
		return out, nil
	case yaml.MappingNode:
		out := map[string]any{}
		var merged []map[string]any
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, vn := n.Content[i], n.Content[i+1]
			if k.Kind == yaml.ScalarNode && (k.ShortTag() == "!!merge" || (k.Value == "<<" && k.Style == 0)) {
				ms, err := w.mergeSources(vn, depth+1)
				if err != nil {
					return nil, fmt.Errorf("line %d: %w", k.Line, err)
				}
				merged = append(merged, ms...)
				continue
			}
			if k.Kind != yaml.ScalarNode {
				return nil, fmt.Errorf("parse YAML: line %d: mapping keys must be plain text", k.Line)
			}
			v, err := w.value(vn, depth+1)
			if err != nil {
				return nil, err
			}
			out[k.Value] = v // a repeated key: the last one wins, as in PyYAML
		}
		// Explicit keys override merged ones; among merged maps the first wins.
		for _, m := range merged {
			for k, v := range m {
				if _, ok := out[k]; !ok {
					out[k] = v
				}
			}
		}
		return out, nil
	}
	return nil, fmt.Errorf("parse YAML: line %d: unexpected node", n.Line)
}

func (w *walker) mergeSources(n *yaml.Node, depth int) ([]map[string]any, error) {
	if n.Kind == yaml.SequenceNode {
		var out []map[string]any
		for _, c := range n.Content {
			ms, err := w.mergeSources(c, depth+1)
			if err != nil {
				return nil, err
			}
			out = append(out, ms...)
		}
		return out, nil
	}
	v, err := w.value(n, depth)
	if err != nil {
		return nil, err
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, errors.New("parse YAML: a merge (<<) must refer to a mapping")
	}
	return []map[string]any{m}, nil
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
