package monitoring

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"gopkg.in/yaml.v3"

	"github.com/regent-ha/regent/internal/api"
	"github.com/regent-ha/regent/internal/cluster"
	"github.com/regent-ha/regent/internal/metrics"
)

// promtool returns the path of promtool, skipping the test when it is not
// installed, except in CI (CI=true), where a missing promtool fails it:
// .ci/run installs it (Debian package prometheus).
func promtool(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("promtool")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("promtool is not installed (CI=true): install the Debian package prometheus")
		}
		t.Skip("promtool is not installed (apt-get install -y prometheus); skipping")
	}
	return p
}

func runPromtool(t *testing.T, args ...string) {
	t.Helper()
	cmd := exec.Command(promtool(t), args...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	t.Logf("promtool %s:\n%s", strings.Join(args, " "), out)
}

func TestPromtoolCheckRules(t *testing.T) {
	runPromtool(t, "check", "rules", "regent-rules.yml")
}

func TestPromtoolTestRules(t *testing.T) {
	runPromtool(t, "test", "rules", "regent-rules.test.yml")
}

// ruleFile is the part of a Prometheus rule file the tests read.
type ruleFile struct {
	Groups []struct {
		Name  string `yaml:"name"`
		Rules []struct {
			Alert       string            `yaml:"alert"`
			Record      string            `yaml:"record"`
			Expr        string            `yaml:"expr"`
			For         string            `yaml:"for"`
			Labels      map[string]string `yaml:"labels"`
			Annotations map[string]string `yaml:"annotations"`
		} `yaml:"rules"`
	} `yaml:"groups"`
}

func loadRules(t *testing.T) ruleFile {
	t.Helper()
	var f ruleFile
	if err := yaml.Unmarshal(Rules, &f); err != nil {
		t.Fatalf("parse regent-rules.yml: %v", err)
	}
	if len(f.Groups) == 0 {
		t.Fatal("regent-rules.yml has no groups")
	}
	return f
}

const runbookBase = "https://github.com/regent-ha/regent/blob/main/docs/runbooks.md#"

// TestRulesHaveSeverityAndRunbook: every alert has a known severity, a
// summary, a description and a runbook link to its own section of
// docs/runbooks.md, and every alert has a promtool test.
func TestRulesHaveSeverityAndRunbook(t *testing.T) {
	runbook, err := os.ReadFile(filepath.Join("..", "docs", "runbooks.md"))
	if err != nil {
		t.Fatalf("read docs/runbooks.md: %v", err)
	}
	anchors := markdownAnchors(string(runbook))
	tests, err := os.ReadFile("regent-rules.test.yml")
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, g := range loadRules(t).Groups {
		for _, r := range g.Rules {
			if r.Alert == "" {
				continue
			}
			if seen[r.Alert] {
				t.Errorf("alert %s defined twice", r.Alert)
			}
			seen[r.Alert] = true
			switch r.Labels["severity"] {
			case "critical", "warning", "info":
			default:
				t.Errorf("%s: severity %q, want critical, warning or info", r.Alert, r.Labels["severity"])
			}
			for _, a := range []string{"summary", "description", "runbook_url"} {
				if r.Annotations[a] == "" {
					t.Errorf("%s: no %s annotation", r.Alert, a)
				}
			}
			url := r.Annotations["runbook_url"]
			anchor, ok := strings.CutPrefix(url, runbookBase)
			if !ok {
				t.Errorf("%s: runbook_url %q does not start with %s", r.Alert, url, runbookBase)
				continue
			}
			if anchor != strings.ToLower(r.Alert) {
				t.Errorf("%s: runbook anchor %q, want %q (its own section)", r.Alert, anchor, strings.ToLower(r.Alert))
			}
			if !anchors[anchor] {
				t.Errorf("%s: docs/runbooks.md has no section with anchor #%s", r.Alert, anchor)
			}
			if !bytes.Contains(tests, []byte("alertname: "+r.Alert+"\n")) && !bytes.Contains(tests, []byte("alertname: "+r.Alert+",")) {
				t.Errorf("%s: no promtool test in regent-rules.test.yml", r.Alert)
			}
		}
	}
	if len(seen) == 0 {
		t.Fatal("no alerts found")
	}
}

// markdownAnchors returns GitHub's anchors of the headings of a Markdown
// document: lower case, punctuation dropped, spaces as dashes.
func markdownAnchors(doc string) map[string]bool {
	out := map[string]bool{}
	drop := regexp.MustCompile(`[^a-z0-9 _-]`)
	for _, line := range strings.Split(doc, "\n") {
		if !strings.HasPrefix(line, "#") {
			continue
		}
		h := strings.TrimSpace(strings.TrimLeft(line, "#"))
		h = drop.ReplaceAllString(strings.ToLower(h), "")
		out[strings.ReplaceAll(h, " ", "-")] = true
	}
	return out
}

// exportedMetrics gathers the metric names a primary and a replica export,
// with the _bucket, _sum and _count series of histograms.
func exportedMetrics(t *testing.T) map[string]bool {
	t.Helper()
	now := time.Now()
	replayed := now.Add(-time.Second)
	view := &cluster.Cluster{
		Scope: "demo", Leader: &cluster.Leader{Name: "pg1"}, Status: cluster.Status{Optime: 5 << 20},
		Members: map[string]*cluster.Member{"pg1": {Name: "pg1"}, "pg2": {Name: "pg2"}},
	}
	snaps := []api.Snapshot{{
		Scope: "demo", Name: "pg1", Version: "0.1.0", Taken: now, LastLoop: now,
		Role: cluster.RolePrimary, State: cluster.StateRunning, Writable: true,
		HoldsLeaderKey: true, LeaseDeadline: now.Add(3 * time.Second), LastRenewalConfirmed: now,
		PostmasterStartTime: now.Add(-time.Hour), ServerVersion: 150007, Timeline: 2,
		XLogLocation: 5 << 20,
		Replication: []api.Replica{{ApplicationName: "pg2", State: "streaming", SyncState: "sync",
			SentLSN: 5 << 20, ReplayLSN: 4 << 20, ReplayLagSeconds: 0.1}},
		DCSLastSeen: now, DCSReachable: true, Cluster: view,
		LoopWait: time.Second, TTL: 5 * time.Second, MaximumLagOnFailover: 1 << 20,
		SyncStandbysExpected: 1, WALDiskFreeBytes: 1 << 30, WALDiskTotalBytes: 10 << 30,
	}, {
		Scope: "demo", Name: "pg2", Version: "0.1.0", Taken: now, LastLoop: now,
		Role: cluster.RoleReplica, State: cluster.StateRunning,
		PostmasterStartTime: now.Add(-time.Hour), ServerVersion: 150007, Timeline: 2,
		ReceiveLSN: 5 << 20, ReplayLSN: 4 << 20, ReplayedTimestamp: &replayed,
		ReplicationState: cluster.ReplicationStreaming, SyncStandby: true,
		DCSLastSeen: now, DCSReachable: true, Cluster: view,
		LoopWait: time.Second, TTL: 5 * time.Second, MaximumLagOnFailover: 1 << 20,
	}}
	names := map[string]bool{}
	for _, s := range snaps {
		pub := new(api.Publisher)
		pub.Publish(s)
		m := metrics.New(pub)
		m.ObserveLoop(time.Millisecond)
		m.ObserveRenewal(time.Millisecond, true)
		fams, err := m.Registry().Gather()
		if err != nil {
			t.Fatalf("gather: %v", err)
		}
		for _, f := range fams {
			names[f.GetName()] = true
			if f.GetType() == dto.MetricType_HISTOGRAM {
				for _, suffix := range []string{"_bucket", "_sum", "_count"} {
					names[f.GetName()+suffix] = true
				}
			}
		}
	}
	return names
}

var (
	promqlStrings   = regexp.MustCompile(`"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'`)
	promqlMatchers  = regexp.MustCompile(`\{[^}]*\}`)
	promqlRanges    = regexp.MustCompile(`\[[^\]]*\]`)
	promqlGrouping  = regexp.MustCompile(`\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)`)
	promqlIdent     = regexp.MustCompile(`[a-zA-Z_:][a-zA-Z0-9_:]*`)
	promqlFunction  = regexp.MustCompile(`^\s*\(`)
	promqlOperators = map[string]bool{
		"by": true, "without": true, "on": true, "ignoring": true, "group_left": true, "group_right": true,
		"bool": true, "and": true, "or": true, "unless": true, "offset": true, "inf": true, "nan": true,
		"Inf": true, "NaN": true, "atan2": true,
	}
)

// metricNames returns the metric names a PromQL expression selects:
// identifiers outside strings, label matchers, ranges and grouping
// clauses that are neither functions nor keywords.
func metricNames(expr string) []string {
	e := promqlStrings.ReplaceAllString(expr, `""`)
	e = promqlMatchers.ReplaceAllString(e, " ")
	e = promqlRanges.ReplaceAllString(e, " ")
	e = promqlGrouping.ReplaceAllString(e, " ")
	var out []string
	for _, loc := range promqlIdent.FindAllStringIndex(e, -1) {
		id := e[loc[0]:loc[1]]
		if promqlOperators[id] || promqlFunction.MatchString(e[loc[1]:]) {
			continue
		}
		if loc[0] > 0 && (e[loc[0]-1] >= '0' && e[loc[0]-1] <= '9' || e[loc[0]-1] == '.') {
			continue // a number's exponent or unit
		}
		out = append(out, id)
	}
	return out
}

func TestMetricNames(t *testing.T) {
	got := metricNames(`histogram_quantile(0.9, sum by (scope, le) (rate(a_bucket{x="y}"}[5m]))) > 0.5 * on(scope) group_left b or c{d="e"} == bool 1e3`)
	want := []string{"a_bucket", "b", "c"}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("metricNames = %v, want %v", got, want)
	}
}

