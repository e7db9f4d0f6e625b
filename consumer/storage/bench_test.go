package storage_test

import (
	"testing"

	"github.com/certd-dev/certd/consumer/storage"
	"github.com/certd-dev/certd/consumer/storage/s3test"
)

// benchBackends open an empty store per backend for benchmarks.
var benchBackends = []struct {
	name string
	open func(b *testing.B) storage.Store
}{
	{"file", func(b *testing.B) storage.Store {
		st, err := storage.Open(bg, "file://"+b.TempDir())
		if err != nil {
			b.Fatal(err)
		}
		return st
	}},
	{"s3", func(b *testing.B) storage.Store { return s3test.Start(b).Open(b, "bench") }},
}

// BenchmarkPut60KB measures storing a typical certificate PDF (overwriting
// alternately two keys, as redeliveries do).
func BenchmarkPut60KB(b *testing.B) {
	data := randomBytes(b, 60<<10)
	keys := []string{"downloads/" + uuidA + "/Certificate.pdf", "downloads/" + uuidB + "/Certificate.pdf"}
	for _, bb := range benchBackends {
		b.Run(bb.name, func(b *testing.B) {
			st := bb.open(b)
			b.SetBytes(int64(len(data)))
			i := 0
			for b.Loop() {
				i++
				if err := st.Put(bg, keys[i%2], data, "application/pdf"); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkGet60KB measures reading a typical certificate PDF.
func BenchmarkGet60KB(b *testing.B) {
	data := randomBytes(b, 60<<10)
	key := "downloads/" + uuidA + "/Certificate.pdf"
	for _, bb := range benchBackends {
		b.Run(bb.name, func(b *testing.B) {
			st := bb.open(b)
			mustPut(b, st, key, data, "application/pdf")
			b.SetBytes(int64(len(data)))
			for b.Loop() {
				if _, err := st.Get(bg, key); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
