package postgres

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestPrimaryLifecycle covers InitDB, Start, Query, adoption of a
// postmaster by another Instance, crash notification and stop escalation.
func TestPrimaryLifecycle(t *testing.T) {
	t.Parallel()
	dir := testDir(t)
	dataDir := filepath.Join(dir, "nested", "data")
	port := freePort(t)
	i := newTestInstance(t, dataDir, "node-a", port)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	if err := i.InitDB(ctx); err != nil {
		t.Fatal(err)
	}
	if st, err := i.DataDirState(); err != nil || st != DataDirInitialized {
		t.Fatalf("DataDirState after initdb: %v %v", st, err)
	}
	if err := i.InitDB(ctx); err == nil {
		t.Error("second InitDB succeeded")
	}
	checkOwnedFile(t, i.Instance, filepath.Join(dataDir, "postgresql.conf"))
	checkOwnedFile(t, i.Instance, filepath.Join(dataDir, "pg_hba.conf"))
	conf, _ := os.ReadFile(filepath.Join(dataDir, "postgresql.conf"))
	if !strings.HasPrefix(string(conf), managedHeader+"\n") {
		t.Errorf("postgresql.conf:\n%s", conf)
	}
	if _, err := os.Stat(filepath.Join(dataDir, "postgresql.base.conf")); err != nil {
		t.Errorf("base configuration: %v", err)
	}
	if st, err := os.Stat(dataDir); err != nil || st.Mode().Perm() != 0o700 {
		t.Errorf("data dir mode: %v %v", st.Mode(), err)
	}

	cd, err := i.ControlData(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if cd.State != "shut down" || cd.TimeLineID != 1 || cd.SystemIdentifier == "" || !cd.DataChecksums {
		t.Errorf("control data after initdb: %+v", cd)
	}

	i.start(t, StartOptions{})
	if err := i.Start(ctx, StartOptions{}); err == nil || !strings.Contains(err.Error(), "already running") {
		t.Errorf("second Start: %v", err)
	}
	s := i.state(t)
	if s.InRecovery || s.Timeline != 1 || s.WriteLSN <= 0 || s.ServerVersion < 150000 || s.ReplicationState != "" {
		t.Errorf("primary state: %+v", s)
	}
	if s.SystemIdentifier != cd.SystemIdentifier {
		t.Errorf("system identifier %q, control data says %q", s.SystemIdentifier, cd.SystemIdentifier)
	}
	if time.Since(s.PostmasterStartTime) > time.Minute {
		t.Errorf("postmaster start time %v", s.PostmasterStartTime)
	}
	if v := i.queryString(t, "SHOW data_checksums"); v != "on" {
		t.Errorf("data_checksums = %q", v)
	}
	if v := i.queryString(t, "SHOW port"); v != strings.TrimPrefix(i.opts.Listen, "127.0.0.1:") {
		t.Errorf("port = %q", v)
	}
	if v := i.queryString(t, "SHOW fsync"); v != "off" {
		t.Errorf("fsync = %q (Options.Parameters not applied)", v)
	}

	// kill -9 of the postmaster is reported at once.
	drain(i.Exited())
	pid, _ := i.Running()
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	select {
	case <-i.Exited():
	case <-time.After(5 * time.Second):
		t.Fatal("Exited did not report the killed postmaster")
	}
	if _, ok := i.Running(); ok {
		t.Error("Running after kill -9")
	}

	// Restart (crash recovery); another Instance adopts the postmaster and
	// stops it.
	i.start(t, StartOptions{})
	pid, _ = i.Running()
	other, err := New(testOptions(t, dataDir, "node-a", port))
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if opid, ok := other.Running(); !ok || opid != pid {
		t.Fatalf("other Instance: Running() = %d %v, want %d", opid, ok, pid)
	}
	if s, err := other.Query(ctx); err != nil || s.InRecovery {
		t.Fatalf("adopted query: %+v %v", s, err)
	}
	drain(i.Exited())
	if err := other.Stop(ctx, StopFast, 0); err != nil {
		t.Fatal(err)
	}
	if _, ok := other.Running(); ok {
		t.Error("adopted postmaster still running after Stop")
	}
	select {
	case <-i.Exited():
	case <-time.After(5 * time.Second):
		t.Error("Exited did not report the stopped postmaster")
	}
	if cd, err := i.ControlData(ctx); err != nil || cd.State != "shut down" {
		t.Errorf("after fast stop: %+v %v", cd, err)
	}
	if err := other.Stop(ctx, StopFast, 0); err != nil {
		t.Errorf("Stop of a stopped server: %v", err)
	}

	// A SIGSTOPped postmaster is killed after the escalation delay.
	i.start(t, StartOptions{})
	pid, _ = i.Running()
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := i.Stop(ctx, StopImmediate, 500*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < 500*time.Millisecond || d > 10*time.Second {
		t.Errorf("escalated stop took %v", d)
	}
	if processAlive(pid) {
		t.Error("postmaster alive after escalated Stop")
	}
	if _, ok := i.Running(); ok {
		t.Error("Running after escalated Stop")
	}
	if left := postgresProcsIn(dataDir); len(left) > 0 {
		t.Errorf("processes of the killed postmaster remain: %v", left)
	}

	// It starts again after being killed.
	i.start(t, StartOptions{})
	if s := i.state(t); s.InRecovery || s.Timeline != 1 {
		t.Errorf("after restart: %+v", s)
	}
}

func drain(c <-chan struct{}) {
	for {
		select {
		case <-c:
		default:
			return
		}
	}
}

// checkOwnedFile checks a file Regent wrote: mode 0600, owned by the run
// user.
func checkOwnedFile(t *testing.T, i *Instance, path string) {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Error(err)
		return
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("%s: mode %v", path, st.Mode())
	}
	if sys, ok := st.Sys().(*syscall.Stat_t); ok && int(sys.Uid) != i.run.uid {
		t.Errorf("%s: owner %d, want %d", path, sys.Uid, i.run.uid)
	}
}
