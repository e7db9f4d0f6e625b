package document

import (
	"bytes"
	_ "embed"
	"fmt"
	"sync"

	"github.com/pdfcpu/pdfcpu/pkg/api"
	"github.com/pdfcpu/pdfcpu/pkg/pdfcpu/model"
	"github.com/pdfcpu/pdfcpu/pkg/pdfcpu/types"
)

// templateLayerYAML is the text layer drawn onto a template PDF that has
// no design of its own: the default layout without frames.
//
//go:embed template_layer.yaml
var templateLayerYAML []byte

var pdfcpuOnce sync.Once

func pdfcpuConf() *model.Configuration {
	pdfcpuOnce.Do(func() { model.ConfigPath = "disable" }) // never read or write a config dir
	conf := model.NewDefaultConfiguration()
	conf.ValidationMode = model.ValidationRelaxed
	return conf
}

// templatePageSize returns the size in mm of a template PDF's first page.
func templatePageSize(tmpl []byte) (w, h float64, err error) {
	dims, err := api.PageDims(bytes.NewReader(tmpl), pdfcpuConf())
	if err != nil {
		return 0, 0, fmt.Errorf("template pdf: %w", err)
	}
	if len(dims) == 0 {
		return 0, 0, fmt.Errorf("template pdf: no pages")
	}
	return dims[0].Width * ptToMM, dims[0].Height * ptToMM, nil
}

// stampOnTemplate puts the certificate layer (a one-page PDF of the same
// size) on top of the first page of a template PDF, with pdfcpu.
func stampOnTemplate(tmpl, layerPDF []byte) ([]byte, error) {
	conf := pdfcpuConf()
	wm, err := api.PDFWatermarkForReadSeeker(bytes.NewReader(layerPDF), 1, "scalefactor:1 abs, rotation:0, position:c", true, false, types.POINTS)
	if err != nil {
		return nil, fmt.Errorf("stamp template: %w", err)
	}
	var out bytes.Buffer
	if err := api.AddWatermarks(bytes.NewReader(tmpl), &out, []string{"1"}, wm, conf); err != nil {
		return nil, fmt.Errorf("stamp template: %w", err)
	}
	return out.Bytes(), nil
}
