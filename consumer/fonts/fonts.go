// Package fonts bundles the TrueType fonts certificates are drawn with, so a
// certd binary is self-contained and renders the same everywhere.
//
// The set is chosen for learner names in any common script: Noto Serif
// (Latin incl. Vietnamese, Greek, Cyrillic) for the design's own text, Noto
// script fonts (Arabic/Persian, Hebrew, Indic, Thai, ...) and Droid Sans
// Fallback (Chinese, Japanese) and Nanum Square (Korean) as fallbacks. All are TrueType-outline
// fonts (gofpdf cannot embed CFF). Licences: LICENSE-OFL-1.1.txt (Noto) and
// LICENSE-Nanum-OFL-1.1.txt (Nanum) and LICENSE-Apache-2.0.txt (Droid), all embedded and exposed via Licenses.
package fonts

import (
	"embed"
	"fmt"
	"io/fs"
	"strings"
)

//go:embed *.ttf LICENSE-*.txt
var files embed.FS

// Weight selects the regular or bold member of a font family.
type Weight int

const (
	// Regular is the normal weight.
	Regular Weight = iota
	// Bold is the bold weight; fonts without a bold file fall back to Regular.
	Bold
	// Italic is the italic style (Latin serif only; other scripts use Regular).
	Italic
)

// Primary returns the file name of the design font (Noto Serif) for weight w.
func Primary(w Weight) string {
	switch w {
	case Bold:
		return "NotoSerif-Bold.ttf"
	case Italic:
		return "NotoSerif-Italic.ttf"
	}
	return "NotoSerif-Regular.ttf"
}

// fallbacks lists the script fonts tried, in order, for characters the
// primary font lacks. Bold variants are used when bundled.
var fallbacks = []string{
	"NotoNaskhArabic",
	"NotoSansHebrew",
	"NotoSansDevanagari",
	"NotoSansBengali",
	"NotoSansTamil",
	"NotoSansTelugu",
	"NotoSansGujarati",
	"NotoSansGurmukhi",
	"NotoSansKannada",
	"NotoSansMalayalam",
	"NotoSansOriya",
	"NotoSansSinhala",
	"NotoSansThai",
	"NotoSansLao",
	"NotoSansKhmer",
	"NotoSansMyanmar",
	"NotoSansArmenian",
	"NotoSansGeorgian",
	"NotoSansEthiopic",
}

// Korean is the Hangul font (regular, bold), tried before CJK: Droid Sans
// Fallback has no Hangul syllables.
var Korean = [2]string{"NanumSquareR.ttf", "NanumSquareB.ttf"}

// CJK is the file name of the Chinese/Japanese/Korean fallback font, tried last.
const CJK = "DroidSansFallbackFull.ttf"

// Chain returns the file names tried, in order, to draw text of weight w:
// the primary font, the script fallbacks (bold where bundled), then CJK.
func Chain(w Weight) []string {
	out := []string{Primary(w)}
	if w == Italic {
		out = append(out, Primary(Regular))
	}
	for _, fam := range fallbacks {
		name := fam + "-Regular.ttf"
		if w == Bold {
			if _, err := fs.Stat(files, fam+"-Bold.ttf"); err == nil {
				name = fam + "-Bold.ttf"
			}
		}
		out = append(out, name)
	}
	if w == Bold {
		out = append(out, Korean[1])
	} else {
		out = append(out, Korean[0])
	}
	return append(out, CJK)
}

// Bytes returns the contents of the bundled font file name (as returned by
// Primary or Chain). The slice is shared: callers must not modify it.
func Bytes(name string) ([]byte, error) {
	if strings.ContainsAny(name, `/\`) || !strings.HasSuffix(name, ".ttf") {
		return nil, fmt.Errorf("font %q: not a bundled font name", name)
	}
	b, err := files.ReadFile(name)
	if err != nil {
		return nil, fmt.Errorf("font %q: %w", name, err)
	}
	return b, nil
}

// Names lists every bundled font file.
func Names() []string {
	ents, _ := fs.ReadDir(files, ".")
	var out []string
	for _, e := range ents {
		if strings.HasSuffix(e.Name(), ".ttf") {
			out = append(out, e.Name())
		}
	}
	return out
}

// Licenses returns the licence texts of the bundled fonts, keyed by file
// name, so a distribution can ship them alongside the binary.
func Licenses() map[string]string {
	out := map[string]string{}
	for _, n := range []string{"LICENSE-OFL-1.1.txt", "LICENSE-Nanum-OFL-1.1.txt", "LICENSE-Apache-2.0.txt"} {
		b, _ := files.ReadFile(n)
		out[n] = string(b)
	}
	return out
}
