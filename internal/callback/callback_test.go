package callback

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// script writes an executable shell script and returns its path.
func script(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "cb.sh")
	if err := os.WriteFile(p, []byte("#!/bin/sh\n"+body), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func readLines(path string) []string {
	b, _ := os.ReadFile(path)
	return strings.Fields(strings.ReplaceAll(string(b), " ", "_"))
}

func alive(pid int) bool { return syscall.Kill(pid, 0) == nil }

func readPID(t *testing.T, path string) int {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return pid
}

func TestSplit(t *testing.T) {
	tests := []struct {
		in   string
		want []string
	}{
		{"/bin/cb", []string{"/bin/cb"}},
		{"  /bin/cb  --flag x ", []string{"/bin/cb", "--flag", "x"}},
		{`/bin/cb 'a b' "c d"`, []string{"/bin/cb", "a b", "c d"}},
		{`/bin/cb "x\"y" 'it''s' a\ b ""`, []string{"/bin/cb", `x"y`, "its", "a b", ""}},
		{`/bin/cb "a\nb"`, []string{"/bin/cb", `a\nb`}},
	}
	for _, tt := range tests {
		got, err := Split(tt.in)
		if err != nil || !slices.Equal(got, tt.want) {
			t.Errorf("Split(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
	for _, bad := range []string{`/bin/cb 'x`, `/bin/cb "x`, `/bin/cb \`} {
		if _, err := Split(bad); err == nil {
			t.Errorf("Split(%q) gave no error", bad)
		}
	}
}

func TestNotifyPassesActionRoleScope(t *testing.T) {
	out := filepath.Join(t.TempDir(), "argv")
	cb := script(t, `echo "$#:$1:$2:$3:$4" >> `+out+"\n")
	r := New(Options{Commands: map[Event]string{OnRoleChange: cb + " --extra", OnStop: ""}, Scope: "demo"})
	defer r.Close()
	r.Notify(OnStop, "primary") // not configured: nothing runs
	r.Notify(OnRoleChange, "primary")
	waitFor(t, "the callback's record", func() bool { return len(readLines(out)) > 0 })
	if got := readLines(out); !slices.Equal(got, []string{"4:--extra:on_role_change:primary:demo"}) {
		t.Errorf("argv = %q, want [4:--extra:on_role_change:primary:demo]", got)
	}
}

func TestTimeoutKillsTheProcessGroup(t *testing.T) {
	dir := t.TempDir()
	childPID, started := filepath.Join(dir, "child"), filepath.Join(dir, "started")
	// The script leaves a child behind in its process group and hangs.
	cb := script(t, "sleep 300 &\necho $! > "+childPID+"\necho $$ > "+started+"\nsleep 300\n")
	r := New(Options{Commands: map[Event]string{OnStart: cb}, Scope: "demo", Timeout: 500 * time.Millisecond})
	defer r.Close()
	r.Notify(OnStart, "replica")
	waitFor(t, "the script to start", func() bool { return readPID(t, started) > 0 && readPID(t, childPID) > 0 })
	pid, child := readPID(t, started), readPID(t, childPID)
	waitFor(t, "the timeout to kill the script and its child", func() bool { return !alive(pid) && !alive(child) })
}

// A newer event kills the callback still running (and its children) and
// runs only after it exited, as Patroni's CallbackExecutor does; so two
// callbacks never run at the same time.
func TestNewerEventSupersedesRunningOne(t *testing.T) {
	dir := t.TempDir()
	log, pidFile := filepath.Join(dir, "log"), filepath.Join(dir, "pid")
	cb := script(t, `
if [ -f `+pidFile+` ] && kill -0 "$(cat `+pidFile+`)" 2>/dev/null; then echo CONCURRENT >> `+log+`; fi
echo $$ > `+pidFile+`
echo "start-$1" >> `+log+`
sleep 300
echo "end-$1" >> `+log+`
`)
	r := New(Options{Commands: map[Event]string{OnStart: cb, OnRoleChange: cb, OnStop: cb}, Scope: "demo"})
	r.Notify(OnStart, "replica")
	waitFor(t, "on_start to run", func() bool { return slices.Contains(readLines(log), "start-on_start") })
	first := readPID(t, pidFile)
	r.Notify(OnRoleChange, "primary")
	waitFor(t, "on_role_change to run", func() bool { return slices.Contains(readLines(log), "start-on_role_change") })
	if alive(first) {
		t.Errorf("on_start (pid %d) still runs beside on_role_change", first)
	}
	second := readPID(t, pidFile)
	r.Close() // kills on_role_change
	if alive(second) {
		t.Errorf("Close left the running callback (pid %d) alive", second)
	}
	if got := readLines(log); !slices.Equal(got, []string{"start-on_start", "start-on_role_change"}) {
		t.Errorf("log = %q, want each started once, none concurrent, none finished", got)
	}
	r.Notify(OnStop, "primary") // after Close: ignored
}

// on_reload has its own lane: it neither kills nor waits for the others.
func TestReloadRunsBesideOtherCallbacks(t *testing.T) {
	dir := t.TempDir()
	log := filepath.Join(dir, "log")
	slow := script(t, "echo start-$1 >> "+log+"\nsleep 300\n")
	quick := filepath.Join(dir, "quick.sh")
	if err := os.WriteFile(quick, []byte("#!/bin/sh\necho done-$1 >> "+log+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	r := New(Options{Commands: map[Event]string{OnStart: slow, OnReload: quick}, Scope: "demo"})
	defer r.Close()
	r.Notify(OnStart, "replica")
	waitFor(t, "on_start to run", func() bool { return slices.Contains(readLines(log), "start-on_start") })
	r.Notify(OnReload, "replica")
	waitFor(t, "on_reload to finish", func() bool { return slices.Contains(readLines(log), "done-on_reload") })
}

func TestRun(t *testing.T) {
	ok := script(t, "echo fine; exit 0\n")
	if res := Run(context.Background(), ok); res.Err != nil || res.ExitCode != 0 || res.Output != "fine" {
		t.Errorf("Run(ok) = %+v", res)
	}
	fail := script(t, "echo nope >&2; exit 3\n")
	if res := Run(context.Background(), fail+" arg"); res.Err == nil || res.ExitCode != 3 || res.Output != "nope" {
		t.Errorf("Run(fail) = %+v", res)
	}
	hang := script(t, "sleep 300\n")
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if res := Run(ctx, hang); res.Err == nil || res.ExitCode != -1 || !strings.Contains(res.Err.Error(), "killed") {
		t.Errorf("Run(hang) = %+v", res)
	}
	if res := Run(context.Background(), "/nonexistent/script"); res.Err == nil || res.ExitCode != -1 {
		t.Errorf("Run(missing) = %+v", res)
	}
}

// A reload replaces the commands for later events; nothing configured
// before may become configured after, and the other way round.
func TestUpdateChangesLaterEvents(t *testing.T) {
	dir := t.TempDir()
	first, second := filepath.Join(dir, "first"), filepath.Join(dir, "second")
	r := New(Options{Commands: map[Event]string{OnRoleChange: script(t, `echo "$2" >> `+first+"\n")}, Scope: "demo"})
	defer r.Close()
	r.Update(map[Event]string{OnStart: script(t, `echo "$2" >> `+second+"\n")}, time.Minute)
	if r.Configured(OnRoleChange) || !r.Configured(OnStart) {
		t.Fatal("Update did not replace the commands")
	}
	r.Notify(OnRoleChange, "primary") // no longer configured
	r.Notify(OnStart, "replica")
	waitFor(t, "the new callback's record", func() bool { return len(readLines(second)) > 0 })
	if got := readLines(first); len(got) != 0 {
		t.Fatalf("the replaced command still ran: %q", got)
	}
}
