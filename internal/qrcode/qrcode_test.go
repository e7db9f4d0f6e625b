package qrcode

import (
	"errors"
	"math/rand/v2"
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
			q, err := Encode([]byte(in), m)
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
					if (r < 0x8000) != q.Dark(x, y) {
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
		auto, _ := Encode([]byte(in), -1)
		best := -1
		for m := 0; m < 8; m++ {
			q, _ := Encode([]byte(in), m)
			if p := q.penalty(); best < 0 || p < best {
				best = p
			}
		}
		if p := auto.penalty(); p != best {
			t.Errorf("%d bytes: automatic mask has penalty %d, best is %d", len(in), p, best)
		}
	}
	if _, err := Encode(make([]byte, 2400), -1); err == nil {
		t.Error("2400 bytes fit no QR version at level M; want an error")
	}
}

// TestLinePenalty compares the run-based line penalty with the reference
// formulation on random lines and on lines with finder-like patterns.
func TestLinePenalty(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	runs := make([]int, 0, 64)
	check := func(line []byte) {
		if got, want := linePenalty(line, runs), refLinePenalty(line); got != want {
			t.Fatalf("line %v: penalty %d, reference %d", line, got, want)
		}
	}
	for range 20000 {
		n := 21 + 4*rng.IntN(10)
		line := make([]byte, n)
		for i := range line {
			if rng.IntN(3) == 0 {
				line[i] = 1
			}
		}
		check(line)
		// plant a finder-like pattern with random scale and position
		u := 1 + rng.IntN(2)
		pat := []byte{1, 0, 1, 1, 1, 0, 1}
		at := rng.IntN(n - 7*u + 1)
		for i, c := range pat {
			for j := range u {
				line[at+i*u+j] = c
			}
		}
		for i := 0; i < 4*u && at-1-i >= 0 && rng.IntN(4) > 0; i++ {
			line[at-1-i] = 0
		}
		check(line)
	}
}

// refLinePenalty is the reference (Nayuki's run history) for linePenalty: it scores one row or column by rules 1 (runs of five or
// more) and 3 (finder-like patterns).
func refLinePenalty(line []byte) int {
	const n1, n3 = 3, 40
	n := len(line)
	p := 0
	var hist [7]int
	color := byte(0)
	run := 0
	for _, c := range line {
		if c == color {
			run++
			if run == 5 {
				p += n1
			} else if run > 5 {
				p++
			}
			continue
		}
		refAddHistory(run, &hist, n)
		if color == 0 {
			p += refFinderLike(&hist) * n3
		}
		color, run = c, 1
	}
	if color == 1 {
		refAddHistory(run, &hist, n)
		run = 0
	}
	refAddHistory(run+n, &hist, n)
	return p + refFinderLike(&hist)*n3
}

func refAddHistory(run int, h *[7]int, size int) {
	if h[0] == 0 {
		run += size // light border before the first run
	}
	copy(h[1:], h[:6])
	h[0] = run
}

func refFinderLike(h *[7]int) int {
	n := h[1]
	core := n > 0 && h[2] == n && h[3] == n*3 && h[4] == n && h[5] == n
	c := 0
	if core && h[0] >= n*4 && h[6] >= n {
		c++
	}
	if core && h[6] >= n*4 && h[0] >= n {
		c++
	}
	return c
}

// BenchmarkQR encodes a verify URL (version 5, all eight masks scored).
func BenchmarkQR(b *testing.B) {
	url := []byte("https://certificates.example.org/cert/4f3c2a1b9d8e4f7a8b6c5d4e3f2a1b0c")
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if _, err := Encode(url, -1); err != nil {
			b.Fatal(err)
		}
	}
}

// TestBitPenalty: the bit-parallel penalty equals the byte-wise one for
// every mask of symbols of versions 1 to 11.
func TestBitPenalty(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for v := 1; v <= 11; v++ {
		tp := qrTemplateFor(v)
		if tp.bits == nil {
			t.Fatalf("version %d: no bit masks", v)
		}
		n := tp.size
		for trial := 0; trial < 5; trial++ {
			data := make([]byte, 1+rng.IntN(qrDataCodewords(v)-3)) // fits version v
			for i := range data {
				data[i] = byte(rng.IntN(256))
			}
			for m := 0; m < 8; m++ {
				q, err := Encode(data, m)
				if err != nil {
					t.Fatal(err)
				}
				if q.size > n {
					t.Fatalf("%d bytes need more than version %d", len(data), v)
				}
				n := q.size
				runs := make([]int, 0, n+2)
				if got, want := bitPenalty(linesOf(q.mod, n, false), linesOf(q.mod, n, true), runs), q.penalty(); got != want {
					t.Fatalf("version %d mask %d: bit penalty %d, byte penalty %d", v, m, got, want)
				}
			}
		}
	}
}

// TestBadInput: data beyond version 40 and a mask out of range are errors,
// never a panic; the largest data that fits is encoded.
func TestBadInput(t *testing.T) {
	if _, err := Encode(make([]byte, 2332), -1); !errors.Is(err, ErrTooLong) {
		t.Errorf("2332 bytes: %v, want ErrTooLong", err)
	}
	if c, err := Encode(make([]byte, 2331), -1); err != nil || c.Size() != 177 {
		t.Errorf("2331 bytes (level M, version 40): %v, want a version 40 symbol", err)
	}
	if _, err := Encode([]byte("x"), 8); err == nil {
		t.Error("mask 8 accepted")
	}
}
