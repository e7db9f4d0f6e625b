package document

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/go-text/typesetting/language"

	"github.com/certd-dev/certd/consumer/fonts"
)

func mustLib(t testing.TB) *fontLib {
	t.Helper()
	l, err := loadFontLib()
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// runsOf summarises a layout as "text|font" per run in visual order.
func runsOf(b *textBlock) []string {
	var out []string
	for _, ln := range b.lines {
		for _, r := range ln.runs {
			out = append(out, strings.TrimSpace(string(r.text))+"|"+r.font.name)
		}
	}
	return out
}

var nameFit = Fit{Width: 247, Size: 36, MinSize: 18, MaxLines: 2}

var update = flag.Bool("update", false, "rewrite testdata/layout.golden from the current layout")

// describe summarises the layout of a name, one run per line in visual
// order: text, font and weight ("bold" = a bold face, "bold*" = a regular
// face emboldened because the script has no bold face, "regular").
func describe(b *textBlock, w fonts.Weight) string {
	var sb strings.Builder
	for _, ln := range b.lines {
		for _, r := range ln.runs {
			wt := "regular"
			switch {
			case r.fakeBold:
				wt = "bold*"
			case r.font.bold:
				wt = "bold"
			}
			fmt.Fprintf(&sb, "\t%s | %s | %s\n", strings.TrimSpace(string(r.text)), r.font.name, wt)
		}
	}
	return sb.String()
}

// TestLayoutGolden pins, for every sample name (Samples: one per script,
// mixed scripts, combining marks), the font of each run, its weight and
// the run order, as the bold name field draws them. Run with -update to
// accept a change, and review the diff of testdata/layout.golden.
func TestLayoutGolden(t *testing.T) {
	l := mustLib(t)
	var got strings.Builder
	scripts := map[language.Script]bool{}
	for _, s := range Samples {
		b, err := l.layout(Sanitize(s.Name), fonts.Bold, nameFit)
		if err != nil {
			t.Errorf("%s %q: %v", s.Script, s.Name, err)
			continue
		}
		fmt.Fprintf(&got, "%s: %s\n%s", s.Key, s.Name, describe(b, fonts.Bold))
		for _, r := range []rune(s.Name) {
			if sc := language.LookupScript(r); sc.Strong() {
				scripts[sc] = true
			}
		}
		for _, ln := range b.lines {
			for _, r := range ln.runs {
				if !r.font.bold && !r.fakeBold {
					t.Errorf("%s: run %q is not bold: one weight across the name", s.Key, string(r.text))
				}
			}
		}
	}
	if len(Samples) < 40 || len(scripts) < 35 {
		t.Errorf("%d names in %d scripts; want at least 40 in 35", len(Samples), len(scripts))
	}
	const file = "testdata/layout.golden"
	if *update {
		os.MkdirAll("testdata", 0o755)
		if err := os.WriteFile(file, []byte(got.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if got.String() != string(want) {
		gl, wl := strings.Split(got.String(), "\n"), strings.Split(string(want), "\n")
		for i := 0; i < max(len(gl), len(wl)); i++ {
			g, w := "", ""
			if i < len(gl) {
				g = gl[i]
			}
			if i < len(wl) {
				w = wl[i]
			}
			if g != w {
				t.Errorf("layout differs from %s at line %d:\n got  %s\n want %s\n(run with -update to accept)", file, i+1, g, w)
				break
			}
		}
	}
}

// TestHanStyle: kana makes a name Japanese and Hangul Korean; otherwise
// the han-style setting chooses the regional face of Noto Sans CJK.
func TestHanStyle(t *testing.T) {
	l := mustLib(t)
	for _, c := range []struct {
		name string
		han  fonts.HanStyle
		want string
	}{
		{"王小明", fonts.HanSimplified, "Noto Sans CJK SC"},
		{"王小明", fonts.HanTraditional, "Noto Sans CJK TC"},
		{"王小明", fonts.HanJapanese, "Noto Sans CJK JP"},
		{"王小明", fonts.HanKorean, "Noto Sans CJK KR"},
		{"山田 はなこ", fonts.HanSimplified, "Noto Sans CJK JP"},
		{"金 민준", fonts.HanTraditional, "Noto Sans CJK KR"},
	} {
		b, err := l.layoutHan(c.name, fonts.Bold, c.han, nameFit)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range b.lines[0].runs {
			if !strings.HasSuffix(r.font.name, "#"+c.want) {
				t.Errorf("%s with han-style %s: run %q in %s, want %s", c.name, c.han, string(r.text), r.font.name, c.want)
			}
		}
	}
}

// TestUrduNastaliq: a name with letters only Urdu uses is drawn in
// Nastaliq; Arabic and Persian names stay in Naskh.
func TestUrduNastaliq(t *testing.T) {
	l := mustLib(t)
	for name, want := range map[string]string{
		"عائشہ صدیقی": "NotoNastaliqUrdu-Bold.ttf", "عمران ٹوانہ": "NotoNastaliqUrdu-Bold.ttf",
		"محمد عبد الله": "NotoNaskhArabic-Bold.ttf", "فاطمه پژمان": "NotoNaskhArabic-Bold.ttf",
	} {
		b, err := l.layout(name, fonts.Bold, nameFit)
		if err != nil {
			t.Fatal(err)
		}
		if got := b.lines[0].runs[0].font.name; got != want {
			t.Errorf("%s: %s, want %s", name, got, want)
		}
	}
}

// TestBidiDirection checks the paragraph direction and the RTL flag of runs.
func TestBidiDirection(t *testing.T) {
	l := mustLib(t)
	b, err := l.layout("محمد Smith", fonts.Bold, nameFit)
	if err != nil {
		t.Fatal(err)
	}
	if !b.rtl {
		t.Error("paragraph starting with Arabic must be RTL")
	}
	runs := b.lines[0].runs
	if runs[0].rtl || !runs[len(runs)-1].rtl {
		t.Errorf("want LTR Smith left of RTL Arabic, got rtl=%v,%v", runs[0].rtl, runs[len(runs)-1].rtl)
	}
	// Arabic glyphs are contextual forms, not the characters' own glyphs
	if runs[len(runs)-1].nominal() {
		t.Error("Arabic run should be shaped (joined forms)")
	}
	b, _ = l.layout("Ahmed أحمد", fonts.Bold, nameFit)
	if b.rtl {
		t.Error("paragraph starting with Latin must be LTR")
	}
}

// TestAutoscaleAndWrap checks the size and line decisions for long names.
func TestAutoscaleAndWrap(t *testing.T) {
	l := mustLib(t)
	short, _ := l.layout("Jane Doe", fonts.Bold, nameFit)
	if short.size != 36 || len(short.lines) != 1 {
		t.Errorf("short name: size %v lines %d, want 36pt on 1 line", short.size, len(short.lines))
	}
	long := "Maria Fernanda Guadalupe de los Santos Rodríguez y Villanueva"
	b, err := l.layout(long, fonts.Bold, nameFit)
	if err != nil {
		t.Fatal(err)
	}
	if b.size >= 36 || b.size < 18 || len(b.lines) != 1 {
		t.Errorf("long name: size %v lines %d, want 18..36pt on 1 line", b.size, len(b.lines))
	}
	if w := b.lines[0].width * b.size * ptToMM; w > nameFit.Width+0.01 {
		t.Errorf("long name is %.1fmm wide, box %vmm", w, nameFit.Width)
	}
	longer := long + " " + long
	b, err = l.layout(longer, fonts.Bold, nameFit)
	if err != nil {
		t.Fatal(err)
	}
	if b.size != 18 || len(b.lines) != 2 {
		t.Errorf("very long name: size %v lines %d, want 18pt on 2 lines", b.size, len(b.lines))
	}
	for _, ln := range b.lines {
		if w := ln.width * b.size * ptToMM; w > nameFit.Width+0.01 {
			t.Errorf("wrapped line %.1fmm wider than box", w)
		}
	}
	_, err = l.layout(strings.Repeat(long+" ", 6), fonts.Bold, nameFit)
	if !errors.Is(err, ErrTextTooLong) || !invalidInput(err) {
		t.Errorf("too long name: err %v, want permanent ErrTextTooLong", err)
	}
}

// TestLongRealName: a real name too long for two lines at the name's
// minimum size is drawn smaller on two lines, not refused; every name the
// LMS can send (255 characters of ordinary letters) fits.
func TestLongRealName(t *testing.T) {
	l := mustLib(t)
	picasso := "Pablo Diego José Francisco de Paula Juan Nepomuceno María de los Remedios " +
		"Cipriano de la Santísima Trinidad Ruiz y Picasso Wolfeschlegelsteinhausenbergerdorff"
	lms := strings.Repeat("Maria Gonzalez ", 17) // 255 characters
	for _, name := range []string{picasso, lms} {
		b, err := l.layout(name, fonts.Bold, nameFit)
		if err != nil {
			t.Fatalf("%d-character name refused: %v", len([]rune(name)), err)
		}
		if len(b.lines) != 2 || b.size >= nameFit.MinSize || b.size < nameFit.MinSize/2 {
			t.Errorf("%d-character name: size %v lines %d, want 2 lines below %vpt", len([]rune(name)), b.size, len(b.lines), nameFit.MinSize)
		}
		for _, ln := range b.lines {
			if w := ln.width * b.size * ptToMM; w > nameFit.Width+0.01 {
				t.Errorf("line %.1fmm wider than the %vmm box", w, nameFit.Width)
			}
		}
	}
}

// TestUnrenderable names the first character no bundled font can draw.
func TestUnrenderable(t *testing.T) {
	l := mustLib(t)
	for name, want := range map[string]string{
		"Joe 😀":            "U+1F600", // no emoji font
		"Ann \U00011F04 B": "U+11F04", // Kawi (Unicode 15): no font yet
	} {
		_, err := l.layout(Sanitize(name), fonts.Bold, nameFit)
		if !errors.Is(err, ErrUnrenderable) || !invalidInput(err) || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: err %v, want permanent ErrUnrenderable naming %s", name, err, want)
		}
	}
}

func TestSanitize(t *testing.T) {
	for in, want := range map[string]string{
		"  Jane\t\nDoe  ":           "Jane Doe",
		"Jane\u202EeoD":             "JaneeoD",
		"e\u0301":                   "é", // NFC
		"A\x00B\x1bC":               "ABC",
		"\u2067محمد\u2069 Smith":    "محمد Smith",
		"<b>Jane</b> & \"Doe\"":     "<b>Jane</b> & \"Doe\"",
		"Zero\u200dWidth\u200cJoin": "Zero\u200dWidth\u200cJoin",
		"bad\xffutf8":               "badutf8",
	} {
		if got := Sanitize(in); got != want {
			t.Errorf("Sanitize(%q) = %q, want %q", in, got, want)
		}
	}
}
