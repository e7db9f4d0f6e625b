package document

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"slices"
	"strconv"
	"sync"
	"unicode/utf16"

	"github.com/go-text/typesetting/font"
	"github.com/klauspost/compress/zlib"
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
// ordinary single-revision PDF.

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
	deflate(&b, s.file)
	s.zfile = bytes.Clone(b.Bytes())
	b.Reset()
	deflate(&b, toUnicode(s))
	s.zToUni = bytes.Clone(b.Bytes())
	return s, nil
}

func roundMilli(v float64) float64 {
	b := appendNum(nil, v)
	f, _ := strconv.ParseFloat(string(b), 64)
	return f
}

// zlibPool reuses compressors: a new zlib writer allocates and clears
// about a megabyte. klauspost/compress (already in the module graph via
// NATS) is ~35% faster than compress/zlib on these small streams.
var zlibPool = sync.Pool{New: func() any {
	w, _ := zlib.NewWriterLevel(nil, zlib.BestSpeed)
	return w
}}

// deflate appends the zlib-compressed data to dst.
func deflate(dst *bytes.Buffer, data []byte) {
	w := zlibPool.Get().(*zlib.Writer)
	w.Reset(dst)
	w.Write(data)
	w.Close()
	w.Reset(nil)
	zlibPool.Put(w)
}

// objWriter writes numbered PDF objects, recording their offsets.
type objWriter struct {
	buf     bytes.Buffer
	first   int   // number of the first object
	offsets []int // offset in buf of each object, from first
	tmp     bytes.Buffer
}

func (w *objWriter) begin() {
	w.offsets = append(w.offsets, w.buf.Len())
	w.buf.WriteString(strconv.Itoa(w.first + len(w.offsets) - 1))
	w.buf.WriteString(" 0 obj\n")
}

func (w *objWriter) end() { w.buf.WriteString("\nendobj\n") }

// stream compresses data and writes it as a stream object; dict is its
// dictionary's entries without /Length and /Filter.
func (w *objWriter) stream(dict string, data []byte) {
	w.tmp.Reset()
	deflate(&w.tmp, data)
	w.zstream(dict, w.tmp.Bytes())
}

// zstream writes zlib-compressed data as a stream object.
func (w *objWriter) zstream(dict string, z []byte) {
	w.begin()
	fmt.Fprintf(&w.buf, "<<%s /Filter /FlateDecode /Length %d>>\nstream\n", dict, len(z))
	w.buf.Write(z)
	w.buf.WriteString("\nendstream")
	w.end()
}

func ref(n int) string { return strconv.Itoa(n) + " 0 R" }

// writeLayer writes the form XObject (numbered w.first) holding content,
// and the objects of every font it uses.
func writeLayer(w *objWriter, df *docFonts, content []byte, pageW, pageH float64) {
	n := w.first
	fontNum := n + 1
	var res bytes.Buffer
	res.WriteString(" /Resources <</Font <<")
	for i, d := range df.order {
		res.WriteString(" /" + d.res + " " + ref(fontNum+5*i))
	}
	res.WriteString(">> >>")
	dict := " /Type /XObject /Subtype /Form /BBox [0 0 " + string(appendNum(nil, pageW)) + " " + string(appendNum(nil, pageH)) + "]" + res.String()
	w.stream(dict, content)
	for i, d := range df.order {
		writeFont(w, d, fontNum+5*i)
	}
}

