package sfnt

import (
	"bytes"
	"os"
	"reflect"
	"testing"

	"github.com/go-text/typesetting/font"
	"github.com/go-text/typesetting/font/opentype/tables"

	"github.com/certd-dev/certd/consumer/fonts"
)

// TestSubsetKeepsOutlines: each glyph of a TrueType subset (composite
// glyphs included) has the outline of the original glyph, read back with
// go-text's parser.
func TestSubsetKeepsOutlines(t *testing.T) {
	data, err := fonts.OpenEmbedded("NotoSerif-Regular.ttf")
	if err != nil {
		t.Fatal(err)
	}
	f, err := Parse(data, 0)
	if err != nil {
		t.Fatal(err)
	}
	orig, err := font.ParseTTF(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	var gids []int
	for _, r := range "Ångström Łódź ǅ ﬁ" {
		g, _ := orig.NominalGlyph(r)
		gids = append(gids, int(g))
	}
	sub, order := f.Subset(gids)
	if len(order) < 10 || order[0] != 0 {
		t.Fatalf("order %v", order)
	}
	newID := map[int]int{}
	for nid, gid := range order {
		newID[gid] = nid
	}
	glyphs := func(data []byte) tables.Glyf {
		s, err := Parse(data, 0)
		if err != nil {
			t.Fatal(err)
		}
		head := s.Table("head")
		loca, err := tables.ParseLoca(s.Table("loca"), s.NumGlyphs(), head[51] == 1)
		if err != nil {
			t.Fatal(err)
		}
		g, err := tables.ParseGlyf(s.Table("glyf"), loca)
		if err != nil {
			t.Fatal(err)
		}
		return g
	}
	og, sg := glyphs(data), glyphs(sub)
	if len(sg) != len(order) {
		t.Fatalf("subset has %d glyphs, want %d", len(sg), len(order))
	}
	composites := 0
	for nid, gid := range order {
		a, b := og[gid], sg[nid]
		switch ad := a.Data.(type) {
		case tables.SimpleGlyph:
			bd, ok := b.Data.(tables.SimpleGlyph)
			if !ok || !reflect.DeepEqual(ad.Points, bd.Points) || !reflect.DeepEqual(ad.EndPtsOfContours, bd.EndPtsOfContours) || len(bd.Instructions) != 0 {
				t.Errorf("glyph %d (subset %d): outline differs or hints kept", gid, nid)
			}
		case tables.CompositeGlyph:
			composites++
			bd, ok := b.Data.(tables.CompositeGlyph)
			if !ok || len(bd.Glyphs) != len(ad.Glyphs) {
				t.Fatalf("glyph %d: composite lost", gid)
			}
			for i, part := range ad.Glyphs {
				if int(bd.Glyphs[i].GlyphIndex) != newID[int(part.GlyphIndex)] {
					t.Errorf("glyph %d component %d: refers to %d, want %d", gid, i, bd.Glyphs[i].GlyphIndex, newID[int(part.GlyphIndex)])
				}
			}
		}
	}
	if composites == 0 {
		t.Error("no composite glyph in the sample: the test checks nothing about components")
	}
}

// TestFaceOffset finds a face of a collection by family name.
func TestFaceOffset(t *testing.T) {
	data, err := os.ReadFile("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc")
	if err != nil {
		t.Fatalf("%v (install fonts-noto-cjk)", err)
	}
	off, err := FaceOffset(data, "Noto Sans CJK KR")
	if err != nil {
		t.Fatal(err)
	}
	if i := FaceIndex(data, off); i != 1 {
		t.Errorf("Noto Sans CJK KR is face %d, want 1", i)
	}
	f, err := Parse(data, off)
	if err != nil || f.TrueType() || f.Table("CFF ") == nil {
		t.Errorf("CJK face: %v, TrueType %v", err, f != nil && f.TrueType())
	}
	if _, err := FaceOffset(data, "Noto Sans CJK XX"); err == nil {
		t.Error("unknown family found")
	}
}

// TestParseRefusesDamage: truncated or altered fonts give an error or a
// Font whose use does not panic.
func TestParseRefusesDamage(t *testing.T) {
	data, _ := fonts.OpenEmbedded("NotoSansThai-Regular.ttf")
	for _, n := range []int{0, 5, 12, 100, 300, 1000, len(data) / 2} {
		if f, err := Parse(data[:n], 0); err == nil {
			f.Subset([]int{1, 2, 3})
			f.Metrics()
		}
	}
	bad := bytes.Clone(data)
	for i := 12; i < len(bad); i += 97 {
		bad[i] ^= 0xa5
	}
	if f, err := Parse(bad, 0); err == nil {
		f.Subset([]int{1, 2, 3, 40, 60})
	}
	if _, err := Parse([]byte("garbage"), 0); err == nil {
		t.Error("garbage parsed")
	}
}
