package e2e

import (
	"bytes"
	"context"
	byteorder "encoding/binary"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/regent-ha/regent/internal/cluster"
	"github.com/regent-ha/regent/internal/localcluster"
)

// TestStatusPage loads a member's status page (/ui) in headless Chromium:
// it renders the three members with the leader marked, and after a
// switchover it shows the new leader and one more history entry.
func TestStatusPage(t *testing.T) {
	browser := uiChromium(t)
	c, _ := startCluster(t, 3)
	waitFor(t, c, 3*time.Minute, "a healthy cluster", func(v *cluster.Cluster) bool { return localcluster.Healthy(v, 3) })
	leader := leaderOf(t, c)
	candidate := otherThan(c, leader)
	// The page is loaded from the member the switchover does not involve.
	watcher := otherThan(c, leader, candidate)
	url := uiPageURL(c, watcher)
	uiCheckServed(t, url)

	dom := uiDumpDOM(t, browser, url)
	if !strings.Contains(dom, `data-ready="true"`) {
		t.Fatalf("the page never rendered the cluster:\n%s", dom)
	}
	rows := uiMemberRows(dom)
	if len(rows) != 3 {
		t.Fatalf("page shows %d member rows %v, want 3:\n%s", len(rows), rows, dom)
	}
	if l := uiLeaders(rows); len(l) != 1 || l[0] != leader || strings.Count(dom, `data-role="leader"`) != 1 {
		t.Fatalf("page marks %v as leader, want [%s]:\n%s", l, leader, dom)
	}
	historyBefore := uiHistoryCount(t, dom)

	view := waitFor(t, c, time.Minute, "the DCS view", func(*cluster.Cluster) bool { return true })
	entries := len(view.History)
	if out, err := cli(t, c, "switchover", "--candidate", candidate, "--force"); err != nil {
		t.Fatalf("regent switchover: %v\n%s", err, out)
	}
	waitFor(t, c, 2*time.Minute, "the new leader and its history entry", func(v *cluster.Cluster) bool {
		l := v.LeaderMember()
		return l != nil && l.Name == candidate && l.State == cluster.StateRunning &&
			l.Role == cluster.RolePrimary && len(v.History) > entries
	})

	// /cluster reads the DCS afresh, so the next page load shows the
	// switchover; retry briefly in case a read lands in between.
	eventually(t, 45*time.Second, "the page showing the new leader", func() error {
		dom = uiDumpDOM(t, browser, url)
		rows := uiMemberRows(dom)
		if l := uiLeaders(rows); len(rows) != 3 || len(l) != 1 || l[0] != candidate || strings.Count(dom, `data-role="leader"`) != 1 {
			return fmt.Errorf("rows %v, want 3 with leader %s", rows, candidate)
		}
		if n := uiHistoryCount(t, dom); n <= historyBefore {
			return fmt.Errorf("data-history-count %d, was %d before the switchover", n, historyBefore)
		}
		if strings.Contains(dom, "unreachable — retrying") {
			return fmt.Errorf("the page reports its member API unreachable")
		}
		return nil
	})
	t.Logf("status page on %s: leader %s -> %s, history entries %d -> %d", watcher, leader, candidate, historyBefore, uiHistoryCount(t, dom))

	// On a phone.
	dir := t.TempDir()
	if keep := os.Getenv("REGENT_UI_SCREENSHOT_DIR"); keep != "" {
		dir = keep // to look at it
	}
	shot := filepath.Join(dir, "ui-e2e-375x800.png")
	uiRunChromium(t, browser, "--virtual-time-budget=5000", "--window-size=375,800", "--screenshot="+shot, url)
	b, err := os.ReadFile(shot)
	if err != nil {
		t.Fatalf("no screenshot: %v", err)
	}
	if len(b) < 1000 || !bytes.HasPrefix(b, []byte("\x89PNG\r\n\x1a\n")) {
		t.Fatalf("screenshot is not a PNG image (%d bytes)", len(b))
	}
	if w, h := byteorder.BigEndian.Uint32(b[16:20]), byteorder.BigEndian.Uint32(b[20:24]); w != 375 || h != 800 {
		t.Errorf("screenshot is %dx%d, want 375x800", w, h)
	}
}

// uiPageURL is the address of a member's status page.
func uiPageURL(c *localcluster.Cluster, member string) string {
	return c.APIURL(member) + "/ui"
}

const uiChromiumPath = "/usr/bin/chromium"

// uiChromium returns the browser, skipping the test when it is not
// installed, except under CI=true, where CI installs it (Debian package
// chromium) and its absence is a failure.
func uiChromium(t *testing.T) string {
	t.Helper()
	if _, err := os.Stat(uiChromiumPath); err == nil {
		return uiChromiumPath
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s not found: CI must install the Debian package chromium", uiChromiumPath)
	}
	t.Skipf("%s not found (apt-get install chromium to run the browser test)", uiChromiumPath)
	return ""
}

// uiCheckServed checks that the member's REST server serves the page,
// with its Content-Security-Policy, before a browser is started.
func uiCheckServed(t *testing.T, url string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "data-ready") {
		t.Fatalf("GET %s: %d %.200s\nthe REST server must serve ui.Handler() at /ui and /ui/", url, resp.StatusCode, body)
	}
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") {
		t.Errorf("GET %s: Content-Security-Policy %q", url, csp)
	}
}

// uiRunChromium runs headless Chromium with args, within 60 s, and
// returns its standard output.
func uiRunChromium(t *testing.T, browser string, args ...string) string {
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
	cmd := exec.CommandContext(ctx, browser, append(base, args...)...)
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
		lines := strings.Split(strings.TrimRight(stderr.String(), "\n"), "\n")
		if len(lines) > 40 {
			lines = lines[len(lines)-40:]
		}
		t.Fatalf("chromium %s: %v\nstderr:\n%s", strings.Join(args, " "), err, strings.Join(lines, "\n"))
	}
	return stdout.String()
}

// uiDumpDOM loads url and returns the DOM after 5 s of virtual time.
func uiDumpDOM(t *testing.T, browser, url string) string {
	t.Helper()
	dom := uiRunChromium(t, browser, "--virtual-time-budget=5000", "--dump-dom", url)
	for _, attr := range []string{"data-csp-violations", "data-script-errors"} {
		if strings.Contains(dom, attr+"=") {
			t.Errorf("%s: the page recorded %s", url, attr)
		}
	}
	return dom
}

var (
	uiMemberRow = regexp.MustCompile(`<tr[^>]*\bdata-member="([^"]*)"[^>]*>`)
	uiRoleAttr  = regexp.MustCompile(`\bdata-role="([^"]*)"`)
	uiHistory   = regexp.MustCompile(`\bdata-history-count="(\d+)"`)
)

// uiMemberRows maps each member row of dom to its data-role.
func uiMemberRows(dom string) map[string]string {
	out := map[string]string{}
	for _, m := range uiMemberRow.FindAllStringSubmatch(dom, -1) {
		role := ""
		if r := uiRoleAttr.FindStringSubmatch(m[0]); r != nil {
			role = r[1]
		}
		out[m[1]] = role
	}
	return out
}

func uiLeaders(rows map[string]string) []string {
	var out []string
	for name, role := range rows {
		if role == "leader" {
			out = append(out, name)
		}
	}
	return out
}

func uiHistoryCount(t *testing.T, dom string) int {
	t.Helper()
	m := uiHistory.FindStringSubmatch(dom)
	if m == nil {
		t.Fatalf("no data-history-count in the page:\n%s", dom)
	}
	n, _ := strconv.Atoi(m[1])
	return n
}
