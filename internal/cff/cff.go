// Package cff reads Compact Font Format (CFF) tables, the PostScript
// outlines of OpenType/CFF fonts such as Noto Sans CJK, and cuts subsets
// of them for embedding in PDF (FontFile3, Subtype CIDFontType0C).
//
// A subset is always CID-keyed (ROS Adobe-Identity-0) with glyph i having
// CID i, so a PDF addresses it with Identity-H codes equal to subset glyph
// ids. Charstrings are desubroutinized (every subroutine call is replaced
// by the subroutine's body), so the subset carries no subroutines: a
// certificate uses a handful of glyphs, and keeping a CJK font's global
// subroutines (hundreds of KB) for them would dwarf the glyphs.
//
// Invariants: Parse never panics on malformed input (it returns an error);
// a parsed Font is immutable and safe for concurrent use; Subset never
// modifies the Font.
package cff

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
)

// ErrFormat means the data is not a CFF table this package can read.
var ErrFormat = errors.New("cff: malformed or unsupported table")

// index is a CFF INDEX: count objects, object i is data[off[i]:off[i+1]].
type index struct {
	data []byte
	off  []uint32
}

func (x index) count() int { return max(len(x.off)-1, 0) }

func (x index) at(i int) []byte {
	if i < 0 || i+1 >= len(x.off) {
		return nil
	}
	return x.data[x.off[i]:x.off[i+1]]
}

// readIndex reads the INDEX at p and returns it and the offset after it.
func readIndex(b []byte, p int) (index, int, error) {
	if p < 0 || p+2 > len(b) {
		return index{}, 0, fmt.Errorf("%w: index at %d", ErrFormat, p)
	}
	n := int(binary.BigEndian.Uint16(b[p:]))
	if n == 0 {
		return index{}, p + 2, nil
	}
	if p+3 > len(b) {
		return index{}, 0, ErrFormat
	}
	os := int(b[p+2])
	if os < 1 || os > 4 {
		return index{}, 0, fmt.Errorf("%w: offset size %d", ErrFormat, os)
	}
	start := p + 3
	end := start + (n+1)*os
	if end > len(b) {
		return index{}, 0, fmt.Errorf("%w: index offsets", ErrFormat)
	}
	off := make([]uint32, n+1)
	for i := range off {
		var v uint32
		for _, c := range b[start+i*os : start+(i+1)*os] {
			v = v<<8 | uint32(c)
		}
		if v < 1 {
			return index{}, 0, ErrFormat
		}
		off[i] = v - 1
	}
	dataEnd := end + int(off[n])
	if dataEnd > len(b) {
		return index{}, 0, fmt.Errorf("%w: index data", ErrFormat)
	}
	for i := 0; i < n; i++ {
		if off[i] > off[i+1] {
			return index{}, 0, ErrFormat
		}
	}
	return index{data: b[end:dataEnd], off: off}, dataEnd, nil
}

// dictEntry is one operator of a DICT with its operands and raw bytes.
type dictEntry struct {
	op  int // 0..21, or 1200+x for escaped operators
	arg []float64
	raw []byte // operands and operator as encoded
}

// Operators used here.
const (
	opFontBBox    = 5
	opCharset     = 15
	opEncoding    = 16
	opCharStrings = 17
	opPrivate     = 18
	opSubrs       = 19
	opROS         = 1230
	opCIDCount    = 1234
	opFDArray     = 1236
	opFDSelect    = 1237
	opFontName    = 1238
	opFontMatrix  = 1207
)

