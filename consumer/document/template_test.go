package document

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/phpdave11/gofpdf"
)

// makeTemplatePDF writes a landscape A4 template with a recognisable
// border and heading, like an operator's certificate-template-ORG-COURSE.pdf.
func makeTemplatePDF(t *testing.T, path string) {
	t.Helper()
	pdf := gofpdf.New("L", "mm", "A4", "")
	pdf.AddPage()
	pdf.SetDrawColor(200, 30, 30)
	pdf.SetLineWidth(3)
	pdf.Rect(5, 5, 287, 200, "D")
	pdf.SetFont("Helvetica", "B", 10)
	pdf.Text(20, 15, "TEMPLATE-HEADING")
	var buf bytes.Buffer
	if err := pdf.Output(&buf); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestTemplatePDF stamps the text layer onto a template PDF from the design
// directory: both the template's and the certificate's text are in the result.
func TestTemplatePDF(t *testing.T) {
	needTool(t, "pdftotext")
	dir := t.TempDir()
	makeTemplatePDF(t, filepath.Join(dir, "certificate-template-edX-DemoX.pdf"))
	r, err := NewRenderer(WithDesignDir(dir))
	if err != nil {
		t.Fatal(err)
	}
	b, err := r.Render("certificate-template-edX-DemoX.pdf", sampleFields("Zoë Ångström"))
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("pdftotext", writeTemp(t, b), "-").Output()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"TEMPLATE-HEADING", "Zoë Ångström", "Demonstration Course"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("stamped PDF lacks %q:\n%s", want, out)
		}
	}
	if _, err := r.Render("../certificate-template-edX-DemoX.pdf", sampleFields("x")); !invalidInput(err) {
		t.Errorf("path-like template: %v", err)
	}
}

// TestYAMLDesign loads a design from YAML with a custom text and page size.
func TestYAMLDesign(t *testing.T) {
	needTool(t, "pdftotext")
	dir := t.TempDir()
	yml := `name: simple
page: {size: Letter, orientation: portrait}
texts:
  - {text: "Awarded to {{.Name}} for {{.CourseName}}", x: 10, y: 50, w: 195, h: 20, font: bold, size: 20, min_size: 10, max_lines: 2}
qr: {data: "{{.VerifyURL}}", x: 80, y: 150, size: 40}
`
	if err := os.WriteFile(filepath.Join(dir, "simple.yaml"), []byte(yml), 0o644); err != nil {
		t.Fatal(err)
	}
	r, err := NewRenderer(WithDesignDir(dir))
	if err != nil {
		t.Fatal(err)
	}
	b, err := r.Render("simple", sampleFields("Дмитрий Иванов"))
	if err != nil {
		t.Fatal(err)
	}
	p := writeTemp(t, b)
	out, _ := exec.Command("pdftotext", p, "-").Output()
	if !strings.Contains(string(out), "Awarded to Дмитрий Иванов for Demonstration Course") {
		t.Errorf("custom design text missing:\n%s", out)
	}
	info, _ := exec.Command("pdfinfo", p).Output()
	if !strings.Contains(string(info), "612 x 792 pts") {
		t.Errorf("want Letter portrait:\n%s", info)
	}
	// a broken design is reported at startup, not per job
	os.WriteFile(filepath.Join(dir, "bad.yaml"), []byte("texts: [{text: '{{.Nope', w: 10}]"), 0o644)
	if _, err := NewRenderer(WithDesignDir(dir)); err == nil {
		t.Error("broken design accepted")
	}
}
