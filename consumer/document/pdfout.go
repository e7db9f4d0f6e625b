package document

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"slices"
	"strconv"
	"unicode/utf16"

	"github.com/go-text/typesetting/font"

	"github.com/certd-dev/certd/internal/pdfsplice"
)

// Why the text layer is written by this package and spliced into gofpdf's
// output: gofpdf's UTF-8 font path costs milliseconds per font and
// document whatever the subset size (it JSON-encodes and hashes a
// 65,536-entry width table, re-subsets the font, and compresses a 128 KB
// CID-to-glyph map with a fresh zlib writer), which was ~60% of a render.
// Instead, all text and the QR code are drawn into one Form XObject whose
// fonts (CID-keyed TrueType subsets, Identity encoding, widths and a
// ToUnicode map) are written here; gofpdf draws the rest of the page
// (frames, lines, images, metadata), and its finished file gets the form
// and font objects appended, one /XObject entry added to its resource
// dictionary and a rebuilt cross-reference table. The result is an
// ordinary single-revision PDF (internal/pdfsplice).

// formName is the resource name of the text layer on the page.
const formName = "/Xcd"

// fontSubset is one bundled font cut down to a set of glyphs, with
// everything the PDF needs from it, compressed. Subsets are cached per
// process by font and glyphs (see subsets) and never modified.
type fontSubset struct {
	e      *fontEntry
	newID  map[font.GID]uint16 // original glyph id -> subset glyph id
	codes  map[font.GID]rune   // text of glyphs that stand for one character
	widths []float64           // advance per subset glyph, thousandths of an em (as written to /W)
	order  []int               // original glyph id per subset glyph id
	file   []byte              // TrueType subset
	zfile  []byte              // file, zlib-compressed
	zToUni []byte              // ToUnicode CMap, zlib-compressed
}

// docFont is a font subset as used by one document.
type docFont struct {
	*fontSubset
	res string // resource name inside the form, e.g. "C0"
}

// docFonts is the set of fonts one document uses, in order of first use.
type docFonts struct {
	order []*docFont
	by    map[*fontEntry]*docFont
}

// collectFonts gathers the glyphs every text uses and finds or cuts one
// subset per font.
func collectFonts(texts []placedText) (*docFonts, error) {
	type use struct {
		e     *fontEntry
		gids  []int
		codes map[font.GID]rune
	}
	var uses []*use
	byFont := map[*fontEntry]*use{}
	for _, t := range texts {
		for li := range t.block.lines {
			for ri := range t.block.lines[li].runs {
				run := &t.block.lines[li].runs[ri]
				u := byFont[run.font]
				if u == nil {
					u = &use{e: run.font, codes: map[font.GID]rune{}}
					byFont[run.font] = u
					uses = append(uses, u)
				}
				for _, g := range run.glyphs {
					code, ok := u.codes[g.gid]
					if !ok {
						u.gids = append(u.gids, int(g.gid))
					}
					if code <= 0 {
						u.codes[g.gid] = g.code // first character wins; -1 = shaped
					}
				}
			}
		}
	}
	df := &docFonts{by: make(map[*fontEntry]*docFont, len(uses))}
	var key []byte
	for _, u := range uses {
		slices.Sort(u.gids)
		key = binary.BigEndian.AppendUint32(key[:0], u.e.uid)
		for _, g := range u.gids {
			key = binary.BigEndian.AppendUint16(key, uint16(g))
			key = binary.BigEndian.AppendUint32(key, uint32(u.codes[font.GID(g)]))
		}
		sub, ok := subsets.get(string(key))
		if !ok {
			var err error
			if sub, err = newFontSubset(u.e, u.gids, u.codes); err != nil {
				return nil, err
			}
			subsets.put(string(key), sub)
		}
		d := &docFont{fontSubset: sub, res: "C" + strconv.Itoa(len(df.order))}
		df.by[u.e] = d
		df.order = append(df.order, d)
	}
	return df, nil
}

// newFontSubset cuts font e down to gids (sorted) and compresses what the
// PDF needs.
func newFontSubset(e *fontEntry, gids []int, codes map[font.GID]rune) (*fontSubset, error) {
	s := &fontSubset{e: e, newID: make(map[font.GID]uint16, len(gids)), codes: map[font.GID]rune{}}
	for g, c := range codes {
		if c > 0 {
			s.codes[g] = c
		}
	}
	if e.cff != nil {
		s.order = append([]int{0}, slices.DeleteFunc(slices.Clone(gids), func(g int) bool { return g == 0 })...)
		file, err := e.cff.Subset(s.order)
		if err != nil {
			return nil, fmt.Errorf("subset %s: %w", e.name, err)
		}
		s.file = file
	} else {
		s.file, s.order = e.sf.Subset(gids)
	}
	s.widths = make([]float64, len(s.order))
	for nid, gid := range s.order {
		adv, _ := e.sf.Metric(gid)
		s.widths[nid] = roundMilli(float64(adv) * 1000 / e.upem)
		if _, ok := codes[font.GID(gid)]; ok {
			s.newID[font.GID(gid)] = uint16(nid)
		}
	}
	var b bytes.Buffer
	pdfsplice.Deflate(&b, s.file)
	s.zfile = bytes.Clone(b.Bytes())
	b.Reset()
	pdfsplice.Deflate(&b, toUnicode(s))
	s.zToUni = bytes.Clone(b.Bytes())
	return s, nil
}

func roundMilli(v float64) float64 {
	b := appendNum(nil, v)
	f, _ := strconv.ParseFloat(string(b), 64)
	return f
}

