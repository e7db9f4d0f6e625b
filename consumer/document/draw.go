package document

import (
	"fmt"
	"math"
	"reflect"
	"strconv"
	"unsafe"

	"github.com/go-text/typesetting/font"
	ot "github.com/go-text/typesetting/font/opentype"
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
	pdf      *gofpdf.Fpdf
	k        float64 // points per mm
	pageH    float64 // mm
	families map[int]string
	buf      []byte
}

func newCanvas(pdf *gofpdf.Fpdf) *canvas {
	_, h := pdf.GetPageSize()
	return &canvas{pdf: pdf, k: pdf.GetConversionRatio(), pageH: h, families: map[int]string{}}
}

// family registers a bundled font with gofpdf on first use in this document.
func (c *canvas) family(e *fontEntry) string {
	if fam, ok := c.families[e.idx]; ok {
		return fam
	}
	fam := "f" + strconv.Itoa(e.idx)
	c.pdf.AddUTF8FontFromBytes(fam, "", e.data)
	c.families[e.idx] = fam
	return fam
}

// drawLine draws one laid-out line with its left end at x mm and its
// baseline at y mm (gofpdf coordinates, y down).
func (c *canvas) drawLine(ln *textLine, size, x, y float64, col rgb) {
	emMM := size * ptToMM
	for i := range ln.runs {
		run := &ln.runs[i]
		rx := x + run.x*emMM
		if run.nominal() {
			c.pdf.SetFont(c.family(run.font), "", size)
			c.pdf.SetTextColor(col.r, col.g, col.b)
			for _, g := range run.glyphs {
				if g.code == ' ' {
					continue
				}
				c.pdf.Text(rx+g.x*emMM, y-g.y*emMM, string(g.code))
			}
			continue
		}
		c.pdf.SetFillColor(col.r, col.g, col.b)
		for _, g := range run.glyphs {
			c.drawGlyphPath(run.font, g.gid, size, rx+g.x*emMM, y-g.y*emMM)
		}
	}
}

// drawGlyphPath fills a glyph's outline, scaled to size points, with its
// origin at (x, y) mm.
func (c *canvas) drawGlyphPath(e *fontEntry, gid font.GID, size, x, y float64) {
	path := e.outline(gid)
	if len(path) == 0 {
		return
	}
	s := size / e.upem
	b := c.buf[:0]
	b = append(b, "q "...)
	b = appendNum(b, s)
	b = append(b, " 0 0 "...)
	b = appendNum(b, s)
	b = append(b, ' ')
	b = appendNum(b, x*c.k)
	b = append(b, ' ')
	b = appendNum(b, (c.pageH-y)*c.k)
	b = append(b, " cm\n"...)
	b = append(b, path...)
	b = append(b, "f Q\n"...)
	c.buf = b
	c.pdf.RawWriteStr(string(b))
}

// outline returns the glyph's outline as PDF path operators in font units,
// computed once per process and glyph.
func (e *fontEntry) outline(gid font.GID) []byte {
	if v, ok := e.outlines.Load(gid); ok {
		return v.([]byte)
	}
	face := font.NewFace(e.font) // short-lived: caches are not shared
	o, ok := face.GlyphDataOutline(gid)
	var b []byte
	if ok {
		var cx, cy float32
		for _, seg := range o.Segments {
			a := seg.Args
			switch seg.Op {
			case ot.SegmentOpMoveTo:
				b = appendPt(b, a[0].X, a[0].Y)
				b = append(b, "m\n"...)
				cx, cy = a[0].X, a[0].Y
			case ot.SegmentOpLineTo:
				b = appendPt(b, a[0].X, a[0].Y)
				b = append(b, "l\n"...)
				cx, cy = a[0].X, a[0].Y
			case ot.SegmentOpQuadTo:
				// quadratic -> cubic: control points at 2/3 towards the quad control
				c1x, c1y := cx+2.0/3*(a[0].X-cx), cy+2.0/3*(a[0].Y-cy)
				c2x, c2y := a[1].X+2.0/3*(a[0].X-a[1].X), a[1].Y+2.0/3*(a[0].Y-a[1].Y)
				b = appendPt(b, c1x, c1y)
				b = appendPt(b, c2x, c2y)
				b = appendPt(b, a[1].X, a[1].Y)
				b = append(b, "c\n"...)
				cx, cy = a[1].X, a[1].Y
			case ot.SegmentOpCubeTo:
				b = appendPt(b, a[0].X, a[0].Y)
				b = appendPt(b, a[1].X, a[1].Y)
				b = appendPt(b, a[2].X, a[2].Y)
				b = append(b, "c\n"...)
				cx, cy = a[2].X, a[2].Y
			}
		}
	}
	if b == nil {
		b = []byte{}
	}
	v, _ := e.outlines.LoadOrStore(gid, b)
	return v.([]byte)
}

func appendPt(b []byte, x, y float32) []byte {
	b = appendNum(b, float64(x))
	b = append(b, ' ')
	b = appendNum(b, float64(y))
	return append(b, ' ')
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
