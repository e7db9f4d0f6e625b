// Package document renders certificate PDFs with maroto v2.
//
// Text is laid out by this package, not by maroto: every text field is
// normalised (NFC, control and bidi-override characters removed), split into
// runs by bidi direction, script and font coverage (go-text/typesetting's
// segmenter), shaped with HarfBuzz (go-text's port), fitted (shrunk to a
// floor, then wrapped) and ordered visually with the Unicode bidi algorithm.
// Every glyph is written as real text in an embedded CID-keyed font subset
// (TrueType, or CFF for OpenType/CFF fonts such as Noto CJK) at the
// shaper's position: glyphs that stand for one character map to it in the
// font's ToUnicode map; runs changed by shaping (joining, conjuncts, marks)
// carry an ActualText span with their logical text, so extraction and
// copy/paste give the characters. A character no available font can draw
// is an error (ErrUnrenderable): a certificate never shows empty boxes.
//
// Fonts: each script has its fonts (package fonts); a text's weight is one
// across its runs (a script with no bold face is emboldened); Han style is
// Japanese with kana, Korean with Hangul, else the renderer's setting;
// Urdu letters select Nastaliq. See docs/fonts.md.
//
// maroto (gofpdf) draws the page, frames, lines, images and metadata; the
// text and the vector QR code form one Form XObject written by this package
// and spliced into gofpdf's file (see pdfout.go for why).
//
// Fonts come from package fonts (a fonts directory, the embedded set as
// fallback), are loaded lazily, parsed once per process and shared by all
// Renderers with the same fonts directory. Layouts of repeated texts, font subsets and QR
// version templates are cached per process (bounded), so a certificate
// costs about a millisecond of CPU (see the benchmarks).
package document

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/certd-dev/certd/consumer/fonts"
	"github.com/certd-dev/certd/internal/pdfsplice"
	"github.com/johnfercher/go-tree/node"
	"github.com/johnfercher/maroto/v2"
	"github.com/johnfercher/maroto/v2/pkg/components/col"
	"github.com/johnfercher/maroto/v2/pkg/config"
	"github.com/johnfercher/maroto/v2/pkg/consts/orientation"
	"github.com/johnfercher/maroto/v2/pkg/core"
	"github.com/johnfercher/maroto/v2/pkg/core/entity"
)

// Fields are the values a certificate shows. Text fields are untrusted:
// Render sanitises them (see Sanitize).
type Fields struct {
	Name, Designation    string    // learner name as sent, optional title after it
	CourseID, CourseName string    // course id and long course name
	Org, OrgShort        string    // long and short organisation name
	IssuedDate           string    // already formatted, e.g. "February 2nd, 2012"
	IssuedAt             time.Time // PDF creation/modification date: same job, same bytes
	Grade, GradeText     string    // grade and its interstitial text, e.g. "with Distinction"
	CertificateType      string    // what certificates are called, e.g. "Certificate"
	AssociationText      string    // e.g. "a course of study offered by"
	CertificateID        string    // verify_uuid
	VerifyURL            string    // printed and QR-encoded; "" when verification is off
	Verified             bool      // a verified certificate; designs show Title ("Verified Certificate")
	// HanStyle is the course's style of Han characters (ja, zh-Hans,
	// zh-Hant, ko) for texts with neither kana nor Hangul; "" uses the
	// Renderer's (WithHanStyle). An unknown value is ignored.
	HanStyle string
}

var (
	// ErrUnknownDesign means the requested design (or template PDF) does
	// not exist, or the name is path-like. Permanent.
	ErrUnknownDesign = errors.New("unknown certificate design")
	// ErrUnrenderable means a text has characters no available font can
	// draw. Permanent: retrying cannot help and a PDF with empty boxes is
	// never produced.
	ErrUnrenderable = errors.New("text cannot be drawn with the available fonts")
	// ErrTextTooLong means a text does not fit its box even at the
	// smallest size and the allowed number of lines. Permanent.
	ErrTextTooLong = errors.New("text too long for the certificate")
)

// Option configures a Renderer.
type Option func(*Renderer)

// WithDesignDir loads designs from dir at NewRenderer: every *.yaml/*.yml
// file is a design (selected by its name), every *.pdf file is a template
// PDF that can be selected by its file name (drawn with the text layer of
// the design that names it, or else the built-in template layer).
func WithDesignDir(dir string) Option { return func(r *Renderer) { r.dir = dir } }