// writeLayer writes the form XObject (numbered w.First) holding content,
// and the objects of every font it uses.
func writeLayer(w *pdfsplice.Objects, df *docFonts, content []byte, pageW, pageH float64) {
	n := w.First
	fontNum := n + 1
	var res bytes.Buffer
	res.WriteString(" /Resources <</Font <<")
	for i, d := range df.order {
		res.WriteString(" /" + d.res + " " + pdfsplice.Ref(fontNum+5*i))
	}
	res.WriteString(">> >>")
	dict := " /Type /XObject /Subtype /Form /BBox [0 0 " + string(appendNum(nil, pageW)) + " " + string(appendNum(nil, pageH)) + "]" + res.String()
	w.Stream(dict, content)
	for i, d := range df.order {
		writeFont(w, d, fontNum+5*i)
	}
}

// writeFont writes the five objects of one CID-keyed TrueType font
// starting at object n: Type0 font, CIDFont, descriptor, font file,
// ToUnicode map.
func writeFont(w *pdfsplice.Objects, d *docFont, n int) {
	name := subsetTag(d) + "+" + d.e.psName
	m := d.e.metrics
	b := &w.Buf

	w.Begin()
	b.WriteString("<</Type /Font /Subtype /Type0 /BaseFont /" + name + " /Encoding /Identity-H /DescendantFonts [" +
		pdfsplice.Ref(n+1) + "] /ToUnicode " + pdfsplice.Ref(n+4) + ">>")
	w.End()

	w.Begin()
	sub, gidMap, fileKey := "/CIDFontType2", " /CIDToGIDMap /Identity", "/FontFile2"
	if d.e.cff != nil {
		sub, gidMap, fileKey = "/CIDFontType0", "", "/FontFile3"
	}
	b.WriteString("<</Type /Font /Subtype " + sub + " /BaseFont /" + name +
		" /CIDSystemInfo <</Registry (Adobe) /Ordering (Identity) /Supplement 0>> /FontDescriptor " + pdfsplice.Ref(n+2) +
		gidMap + " /DW 0 /W [0 [")
	var nb []byte
	for i, wd := range d.widths {
		if i > 0 {
			nb = append(nb, ' ')
		}
		nb = appendNum(nb, wd)
	}
	b.Write(nb)
	b.WriteString("]]>>")
	w.End()

	flags := 4 // symbolic
	if m.ItalicAngle != 0 {
		flags |= 64
	}
	w.Begin()
	fmt.Fprintf(b, "<</Type /FontDescriptor /FontName /%s /Flags %d /FontBBox [%d %d %d %d] /ItalicAngle %s"+
		" /Ascent %d /Descent %d /CapHeight %d /StemV 80 %s %s>>",
		name, flags, m.BBox[0], m.BBox[1], m.BBox[2], m.BBox[3], appendNum(nil, m.ItalicAngle),
		m.Ascent, m.Descent, m.CapHeight, fileKey, pdfsplice.Ref(n+3))
	w.End()

	if d.e.cff != nil {
		w.ZStream(" /Subtype /CIDFontType0C", d.zfile)
	} else {
		w.ZStream(" /Length1 "+strconv.Itoa(len(d.file)), d.zfile)
	}
	w.ZStream("", d.zToUni)
}

// subsetTag is the six-letter subset prefix of a font name (PDF 9.6.4),
// derived from the glyphs so that different subsets get different names.
func subsetTag(d *docFont) string {
	h := fnv.New32a()
	var b [2]byte
	for _, gid := range d.order {
		b[0], b[1] = byte(gid>>8), byte(gid)
		h.Write(b[:])
	}
	h.Write([]byte(d.e.name))
	v := h.Sum32()
	var tag [6]byte
	for i := range tag {
		tag[i] = 'A' + byte(v%26)
		v /= 26
	}
	return string(tag[:])
}

const hexDigits = "0123456789ABCDEF"

func appendHex4(b []byte, u uint16) []byte {
	return append(b, hexDigits[u>>12], hexDigits[u>>8&15], hexDigits[u>>4&15], hexDigits[u&15])
}

// toUnicode builds the CMap mapping subset glyph ids to the characters
// they stand for. Glyphs made by shaping have no entry: their runs carry
// an ActualText span instead.
func toUnicode(d *fontSubset) []byte {
	type pair struct {
		nid  uint16
		code rune
	}
	pairs := make([]pair, 0, len(d.codes))
	for gid, code := range d.codes {
		pairs = append(pairs, pair{d.newID[gid], code})
	}
	slices.SortFunc(pairs, func(a, b pair) int { return int(a.nid) - int(b.nid) })
	b := make([]byte, 0, 400+len(pairs)*20)
	b = append(b, "/CIDInit /ProcSet findresource begin\n12 dict begin\nbegincmap\n"+
		"/CIDSystemInfo <</Registry (Adobe) /Ordering (UCS) /Supplement 0>> def\n"+
		"/CMapName /Adobe-Identity-UCS def\n/CMapType 2 def\n"+
		"1 begincodespacerange\n<0000> <FFFF>\nendcodespacerange\n"...)
	for len(pairs) > 0 {
		k := min(len(pairs), 100)
		b = strconv.AppendInt(b, int64(k), 10)
		b = append(b, " beginbfchar\n"...)
		for _, p := range pairs[:k] {
			b = append(b, '<')
			b = appendHex4(b, p.nid)
			b = append(b, "> <"...)
			for _, u := range utf16.Encode([]rune{p.code}) {
				b = appendHex4(b, u)
			}
			b = append(b, ">\n"...)
		}
		b = append(b, "endbfchar\n"...)
		pairs = pairs[k:]
	}
	b = append(b, "endcmap\nCMapName currentdict /CMap defineresource pop\nend\nend\n"...)
	return b
}
