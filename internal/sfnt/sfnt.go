// Package sfnt reads the table directory of TrueType and OpenType fonts
// (single fonts and collections) and cuts TrueType subsets for PDF.
//
// Why our own subsetter: gofpdf re-parses a whole TrueType font for every
// document that uses it and subsets it again when writing (13 ms per
// document for two Noto Serif faces, 35 ms for the CJK font, measured), and
// it mis-subsets Droid Sans Fallback (CJK glyphs went missing). Instead,
// for each document the renderer cuts a tiny CID-keyed TrueType font
// holding only the glyphs the page uses, copied from the raw tables indexed
// once per process (Font.Subset), and writes it into the PDF itself.
//
// Invariants: Parse keeps slices of the font data, never copies or
// modifies it, and never panics on malformed data (it returns an error or
// a Font whose accessors return empty results out of range); a Font is
// immutable and safe for concurrent use.
package sfnt

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"unicode/utf16"
)

// Font is the table index of a font, built once per process.
type Font struct {
	tables      map[string][]byte
	loca        []uint32 // numGlyphs+1 offsets into glyf
	numHMetrics int
	numGlyphs   int
}

// ErrNotSfnt means the data is not a TrueType or OpenType font.
var ErrNotSfnt = errors.New("not a TrueType or OpenType font")

// Table returns the raw table tag ("CFF ", "GSUB", ...), nil if absent.
func (s *Font) Table(tag string) []byte { return s.tables[tag] }

// TrueType reports whether the font has TrueType (glyf) outlines.
func (s *Font) TrueType() bool { return s.loca != nil }

// NumGlyphs is the number of glyphs (maxp).
func (s *Font) NumGlyphs() int { return s.numGlyphs }

// Parse indexes the tables of the font whose table directory starts
// at off (0, or a face's offset in a collection). TrueType fonts get their
// glyph locations; OpenType/CFF fonts are not TrueType().
func Parse(data []byte, off int) (*Font, error) {
	if off < 0 || len(data) < off+12 {
		return nil, ErrNotSfnt
	}
	n := int(binary.BigEndian.Uint16(data[off+4:]))
	s := &Font{tables: map[string][]byte{}}
	for i := 0; i < n; i++ {
		rec := off + 12 + 16*i
		if rec+16 > len(data) {
			return nil, ErrNotSfnt
		}
		tag := string(data[rec : rec+4])
		to := binary.BigEndian.Uint32(data[rec+8:])
		ln := binary.BigEndian.Uint32(data[rec+12:])
		if uint64(to)+uint64(ln) > uint64(len(data)) {
			return nil, fmt.Errorf("table %s out of range", tag)
		}
		s.tables[tag] = data[to : to+ln]
	}
	for _, t := range []string{"head", "hhea", "maxp", "hmtx", "post"} {
		if _, ok := s.tables[t]; !ok {
			return nil, fmt.Errorf("%w: no %s table", ErrNotSfnt, t)
		}
	}
	head, maxp, hhea := s.tables["head"], s.tables["maxp"], s.tables["hhea"]
	if len(head) < 54 || len(maxp) < 6 || len(hhea) < 36 {
		return nil, ErrNotSfnt
	}
	s.numGlyphs = int(binary.BigEndian.Uint16(maxp[4:]))
	s.numHMetrics = int(binary.BigEndian.Uint16(hhea[34:]))
	loca, okL := s.tables["loca"]
	if _, okG := s.tables["glyf"]; !okL || !okG {
		return s, nil // CFF outlines
	}
	long := binary.BigEndian.Uint16(head[50:]) == 1
	s.loca = make([]uint32, s.numGlyphs+1)
	for i := range s.loca {
		if long {
			if 4*i+4 > len(loca) {
				return nil, errors.New("short loca")
			}
			s.loca[i] = binary.BigEndian.Uint32(loca[4*i:])
		} else {
			if 2*i+2 > len(loca) {
				return nil, errors.New("short loca")
			}
			s.loca[i] = 2 * uint32(binary.BigEndian.Uint16(loca[2*i:]))
		}
	}
	return s, nil
}

// faceOffsets returns the table directory offsets of the faces of a font
// file: one (0) for a single font, one per face for a collection (ttcf).
func faceOffsets(data []byte) []int {
	if len(data) < 12 || string(data[:4]) != "ttcf" {
		return []int{0}
	}
	n := int(binary.BigEndian.Uint32(data[8:]))
	var out []int
	for i := 0; i < n && i < 64 && 12+4*i+4 <= len(data); i++ {
		out = append(out, int(binary.BigEndian.Uint32(data[12+4*i:])))
	}
	return out
}

