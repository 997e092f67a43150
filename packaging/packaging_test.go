package packaging

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

const unitPath = "systemd/regent@.service"

// directives returns the unit's Key=value lines by key.
func directives(t *testing.T) map[string][]string {
	t.Helper()
	b, err := os.ReadFile(unitPath)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]string{}
	for _, l := range strings.Split(string(b), "\n") {
		l = strings.TrimSpace(l)
		if l == "" || strings.HasPrefix(l, "#") || strings.HasPrefix(l, "[") {
			continue
		}
		k, v, _ := strings.Cut(l, "=")
		out[k] = append(out[k], v)
	}
	return out
}

// TestUnit checks the settings Regent's safety depends on: systemd waits
// for READY=1, reloads by SIGHUP (not a restart, which on a leader would
// be a failover), stops the agent first so it can stop PostgreSQL in
// order, and never leaves PostgreSQL running without its agent.
func TestUnit(t *testing.T) {
	d := directives(t)
	want := map[string]string{
		"Type":       "notify",
		"ExecStart":  "/usr/bin/regent run -c /etc/regent/%i.yaml",
		"ExecReload": "/bin/kill -HUP $MAINPID",
		"KillMode":   "mixed",
		"Restart":    "on-failure",
	}
	for k, v := range want {
		if got := d[k]; len(got) != 1 || got[0] != v {
			t.Errorf("%s=%q, want %q", k, got, v)
		}
	}
	if _, ok := d["WatchdogSec"]; !ok {
		t.Error("no WatchdogSec: the agent's WATCHDOG=1 would go unused")
	}
}

// TestUnitVerifies runs systemd-analyze verify on the unit, as an
// instance. ExecStart's binary must exist for verify, so a copy of the
// unit points at /bin/true instead of /usr/bin/regent. Any warning fails.
func TestUnitVerifies(t *testing.T) {
	tool, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze is not installed")
	}
	b, err := os.ReadFile(unitPath)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	unit := strings.ReplaceAll(string(b), "ExecStart=/usr/bin/regent ", "ExecStart=/bin/true ")
	if err := os.WriteFile(filepath.Join(dir, "regent@.service"), []byte(unit), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(tool, "verify", filepath.Join(dir, "regent@n1.service")).CombinedOutput()
	if err != nil || len(strings.TrimSpace(string(out))) > 0 {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
	}
}

// TestDebianPackage builds the package with scripts/build-deb and checks
// its contents and control fields. Installing and starting it needs a
// running systemd, which the test machine may not have.
func TestDebianPackage(t *testing.T) {
	if _, err := exec.LookPath("dpkg-deb"); err != nil {
		t.Skip("dpkg-deb is not installed")
	}
	if testing.Short() {
		t.Skip("builds the regent binary")
	}
	out := t.TempDir()
	b, err := exec.Command("../scripts/build-deb", out).CombinedOutput()
	if err != nil {
		t.Fatalf("scripts/build-deb: %v\n%s", err, b)
	}
	deb := strings.TrimSpace(string(b))
	list, err := exec.Command("dpkg-deb", "-c", deb).CombinedOutput()
	if err != nil {
		t.Fatalf("dpkg-deb -c: %v\n%s", err, list)
	}
	for _, want := range []string{
		"-rwxr-xr-x root/root", "./usr/bin/regent",
		"./lib/systemd/system/regent@.service", "./etc/regent/", "./etc/regent/member.yaml.example",
	} {
		if !strings.Contains(string(list), want) {
			t.Errorf("package contents lack %q:\n%s", want, list)
		}
	}
	info, err := exec.Command("dpkg-deb", "-f", deb, "Package", "Version").CombinedOutput()
	if err != nil || !strings.Contains(string(info), "Package: regent") {
		t.Fatalf("dpkg-deb -f: %v\n%s", err, info)
	}
}