func parseDict(b []byte) ([]dictEntry, error) {
	var out []dictEntry
	var args []float64
	start := 0
	for p := 0; p < len(b); {
		c := b[p]
		switch {
		case c <= 21:
			op := int(c)
			p++
			if c == 12 {
				if p >= len(b) {
					return nil, ErrFormat
				}
				op = 1200 + int(b[p])
				p++
			}
			out = append(out, dictEntry{op: op, arg: args, raw: b[start:p]})
			args, start = nil, p
		case c == 28:
			if p+3 > len(b) {
				return nil, ErrFormat
			}
			args = append(args, float64(int16(binary.BigEndian.Uint16(b[p+1:]))))
			p += 3
		case c == 29:
			if p+5 > len(b) {
				return nil, ErrFormat
			}
			args = append(args, float64(int32(binary.BigEndian.Uint32(b[p+1:]))))
			p += 5
		case c == 30:
			p++
			for p < len(b) && b[p]&0x0f != 0x0f && b[p]>>4 != 0x0f {
				p++
			}
			p++
			args = append(args, 0) // reals are copied raw, never interpreted here
		case c >= 32 && c <= 246:
			args = append(args, float64(int(c)-139))
			p++
		case c >= 247 && c <= 250:
			if p+2 > len(b) {
				return nil, ErrFormat
			}
			args = append(args, float64((int(c)-247)*256+int(b[p+1])+108))
			p += 2
		case c >= 251 && c <= 254:
			if p+2 > len(b) {
				return nil, ErrFormat
			}
			args = append(args, float64(-(int(c)-251)*256-int(b[p+1])-108))
			p += 2
		default:
			return nil, fmt.Errorf("%w: dict byte %d", ErrFormat, c)
		}
		if len(args) > 48 {
			return nil, ErrFormat
		}
	}
	return out, nil
}

func find(d []dictEntry, op int) (dictEntry, bool) {
	for _, e := range d {
		if e.op == op {
			return e, true
		}
	}
	return dictEntry{}, false
}

// fontDict is one Font DICT of a CID font (or the top DICT of a
// name-keyed font) with its private DICT and local subroutines.
type fontDict struct {
	dict    []dictEntry // FD entries to copy (Private and FontName dropped)
	private []dictEntry // private entries to copy (Subrs dropped)
	subrs   index
}

// Font is a parsed CFF table.
type Font struct {
	name        []byte
	top         []dictEntry
	charStrings index
	gsubrs      index
	fds         []fontDict
	fdSelect    []uint8 // FD of each glyph; nil = all 0
}

// NumGlyphs is the number of glyphs of the font.
func (f *Font) NumGlyphs() int { return f.charStrings.count() }

// Parse reads a CFF table (the "CFF " table of an OpenType font).
func Parse(b []byte) (*Font, error) {
	if len(b) < 4 || b[0] != 1 {
		return nil, fmt.Errorf("%w: header", ErrFormat)
	}
	names, p, err := readIndex(b, int(b[2]))
	if err != nil {
		return nil, err
	}
	tops, p, err := readIndex(b, p)
	if err != nil {
		return nil, err
	}
	_, p, err = readIndex(b, p) // strings: not needed, subsets write their own
	if err != nil {
		return nil, err
	}
	gsubrs, _, err := readIndex(b, p)
	if err != nil {
		return nil, err
	}
	if tops.count() != 1 || names.count() != 1 {
		return nil, fmt.Errorf("%w: %d fonts in one table", ErrFormat, tops.count())
	}
	top, err := parseDict(tops.at(0))
	if err != nil {
		return nil, err
	}
	f := &Font{name: names.at(0), top: top, gsubrs: gsubrs}
	cs, ok := find(top, opCharStrings)
	if !ok || len(cs.arg) != 1 {
		return nil, fmt.Errorf("%w: no CharStrings", ErrFormat)
	}
	if f.charStrings, _, err = readIndex(b, int(cs.arg[0])); err != nil {
		return nil, err
	}
	n := f.charStrings.count()
	if n == 0 {
		return nil, fmt.Errorf("%w: no glyphs", ErrFormat)
	}
	if _, cid := find(top, opROS); cid {
		fda, ok := find(top, opFDArray)
		if !ok || len(fda.arg) != 1 {
			return nil, fmt.Errorf("%w: CID font without FDArray", ErrFormat)
		}
		arr, _, err := readIndex(b, int(fda.arg[0]))
		if err != nil {
			return nil, err
		}
		for i := 0; i < arr.count(); i++ {
			d, err := parseDict(arr.at(i))
			if err != nil {
				return nil, err
			}
			fd, err := readFontDict(b, d)
			if err != nil {
				return nil, err
			}
			f.fds = append(f.fds, fd)
		}
		fs, ok := find(top, opFDSelect)
		if !ok || len(fs.arg) != 1 {
			return nil, fmt.Errorf("%w: CID font without FDSelect", ErrFormat)
		}
		if f.fdSelect, err = readFDSelect(b, int(fs.arg[0]), n, len(f.fds)); err != nil {
			return nil, err
		}
	} else {
		fd, err := readFontDict(b, top)
		if err != nil {
			return nil, err
		}
		var keep []dictEntry
		for _, e := range fd.dict {
			if e.op == opFontMatrix {
				keep = append(keep, e)
			}
		}
		fd.dict = keep
		f.fds = []fontDict{fd}
	}
	return f, nil
}

