package document

import (
	"bytes"
	"fmt"
	"slices"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"

	"github.com/go-text/typesetting/di"
	"github.com/go-text/typesetting/font"
	ot "github.com/go-text/typesetting/font/opentype"
	"github.com/go-text/typesetting/language"
	"github.com/go-text/typesetting/shaping"
	"golang.org/x/image/math/fixed"
	xbidi "golang.org/x/text/unicode/bidi"
	"golang.org/x/text/unicode/norm"

	"github.com/certd-dev/certd/consumer/fonts"
)

// shapeSize is the size text is shaped at: 1000 units per em, so glyph
// metrics come back as thousandths of an em (in 26.6 fixed point) and scale
// linearly to any point size.
const shapeSize = 1000

// maxTextRunes bounds the work done for one text field; longer input is a
// permanent error rather than minutes of shaping.
const maxTextRunes = 2000

// fontEntry is one bundled font, parsed once per process. Its *font.Font is
// immutable and shared; mutable caches live in per-worker faces.
type fontEntry struct {
	idx  int
	name string // bundled file name, e.g. "NotoSerif-Bold.ttf"
	data []byte
	font *font.Font
	upem float64

	sf      *sfnt       // raw table index for per-document subsetting
	metrics fontMetrics // for the PDF font descriptor
	psName  string      // PDF base font name (before the subset tag)

	hangulOnly bool // the Korean font is used for Hangul only
}

// fontLib is the process-wide set of parsed bundled fonts and the fallback
// chains per weight.
type fontLib struct {
	entries []*fontEntry
	byName  map[string]*fontEntry
	chains  [3][]*fontEntry // indexed by fonts.Weight
	workers sync.Pool       // *worker
}

var (
	libOnce sync.Once
	lib     *fontLib
	libErr  error
)

// loadFontLib parses every bundled font exactly once per process.
func loadFontLib() (*fontLib, error) {
	libOnce.Do(func() {
		l := &fontLib{byName: map[string]*fontEntry{}}
		for _, w := range []fonts.Weight{fonts.Regular, fonts.Bold, fonts.Italic} {
			for _, name := range fonts.Chain(w) {
				e, ok := l.byName[name]
				if !ok {
					data, err := fonts.Bytes(name)
					if err != nil {
						libErr = err
						return
					}
					f, err := font.ParseTTF(bytes.NewReader(data))
					if err != nil {
						libErr = fmt.Errorf("parse font %s: %w", name, err)
						return
					}
					sf, err := parseSfnt(data)
					if err != nil {
						libErr = fmt.Errorf("index font %s: %w", name, err)
						return
					}
					e = &fontEntry{idx: len(l.entries), name: name, data: data, font: f.Font, upem: float64(f.Upem()), sf: sf,
						metrics: sf.metrics(), psName: psName(name),
						hangulOnly: name == fonts.Korean[0] || name == fonts.Korean[1]}
					l.entries = append(l.entries, e)
					l.byName[name] = e
				}
				l.chains[w] = append(l.chains[w], e)
			}
		}
		l.workers.New = func() any { return l.newWorker() }
		lib = l
	})
	return lib, libErr
}

// psName derives a PDF name token from a font file name: letters, digits
// and hyphens of the name without its extension.
func psName(file string) string {
	var b []byte
	for _, r := range strings.TrimSuffix(file, ".ttf") {
		if r < 128 && (unicode.IsLetter(r) || unicode.IsDigit(r) || r == '-') {
			b = append(b, byte(r))
		}
	}
	return string(b)
}

// worker holds the non-thread-safe shaping state; one is used by one
// goroutine at a time (pooled).
type worker struct {
	lib     *fontLib
	faces   []*font.Face
	shaper  shaping.HarfbuzzShaper
	seg     shaping.Segmenter
	wrapper shaping.LineWrapper
}

func (l *fontLib) newWorker() *worker {
	w := &worker{lib: l, faces: make([]*font.Face, len(l.entries))}
	for i, e := range l.entries {
		w.faces[i] = font.NewFace(e.font)
	}
	return w
}