// writeFont writes the five objects of one CID-keyed TrueType font
// starting at object n: Type0 font, CIDFont, descriptor, font file,
// ToUnicode map.
func writeFont(w *objWriter, d *docFont, n int) {
	name := subsetTag(d) + "+" + d.e.psName
	m := d.e.metrics
	b := &w.buf

	w.begin()
	b.WriteString("<</Type /Font /Subtype /Type0 /BaseFont /" + name + " /Encoding /Identity-H /DescendantFonts [" +
		ref(n+1) + "] /ToUnicode " + ref(n+4) + ">>")
	w.end()

	w.begin()
	sub, gidMap, fileKey := "/CIDFontType2", " /CIDToGIDMap /Identity", "/FontFile2"
	if d.e.cff != nil {
		sub, gidMap, fileKey = "/CIDFontType0", "", "/FontFile3"
	}
	b.WriteString("<</Type /Font /Subtype " + sub + " /BaseFont /" + name +
		" /CIDSystemInfo <</Registry (Adobe) /Ordering (Identity) /Supplement 0>> /FontDescriptor " + ref(n+2) +
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
	w.end()

	flags := 4 // symbolic
	if m.ItalicAngle != 0 {
		flags |= 64
	}
	w.begin()
	fmt.Fprintf(b, "<</Type /FontDescriptor /FontName /%s /Flags %d /FontBBox [%d %d %d %d] /ItalicAngle %s"+
		" /Ascent %d /Descent %d /CapHeight %d /StemV 80 %s %s>>",
		name, flags, m.BBox[0], m.BBox[1], m.BBox[2], m.BBox[3], appendNum(nil, m.ItalicAngle),
		m.Ascent, m.Descent, m.CapHeight, fileKey, ref(n+3))
	w.end()

	if d.e.cff != nil {
		w.zstream(" /Subtype /CIDFontType0C", d.zfile)
	} else {
		w.zstream(" /Length1 "+strconv.Itoa(len(d.file)), d.zfile)
	}
	w.zstream("", d.zToUni)
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

// errPDFLayout means gofpdf's output did not have the structure the
// splice relies on (a gofpdf upgrade); never expected at run time.
var errPDFLayout = errors.New("unexpected gofpdf output layout")

// pdfFile is gofpdf's finished output with its cross-reference table
// parsed.
type pdfFile struct {
	data    []byte
	offsets []int  // by object number; [0] unused
	xref    int    // offset of the "xref" keyword
	trailer []byte // from after "trailer\n" up to "startxref"
}

// parsePDF reads the cross-reference table and trailer of a PDF written by
// gofpdf (one classic xref section, entries 20 bytes each).
func parsePDF(data []byte) (*pdfFile, error) {
	i := bytes.LastIndex(data, []byte("startxref\n"))
	if i < 0 {
		return nil, fmt.Errorf("%w: no startxref", errPDFLayout)
	}
	rest := data[i+len("startxref\n"):]
	j := bytes.IndexByte(rest, '\n')
	if j < 0 {
		return nil, fmt.Errorf("%w: startxref", errPDFLayout)
	}
	xref, err := strconv.Atoi(string(rest[:j]))
	if err != nil || xref <= 0 || xref >= i {
		return nil, fmt.Errorf("%w: startxref %q", errPDFLayout, rest[:j])
	}
	p := data[xref:i]
	var count int
	if _, err := fmt.Sscanf(string(p[:min(len(p), 32)]), "xref\n0 %d\n", &count); err != nil || count < 3 {
		return nil, fmt.Errorf("%w: xref header", errPDFLayout)
	}
	k := bytes.Index(p, []byte("\n0 "))
	k = k + 1 + bytes.IndexByte(p[k+1:], '\n') + 1 // first entry
	if k+20*count > len(p) {
		return nil, fmt.Errorf("%w: short xref", errPDFLayout)
	}
	f := &pdfFile{data: data, xref: xref, offsets: make([]int, count)}
	for n := 1; n < count; n++ {
		e := p[k+20*n : k+20*n+20]
		off, err := strconv.Atoi(string(e[:10]))
		if err != nil || e[17] != 'n' || off <= 0 || off >= xref {
			return nil, fmt.Errorf("%w: xref entry %d %q", errPDFLayout, n, e)
		}
		f.offsets[n] = off
	}
	t := p[k+20*count:]
	if !bytes.HasPrefix(t, []byte("trailer\n")) {
		return nil, fmt.Errorf("%w: no trailer", errPDFLayout)
	}
	f.trailer = t[len("trailer\n"):]
	return f, nil
}

// size is the number of objects (the trailer's /Size).
func (f *pdfFile) size() int { return len(f.offsets) }

// splice returns the file with objs (numbered from f.size(), written by
// an objWriter) appended and entry added to the page
// resources' /XObject dictionary (object 2, gofpdf's resource dictionary).
func (f *pdfFile) splice(objs *objWriter, entry string) ([]byte, error) {
	o2 := f.offsets[2]
	end := bytes.Index(f.data[o2:], []byte("endobj"))
	if !bytes.HasPrefix(f.data[o2:], []byte("2 0 obj")) || end < 0 {
		return nil, fmt.Errorf("%w: resource dictionary", errPDFLayout)
	}
	xo := bytes.Index(f.data[o2:o2+end], []byte("/XObject <<"))
	if xo < 0 {
		return nil, fmt.Errorf("%w: no /XObject in resources", errPDFLayout)
	}
	ins := o2 + xo + len("/XObject <<")
	add := " " + entry
	size := f.size() + len(objs.offsets)
	out := make([]byte, 0, len(f.data)+len(add)+objs.buf.Len()+20*len(objs.offsets)+64)
	out = append(out, f.data[:ins]...)
	out = append(out, add...)
	out = append(out, f.data[ins:f.xref]...)
	objBase := len(out)
	out = append(out, objs.buf.Bytes()...)
	xref := len(out)
	out = append(out, "xref\n0 "...)
	out = strconv.AppendInt(out, int64(size), 10)
	out = append(out, "\n0000000000 65535 f \n"...)
	entryLine := func(off int) {
		s := strconv.Itoa(off)
		for i := len(s); i < 10; i++ {
			out = append(out, '0')
		}
		out = append(out, s...)
		out = append(out, " 00000 n \n"...)
	}
	for n := 1; n < f.size(); n++ {
		off := f.offsets[n]
		if off > ins {
			off += len(add)
		}
		entryLine(off)
	}
	for _, off := range objs.offsets {
		entryLine(objBase + off)
	}
	tr := f.trailer
	si := bytes.Index(tr, []byte("/Size "))
	if si < 0 {
		return nil, fmt.Errorf("%w: trailer /Size", errPDFLayout)
	}
	se := si + len("/Size ")
	for se < len(tr) && tr[se] >= '0' && tr[se] <= '9' {
		se++
	}
	out = append(out, "trailer\n"...)
	out = append(out, tr[:si]...)
	out = append(out, "/Size "...)
	out = strconv.AppendInt(out, int64(size), 10)
	out = append(out, tr[se:]...)
	out = append(out, "startxref\n"...)
	out = strconv.AppendInt(out, int64(xref), 10)
	out = append(out, "\n%%EOF\n"...)
	return out, nil
}
