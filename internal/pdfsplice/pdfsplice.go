// Package pdfsplice appends objects to a finished single-page PDF written
// by gofpdf: it reads the file's classic cross-reference table, adds one
// entry to the page's /XObject resources, appends the new objects and
// writes a rebuilt cross-reference table, so the result is an ordinary
// single-revision PDF.
//
// Invariants: Parse never modifies the data and refuses any file whose
// layout is not the one gofpdf writes (ErrLayout) rather than guessing;
// Splice returns a new slice. Splice also blanks out (with spaces, keeping
// every offset) the default font gofpdf selects but never draws with, so
// that every font of the page is the embedded ones of the appended form.
package pdfsplice

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"sync"

	"github.com/klauspost/compress/zlib"
)

// zlibPool reuses compressors: a new zlib writer allocates and clears
// about a megabyte. klauspost/compress (already in the module graph via
// NATS) is ~35% faster than compress/zlib on these small streams.
var zlibPool = sync.Pool{New: func() any {
	w, _ := zlib.NewWriterLevel(nil, zlib.BestSpeed)
	return w
}}

// Deflate appends the zlib-compressed data to dst.
func Deflate(dst *bytes.Buffer, data []byte) {
	w := zlibPool.Get().(*zlib.Writer)
	w.Reset(dst)
	w.Write(data)
	w.Close()
	w.Reset(nil)
	zlibPool.Put(w)
}

// Objects writes numbered PDF objects, recording their offsets.
type Objects struct {
	Buf     bytes.Buffer
	First   int   // number of the first object
	offsets []int // offset in buf of each object, from first
	tmp     bytes.Buffer
}

// Begin starts the next object (numbered First, First+1, ...).
func (w *Objects) Begin() {
	w.offsets = append(w.offsets, w.Buf.Len())
	w.Buf.WriteString(strconv.Itoa(w.First + len(w.offsets) - 1))
	w.Buf.WriteString(" 0 obj\n")
}

// End ends the current object.
func (w *Objects) End() { w.Buf.WriteString("\nendobj\n") }

// Stream compresses data and writes it as a stream object; dict is its
// dictionary's entries without /Length and /Filter.
func (w *Objects) Stream(dict string, data []byte) {
	w.tmp.Reset()
	Deflate(&w.tmp, data)
	w.ZStream(dict, w.tmp.Bytes())
}

// ZStream writes zlib-compressed data as a stream object.
func (w *Objects) ZStream(dict string, z []byte) {
	w.Begin()
	fmt.Fprintf(&w.Buf, "<<%s /Filter /FlateDecode /Length %d>>\nstream\n", dict, len(z))
	w.Buf.Write(z)
	w.Buf.WriteString("\nendstream")
	w.End()
}

// Ref is a reference to object n.
func Ref(n int) string { return strconv.Itoa(n) + " 0 R" }

// ErrLayout means gofpdf's output did not have the structure the
// splice relies on (a gofpdf upgrade); never expected at run time.
var ErrLayout = errors.New("unexpected gofpdf output layout")

// File is gofpdf's finished output with its cross-reference table
// parsed.
type File struct {
	data    []byte
	offsets []int  // by object number; [0] unused
	xref    int    // offset of the "xref" keyword
	trailer []byte // from after "trailer\n" up to "startxref"
}

// Parse reads the cross-reference table and trailer of a PDF written by
// gofpdf (one classic xref section, entries 20 bytes each).
func Parse(data []byte) (*File, error) {
	i := bytes.LastIndex(data, []byte("startxref\n"))
	if i < 0 {
		return nil, fmt.Errorf("%w: no startxref", ErrLayout)
	}
	rest := data[i+len("startxref\n"):]
	j := bytes.IndexByte(rest, '\n')
	if j < 0 {
		return nil, fmt.Errorf("%w: startxref", ErrLayout)
	}
	xref, err := strconv.Atoi(string(rest[:j]))
	if err != nil || xref <= 0 || xref >= i {
		return nil, fmt.Errorf("%w: startxref %q", ErrLayout, rest[:j])
	}
	p := data[xref:i]
	var count int
	if _, err := fmt.Sscanf(string(p[:min(len(p), 32)]), "xref\n0 %d\n", &count); err != nil || count < 3 {
		return nil, fmt.Errorf("%w: xref header", ErrLayout)
	}
	k := bytes.Index(p, []byte("\n0 "))
	k = k + 1 + bytes.IndexByte(p[k+1:], '\n') + 1 // first entry
	if k+20*count > len(p) {
		return nil, fmt.Errorf("%w: short xref", ErrLayout)
	}
	f := &File{data: data, xref: xref, offsets: make([]int, count)}
	for n := 1; n < count; n++ {
		e := p[k+20*n : k+20*n+20]
		off, err := strconv.Atoi(string(e[:10]))
		if err != nil || e[17] != 'n' || off <= 0 || off >= xref {
			return nil, fmt.Errorf("%w: xref entry %d %q", ErrLayout, n, e)
		}
		f.offsets[n] = off
	}
	t := p[k+20*count:]
	if !bytes.HasPrefix(t, []byte("trailer\n")) {
		return nil, fmt.Errorf("%w: no trailer", ErrLayout)
	}
	f.trailer = t[len("trailer\n"):]
	return f, nil
}

