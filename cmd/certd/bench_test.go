package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

var benchLastLine = regexp.MustCompile(`^jobs/s=[0-9]+(\.[0-9]+)? p99_ms=[0-9]+(\.[0-9]+)? cpu_ms_per_cert=[0-9]+(\.[0-9]+)? rss_mb=[0-9]+$`)

// runBenchCmd runs `certd bench` in this process and returns its output.
func runBenchCmd(t *testing.T, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var out, errs bytes.Buffer
	if code := run(ctx, append([]string{"bench"}, args...), &out, &errs); code != 0 {
		t.Fatalf("certd bench exited %d\nstdout:\n%s\nstderr:\n%s", code, out.String(), errs.String())
	}
	return out.String()
}

// TestBenchReports: `certd bench` answers every job through the whole
// pipeline and ends with the machine-readable summary line, for jobs from
// the xqueue stand-in and from Submit.
func TestBenchReports(t *testing.T) {
	for _, source := range []string{"xqueue", "submit"} {
		t.Run(source, func(t *testing.T) {
			out := runBenchCmd(t, "--jobs", "6", "--source", source, "--workers", "2")
			lines := strings.Split(strings.TrimSpace(out), "\n")
			if last := lines[len(lines)-1]; !benchLastLine.MatchString(last) {
				t.Errorf("last line %q does not have the summary format", last)
			}
			for _, want := range []string{"6 jobs (burst) from " + source, "latency submission->answer: p50", "  render ", "  store "} {
				if !strings.Contains(out, want) {
					t.Errorf("report lacks %q:\n%s", want, out)
				}
			}
		})
	}
}

// TestBenchOnS3: with --storage s3 the bench starts versitygw and stores
// the certificates there.
func TestBenchOnS3(t *testing.T) {
	gopath := os.Getenv("GOPATH")
	if gopath == "" {
		home, _ := os.UserHomeDir()
		gopath = filepath.Join(home, "go")
	}
	t.Setenv("PATH", os.Getenv("PATH")+string(os.PathListSeparator)+filepath.Join(gopath, "bin"))
	out := runBenchCmd(t, "--jobs", "4", "--storage", "s3", "--workers", "2")
	if !strings.Contains(out, "storage s3://bench") {
		t.Errorf("report does not name the S3 storage:\n%s", out)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if last := lines[len(lines)-1]; !benchLastLine.MatchString(last) {
		t.Errorf("last line %q does not have the summary format", last)
	}
}

// TestBenchRefusesBadSettings: nonsense settings are refused before
// anything starts.
func TestBenchRefusesBadSettings(t *testing.T) {
	for _, args := range [][]string{{"--jobs", "0"}, {"--source", "kafka"}, {"--rate", "-1"}} {
		var out, errs bytes.Buffer
		if code := run(context.Background(), append([]string{"bench"}, args...), &out, &errs); code == 0 {
			t.Errorf("certd bench %q succeeded", args)
		}
	}
}
