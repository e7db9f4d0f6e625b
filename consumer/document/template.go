package document

import (
	_ "embed"
	"fmt"
)

// templateLayerYAML is the text layer drawn onto a template PDF that has
// no design of its own: the default layout without frames.
//
//go:embed template_layer.yaml
var templateLayerYAML []byte

// stampOnTemplate puts the certificate layer (a one-page PDF) onto the
// first page of a template PDF.
func stampOnTemplate(tmpl, layerPDF []byte) ([]byte, error) {
	return nil, fmt.Errorf("template PDFs: not implemented yet")
}