// readFontDict reads the private DICT and local subroutines a font DICT
// points at.
func readFontDict(b []byte, d []dictEntry) (fontDict, error) {
	var fd fontDict
	for _, e := range d {
		if e.op != opPrivate && e.op != opFontName {
			fd.dict = append(fd.dict, e)
		}
	}
	pe, ok := find(d, opPrivate)
	if !ok {
		return fd, nil
	}
	if len(pe.arg) != 2 {
		return fd, fmt.Errorf("%w: Private", ErrFormat)
	}
	size, off := int(pe.arg[0]), int(pe.arg[1])
	if size < 0 || off < 0 || off+size > len(b) {
		return fd, fmt.Errorf("%w: Private out of range", ErrFormat)
	}
	priv, err := parseDict(b[off : off+size])
	if err != nil {
		return fd, err
	}
	for _, e := range priv {
		if e.op != opSubrs {
			fd.private = append(fd.private, e)
		}
	}
	if s, ok := find(priv, opSubrs); ok && len(s.arg) == 1 {
		if fd.subrs, _, err = readIndex(b, off+int(s.arg[0])); err != nil {
			return fd, err
		}
	}
	return fd, nil
}

func readFDSelect(b []byte, p, n, nfd int) ([]uint8, error) {
	if p < 0 || p >= len(b) {
		return nil, ErrFormat
	}
	out := make([]uint8, n)
	switch b[p] {
	case 0:
		if p+1+n > len(b) {
			return nil, ErrFormat
		}
		copy(out, b[p+1:p+1+n])
	case 3:
		if p+3 > len(b) {
			return nil, ErrFormat
		}
		nr := int(binary.BigEndian.Uint16(b[p+1:]))
		q := p + 3
		if q+3*nr+2 > len(b) {
			return nil, ErrFormat
		}
		for i := 0; i < nr; i++ {
			first := int(binary.BigEndian.Uint16(b[q+3*i:]))
			fd := b[q+3*i+2]
			next := int(binary.BigEndian.Uint16(b[q+3*i+3:]))
			for g := first; g < next && g < n; g++ {
				out[g] = fd
			}
		}
	default:
		return nil, fmt.Errorf("%w: FDSelect format %d", ErrFormat, b[p])
	}
	for _, fd := range out {
		if int(fd) >= nfd {
			return nil, fmt.Errorf("%w: FDSelect refers to FD %d of %d", ErrFormat, fd, nfd)
		}
	}
	return out, nil
}

func (f *Font) fdOf(gid int) int {
	if f.fdSelect == nil {
		return 0
	}
	return int(f.fdSelect[gid])
}

