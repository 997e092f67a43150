package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/regent-ha/regent/internal/cluster"
	"github.com/regent-ha/regent/internal/localcluster"
)

// TestAlertQuality runs a real Prometheus server against a real
// three-member cluster in synchronous mode, with the repository's alert
// rules (monitoring/regent-rules.yml) as they are, and checks the alerts
// end to end: none fires in a steady state; killing the primary fires
// RegentFailover and RegentAgentDown; losing every synchronous standby
// fires RegentSyncStandbyMissing; a replica whose replay is paused while
// the primary writes fires RegentReplicaLagHigh; and each alert resolves
// after the recovery. It measures the detection delay (fault to firing)
// and the resolution delay (recovery to not firing) of each, logs them as
// a table and, with REGENT_ALERT_DOCS=1, writes the table into
// docs/alerting.md.
//
// It takes about seven minutes, so it only runs with REGENT_ALERT_TEST=1:
//
//	REGENT_ALERT_TEST=1 go test -count=1 -timeout 30m -run TestAlertQuality -v ./internal/e2e/
//
// REGENT_PROMETHEUS names the prometheus binary (default /usr/bin/prometheus,
// else prometheus on PATH).
func TestAlertQuality(t *testing.T) {
	if os.Getenv("REGENT_ALERT_TEST") != "1" {
		t.Skip("slow alert-quality test; run it with REGENT_ALERT_TEST=1 (see docs/alerting.md)")
	}
	promBin := prometheusBinary(t)
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	rulesPath := filepath.Join(root, "monitoring", "regent-rules.yml")
	rules := loadRuleTimings(t, rulesPath)

	dyn := fastDCS()
	dyn.SynchronousMode = cluster.SyncOn
	c, _ := startClusterDCS(t, 3, nil, dyn)
	v := waitFor(t, c, 3*time.Minute, "a healthy cluster with a published synchronous standby", func(v *cluster.Cluster) bool {
		return localcluster.Healthy(v, 3) && publishedSync(v) != ""
	})
	leader, standby := v.LeaderName(), publishedSync(v)
	t.Logf("leader %s, synchronous standby %s", leader, standby)

	var targets []string
	for _, m := range c.Spec.Members {
		targets = append(targets, instanceOf(c, m.Name))
	}
	p := startPrometheus(t, promBin, targets, rulesPath)
	mon := startAlertMonitor(t, p)
	meas := measurer{rules: rules, p: p}

	var rows []alertMeasurement
	var unexpected []string
	// RegentFailover counts promotions over 10 minutes: once it fires it
	// stays firing for the rest of the run.
	failoverFiring := alertMatch{name: "RegentFailover"}

	// --- Steady state ----------------------------------------------------
	eventually(t, 60*time.Second, "Prometheus scraping all three members", func() error {
		n, err := p.seriesCount("patroni_primary")
		if err != nil {
			return err
		}
		if n != 3 {
			return fmt.Errorf("patroni_primary has %d series, want 3", n)
		}
		up, err := p.seriesCount("up == 1")
		if err != nil {
			return err
		}
		if up != 3 {
			return fmt.Errorf("%d targets up, want 3", up)
		}
		return nil
	})
	steadyFrom := time.Now()
	const steady = 60 * time.Second
	time.Sleep(steady) // the monitor polls the alerts every 500 ms meanwhile
	if u := mon.unexpected(steadyFrom, time.Now()); len(u) > 0 {
		t.Errorf("alerts fired in the steady state: %s", strings.Join(u, "; "))
		unexpected = append(unexpected, prefixAll("steady state: ", u)...)
	}
	if n, err := p.seriesCount("patroni_primary"); err != nil || n != 3 {
		t.Fatalf("after the steady state patroni_primary has %d series (%v), want 3", n, err)
	}
	t.Logf("steady state: %s, %d polls of the alerts, %d firing alerts", steady, mon.pollsBetween(steadyFrom, time.Now()), len(unexpected))

	// The primary is killed last: RegentFailover then stays firing for
	// 10 minutes, and a replica that followed the timeline switch and is
	// killed before its first restartpoint on the new timeline still has
	// the old timeline in pg_control, so on restart Regent runs pg_rewind,
	// which fails on such a crashed standby ("standby mode is not supported
	// by single-user servers") and leaves it in "rewind failed".

	// --- a. Every synchronous standby stopped -----------------------------
	t.Run("synchronous standbys stopped", func(t *testing.T) {
		other := otherThan(c, leader, standby)
		missing := alertMatch{name: "RegentSyncStandbyMissing", labels: map[string]string{"name": leader}}
		allowed := []alertMatch{failoverFiring, missing,
			{name: "RegentAgentDown", labels: map[string]string{"instance": instanceOf(c, standby)}},
			{name: "RegentAgentDown", labels: map[string]string{"instance": instanceOf(c, other)}},
		}
		p.midCycle(t)
		from := time.Now()
		killMember(t, c, standby)
		killMember(t, c, other)
		fired := mon.waitFiring(t, from, rules.bound("RegentSyncStandbyMissing", 60*time.Second), missing)

		p.midCycle(t)
		recovered := time.Now()
		for _, n := range []string{standby, other} {
			if err := c.Start(n); err != nil {
				t.Fatal(err)
			}
		}
		resolved := mon.waitResolved(t, recovered, 2*time.Minute, missing)
		v := waitFor(t, c, 3*time.Minute, "three members healthy with a synchronous standby", func(v *cluster.Cluster) bool {
			return localcluster.Healthy(v, 3) && publishedSync(v) != "" && v.LeaderName() == leader
		})
		standby = publishedSync(v)
		mon.waitQuiet(t, 2*time.Minute, failoverFiring)
		rows = append(rows, meas.measure(t, "both replicas killed: no synchronous standby left", missing,
			from, fired[0], recovered, resolved[0], "on primary "+leader+"; recovery: both members restarted"))
		if u := mon.unexpected(from, time.Now(), allowed...); len(u) > 0 {
			t.Errorf("unexpected alerts: %s", strings.Join(u, "; "))
			unexpected = append(unexpected, prefixAll("synchronous standbys stopped: ", u)...)
		}
	})
	if t.Failed() {
		t.FailNow()
	}

	// --- b. Replication stalled --------------------------------------------
	t.Run("replication stalled", func(t *testing.T) {
		// The asynchronous replica: pausing its replay affects no commit.
		replica := otherThan(c, leader, standby)
		lagHigh := alertMatch{name: "RegentReplicaLagHigh", labels: map[string]string{"name": replica}}
		if err := execOn(t, c, leader, "CREATE TABLE alert_lag (id bigserial PRIMARY KEY, pad text)"); err != nil {
			t.Fatal(err)
		}
		if err := execOn(t, c, replica, "SELECT pg_wal_replay_pause()"); err != nil {
			t.Fatal(err)
		}
		paused := true
		defer func() {
			if paused {
				_ = execOn(t, c, replica, "SELECT pg_wal_replay_resume()")
			}
		}()
		p.midCycle(t)
		from := time.Now()
		// 20 MiB of rows, far beyond maximum_lag_on_failover (1 MiB).
		for range 4 {
			if err := sqlOn(t, c, leader, time.Minute,
				"INSERT INTO alert_lag (pad) SELECT repeat('x', 1000) FROM generate_series(1, 5000)"); err != nil {
				t.Fatal(err)
			}
		}
		// Keep writing a little, so the leader's position keeps moving.
		stop := make(chan struct{})
		trickled := make(chan struct{})
		go func() {
			defer close(trickled)
			for {
				select {
				case <-stop:
					return
				case <-time.After(time.Second):
				}
				_ = execOn(t, c, leader, "INSERT INTO alert_lag (pad) SELECT repeat('y', 1000) FROM generate_series(1, 10)")
			}
		}()
		defer func() {
			select {
			case <-stop:
			default:
				close(stop)
			}
			<-trickled
		}()
		fired := mon.waitFiring(t, from, rules.bound("RegentReplicaLagHigh", 90*time.Second), lagHigh)
		if n, err := p.value(fmt.Sprintf(`patroni_xlog_paused{name=%q}`, replica)); err == nil {
			t.Logf("patroni_xlog_paused of %s while its replay is paused: %v", replica, n)
		}

		p.midCycle(t)
		recovered := time.Now()
		if err := execOn(t, c, replica, "SELECT pg_wal_replay_resume()"); err != nil {
			t.Fatal(err)
		}
		paused = false
		resolved := mon.waitResolved(t, recovered, 2*time.Minute, lagHigh)
		close(stop)
		<-trickled
		mon.waitQuiet(t, 2*time.Minute, failoverFiring)
		rows = append(rows, meas.measure(t, "replay paused on replica "+replica+", then 20 MiB written on the primary", lagHigh,
			from, fired[0], recovered, resolved[0], "recovery: pg_wal_replay_resume()"))
		if u := mon.unexpected(from, time.Now(), failoverFiring, lagHigh); len(u) > 0 {
			t.Errorf("unexpected alerts: %s", strings.Join(u, "; "))
			unexpected = append(unexpected, prefixAll("replication stalled: ", u)...)
		}
	})
	if t.Failed() {
		t.FailNow()
	}

	// --- c. Primary killed -------------------------------------------------
	t.Run("primary killed", func(t *testing.T) {
		old := leader
		agentDown := alertMatch{name: "RegentAgentDown", labels: map[string]string{"instance": instanceOf(c, old)}}
		p.midCycle(t)
		from := time.Now()
		killMember(t, c, old)
		bound := max(rules.bound("RegentFailover", 90*time.Second), rules.bound("RegentAgentDown", 60*time.Second))
		fired := mon.waitFiring(t, from, bound, failoverFiring, agentDown)
		v := waitFor(t, c, time.Minute, "a new leader", func(v *cluster.Cluster) bool {
			l := v.LeaderMember()
			return l != nil && l.Name != old && l.State == cluster.StateRunning && l.Role == cluster.RolePrimary
		})
		leader = v.LeaderName()
		t.Logf("new leader %s", leader)

		p.midCycle(t)
		recovered := time.Now()
		if err := c.Start(old); err != nil {
			t.Fatal(err)
		}
		resolved := mon.waitResolved(t, recovered, 2*time.Minute, agentDown)
		v = waitFor(t, c, 3*time.Minute, "three members healthy with a synchronous standby", func(v *cluster.Cluster) bool {
			return localcluster.Healthy(v, 3) && publishedSync(v) != ""
		})
		standby = publishedSync(v)
		mon.waitQuiet(t, 2*time.Minute, failoverFiring)
		fault := "primary " + old + " killed (agent and postmaster)"
		rows = append(rows,
			meas.measure(t, fault, failoverFiring, from, fired[0], time.Time{}, time.Time{},
				"new leader "+leader+"; an increase over 10m: resolves about 10 min after the promotion"),
			meas.measure(t, fault, agentDown, from, fired[1], recovered, resolved[0],
				"instance of "+old+"; recovery: member restarted"),
		)
		if u := mon.unexpected(from, time.Now(), failoverFiring, agentDown); len(u) > 0 {
			t.Errorf("unexpected alerts: %s", strings.Join(u, "; "))
			unexpected = append(unexpected, prefixAll("primary killed: ", u)...)
		}
	})

	// RegentFailover: did it resolve within the run? (It should not, the
	// run is shorter than 10 minutes after the failover.)
	for i := range rows {
		if rows[i].alert == "RegentFailover" && len(mon.firingNow(failoverFiring)) == 0 {
			rows[i].resolved = "resolved before the end of the run"
		}
	}

	table := renderAlertTable(rows, steady, unexpected)
	t.Logf("alert quality measurements:\n%s", table)
	if t.Failed() {
		return
	}
	if os.Getenv("REGENT_ALERT_DOCS") == "1" {
		header := measurementHeader(t, c, leader, p, root, fmtFor(rules.interval["RegentFailover"]))
		if err := writeMeasured(filepath.Join(root, "docs", "alerting.md"), header+"\n"+table); err != nil {
			t.Fatal(err)
		}
		t.Logf("wrote the measurements to docs/alerting.md")
	}
}