func (l *fontLib) getWorker() *worker  { return l.workers.Get().(*worker) }
func (l *fontLib) putWorker(w *worker) { l.workers.Put(w) }

func (w *worker) entryOf(f *font.Face) *fontEntry {
	for i, face := range w.faces {
		if face == f {
			return w.lib.entries[i]
		}
	}
	return nil
}

// drawable reports whether glyph gid really draws rune r: some fonts map
// characters they do not design (NanumSquare maps Hanja to empty glyphs),
// so a visible character needs a glyph with an outline.
func (e *fontEntry) drawable(gid font.GID, r rune) bool {
	if e.hangulOnly && language.LookupScript(r) != language.Hangul {
		return false // keep Han and kana in the CJK font, one style per name
	}
	return len(e.sf.glyph(int(gid))) > 0 || invisible(r)
}

// invisible reports characters that legitimately draw nothing.
func invisible(r rune) bool {
	return unicode.IsSpace(r) || ignorable(r) || unicode.Is(unicode.Cf, r)
}

// chainMap resolves a rune to the first face of a weight's chain that has
// a glyph for it (shaping.Fontmap).
type chainMap struct {
	w     *worker
	chain []*fontEntry
}

func (c chainMap) ResolveFace(r rune) *font.Face {
	for _, e := range c.chain {
		f := c.w.faces[e.idx]
		if gid, ok := f.NominalGlyph(r); ok && e.drawable(gid, r) {
			return f
		}
	}
	return c.w.faces[c.chain[0].idx]
}

// Sanitize prepares untrusted text for drawing: invalid UTF-8 dropped, NFC
// normalised, control characters removed (tabs and newlines become spaces),
// bidi embedding/override/isolate and directional marks removed (the text's
// own characters decide its direction), runs of spaces collapsed, trimmed.
func Sanitize(s string) string {
	s = strings.ToValidUTF8(s, "")
	s = norm.NFC.String(s)
	var b strings.Builder
	b.Grow(len(s))
	space := false
	for _, r := range s {
		switch {
		case r == '\t' || r == '\n' || r == '\r' || r == 0x2028 || r == 0x2029 || unicode.IsSpace(r):
			space = b.Len() > 0
			continue
		case unicode.Is(unicode.Cc, r):
			continue
		case r == 0x200E || r == 0x200F || (r >= 0x202A && r <= 0x202E) || (r >= 0x2066 && r <= 0x2069) || r == 0x061C:
			continue
		case r == 0xFEFF || (r >= 0xFFF9 && r <= 0xFFFB) || r == 0x00AD:
			continue
		case unicode.Is(unicode.Co, r) || unicode.Is(unicode.Cs, r) || r&0xFFFE == 0xFFFE || (r >= 0xFDD0 && r <= 0xFDEF):
			continue
		}
		if space {
			b.WriteByte(' ')
			space = false
		}
		b.WriteRune(r)
	}
	return b.String()
}

// ignorable reports runes that draw nothing and need no glyph (joiners,
// variation selectors): their absence from a font is not a failure.
func ignorable(r rune) bool {
	return r == 0x200C || r == 0x200D || r == 0x034F || r == 0x2060 ||
		(r >= 0xFE00 && r <= 0xFE0F) || (r >= 0xE0100 && r <= 0xE01EF) || r == 0x180E || (r >= 0x180B && r <= 0x180D)
}

// placedGlyph is one glyph of a shaped run, positioned in em units relative
// to the run's left edge and the baseline (y up).
type placedGlyph struct {
	gid  font.GID
	x, y float64
	// code is the rune the glyph nominally stands for (the font's cmap maps
	// code to gid and the glyph is the whole cluster), or -1 when the glyph
	// is the product of shaping (ligature, contextual form, reordering).
	code rune
}

// textRun is a maximal sequence of text in one font, script and direction.
type textRun struct {
	font   *fontEntry
	rtl    bool
	script language.Script
	text   []rune // logical order
	glyphs []placedGlyph
	x      float64 // left edge within the line, em
	width  float64 // em
}