// FaceIndex is the number of the face at off.
func FaceIndex(data []byte, off int) int {
	for i, o := range faceOffsets(data) {
		if o == off {
			return i
		}
	}
	return 0
}

// FaceOffset finds the face of a collection whose family name (name id
// 1 or 16, Windows Unicode) is family; "" takes the first face.
func FaceOffset(data []byte, family string) (int, error) {
	offs := faceOffsets(data)
	if family == "" {
		return offs[0], nil
	}
	for _, off := range offs {
		s, err := Parse(data, off)
		if err != nil {
			continue
		}
		if slices.Contains(familyNames(s.tables["name"]), family) {
			return off, nil
		}
	}
	return 0, fmt.Errorf("no face of family %q", family)
}

// familyNames reads the Windows Unicode family names (ids 1 and 16) of a
// name table.
func familyNames(t []byte) []string {
	if len(t) < 6 {
		return nil
	}
	n := int(binary.BigEndian.Uint16(t[2:]))
	strOff := int(binary.BigEndian.Uint16(t[4:]))
	var out []string
	for i := 0; i < n; i++ {
		r := 6 + 12*i
		if r+12 > len(t) {
			break
		}
		plat, id := binary.BigEndian.Uint16(t[r:]), binary.BigEndian.Uint16(t[r+6:])
		ln, o := int(binary.BigEndian.Uint16(t[r+8:])), int(binary.BigEndian.Uint16(t[r+10:]))
		if plat != 3 || (id != 1 && id != 16) || strOff+o+ln > len(t) {
			continue
		}
		b := t[strOff+o : strOff+o+ln]
		u := make([]uint16, len(b)/2)
		for j := range u {
			u[j] = binary.BigEndian.Uint16(b[2*j:])
		}
		out = append(out, string(utf16.Decode(u)))
	}
	return out
}

// Metrics are the font-wide values a PDF font descriptor needs, in
// thousandths of an em.
type Metrics struct {
	BBox                       [4]int
	Ascent, Descent, CapHeight int
	ItalicAngle                float64
}

// Metrics reads the descriptor values from head, hhea, post and OS/2.
func (s *Font) Metrics() Metrics {
	head, hhea, post := s.tables["head"], s.tables["hhea"], s.tables["post"]
	upem := float64(binary.BigEndian.Uint16(head[18:]))
	if upem == 0 {
		upem = 1000
	}
	sc := func(v int16) int { return int(math.Round(float64(v) * 1000 / upem)) }
	i16 := func(b []byte, off int) int16 { return int16(binary.BigEndian.Uint16(b[off:])) }
	m := Metrics{
		BBox:    [4]int{sc(i16(head, 36)), sc(i16(head, 38)), sc(i16(head, 40)), sc(i16(head, 42))},
		Ascent:  sc(i16(hhea, 4)),
		Descent: sc(i16(hhea, 6)),
	}
	m.CapHeight = m.Ascent * 7 / 10
	if os2 := s.tables["OS/2"]; len(os2) >= 90 && binary.BigEndian.Uint16(os2) >= 2 {
		if c := sc(i16(os2, 88)); c > 0 {
			m.CapHeight = c
		}
	}
	if len(post) >= 8 {
		m.ItalicAngle = float64(int32(binary.BigEndian.Uint32(post[4:]))) / 65536
	}
	return m
}

// Glyph is the glyf entry of gid: nil out of range, for an empty glyph,
// or for a font without TrueType outlines.
func (s *Font) Glyph(gid int) []byte {
	if gid < 0 || gid >= s.numGlyphs || s.loca == nil {
		return nil
	}
	a, b := s.loca[gid], s.loca[gid+1]
	glyf := s.tables["glyf"]
	if a >= b || int(b) > len(glyf) {
		return nil
	}
	return glyf[a:b]
}

func (s *Font) Metric(gid int) (adv, lsb uint16) {
	hmtx := s.tables["hmtx"]
	if gid < s.numHMetrics {
		if 4*gid+4 <= len(hmtx) {
			return binary.BigEndian.Uint16(hmtx[4*gid:]), binary.BigEndian.Uint16(hmtx[4*gid+2:])
		}
		return 0, 0
	}
	last := s.numHMetrics - 1
	if last >= 0 && 4*last+4 <= len(hmtx) {
		adv = binary.BigEndian.Uint16(hmtx[4*last:])
	}
	off := 4*s.numHMetrics + 2*(gid-s.numHMetrics)
	if off+2 <= len(hmtx) {
		lsb = binary.BigEndian.Uint16(hmtx[off:])
	}
	return adv, lsb
}