// publishedSync is the synchronous standby the sync key names for the
// current leader ("" when none).
func publishedSync(v *cluster.Cluster) string {
	if v.Sync == nil || v.Sync.Leader != v.LeaderName() || len(v.Sync.Members) != 1 {
		return ""
	}
	return v.Sync.Members[0]
}

// instanceOf is the member's scrape target (REST API host:port), which
// Prometheus puts in the instance label.
func instanceOf(c *localcluster.Cluster, name string) string {
	return strings.TrimPrefix(c.APIURL(name), "http://")
}

// killMember kills -9 a member's agent and then its postmaster (host loss).
func killMember(t *testing.T, c *localcluster.Cluster, name string) {
	t.Helper()
	pm := c.PostmasterPID(name)
	if err := c.Kill(name); err != nil {
		t.Fatal(err)
	}
	if pm > 0 {
		if err := syscall.Kill(pm, syscall.SIGKILL); err != nil && err != syscall.ESRCH {
			t.Fatal(err)
		}
	}
}

// sqlOn runs a statement on a member with its own timeout.
func sqlOn(t *testing.T, c *localcluster.Cluster, name string, timeout time.Duration, sql string) error {
	t.Helper()
	conn, err := connect(t, c, name)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	_, err = conn.Exec(ctx, sql)
	return err
}

