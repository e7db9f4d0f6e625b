package document

import (
	"fmt"
	"strings"
	"testing"
)

// Benchmarks render a stream of certificates the way production does:
// every certificate has its own learner name, certificate id and verify
// URL (so names, their glyph subsets and the QR code are never served from
// the per-process caches), while the course, organisation and design's
// fixed texts repeat. The *Cold variants also empty the caches before
// every render (the first certificate of a course after a restart).

// benchNames generate distinct names in one script: name i is built from
// the digits of i in base len(parts).
type nameGen struct {
	parts     []string
	words     int // words per name
	perWord   int // parts per word
	title     bool
	separator string
}

func (g nameGen) name(i int) string {
	x := i*7919 + 104729 // spread consecutive i over the parts
	var words []string
	for w := 0; w < g.words; w++ {
		var sb strings.Builder
		for p := 0; p < g.perWord; p++ {
			sb.WriteString(g.parts[x%len(g.parts)])
			x /= len(g.parts)
			if x == 0 {
				x = i + w + p + 1
			}
		}
		s := sb.String()
		if g.title {
			s = strings.ToUpper(s[:1]) + s[1:]
		}
		words = append(words, s)
	}
	return strings.Join(words, g.separator)
}

var (
	latinNames = nameGen{parts: strings.Fields("an be ca do el fi go ha is jo ka lu ma ne or pa ri sa ta vi wy xe yo zu"),
		words: 2, perWord: 3, title: true, separator: " "}
	cjkNames = nameGen{parts: strings.Split("王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛段雷侯龙史陶黎贺顾毛郝龚邵万钱严武戴莫孔向汤明华伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛超霞平刚桂", ""),
		words: 2, perWord: 3, separator: " "}
	hangulNames = nameGen{parts: strings.Split("김이박최정강조윤장임한오서신권황안송류홍민준연지현우영수진호성은하", ""),
		words: 1, perWord: 3}
	arabicNames = nameGen{parts: strings.Split("ابتثجحخدذرزسشصضطظعغفقكلمنهوي", ""),
		words: 3, perWord: 4, separator: " "}
)

func benchRender(b *testing.B, name func(i int) string, cold bool) {
	r, err := NewRenderer()
	if err != nil {
		b.Fatal(err)
	}
	if _, err := r.Render("", sampleFields(name(-1))); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		f := sampleFields(name(i))
		f.CertificateID = fmt.Sprintf("%032x", 0x5eed0000+i)
		f.VerifyURL = "https://certificates.example.org/cert/" + f.CertificateID
		if cold {
			layouts.clear()
			subsets.clear()
		}
		if _, err := r.Render("", f); err != nil {
			b.Fatalf("%q: %v", f.Name, err)
		}
	}
}

// BenchmarkRenderLatin renders the default design for Latin names.
func BenchmarkRenderLatin(b *testing.B) { benchRender(b, latinNames.name, false) }

// BenchmarkRenderCJK renders the default design for Chinese names followed
// by a Korean one (three fonts for the name).
func BenchmarkRenderCJK(b *testing.B) {
	benchRender(b, func(i int) string { return cjkNames.name(i) + " " + hangulNames.name(i) }, false)
}

// BenchmarkRenderArabic renders the default design for Arabic names.
func BenchmarkRenderArabic(b *testing.B) { benchRender(b, arabicNames.name, false) }

// BenchmarkRenderLatinCold is BenchmarkRenderLatin with empty caches.
func BenchmarkRenderLatinCold(b *testing.B) { benchRender(b, latinNames.name, true) }

// BenchmarkRenderCJKCold is BenchmarkRenderCJK with empty caches.
func BenchmarkRenderCJKCold(b *testing.B) {
	benchRender(b, func(i int) string { return cjkNames.name(i) + " " + hangulNames.name(i) }, true)
}

// TestBenchNames: the benchmark names are distinct and render.
func TestBenchNames(t *testing.T) {
	r := newRenderer(t)
	for _, g := range []func(int) string{latinNames.name, arabicNames.name,
		func(i int) string { return cjkNames.name(i) + " " + hangulNames.name(i) }} {
		seen := map[string]bool{}
		for i := 0; i < 300; i++ {
			n := g(i)
			if seen[n] {
				t.Fatalf("name %d %q repeats", i, n)
			}
			seen[n] = true
		}
		if _, err := r.Render("", sampleFields(g(7))); err != nil {
			t.Errorf("%q: %v", g(7), err)
		}
	}
}
