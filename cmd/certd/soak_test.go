package main

import (
	"regexp"
	"strings"
	"testing"
)

var soakSampleLine = regexp.MustCompile(`(?m)^ +[0-9.]+ +[0-9]+ +[0-9.]+ +[0-9.]+ +[0-9]+ +[0-9]+$`)

// A short soak keeps the pipeline busy, prints a sample line per interval
// and a verdict on growth, and still ends with the summary line.
func TestSoakPrintsSamplesAndVerdict(t *testing.T) {
	out := runBenchCmd(t, "--duration", "2s", "--every", "400ms", "--rate", "20", "--workers", "2")
	if n := len(soakSampleLine.FindAllString(out, -1)); n != 5 {
		t.Errorf("%d sample lines, want 5 (2s every 400ms):\n%s", n, out)
	}
	for _, want := range []string{"soak: 20 jobs/s for 2s", "rss_mb=", "goroutines=", "open_files=", "(steady 20/s)"} {
		if !strings.Contains(out, want) {
			t.Errorf("soak output lacks %q:\n%s", want, out)
		}
	}
	if !strings.Contains(out, "soak: nothing grew") && !strings.Contains(out, "soak: GREW") {
		t.Errorf("no verdict:\n%s", out)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if last := lines[len(lines)-1]; !benchLastLine.MatchString(last) {
		t.Errorf("last line %q does not have the summary format", last)
	}
}

// The verdict tells a level, noisy series from a leak.
func TestSoakVerdict(t *testing.T) {
	var level, leak []soakSample
	for i := range 20 {
		s := soakSample{rssMB: 100 + float64(i%3)*4, heapMB: 30 + float64(i%2)*2, goroutines: 90 + i%5, openFiles: 24 + i%2}
		level = append(level, s)
		s.goroutines += 5 * i // one stuck goroutine per job batch
		leak = append(leak, s)
	}
	if v := soakVerdict(level); !strings.Contains(v, "soak: nothing grew") {
		t.Errorf("level series: %s", v)
	}
	if v := soakVerdict(leak); !strings.Contains(v, "soak: GREW: goroutines") {
		t.Errorf("goroutine leak: %s", v)
	}
	// A rising floor under large spikes (every other sample) is growth.
	var spiky []soakSample
	for i := range 20 {
		s := level[i]
		s.heapMB = 40 + 2*float64(i)
		if i%2 == 1 {
			s.heapMB += 80
		}
		spiky = append(spiky, s)
	}
	if v := soakVerdict(spiky); !strings.Contains(v, "soak: GREW: heap_mb") {
		t.Errorf("rising floor under spikes: %s", v)
	}
	if v := soakVerdict(level[:3]); !strings.Contains(v, "too short") {
		t.Errorf("3 samples: %s", v)
	}
}

// A soak needs a rate and an interval that fits.
func TestSoakRefusesBadSettings(t *testing.T) {
	for _, o := range []benchOpts{
		{duration: 1e9, every: 1e8},          // no rate
		{duration: 1e9, every: 2e9, rate: 5}, // interval longer than the soak
		{duration: -1, every: 1e8, rate: 5},  // negative
	} {
		if checkSoakOpts(o) == nil {
			t.Errorf("%+v accepted", o)
		}
	}
}