// WithFontsDir sets the directories fonts are looked up in (by file name,
// first directory first), with the embedded fonts as the fallback. nil
// (the default) searches the system font directories (fonts.DefaultDirs);
// an empty slice uses the embedded fonts only.
func WithFontsDir(dirs []string) Option { return func(r *Renderer) { r.fontDirs = dirs } }

// WithHanStyle sets the regional style of Han characters in texts with
// neither kana nor Hangul (default fonts.DefaultHan, Simplified Chinese).
func WithHanStyle(s fonts.HanStyle) Option { return func(r *Renderer) { r.han = s } }

// WithLogger sets the logger (default slog.Default()).
func WithLogger(l *slog.Logger) Option { return func(r *Renderer) { r.log = l } }

// Renderer renders certificates. It is safe for concurrent use.
type Renderer struct {
	dir      string
	log      *slog.Logger
	fonts    *fontLib
	fontDirs []string
	han      fonts.HanStyle
	def      *Design
	designs  map[string]*Design // by name and by template PDF file name
	files    map[string][]byte  // design-directory files (images, template PDFs)
}

// NewRenderer loads the design font (once per process; other fonts load
// when a text first needs them) and the designs.
func NewRenderer(opts ...Option) (*Renderer, error) {
	r := &Renderer{log: slog.Default(), designs: map[string]*Design{}, files: map[string][]byte{}}
	for _, o := range opts {
		o(r)
	}
	l, err := loadFontLib(r.fontDirs...)
	if err != nil {
		return nil, fmt.Errorf("load fonts: %w", err)
	}
	r.fonts = l
	if r.def, err = parseDesign(defaultDesignYAML, "default"); err != nil {
		return nil, err
	}
	if r.dir != "" {
		if err := r.loadDir(r.dir); err != nil {
			return nil, err
		}
	}
	return r, nil
}

// maxDesignFile bounds each file read from the design directory.
const maxDesignFile = 64 << 20

// loadDir reads the designs of dir: its regular files only, through
// os.Root, so a link (or a file swapped for one) never reads outside it.
func (r *Renderer) loadDir(dir string) error {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return fmt.Errorf("design dir: %w", err)
	}
	defer root.Close()
	ents, err := fs.ReadDir(root.FS(), ".")
	if err != nil {
		return fmt.Errorf("design dir %s: %w", dir, err)
	}
	readFile := func(n string) ([]byte, error) {
		f, err := root.Open(n)
		if err != nil {
			return nil, fmt.Errorf("design dir %s: %w", dir, err)
		}
		defer f.Close()
		b, err := io.ReadAll(io.LimitReader(f, maxDesignFile+1))
		if err != nil {
			return nil, fmt.Errorf("design dir %s: %s: %w", dir, n, err)
		}
		if len(b) > maxDesignFile {
			return nil, fmt.Errorf("design dir %s: %s is larger than %d MiB", dir, n, maxDesignFile>>20)
		}
		return b, nil
	}
	var yamls []string
	for _, e := range ents {
		if !e.Type().IsRegular() {
			continue
		}
		n := e.Name()
		switch strings.ToLower(filepath.Ext(n)) {
		case ".yaml", ".yml":
			yamls = append(yamls, n)
		case ".pdf", ".png", ".jpg", ".jpeg":
			b, err := readFile(n)
			if err != nil {
				return err
			}
			r.files[n] = b
		}
	}
	for _, n := range yamls {
		b, err := readFile(n)
		if err != nil {
			return err
		}
		d, err := parseDesign(b, strings.TrimSuffix(n, filepath.Ext(n)))
		if err != nil {
			return err
		}
		for _, f := range append([]string{d.Background, d.TemplatePDF}, imageFiles(d)...) {
			if _, ok := r.files[f]; f != "" && !ok {
				return fmt.Errorf("design %s: file %q not found in %s", d.Name, f, dir)
			}
		}
		r.designs[d.Name] = d
		if d.TemplatePDF != "" {
			r.designs[d.TemplatePDF] = d
		}
		r.log.Info("certificate design loaded", "design", d.Name, "file", n)
	}
	for n := range r.files {
		if strings.EqualFold(filepath.Ext(n), ".pdf") {
			if _, ok := r.designs[n]; !ok {
				d, err := parseDesign(templateLayerYAML, n)
				if err != nil {
					return err
				}
				d.Name = n
				d.TemplatePDF = n
				r.designs[n] = d
			}
		}
	}
	for n, d := range r.designs {
		if d.TemplatePDF != "" && d.dims[0] == 0 {
			w, h, err := templatePageSize(r.files[d.TemplatePDF])
			if err != nil {
				return fmt.Errorf("design %s (%s): %w", d.Name, n, err)
			}
			d.dims = [2]float64{w, h}
		}
	}
	return nil
}

