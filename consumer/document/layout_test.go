package document

import (
	"errors"
	"strings"
	"testing"

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

// TestFontChoicePerScript is a golden table of the font chosen for each
// run of a name, in visual (left-to-right) order.
func TestFontChoicePerScript(t *testing.T) {
	l := mustLib(t)
	cases := []struct {
		name string
		want []string
	}{
		{"Jane Doe", []string{"Jane Doe|NotoSerif-Bold.ttf"}},
		{"Nguyễn Thị Minh Khai", []string{"Nguyễn Thị Minh Khai|NotoSerif-Bold.ttf"}},
		{"Αλέξανδρος Παπαδόπουλος", []string{"Αλέξανδρος Παπαδόπουλος|NotoSerif-Bold.ttf"}},
		{"Дмитрий Иванов", []string{"Дмитрий Иванов|NotoSerif-Bold.ttf"}},
		{"محمد عبد الله", []string{"محمد عبد الله|NotoNaskhArabic-Bold.ttf"}},
		{"فاطمه پژمان", []string{"فاطمه پژمان|NotoNaskhArabic-Bold.ttf"}},
		{"שָׁלוֹם כֹּהֵן", []string{"שָׁלוֹם כֹּהֵן|NotoSansHebrew-Bold.ttf"}},
		{"अंकित शर्मा", []string{"अंकित शर्मा|NotoSansDevanagari-Bold.ttf"}},
		{"সৌরভ গাঙ্গুলী", []string{"সৌরভ গাঙ্গুলী|NotoSansBengali-Regular.ttf"}},
		{"தமிழ் செல்வன்", []string{"தமிழ் செல்வன்|NotoSansTamil-Regular.ttf"}},
		{"สมชาย ใจดี", []string{"สมชาย ใจดี|NotoSansThai-Bold.ttf"}},
		{"王小明", []string{"王小明|DroidSansFallbackFull.ttf"}},
		{"山田 はなこ", []string{"山田|DroidSansFallbackFull.ttf", "はなこ|DroidSansFallbackFull.ttf"}},
		{"김민준", []string{"김민준|NanumSquareB.ttf"}},
		{"Ahmed أحمد", []string{"Ahmed|NotoSerif-Bold.ttf", "أحمد|NotoNaskhArabic-Bold.ttf"}},
		// RTL paragraph: the Arabic word is on the right, Smith on the left
		{"محمد Smith", []string{"Smith|NotoSerif-Bold.ttf", "محمد|NotoNaskhArabic-Bold.ttf"}},
		{"Li 李", []string{"Li|NotoSerif-Bold.ttf", "李|DroidSansFallbackFull.ttf"}},
	}
	for _, c := range cases {
		b, err := l.layout(Sanitize(c.name), fonts.Bold, nameFit)
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		if got := runsOf(b); strings.Join(got, " / ") != strings.Join(c.want, " / ") {
			t.Errorf("%s:\n got  %q\n want %q", c.name, got, c.want)
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
	if !errors.Is(err, ErrTextTooLong) || !IsPermanent(err) {
		t.Errorf("too long name: err %v, want permanent ErrTextTooLong", err)
	}
}

// TestUnrenderable names the first character no bundled font can draw.
func TestUnrenderable(t *testing.T) {
	l := mustLib(t)
	for name, want := range map[string]string{
		"Jane \U00013000 Doe": "U+13000", // Egyptian hieroglyph
		"Joe 😀":               "U+1F600", // no emoji font
		"Ann ᚠ":               "U+16A0",  // runic
	} {
		_, err := l.layout(Sanitize(name), fonts.Bold, nameFit)
		if !errors.Is(err, ErrUnrenderable) || !IsPermanent(err) || !strings.Contains(err.Error(), want) {
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
