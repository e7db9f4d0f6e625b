package document

import (
	"fmt"
	"math"
	"reflect"
	"strconv"
	"strings"
	"unicode/utf16"
	"unsafe"

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

// canvas draws one page: frames, lines and images through gofpdf; text
// and the QR code into content, the page's text layer (see pdfout.go).
type canvas struct {
	pdf     *gofpdf.Fpdf
	k       float64 // points per mm
	pageH   float64 // mm
	fonts   *docFonts
	content []byte // text layer content stream, PDF user space (points, y up)
}

func newCanvas(pdf *gofpdf.Fpdf, fonts *docFonts) *canvas {
	_, h := pdf.GetPageSize()
	return &canvas{pdf: pdf, k: pdf.GetConversionRatio(), pageH: h, fonts: fonts}
}

// drawLine draws one laid-out line with its left end at x mm and its
// baseline at y mm (gofpdf coordinates, y down). Every glyph is real text:
// glyphs that stand for one character map to it in the font's ToUnicode
// map; runs changed by shaping are wrapped in an ActualText span carrying
// their logical text, so copy/paste and extraction give the characters.
func (c *canvas) drawLine(ln *textLine, size, x, y float64, col rgb) {
	emMM := size * ptToMM
	b := c.content
	b = appendColor(b, col, "rg")
	for i := range ln.runs {
		run := &ln.runs[i]
		d := c.fonts.by[run.font]
		if d == nil || len(run.glyphs) == 0 {
			continue
		}
		rx := x + run.x*emMM
		shaped := !run.nominal()
		if shaped {
			b = append(b, "/Span <</ActualText <"...)
			// edge spaces are gaps, which extraction turns into spaces
			b = appendUTF16Hex(b, []rune(strings.TrimSpace(string(run.text))))
			b = append(b, ">>> BDC\n"...)
		}
		if run.fakeBold {
			// no bold face for this script: fill and stroke the glyphs
			// (rendering mode 2) with a stroke of 3% of the em
			b = appendColor(b, col, "RG")
			b = appendNum(b, size*0.03)
			b = append(b, " w 2 Tr\n"...)
		}
		b = append(b, "BT /"...)
		b = append(b, d.res...)
		b = append(b, ' ')
		b = appendNum(b, size)
		b = append(b, " Tf\n"...)
		// Glyphs go into TJ arrays; a glyph off the pen position of
		// the previous one (kerning, marks) gets a TJ adjustment, or a
		// new text matrix when it is off the baseline.
		inTJ := false
		var penX, penY float64
		for _, g := range run.glyphs {
			if g.code == ' ' {
				continue // a gap is a space to text extraction
			}
			nid := d.newID[g.gid]
			gx := (rx + g.x*emMM) * c.k
			gy := (c.pageH - (y - g.y*emMM)) * c.k
			if inTJ && abs(gy-penY) < 1e-3 {
				if adj := (penX - gx) * 1000 / size; abs(adj) >= 0.0005 {
					b = appendNum(b, adj)
				}
			} else {
				if inTJ {
					b = append(b, "] TJ\n"...)
				}
				b = append(b, "1 0 0 1 "...)
				b = appendNum(b, gx)
				b = append(b, ' ')
				b = appendNum(b, gy)
				b = append(b, " Tm ["...)
				inTJ = true
			}
			b = append(b, '<')
			b = appendHex4(b, nid)
			b = append(b, '>')
			penX, penY = gx+d.widths[nid]*size/1000, gy
		}
		if inTJ {
			b = append(b, "] TJ"...)
		}
		b = append(b, " ET\n"...)
		if run.fakeBold {
			b = append(b, "0 Tr\n"...)
		}
		if shaped {
			b = append(b, "EMC\n"...)
		}
	}
	c.content = b
}

func abs(v float64) float64 { return math.Abs(v) }

func appendColor(b []byte, col rgb, op string) []byte {
	for _, v := range [3]int{col.r, col.g, col.b} {
		b = appendNum(b, float64(v)/255)
		b = append(b, ' ')
	}
	b = append(b, op...)
	return append(b, '\n')
}

// appendUTF16Hex encodes text as the digits of a PDF hex string in
// UTF-16BE with BOM.
func appendUTF16Hex(b []byte, text []rune) []byte {
	b = append(b, "FEFF"...)
	for _, u := range utf16.Encode(text) {
		b = appendHex4(b, u)
	}
	return b
}

// appendNum writes a number with at most 3 decimals, PDF style.
func appendNum(b []byte, v float64) []byte {
	m := math.Round(v * 1000)
	if math.IsNaN(m) || math.Abs(m) > 1e15 {
		return append(b, '0')
	}
	i := int64(m)
	if i < 0 {
		b = append(b, '-')
		i = -i
	}
	b = strconv.AppendInt(b, i/1000, 10)
	if f := i % 1000; f != 0 {
		d := [4]byte{'.', byte('0' + f/100), byte('0' + f/10%10), byte('0' + f%10)}
		n := 4
		for d[n-1] == '0' {
			n--
		}
		b = append(b, d[:n]...)
	}
	return b
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
