package pdfsplice

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/pdfcpu/pdfcpu/pkg/api"
	"github.com/pdfcpu/pdfcpu/pkg/pdfcpu/model"
	"github.com/phpdave11/gofpdf"
)

// gofpdfPage is a one-page PDF as gofpdf writes it, with an (empty)
// /XObject resource dictionary and a page that draws form /Xt.
func gofpdfPage(t *testing.T) []byte {
	pdf := gofpdf.New("P", "mm", "A4", "")
	pdf.SetCompression(false)
	pdf.AddPage()
	pdf.SetCatalogSort(true)
	pdf.Rect(10, 10, 50, 20, "D")
	pdf.RawWriteStr("q /Xt Do Q\n")
	var b bytes.Buffer
	if err := pdf.Output(&b); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// TestSpliceGivesValidPDF: a form appended with Splice is a valid PDF to
// pdfcpu (strict), drawn by the page, and the original objects keep
// their (shifted) offsets.
func TestSpliceGivesValidPDF(t *testing.T) {
	f, err := Parse(gofpdfPage(t))
	if err != nil {
		t.Fatal(err)
	}
	w := &Objects{First: f.Size()}
	w.Stream(" /Type /XObject /Subtype /Form /BBox [0 0 100 100]", []byte("0 0 1 rg 10 10 50 50 re f"))
	out, err := f.Splice(w, "/Xt "+Ref(w.First))
	if err != nil {
		t.Fatal(err)
	}
	model.ConfigPath = "disable" // never read or write a pdfcpu config dir
	conf := model.NewDefaultConfiguration()
	conf.ValidationMode = model.ValidationStrict
	if err := api.Validate(bytes.NewReader(out), conf); err != nil {
		t.Errorf("spliced PDF invalid: %v", err)
	}
	g, err := Parse(out)
	if err != nil || g.Size() != f.Size()+1 {
		t.Errorf("re-parse: size %v, %v", g, err)
	}
}

// TestParseRefusesOtherLayouts: files not laid out as gofpdf writes them
// are refused with ErrLayout, never misread.
func TestParseRefusesOtherLayouts(t *testing.T) {
	page := gofpdfPage(t)
	for name, data := range map[string][]byte{
		"empty":        nil,
		"no startxref": bytes.ReplaceAll(page, []byte("startxref"), []byte("startxxxx")),
		"truncated":    page[:len(page)/2],
		"bad entry":    []byte(strings.Replace(string(page), " 00000 n ", " 00000 x ", 1)),
	} {
		if _, err := Parse(data); !errors.Is(err, ErrLayout) {
			t.Errorf("%s: %v, want ErrLayout", name, err)
		}
	}
}

// TestSpliceDropsTheUnusedDefaultFont: gofpdf's default font, selected but
// never drawn with, is gone from the page (pdffonts would list it as not
// embedded); a font the page really draws with stays. Both results are
// valid PDFs.
func TestSpliceDropsTheUnusedDefaultFont(t *testing.T) {
	for _, draws := range []bool{false, true} {
		pdf := gofpdf.New("P", "mm", "A4", "")
		pdf.SetCompression(false)
		pdf.AddPage()
		pdf.SetFont("Helvetica", "", 10)
		if draws {
			pdf.Text(20, 20, "drawn by the page")
		}
		pdf.RawWriteStr("q /Xt Do Q\n")
		var b bytes.Buffer
		if err := pdf.Output(&b); err != nil {
			t.Fatal(err)
		}
		f, err := Parse(b.Bytes())
		if err != nil {
			t.Fatal(err)
		}
		w := &Objects{First: f.Size()}
		w.Stream(" /Type /XObject /Subtype /Form /BBox [0 0 100 100]", []byte("0 0 1 rg 10 10 50 50 re f"))
		out, err := f.Splice(w, "/Xt "+Ref(w.First))
		if err != nil {
			t.Fatal(err)
		}
		conf := model.NewDefaultConfiguration()
		conf.ValidationMode = model.ValidationStrict
		if err := api.Validate(bytes.NewReader(out), conf); err != nil {
			t.Errorf("draws=%v: spliced PDF invalid: %v", draws, err)
		}
		res := out[f.offsets[2]:]
		res = res[:bytes.Index(res, []byte("endobj"))]
		if has := bytes.Contains(res, []byte("/Font")); has != draws {
			t.Errorf("draws=%v: page resources list a font: %v\n%s", draws, has, res)
		}
	}
}
