package document

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/pdfcpu/pdfcpu/pkg/api"
	"github.com/pdfcpu/pdfcpu/pkg/pdfcpu/model"
)

func newRenderer(t testing.TB) *Renderer {
	t.Helper()
	r, err := NewRenderer()
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func needTool(t *testing.T, name string) {
	t.Helper()
	if _, err := exec.LookPath(name); err != nil {
		t.Fatalf("%s not found: install poppler-utils (apt-get install poppler-utils)", name)
	}
}

func writeTemp(t *testing.T, b []byte) string {
	p := filepath.Join(t.TempDir(), "c.pdf")
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestEveryScriptRenders renders a certificate for every sample name
// (one per script, mixed scripts, combining marks): each must succeed (no
// glyph missing, no error).
func TestEveryScriptRenders(t *testing.T) {
	r := newRenderer(t)
	for _, s := range Samples {
		b, err := r.Render("", sampleFields(s.Name))
		if err != nil {
			t.Errorf("%s %q: %v", s.Script, s.Name, err)
			continue
		}
		if !bytes.HasPrefix(b, []byte("%PDF-")) {
			t.Errorf("%s: not a PDF", s.Script)
		}
	}
}

// visual is what pdftotext prints for a name with right-to-left words:
// poppler writes RTL text in visual order, each RTL word's characters
// reversed (marks included) and the words of an RTL paragraph right to
// left, with bidi embedding marks around it. Both sides are compared
// without those marks and with single spaces.
func visual(name string) string {
	words := strings.Fields(name)
	rtlPara := paragraphRTL([]rune(name))
	for i, w := range words {
		if paragraphRTL([]rune(w)) {
			rs := []rune(w)
			slices.Reverse(rs)
			words[i] = string(rs)
		}
	}
	if rtlPara {
		slices.Reverse(words)
	}
	return strings.Join(words, " ")
}

func plainText(s string) string {
	s = strings.Map(func(r rune) rune {
		if r == 0x202A || r == 0x202B || r == 0x202C || r == 0x200E || r == 0x200F {
			return -1
		}
		return r
	}, s)
	return strings.Join(strings.Fields(s), " ")
}

// TestTextExtractable checks with pdftotext that every sample name is
// real text in the PDF, and with pdffonts that every font is embedded.
func TestTextExtractable(t *testing.T) {
	needTool(t, "pdftotext")
	needTool(t, "pdffonts")
	r := newRenderer(t)
	var failed []string
	for _, s := range Samples {
		b, err := r.Render("", sampleFields(s.Name))
		if err != nil {
			t.Fatal(err)
		}
		p := writeTemp(t, b)
		out, err := exec.Command("pdftotext", p, "-").Output()
		if err != nil {
			t.Fatalf("pdftotext: %v", err)
		}
		if txt := plainText(string(out)); !strings.Contains(txt, s.Name) {
			failed = append(failed, s.Key)
			if !strings.Contains(txt, visual(s.Name)) {
				t.Errorf("%s: pdftotext does not show %q (or %q in visual order):\n%s", s.Key, s.Name, visual(s.Name), out)
			}
		}
		for _, want := range []string{"Demonstration Course", "February 2nd, 2012", "Verify at https://certificates.example.org/cert/"} {
			if !strings.Contains(string(out), want) {
				t.Errorf("%s: text %q missing", s.Key, want)
			}
		}
		fl, err := exec.Command("pdffonts", p).Output()
		if err != nil {
			t.Fatalf("pdffonts: %v", err)
		}
		lines := strings.Split(strings.TrimSpace(string(fl)), "\n")
		for _, line := range lines[min(2, len(lines)):] { // after the header
			if !strings.Contains(line, "CID ") || !strings.Contains(line, " yes ") {
				t.Errorf("%s: font not an embedded CID font: %s", s.Key, line)
			}
		}
	}
	t.Logf("extracted in visual (not logical) order by pdftotext: %v", failed)
}

// TestLongNameKeepsItsWords renders a name too long for two lines at the
// name's minimum size: it is drawn (smaller) and every space between its
// words survives the wrapping.
func TestLongNameKeepsItsWords(t *testing.T) {
	needTool(t, "pdftotext")
	r := newRenderer(t)
	name := "Pablo Diego José Francisco de Paula Juan Nepomuceno María de los Remedios " +
		"Cipriano de la Santísima Trinidad Ruiz y Picasso Wolfeschlegelsteinhausenbergerdorff"
	b, err := r.Render("", sampleFields(name))
	if err != nil {
		t.Fatalf("%d-character name refused: %v", len([]rune(name)), err)
	}
	out, err := exec.Command("pdftotext", writeTemp(t, b), "-").Output()
	if err != nil {
		t.Fatalf("pdftotext: %v", err)
	}
	if txt := plainText(string(out)); !strings.Contains(txt, name) {
		t.Errorf("pdftotext does not show the name with its spaces:\n%s", out)
	}
}

// TestCJKIsCFF: Noto Sans CJK glyphs are embedded as CFF subsets
// (CIDFontType0C), next to TrueType subsets for the other fonts.
func TestCJKIsCFF(t *testing.T) {
	needTool(t, "pdffonts")
	r := newRenderer(t)
	b, err := r.Render("", sampleFields("Li 李 山田 はなこ 김민준"))
	if err != nil {
		t.Fatal(err)
	}
	fl, err := exec.Command("pdffonts", writeTemp(t, b)).Output()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(fl), "CID Type 0C") || !strings.Contains(string(fl), "CID TrueType") {
		t.Errorf("want CFF and TrueType subsets:\n%s", fl)
	}
}

// TestDeterministic: the same job gives the same bytes.
func TestDeterministic(t *testing.T) {
	r := newRenderer(t)
	for _, name := range []string{"Jane Doe", "محمد Smith", "王小明 김민준"} {
		a, err := r.Render("", sampleFields(name))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := r.Render("", sampleFields(name))
		if !bytes.Equal(a, b) {
			t.Errorf("%s: two renders differ", name)
		}
	}
}

// TestHostileInput: odd names give a PDF or a permanent error, never a panic.
func TestHostileInput(t *testing.T) {
	r := newRenderer(t)
	for _, name := range []string{
		"<script>alert(1)</script>", "Robert'); DROP TABLE students;--", "\x00\x01\x02", "A\u202Eevil\u202C",
		strings.Repeat("A", 20000), strings.Repeat("محمد ", 4000), "", "   ", "\u200d\u200d", "{{.Name}}",
		strings.Repeat("\u0301", 50), "e" + strings.Repeat("\u0301", 300), "%PDF-1.4 ) \\ (",
	} {
		b, err := r.Render("", sampleFields(name))
		if err != nil && !invalidInput(err) {
			t.Errorf("%.30q: non-permanent error %v", name, err)
		}
		if err == nil && !bytes.HasPrefix(b, []byte("%PDF-")) {
			t.Errorf("%.30q: not a PDF", name)
		}
	}
	_, err := r.Render("", sampleFields(strings.Repeat("A", 20000)))
	if !errors.Is(err, ErrTextTooLong) {
		t.Errorf("20000-char name: %v, want ErrTextTooLong", err)
	}
}

// TestDesignNames: path-like design names are permanent errors.
func TestDesignNames(t *testing.T) {
	r := newRenderer(t)
	for _, d := range []string{"../x", "a/b", "/etc/passwd", `a\b`, "..", ".", "nope.pdf", "missing"} {
		_, err := r.Render(d, sampleFields("Jane Doe"))
		if !errors.Is(err, ErrUnknownDesign) || !invalidInput(err) {
			t.Errorf("design %q: err %v, want permanent ErrUnknownDesign", d, err)
		}
	}
	if _, err := r.Render("default", sampleFields("Jane Doe")); err != nil {
		t.Errorf("default by name: %v", err)
	}
}

// TestPDFValid validates rendered certificates with pdfcpu in strict mode:
// the text layer is spliced into gofpdf's file (pdfout.go), so object
// numbering, the cross-reference table and the font objects must be exact.
func TestPDFValid(t *testing.T) {
	r := newRenderer(t)
	for _, name := range []string{"Jane Doe", "王小明 山田太郎 김민준", "محمد Smith", "שָׁלוֹם כֹּהֵן", "अंकित शर्मा",
		"ܐܦܪܝܡ ܣܘܪܝܝܐ", "𠮷田 さくら 陈𡒄", "عائشہ صدیقی", "བསྟན་འཛིན་རྒྱ་མཚོ"} {
		b, err := r.Render("", sampleFields(name))
		if err != nil {
			t.Fatal(err)
		}
		conf := pdfcpuConf()
		conf.ValidationMode = model.ValidationStrict
		if err := api.Validate(bytes.NewReader(b), conf); err != nil {
			t.Errorf("%s: pdfcpu strict validation: %v", name, err)
		}
	}
}

// TestConcurrentRenders: renders running in parallel (sharing the
// per-process layout, subset and QR caches) give the same bytes as
// renders one at a time.
func TestConcurrentRenders(t *testing.T) {
	r := newRenderer(t)
	names := []string{"Jane Doe", "王小明 김민준", "محمد Smith", "Zoë Ångström", "अंकित शर्मा", "Jane Dot", "ܐܦܪܝܡ", "陈𡒄", "ᏎᏉᏯ"}
	want := map[string][]byte{}
	for _, n := range names {
		layouts.clear()
		subsets.clear()
		b, err := r.Render("", sampleFields(n))
		if err != nil {
			t.Fatal(err)
		}
		want[n] = b
	}
	layouts.clear()
	subsets.clear()
	errs := make(chan error, 4*len(names))
	for g := 0; g < 4; g++ {
		go func() {
			for i := range names {
				n := names[(i+g)%len(names)]
				b, err := r.Render("", sampleFields(n))
				if err == nil && !bytes.Equal(b, want[n]) {
					err = fmt.Errorf("%s: concurrent render differs from a lone one", n)
				}
				errs <- err
			}
		}()
	}
	for range 4 * len(names) {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}

// invalidInput reports whether err is one of the errors caused by the
// job's input or the configured designs (the job is answered with an
// error; consumer.Classify maps the same sentinels).
func invalidInput(err error) bool {
	return errors.Is(err, ErrUnknownDesign) || errors.Is(err, ErrUnrenderable) || errors.Is(err, ErrTextTooLong)
}