func prefixAll(p string, s []string) []string {
	out := make([]string, len(s))
	for i, x := range s {
		out[i] = p + x
	}
	return out
}

// --- Prometheus ------------------------------------------------------------

func prometheusBinary(t *testing.T) string {
	t.Helper()
	if b := os.Getenv("REGENT_PROMETHEUS"); b != "" {
		return b
	}
	if _, err := os.Stat("/usr/bin/prometheus"); err == nil {
		return "/usr/bin/prometheus"
	}
	b, err := exec.LookPath("prometheus")
	if err != nil {
		t.Fatal("no prometheus binary: install it (apt-get install -y prometheus) or set REGENT_PROMETHEUS")
	}
	return b
}

// promServer is a Prometheus process of the test's own.
type promServer struct {
	url     string
	logPath string
	version string
}

// startPrometheus starts Prometheus on a free 127.0.0.1 port with its own
// storage, scraping targets every second in job "regent" and evaluating
// the rule file; it is stopped (by its PID) when the test ends.
func startPrometheus(t *testing.T, bin string, targets []string, rules string) *promServer {
	t.Helper()
	dir := t.TempDir()
	port := freePort(t)
	quoted := make([]string, len(targets))
	for i, s := range targets {
		quoted[i] = fmt.Sprintf("%q", s)
	}
	cfg := fmt.Sprintf(`# Written by TestAlertQuality.
global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
rule_files:
  - %q
scrape_configs:
  - job_name: regent
    metrics_path: /metrics
    static_configs:
      - targets: [%s]
`, rules, strings.Join(quoted, ", "))
	cfgPath := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	p := &promServer{url: fmt.Sprintf("http://127.0.0.1:%d", port), logPath: filepath.Join(dir, "prometheus.log"),
		version: "Prometheus (unknown version)"}
	if out, err := exec.Command(bin, "--version").CombinedOutput(); err == nil {
		first, _, _ := strings.Cut(string(out), "\n")
		if f := strings.Fields(first); len(f) >= 3 && f[1] == "version" {
			p.version = "Prometheus " + f[2]
		}
	}
	logf, err := os.Create(p.logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin,
		"--config.file="+cfgPath,
		"--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+fmt.Sprintf("127.0.0.1:%d", port),
		"--log.level=info",
	)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		t.Fatalf("starting prometheus: %v", err)
	}
	pid := cmd.Process.Pid
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		logf.Close()
		close(done)
	}()
	t.Cleanup(func() {
		_ = syscall.Kill(pid, syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			_ = syscall.Kill(pid, syscall.SIGKILL)
			<-done
		}
		if t.Failed() {
			b, _ := os.ReadFile(p.logPath)
			lines := strings.Split(string(b), "\n")
			if len(lines) > 60 {
				lines = lines[len(lines)-60:]
			}
			t.Logf("=== prometheus log (tail) ===\n%s", strings.Join(lines, "\n"))
		}
	})
	eventually(t, 60*time.Second, "prometheus ready", func() error {
		select {
		case <-done:
			b, _ := os.ReadFile(p.logPath)
			t.Fatalf("prometheus exited:\n%s", b)
		default:
		}
		if code := httpStatus(p.url + "/-/ready"); code != http.StatusOK {
			return fmt.Errorf("GET /-/ready = %d", code)
		}
		return nil
	})
	t.Logf("prometheus %s at %s scraping %v", p.version, p.url, targets)
	return p
}

