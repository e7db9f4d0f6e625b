package cff

import (
	"encoding/binary"
	"os"
	"reflect"
	"testing"

	gocff "github.com/go-text/typesetting/font/cff"
	"github.com/go-text/typesetting/font/opentype/tables"
)

// cjkCFF returns the CFF table of the first face of Noto Sans CJK
// (Debian fonts-noto-cjk), a CID-keyed font with 65,535 glyphs, 18 Font
// DICTs and global and local subroutines.
func cjkCFF(t testing.TB) []byte {
	t.Helper()
	const path = "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc"
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (install fonts-noto-cjk)", err)
	}
	off := int(binary.BigEndian.Uint32(data[12:])) // first face of the collection
	n := int(binary.BigEndian.Uint16(data[off+4:]))
	for i := 0; i < n; i++ {
		rec := data[off+12+16*i:]
		if string(rec[:4]) == "CFF " {
			o, l := binary.BigEndian.Uint32(rec[8:]), binary.BigEndian.Uint32(rec[12:])
			return data[o : o+l]
		}
	}
	t.Fatal("no CFF table")
	return nil
}

// TestSubsetKeepsOutlines: every glyph of a subset draws exactly the
// outline of the original glyph (read back with go-text's independent CFF
// parser), though the subset has no subroutines.
func TestSubsetKeepsOutlines(t *testing.T) {
	raw := cjkCFF(t)
	f, err := Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	orig, err := gocff.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	gids := []int{0, 1, 34, 1000, 15000, 30000, 45000, 60000, f.NumGlyphs() - 1}
	sub, err := f.Subset(gids)
	if err != nil {
		t.Fatal(err)
	}
	if len(sub) > 20000 {
		t.Errorf("subset of %d glyphs is %d bytes: subroutines not dropped?", len(gids), len(sub))
	}
	got, err := gocff.Parse(sub)
	if err != nil {
		t.Fatalf("subset does not parse: %v", err)
	}
	if len(got.Charstrings) != len(gids) {
		t.Fatalf("subset has %d glyphs, want %d", len(got.Charstrings), len(gids))
	}
	for i, g := range gids {
		a, _, err := orig.LoadGlyph(tables.GlyphID(g))
		if err != nil {
			t.Fatalf("original glyph %d: %v", g, err)
		}
		b, _, err := got.LoadGlyph(tables.GlyphID(i))
		if err != nil {
			t.Fatalf("subset glyph %d (was %d): %v", i, g, err)
		}
		if !reflect.DeepEqual(a, b) {
			t.Errorf("glyph %d: outline differs after subsetting (%d vs %d segments)", g, len(a), len(b))
		}
	}
}

// TestParseRefusesDamage: truncated or altered tables give an error or a
// font, never a panic, and subsetting a damaged font does not panic.
func TestParseRefusesDamage(t *testing.T) {
	raw := cjkCFF(t)
	for _, n := range []int{0, 1, 3, 4, 10, 100, 1000, 5000, len(raw) / 2, len(raw) - 1} {
		if f, err := Parse(raw[:n]); err == nil {
			f.Subset([]int{0, 1})
		}
	}
	bad := append([]byte(nil), raw[:4096]...)
	for i := 4; i < len(bad); i += 7 {
		bad[i] ^= 0x5a
	}
	if f, err := Parse(bad); err == nil {
		f.Subset([]int{0, 1, 2})
	}
	if _, err := Parse([]byte("not a cff table")); err == nil {
		t.Error("garbage parsed")
	}
}

func BenchmarkSubset(b *testing.B) {
	raw := cjkCFF(b)
	f, err := Parse(raw)
	if err != nil {
		b.Fatal(err)
	}
	gids := []int{0, 1, 34, 1000, 15000, 30000}
	for b.Loop() {
		if _, err := f.Subset(gids); err != nil {
			b.Fatal(err)
		}
	}
}
