package main

// deploy/Dockerfile builds a static, non-root image with nothing but certd
// and the files it reads (CA bundle, time zones, fonts): checked by parsing
// the Dockerfile and by listing certd's dependencies the way its build
// stage builds them (CGO off). deploy/image builds the same image without
// Docker and checks the result.

import (
	"bufio"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// instruction is one Dockerfile instruction, continuation lines joined.
type instruction struct {
	cmd, args string
	line      int
}

// parseDockerfile splits a Dockerfile into instructions: comments and
// blank lines dropped, lines ending in a backslash joined.
func parseDockerfile(t *testing.T, path string) []instruction {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []instruction
	var cur strings.Builder
	start := 0
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if cur.Len() == 0 && (line == "" || strings.HasPrefix(line, "#")) {
			continue
		}
		if cur.Len() == 0 {
			start = n
		}
		if s, ok := strings.CutSuffix(line, `\`); ok {
			cur.WriteString(s + " ")
			continue
		}
		cur.WriteString(line)
		cmd, args, _ := strings.Cut(cur.String(), " ")
		out = append(out, instruction{cmd: strings.ToUpper(cmd), args: strings.TrimSpace(args), line: start})
		cur.Reset()
	}
	if cur.Len() > 0 {
		t.Errorf("%s: ends in a continuation line", path)
	}
	return out
}

// The final stage is an empty base with only files copied in (no RUN: no
// shell is needed or present), runs as a numeric non-root user, and starts
// certd in exec form; the build stage builds ./cmd/certd with CGO off on
// the Go release go.mod names; a Debian stage installs the font packages
// docs/fonts.md lists and the final stage copies /usr/share/fonts, certd's
// default fonts-dir, from it.
func TestDeployDockerfile(t *testing.T) {
	path := filepath.Join(deployDir, "Dockerfile")
	ins := parseDockerfile(t, path)
	known := map[string]bool{"FROM": true, "WORKDIR": true, "COPY": true, "RUN": true, "USER": true, "EXPOSE": true, "ENTRYPOINT": true, "CMD": true, "ENV": true, "ARG": true, "LABEL": true}
	var stages [][]instruction
	for _, in := range ins {
		if !known[in.cmd] {
			t.Errorf("%s:%d: unknown instruction %s", path, in.line, in.cmd)
		}
		if in.cmd == "FROM" {
			stages = append(stages, nil)
		}
		if len(stages) == 0 {
			t.Fatalf("%s:%d: %s before FROM", path, in.line, in.cmd)
		}
		stages[len(stages)-1] = append(stages[len(stages)-1], in)
	}
	if len(stages) < 2 {
		t.Fatalf("%s: %d stages, want a build stage and a final one", path, len(stages))
	}

	build := stages[0]
	mod, err := os.ReadFile("../../go.mod")
	if err != nil {
		t.Fatal(err)
	}
	goVer := regexp.MustCompile(`(?m)^go (\d+\.\d+)`).FindSubmatch(mod)
	if from := build[0].args; goVer == nil || !strings.HasPrefix(from, "golang:"+string(goVer[1])) {
		t.Errorf("build stage FROM %q does not match go.mod's go %s", from, goVer[1])
	}
	var buildCmd string
	for _, in := range build {
		if in.cmd == "RUN" && strings.Contains(in.args, "go build") {
			buildCmd = in.args
		}
	}
	if !strings.Contains(buildCmd, "CGO_ENABLED=0") || !strings.Contains(buildCmd, "./cmd/certd") {
		t.Errorf("build stage builds with %q; want CGO_ENABLED=0 go build ./cmd/certd", buildCmd)
	}

	final := stages[len(stages)-1]
	if base := final[0].args; base != "scratch" && !strings.HasPrefix(base, "gcr.io/distroless/static") {
		t.Errorf("final stage FROM %q: want scratch or distroless/static", base)
	}
	var user, entry string
	for _, in := range final {
		switch in.cmd {
		case "RUN":
			t.Errorf("%s:%d: RUN in the final stage needs a shell the image should not have", path, in.line)
		case "USER":
			user = in.args
		case "ENTRYPOINT":
			entry = in.args
		}
	}
	uid, _, _ := strings.Cut(user, ":")
	if n, err := strconv.Atoi(uid); err != nil || n == 0 {
		t.Errorf("USER %q: want a numeric non-root uid (Kubernetes runAsNonRoot checks numbers)", user)
	}
	var argv []string
	if err := json.Unmarshal([]byte(entry), &argv); err != nil || len(argv) == 0 || filepath.Base(argv[0]) != "certd" {
		t.Errorf("ENTRYPOINT %s: want exec form running certd (no shell)", entry)
	}
	copied := false
	for _, in := range final {
		if in.cmd == "COPY" && strings.HasSuffix(in.args, " "+argv[0]) {
			copied = true
		}
	}
	if !copied {
		t.Errorf("the final stage does not copy certd to %s", argv[0])
	}
	checkDockerfileFonts(t, path, stages)

	// With CGO off Go links internally and the result is static; what
	// could break that is a dependency that needs cgo. Every package certd
	// imports must build without it. (Building the binary here would
	// recompile everything for CGO_ENABLED=0: minutes on a small machine.)
	cmd := exec.Command("go", "list", "-deps", "-f", "{{.ImportPath}} {{if .Incomplete}}INCOMPLETE{{end}}", ".")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	out, err := cmd.CombinedOutput()
	if err != nil || strings.Contains(string(out), "INCOMPLETE") {
		t.Errorf("CGO_ENABLED=0 go list -deps ./cmd/certd: %v\n%s", err, out)
	}
	if strings.Contains(string(out), "runtime/cgo") {
		t.Error("with CGO_ENABLED=0 certd still links runtime/cgo")
	}
}

// checkDockerfileFonts checks that the image carries the fonts certd reads:
// certd compiles in only a small fallback set, so a stage must install
// every package docs/fonts.md names, the final stage must copy that stage's
// /usr/share/fonts, and the Dockerfile's comment must say so.
func checkDockerfileFonts(t *testing.T, path string, stages [][]instruction) {
	t.Helper()
	doc, err := os.ReadFile("../../docs/fonts.md")
	if err != nil {
		t.Fatal(err)
	}
	line := regexp.MustCompile(`apt-get install ([a-z0-9 -]+)`).FindSubmatch(doc)
	if line == nil {
		t.Fatal("docs/fonts.md: no apt-get install line")
	}
	pkgs := strings.Fields(string(line[1]))
	fontStage := ""
	for _, st := range stages[:len(stages)-1] {
		var run string
		for _, in := range st {
			if in.cmd == "RUN" && strings.Contains(in.args, "apt-get install") {
				run = in.args
			}
		}
		if run == "" {
			continue
		}
		for _, p := range pkgs {
			if !slices.Contains(strings.Fields(run), p) {
				t.Errorf("%s:%d: apt-get install lacks %s (docs/fonts.md)", path, st[0].line, p)
			}
		}
		if !strings.Contains(run, "--no-install-recommends") {
			t.Errorf("%s:%d: apt-get install without --no-install-recommends pulls in more fonts than certd uses", path, st[0].line)
		}
		if _, as, ok := strings.Cut(st[0].args, " AS "); ok {
			fontStage = strings.TrimSpace(as)
		}
	}
	if fontStage == "" {
		t.Fatalf("%s: no named stage installs the font packages %v", path, pkgs)
	}
	copied := false
	for _, in := range stages[len(stages)-1] {
		f := strings.Fields(in.args)
		if in.cmd == "COPY" && len(f) == 3 && f[0] == "--from="+fontStage && f[1] == "/usr/share/fonts" && f[2] == "/usr/share/fonts" {
			copied = true
		}
	}
	if !copied {
		t.Errorf("%s: the final stage does not COPY --from=%s /usr/share/fonts /usr/share/fonts", path, fontStage)
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var comment strings.Builder
	for _, l := range strings.Split(string(raw), "\n") {
		if c, ok := strings.CutPrefix(strings.TrimSpace(l), "#"); ok {
			comment.WriteString(c + " ")
		}
	}
	text := strings.Join(strings.Fields(comment.String()), " ")
	for _, want := range append([]string{"fonts-dir", "/usr/share/fonts"}, pkgs...) {
		if !strings.Contains(text, want) {
			t.Errorf("%s: the comments do not mention %s", path, want)
		}
	}
	if strings.Contains(text, "fonts are compiled in") {
		t.Errorf("%s: the comments still say the fonts are compiled in", path)
	}
}