func (p *promServer) get(path string, q url.Values, out any) error {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	u := p.url + path
	if q != nil {
		u += "?" + q.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %d %s", path, resp.StatusCode, b)
	}
	return json.Unmarshal(b, out)
}

// promAlert is one entry of GET /api/v1/alerts (pending or firing).
type promAlert struct {
	Labels   map[string]string `json:"labels"`
	State    string            `json:"state"`
	ActiveAt time.Time         `json:"activeAt"`
	Value    string            `json:"value"`
}

// alertKey identifies an alert by its labels.
func alertKey(a promAlert) string {
	keys := make([]string, 0, len(a.Labels))
	for k := range a.Labels {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "%s=%q,", k, a.Labels[k])
	}
	return b.String()
}

func (a promAlert) String() string {
	keys := make([]string, 0, len(a.Labels))
	for k := range a.Labels {
		if k != "alertname" && k != "severity" {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	var b strings.Builder
	b.WriteString(a.Labels["alertname"])
	b.WriteString("{")
	for i, k := range keys {
		if i > 0 {
			b.WriteString(",")
		}
		fmt.Fprintf(&b, "%s=%q", k, a.Labels[k])
	}
	fmt.Fprintf(&b, "} %s since %s value %s", a.State, a.ActiveAt.Format("15:04:05"), a.Value)
	return b.String()
}

func (p *promServer) alerts() ([]promAlert, error) {
	var r struct {
		Status string `json:"status"`
		Data   struct {
			Alerts []promAlert `json:"alerts"`
		} `json:"data"`
	}
	if err := p.get("/api/v1/alerts", nil, &r); err != nil {
		return nil, err
	}
	if r.Status != "success" {
		return nil, fmt.Errorf("alerts: status %q", r.Status)
	}
	return r.Data.Alerts, nil
}

type promSample struct {
	Metric map[string]string `json:"metric"`
	Value  [2]any            `json:"value"`
}

func (p *promServer) query(expr string) ([]promSample, error) {
	var r struct {
		Status string `json:"status"`
		Data   struct {
			ResultType string       `json:"resultType"`
			Result     []promSample `json:"result"`
		} `json:"data"`
	}
	if err := p.get("/api/v1/query", url.Values{"query": {expr}}, &r); err != nil {
		return nil, err
	}
	if r.Status != "success" || r.Data.ResultType != "vector" {
		return nil, fmt.Errorf("query %s: status %q, result type %q", expr, r.Status, r.Data.ResultType)
	}
	return r.Data.Result, nil
}

// seriesCount is the number of series an instant query returns.
func (p *promServer) seriesCount(expr string) (int, error) {
	r, err := p.query(expr)
	return len(r), err
}

// value is the value of an instant query returning one series.
func (p *promServer) value(expr string) (string, error) {
	r, err := p.query(expr)
	if err != nil {
		return "", err
	}
	if len(r) != 1 {
		return "", fmt.Errorf("query %s: %d series", expr, len(r))
	}
	s, _ := r[0].Value[1].(string)
	return s, nil
}

// midCycle waits until half an evaluation interval after the last
// evaluation of the rule group "regent", so that faults and recoveries
// meet the evaluation cycle at the same, average, phase.
func (p *promServer) midCycle(t *testing.T) {
	t.Helper()
	var r struct {
		Data struct {
			Groups []struct {
				Name           string    `json:"name"`
				Interval       float64   `json:"interval"`
				LastEvaluation time.Time `json:"lastEvaluation"`
			} `json:"groups"`
		} `json:"data"`
	}
	if err := p.get("/api/v1/rules", nil, &r); err != nil {
		t.Fatal(err)
	}
	for _, g := range r.Data.Groups {
		if g.Name != "regent" || g.LastEvaluation.IsZero() || g.Interval <= 0 {
			continue
		}
		iv := time.Duration(g.Interval * float64(time.Second))
		at := g.LastEvaluation.Add(iv / 2)
		for time.Until(at) < 200*time.Millisecond {
			at = at.Add(iv)
		}
		time.Sleep(time.Until(at))
		return
	}
	t.Fatalf("rule group regent has not been evaluated yet")
}

// settledAt evaluates expr over [from, end] at 0.5 s steps and returns the
// step from which on, up to end, a series matching labels is present (want
// true) or none is (want false), and how many times the state changed
// between from and that step.
func (p *promServer) settledAt(expr string, labels map[string]string, from, end time.Time, want bool) (time.Time, int, error) {
	var r struct {
		Status string `json:"status"`
		Data   struct {
			ResultType string `json:"resultType"`
			Result     []struct {
				Metric map[string]string `json:"metric"`
				Values [][2]any          `json:"values"`
			} `json:"result"`
		} `json:"data"`
	}
	const step = 500 * time.Millisecond
	q := url.Values{
		"query": {expr},
		"start": {fmt.Sprintf("%.3f", float64(from.UnixMilli())/1000)},
		"end":   {fmt.Sprintf("%.3f", float64(end.UnixMilli())/1000)},
		"step":  {step.String()},
	}
	if err := p.get("/api/v1/query_range", q, &r); err != nil {
		return time.Time{}, 0, err
	}
	if r.Status != "success" || r.Data.ResultType != "matrix" {
		return time.Time{}, 0, fmt.Errorf("query_range %s: status %q, result type %q", expr, r.Status, r.Data.ResultType)
	}
	present := map[int64]bool{} // steps (unix ms) with a matching series
	match := alertMatch{labels: labels}
	for _, series := range r.Data.Result {
		if !match.matches(promAlert{Labels: series.Metric}) {
			continue
		}
		for _, v := range series.Values {
			if ts, ok := v[0].(float64); ok {
				present[int64(ts*1000+0.5)] = true
			}
		}
	}
	var settled time.Time
	changes, prev := 0, !want
	for at := from.Truncate(time.Millisecond); !at.After(end); at = at.Add(step) {
		cur := present[at.UnixMilli()]
		switch {
		case cur == want && settled.IsZero():
			settled = at
		case cur != want && !settled.IsZero():
			settled = time.Time{}
		}
		if cur != prev && at.After(from) {
			changes++
		}
		prev = cur
	}
	if settled.IsZero() {
		return time.Time{}, 0, fmt.Errorf("%s is not %t on %v at %s", expr, want, labels, end.Format("15:04:05"))
	}
	return settled, max(0, changes-1), nil
}

// --- Alert monitor ---------------------------------------------------------

// alertMatch selects alerts by name (empty: any) and a subset of labels.
type alertMatch struct {
	name   string
	labels map[string]string
}

func (m alertMatch) matches(a promAlert) bool {
	if m.name != "" && a.Labels["alertname"] != m.name {
		return false
	}
	for k, v := range m.labels {
		if a.Labels[k] != v {
			return false
		}
	}
	return true
}

func (m alertMatch) String() string {
	keys := make([]string, 0, len(m.labels))
	for k := range m.labels {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s=%q", k, m.labels[k])
	}
	return m.name + "{" + strings.Join(parts, ",") + "}"
}

type alertPoll struct {
	at     time.Time
	alerts []promAlert
}

// alertMonitor polls GET /api/v1/alerts every 500 ms for the whole test and
// keeps every successful answer, so that waits and checks can look back
// at any window.
type alertMonitor struct {
	p     *promServer
	mu    sync.Mutex
	polls []alertPoll
	err   error
}

func startAlertMonitor(t *testing.T, p *promServer) *alertMonitor {
	m := &alertMonitor{p: p}
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			alerts, err := p.alerts()
			now := time.Now()
			m.mu.Lock()
			if err != nil {
				m.err = err
			} else {
				m.polls = append(m.polls, alertPoll{at: now, alerts: alerts})
			}
			m.mu.Unlock()
			select {
			case <-stop:
				return
			case <-time.After(500 * time.Millisecond):
			}
		}
	}()
	t.Cleanup(func() {
		close(stop)
		<-done
	})
	return m
}

