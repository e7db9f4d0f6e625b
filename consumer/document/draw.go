package document

import (
	"fmt"
	"math"
	"reflect"
	"slices"
	"strconv"
	"unicode/utf16"
	"unsafe"

	"github.com/go-text/typesetting/font"
	"github.com/johnfercher/maroto/v2/pkg/core"
	"github.com/phpdave11/gofpdf"
)

// gofpdfOf returns the gofpdf document behind a maroto v2 provider.
//
// maroto's core.Provider hides its engine, but a certificate needs what the
// provider does not offer: per-run fonts, glyph positions from a shaper and
// glyph outlines drawn as paths. maroto v2.3.3's gofpdf provider keeps the
// engine in its unexported field "fpdf"; we read it by reflection. A maroto
// upgrade that changes this fails loudly here (and in the tests), never
// silently.
func gofpdfOf(p core.Provider) (*gofpdf.Fpdf, error) {
	v := reflect.ValueOf(p)
	if v.Kind() != reflect.Pointer || v.Elem().Kind() != reflect.Struct {
		return nil, fmt.Errorf("maroto provider %T: not a struct pointer", p)
	}
	f := v.Elem().FieldByName("fpdf")
	if !f.IsValid() || !f.CanAddr() {
		return nil, fmt.Errorf("maroto provider %T: no fpdf field", p)
	}
	f = reflect.NewAt(f.Type(), unsafe.Pointer(f.UnsafeAddr())).Elem()
	pdf, ok := f.Interface().(*gofpdf.Fpdf)
	if !ok || pdf == nil {
		return nil, fmt.Errorf("maroto provider %T: fpdf is %T, not *gofpdf.Fpdf", p, f.Interface())
	}
	return pdf, nil
}

// canvas draws laid-out text and shapes onto one gofpdf page.
type canvas struct {
	pdf   *gofpdf.Fpdf
	k     float64 // points per mm
	pageH float64 // mm
	fonts *docFonts
	buf   []byte
}

func newCanvas(pdf *gofpdf.Fpdf, fonts *docFonts) *canvas {
	_, h := pdf.GetPageSize()
	return &canvas{pdf: pdf, k: pdf.GetConversionRatio(), pageH: h, fonts: fonts}
}

// docFonts is the set of glyphs one document uses, per font, and the code
// each glyph is written with.
type docFonts struct {
	order []*fontEntry
	codes map[*fontEntry]map[font.GID]rune
}

// puaStart is the first private-use code given to shaped glyphs, which
// have no character of their own.
const puaStart = 0xE000

func collectFonts(texts []placedText) (*docFonts, error) {
	df := &docFonts{codes: map[*fontEntry]map[font.GID]rune{}}
	each := func(fn func(e *fontEntry, g *placedGlyph)) {
		for _, t := range texts {
			for li := range t.block.lines {
				for ri := range t.block.lines[li].runs {
					run := &t.block.lines[li].runs[ri]
					for gi := range run.glyphs {
						fn(run.font, &run.glyphs[gi])
					}
				}
			}
		}
	}
	each(func(e *fontEntry, g *placedGlyph) {
		m, ok := df.codes[e]
		if !ok {
			m = map[font.GID]rune{}
			df.codes[e] = m
			df.order = append(df.order, e)
		}
		if _, ok := m[g.gid]; !ok && g.code > 0 {
			m[g.gid] = g.code
		}
	})
	var err error
	each(func(e *fontEntry, g *placedGlyph) {
		m := df.codes[e]
		if _, ok := m[g.gid]; !ok {
			next := rune(puaStart + len(m))
			if next > 0xF8FF {
				err = fmt.Errorf("%w: too many distinct glyphs", ErrTextTooLong)
				return
			}
			m[g.gid] = next
		}
	})
	return df, err
}

// register cuts each used font down to the document's glyphs and adds it
// to gofpdf.
func (df *docFonts) register(pdf *gofpdf.Fpdf) error {
	for _, e := range df.order {
		var gl []subsetGlyph
		for gid, code := range df.codes[e] {
			gl = append(gl, subsetGlyph{gid: int(gid), code: code})
		}
		slices.SortFunc(gl, func(a, b subsetGlyph) int { return a.gid - b.gid }) // deterministic output
		sub, err := e.sf.subsetFont(gl)
		if err != nil {
			return fmt.Errorf("subset %s: %w", e.name, err)
		}
		pdf.AddUTF8FontFromBytes(family(e), "", sub)
	}
	return pdf.Error()
}

func family(e *fontEntry) string { return "f" + strconv.Itoa(e.idx) }

// drawLine draws one laid-out line with its left end at x mm and its
// baseline at y mm (gofpdf coordinates, y down). Every glyph is real text;
// runs changed by shaping are wrapped in an ActualText span carrying their
// logical text, so copy/paste and extraction give the characters.
func (c *canvas) drawLine(ln *textLine, size, x, y float64, col rgb) {
	emMM := size * ptToMM
	c.pdf.SetTextColor(col.r, col.g, col.b)
	for i := range ln.runs {
		run := &ln.runs[i]
		rx := x + run.x*emMM
		c.pdf.SetFont(family(run.font), "", size)
		shaped := !run.nominal()
		if shaped {
			c.pdf.RawWriteStr("/Span <</ActualText <" + utf16Hex(run.text) + ">>> BDC\n")
		}
		codes := c.fonts.codes[run.font]
		for _, g := range run.glyphs {
			code := g.code
			if code < 0 {
				code = codes[g.gid]
			}
			if code == ' ' || code <= 0 {
				continue
			}
			c.pdf.Text(rx+g.x*emMM, y-g.y*emMM, string(code))
		}
		if shaped {
			c.pdf.RawWriteStr("EMC\n")
		}
	}
}

// utf16Hex encodes text as a PDF hex string in UTF-16BE with BOM.
func utf16Hex(text []rune) string {
	const hexd = "0123456789ABCDEF"
	b := []byte("FEFF")
	for _, u := range utf16.Encode(text) {
		b = append(b, hexd[u>>12], hexd[u>>8&15], hexd[u>>4&15], hexd[u&15])
	}
	return string(b)
}

// appendNum writes a number with at most 3 decimals, PDF style.
func appendNum(b []byte, v float64) []byte {
	if math.Abs(v-math.Round(v)) < 1e-4 {
		return strconv.AppendInt(b, int64(math.Round(v)), 10)
	}
	return strconv.AppendFloat(b, math.Round(v*1000)/1000, 'f', -1, 64)
}

// rgb is a colour with 0..255 components.
type rgb struct{ r, g, b int }

func parseColor(s string) (rgb, error) {
	if s == "" {
		return rgb{0x22, 0x22, 0x22}, nil
	}
	if len(s) != 7 || s[0] != '#' {
		return rgb{}, fmt.Errorf("colour %q: want #RRGGBB", s)
	}
	v, err := strconv.ParseUint(s[1:], 16, 32)
	if err != nil {
		return rgb{}, fmt.Errorf("colour %q: %w", s, err)
	}
	return rgb{int(v >> 16 & 0xff), int(v >> 8 & 0xff), int(v & 0xff)}, nil
}
