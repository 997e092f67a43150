package postgres

import (
	"context"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/regent-ha/regent/internal/testport"
)

const (
	testSuperPassword = `su'per "secret" \pw`
	testReplUser      = "replicator"
	testReplPassword  = `rep:pass\word 'x'`
)

// pgBinDir returns the PostgreSQL server binaries ($REGENT_PG_BIN_DIR, or
// the installed ones FindBinDir finds), or skips the test.
func pgBinDir(t *testing.T) string {
	t.Helper()
	dir, _, err := ResolveBinDir(os.Getenv("REGENT_PG_BIN_DIR"))
	if err != nil {
		t.Skipf("PostgreSQL binaries not available: %v", err)
	}
	return dir
}

// freePort returns a TCP port on 127.0.0.1 reserved for this test
// binary (package testport).
func freePort(t *testing.T) int {
	t.Helper()
	p, err := testport.Get()
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// testDir returns a temporary directory the run user can traverse (Go
// creates them 0700, owned by root in CI).
func testDir(t *testing.T) string {
	t.Helper()
	d := t.TempDir()
	for _, p := range []string{d, filepath.Dir(d)} {
		if err := os.Chmod(p, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return d
}

// testInstance is an Instance plus the process groups of the postmasters
// it started, killed at cleanup so that no test leaves processes behind.
type testInstance struct {
	*Instance
	mu    sync.Mutex
	pgids []int
}

func newTestInstance(t *testing.T, dataDir, name string, port int) *testInstance {
	t.Helper()
	i, err := New(testOptions(t, dataDir, name, port))
	if err != nil {
		t.Fatal(err)
	}
	ti := &testInstance{Instance: i}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := i.Stop(ctx, StopImmediate, 500*time.Millisecond); err != nil {
			t.Errorf("cleanup stop: %v", err)
		}
		i.Close()
		ti.mu.Lock()
		defer ti.mu.Unlock()
		for _, g := range ti.pgids {
			_ = syscall.Kill(-g, syscall.SIGKILL)
		}
	})
	return ti
}

func testOptions(t *testing.T, dataDir, name string, port int) Options {
	return Options{
		BinDir:      pgBinDir(t),
		DataDir:     dataDir,
		Listen:      net.JoinHostPort("127.0.0.1", strconv.Itoa(port)),
		Superuser:   Credentials{Username: "postgres", Password: testSuperPassword},
		Replication: Credentials{Username: testReplUser, Password: testReplPassword},
		Parameters: map[string]string{
			"fsync":           "off",
			"shared_buffers":  "16MB",
			"max_connections": "20",
			"port":            "1", // protected: must be ignored
		},
		PgHBA: []string{
			"local all all scram-sha-256",
			"host all all 127.0.0.1/32 scram-sha-256",
			"host replication all 127.0.0.1/32 scram-sha-256",
		},
		Logger:          slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug})).With("member", name),
		ApplicationName: name,
	}
}

// testWriter sends log output to t.Log.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// start starts the instance and remembers its process group.
func (ti *testInstance) start(t *testing.T, so StartOptions) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := ti.Start(ctx, so); err != nil {
		t.Fatalf("start: %v", err)
	}
	pid, ok := ti.Running()
	if !ok {
		t.Fatal("not running after Start")
	}
	ti.mu.Lock()
	ti.pgids = append(ti.pgids, pid)
	ti.mu.Unlock()
}

// exec runs a statement on the instance as the superuser.
func (ti *testInstance) exec(t *testing.T, sql string, args ...any) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := ti.pool.with(ctx, func(c *pgx.Conn) error {
		_, err := c.Exec(ctx, sql, args...)
		return err
	})
	if err != nil {
		t.Fatalf("exec %q: %v", sql, err)
	}
}

// queryString returns the first column of the first row as text.
func (ti *testInstance) queryString(t *testing.T, sql string, args ...any) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var s string
	err := ti.pool.with(ctx, func(c *pgx.Conn) error {
		return c.QueryRow(ctx, sql, args...).Scan(&s)
	})
	if err != nil {
		t.Fatalf("query %q: %v", sql, err)
	}
	return s
}

func (ti *testInstance) state(t *testing.T) State {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := ti.Query(ctx)
	if err != nil {
		t.Fatalf("query state: %v", err)
	}
	return s
}

// waitFor polls cond every 50 ms until it holds or timeout passes; the
// last description is reported on failure.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	last := ""
	for {
		ok, desc := cond()
		if ok {
			return
		}
		last = desc
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s; last: %s", timeout, what, last)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
