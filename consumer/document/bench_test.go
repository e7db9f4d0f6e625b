package document

import "testing"

func benchRender(b *testing.B, name string) {
	r, err := NewRenderer()
	if err != nil {
		b.Fatal(err)
	}
	f := sampleFields(name)
	if _, err := r.Render("", f); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := r.Render("", f); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRenderLatin renders the default design for a Latin name.
func BenchmarkRenderLatin(b *testing.B) { benchRender(b, "Jane Doe") }

// BenchmarkRenderCJK renders the default design for a Chinese/Japanese/Korean name.
func BenchmarkRenderCJK(b *testing.B) { benchRender(b, "王小明 山田太郎 김민준") }

// BenchmarkRenderArabic renders the default design for an Arabic name.
func BenchmarkRenderArabic(b *testing.B) { benchRender(b, "محمد عبد الله") }
