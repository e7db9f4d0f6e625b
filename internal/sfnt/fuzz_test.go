package sfnt

import (
	"testing"

	"github.com/certd-dev/certd/consumer/fonts"
)

// FuzzParse: Parse and every accessor never panic on malformed data, as
// the package promises; a TrueType subset of a parsed font parses again.
// The seeds are small subsets cut from an embedded font at test time.
func FuzzParse(f *testing.F) {
	data, err := fonts.OpenEmbedded("NotoSerif-Regular.ttf")
	if err != nil {
		f.Fatal(err)
	}
	full, err := Parse(data, 0)
	if err != nil {
		f.Fatal(err)
	}
	for _, gids := range [][]int{{0}, {3, 40}, {100, 200, 300}} {
		sub, _ := full.Subset(gids)
		f.Add(sub, uint16(1))
		f.Add(OutlineFree(sub, 0), uint16(2))
	}
	f.Add([]byte("ttcf\x00\x01\x00\x00\x00\x00\x00\x01\x00\x00\x00\x0c"), uint16(0))
	f.Fuzz(func(t *testing.T, b []byte, g uint16) {
		_, _ = FaceOffset(b, "Noto Serif")
		_ = FaceIndex(b, 0)
		_ = OutlineFree(b, 0)
		s, err := Parse(b, 0)
		if err != nil {
			return
		}
		_ = s.Metrics()
		gid := int(g) % (s.NumGlyphs() + 2)
		_ = s.Glyph(gid)
		_, _ = s.Metric(gid)
		if !s.TrueType() {
			return
		}
		sub, order := s.Subset([]int{gid})
		back, err := Parse(sub, 0)
		if err != nil {
			t.Fatalf("a subset does not parse again: %v", err)
		}
		if back.NumGlyphs() != len(order) {
			t.Fatalf("subset has %d glyphs, order %d", back.NumGlyphs(), len(order))
		}
	})
}