// Subset returns a CID-keyed CFF table with the glyphs gids (glyph i of
// the subset is gids[i]; gids[0] should be 0, .notdef), desubroutinized.
func (f *Font) Subset(gids []int) ([]byte, error) {
	n := f.NumGlyphs()
	// FDs used, renumbered in order of first use
	fdMap := map[int]int{}
	var fdOrder []int
	sel := make([]byte, len(gids))
	cs := make([][]byte, len(gids))
	for i, g := range gids {
		if g < 0 || g >= n {
			return nil, fmt.Errorf("cff: glyph %d out of range (%d glyphs)", g, n)
		}
		fd := f.fdOf(g)
		nfd, ok := fdMap[fd]
		if !ok {
			nfd = len(fdOrder)
			fdMap[fd] = nfd
			fdOrder = append(fdOrder, fd)
		}
		sel[i] = byte(nfd)
		d := &desub{f: f, local: f.fds[fd].subrs}
		if err := d.run(f.charStrings.at(g), 0); err != nil {
			return nil, fmt.Errorf("cff: glyph %d: %w", g, err)
		}
		if !d.ended {
			d.out = append(d.out, 14) // endchar
		}
		cs[i] = d.out
	}

	strs := [][]byte{[]byte("Adobe"), []byte("Identity")}
	// private DICTs (no Subrs)
	privs := make([][]byte, len(fdOrder))
	for i, fd := range fdOrder {
		for _, e := range f.fds[fd].private {
			privs[i] = append(privs[i], e.raw...)
		}
	}
	// FD DICTs need their private offsets: build with placeholders of
	// fixed width, lay out, then fill in.
	fdDict := func(i, privOff int) []byte {
		var d []byte
		for _, e := range f.fds[fdOrder[i]].dict {
			d = append(d, e.raw...)
		}
		d = appendInt5(d, len(privs[i]))
		d = appendInt5(d, privOff)
		return append(d, opPrivate)
	}
	topDict := func(charset, fdselect, charstrings, fdarray int) []byte {
		var d []byte
		d = appendInt5(d, 391) // "Adobe"
		d = appendInt5(d, 392) // "Identity"
		d = appendInt5(d, 0)
		d = append(d, 12, 30)
		for _, e := range f.top {
			if e.op == opFontBBox || (e.op == opFontMatrix && len(f.fdSelect) > 0) {
				d = append(d, e.raw...)
			}
		}
		d = appendInt5(d, len(gids))
		d = append(d, 12, 34)
		d = appendInt5(d, charset)
		d = append(d, opCharset)
		d = appendInt5(d, fdselect)
		d = append(d, 12, 37)
		d = appendInt5(d, charstrings)
		d = append(d, opCharStrings)
		d = appendInt5(d, fdarray)
		d = append(d, 12, 36)
		return d
	}
	build := func(charset, fdselect, charstrings, fdarray, priv int) []byte {
		out := []byte{1, 0, 4, 4}
		out = appendIndex(out, [][]byte{f.name})
		out = appendIndex(out, [][]byte{topDict(charset, fdselect, charstrings, fdarray)})
		out = appendIndex(out, strs)
		out = appendIndex(out, nil) // global subrs
		return out
	}
	head := build(0, 0, 0, 0, 0)
	charset := len(head)
	csData := []byte{2, 0, 1}
	csData = binary.BigEndian.AppendUint16(csData, uint16(max(len(gids)-2, 0)))
	if len(gids) < 2 {
		csData = []byte{0}
	}
	fdselect := charset + len(csData)
	fsData := append([]byte{0}, sel...)
	charstrings := fdselect + len(fsData)
	csIndex := appendIndex(nil, cs)
	fdarray := charstrings + len(csIndex)
	fds := make([][]byte, len(fdOrder))
	for i := range fds {
		fds[i] = fdDict(i, 0)
	}
	privStart := fdarray + len(appendIndex(nil, fds))
	off := privStart
	for i := range fds {
		fds[i] = fdDict(i, off)
		off += len(privs[i])
	}
	out := build(charset, fdselect, charstrings, fdarray, privStart)
	if len(out) != len(head) {
		return nil, errors.New("cff: header size changed")
	}
	out = append(out, csData...)
	out = append(out, fsData...)
	out = append(out, csIndex...)
	out = appendIndex(out, fds)
	for _, p := range privs {
		out = append(out, p...)
	}
	return out, nil
}

// appendInt5 appends v as a 5-byte DICT integer (fixed width, so offsets
// can be filled in without changing sizes).
func appendInt5(b []byte, v int) []byte {
	return binary.BigEndian.AppendUint32(append(b, 29), uint32(int32(v)))
}

// appendIndex appends an INDEX of objs.
func appendIndex(b []byte, objs [][]byte) []byte {
	b = binary.BigEndian.AppendUint16(b, uint16(len(objs)))
	if len(objs) == 0 {
		return b
	}
	total := 1
	for _, o := range objs {
		total += len(o)
	}
	os := 1
	for total >= 1<<(8*os) {
		os++
	}
	b = append(b, byte(os))
	off := 1
	put := func(v int) {
		for i := os - 1; i >= 0; i-- {
			b = append(b, byte(v>>(8*i)))
		}
	}
	put(off)
	for _, o := range objs {
		off += len(o)
		put(off)
	}
	for _, o := range objs {
		b = append(b, o...)
	}
	return b
}

