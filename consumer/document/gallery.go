package document

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Sample is a learner name in one script, for the gallery and the tests.
type Sample struct {
	Key    string // file name stem, e.g. "syriac"
	Script string // what a reviewer reads, e.g. "Syriac"
	Name   string
}

// Samples are the names of the gallery: one per supported script, plus
// mixed-script names and names with combining marks. The layout golden
// test (testdata/layout.golden) pins the fonts, weight and run order of
// each.
var Samples = []Sample{
	{"latin", "Latin", "Jane Doe"},
	{"latin-diacritics", "Latin (diacritics)", "Zoë Ångström-Łukasiewicz"},
	{"latin-combining", "Latin (combining marks)", "Ọ̀làdélé Spın̈al"},
	{"vietnamese", "Vietnamese", "Nguyễn Thị Minh Khai"},
	{"greek", "Greek", "Αλέξανδρος Παπαδόπουλος"},
	{"cyrillic", "Cyrillic", "Дмитрий Иванов"},
	{"armenian", "Armenian", "Արամ Խաչատրյան"},
	{"georgian", "Georgian", "გიორგი ბერიძე"},
	{"hebrew", "Hebrew (points)", "שָׁלוֹם כֹּהֵן"},
	{"arabic", "Arabic", "محمد عبد الله"},
	{"persian", "Persian", "فاطمه پژمان"},
	{"urdu", "Urdu (Nastaliq)", "عائشہ صدیقی"},
	{"syriac", "Syriac", "ܐܦܪܝܡ ܣܘܪܝܝܐ"},
	{"thaana", "Thaana", "މުޙައްމަދު ނަޝީދު"},
	{"nko", "N'Ko", "ߡߊߡߊߘߎ ߞߊߣߕߋ"},
	{"adlam", "Adlam", "𞤀𞤦𞤵𞤦𞤢𞤳𞤢𞤪 𞤄𞤢𞤪𞤪𞤭𞤴"},
	{"tifinagh", "Tifinagh", "ⵎⴰⵙⵉⵏⵉⵙⴰ"},
	{"cherokee", "Cherokee", "ᏎᏉᏯ ᎦᏬᏂᎯᏍᏗ"},
	{"canadian-syllabics", "Canadian Aboriginal Syllabics", "ᓱᓴᓐ ᐊᕐᓇᖅ"},
	{"ol-chiki", "Ol Chiki", "ᱨᱚᱜᱩᱱᱟᱛᱷ ᱢᱩᱨᱢᱩ"},
	{"tibetan", "Tibetan", "བསྟན་འཛིན་རྒྱ་མཚོ"},
	{"javanese", "Javanese", "ꦱꦸꦏꦂꦤꦺꦴ"},
	{"balinese", "Balinese", "ᬫᬤᬾ ᬧᬸᬢᬸ"},
	{"sundanese", "Sundanese", "ᮃᮌᮥᮞ᮪ ᮞᮥᮔ᮪ᮓ"},
	{"yi", "Yi", "ꀉꂿ ꑳꌠ"},
	{"vai", "Vai", "ꔖꔜꕯ ꔞꕮꕊ"},
	{"mongolian", "Mongolian (horizontal)", "ᠪᠠᠲᠤ ᠲᠡᠮᠦᠷ"},
	{"devanagari", "Devanagari", "अंकित शर्मा"},
	{"bengali", "Bengali", "সৌরভ গাঙ্গুলী"},
	{"gurmukhi", "Gurmukhi", "ਹਰਪ੍ਰੀਤ ਸਿੰਘ"},
	{"gujarati", "Gujarati", "પ્રિયા પટેલ"},
	{"oriya", "Odia", "ସୁଭାଷ ଚନ୍ଦ୍ର"},
	{"tamil", "Tamil", "தமிழ் செல்வன்"},
	{"telugu", "Telugu", "శ్రీనివాస్"},
	{"kannada", "Kannada", "ಅನಿಲ್ ಕುಮಾರ್"},
	{"malayalam", "Malayalam", "അനിൽ കുമാർ"},
	{"sinhala", "Sinhala", "කුමාර සංගක්කාර"},
	{"thai", "Thai", "สมชาย ใจดี"},
	{"lao", "Lao", "ສົມພອນ ແກ້ວມະນີ"},
	{"khmer", "Khmer", "សុខ ចាន់ដារ៉ា"},
	{"myanmar", "Myanmar", "အောင်ဆန်းစုကြည်"},
	{"ethiopic", "Ethiopic", "አበበ ቢቂላ"},
	{"meetei-mayek", "Meetei Mayek", "ꯃꯅꯤꯄꯨꯔ ꯁꯤꯡꯍ"},
	{"lisu", "Lisu", "ꓡꓲ ꓢꓴ"},
	{"chinese", "Chinese (Han, default style)", "王小明"},
	{"chinese-extension", "Chinese (extension B)", "陈𡒄"},
	{"japanese", "Japanese (kana → Japanese Han)", "山田 はなこ"},
	{"japanese-extension", "Japanese (extension B)", "𠮷田 さくら"},
	{"korean", "Korean", "김민준"},
	{"mixed-latin-arabic", "Mixed Latin + Arabic", "Ahmed أحمد"},
	{"mixed-rtl", "Mixed Arabic + Latin (RTL)", "محمد Smith"},
	{"mixed-cjk", "Mixed Latin + Han", "Li 李 Wei"},
	{"mixed-indic", "Mixed Latin + Devanagari", "Priya प्रिया"},
	{"mixed-syriac-cyrillic", "Mixed Cyrillic + Syriac", "Иван ܐܦܪܝܡ"},
}

