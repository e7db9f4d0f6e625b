package fonts

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/go-text/typesetting/language"
)

// TestEveryEmbeddedFontHasLicence fails when a font file is embedded
// without its licence text beside it (listed in LICENSES, text embedded).
func TestEveryEmbeddedFontHasLicence(t *testing.T) {
	lic := Licenses()
	emb := Embedded()
	if len(emb) == 0 {
		t.Fatal("no embedded fonts")
	}
	for _, f := range emb {
		l, ok := lic[f]
		if !ok {
			t.Errorf("%s is embedded but has no entry in LICENSES", f)
			continue
		}
		want := "Open Font License"
		if strings.Contains(l.File, "Apache") {
			want = "Apache License"
		}
		if !strings.Contains(l.Text, want) {
			t.Errorf("%s: licence file %s is missing or is not the %s", f, l.File, want)
		}
	}
	for f := range lic {
		if _, err := os.Stat(f); err != nil {
			t.Errorf("LICENSES lists %s, which is not embedded", f)
		}
	}
}

// TestDirPrefersDirectory: a file in the fonts directory wins over the
// embedded one of the same name; an unknown name is an error; the index
// is by file name.
func TestDirPrefersDirectory(t *testing.T) {
	dir := t.TempDir()
	sub := filepath.Join(dir, "x")
	os.MkdirAll(sub, 0o755)
	os.WriteFile(filepath.Join(sub, "NotoSerif-Regular.ttf"), []byte("local"), 0o644)
	d := NewDir([]string{dir})
	b, err := d.Open("NotoSerif-Regular.ttf")
	if err != nil || string(b) != "local" {
		t.Errorf("directory font not preferred: %q %v", b, err)
	}
	if b, err := d.Open("NotoSerif-Bold.ttf"); err != nil || len(b) < 1000 {
		t.Errorf("embedded fallback: %d bytes, %v", len(b), err)
	}
	if _, err := d.Open("NotoSansNothing-Regular.ttf"); err == nil {
		t.Error("unknown font opened")
	}
	if _, err := d.Open("../etc/passwd.ttf"); err == nil {
		t.Error("path-like name opened")
	}
	if f, real, ok := NewDir([]string{}).File("NotoSansThai", Bold); !ok || !real || f != "NotoSansThai-Bold.ttf" {
		t.Errorf("embedded Thai bold: %s %v %v", f, real, ok)
	}
	if f, real, ok := NewDir([]string{}).File("NotoSansTamil", Bold); !ok || real || f != "NotoSansTamil-Regular.ttf" {
		t.Errorf("embedded Tamil has no bold: %s %v %v", f, real, ok)
	}
}

func TestParseSettings(t *testing.T) {
	if ParseDirs("") != nil || len(ParseDirs("none")) != 0 || ParseDirs("none") == nil {
		t.Error("ParseDirs special values")
	}
	if got := ParseDirs("/a:/b"); len(got) != 2 || got[1] != "/b" {
		t.Errorf("ParseDirs: %q", got)
	}
	for _, s := range []string{"ja", "zh-Hans", "zh-Hant", "ko", ""} {
		if _, err := ParseHanStyle(s); err != nil {
			t.Errorf("%q: %v", s, err)
		}
	}
	if _, err := ParseHanStyle("zh"); err == nil {
		t.Error("bad han style accepted")
	}
	if len(Families(language.Syriac)) == 0 || Families(language.Latin) != nil {
		t.Error("script table")
	}
}
