// Package fonts finds the font files certificates are drawn with.
//
// Fonts come from a fonts directory (the fonts-dir setting; by default the
// system font directories, where Debian's fonts-noto-core,
// fonts-noto-cjk and fonts-hanazono install them), with a
// small set embedded in the binary as the fallback. A font is named by its
// file name ("NotoSansSyriac-Regular.ttf"): a file of that name in a fonts
// directory wins over the embedded one.
//
// Invariants:
//   - Nothing is read at start. The directories are indexed by file name
//     only (one directory walk, on the first lookup); font bytes are read
//     by the caller's first Open of that name, never before.
//   - Every embedded font has its licence embedded beside it (LICENSES
//     maps each file to its licence text; a test enforces it).
//   - Lookups are safe for concurrent use.
package fonts

import (
	"bufio"
	"bytes"
	"embed"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
)

//go:embed *.ttf LICENSE-*.txt LICENSES
var files embed.FS

// Weight selects the regular, bold or italic member of a font family.
type Weight int

const (
	// Regular is the normal weight.
	Regular Weight = iota
	// Bold is the bold weight. A script with no bold file is drawn with
	// its regular font emboldened by the renderer.
	Bold
	// Italic is the italic style (Latin serif only; other scripts use
	// their regular font).
	Italic
)

// DefaultDirs are the directories searched when no fonts directory is
// configured: where Debian and most Linux distributions install fonts.
var DefaultDirs = []string{"/usr/share/fonts", "/usr/local/share/fonts"}

// maxFontFile bounds the size of one font file read (the largest font
// certd uses, HanaMinB, is 31 MB).
const maxFontFile = 64 << 20

// Dir is a set of font directories with the embedded fonts as fallback.
type Dir struct {
	dirs []string

	once  sync.Once
	index map[string]string // file name -> path of the first file of that name
}

// NewDir returns a font source searching dirs in order (nil: DefaultDirs;
// an empty non-nil slice: embedded fonts only). Directories are not read
// until the first lookup; a missing directory is skipped.
func NewDir(dirs []string) *Dir {
	if dirs == nil {
		dirs = DefaultDirs
	}
	return &Dir{dirs: dirs}
}

// ParseDirs splits a fonts-dir setting: paths separated by the OS list
// separator (':' on Unix). "" means DefaultDirs; "none" means embedded
// fonts only.
func ParseDirs(s string) []string {
	switch strings.TrimSpace(s) {
	case "":
		return nil
	case "none":
		return []string{}
	}
	var out []string
	for _, d := range filepath.SplitList(s) {
		if d = strings.TrimSpace(d); d != "" {
			out = append(out, d)
		}
	}
	return out
}

func (d *Dir) scan() {
	d.once.Do(func() {
		d.index = map[string]string{}
		for _, root := range d.dirs {
			filepath.WalkDir(root, func(p string, e fs.DirEntry, err error) error {
				if err != nil {
					if e != nil && e.IsDir() && p != root {
						return fs.SkipDir
					}
					return nil
				}
				if e.Type().IsRegular() && isFontName(e.Name()) {
					if _, ok := d.index[e.Name()]; !ok {
						d.index[e.Name()] = p
					}
				}
				return nil
			})
		}
	})
}

func isFontName(n string) bool {
	switch strings.ToLower(filepath.Ext(n)) {
	case ".ttf", ".otf", ".ttc":
		return true
	}
	return false
}

// Has reports whether a font file of that name is available, in a fonts
// directory or embedded.
func (d *Dir) Has(name string) bool {
	d.scan()
	if _, ok := d.index[name]; ok {
		return true
	}
	_, err := fs.Stat(files, name)
	return err == nil && isFontName(name)
}

// Origin says where name comes from: its path, "embedded", or "".
func (d *Dir) Origin(name string) string {
	d.scan()
	if p, ok := d.index[name]; ok {
		return p
	}
	if _, err := fs.Stat(files, name); err == nil {
		return "embedded"
	}
	return ""
}

// Open returns the bytes of font file name: from the fonts directories
// (mapped read-only; never modify them), else embedded. The caller parses
// it once and keeps it: each call maps the file again.
func (d *Dir) Open(name string) ([]byte, error) {
	if strings.ContainsAny(name, `/\`) || !isFontName(name) {
		return nil, fmt.Errorf("font %q: not a font file name", name)
	}
	d.scan()
	if p, ok := d.index[name]; ok {
		f, err := os.Open(p)
		if err != nil {
			return nil, fmt.Errorf("font %s: %w", name, err)
		}
		defer f.Close()
		st, err := f.Stat()
		if err != nil {
			return nil, fmt.Errorf("font %s: %w", name, err)
		}
		if st.Size() > maxFontFile {
			return nil, fmt.Errorf("font %s: %d bytes (limit %d)", p, st.Size(), maxFontFile)
		}
		b, err := mapFile(f, st.Size())
		if err != nil {
			return nil, fmt.Errorf("font %s: %w", name, err)
		}
		return b, nil
	}
	b, err := files.ReadFile(name)
	if err != nil {
		return nil, fmt.Errorf("font %q: not in %s and not embedded", name, strings.Join(d.dirs, ":"))
	}
	return b, nil
}

// OpenEmbedded returns the embedded font file name, ignoring the fonts
// directories (the fallback when a directory's file does not parse).
func OpenEmbedded(name string) ([]byte, error) {
	b, err := files.ReadFile(name)
	if err != nil || !isFontName(name) {
		return nil, fmt.Errorf("font %q: not embedded", name)
	}
	return b, nil
}

// Embedded lists every embedded font file.
func Embedded() []string {
	ents, _ := fs.ReadDir(files, ".")
	var out []string
	for _, e := range ents {
		if isFontName(e.Name()) {
			out = append(out, e.Name())
		}
	}
	return out
}

// Licenses maps every embedded font file to the name of its licence file
// and that file's text, as listed in the embedded LICENSES manifest. A
// font missing from the manifest is absent from the map.
func Licenses() map[string]License {
	out := map[string]License{}
	b, _ := files.ReadFile("LICENSES")
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		text, _ := files.ReadFile(f[1])
		out[f[0]] = License{File: f[1], Text: string(text), Holder: strings.Join(f[2:], " ")}
	}
	return out
}

// License is the licence of one embedded font.
type License struct {
	File   string // licence text file, beside the font
	Text   string
	Holder string // copyright holder, from the manifest
}

// LicenseFiles returns the licence texts of the embedded fonts keyed by
// file name, so a distribution can ship them alongside the binary.
func LicenseFiles() map[string]string {
	out := map[string]string{}
	for _, l := range Licenses() {
		out[l.File] = l.Text
	}
	return out
}