// dashboardExprs returns every PromQL expression of the dashboard: panel
// targets, annotation queries and template variable queries.
func dashboardExprs(t *testing.T) []string {
	t.Helper()
	var doc any
	if err := json.Unmarshal(Dashboard, &doc); err != nil {
		t.Fatalf("parse grafana-dashboard.json: %v", err)
	}
	var exprs []string
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			for k, c := range v {
				if s, ok := c.(string); ok && (k == "expr" || k == "definition") {
					exprs = append(exprs, s)
				}
				walk(c)
			}
		case []any:
			for _, c := range v {
				walk(c)
			}
		}
	}
	walk(doc)
	return exprs
}

// grafanaVars are Grafana's variables inside a PromQL query.
var grafanaVars = regexp.MustCompile(`\$__(?:rate_interval|interval|range)`)

// labelValuesQuery is Grafana's label_values(metric, label) variable query.
var labelValuesQuery = regexp.MustCompile(`^label_values\(([a-zA-Z_:][a-zA-Z0-9_:]*)`)

func TestDashboardQueriesExportedMetrics(t *testing.T) {
	exported := exportedMetrics(t)
	exprs := dashboardExprs(t)
	if len(exprs) < 20 {
		t.Fatalf("found only %d queries in the dashboard", len(exprs))
	}
	used := map[string]bool{}
	for _, e := range exprs {
		var names []string
		if m := labelValuesQuery.FindStringSubmatch(e); m != nil {
			names = []string{m[1]}
		} else {
			names = metricNames(grafanaVars.ReplaceAllString(e, "5m"))
		}
		if len(names) == 0 {
			t.Errorf("query %q selects no metric", e)
		}
		for _, n := range names {
			used[n] = true
			if !exported[n] {
				t.Errorf("query %q uses %s, which /metrics does not export", e, n)
			}
		}
	}
	// The dashboard covers the panels: overview, lag, lease, events, loop.
	for _, n := range []string{"patroni_primary", "patroni_postgres_timeline", "patroni_is_paused",
		"regent_replication_standby_replay_lag_bytes", "regent_replication_standby_replay_lag_seconds",
		"regent_lease_remaining_seconds", "regent_lease_renewal_duration_seconds_bucket", "patroni_dcs_last_seen",
		"regent_promotions_total", "regent_demotions_total", "regent_fences_total", "regent_decisions_total",
		"regent_ha_loop_duration_seconds_bucket"} {
		if !used[n] {
			t.Errorf("the dashboard does not show %s", n)
		}
	}
}