// WriteGallery renders one certificate per sample into dir (KEY.pdf) and
// a contact sheet (contact-sheet.pdf) listing every sample by script, so
// a reviewer can check every script by eye. It stops at the first error.
func (r *Renderer) WriteGallery(dir string, samples []Sample) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("gallery: %w", err)
	}
	for _, s := range samples {
		b, err := r.Render("", galleryFields(s.Name))
		if err != nil {
			return fmt.Errorf("gallery %s %q: %w", s.Script, s.Name, err)
		}
		if err := os.WriteFile(filepath.Join(dir, s.Key+".pdf"), b, 0o644); err != nil {
			return fmt.Errorf("gallery: %w", err)
		}
	}
	b, err := r.ContactSheet(samples)
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "contact-sheet.pdf"), b, 0o644); err != nil {
		return fmt.Errorf("gallery: %w", err)
	}
	return nil
}

func galleryFields(name string) Fields {
	return Fields{Name: name, CourseName: "Demonstration Course", CourseID: "course-v1:certd+Gallery+2026",
		Org: "certd", OrgShort: "certd", IssuedDate: "gallery", CertificateType: "Certificate of Achievement",
		AssociationText: "a course of study offered by"}
}

// ContactSheet renders every sample on A4 portrait pages' worth of rows
// (two columns, up to 30 rows each): the script in small type, the name
// below it in the bold name font.
func (r *Renderer) ContactSheet(samples []Sample) ([]byte, error) {
	const rows = 30
	if len(samples) > 2*rows {
		return nil, fmt.Errorf("contact sheet: %d samples, room for %d", len(samples), 2*rows)
	}
	var y strings.Builder
	y.WriteString("name: contact-sheet\npage: {size: A4, orientation: portrait}\ntexts:\n")
	y.WriteString(`  - {text: "certd script gallery", x: 10, y: 6, w: 190, h: 6, font: bold, size: 12, color: "#1F3A5F"}` + "\n")
	for i, s := range samples {
		x := 10.0 + float64(i/rows)*97
		top := 14.0 + float64(i%rows)*9.2
		fmt.Fprintf(&y, "  - {text: %s, x: %g, y: %g, w: 93, h: 3, size: 6, align: left, color: \"#6A6A6A\"}\n", quoteLiteral(s.Script), x, top)
		fmt.Fprintf(&y, "  - {text: %s, x: %g, y: %g, w: 93, h: 6, font: bold, size: 13, min_size: 6, align: left, color: \"#111111\"}\n", quoteLiteral(s.Name), x, top+3)
	}
	d, err := parseDesign([]byte(y.String()), "contact-sheet")
	if err != nil {
		return nil, fmt.Errorf("contact sheet: %w", err)
	}
	f := sanitizeFields(Fields{})
	pg, err := r.prepare(d, f)
	if err != nil {
		return nil, fmt.Errorf("contact sheet: %w", err)
	}
	return r.generate(d, f, pg)
}

// quoteLiteral quotes s as a YAML scalar holding a template that prints s
// verbatim.
func quoteLiteral(s string) string {
	t, _ := json.Marshal(s)
	q, _ := json.Marshal("{{" + string(t) + "}}")
	return string(q)
}
