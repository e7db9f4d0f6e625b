package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// maxSoakSamples bounds the samples a soak keeps (10 days at 1 s).
const maxSoakSamples = 1 << 20

// soakSample is the process's state after one round of a soak.
type soakSample struct {
	at         time.Duration // since the soak started
	jobs       int           // answered so far
	rssMB      float64       // resident now (not the peak)
	heapMB     float64       // live Go heap (after a GC)
	goroutines int
	openFiles  int
}

// sampleProcess reads the current RSS and open files from /proc (Linux)
// and the Go runtime's goroutines and heap.
func sampleProcess() soakSample {
	var s soakSample
	if b, err := os.ReadFile("/proc/self/status"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
				kb, _ := strconv.ParseFloat(f[1], 64)
				s.rssMB = kb / 1024
			}
		}
	}
	if fds, err := os.ReadDir("/proc/self/fd"); err == nil {
		s.openFiles = len(fds)
	}
	s.goroutines = runtime.NumGoroutine()
	runtime.GC() // live heap, not what the last cycle left: a leak shows
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	s.heapMB = float64(ms.HeapAlloc) / (1 << 20)
	return s
}

// soak keeps offering jobs at o.rate for o.duration, in duration/every
// rounds: each round offers rate*every jobs at the rate and waits for
// their answers, then samples the process and prints a line (a round
// takes longer than every only if the pipeline falls behind the rate). At the end it says
// whether RSS, goroutines or open files grew (see grew).
func soak(ctx context.Context, src *benchSource, o benchOpts, w io.Writer, lat *[]time.Duration) (int, error) {
	per := max(1, int(o.rate*o.every.Seconds()+0.5))
	fmt.Fprintf(w, "soak: %.0f jobs/s for %s, a sample every %s (%d jobs)\n", o.rate, o.duration, o.every, per)
	fmt.Fprintf(w, "%8s %8s %8s %8s %10s %10s\n", "t_s", "jobs", "rss_mb", "heap_mb", "goroutines", "open_files")
	var samples []soakSample
	start := time.Now()
	jobs := 0
	rounds := int((o.duration + o.every - 1) / o.every)
	for round := range rounds {
		if err := src.run(ctx, per, o.rate, fmt.Sprintf("s%d-", round), lat); err != nil {
			return jobs, err
		}
		jobs += per
		s := sampleProcess()
		s.at, s.jobs = time.Since(start), jobs
		if len(samples) < maxSoakSamples {
			samples = append(samples, s)
		}
		fmt.Fprintf(w, "%8.1f %8d %8.1f %8.1f %10d %10d\n", s.at.Seconds(), s.jobs, s.rssMB, s.heapMB, s.goroutines, s.openFiles)
	}
	fmt.Fprintln(w, soakVerdict(samples))
	return jobs, nil
}

// soakVerdict says whether anything grew. The first sample (warm-up) is
// left out. A quantity grew when its floor (the least sample) over the
// last quarter is above its floor over the first quarter by more than a
// margin (10% of RSS and heap; 10 goroutines; 5 open files): spikes (a
// GC cycle, a burst) do not move the floor, a leak raises it.
func soakVerdict(samples []soakSample) string {
	if len(samples) > 1 {
		samples = samples[1:]
	}
	if len(samples) < 4 {
		return "soak: too short to tell growth (fewer than 4 samples after the first)"
	}
	q := len(samples) / 4
	first, last := samples[:q], samples[len(samples)-q:]
	type metric struct {
		name string
		get  func(soakSample) float64
		grew func(lo, hi float64) bool
	}
	ms := []metric{
		{"rss_mb", func(s soakSample) float64 { return s.rssMB }, func(a, b float64) bool { return b > a*1.10 }},
		{"heap_mb", func(s soakSample) float64 { return s.heapMB }, func(a, b float64) bool { return b > a*1.10 }},
		{"goroutines", func(s soakSample) float64 { return float64(s.goroutines) }, func(a, b float64) bool { return b > a+10 }},
		{"open_files", func(s soakSample) float64 { return float64(s.openFiles) }, func(a, b float64) bool { return b > a+5 }},
	}
	var grew, parts []string
	for _, m := range ms {
		floor := func(ss []soakSample) float64 {
			lo := m.get(ss[0])
			for _, s := range ss {
				lo = min(lo, m.get(s))
			}
			return lo
		}
		a, b := floor(first), floor(last)
		verdict := "level"
		if m.grew(a, b) {
			verdict = "GREW"
			grew = append(grew, m.name)
		}
		parts = append(parts, fmt.Sprintf("%s=%s(%.0f->%.0f)", m.name, verdict, a, b))
	}
	out := "soak: " + strings.Join(parts, " ")
	if len(grew) == 0 {
		return out + "\nsoak: nothing grew"
	}
	return out + "\nsoak: GREW: " + strings.Join(grew, ", ")
}

// checkSoakOpts refuses a soak without a rate or with a sample interval
// that does not fit in its duration.
func checkSoakOpts(o benchOpts) error {
	if o.duration == 0 {
		return nil
	}
	switch {
	case o.duration < 0:
		return errors.New("--duration: want a positive duration")
	case o.rate <= 0:
		return errors.New("--duration needs --rate: a soak offers a steady load")
	case o.every <= 0 || o.every > o.duration:
		return errors.New("--every: want a positive interval no longer than --duration")
	}
	return nil
}