// Size is the number of objects (the trailer's /Size).
func (f *File) Size() int { return len(f.offsets) }

// Splice returns the file with objs (numbered from f.Size(), written by
// an Objects) appended and entry added to the page
// resources' /XObject dictionary (object 2, gofpdf's resource dictionary).
func (f *File) Splice(objs *Objects, entry string) ([]byte, error) {
	o2 := f.offsets[2]
	end := bytes.Index(f.data[o2:], []byte("endobj"))
	if !bytes.HasPrefix(f.data[o2:], []byte("2 0 obj")) || end < 0 {
		return nil, fmt.Errorf("%w: resource dictionary", ErrLayout)
	}
	xo := bytes.Index(f.data[o2:o2+end], []byte("/XObject <<"))
	if xo < 0 {
		return nil, fmt.Errorf("%w: no /XObject in resources", ErrLayout)
	}
	ins := o2 + xo + len("/XObject <<")
	add := " " + entry
	size := f.Size() + len(objs.offsets)
	out := make([]byte, 0, len(f.data)+len(add)+objs.Buf.Len()+20*len(objs.offsets)+64)
	out = append(out, f.data[:ins]...)
	out = append(out, add...)
	out = append(out, f.data[ins:f.xref]...)
	objBase := len(out)
	out = append(out, objs.Buf.Bytes()...)
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
	for n := 1; n < f.Size(); n++ {
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
		return nil, fmt.Errorf("%w: trailer /Size", ErrLayout)
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
	blankUnusedFonts(out, f.offsets, ins+len(add))
	return out, nil
}

// blankUnusedFonts removes, by overwriting with spaces (so no length or
// offset changes), a font that gofpdf selects for the page but that draws
// nothing: gofpdf writes its default font (a base-14 font, not embedded)
// into the page's resources and an empty text object "BT /F.. 10.00 Tf
// ET" into the page content, although every glyph is drawn by the
// appended form with its own embedded fonts. Left in, PDF checkers report
// a font that is not embedded. The page content (object 4, uncompressed,
// as gofpdf writes it here) must name no font once the empty text objects
// are gone; otherwise nothing is changed. o2end is the end of the inserted
// resource entry (object 2 follows the page content).
func blankUnusedFonts(out []byte, offsets []int, o2end int) {
	if len(offsets) <= 4 {
		return
	}
	o3, o4, o2 := offsets[3], offsets[4], offsets[2]
	if o4 > o2 || o3 > o2 || !bytes.HasPrefix(out[o3:], []byte("3 0 obj")) ||
		!bytes.Contains(out[o3:o4], []byte("/Contents 4 0 R")) || !bytes.HasPrefix(out[o4:], []byte("4 0 obj")) {
		return
	}
	hdr := bytes.Index(out[o4:o2], []byte("stream\n"))
	end := bytes.Index(out[o4:o2], []byte("\nendstream"))
	if hdr < 0 || end < hdr || bytes.Contains(out[o4:o4+hdr], []byte("/Filter")) {
		return
	}
	content := out[o4+hdr+len("stream\n") : o4+end]
	// Every text object must be an empty font selection: the font state
	// outlives ET, so one that precedes drawn text is needed.
	var empty [][2]int
	for at := 0; ; {
		i := bytes.Index(content[at:], []byte("BT"))
		if i < 0 {
			break
		}
		i += at
		j := bytes.Index(content[i:], []byte(" Tf ET"))
		if !bytes.HasPrefix(content[i:], []byte("BT /")) || j < 0 || !emptyFontSelect(content[i+len("BT /"):i+j]) {
			return // text drawn by the page itself: keep its fonts
		}
		empty = append(empty, [2]int{i, i + j + len(" Tf ET")})
		at = i + j + len(" Tf ET")
	}
	if len(empty) == 0 {
		return
	}
	for _, e := range empty {
		blank(content[e[0]:e[1]])
	}
	res := out[o2:o2end]
	fi := bytes.Index(res, []byte("/Font <<"))
	if fi < 0 {
		return
	}
	fe := bytes.Index(res[fi+len("/Font <<"):], []byte(">>"))
	if fe < 0 || bytes.Contains(res[fi+len("/Font <<"):fi+len("/Font <<")+fe], []byte("<<")) {
		return
	}
	blank(res[fi : fi+len("/Font <<")+fe+len(">>")])
}

// emptyFontSelect reports whether b is "NAME SIZE": what lies between
// "BT /" and " Tf ET" in a text object that only selects a font.
func emptyFontSelect(b []byte) bool {
	name, size, ok := bytes.Cut(b, []byte(" "))
	if !ok || len(name) == 0 || len(size) == 0 {
		return false
	}
	for _, c := range name {
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9') {
			return false
		}
	}
	for _, c := range size {
		if !(c >= '0' && c <= '9' || c == '.') {
			return false
		}
	}
	return true
}

func blank(b []byte) {
	for i := range b {
		b[i] = ' '
	}
}