// firingIn returns the alerts of a poll that are firing and match.
func firingIn(poll alertPoll, m alertMatch) []promAlert {
	var out []promAlert
	for _, a := range poll.alerts {
		if a.State == "firing" && m.matches(a) {
			out = append(out, a)
		}
	}
	return out
}

// current describes the last poll's alerts, for failure messages.
func (m *alertMonitor) current() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.polls) == 0 {
		return fmt.Sprintf("no successful poll (last error %v)", m.err)
	}
	last := m.polls[len(m.polls)-1]
	if len(last.alerts) == 0 {
		return "no active alerts at " + last.at.Format("15:04:05")
	}
	parts := make([]string, len(last.alerts))
	for i, a := range last.alerts {
		parts[i] = a.String()
	}
	return "at " + last.at.Format("15:04:05") + ": " + strings.Join(parts, "; ")
}

func (m *alertMonitor) firingNow(match alertMatch) []promAlert {
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.polls) == 0 {
		return nil
	}
	return firingIn(m.polls[len(m.polls)-1], match)
}

func (m *alertMonitor) pollsBetween(from, to time.Time) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := 0
	for _, p := range m.polls {
		if !p.at.Before(from) && !p.at.After(to) {
			n++
		}
	}
	return n
}

// firedAt is when an alert was first seen firing, and the alert as seen.
type firedAt struct {
	at    time.Time
	alert promAlert
}