// desub inlines the subroutine calls of a Type 2 charstring.
type desub struct {
	f      *Font
	local  index
	out    []byte
	stack  []int // output offset of each operand on the stack
	last   []float64
	nStems int
	ended  bool
	steps  int
}

func bias(n int) int {
	switch {
	case n < 1240:
		return 107
	case n < 33900:
		return 1131
	}
	return 32768
}

const maxSteps = 1 << 16

func (d *desub) push(p int, v float64) {
	d.stack = append(d.stack, p)
	d.last = append(d.last, v)
}

func (d *desub) run(cs []byte, depth int) error {
	if depth > 10 {
		return errors.New("subroutines nested too deep")
	}
	for p := 0; p < len(cs) && !d.ended; {
		d.steps++
		if d.steps > maxSteps {
			return errors.New("charstring too long")
		}
		c := cs[p]
		at := len(d.out)
		switch {
		case c == 28:
			if p+3 > len(cs) {
				return ErrFormat
			}
			d.out = append(d.out, cs[p:p+3]...)
			d.push(at, float64(int16(binary.BigEndian.Uint16(cs[p+1:]))))
			p += 3
		case c >= 32 && c <= 246:
			d.out = append(d.out, c)
			d.push(at, float64(int(c)-139))
			p++
		case c >= 247 && c <= 250:
			if p+2 > len(cs) {
				return ErrFormat
			}
			d.out = append(d.out, cs[p:p+2]...)
			d.push(at, float64((int(c)-247)*256+int(cs[p+1])+108))
			p += 2
		case c >= 251 && c <= 254:
			if p+2 > len(cs) {
				return ErrFormat
			}
			d.out = append(d.out, cs[p:p+2]...)
			d.push(at, float64(-(int(c)-251)*256-int(cs[p+1])-108))
			p += 2
		case c == 255:
			if p+5 > len(cs) {
				return ErrFormat
			}
			d.out = append(d.out, cs[p:p+5]...)
			d.push(at, float64(int32(binary.BigEndian.Uint32(cs[p+1:])))/65536)
			p += 5
		case c == 10 || c == 29: // callsubr, callgsubr
			if len(d.stack) == 0 {
				return errors.New("subroutine call without index")
			}
			v := d.last[len(d.last)-1]
			d.out = d.out[:d.stack[len(d.stack)-1]]
			d.stack, d.last = d.stack[:len(d.stack)-1], d.last[:len(d.last)-1]
			subrs := d.local
			if c == 29 {
				subrs = d.f.gsubrs
			}
			i := int(math.Floor(v)) + bias(subrs.count())
			if i < 0 || i >= subrs.count() {
				return fmt.Errorf("subroutine %d of %d", i, subrs.count())
			}
			if err := d.run(subrs.at(i), depth+1); err != nil {
				return err
			}
			p++
		case c == 11: // return
			return nil
		case c == 14: // endchar
			d.out = append(d.out, c)
			d.ended = true
			p++
		case c == 1 || c == 3 || c == 18 || c == 23: // stem hints
			d.nStems += len(d.stack) / 2
			d.out = append(d.out, c)
			d.stack, d.last = d.stack[:0], d.last[:0]
			p++
		case c == 19 || c == 20: // hintmask, cntrmask
			d.nStems += len(d.stack) / 2 // implicit vstem
			nb := (d.nStems + 7) / 8
			if p+1+nb > len(cs) {
				return ErrFormat
			}
			d.out = append(d.out, cs[p:p+1+nb]...)
			d.stack, d.last = d.stack[:0], d.last[:0]
			p += 1 + nb
		case c == 12:
			if p+2 > len(cs) {
				return ErrFormat
			}
			d.out = append(d.out, cs[p:p+2]...)
			d.stack, d.last = d.stack[:0], d.last[:0]
			p += 2
		default:
			d.out = append(d.out, c)
			d.stack, d.last = d.stack[:0], d.last[:0]
			p++
		}
	}
	return nil
}
