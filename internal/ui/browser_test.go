package ui

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// These tests load the page in headless Chromium against a fake member
// API: the page's own rendering and live refresh, without a cluster. The
// end-to-end test in internal/e2e does the same against real members.

const chromiumPath = "/usr/bin/chromium"

// chromium returns the browser binary, skipping the test when it is not
// installed, except under CI=true, where CI installs it (Debian package
// chromium) and its absence is a failure.
func chromium(t *testing.T) string {
	t.Helper()
	if _, err := os.Stat(chromiumPath); err == nil {
		return chromiumPath
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s not found: CI must install the Debian package chromium", chromiumPath)
	}
	t.Skipf("%s not found (apt-get install chromium to run the browser tests)", chromiumPath)
	return ""
}

// runChromium runs headless Chromium with args, within 60 s, and returns
// its standard output.
func runChromium(t *testing.T, bin string, args ...string) string {
	t.Helper()
	home := t.TempDir()
	base := []string{
		"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--disable-dev-shm-usage", "--hide-scrollbars", "--mute-audio",
		"--user-data-dir=" + filepath.Join(home, "profile"),
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, append(base, args...)...)
	cmd.Env = append(os.Environ(), "HOME="+home)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	// Chromium's helper processes share its process group: end them all.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	err := cmd.Run()
	if cmd.Process != nil {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
	if err != nil {
		t.Fatalf("chromium %s: %v\nstderr:\n%s", strings.Join(args, " "), err, tail(stderr.String(), 40))
	}
	return stdout.String()
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// dumpDOM loads url and returns the DOM after 5 s of virtual time (two
// refreshes), failing the test if the page counted a script error or a
// Content-Security-Policy violation.
func dumpDOM(t *testing.T, bin, url string) string {
	t.Helper()
	dom := runChromium(t, bin, "--virtual-time-budget=5000", "--dump-dom", url)
	for _, attr := range []string{"data-csp-violations", "data-script-errors"} {
		if strings.Contains(dom, attr+"=") {
			t.Errorf("%s: the page recorded %s:\n%s", url, attr, dom)
		}
	}
	return dom
}

// fakeMember serves a member's /cluster, /history and /patroni from
// fixed bodies, switching to the next state after a number of /cluster
// requests, and the status page at /ui.
type fakeMember struct {
	mu       sync.Mutex
	states   []fakeState
	requests int // /cluster requests so far
	log      []string
	ui       http.Handler
}

type fakeState struct {
	untilRequest int // serve this state up to this /cluster request (0: forever)
	cluster      any
	history      any
	fail         bool // answer 503 like a member without a DCS view
}

func (f *fakeMember) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == Prefix || strings.HasPrefix(r.URL.Path, Prefix+"/") {
		f.ui.ServeHTTP(w, r)
		return
	}
	f.mu.Lock()
	f.log = append(f.log, time.Now().Format("15:04:05.000")+" "+r.URL.Path)
	if r.URL.Path == "/cluster" {
		f.requests++
	}
	st := f.states[len(f.states)-1]
	for _, s := range f.states {
		if s.untilRequest == 0 || f.requests <= s.untilRequest {
			st = s
			break
		}
	}
	f.mu.Unlock()
	var v any
	switch r.URL.Path {
	case "/cluster":
		v = st.cluster
	case "/history":
		v = st.history
	case "/patroni":
		v = map[string]any{"state": "running", "role": "replica", "timeline": 2,
			"patroni": map[string]any{"name": "m3", "scope": "shop", "version": "test"},
			"regent":  map[string]any{"action": "follow", "reason": "following the leader m1"}}
	default:
		http.Error(w, `{"error":"no such endpoint"}`, http.StatusNotFound)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	if st.fail {
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = w.Write([]byte(`{"error":"reading the DCS: context deadline exceeded"}`))
		return
	}
	_ = json.NewEncoder(w).Encode(v)
}

func member(name, role string, tl int, lag any, tags map[string]any) map[string]any {
	m := map[string]any{"name": name, "role": role, "state": "running", "api_url": "http://127.0.0.1:8008/patroni",
		"host": "127.0.0.1", "port": 5432, "timeline": tl}
	if role != "leader" {
		m["state"] = "streaming"
		m["lag"], m["receive_lag"], m["replay_lag"] = lag, lag, lag
		m["lsn"], m["receive_lsn"], m["replay_lsn"] = "0/3000060", "0/3000060", "0/3000060"
	}
	if tags != nil {
		m["tags"] = tags
	}
	return m
}

// Before: m1 leads on timeline 2; m3 cascades from m2. After: m2 leads
// on timeline 3 after a switchover.
var (
	clusterBefore = map[string]any{"scope": "shop", "members": []any{
		member("m1", "leader", 2, nil, nil),
		member("m2", "replica", 2, 0, nil),
		member("m3", "replica", 2, 3*1024*1024+512*1024, map[string]any{"nofailover": true, "replicatefrom": "m2"}),
	}}
	historyBefore = []any{
		[]any{1, 50331744, "leader m0 unreachable: failover", "2026-01-02T03:04:05.123456+00:00", "m1"},
	}
	clusterAfter = map[string]any{"scope": "shop", "pause": true,
		"scheduled_switchover": map[string]any{"at": "2030-01-01T00:00:00+00:00", "from": "m2", "to": "m1"},
		"members": []any{
			member("m1", "replica", 3, 1024, nil),
			member("m2", "leader", 3, nil, nil),
			member("m3", "replica", 3, "unknown", map[string]any{"nofailover": true, "replicatefrom": "m2"}),
		}}
	historyAfter = append(append([]any{}, historyBefore...),
		[]any{2, 67108864, "switchover to m2 requested by the operator", "2026-01-02T04:00:00.000001+00:00", "m2"})
)

func serveFake(t *testing.T, states ...fakeState) (*httptest.Server, *fakeMember) {
	t.Helper()
	f := &fakeMember{states: states, ui: Handler()}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	return srv, f
}

var (
	memberRow  = regexp.MustCompile(`<tr[^>]*\bdata-member="([^"]*)"[^>]*>`)
	roleAttr   = regexp.MustCompile(`\bdata-role="([^"]*)"`)
	historyCnt = regexp.MustCompile(`\bdata-history-count="(\d+)"`)
)

// members maps each member row of dom to its data-role.
func members(dom string) map[string]string {
	out := map[string]string{}
	for _, m := range memberRow.FindAllStringSubmatch(dom, -1) {
		role := ""
		if r := roleAttr.FindStringSubmatch(m[0]); r != nil {
			role = r[1]
		}
		out[m[1]] = role
	}
	return out
}

func leaders(rows map[string]string) []string {
	var out []string
	for name, role := range rows {
		if role == "leader" {
			out = append(out, name)
		}
	}
	return out
}

func historyCount(t *testing.T, dom string) string {
	t.Helper()
	m := historyCnt.FindStringSubmatch(dom)
	if m == nil {
		t.Fatalf("no data-history-count in the DOM:\n%s", dom)
	}
	return m[1]
}

func TestBrowserRendersCluster(t *testing.T) {
	bin := chromium(t)
	srv, _ := serveFake(t, fakeState{cluster: clusterBefore, history: historyBefore})
	for _, path := range []string{"/ui", "/ui/"} {
		dom := dumpDOM(t, bin, srv.URL+path)
		if !strings.Contains(dom, `data-ready="true"`) {
			t.Fatalf("%s: page not ready:\n%s", path, dom)
		}
		rows := members(dom)
		if len(rows) != 3 || rows["m1"] != "leader" || rows["m2"] != "replica" || rows["m3"] != "replica" {
			t.Fatalf("%s: member rows %v", path, rows)
		}
		if n := historyCount(t, dom); n != "1" {
			t.Errorf("%s: data-history-count %s, want 1", path, n)
		}
		for _, want := range []string{
			"shop",                            // scope
			"3.5 MiB",                         // m3's lag in human units
			"127.0.0.1:5432",                  // address
			"replicatefrom m2",                // tag
			"leader m0 unreachable: failover", // history reason
			"served by m3",                    // /patroni
			">live<",                          // connection state
		} {
			if !strings.Contains(dom, want) {
				t.Errorf("%s: DOM lacks %q", path, want)
			}
		}
		// m3 cascades from m2: its topology node sits in m2's list.
		if !regexp.MustCompile(`data-node="m1".*data-node="m2".*<ul><li data-node="m3"`).MatchString(dom) {
			t.Errorf("%s: topology does not nest m3 under m2 under m1:\n%s", path, dom)
		}
		if strings.Contains(dom, "unreachable — retrying") {
			t.Errorf("%s: page reports the API unreachable", path)
		}
	}
}

func TestBrowserRefreshesLive(t *testing.T) {
	bin := chromium(t)
	// The first poll sees m1 leading, the later ones the switchover.
	srv, f := serveFake(t,
		fakeState{untilRequest: 1, cluster: clusterBefore, history: historyBefore},
		fakeState{cluster: clusterAfter, history: historyAfter})
	dom := dumpDOM(t, bin, srv.URL+"/ui")
	f.mu.Lock()
	polls := f.requests
	f.mu.Unlock()
	if polls < 2 {
		t.Fatalf("page polled /cluster %d times in 5 s, want at least 2", polls)
	}
	rows := members(dom)
	if l := leaders(rows); len(l) != 1 || l[0] != "m2" {
		t.Fatalf("after the switchover the leaders are %v (rows %v), want [m2]\n%s", l, rows, strings.Join(f.log, "\n"))
	}
	if n := historyCount(t, dom); n != "2" {
		t.Errorf("data-history-count %s, want 2", n)
	}
	for _, want := range []string{"Cluster paused", "Switchover scheduled", "switchover to m2 requested by the operator", "timeline 2 → 3"} {
		if !strings.Contains(dom, want) {
			t.Errorf("DOM lacks %q", want)
		}
	}
	// Newest first.
	if i, j := strings.Index(dom, "switchover to m2"), strings.Index(dom, "leader m0 unreachable"); i < 0 || j < 0 || i > j {
		t.Errorf("history not newest first")
	}
}

func TestBrowserKeepsDataWhenAPIFails(t *testing.T) {
	bin := chromium(t)
	srv, _ := serveFake(t,
		fakeState{untilRequest: 1, cluster: clusterBefore, history: historyBefore},
		fakeState{fail: true})
	dom := dumpDOM(t, bin, srv.URL+"/ui/")
	if !strings.Contains(dom, "member API unreachable — retrying") {
		t.Fatalf("no error shown:\n%s", dom)
	}
	if !strings.Contains(dom, `data-ready="true"`) {
		t.Error("page not marked ready after its first good poll")
	}
	if rows := members(dom); len(rows) != 3 || rows["m1"] != "leader" {
		t.Errorf("last data cleared on error: rows %v", rows)
	}
}

func TestBrowserPhoneScreenshot(t *testing.T) {
	bin := chromium(t)
	srv, _ := serveFake(t, fakeState{cluster: clusterBefore, history: historyAfter})
	dir := t.TempDir()
	keep := os.Getenv("REGENT_UI_SCREENSHOT_DIR") // to look at the page
	if keep != "" {
		dir = keep
	}
	shot := filepath.Join(dir, "ui-375x800.png")
	runChromium(t, bin, "--virtual-time-budget=5000", "--window-size=375,800", "--screenshot="+shot, srv.URL+"/ui")
	if keep != "" {
		// The whole page on a phone, and on a desktop.
		runChromium(t, bin, "--virtual-time-budget=5000", "--window-size=375,2000", "--screenshot="+filepath.Join(keep, "ui-375x2000.png"), srv.URL+"/ui")
		runChromium(t, bin, "--virtual-time-budget=5000", "--window-size=1280,1100", "--screenshot="+filepath.Join(keep, "ui-1280x1100.png"), srv.URL+"/ui")
	}
	w, h := pngSize(t, shot)
	if w != 375 || h != 800 {
		t.Errorf("screenshot is %dx%d, want 375x800", w, h)
	}
}

// pngSize checks that file is a PNG and returns its dimensions.
func pngSize(t *testing.T, file string) (int, int) {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatalf("no screenshot: %v", err)
	}
	if len(b) < 1000 || !bytes.HasPrefix(b, []byte("\x89PNG\r\n\x1a\n")) || string(b[12:16]) != "IHDR" {
		t.Fatalf("screenshot %s is not a PNG image (%d bytes)", file, len(b))
	}
	return int(binary.BigEndian.Uint32(b[16:20])), int(binary.BigEndian.Uint32(b[20:24]))
}
