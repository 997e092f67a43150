package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/regent-ha/regent/internal/cluster"
	"github.com/regent-ha/regent/internal/etcdtest"
	"github.com/regent-ha/regent/internal/localcluster"
	"github.com/regent-ha/regent/internal/postgres"
)

// TestAdoptRunningStandalone converts a running standalone PostgreSQL
// (initdb and pg_ctl, as a user would have done) into the first member of
// a Regent cluster: the running server is kept, the initialize key gets
// its system identifier, and a second member clones it and streams.
func TestAdoptRunningStandalone(t *testing.T) {
	t.Parallel()
	testAdoptStandalone(t, true)
}

// TestAdoptStoppedStandalone is the same for a standalone data directory
// that was shut down cleanly: Regent starts it as primary (not as a
// read-only standby) with the user's configuration included.
func TestAdoptStoppedStandalone(t *testing.T) {
	t.Parallel()
	testAdoptStandalone(t, false)
}

func testAdoptStandalone(t *testing.T, running bool) {
	etcd := etcdtest.Start(t)
	m1 := localcluster.MemberSpec{Name: "m1", PGPort: freePort(t), APIPort: freePort(t)}
	m2 := localcluster.MemberSpec{Name: "m2", PGPort: freePort(t), APIPort: freePort(t)}
	spec := localcluster.Spec{
		Dir: testDir(t), Binary: binary, Scope: "legacy", Etcd: etcd.Endpoints(), DCS: fastDCS(),
		Members: []localcluster.MemberSpec{m1, m2},
	}
	c := newCluster(t, spec)

	sa := newStandalone(t, c.DataDir("m1"), m1.PGPort, c.Password("superuser"))
	const rows = 1000
	sa.psql(t, "CREATE TABLE precious (id int PRIMARY KEY, v text)")
	sa.psql(t, fmt.Sprintf("INSERT INTO precious SELECT g, md5(g::text) FROM generate_series(1, %d) g", rows))
	sysid := sa.systemID(t)
	inode := inodeOf(t, c.DataDir("m1"))
	var pid int
	if running {
		pid = c.PostmasterPID("m1")
	} else {
		sa.stop(t)
	}

	if err := c.Start("m1"); err != nil {
		t.Fatal(err)
	}
	view := waitFor(t, c, 60*time.Second, "m1 to adopt the data directory as leader", func(v *cluster.Cluster) bool {
		m := v.Member("m1")
		return v.LeaderName() == "m1" && v.Initialize != nil && v.Initialize.SystemID != "" &&
			m != nil && m.Role == cluster.RolePrimary && m.State == cluster.StateRunning
	})
	if got := view.Initialize.SystemID; got != sysid {
		t.Fatalf("initialize key = %q, want the standalone's system identifier %s", got, sysid)
	}
	if view.Config == nil {
		t.Error("no dynamic configuration was written for the adopted cluster")
	}
	if running {
		if got := c.PostmasterPID("m1"); got != pid {
			t.Errorf("postmaster pid %d -> %d: the running standalone was restarted", pid, got)
		}
	}
	if _, err := os.Stat(filepath.Join(c.DataDir("m1"), "standby.signal")); err == nil {
		t.Error("standby.signal exists: the adopted primary was started as a standby")
	}

	if err := c.Start("m2"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, c, 120*time.Second, "m2 to clone m1 and stream", func(v *cluster.Cluster) bool {
		m := v.Member("m2")
		return v.LeaderName() == "m1" && m != nil && m.Role == cluster.RoleReplica &&
			m.State == cluster.StateRunning && m.ReplicationState == cluster.ReplicationStreaming
	})
	if err := execOn(t, c, "m1", "INSERT INTO precious VALUES ($1, 'after adoption')", rows+1); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"m1", "m2"} {
		eventually(t, 30*time.Second, "every row on "+name, func() error {
			if n := count(t, c, name, "precious"); n != rows+1 {
				return fmt.Errorf("%d rows, want %d", n, rows+1)
			}
			return nil
		})
	}
	if got := inodeOf(t, c.DataDir("m1")); got != inode {
		t.Errorf("data directory inode %d -> %d: it was re-created", inode, got)
	}
	conn, err := connect(t, c, "m1")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var repl bool
	if err := conn.QueryRow(ctx, "SELECT rolreplication FROM pg_roles WHERE rolname = 'replicator'").Scan(&repl); err != nil || !repl {
		t.Errorf("replication role: %v, %v", repl, err)
	}
	if !running {
		// The user's postgresql.conf was moved aside, not lost, and is
		// still in effect.
		base, err := os.ReadFile(filepath.Join(c.DataDir("m1"), "postgresql.base.conf"))
		if err != nil || !strings.Contains(string(base), userSetting) {
			t.Errorf("postgresql.base.conf lacks the user's setting %q: %v", userSetting, err)
		}
		if hba, err := os.ReadFile(filepath.Join(c.DataDir("m1"), "pg_hba.base.conf")); err != nil || !strings.Contains(string(hba), "trust") {
			t.Errorf("pg_hba.base.conf does not hold initdb's pg_hba.conf: %v", err)
		}
		var wm string
		if err := conn.QueryRow(ctx, "SHOW work_mem").Scan(&wm); err != nil || wm != "7MB" {
			t.Errorf("work_mem = %q, %v; want the user's 7MB", wm, err)
		}
	}
}

