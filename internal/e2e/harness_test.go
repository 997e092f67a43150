package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/regent-ha/regent/internal/cluster"
	"github.com/regent-ha/regent/internal/etcdtest"
	"github.com/regent-ha/regent/internal/localcluster"
	"github.com/regent-ha/regent/internal/testport"
)

// binary is the regent executable built by TestMain.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "regent-e2e-bin-")
	if err != nil {
		panic(err)
	}
	binary = filepath.Join(dir, "regent")
	args := []string{"build", "-o", binary}
	if os.Getenv("REGENT_E2E_RACE") != "" {
		// The agents run as separate processes; build them with the race
		// detector to check the agent's own goroutines.
		args = append(args, "-race")
	}
	build := exec.Command("go", append(args, "github.com/regent-ha/regent/cmd/regent")...)
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building regent:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// freePort returns a TCP port on 127.0.0.1 reserved for this test
// binary (package testport).
func freePort(t testing.TB) int {
	t.Helper()
	p, err := testport.Get()
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// testDir returns a directory the unprivileged PostgreSQL user can reach.
func testDir(t testing.TB) string {
	t.Helper()
	dir := t.TempDir()
	for d := dir; d != "/" && d != os.TempDir(); d = filepath.Dir(d) {
		_ = os.Chmod(d, 0o755)
	}
	return dir
}

// fastDCS is the dynamic configuration the tests run with: Regent's
// defaults, which already fail over in seconds.
func fastDCS() *cluster.DynamicConfig {
	c := cluster.DefaultDynamicConfig()
	return &c
}

// startCluster starts an embedded etcd and n members as processes.
func startCluster(t *testing.T, n int) (*localcluster.Cluster, *etcdtest.Server) {
	t.Helper()
	return startClusterWith(t, n, nil)
}

// startClusterWith is startCluster with per-member tags (index 0 = m1).
func startClusterWith(t *testing.T, n int, tags []map[string]any) (*localcluster.Cluster, *etcdtest.Server) {
	t.Helper()
	return startClusterDCS(t, n, tags, fastDCS())
}

// startClusterDCS also sets the bootstrap dynamic configuration.
func startClusterDCS(t *testing.T, n int, tags []map[string]any, dyn *cluster.DynamicConfig) (*localcluster.Cluster, *etcdtest.Server) {
	t.Helper()
	etcd := etcdtest.Start(t)
	var members []localcluster.MemberSpec
	for i := 1; i <= n; i++ {
		ms := localcluster.MemberSpec{Name: fmt.Sprintf("m%d", i), PGPort: freePort(t), APIPort: freePort(t)}
		if i <= len(tags) {
			ms.Tags = tags[i-1]
		}
		members = append(members, ms)
	}
	return startMembersDCS(t, etcd, members, dyn), etcd
}

// startMembers starts the given members against etcd with the default
// dynamic configuration, and stops them when the test ends.
func startMembers(t *testing.T, etcd *etcdtest.Server, members []localcluster.MemberSpec) *localcluster.Cluster {
	t.Helper()
	return startMembersDCS(t, etcd, members, fastDCS())
}

func startMembersDCS(t *testing.T, etcd *etcdtest.Server, members []localcluster.MemberSpec, dyn *cluster.DynamicConfig) *localcluster.Cluster {
	t.Helper()
	return runSpec(t, localcluster.Spec{
		Dir:     testDir(t),
		Binary:  binary,
		Scope:   "e2e",
		Etcd:    etcd.Endpoints(),
		DCS:     dyn,
		Members: members,
	})
}

// runSpec starts every member of spec (see newCluster).
func runSpec(t *testing.T, spec localcluster.Spec) *localcluster.Cluster {
	t.Helper()
	c := newCluster(t, spec)
	for _, m := range spec.Members {
		if err := c.Start(m.Name); err != nil {
			t.Fatal(err)
		}
	}
	return c
}

// newCluster prepares spec's members without starting them, and stops
// them when the test ends, killing the postmasters of members a test
// killed; their logs are dumped when the test failed (or REGENT_E2E_LOGS
// is set).
func newCluster(t *testing.T, spec localcluster.Spec) *localcluster.Cluster {
	t.Helper()
	c, err := localcluster.New(spec)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
		defer cancel()
		_ = c.StopAll(ctx, 30*time.Second)
		// Members killed by a test leave their postmaster behind.
		for _, m := range spec.Members {
			killPostmaster(c, m.Name)
		}
		if t.Failed() || os.Getenv("REGENT_E2E_LOGS") != "" {
			dumpLogs(t, c)
		}
	})
	return c
}

func killPostmaster(c *localcluster.Cluster, name string) {
	if pid := c.PostmasterPID(name); pid > 0 {
		if p, err := os.FindProcess(pid); err == nil {
			_ = p.Kill()
		}
	}
}

func dumpLogs(t *testing.T, c *localcluster.Cluster) {
	for _, m := range c.Spec.Members {
		b, _ := os.ReadFile(c.LogPath(m.Name))
		lines := strings.Split(string(b), "\n")
		if len(lines) > 400 {
			lines = lines[len(lines)-400:]
		}
		t.Logf("=== %s log (tail) ===\n%s", m.Name, strings.Join(lines, "\n"))
	}
}

// waitFor polls the DCS view until cond holds, failing after timeout.
func waitFor(t *testing.T, c *localcluster.Cluster, timeout time.Duration, what string, cond func(*cluster.Cluster) bool) *cluster.Cluster {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	view, err := c.WaitFor(ctx, cond)
	if err != nil {
		t.Fatalf("waiting for %s: %v\nlast view: %s", what, err, describe(view))
	}
	return view
}

func describe(v *cluster.Cluster) string {
	if v == nil {
		return "<none>"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "leader=%q", v.LeaderName())
	for _, m := range v.SortedMembers() {
		fmt.Fprintf(&b, " [%s role=%s state=%s repl=%s tl=%d]", m.Name, m.Role, m.State, m.ReplicationState, m.Timeline)
	}
	return b.String()
}

// connect opens a superuser connection to a member's PostgreSQL.
func connect(t *testing.T, c *localcluster.Cluster, name string) (*pgx.Conn, error) {
	t.Helper()
	m, _ := c.Member(name)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	dsn := fmt.Sprintf("host=127.0.0.1 port=%d user=postgres password=%s dbname=postgres connect_timeout=3",
		m.PGPort, c.Password("superuser"))
	return pgx.Connect(ctx, dsn)
}

// exec runs a statement on a member.
func execOn(t *testing.T, c *localcluster.Cluster, name, sql string, args ...any) error {
	t.Helper()
	conn, err := connect(t, c, name)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err = conn.Exec(ctx, sql, args...)
	return err
}

// count returns the number of rows in table t on a member (-1 on error).
func count(t *testing.T, c *localcluster.Cluster, name, table string) int {
	t.Helper()
	conn, err := connect(t, c, name)
	if err != nil {
		return -1
	}
	defer conn.Close(context.Background())
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var n int
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM "+table).Scan(&n); err != nil {
		return -1
	}
	return n
}

// eventually retries f until it returns nil or timeout passes.
func eventually(t *testing.T, timeout time.Duration, what string, f func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: still failing after %s: %v", what, timeout, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
