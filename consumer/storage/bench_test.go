package storage_test

import (
	"runtime"
	"strings"
	"sync/atomic"
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

// BenchmarkPutCertificate measures storing the four files of a signed
// certificate (new uuids each time, as for new certificates) by benchJobs concurrent
// jobs: "each" is one Put per file, "all" is one PutAll.
func BenchmarkPutCertificate(b *testing.B) {
	for _, bb := range benchBackends {
		for _, mode := range []string{"each", "all"} {
			b.Run(bb.name+"/"+mode, func(b *testing.B) {
				st := bb.open(b)
				tmpl := certFiles(b, uuidA, uuidB)
				var seq atomic.Int64
				b.SetParallelism(benchJobs / runtime.GOMAXPROCS(0))
				b.ResetTimer()
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						i := int(seq.Add(1))
						files := certFiles2(tmpl, hexID(2*i), hexID(2*i+1))
						var err error
						if mode == "all" {
							err = storage.PutAll(bg, st, files)
						} else {
							for _, f := range files {
								if err = st.Put(bg, f.Key, f.Data, f.ContentType); err != nil {
									break
								}
							}
						}
						if err != nil {
							b.Error(err)
							return
						}
					}
				})
				b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "certs/s")
			})
		}
	}
}

// certFiles2 is tmpl for other uuids.
func certFiles2(tmpl []storage.File, download, verify string) []storage.File {
	out := make([]storage.File, len(tmpl))
	for i, f := range tmpl {
		f.Key = strings.Replace(strings.Replace(f.Key, uuidA, download, 1), uuidB, verify, 1)
		out[i] = f
	}
	return out
}

// benchJobs is the number of concurrent jobs of BenchmarkPutCertificate
// (the consumer's workers).
var benchJobs = 16