func TestDashboardShape(t *testing.T) {
	var d struct {
		SchemaVersion int `json:"schemaVersion"`
		UID           string
		Templating    struct {
			List []struct{ Name, Type string } `json:"list"`
		} `json:"templating"`
		Panels []struct {
			Type       string
			Title      string
			Datasource *struct{ Type, UID string } `json:"datasource"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(Dashboard, &d); err != nil {
		t.Fatal(err)
	}
	if d.SchemaVersion < 36 {
		t.Errorf("schemaVersion %d", d.SchemaVersion)
	}
	vars := map[string]string{}
	for _, v := range d.Templating.List {
		vars[v.Name] = v.Type
	}
	if vars["DS_PROMETHEUS"] != "datasource" || vars["scope"] != "query" {
		t.Errorf("template variables %v, want DS_PROMETHEUS (datasource) and scope (query)", vars)
	}
	var rows []string
	for _, p := range d.Panels {
		if p.Type == "row" {
			rows = append(rows, p.Title)
			continue
		}
		if p.Datasource == nil || p.Datasource.UID != "${DS_PROMETHEUS}" {
			t.Errorf("panel %q does not use ${DS_PROMETHEUS}", p.Title)
		}
	}
	sort.Strings(rows)
	if len(rows) < 5 {
		t.Errorf("rows %v, want overview, replication, lease, events, HA loop", rows)
	}
}

// TestDashboardQueriesParse lets promtool parse every dashboard query (as
// recording rules, Grafana variables replaced).
func TestDashboardQueriesParse(t *testing.T) {
	bin := promtool(t)
	type rule struct {
		Record string `yaml:"record"`
		Expr   string `yaml:"expr"`
	}
	var rules []rule
	for i, e := range dashboardExprs(t) {
		if labelValuesQuery.MatchString(e) {
			continue
		}
		e = grafanaVars.ReplaceAllString(e, "5m")
		e = strings.ReplaceAll(e, "$scope", "demo")
		rules = append(rules, rule{Record: fmt.Sprintf("dashboard:query_%d", i), Expr: e})
	}
	doc := map[string]any{"groups": []any{map[string]any{"name": "dashboard", "rules": rules}}}
	b, err := yaml.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "dashboard-rules.yml")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(bin, "check", "rules", path).CombinedOutput()
	if err != nil {
		t.Fatalf("promtool check rules on the dashboard queries: %v\n%s", err, out)
	}
}

// TestRulesUseExportedMetrics: every metric an alert reads is exported
// (besides Prometheus' own up).
func TestRulesUseExportedMetrics(t *testing.T) {
	exported := exportedMetrics(t)
	exported["up"] = true
	for _, g := range loadRules(t).Groups {
		for _, r := range g.Rules {
			names := metricNames(r.Expr)
			if len(names) == 0 {
				t.Errorf("%s: expression selects no metric", r.Alert)
			}
			for _, n := range names {
				if !exported[n] {
					t.Errorf("%s: uses %s, which /metrics does not export", r.Alert, n)
				}
			}
		}
	}
}
