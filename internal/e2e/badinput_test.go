package e2e

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/regent-ha/regent/internal/cluster"
	"github.com/regent-ha/regent/internal/etcdserver"
	"github.com/regent-ha/regent/internal/localcluster"
)

// syncBuffer collects a process's output while it runs.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// memberYAML writes a minimal member configuration.
func memberYAML(t *testing.T, dir, name string, etcd []string, extra string) string {
	t.Helper()
	pw := filepath.Join(dir, "pw")
	if err := os.WriteFile(pw, []byte("secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	endpoints := `"` + strings.Join(etcd, `","`) + `"`
	y := fmt.Sprintf(`scope: bad
name: %s
etcd:
  endpoints: [%s]
  dial_timeout: 1s
restapi:
  listen: 127.0.0.1:%d
postgresql:
  listen: 127.0.0.1:%d
  data_dir: %s
  authentication:
    superuser: {username: postgres, password: {file: %s}}
    replication: {username: replicator, password: {file: %s}}
%s`, name, endpoints, freePort(t), freePort(t), filepath.Join(dir, name+"-data"), pw, pw, extra)
	path := filepath.Join(dir, name+".yaml")
	if err := os.WriteFile(path, []byte(y), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// runToExit runs `regent run` and returns its exit code and output,
// failing the test if it does not exit within timeout.
func runToExit(t *testing.T, timeout time.Duration, args ...string) (int, string) {
	t.Helper()
	cmd := exec.Command(binary, args...)
	var out syncBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return ee.ExitCode(), out.String()
		}
		return 0, out.String()
	case <-time.After(timeout):
		_ = cmd.Process.Kill()
		<-done
		t.Fatalf("regent %v did not exit within %s; output:\n%s", args, timeout, out.String())
		return 0, ""
	}
}

func TestUnknownConfigKeyIsRefused(t *testing.T) {
	t.Parallel()
	dir := testDir(t)
	path := memberYAML(t, dir, "m1", []string{"http://127.0.0.1:1"}, "tagz:\n  nofailover: true\n")
	code, out := runToExit(t, 10*time.Second, "run", "-c", path)
	if code == 0 || !strings.Contains(out, `unknown key "tagz"`) || !strings.Contains(out, `did you mean "tags"?`) {
		t.Fatalf("exit %d, output:\n%s", code, out)
	}
}

func TestMissingPostgresBinariesAreExplained(t *testing.T) {
	t.Parallel()
	dir := testDir(t)
	path := memberYAML(t, dir, "m1", []string{"http://127.0.0.1:1"}, "")
	b, _ := os.ReadFile(path)
	b = bytes.Replace(b, []byte("postgresql:\n"), []byte("postgresql:\n  bin_dir: /nonexistent/bin\n"), 1)
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	code, out := runToExit(t, 10*time.Second, "run", "-c", path)
	if code == 0 || !strings.Contains(out, "/nonexistent/bin") || !strings.Contains(out, "apt-get install") {
		t.Fatalf("exit %d, output:\n%s", code, out)
	}
}

// TestUnreachableEtcdAtStart starts an agent before its etcd exists: it
// must keep retrying with a clear message (no crash loop), then bootstrap
// once etcd appears.
func TestUnreachableEtcdAtStart(t *testing.T) {
	t.Parallel()
	dir := testDir(t)
	clientURL := fmt.Sprintf("http://127.0.0.1:%d", freePort(t))
	peerURL := fmt.Sprintf("http://127.0.0.1:%d", freePort(t))
	path := memberYAML(t, dir, "m1", []string{clientURL}, "")

	cmd := exec.Command(binary, "run", "-c", path)
	var out syncBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		select {
		case <-exited:
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
		}
	})
	eventually(t, 20*time.Second, "two retry messages", func() error {
		if n := strings.Count(out.String(), "cannot reach etcd"); n < 2 {
			return fmt.Errorf("%d retry messages so far:\n%s", n, out.String())
		}
		return nil
	})
	if !strings.Contains(out.String(), clientURL) {
		t.Fatalf("retry message does not name the endpoint:\n%s", out.String())
	}
	select {
	case <-exited:
		t.Fatalf("agent exited instead of retrying:\n%s", out.String())
	default:
	}

	etcd, err := etcdserver.StartEmbedded(filepath.Join(dir, "etcd"), clientURL, peerURL, "")
	if err != nil {
		t.Fatal(err)
	}
	defer etcd.Close()
	c := &localcluster.Cluster{Spec: localcluster.Spec{Etcd: []string{clientURL}, Scope: "bad"}}
	waitFor(t, c, 2*time.Minute, "the member to bootstrap once etcd is up", func(v *cluster.Cluster) bool {
		l := v.LeaderMember()
		return l != nil && l.State == cluster.StateRunning
	})
}

