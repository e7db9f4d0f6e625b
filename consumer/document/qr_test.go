package document

import (
	"strings"
	"testing"

	"github.com/boombuler/barcode/qr"
)

// TestQRMatchesBoombuler checks the QR encoder against boombuler/barcode
// (a widely used encoder): for URLs of many lengths (versions 1 to 10 and
// a large one), boombuler's symbol must be exactly ours with one of the
// eight masks, and our automatic choice must be the mask of lowest penalty.
func TestQRMatchesBoombuler(t *testing.T) {
	var inputs []string
	for n := 1; n <= 230; n += 7 {
		inputs = append(inputs, "https://certificates.example.org/cert/"+strings.Repeat("4f3c2a1b9d", 30)[:n])
	}
	inputs = append(inputs, "a", "https://x.y/", strings.Repeat("z", 900), "ünïcode ✓ https://例え.jp/")
	for _, in := range inputs {
		ref, err := qr.Encode(in, qr.M, qr.Unicode)
		if err != nil {
			t.Fatal(err)
		}
		n := ref.Bounds().Dx()
		matched := -1
		for m := 0; m < 8 && matched < 0; m++ {
			q, err := encodeQR([]byte(in), m)
			if err != nil {
				t.Fatal(err)
			}
			if q.size != n {
				t.Fatalf("%d bytes: size %d, boombuler %d", len(in), q.size, n)
			}
			same := true
			for y := 0; y < n && same; y++ {
				for x := 0; x < n; x++ {
					r, _, _, _ := ref.At(x, y).RGBA()
					if (r < 0x8000) != q.dark(x, y) {
						same = false
						break
					}
				}
			}
			if same {
				matched = m
			}
		}
		if matched < 0 {
			t.Errorf("%d bytes (%d modules): no mask reproduces boombuler's symbol", len(in), n)
			continue
		}
		auto, _ := encodeQR([]byte(in), -1)
		best := -1
		for m := 0; m < 8; m++ {
			q, _ := encodeQR([]byte(in), m)
			if p := q.penalty(); best < 0 || p < best {
				best = p
			}
		}
		if p := auto.penalty(); p != best {
			t.Errorf("%d bytes: automatic mask has penalty %d, best is %d", len(in), p, best)
		}
	}
	if _, err := encodeQR(make([]byte, 2400), -1); err == nil {
		t.Error("2400 bytes fit no QR version at level M; want an error")
	}
}