// nominal reports whether every glyph of the run is the plain cmap glyph
// of one rune, so the run can be written as ordinary extractable text.
func (r *textRun) nominal() bool {
	for _, g := range r.glyphs {
		if g.code < 0 {
			return false
		}
	}
	return true
}

// textLine is one line of laid-out text; runs are in visual (left to
// right) order.
type textLine struct {
	runs  []textRun
	width float64 // em
}

// textBlock is a laid-out text field: lines at a chosen point size. It is
// immutable once layout returns it (blocks are cached and shared).
type textBlock struct {
	lines []textLine
	size  float64 // points
	rtl   bool    // paragraph direction
}

// Fit describes how a text field may be fitted into its box.
type Fit struct {
	Width    float64 // mm
	Size     float64 // preferred size, points
	MinSize  float64 // floor the size may shrink to before wrapping, points
	MaxLines int     // lines allowed at MinSize (0 = 1)
}

const ptToMM = 25.4 / 72

// paragraphRTL applies the Unicode bidi rules P2/P3: the first strong
// character decides the paragraph direction (LTR when there is none).
func paragraphRTL(text []rune) bool {
	for _, r := range text {
		p, _ := xbidi.LookupRune(r)
		switch p.Class() {
		case xbidi.L:
			return false
		case xbidi.R, xbidi.AL:
			return true
		}
	}
	return false
}

// layout shapes text with the weight's font chain and fits it: the largest
// size up to fit.Size at which it fits on one line, but not below
// fit.MinSize; at the floor it wraps onto up to fit.MaxLines lines.
func (l *fontLib) layout(text string, weight fonts.Weight, fit Fit) (*textBlock, error) {
	runes := []rune(text)
	if len(runes) == 0 {
		return &textBlock{size: fit.Size}, nil
	}
	if len(runes) > maxTextRunes {
		return nil, fmt.Errorf("%w: %d characters (limit %d)", ErrTextTooLong, len(runes), maxTextRunes)
	}
	key := layoutKey{text: text, weight: int(weight), fit: fit}
	if b, ok := layouts.get(key); ok {
		return b, nil
	}
	b, err := l.layoutRunes(runes, weight, fit)
	if err == nil {
		layouts.put(key, b)
	}
	return b, err
}

func (l *fontLib) layoutRunes(runes []rune, weight fonts.Weight, fit Fit) (*textBlock, error) {
	chain := l.chains[weight]
	if err := checkCoverage(runes, chain); err != nil {
		return nil, err
	}
	w := l.getWorker()
	defer l.putWorker(w)

	rtl := paragraphRTL(runes)
	dir := di.DirectionLTR
	if rtl {
		dir = di.DirectionRTL
	}
	input := shaping.Input{
		Text: runes, RunStart: 0, RunEnd: len(runes),
		Direction: dir, Face: w.faces[chain[0].idx], Size: fixed.I(shapeSize),
		Language: language.DefaultLanguage(),
	}
	items := w.seg.Split(input, chainMap{w: w, chain: chain})
	outs := make([]shaping.Output, len(items))
	var total fixed.Int26_6
	for i, it := range items {
		if !complexScript(it.Script) {
			// plain scripts keep one glyph per character, so they stay
			// extractable text (no "fi" ligature drawn as outlines)
			it.FontFeatures = noLigatures
		}
		outs[i] = w.shaper.Shape(it)
		total += outs[i].Advance
		// a glyph 0 is the font's "missing" box: never draw it.
		e := w.entryOf(outs[i].Face)
		for _, g := range outs[i].Glyphs {
			if (g.GlyphID == 0 || len(e.sf.glyph(int(g.GlyphID))) == 0 && g.GlyphsCount() == 1 && g.RunesCount() == 1) &&
				!invisible(runes[g.TextIndex()]) {
				return nil, fmt.Errorf("%w: U+%04X %q has no glyph in %s", ErrUnrenderable,
					runes[g.TextIndex()], string(runes[g.TextIndex()]), w.entryOf(outs[i].Face).name)
			}
		}
	}
	maxLines := max(fit.MaxLines, 1)
	widthEm := func(sizePt float64) float64 { return fit.Width / (sizePt * ptToMM) }
	oneLine := float64(total) / 64 / shapeSize
	size := fit.Size
	if fit.Width > 0 && oneLine > widthEm(size) {
		size = fit.Width / (oneLine * ptToMM)
		if size < fit.MinSize {
			size = fit.MinSize
		}
		size = float64(int(size*10)) / 10 // stable, readable sizes
	}
	maxW := fixed.Int26_6(1 << 30)
	if fit.Width > 0 {
		maxW = fixed.Int26_6(widthEm(size) * shapeSize * 64)
	}
	cfg := shaping.WrapConfig{Direction: dir, BreakPolicy: shaping.WhenNecessary}
	lines, _ := w.wrapper.WrapParagraphF(cfg, maxW, runes, shaping.NewSliceIterator(outs))
	if len(lines) > maxLines {
		return nil, fmt.Errorf("%w: needs %d lines at %.1fpt, %d allowed", ErrTextTooLong, len(lines), size, maxLines)
	}
	block := &textBlock{size: size, rtl: rtl}
	for _, ln := range lines {
		block.lines = append(block.lines, w.convertLine(ln, runes))
	}
	return block, nil
}

