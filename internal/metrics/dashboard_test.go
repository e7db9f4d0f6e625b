package metrics_test

import (
	"encoding/json"
	"os"
	"regexp"
	"strings"
	"testing"
)

// dashboardPath is the Grafana dashboard shipped for these metrics.
const dashboardPath = "../../deploy/grafana/certd.json"

type panel struct {
	Title   string  `json:"title"`
	Panels  []panel `json:"panels"` // rows
	Targets []struct {
		Expr string `json:"expr"`
	} `json:"targets"`
}

// exportedNames are the metric names a certd process serves.
func exportedNames(t *testing.T) map[string]bool {
	names := map[string]bool{}
	for _, l := range strings.Split(scrape(t, exercised().Handler()), "\n") {
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		names[strings.FieldsFunc(l, func(r rune) bool { return r == '{' || r == ' ' })[0]] = true
	}
	return names
}

var (
	identifier = regexp.MustCompile(`[a-zA-Z_:][a-zA-Z0-9_:]*`)
	strLit     = regexp.MustCompile(`"[^"]*"`)
	grouping   = regexp.MustCompile(`(by|without)\s*\([^)]*\)`)
	rangeSel   = regexp.MustCompile(`\[[^\]]*\]`)
	matchers   = regexp.MustCompile(`\{[^}]*\}`)
)

// metricNames returns the identifiers of a PromQL expression that name
// metrics (functions, keywords, labels and strings removed).
func metricNames(expr string) []string {
	expr = strLit.ReplaceAllString(expr, `""`)
	expr = grouping.ReplaceAllString(expr, " ")
	expr = rangeSel.ReplaceAllString(expr, " ")
	expr = matchers.ReplaceAllString(expr, " ")
	var out []string
	for _, loc := range identifier.FindAllStringIndex(expr, -1) {
		id := expr[loc[0]:loc[1]]
		rest := strings.TrimLeft(expr[loc[1]:], " ")
		if strings.HasPrefix(rest, "(") { // a function call
			continue
		}
		out = append(out, id)
	}
	return out
}

// TestDashboardQueriesNameExportedMetrics: every panel of the Grafana
// dashboard queries something, and every metric its queries name is one
// certd exports (a renamed metric would leave an empty panel).
func TestDashboardQueriesNameExportedMetrics(t *testing.T) {
	b, err := os.ReadFile(dashboardPath)
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Panels     []panel `json:"panels"`
		Templating struct {
			List []struct {
				Name       string `json:"name"`
				Definition string `json:"definition"`
			} `json:"list"`
		} `json:"templating"`
	}
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("%s: %v", dashboardPath, err)
	}
	exported := exportedNames(t)
	check := func(where, expr string) {
		names := metricNames(expr)
		if len(names) == 0 {
			t.Errorf("%s: query %q names no metric", where, expr)
		}
		for _, n := range names {
			if !exported[n] {
				t.Errorf("%s: query names %s, which certd does not export", where, n)
			}
		}
	}
	var walk func([]panel)
	count := 0
	walk = func(ps []panel) {
		for _, p := range ps {
			walk(p.Panels)
			if len(p.Panels) > 0 {
				continue // a row
			}
			count++
			if len(p.Targets) == 0 {
				t.Errorf("panel %q has no query", p.Title)
			}
			for _, tg := range p.Targets {
				check("panel "+p.Title, tg.Expr)
			}
		}
	}
	walk(d.Panels)
	if count == 0 {
		t.Fatal("the dashboard has no panels")
	}
	for _, v := range d.Templating.List {
		if strings.HasPrefix(v.Definition, "label_values(") {
			// label_values(<series selector>, <label>)
			args := strings.TrimSuffix(strings.TrimPrefix(v.Definition, "label_values("), ")")
			series, _, _ := strings.Cut(args, ",")
			check("variable "+v.Name, series)
		}
	}
}

// TestMetricNamesParser: the checker above finds metric names and skips
// functions, labels and keywords.
func TestMetricNamesParser(t *testing.T) {
	got := metricNames(`histogram_quantile(0.99, sum by (le, stage) (rate(certd_stage_duration_seconds_bucket{region=~"$region"}[5m]))) / certd_jobs_held`)
	want := []string{"certd_stage_duration_seconds_bucket", "certd_jobs_held"}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("metricNames = %q, want %q", got, want)
	}
}