// TestForeignDataDirectoryIsRefused points a second member of a running
// cluster at a data directory made by a different initdb: the agent must
// exit with a clear error and leave the directory as it was.
func TestForeignDataDirectoryIsRefused(t *testing.T) {
	c, _ := startCluster(t, 1)
	waitFor(t, c, 2*time.Minute, "the single member to lead", func(v *cluster.Cluster) bool {
		l := v.LeaderMember()
		return l != nil && l.State == cluster.StateRunning && v.Initialize != nil && v.Initialize.SystemID != ""
	})
	// A data directory from another cluster: a second one-member cluster
	// with its own etcd.
	other, _ := startCluster(t, 1)
	waitFor(t, other, 2*time.Minute, "the other cluster", func(v *cluster.Cluster) bool {
		return v.Initialize != nil && v.Initialize.SystemID != ""
	})
	ctx := t.Context()
	if err := other.StopAll(ctx, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	foreign := other.DataDir("m1")
	before := snapshotDir(t, foreign)

	dir := testDir(t)
	path := memberYAML(t, dir, "intruder", c.Spec.Etcd, "")
	b, _ := os.ReadFile(path)
	b = bytes.Replace(b, []byte("scope: bad"), []byte("scope: "+c.Spec.Scope), 1)
	b = bytes.Replace(b, []byte(filepath.Join(dir, "intruder-data")), []byte(foreign), 1)
	b = bytes.Replace(b, []byte("password: {file: "+filepath.Join(dir, "pw")+"}"),
		[]byte("password: {file: "+filepath.Join(c.Spec.Dir, "secrets", "superuser")+"}"), 1)
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	code, out := runToExit(t, 60*time.Second, "run", "-c", path)
	if code != 2 || !strings.Contains(out, "belongs to another cluster") {
		t.Fatalf("exit %d, output:\n%s", code, out)
	}
	if after := snapshotDir(t, foreign); after != before {
		t.Fatalf("foreign data directory was modified:\nbefore %s\nafter  %s", before, after)
	}
}

// TestDuplicateMemberNameIsRefused starts a second agent under the name of
// a running member.
func TestDuplicateMemberNameIsRefused(t *testing.T) {
	c, _ := startCluster(t, 1)
	waitFor(t, c, 2*time.Minute, "m1 running", func(v *cluster.Cluster) bool {
		m := v.Member("m1")
		return m != nil && m.State == cluster.StateRunning
	})
	dir := testDir(t)
	path := memberYAML(t, dir, "m1", c.Spec.Etcd, "")
	b, _ := os.ReadFile(path)
	b = bytes.Replace(b, []byte("scope: bad"), []byte("scope: "+c.Spec.Scope), 1)
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	code, out := runToExit(t, 30*time.Second, "run", "-c", path)
	if code != 2 || !strings.Contains(out, "already uses the name") {
		t.Fatalf("exit %d, output:\n%s", code, out)
	}
	if _, err := os.Stat(filepath.Join(dir, "m1-data")); err == nil {
		t.Fatal("the refused duplicate created a data directory")
	}
}

// snapshotDir summarises names, sizes and modification times under dir.
func snapshotDir(t *testing.T, dir string) string {
	t.Helper()
	var b strings.Builder
	err := filepath.Walk(dir, func(p string, info os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		fmt.Fprintf(&b, "%s:%d:%d;", strings.TrimPrefix(p, dir), info.Size(), info.ModTime().UnixNano())
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return b.String()
}
