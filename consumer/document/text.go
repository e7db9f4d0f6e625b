package document

import (
	"bytes"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
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
	"github.com/certd-dev/certd/internal/cff"
	"github.com/certd-dev/certd/internal/sfnt"
)

// shapeSize is the size text is shaped at: 1000 units per em, so glyph
// metrics come back as thousandths of an em (in 26.6 fixed point) and scale
// linearly to any point size.
const shapeSize = 1000

// maxTextRunes bounds the work done for one text field; longer input is a
// permanent error rather than minutes of shaping.
const maxTextRunes = 2000

// fontEntry is one font face, loaded and parsed once per process on its
// first use. Its *font.Font is immutable and shared; mutable caches live in
// per-worker faces.
type fontEntry struct {
	idx  int    // index in its library
	uid  uint32 // unique in the process (keys the subset cache)
	name string // font file name, with "#Family" for a face of a collection
	font *font.Font
	upem float64

	sf      *sfnt.Font   // raw table index for per-document subsetting
	cff     *cff.Font    // CFF outlines (OpenType/CFF fonts), else nil
	metrics sfnt.Metrics // for the PDF font descriptor
	psName  string       // PDF base font name (before the subset tag)

	bold       bool // the face is a bold design (else bold text is emboldened)
	hangulOnly bool // the face is used for Hangul only
}

// fontLib is the set of fonts of one font source (fonts directory with
// the embedded fallback). Fonts are loaded lazily, once, and never
// unloaded; entries only grow.
type fontLib struct {
	dir     *fonts.Dir
	mu      sync.Mutex
	entries []*fontEntry             // by idx; guarded by mu
	byName  map[string]*fontEntry    // guarded by mu
	failed  map[string]error         // fonts that did not load, guarded by mu
	cands   map[candKey][]fonts.Face // candidate faces per script, guarded by mu
	workers sync.Pool                // *worker
}

// candKey identifies a candidate list: the fonts tried for a script.
type candKey struct {
	script language.Script
	weight fonts.Weight
	han    fonts.HanStyle
	urdu   bool
}

var (
	entryUIDs atomic.Uint32
	libsMu    sync.Mutex
	libs      = map[string]*fontLib{}
)

// loadFontLib returns the process-wide font library of the fonts
// directories dirs (nil: the system font directories). Nothing is parsed
// here: fonts load on first use.
func loadFontLib(dirs ...string) (*fontLib, error) {
	key := strings.Join(dirs, "\x00")
	if dirs == nil {
		key = "\x01default"
	}
	libsMu.Lock()
	defer libsMu.Unlock()
	if l, ok := libs[key]; ok {
		return l, nil
	}
	l := newFontLib(dirs)
	// the design font must load: without it nothing can be drawn
	if _, err := l.load(fonts.Face{File: fonts.Primary(fonts.Regular)}); err != nil {
		return nil, err
	}
	libs[key] = l
	return l, nil
}

// newFontLib returns an empty library over dirs (see fonts.NewDir).
func newFontLib(dirs []string) *fontLib {
	l := &fontLib{dir: fonts.NewDir(dirs), byName: map[string]*fontEntry{}, failed: map[string]error{}, cands: map[candKey][]fonts.Face{}}
	l.workers.New = func() any { return &worker{lib: l} }
	return l
}

