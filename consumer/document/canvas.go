package document

import (
	"bytes"
	"crypto/sha1"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"

	"github.com/phpdave11/gofpdf"

	"github.com/certd-dev/certd/internal/qrcode"
)

// capHeight is the cap height of the primary font (Noto Serif), in em: text
// is centred vertically on its capitals.
const capHeight = 0.714

// lineSpacing is the baseline distance of wrapped lines, in em.
const lineSpacing = 1.2

// drawText draws a laid-out field in its box: lines centred vertically,
// aligned horizontally as the field says.
func (c *canvas) drawText(b *textBlock, t *TextField) {
	if len(b.lines) == 0 {
		return
	}
	emMM := b.size * ptToMM
	total := capHeight*emMM + float64(len(b.lines)-1)*lineSpacing*emMM
	baseline := t.Y + (t.H-total)/2 + capHeight*emMM
	for i := range b.lines {
		ln := &b.lines[i]
		lw := ln.width * emMM
		x := t.X + (t.W-lw)/2
		switch strings.ToLower(t.Align) {
		case "left":
			x = t.X
		case "right":
			x = t.X + t.W - lw
		case "start":
			x = t.X
			if b.rtl {
				x = t.X + t.W - lw
			}
		}
		c.drawLine(ln, b.size, x, baseline, t.col)
		baseline += lineSpacing * emMM
	}
}

// image draws a PNG or JPEG in a box; keepRatio centres it at its aspect
// ratio, otherwise it fills the box. Images are registered under a name
// derived from their content, so output is deterministic.
func (c *canvas) image(data []byte, file string, x, y, w, h float64, keepRatio bool) error {
	tp := "PNG"
	if l := strings.ToLower(file); strings.HasSuffix(l, ".jpg") || strings.HasSuffix(l, ".jpeg") {
		tp = "JPG"
	}
	sum := sha1.Sum(data)
	name := hex.EncodeToString(sum[:8])
	info := c.pdf.RegisterImageOptionsReader(name, gofpdf.ImageOptions{ImageType: tp}, bytes.NewReader(data))
	if info == nil || c.pdf.Err() {
		return fmt.Errorf("image %s: %w", file, c.pdf.Error())
	}
	if keepRatio {
		iw, ih := info.Width(), info.Height()
		if iw > 0 && ih > 0 {
			s := min(w/iw, h/ih)
			nw, nh := iw*s, ih*s
			x, y, w, h = x+(w-nw)/2, y+(h-nh)/2, nw, nh
		}
	}
	c.pdf.ImageOptions(name, x, y, w, h, false, gofpdf.ImageOptions{ImageType: tp}, 0, "")
	return nil
}

// qr draws data as a vector QR code (one filled path of dark modules, with
// the quiet zone inside the square), error correction level M.
func (c *canvas) qr(data string, q *QR) error {
	code, err := qrcode.Encode([]byte(data), -1)
	if err != nil {
		return fmt.Errorf("%w: %d bytes", qrcode.ErrTooLong, len(data))
	}
	n := code.Size()
	const quiet = 2
	mod := q.Size / float64(n+2*quiet) * c.k // points
	x0 := (q.X + quiet*q.Size/float64(n+2*quiet)) * c.k
	y0 := (c.pageH-q.Y)*c.k - quiet*mod
	// One filled path in module units: the matrix maps module (x, y) to
	// the page with y growing downwards, so every rectangle is small
	// integers. Rows overlap by 1% so no hairline gaps show between them.
	b := c.content
	b = append(b, "q\n"...)
	b = appendColor(b, q.col, "rg")
	b = appendNum(b, mod)
	b = append(b, " 0 0 "...)
	b = appendNum(b, -mod)
	b = append(b, ' ')
	b = appendNum(b, x0)
	b = append(b, ' ')
	b = appendNum(b, y0)
	b = append(b, " cm\n"...)
	for yy := 0; yy < n; yy++ {
		for xx := 0; xx < n; {
			if !code.Dark(xx, yy) {
				xx++
				continue
			}
			start := xx
			for xx < n && code.Dark(xx, yy) {
				xx++
			}
			b = strconv.AppendInt(b, int64(start), 10)
			b = append(b, ' ')
			b = strconv.AppendInt(b, int64(yy), 10)
			b = append(b, ' ')
			b = strconv.AppendInt(b, int64(xx-start), 10)
			b = append(b, " 1.01 re\n"...)
		}
	}
	b = append(b, "f Q\n"...)
	c.content = b
	return nil
}