func imageFiles(d *Design) []string {
	var out []string
	for _, im := range d.Images {
		out = append(out, im.File)
	}
	return out
}

// design resolves a design name from a job. Path-like names never reach
// the filesystem.
func (r *Renderer) design(name string) (*Design, error) {
	if name == "" || name == "default" {
		return r.def, nil
	}
	if !isPlainFileName(name) {
		return nil, fmt.Errorf("%w: %q is not a plain name", ErrUnknownDesign, name)
	}
	if d, ok := r.designs[name]; ok {
		return d, nil
	}
	return nil, fmt.Errorf("%w: %q", ErrUnknownDesign, name)
}

// Render draws a certificate with the named design ("" = built-in
// default; otherwise a design name or a template PDF file name) and
// returns the PDF. Same design and fields give the same bytes.
func (r *Renderer) Render(design string, f Fields) ([]byte, error) {
	d, err := r.design(design)
	if err != nil {
		return nil, err
	}
	f = sanitizeFields(f)
	pg, err := r.prepare(d, f)
	if err != nil {
		return nil, err
	}
	return r.generate(d, f, pg)
}

// RenderContext is Render for callers that carry a context; rendering is
// CPU-bound and short, so the context is only checked before starting.
func (r *Renderer) RenderContext(ctx context.Context, design string, f Fields) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return r.Render(design, f)
}

func sanitizeFields(f Fields) Fields {
	for _, p := range []*string{&f.Name, &f.Designation, &f.CourseID, &f.CourseName, &f.Org, &f.OrgShort,
		&f.IssuedDate, &f.Grade, &f.GradeText, &f.CertificateType, &f.AssociationText, &f.CertificateID, &f.VerifyURL} {
		*p = Sanitize(*p)
	}
	return f
}

// placedText is a laid-out text field ready to draw.
type placedText struct {
	field *TextField
	block *textBlock
}

// page is everything computed before drawing.
type page struct {
	texts []placedText
	qr    string
}

func (r *Renderer) prepare(d *Design, f Fields) (*page, error) {
	pg := &page{}
	han := r.han
	if h, err := fonts.ParseHanStyle(f.HanStyle); err == nil && f.HanStyle != "" {
		han = h
	}
	var sb strings.Builder
	for i := range d.Texts {
		t := &d.Texts[i]
		sb.Reset()
		if err := t.tmpl.Execute(&sb, f); err != nil {
			return nil, fmt.Errorf("design %s text %d: %w", d.Name, i, err)
		}
		s := Sanitize(sb.String())
		if s == "" {
			continue
		}
		b, err := r.fonts.layoutHan(s, t.weight, han, Fit{Width: t.W, Size: t.Size, MinSize: t.MinSize, MaxLines: t.MaxLines})
		if err != nil {
			return nil, fmt.Errorf("text %q: %w", truncate(s, 40), err)
		}
		pg.texts = append(pg.texts, placedText{field: t, block: b})
	}
	if d.QR != nil {
		sb.Reset()
		if err := d.QR.tmpl.Execute(&sb, f); err != nil {
			return nil, fmt.Errorf("design %s qr: %w", d.Name, err)
		}
		pg.qr = sb.String()
	}
	return pg, nil
}

func truncate(s string, n int) string {
	rs := []rune(s)
	if len(rs) <= n {
		return s
	}
	return string(rs[:n]) + "…"
}