var noLigatures = []shaping.FontFeature{
	{Tag: ot.MustNewTag("liga"), Value: 0},
	{Tag: ot.MustNewTag("clig"), Value: 0},
	{Tag: ot.MustNewTag("dlig"), Value: 0},
}

// complexScript reports scripts whose letters change shape, join, reorder
// or stack marks in context, so ligatures and contextual forms must stay.
func complexScript(s language.Script) bool {
	switch s {
	case language.Latin, language.Greek, language.Cyrillic, language.Armenian, language.Georgian,
		language.Han, language.Hiragana, language.Katakana, language.Hangul, language.Bopomofo,
		language.Common, language.Inherited, language.Unknown, language.Ethiopic:
		return false
	}
	return true
}

// checkCoverage fails with ErrUnrenderable naming the first character no
// font of the chain can draw.
func checkCoverage(runes []rune, chain []*fontEntry) error {
outer:
	for _, r := range runes {
		if r == ' ' || ignorable(r) {
			continue
		}
		for _, e := range chain {
			if gid, ok := e.font.NominalGlyph(r); ok && e.drawable(gid, r) {
				continue outer
			}
		}
		return fmt.Errorf("%w: U+%04X %q is not covered by any bundled font", ErrUnrenderable, r, string(r))
	}
	return nil
}

// convertLine turns shaped output into positioned runs in visual order.
func (w *worker) convertLine(ln shaping.Line, runes []rune) textLine {
	sorted := slices.Clone(ln)
	slices.SortStableFunc(sorted, func(a, b shaping.Output) int { return int(a.VisualIndex - b.VisualIndex) })
	var out textLine
	x := 0.0
	for _, o := range sorted {
		e := w.entryOf(o.Face)
		face := o.Face
		run := textRun{font: e, rtl: o.Direction.Progression() == di.TowardTopLeft, x: x,
			text: slices.Clone(runes[o.Runes.Offset : o.Runes.Offset+o.Runes.Count])}
		if len(run.text) > 0 {
			run.script = language.LookupScript(run.text[0])
			for _, r := range run.text {
				if s := language.LookupScript(r); s != language.Common && s != language.Inherited {
					run.script = s
					break
				}
			}
		}
		pen := 0.0
		for _, g := range o.Glyphs {
			pg := placedGlyph{gid: g.GlyphID, x: pen + em(g.XOffset), y: em(g.YOffset), code: -1}
			if g.RunesCount() == 1 && g.GlyphsCount() == 1 {
				r := runes[g.TextIndex()]
				if gid, ok := face.NominalGlyph(r); ok && gid == g.GlyphID && r <= 0xFFFF && utf8.ValidRune(r) {
					pg.code = r
				}
			}
			run.glyphs = append(run.glyphs, pg)
			pen += em(g.Advance)
		}
		run.width = pen
		x += pen
		out.runs = append(out.runs, run)
	}
	out.width = x
	return out
}

func em(v fixed.Int26_6) float64 { return float64(v) / 64 / shapeSize }