// composite glyph flags
const (
	argsAreWords     = 0x0001
	haveScale        = 0x0008
	moreComps        = 0x0020
	haveXYScale      = 0x0040
	haveTwoByTwo     = 0x0080
	haveInstructions = 0x0100
	compositeMark    = -1
)

// components returns the glyph ids a composite glyph refers to and the
// byte offsets of their indices inside the glyph data.
func components(g []byte) (gids []int, offs []int) {
	if len(g) < 10 || int16(binary.BigEndian.Uint16(g)) >= 0 {
		return nil, nil
	}
	walkComponents(g, func(p int) {
		gids = append(gids, int(binary.BigEndian.Uint16(g[p+2:])))
		offs = append(offs, p+2)
	})
	return gids, offs
}

// walkComponents calls visit with the offset of each component record of
// a composite glyph and returns the offset just past the last one.
func walkComponents(g []byte, visit func(p int)) int {
	p := 10
	for p+4 <= len(g) {
		flags := binary.BigEndian.Uint16(g[p:])
		visit(p)
		p += 4
		if flags&argsAreWords != 0 {
			p += 4
		} else {
			p += 2
		}
		switch {
		case flags&haveScale != 0:
			p += 2
		case flags&haveXYScale != 0:
			p += 4
		case flags&haveTwoByTwo != 0:
			p += 8
		}
		if flags&moreComps == 0 {
			break
		}
	}
	return p
}

// Subset builds a TrueType font with glyph 0 (.notdef), the given
// glyphs (sorted old glyph ids) and the components of composite glyphs.
// It returns the font and the old glyph id of every new glyph id. The
// font has no cmap: the PDF addresses glyphs by id (CIDToGIDMap
// /Identity) and maps them to text with its own ToUnicode map.
func (s *Font) Subset(gids []int) ([]byte, []int) {
	newID := make(map[int]int, 2*len(gids)+1)
	newID[0] = 0
	order := make([]int, 1, len(gids)+1)
	var add func(gid, depth int)
	add = func(gid, depth int) {
		if _, ok := newID[gid]; ok || depth > 8 || gid < 0 || gid >= s.numGlyphs {
			return
		}
		newID[gid] = len(order)
		order = append(order, gid)
		comps, _ := components(s.Glyph(gid))
		for _, c := range comps {
			add(c, depth+1)
		}
	}
	for _, g := range gids {
		add(g, 0)
	}
	// glyf + loca (long) + hmtx
	size := 0
	for _, gid := range order {
		size += (len(s.Glyph(gid)) + 3) &^ 3
	}

	glyf := make([]byte, 0, size)
	loca := make([]byte, 0, 4*(len(order)+1))
	hmtx := make([]byte, 0, 4*len(order))
	for _, gid := range order {
		loca = binary.BigEndian.AppendUint32(loca, uint32(len(glyf)))
		g := s.Glyph(gid)
		start := len(glyf)
		glyf = appendGlyphNoHints(glyf, g)
		if comps, offs := components(g); len(comps) > 0 {
			for i, c := range comps {
				nid, ok := newID[c]
				if !ok {
					nid = 0
				}
				binary.BigEndian.PutUint16(glyf[start+offs[i]:], uint16(nid))
			}
		}
		for len(glyf)%4 != 0 {
			glyf = append(glyf, 0)
		}
		adv, lsb := s.Metric(gid)
		hmtx = binary.BigEndian.AppendUint16(hmtx, adv)
		hmtx = binary.BigEndian.AppendUint16(hmtx, lsb)
	}
	loca = binary.BigEndian.AppendUint32(loca, uint32(len(glyf)))

	head := slices.Clone(s.tables["head"])
	binary.BigEndian.PutUint32(head[8:], 0)  // checkSumAdjustment
	binary.BigEndian.PutUint16(head[50:], 1) // long loca
	hhea := slices.Clone(s.tables["hhea"])
	binary.BigEndian.PutUint16(hhea[34:], uint16(len(order)))
	maxp := slices.Clone(s.tables["maxp"])
	binary.BigEndian.PutUint16(maxp[4:], uint16(len(order)))
	post := slices.Clone(s.tables["post"][:min(32, len(s.tables["post"]))])
	if len(post) < 32 {
		post = append(post, make([]byte, 32-len(post))...)
	}
	binary.BigEndian.PutUint32(post[0:], 0x00030000)

	tables := []sfntTable{
		{"glyf", glyf}, {"head", head}, {"hhea", hhea}, {"hmtx", hmtx},
		{"loca", loca}, {"maxp", maxp}, {"post", post},
	}
	if os2, ok := s.tables["OS/2"]; ok {
		os2 = slices.Clone(os2)
		if len(os2) > 9 {
			binary.BigEndian.PutUint16(os2[8:], 0) // fsType: installable (the licences allow embedding)
		}
		tables = append(tables, sfntTable{"OS/2", os2})
	}
	return writeSfnt(tables), order
}

