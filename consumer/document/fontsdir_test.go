package document

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/certd-dev/certd/consumer/fonts"
)

// TestEmbeddedOnly: with no fonts directory (fonts-dir "none") the
// embedded fonts still draw the scripts they cover, and a name in a
// script none of them covers is refused with a clear error, never boxes.
func TestEmbeddedOnly(t *testing.T) {
	r, err := NewRenderer(WithFontsDir([]string{}))
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"Jane Doe", "محمد عبد الله", "अंकित शर्मा", "王小明", "김민준", "สมชาย ใจดี"} {
		if _, err := r.Render("", sampleFields(n)); err != nil {
			t.Errorf("%s with embedded fonts only: %v", n, err)
		}
	}
	_, err = r.Render("", sampleFields("ܐܦܪܝܡ"))
	if !errors.Is(err, ErrUnrenderable) || !strings.Contains(err.Error(), "U+0710") {
		t.Errorf("Syriac with embedded fonts only: %v, want ErrUnrenderable naming U+0710", err)
	}
	// the embedded CJK fallback is TrueType and has no bold: emboldened
	b, err := r.fonts.layout("王小明", fonts.Bold, nameFit)
	if err != nil {
		t.Fatal(err)
	}
	if run := b.lines[0].runs[0]; run.font.name != "DroidSansFallbackFull.ttf" || !run.fakeBold {
		t.Errorf("embedded Han: %s fakeBold=%v", run.font.name, run.fakeBold)
	}
}

// TestFontsLoadLazily: a Latin-only certificate loads only the design
// fonts; a script's font is loaded by the first name that needs it.
func TestFontsLoadLazily(t *testing.T) {
	l := newFontLib(nil)
	r := &Renderer{fonts: l}
	base := newRenderer(t)
	r.def, r.log, r.designs = base.def, base.log, base.designs
	if _, err := r.Render("", sampleFields("Jane Doe")); err != nil {
		t.Fatal(err)
	}
	for _, e := range l.entries {
		if !strings.HasPrefix(e.name, "NotoSerif-") {
			t.Errorf("Latin certificate loaded %s", e.name)
		}
	}
	n := len(l.entries)
	if _, err := r.Render("", sampleFields("ܐܦܪܝܡ")); err != nil {
		t.Fatal(err)
	}
	if len(l.entries) != n+1 || l.entries[n].name != "NotoSansSyriac-Regular.ttf" {
		t.Errorf("Syriac name loaded %d fonts, last %s", len(l.entries)-n, l.entries[len(l.entries)-1].name)
	}
}

// BenchmarkFirstNameInScript measures the first certificate with a name
// in a script not yet seen by the process (font loaded and parsed, then
// shaped and subset), against a process that has drawn Latin only.
func BenchmarkFirstNameInScript(b *testing.B) {
	base, err := NewRenderer()
	if err != nil {
		b.Fatal(err)
	}
	for _, s := range []struct{ key, name string }{
		{"syriac", "ܐܦܪܝܡ ܣܘܪܝܝܐ"}, {"urdu", "عائشہ صدیقی"}, {"tibetan", "བསྟན་འཛིན་རྒྱ་མཚོ"},
		{"han", "王小明"}, {"han-extB", "陈𡒄"}, {"hangul", "김민준"},
	} {
		b.Run(s.key, func(b *testing.B) {
			for b.Loop() {
				b.StopTimer()
				r := &Renderer{fonts: newFontLib(nil), def: base.def, log: base.log, designs: base.designs}
				if _, err := r.Render("", sampleFields("Jane Doe")); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
				if _, err := r.Render("", sampleFields(s.name)); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestConcurrentFirstUse: renders that load fonts at the same time (each
// font parsed once) give the same bytes as renders one at a time.
func TestConcurrentFirstUse(t *testing.T) {
	base := newRenderer(t)
	fresh := func() *Renderer {
		return &Renderer{fonts: newFontLib(nil), def: base.def, log: base.log, designs: base.designs}
	}
	names := []string{"ܐܦܪܝܡ", "王小明", "김민준", "عائشہ صدیقی", "ᏎᏉᏯ", "陈𡒄", "Jane Doe", "ߡߊߡߊߘߎ"}
	seq := fresh()
	want := map[string][]byte{}
	for _, n := range names {
		b, err := seq.Render("", sampleFields(n))
		if err != nil {
			t.Fatal(err)
		}
		want[n] = b
	}
	layouts.clear()
	subsets.clear()
	r := fresh()
	errs := make(chan error, 3*len(names))
	for g := 0; g < 3; g++ {
		go func() {
			for i := range names {
				n := names[(i+3*g)%len(names)]
				b, err := r.Render("", sampleFields(n))
				if err == nil && string(b) != string(want[n]) {
					err = errors.New(n + ": concurrent first render differs from a lone one")
				}
				errs <- err
			}
		}()
	}
	for range 3 * len(names) {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	seen := map[string]bool{}
	for _, e := range r.fonts.entries {
		if seen[e.name] {
			t.Errorf("%s loaded twice", e.name)
		}
		seen[e.name] = true
	}
}

// TestDamagedFontFiles: a font file in the fonts directory that does not
// parse is replaced by the embedded one of the same name, or, when there
// is none, its script is refused with ErrUnrenderable; never a crash.
func TestDamagedFontFiles(t *testing.T) {
	dir := t.TempDir()
	for _, n := range []string{"NotoSerif-Regular.ttf", "NotoSerif-Bold.ttf", "NotoSansSyriac-Regular.ttf"} {
		if err := os.WriteFile(filepath.Join(dir, n), []byte("OTTO this is not a font at all"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	r, err := NewRenderer(WithFontsDir([]string{dir}))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Render("", sampleFields("Jane Doe")); err != nil {
		t.Errorf("Latin with damaged directory fonts: %v", err)
	}
	if _, err := r.Render("", sampleFields("ܐܦܪܝܡ")); !errors.Is(err, ErrUnrenderable) {
		t.Errorf("Syriac with a damaged Syriac font: %v, want ErrUnrenderable", err)
	}
}

// TestCourseHanStyle: a course's Han style (Fields.HanStyle) overrides the
// renderer's for Han-only names; kana still makes a name Japanese.
func TestCourseHanStyle(t *testing.T) {
	r, err := NewRenderer(WithHanStyle(fonts.HanTraditional))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ name, course, want string }{
		{"王小明", "", "NotoSansCJKTC"},
		{"王小明", "ja", "NotoSansCJKJP"},
		{"王小明", "ko", "NotoSansCJKKR"},
		{"山田 はなこ", "zh-Hans", "NotoSansCJKJP"},
	} {
		f := sampleFields(c.name)
		f.HanStyle = c.course
		b, err := r.Render("", f)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(b), "+NotoSansCJK-Bold"+c.want) {
			t.Errorf("%s with course style %q: no %s font in the PDF", c.name, c.course, c.want)
		}
	}
}
