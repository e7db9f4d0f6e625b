package cff

import (
	"testing"
)

// FuzzParseSubset: Parse and Subset never panic and never run away on a
// malformed CFF table; a table Parse accepts can be subset, and a subset
// it produces parses again with the glyphs it was asked for. The seeds
// are small subsets cut from Noto Sans CJK (so no font bytes are kept in
// the repository) and a few broken headers.
func FuzzParseSubset(f *testing.F) {
	full, err := Parse(cjkCFF(f))
	if err != nil {
		f.Fatal(err)
	}
	for _, gids := range [][]int{{0}, {0, 34}, {0, 1, 2, 3, 5000, 65000}} {
		sub, err := full.Subset(gids)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(sub, uint16(len(gids)-1))
	}
	f.Add([]byte{1, 0, 4, 1}, uint16(1))
	f.Add([]byte{1, 0, 4, 4, 0, 0}, uint16(0))
	f.Add([]byte{}, uint16(0))
	f.Fuzz(func(t *testing.T, b []byte, g uint16) {
		font, err := Parse(b)
		if err != nil {
			return
		}
		n := font.NumGlyphs()
		gids := []int{0}
		if n > 1 {
			gids = append(gids, 1+int(g)%(n-1))
		}
		sub, err := font.Subset(gids)
		if err != nil {
			return
		}
		back, err := Parse(sub)
		if err != nil {
			t.Fatalf("a subset does not parse again: %v", err)
		}
		if back.NumGlyphs() != len(gids) {
			t.Fatalf("subset of %d glyphs has %d", len(gids), back.NumGlyphs())
		}
	})
}