// appendGlyphNoHints appends glyph data without its TrueType
// instructions: the subset has no fpgm/prep/cvt tables for them to call,
// and they are most of a hinted glyph's bytes. Glyph data that does not
// parse is appended unchanged.
func appendGlyphNoHints(dst, g []byte) []byte {
	if len(g) < 10 {
		return append(dst, g...)
	}
	nc := int(int16(binary.BigEndian.Uint16(g)))
	if nc >= 0 {
		p := 10 + 2*nc
		if p+2 > len(g) {
			return append(dst, g...)
		}
		il := int(binary.BigEndian.Uint16(g[p:]))
		if p+2+il > len(g) {
			return append(dst, g...)
		}
		dst = append(dst, g[:p]...)
		dst = append(dst, 0, 0)
		return append(dst, g[p+2+il:]...)
	}
	// composite: components, then instructions if the last component
	// has WE_HAVE_INSTRUCTIONS
	last := -1
	p := walkComponents(g, func(at int) { last = at })
	if last < 0 || p > len(g) {
		return append(dst, g...)
	}
	start := len(dst)
	dst = append(dst, g[:p]...)
	f := binary.BigEndian.Uint16(dst[start+last:])
	binary.BigEndian.PutUint16(dst[start+last:], f&^haveInstructions)
	return dst
}

// sfntTable is one table of a font being written.
type sfntTable struct {
	tag  string
	data []byte
}

// writeSfnt assembles tables into a TrueType file (table directory
// sorted by tag).
func writeSfnt(tables []sfntTable) []byte {
	slices.SortFunc(tables, func(a, b sfntTable) int { return strings.Compare(a.tag, b.tag) })
	size := 12
	for _, t := range tables {
		size += 16 + (len(t.data)+3)&^3
	}
	n := len(tables)
	sr, sel := 1, 0
	for sr*2 <= n {
		sr *= 2
		sel++
	}
	out := make([]byte, 0, size)
	out = binary.BigEndian.AppendUint32(out, 0x00010000)
	out = binary.BigEndian.AppendUint16(out, uint16(n))
	out = binary.BigEndian.AppendUint16(out, uint16(16*sr))
	out = binary.BigEndian.AppendUint16(out, uint16(sel))
	out = binary.BigEndian.AppendUint16(out, uint16(16*(n-sr)))
	off := 12 + 16*n
	for _, t := range tables {
		out = append(out, t.tag...)
		out = binary.BigEndian.AppendUint32(out, checksum(t.data))
		out = binary.BigEndian.AppendUint32(out, uint32(off))
		out = binary.BigEndian.AppendUint32(out, uint32(len(t.data)))
		off += (len(t.data) + 3) &^ 3
	}
	for _, t := range tables {
		out = append(out, t.data...)
		for len(out)%4 != 0 {
			out = append(out, 0)
		}
	}
	return out
}

func checksum(b []byte) uint32 {
	var sum uint32
	for i := 0; i < len(b); i += 4 {
		var w [4]byte
		copy(w[:], b[i:])
		sum += binary.BigEndian.Uint32(w[:])
	}
	return sum
}

// BigFont is the size above which a TrueType font is given to the shaper
// without its outlines (see outlineFree).
const BigFont = 8 << 20

// OutlineFree returns a copy of the font at off without glyph outlines
// (TrueType: glyf empty, loca all zero; CFF: no CFF table) and every other
// table kept. The shaper needs cmap, metrics and layout tables, not
// outlines, and it parses every outline up front: 170 ms for the 31 MB
// of HanaMinB, and a 15 MB copy of the CFF table of Noto Sans CJK. The
// PDF subset is cut from the real font. Used for big fonts only (BigFont),
// whose scripts (Han) need no outline-based mark positioning.
func OutlineFree(data []byte, off int) []byte {
	s, err := Parse(data, off)
	if err != nil {
		return data
	}
	var tables []sfntTable
	for tag, t := range s.tables {
		switch tag {
		case "CFF ":
			continue
		case "glyf":
			t = []byte{0, 0, 0, 0}
		case "loca":
			t = make([]byte, 2*(s.numGlyphs+1))
		case "head":
			t = slices.Clone(t)
			binary.BigEndian.PutUint16(t[50:], 0) // short loca
		}
		tables = append(tables, sfntTable{tag, t})
	}
	return writeSfnt(tables)
}
