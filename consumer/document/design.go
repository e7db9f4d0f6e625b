package document

import (
	_ "embed"
	"fmt"
	"strings"
	"text/template"

	"github.com/certd-dev/certd/consumer/fonts"
	yaml "go.yaml.in/yaml/v3"
)

// Design is a certificate layout, loaded from YAML. All positions and sizes
// are millimetres from the top-left corner of the page; font sizes are
// points. Text values are Go text/template strings executed with Fields,
// e.g. "{{.Name}}"; a text that executes to "" is not drawn.
type Design struct {
	// Name selects the design in Render; defaults to the YAML file's base name.
	Name string `yaml:"name"`
	Page struct {
		Size        string `yaml:"size"`        // "A4" (default) or "Letter"
		Orientation string `yaml:"orientation"` // "landscape" (default) or "portrait"
	} `yaml:"page"`
	// Background is an image file (PNG or JPEG) in the design directory,
	// stretched over the whole page. JPEG is much cheaper to embed.
	Background string `yaml:"background"`
	// TemplatePDF is a PDF file in the design directory whose first page
	// is the background: the design's layer is stamped onto it.
	TemplatePDF string `yaml:"template_pdf"`
	// Frames are rectangles inset from the page edge (decorative borders).
	Frames []Frame `yaml:"frames"`
	// Lines are straight lines (e.g. signature lines).
	Lines []Line `yaml:"lines"`
	// Images are pictures (logos, signatures) from the design directory.
	Images []Image `yaml:"images"`
	// Texts are the text fields.
	Texts []TextField `yaml:"texts"`
	// QR is the verification QR code; omitted when its data is empty.
	QR *QR `yaml:"qr"`

	dims [2]float64 // page size in mm taken from the template PDF
}

// Frame is a rectangle Inset mm from every page edge.
type Frame struct {
	Inset float64 `yaml:"inset"`
	Width float64 `yaml:"width"` // line width, mm
	Color string  `yaml:"color"` // #RRGGBB
}

// Line is a straight line from (X1,Y1) to (X2,Y2).
type Line struct {
	X1    float64 `yaml:"x1"`
	Y1    float64 `yaml:"y1"`
	X2    float64 `yaml:"x2"`
	Y2    float64 `yaml:"y2"`
	Width float64 `yaml:"width"`
	Color string  `yaml:"color"`
}

// Image places a PNG or JPEG file from the design directory in a box,
// keeping its aspect ratio, centred.
type Image struct {
	File string  `yaml:"file"`
	X    float64 `yaml:"x"`
	Y    float64 `yaml:"y"`
	W    float64 `yaml:"w"`
	H    float64 `yaml:"h"`
}

// TextField is a text drawn in a box. The text shrinks from Size down to
// MinSize to fit the box width, then wraps onto up to MaxLines lines; a
// text that still needs more lines shrinks further, wrapped, down to half
// of MinSize (so that long names are drawn, not refused).
type TextField struct {
	Text     string  `yaml:"text"`
	X        float64 `yaml:"x"`
	Y        float64 `yaml:"y"`
	W        float64 `yaml:"w"`
	H        float64 `yaml:"h"`
	Font     string  `yaml:"font"` // "regular" (default), "bold", "italic"
	Size     float64 `yaml:"size"`
	MinSize  float64 `yaml:"min_size"`
	MaxLines int     `yaml:"max_lines"`
	Color    string  `yaml:"color"`
	Align    string  `yaml:"align"` // "center" (default), "left", "right", "start" (left for LTR text, right for RTL)

	tmpl   *template.Template
	weight fonts.Weight
	col    rgb
}

// QR is a QR code square of Size mm at (X,Y) encoding Data (a template).
type QR struct {
	Data  string  `yaml:"data"`
	X     float64 `yaml:"x"`
	Y     float64 `yaml:"y"`
	Size  float64 `yaml:"size"`
	Color string  `yaml:"color"`

	tmpl *template.Template
	col  rgb
}

//go:embed default.yaml
var defaultDesignYAML []byte

// parseDesign reads and validates one YAML design.
func parseDesign(data []byte, name string) (*Design, error) {
	var d Design
	dec := yaml.NewDecoder(strings.NewReader(string(data)))
	dec.KnownFields(true)
	if err := dec.Decode(&d); err != nil {
		return nil, fmt.Errorf("design %s: %w", name, err)
	}
	if d.Name == "" {
		d.Name = name
	}
	if err := d.compile(); err != nil {
		return nil, fmt.Errorf("design %s: %w", d.Name, err)
	}
	return &d, nil
}