func (r *Renderer) generate(d *Design, f Fields, pg *page) ([]byte, error) {
	w, h := d.pageSize()
	b := config.NewBuilder().
		WithDimensions(w, h).
		WithLeftMargin(0).WithTopMargin(0).WithRightMargin(0).WithBottomMargin(0).
		WithDisableAutoPageBreak(true).
		// gofpdf only writes frames, lines and images (already compressed
		// formats); the text layer is compressed by writeLayer. A gofpdf
		// compression pass costs a fresh zlib writer per document.
		WithCompression(false).
		WithCreator("certd", false).
		WithAuthor(f.Org, true).
		WithSubject(f.CourseName, true).
		WithTitle(strings.TrimSpace(f.Title()+" — "+f.Name), true).
		WithKeywords(strings.Join(nonEmpty(f.CertificateType, f.CourseID, f.CertificateID), ", "), true).
		WithCreationDate(f.IssuedAt)
	if w > h {
		b = b.WithOrientation(orientation.Horizontal)
	}
	cfg := b.Build()
	m := maroto.New(cfg)
	lay := &layer{r: r, d: d, pg: pg, when: f.IssuedAt}
	m.AddRow(h, col.New(12).Add(lay))
	doc, err := m.Generate()
	if err != nil {
		return nil, fmt.Errorf("generate pdf: %w", err)
	}
	if lay.err != nil {
		return nil, lay.err
	}
	out, err := lay.addTextLayer(doc.GetBytes())
	if err != nil {
		return nil, fmt.Errorf("generate pdf: %w", err)
	}
	if d.TemplatePDF != "" {
		return stampOnTemplate(r.files[d.TemplatePDF], out)
	}
	return out, nil
}

func nonEmpty(ss ...string) []string {
	var out []string
	for _, s := range ss {
		if s != "" {
			out = append(out, s)
		}
	}
	return out
}

// layer is a maroto component that draws the whole design on its page.
type layer struct {
	r    *Renderer
	d    *Design
	pg   *page
	when time.Time
	err  error

	// text layer, set by Render
	fonts        *docFonts
	content      []byte
	pageW, pageH float64 // points
}

func (l *layer) SetConfig(*entity.Config) {}
func (l *layer) GetStructure() *node.Node[core.Structure] {
	return node.New(core.Structure{Type: "certd-layer", Value: l.d.Name})
}

func (l *layer) GetHeight(_ core.Provider, cell *entity.Cell) float64 { return cell.Height }

func (l *layer) Render(p core.Provider, cell *entity.Cell) {
	pdf, err := gofpdfOf(p)
	if err != nil {
		l.err = err
		return
	}
	pdf.SetCatalogSort(true) // deterministic object order
	pdf.SetProducer("certd", false)
	if !l.when.IsZero() {
		pdf.SetModificationDate(l.when)
	}
	df, err := collectFonts(l.pg.texts)
	if err != nil {
		l.err = err
		return
	}
	c := newCanvas(pdf, df)
	d := l.d
	if d.Background != "" {
		if err := c.image(l.r.files[d.Background], d.Background, 0, 0, cell.Width, cell.Height, false); err != nil {
			l.err = err
			return
		}
	}
	for _, fr := range d.Frames {
		col, _ := parseColor(fr.Color)
		pdf.SetDrawColor(col.r, col.g, col.b)
		pdf.SetLineWidth(fr.Width)
		pdf.Rect(fr.Inset, fr.Inset, cell.Width-2*fr.Inset, cell.Height-2*fr.Inset, "D")
	}
	for _, ln := range d.Lines {
		col, _ := parseColor(ln.Color)
		pdf.SetDrawColor(col.r, col.g, col.b)
		pdf.SetLineWidth(ln.Width)
		pdf.Line(ln.X1, ln.Y1, ln.X2, ln.Y2)
	}
	for _, im := range d.Images {
		if err := c.image(l.r.files[im.File], im.File, im.X, im.Y, im.W, im.H, true); err != nil {
			l.err = err
			return
		}
	}
	for _, pt := range l.pg.texts {
		c.drawText(pt.block, pt.field)
	}
	if l.pg.qr != "" && d.QR != nil {
		if err := c.qr(l.pg.qr, d.QR); err != nil {
			l.err = err
			return
		}
	}
	if len(c.content) > 0 {
		pdf.RawWriteStr("q " + formName + " Do Q\n")
		l.fonts, l.content = df, c.content
		l.pageW, l.pageH = cell.Width*c.k, cell.Height*c.k
	}
	if err := pdf.Error(); err != nil {
		l.err = fmt.Errorf("draw pdf: %w", err)
	}
}

// addTextLayer appends the text layer drawn by l (if any) to gofpdf's
// finished file.
func (l *layer) addTextLayer(out []byte) ([]byte, error) {
	if len(l.content) == 0 {
		return out, nil
	}
	f, err := pdfsplice.Parse(out)
	if err != nil {
		return nil, err
	}
	w := &pdfsplice.Objects{First: f.Size()}
	writeLayer(w, l.fonts, l.content, l.pageW, l.pageH)
	return f.Splice(w, formName+" "+pdfsplice.Ref(w.First))
}