// load returns the entry of face f, loading and parsing it on first use.
func (l *fontLib) load(f fonts.Face) (*fontEntry, error) {
	name := f.File
	if f.Family != "" {
		name += "#" + f.Family
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if e, ok := l.byName[name]; ok {
		return e, nil
	}
	if err, ok := l.failed[name]; ok {
		return nil, err
	}
	e, err := l.parse(name, f)
	if err != nil {
		l.failed[name] = err
		return nil, err
	}
	e.idx = len(l.entries)
	e.uid = entryUIDs.Add(1)
	l.entries = append(l.entries, e)
	l.byName[name] = e
	return e, nil
}

// parse loads face f: from the fonts directory, or embedded when the
// directory has no such file or its file does not parse.
func (l *fontLib) parse(name string, f fonts.Face) (*fontEntry, error) {
	data, err := l.dir.Open(f.File)
	if err != nil {
		return nil, err
	}
	e, err := parseFace(name, f, data)
	if err != nil && l.dir.Origin(f.File) != "embedded" {
		if emb, eerr := fonts.OpenEmbedded(f.File); eerr == nil {
			return parseFace(name, f, emb)
		}
	}
	return e, err
}

func parseFace(name string, f fonts.Face, data []byte) (e *fontEntry, err error) {
	defer func() {
		if p := recover(); p != nil { // a damaged font file must not take the process down
			e, err = nil, fmt.Errorf("parse font %s: %v", name, p)
		}
	}()
	off, err := sfnt.FaceOffset(data, f.Family)
	if err != nil {
		return nil, fmt.Errorf("font %s: %w", name, err)
	}
	dataOff := off
	shapeData := data
	if len(data) > sfnt.BigFont {
		shapeData = sfnt.OutlineFree(data, off)
		off = 0
	}
	lds, err := ot.NewLoaders(bytes.NewReader(shapeData))
	if err != nil {
		return nil, fmt.Errorf("parse font %s: %w", name, err)
	}
	idx := sfnt.FaceIndex(shapeData, off)
	if idx >= len(lds) {
		return nil, fmt.Errorf("parse font %s: face %d of %d", name, idx, len(lds))
	}
	ft, err := font.NewFont(lds[idx])
	if err != nil {
		return nil, fmt.Errorf("parse font %s: %w", name, err)
	}
	sf, err := sfnt.Parse(data, dataOff)
	if err != nil {
		return nil, fmt.Errorf("index font %s: %w", name, err)
	}
	e = &fontEntry{name: name, font: ft, upem: float64(ft.Upem()), sf: sf, metrics: sf.Metrics(),
		psName: psName(name), bold: f.Bold || strings.Contains(f.File, "-Bold."), hangulOnly: f.Hangul}
	if raw := sf.Table("CFF "); raw != nil {
		if e.cff, err = cff.Parse(raw); err != nil {
			return nil, fmt.Errorf("font %s: %w", name, err)
		}
	} else if !sf.TrueType() {
		return nil, fmt.Errorf("font %s: neither TrueType nor CFF outlines", name)
	}
	return e, nil
}

// entryAt returns entry i (entries only grow).
func (l *fontLib) entryAt(i int) *fontEntry {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.entries[i]
}

// candidates returns the faces tried, in order, for text of script s:
// the script's own fonts (Nastaliq first for Urdu, the CJK faces of the
// Han style for Han, kana, Hangul and Bopomofo), then the design font.
// Only file names are looked at here; fonts load in resolve, when a
// character needs them.
func (l *fontLib) candidates(k candKey) []fonts.Face {
	if k.script != language.Han && k.script != language.Hiragana && k.script != language.Katakana &&
		k.script != language.Hangul && k.script != language.Bopomofo {
		k.han = ""
	}
	if k.script != language.Arabic {
		k.urdu = false
	}
	l.mu.Lock()
	c, ok := l.cands[k]
	l.mu.Unlock()
	if ok {
		return c
	}
	var faces []fonts.Face
	add := func(fam string) {
		if f, _, ok := l.dir.File(fam, k.weight); ok {
			faces = append(faces, fonts.Face{File: f})
		}
	}
	switch k.script {
	case language.Latin, language.Greek, language.Cyrillic, language.Common, language.Inherited, language.Unknown:
	case language.Han, language.Hiragana, language.Katakana, language.Hangul, language.Bopomofo:
		faces = append(faces, l.dir.Han(k.han, k.weight)...)
	default:
		if k.urdu {
			add(fonts.Urdu)
		}
		for _, fam := range fonts.Families(k.script) {
			add(fam)
		}
	}
	faces = append(faces, fonts.Face{File: fonts.Primary(k.weight)})
	if k.weight == fonts.Italic {
		faces = append(faces, fonts.Face{File: fonts.Primary(fonts.Regular)})
	}
	// symbols and punctuation Noto Serif lacks (arrows, math, dingbats)
	for _, fam := range fonts.SymbolFamilies {
		add(fam)
	}
	l.mu.Lock()
	l.cands[k] = faces
	l.mu.Unlock()
	return faces
}

// primary returns the design font of weight w.
func (l *fontLib) primary(w fonts.Weight) *fontEntry {
	e, err := l.load(fonts.Face{File: fonts.Primary(w)})
	if err != nil {
		e, _ = l.load(fonts.Face{File: fonts.Primary(fonts.Regular)}) // loaded by loadFontLib
	}
	return e
}

// psName derives a PDF name token from a font name: letters, digits
// and hyphens of the name without its extension.
func psName(file string) string {
	var b []byte
	for _, r := range strings.NewReplacer(".ttf", "", ".ttc", "", ".otf", "").Replace(file) {
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
	faces   []*font.Face // by entry idx, made on first use
	shaper  shaping.HarfbuzzShaper
	seg     shaping.Segmenter
	wrapper shaping.LineWrapper
}

func (l *fontLib) getWorker() *worker  { return l.workers.Get().(*worker) }
func (l *fontLib) putWorker(w *worker) { l.workers.Put(w) }

// face returns the worker's face of entry e.
func (w *worker) face(e *fontEntry) *font.Face {
	for len(w.faces) <= e.idx {
		w.faces = append(w.faces, nil)
	}
	if w.faces[e.idx] == nil {
		w.faces[e.idx] = font.NewFace(e.font)
	}
	return w.faces[e.idx]
}

func (w *worker) entryOf(f *font.Face) *fontEntry {
	for i, face := range w.faces {
		if face == f {
			return w.lib.entryAt(i)
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
	if invisible(r) {
		return true
	}
	if e.cff != nil {
		return gid != 0
	}
	return len(e.sf.Glyph(int(gid))) > 0
}

// hasGlyph reports whether e has a drawable glyph for r.
func (e *fontEntry) hasGlyph(r rune) bool {
	gid, ok := e.font.NominalGlyph(r)
	return ok && e.drawable(gid, r)
}

// invisible reports characters that legitimately draw nothing.
func invisible(r rune) bool {
	return unicode.IsSpace(r) || ignorable(r) || unicode.Is(unicode.Cf, r)
}

// style is what decides the fonts of one text: weight, Han style and
// whether Arabic-script text is Urdu.
type style struct {
	weight fonts.Weight
	han    fonts.HanStyle
	urdu   bool
}

// chainMap resolves a rune to the first candidate font of the current
// run's script that has a glyph for it (shaping.FontmapScript).
type chainMap struct {
	w      *worker
	st     style
	script language.Script
}

func (c *chainMap) SetScript(s language.Script) { c.script = s }

func (c *chainMap) ResolveFace(r rune) *font.Face {
	if e := c.w.lib.resolve(r, c.script, c.st); e != nil {
		return c.w.face(e)
	}
	return c.w.face(c.w.lib.primary(c.st.weight))
}

// resolve returns the first font that draws r in a run of script s: the
// script's candidates, then those of r's own script; nil if none. A font
// is loaded when it is the next candidate to ask; one that fails to load
// is skipped (and remembered as failed).
func (l *fontLib) resolve(r rune, s language.Script, st style) *fontEntry {
	try := func(s language.Script) *fontEntry {
		for _, f := range l.candidates(candKey{script: s, weight: st.weight, han: st.han, urdu: st.urdu}) {
			if e, err := l.load(f); err == nil && e.hasGlyph(r) {
				return e
			}
		}
		return nil
	}
	if e := try(s); e != nil {
		return e
	}
	if rs := language.LookupScript(r); rs != s {
		return try(rs)
	}
	return nil
}

// styleOf decides the fonts of a text: kana makes Han Japanese and Hangul
// Korean, else the configured Han style; Urdu letters select Nastaliq.
func styleOf(runes []rune, w fonts.Weight, han fonts.HanStyle) style {
	st := style{weight: w, han: han}
	if st.han == "" {
		st.han = fonts.DefaultHan
	}
	kana, hangul := false, false
	for _, r := range runes {
		switch language.LookupScript(r) {
		case language.Hiragana, language.Katakana:
			kana = true
		case language.Hangul:
			hangul = true
		}
		if urduLetter(r) {
			st.urdu = true
		}
	}
	switch {
	case kana:
		st.han = fonts.HanJapanese
	case hangul:
		st.han = fonts.HanKorean
	}
	return st
}

// urduLetter reports letters of the Arabic script that Urdu uses and
// Arabic and Persian do not: retroflex ٹ ڈ ڑ, noon ghunna ں, bari ye ے ۓ,
// gol he ہ ۃ and do-chashmi he ھ.
func urduLetter(r rune) bool {
	switch r {
	case 0x0679, 0x0688, 0x0691, 0x06BA, 0x06D2, 0x06D3, 0x06C1, 0x06C3, 0x06BE:
		return true
	}
	return false
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
	// fakeBold: bold was asked for and the font has no bold face, so the
	// glyphs are drawn filled and stroked (emboldened)
	fakeBold bool
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
	MaxLines int     // lines allowed (0 = 1); a text needing more shrinks below MinSize, down to MinSize/2
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

// layout shapes text with the fonts of weight (and the default Han
// style) and fits it; see layoutHan.
func (l *fontLib) layout(text string, weight fonts.Weight, fit Fit) (*textBlock, error) {
	return l.layoutHan(text, weight, fonts.DefaultHan, fit)
}

// layoutHan shapes text and fits it: the largest size up to fit.Size at
// which it fits on one line, but not below fit.MinSize; at the floor it
// wraps onto up to fit.MaxLines lines, and if that is not enough it
// shrinks further (wrapped) down to half of fit.MinSize. han is the Han style for Han-only
// text (kana and Hangul decide it otherwise, see styleOf).
func (l *fontLib) layoutHan(text string, weight fonts.Weight, han fonts.HanStyle, fit Fit) (*textBlock, error) {
	runes := []rune(text)
	if len(runes) == 0 {
		return &textBlock{size: fit.Size}, nil
	}
	if len(runes) > maxTextRunes {
		return nil, fmt.Errorf("%w: %d characters (limit %d)", ErrTextTooLong, len(runes), maxTextRunes)
	}
	key := layoutKey{lib: l, text: text, weight: int(weight), han: han, fit: fit}
	if b, ok := layouts.get(key); ok {
		return b, nil
	}
	b, err := l.layoutRunes(runes, styleOf(runes, weight, han), fit)
	if err == nil {
		layouts.put(key, b)
	}
	return b, err
}

func (l *fontLib) layoutRunes(runes []rune, st style, fit Fit) (*textBlock, error) {
	if err := l.checkCoverage(runes, st); err != nil {
		return nil, err
	}
	w := l.getWorker()
	defer l.putWorker(w)

	rtl := paragraphRTL(runes)
	dir := di.DirectionLTR
	if rtl {
		dir = di.DirectionRTL
	}
	primary := l.primary(st.weight)
	input := shaping.Input{
		Text: runes, RunStart: 0, RunEnd: len(runes),
		Direction: dir, Face: w.face(primary), Size: fixed.I(shapeSize),
		Language: language.DefaultLanguage(),
	}
	items := w.seg.Split(input, &chainMap{w: w, st: st})
	outs := make([]shaping.Output, len(items))
	var total fixed.Int26_6
	for i, it := range items {
		if !complexScript(it.Script) {
			// plain scripts keep one glyph per character, so they stay
			// extractable text (no "fi" ligature drawn as outlines)
			it.FontFeatures = noLigatures
		}
		if it.Script == language.Arabic && st.urdu {
			it.Language = language.NewLanguage("ur")
		}
		outs[i] = w.shaper.Shape(it)
		total += outs[i].Advance
		// a glyph 0 is the font's "missing" box: never draw it.
		e := w.entryOf(outs[i].Face)
		for _, g := range outs[i].Glyphs {
			if (g.GlyphID == 0 || !e.drawable(g.GlyphID, runes[g.TextIndex()]) && g.GlyphsCount() == 1 && g.RunesCount() == 1) &&
				!invisible(runes[g.TextIndex()]) {
				return nil, fmt.Errorf("%w: U+%04X %q has no glyph in %s", ErrUnrenderable,
					runes[g.TextIndex()], string(runes[g.TextIndex()]), e.name)
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
	// the wrapper edits the glyphs it is given (it zeroes the advance of
	// spaces where it breaks), so each try wraps its own copy
	lines, _ := w.wrapper.WrapParagraphF(cfg, maxW, runes, shaping.NewSliceIterator(cloneOutputs(outs)))
	// A text that needs more than maxLines lines at MinSize shrinks further,
	// still wrapped, down to half of MinSize: a long real name (the LMS
	// allows 255 characters, certd 300) is drawn small rather than refused.
	for fit.Width > 0 && len(lines) > maxLines && size-overflowStep >= fit.MinSize/2 {
		size = float64(int((size-overflowStep)*10)) / 10
		maxW = fixed.Int26_6(widthEm(size) * shapeSize * 64)
		lines, _ = w.wrapper.WrapParagraphF(cfg, maxW, runes, shaping.NewSliceIterator(cloneOutputs(outs)))
	}
	if len(lines) > maxLines {
		return nil, fmt.Errorf("%w: needs %d lines at %.1fpt, %d allowed", ErrTextTooLong, len(lines), size, maxLines)
	}
	block := &textBlock{size: size, rtl: rtl}
	for _, ln := range lines {
		tl := w.convertLine(ln, runes)
		for i := range tl.runs {
			tl.runs[i].fakeBold = st.weight == fonts.Bold && !tl.runs[i].font.bold
		}
		block.lines = append(block.lines, tl)
	}
	return block, nil
}

// cloneOutputs copies shaped runs deeply enough for the line wrapper to
// edit the copy.
func cloneOutputs(outs []shaping.Output) []shaping.Output {
	c := make([]shaping.Output, len(outs))
	for i, o := range outs {
		c[i] = o
		c[i].Glyphs = slices.Clone(o.Glyphs)
	}
	return c
}

// overflowStep is how much a wrapped text that still overflows its lines
// shrinks per try, points.
const overflowStep = 0.5

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
// available font can draw. A character of no script of its own (digits,
// punctuation, combining marks) may come from the fonts of the nearest
// letter before it.
func (l *fontLib) checkCoverage(runes []rune, st style) error {
	prev := language.Latin
	for _, r := range runes {
		s := language.LookupScript(r)
		if s.Strong() {
			prev = s
		}
		if r == ' ' || ignorable(r) {
			continue
		}
		if l.resolve(r, prev, st) == nil {
			return fmt.Errorf("%w: U+%04X %q is not covered by any available font", ErrUnrenderable, r, string(r))
		}
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