func (d *Design) compile() error {
	switch strings.ToLower(d.Page.Size) {
	case "", "a4", "letter":
	default:
		return fmt.Errorf("page size %q: want A4 or Letter", d.Page.Size)
	}
	switch strings.ToLower(d.Page.Orientation) {
	case "", "landscape", "portrait":
	default:
		return fmt.Errorf("orientation %q: want landscape or portrait", d.Page.Orientation)
	}
	for _, f := range []string{d.Background, d.TemplatePDF} {
		if f != "" && !isPlainFileName(f) {
			return fmt.Errorf("file %q: must be a file name in the design directory", f)
		}
	}
	for _, im := range d.Images {
		if !isPlainFileName(im.File) {
			return fmt.Errorf("image %q: must be a file name in the design directory", im.File)
		}
	}
	for i := range d.Texts {
		t := &d.Texts[i]
		tm, err := template.New("text").Option("missingkey=error").Parse(t.Text)
		if err != nil {
			return fmt.Errorf("text %d: %w", i, err)
		}
		t.tmpl = tm
		switch strings.ToLower(t.Font) {
		case "", "regular":
			t.weight = fonts.Regular
		case "bold":
			t.weight = fonts.Bold
		case "italic":
			t.weight = fonts.Italic
		default:
			return fmt.Errorf("text %d: font %q: want regular, bold or italic", i, t.Font)
		}
		switch strings.ToLower(t.Align) {
		case "", "center", "left", "right", "start":
		default:
			return fmt.Errorf("text %d: align %q", i, t.Align)
		}
		if t.Size <= 0 {
			t.Size = 12
		}
		if t.MinSize <= 0 || t.MinSize > t.Size {
			t.MinSize = t.Size
		}
		if t.W <= 0 {
			return fmt.Errorf("text %d: w must be > 0", i)
		}
		if t.col, err = parseColor(t.Color); err != nil {
			return fmt.Errorf("text %d: %w", i, err)
		}
	}
	if d.QR != nil {
		tm, err := template.New("qr").Option("missingkey=error").Parse(d.QR.Data)
		if err != nil {
			return fmt.Errorf("qr: %w", err)
		}
		d.QR.tmpl = tm
		if d.QR.Size <= 0 {
			return fmt.Errorf("qr: size must be > 0")
		}
		c := d.QR.Color
		if c == "" {
			c = "#000000"
		}
		if d.QR.col, err = parseColor(c); err != nil {
			return fmt.Errorf("qr: %w", err)
		}
	}
	for _, f := range d.Frames {
		if _, err := parseColor(f.Color); err != nil {
			return fmt.Errorf("frame: %w", err)
		}
	}
	for _, l := range d.Lines {
		if _, err := parseColor(l.Color); err != nil {
			return fmt.Errorf("line: %w", err)
		}
	}
	return nil
}

// DefaultDesign is the name of the built-in design.
const DefaultDesign = "default"

// HasDesign reports whether name selects a design of this renderer: the
// built-in default ("" or "default"), a YAML design's name, or a template
// PDF's file name in the design directory. It only looks the name up: a
// path-like name is never configured and never reaches a file system.
func (r *Renderer) HasDesign(name string) bool {
	if name == "" || name == DefaultDesign {
		return true
	}
	if !isPlainFileName(name) {
		return false
	}
	_, ok := r.designs[name]
	return ok
}

// Title is a certificate's heading, for designs as {{.Title}}: what the
// course calls a certificate (CertificateType, "Certificate" when empty),
// preceded by "Verified " for a verified certificate. Designs can also
// test {{if .Verified}}.
func (f Fields) Title() string {
	t := strings.TrimSpace(f.CertificateType)
	if t == "" {
		t = "Certificate"
	}
	if f.Verified {
		return "Verified " + t
	}
	return t
}

// pageSize returns the page width and height in mm.
func (d *Design) pageSize() (w, h float64) {
	if d.dims[0] > 0 {
		return d.dims[0], d.dims[1]
	}
	w, h = 210, 297
	if strings.EqualFold(d.Page.Size, "letter") {
		w, h = 215.9, 279.4
	}
	if !strings.EqualFold(d.Page.Orientation, "portrait") {
		w, h = h, w
	}
	return w, h
}

// isPlainFileName reports whether name is a bare file name: no directory
// part, not absolute, not "." or "..", no backslash, no NUL.
func isPlainFileName(name string) bool {
	if name == "" || name == "." || name == ".." || len(name) > 255 {
		return false
	}
	return !strings.ContainsAny(name, "/\\\x00:") && !strings.HasPrefix(name, "..")
}