// userSetting is a line of the standalone's own postgresql.conf.
const userSetting = "work_mem = '7MB'"

// standalone is a PostgreSQL cluster created with initdb and run with
// pg_ctl as the unprivileged user, without Regent.
type standalone struct {
	bin, data, sock string
	port            int
	cred            *syscall.Credential
}

// newStandalone runs initdb (superuser password set, as the migration
// steps ask) and starts the server on 127.0.0.1:port.
func newStandalone(t *testing.T, data string, port int, password string) *standalone {
	t.Helper()
	bin, reason, err := postgres.FindBinDir()
	if err != nil {
		t.Fatalf("no PostgreSQL server: %s: %v", reason, err)
	}
	s := &standalone{bin: bin, data: data, port: port, sock: filepath.Join(filepath.Dir(data), "standalone")}
	var uid, gid = -1, -1
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			t.Fatal(err)
		}
		uid, _ = strconv.Atoi(u.Uid)
		gid, _ = strconv.Atoi(u.Gid)
		s.cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
	}
	// s.sock (owned by the PostgreSQL user) also holds the server log and
	// the password file.
	pwfile := filepath.Join(s.sock, "initdb.pw")
	for _, d := range []string{data, s.sock} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(pwfile, []byte(password+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if uid >= 0 {
		for _, p := range []string{data, s.sock, pwfile} {
			if err := os.Chown(p, uid, gid); err != nil {
				t.Fatal(err)
			}
		}
	}
	s.run(t, "initdb", "-D", data, "-U", "postgres", "--pwfile", pwfile, "--auth", "trust")
	f, err := os.OpenFile(filepath.Join(data, "postgresql.conf"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	_, err = fmt.Fprintf(f, "\n# The user's own settings.\nlisten_addresses = '127.0.0.1'\nport = %d\nunix_socket_directories = '%s'\n%s\n",
		port, s.sock, userSetting)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatal(err)
	}
	s.run(t, "pg_ctl", "-D", data, "-l", filepath.Join(s.sock, "standalone.log"), "-w", "-t", "120", "start")
	return s
}

func (s *standalone) command(name string, args ...string) *exec.Cmd {
	cmd := exec.Command(filepath.Join(s.bin, name), args...)
	cmd.Dir = "/"
	cmd.Env = []string{"PATH=/usr/bin:/bin", "LANG=C", "LC_ALL=C"}
	if s.cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: s.cred}
	}
	return cmd
}

func (s *standalone) run(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := s.command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

func (s *standalone) psql(t *testing.T, sql string) {
	t.Helper()
	s.run(t, "psql", "-X", "-v", "ON_ERROR_STOP=1", "-h", s.sock, "-p", strconv.Itoa(s.port), "-U", "postgres", "-d", "postgres", "-c", sql)
}

// stop shuts the standalone down cleanly, as a user stopping the service.
func (s *standalone) stop(t *testing.T) {
	t.Helper()
	s.run(t, "pg_ctl", "-D", s.data, "-w", "-t", "120", "-m", "fast", "stop")
}

func (s *standalone) systemID(t *testing.T) string {
	t.Helper()
	for _, l := range strings.Split(s.run(t, "pg_controldata", "-D", s.data), "\n") {
		if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "Database system identifier" {
			return strings.TrimSpace(v)
		}
	}
	t.Fatal("pg_controldata printed no system identifier")
	return ""
}

// inodeOf identifies a directory: a re-created one has another inode.
func inodeOf(t *testing.T, path string) uint64 {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return st.Sys().(*syscall.Stat_t).Ino
}
