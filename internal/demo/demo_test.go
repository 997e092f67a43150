package demo

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/regent-ha/regent/internal/localcluster"
)

// pgpassLookup finds the password for a connection in a pgpass file the
// way libpq does: the first line whose host, port, database and user
// fields match (each either equal or "*"), with "\" escaping ":" and "\".
func pgpassLookup(t *testing.T, content, host, port, db, user string) (string, bool) {
	t.Helper()
	for _, line := range strings.Split(content, "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		var fields []string
		var cur strings.Builder
		for i := 0; i < len(line); i++ {
			switch {
			case line[i] == '\\' && i+1 < len(line):
				i++
				cur.WriteByte(line[i])
			case line[i] == ':' && len(fields) < 4:
				fields = append(fields, cur.String())
				cur.Reset()
			default:
				cur.WriteByte(line[i])
			}
		}
		fields = append(fields, cur.String())
		if len(fields) != 5 {
			t.Fatalf("pgpass line %q has %d fields", line, len(fields))
		}
		match := true
		for i, want := range []string{host, port, db, user} {
			if fields[i] != "*" && fields[i] != want {
				match = false
			}
		}
		if match {
			return fields[4], true
		}
	}
	return "", false
}

func newCluster(t *testing.T) *localcluster.Cluster {
	t.Helper()
	spec := localcluster.Spec{Dir: t.TempDir(), Binary: "/bin/true", Scope: "demo", Etcd: []string{"http://127.0.0.1:23790"}}
	for i, name := range []string{"n1", "n2", "n3"} {
		spec.Members = append(spec.Members, localcluster.MemberSpec{Name: name, PGPort: 23801 + i, APIPort: 23811 + i})
	}
	c, err := localcluster.New(spec)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestEnvPGPassAnyHostPort: after sourcing demo.env, libpq finds the
// superuser's password for a member's own port and for any other host and
// port, such as HAProxy's in front of the cluster.
func TestEnvPGPassAnyHostPort(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	if err := writeEnv(c); err != nil {
		t.Fatal(err)
	}
	env := filepath.Join(c.Spec.Dir, "demo.env")
	out, err := exec.Command("sh", "-c", `. "$1" && printf %s "$PGPASSFILE"`, "sh", env).Output()
	if err != nil {
		t.Fatalf("sourcing %s: %v", env, err)
	}
	passfile := string(out)
	if passfile == "" {
		t.Fatal("demo.env does not export PGPASSFILE")
	}
	st, err := os.Stat(passfile)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("%s has mode %v; libpq ignores a pgpass file readable by others", passfile, st.Mode().Perm())
	}
	b, err := os.ReadFile(passfile)
	if err != nil {
		t.Fatal(err)
	}
	for _, target := range []struct{ host, port, user, secret string }{
		{"127.0.0.1", "23801", "postgres", "superuser"}, // a member
		{"127.0.0.1", "5000", "postgres", "superuser"},  // HAProxy's write port
		{"localhost", "5001", "postgres", "superuser"},  // HAProxy's read port, by name
		{"127.0.0.1", "5000", "replicator", "replication"},
	} {
		got, ok := pgpassLookup(t, string(b), target.host, target.port, "postgres", target.user)
		if want := c.Password(target.secret); !ok || got != want {
			t.Errorf("password for %s@%s:%s = %q (found %v), want the %s secret", target.user, target.host, target.port, got, ok, target.secret)
		}
	}
}

// TestPGPassEscapesAndNarrowsMode: special characters survive and an
// existing file readable by others becomes 0600.
func TestPGPassEscapesAndNarrowsMode(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "pgpass")
	if err := os.WriteFile(path, []byte("old\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	const pw = `a:b\c`
	if err := writePGPass(path, map[string]string{"postgres": pw}); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600", st.Mode().Perm())
	}
	b, _ := os.ReadFile(path)
	if got, ok := pgpassLookup(t, string(b), "h", "1", "d", "postgres"); !ok || got != pw {
		t.Errorf("password %q (found %v), want %q; file:\n%s", got, ok, pw, b)
	}
}