// waitFiring waits until every match has been seen firing in a poll taken
// after from, failing after bound with the current alert list.
func (m *alertMonitor) waitFiring(t *testing.T, from time.Time, bound time.Duration, matches ...alertMatch) []firedAt {
	t.Helper()
	out := make([]firedAt, len(matches))
	for {
		m.mu.Lock()
		missing := 0
		for i, match := range matches {
			if !out[i].at.IsZero() {
				continue
			}
			for _, p := range m.polls {
				if p.at.Before(from) {
					continue
				}
				if f := firingIn(p, match); len(f) > 0 {
					out[i] = firedAt{at: p.at, alert: f[0]}
					break
				}
			}
			if out[i].at.IsZero() {
				missing++
			}
		}
		m.mu.Unlock()
		if missing == 0 {
			for i, match := range matches {
				t.Logf("%s firing %s after the fault (pending since %s)", match, out[i].at.Sub(from).Round(100*time.Millisecond),
					out[i].alert.ActiveAt.Sub(from).Round(100*time.Millisecond))
			}
			return out
		}
		if time.Since(from) > bound {
			var names []string
			for i, match := range matches {
				if out[i].at.IsZero() {
					names = append(names, match.String())
				}
			}
			t.Fatalf("%s not firing %s after the fault; alerts %s", strings.Join(names, ", "), bound, m.current())
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// waitResolved waits until each match is seen not firing in a poll taken
// after from, failing after bound with the current alert list.
func (m *alertMonitor) waitResolved(t *testing.T, from time.Time, bound time.Duration, matches ...alertMatch) []time.Time {
	t.Helper()
	out := make([]time.Time, len(matches))
	for {
		m.mu.Lock()
		missing := 0
		for i, match := range matches {
			if !out[i].IsZero() {
				continue
			}
			for _, p := range m.polls {
				if !p.at.Before(from) && len(firingIn(p, match)) == 0 {
					out[i] = p.at
					break
				}
			}
			if out[i].IsZero() {
				missing++
			}
		}
		m.mu.Unlock()
		if missing == 0 {
			for i, match := range matches {
				t.Logf("%s resolved %s after the recovery", match, out[i].Sub(from).Round(100*time.Millisecond))
			}
			return out
		}
		if time.Since(from) > bound {
			t.Fatalf("alerts still firing %s after the recovery: %s", bound, m.current())
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// waitQuiet waits until no alert but the allowed ones is firing.
func (m *alertMonitor) waitQuiet(t *testing.T, bound time.Duration, allowed ...alertMatch) {
	t.Helper()
	deadline := time.Now().Add(bound)
	for {
		m.mu.Lock()
		quiet := false
		if n := len(m.polls); n > 0 {
			quiet = true
			for _, a := range firingIn(m.polls[n-1], alertMatch{}) {
				ok := false
				for _, al := range allowed {
					ok = ok || al.matches(a)
				}
				quiet = quiet && ok
			}
		}
		m.mu.Unlock()
		if quiet {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("alerts still firing after %s: %s", bound, m.current())
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// unexpected lists the alerts seen firing between from and to that no
// allowed match covers, each once, with when it was first seen.
func (m *alertMonitor) unexpected(from, to time.Time, allowed ...alertMatch) []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	seen := map[string]bool{}
	var out []string
	for _, p := range m.polls {
		if p.at.Before(from) || p.at.After(to) {
			continue
		}
		for _, a := range firingIn(p, alertMatch{}) {
			ok := false
			for _, al := range allowed {
				ok = ok || al.matches(a)
			}
			key := alertKey(a)
			if !ok && !seen[key] {
				seen[key] = true
				out = append(out, fmt.Sprintf("%s (seen %s into the window)", a, p.at.Sub(from).Round(100*time.Millisecond)))
			}
		}
	}
	return out
}

// --- Rules and measurements ------------------------------------------------

// ruleTimings are the `for:` durations of the alerts and the evaluation
// interval of their group, read from the rule file.
type ruleTimings struct {
	forDur   map[string]time.Duration
	interval map[string]time.Duration
	expr     map[string]string
}

func loadRuleTimings(t *testing.T, path string) ruleTimings {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Groups []struct {
			Name     string `yaml:"name"`
			Interval string `yaml:"interval"`
			Rules    []struct {
				Alert string `yaml:"alert"`
				Expr  string `yaml:"expr"`
				For   string `yaml:"for"`
			} `yaml:"rules"`
		} `yaml:"groups"`
	}
	if err := yaml.Unmarshal(b, &doc); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	r := ruleTimings{forDur: map[string]time.Duration{}, interval: map[string]time.Duration{}, expr: map[string]string{}}
	for _, g := range doc.Groups {
		iv := time.Second // the global evaluation_interval this test sets
		if g.Interval != "" {
			if iv, err = parsePromDuration(g.Interval); err != nil {
				t.Fatalf("group %s interval: %v", g.Name, err)
			}
		}
		for _, rule := range g.Rules {
			if rule.Alert == "" {
				continue
			}
			var d time.Duration
			if rule.For != "" {
				if d, err = parsePromDuration(rule.For); err != nil {
					t.Fatalf("%s for: %v", rule.Alert, err)
				}
			}
			r.forDur[rule.Alert] = d
			r.interval[rule.Alert] = iv
			r.expr[rule.Alert] = strings.TrimSpace(rule.Expr)
		}
	}
	for _, a := range []string{"RegentFailover", "RegentAgentDown", "RegentSyncStandbyMissing", "RegentReplicaLagHigh"} {
		if _, ok := r.interval[a]; !ok {
			t.Fatalf("%s has no rule %s", path, a)
		}
	}
	return r
}

// parsePromDuration parses the durations the rule file uses (90s, 1m,
// 1h, 1h30m); Prometheus also knows d, w and y, which Go does not.
func parsePromDuration(s string) (time.Duration, error) {
	return time.ParseDuration(s)
}

// bound is how long to wait for an alert to fire after a fault: its `for:`
// plus two evaluation intervals plus slack for the fault to show in the
// metrics.
func (r ruleTimings) bound(alert string, slack time.Duration) time.Duration {
	return r.forDur[alert] + 2*r.interval[alert] + slack
}

type alertMeasurement struct {
	fault, alert     string
	forDur, interval time.Duration
	// Delays from the fault: the alert's expression first true on the
	// scraped data, the alert pending (activeAt), the alert firing.
	condTrue, pending, firing string
	// Delays from the recovery: the expression first false, the alert no
	// longer firing.
	condFalse, resolved string
	note                string
}

// measurer turns a fault's timestamps into a table row, with the times at
// which the alert's own expression turned true and false on the data
// Prometheus scraped (a range query at 0.5 s steps).
type measurer struct {
	rules ruleTimings
	p     *promServer
}

func (m measurer) measure(t *testing.T, fault string, match alertMatch, from time.Time, fired firedAt, recovered, resolved time.Time, note string) alertMeasurement {
	t.Helper()
	alert := match.name
	row := alertMeasurement{
		fault: fault, alert: alert, forDur: m.rules.forDur[alert], interval: m.rules.interval[alert], note: note,
		pending:  fmtDelay(fired.alert.ActiveAt.Sub(from)),
		firing:   fmtDelay(fired.at.Sub(from)),
		condTrue: "?", condFalse: "—", resolved: "not waited for",
	}
	// The expression must hold from when it turned true up to the firing,
	// and stay false from when it turned false to now.
	if at, flaps, err := m.p.settledAt(m.rules.expr[alert], match.labels, from, fired.at, true); err != nil {
		t.Logf("%s: expression true since: %v", alert, err)
	} else {
		row.condTrue = fmtDelay(at.Sub(from))
		if flaps > 0 {
			row.condTrue += fmt.Sprintf(" (after %d flaps)", flaps)
		}
	}
	if !recovered.IsZero() {
		row.resolved = fmtDelay(resolved.Sub(recovered))
		row.condFalse = "?"
		if at, flaps, err := m.p.settledAt(m.rules.expr[alert], match.labels, recovered, time.Now(), false); err != nil {
			t.Logf("%s: expression false since: %v", alert, err)
		} else {
			row.condFalse = fmtDelay(at.Sub(recovered))
			if flaps > 0 {
				row.condFalse += fmt.Sprintf(" (after %d flaps)", flaps)
			}
		}
	}
	return row
}

func fmtDelay(d time.Duration) string {
	return fmt.Sprintf("%.1f s", d.Seconds())
}

// fmtFor renders a duration as the rule file writes it (30s, 1m, 2m).
func fmtFor(d time.Duration) string {
	switch {
	case d == 0:
		return "none"
	case d%time.Minute == 0:
		return fmt.Sprintf("%dm", d/time.Minute)
	default:
		return fmt.Sprintf("%gs", d.Seconds())
	}
}

func renderAlertTable(rows []alertMeasurement, steady time.Duration, unexpected []string) string {
	var b strings.Builder
	b.WriteString("| fault | alert | `for` | expression true after | pending after | **firing after** | expression false after recovery | **resolved after recovery** | notes |\n")
	b.WriteString("|---|---|---|---|---|---|---|---|---|\n")
	for _, m := range rows {
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | **%s** | %s | **%s** | %s |\n",
			m.fault, m.alert, fmtFor(m.forDur), m.condTrue, m.pending, m.firing, m.condFalse, m.resolved, m.note)
	}
	fmt.Fprintf(&b, "\nSteady state: %s of a healthy cluster, alerts polled every 0.5 s: ", steady)
	if len(unexpected) == 0 {
		b.WriteString("no alert fired. During the faults no alert other than the expected ones fired.\n")
	} else {
		b.WriteString("unexpected alerts fired:\n\n")
		for _, u := range unexpected {
			b.WriteString("- " + u + "\n")
		}
	}
	return b.String()
}

// measurementHeader says when, on what and with which versions the table
// was measured.
func measurementHeader(t *testing.T, c *localcluster.Cluster, leader string, p *promServer, root string, interval string) string {
	t.Helper()
	commit := "unknown"
	cmd := exec.Command("git", "rev-parse", "--short", "HEAD")
	cmd.Dir = root
	if out, err := cmd.Output(); err == nil {
		commit = strings.TrimSpace(string(out))
	}
	pgVersion := "unknown"
	if conn, err := connect(t, c, leader); err == nil {
		_ = conn.QueryRow(context.Background(), "SHOW server_version").Scan(&pgVersion)
		conn.Close(context.Background())
	}
	return fmt.Sprintf("Measured %s, commit `%s`, on a machine with %d CPUs and %s of memory; %s; PostgreSQL %s; %s. "+
		"Scrape interval 1 s, rule group interval %s; each fault and each recovery injected half an evaluation interval after a rule evaluation.\n",
		time.Now().UTC().Format("2006-01-02"), commit, runtime.NumCPU(), memTotal(), p.version, pgVersion, runtime.Version(), interval)
}

// memTotal is MemTotal from /proc/meminfo, in GiB.
func memTotal() string {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return "unknown"
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		var kb int64
		if _, err := fmt.Sscanf(s.Text(), "MemTotal: %d kB", &kb); err == nil {
			return fmt.Sprintf("%.1f GiB", float64(kb)/(1<<20))
		}
	}
	return "unknown"
}

const (
	measuredBegin = "<!-- measured:begin -->"
	measuredEnd   = "<!-- measured:end -->"
)

// writeMeasured replaces the text between the measured markers of a file.
func writeMeasured(path, text string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	s := string(b)
	i := strings.Index(s, measuredBegin)
	j := strings.Index(s, measuredEnd)
	if i < 0 || j < i {
		return fmt.Errorf("%s: no %s ... %s markers", path, measuredBegin, measuredEnd)
	}
	s = s[:i+len(measuredBegin)] + "\n" + text + s[j:]
	return os.WriteFile(path, []byte(s), 0o644)
}
