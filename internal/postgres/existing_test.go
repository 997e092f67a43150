package postgres

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestRecoverySignalled: each file that makes PostgreSQL start in
// recovery is seen, and a data directory without one is not signalled.
func TestRecoverySignalled(t *testing.T) {
	t.Parallel()
	dir := testDir(t)
	data := filepath.Join(dir, "data")
	if err := os.Mkdir(data, 0o700); err != nil {
		t.Fatal(err)
	}
	i, err := New(testOptions(t, data, "x", 5999))
	if err != nil {
		t.Fatal(err)
	}
	if got, err := i.RecoverySignalled(); err != nil || got {
		t.Fatalf("no signal file: %v, %v", got, err)
	}
	for _, name := range []string{"standby.signal", "recovery.signal", "recovery.conf"} {
		p := filepath.Join(data, name)
		if err := os.WriteFile(p, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		if got, err := i.RecoverySignalled(); err != nil || !got {
			t.Errorf("%s: %v, %v", name, got, err)
		}
		if err := os.Remove(p); err != nil {
			t.Fatal(err)
		}
	}
}

// TestWriteConfigKeepsUserFiles: in an adopted data directory the user's
// postgresql.conf and pg_hba.conf are moved aside, never lost, the first
// time only; postgresql.conf stays in effect through the include.
func TestWriteConfigKeepsUserFiles(t *testing.T) {
	t.Parallel()
	dir := testDir(t)
	data := filepath.Join(dir, "data")
	if err := os.Mkdir(data, 0o700); err != nil {
		t.Fatal(err)
	}
	const userConf, userHBA = "work_mem = '7MB'\n", "host all all 127.0.0.1/32 trust\n"
	for name, body := range map[string]string{"postgresql.conf": userConf, "pg_hba.conf": userHBA} {
		if err := os.WriteFile(filepath.Join(data, name), []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	i, err := New(testOptions(t, data, "x", 5999))
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if _, err := i.writeConfig(); err != nil {
			t.Fatal(err)
		}
	}
	read := func(name string) string {
		b, err := os.ReadFile(filepath.Join(data, name))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	if got := read("postgresql.base.conf"); got != userConf {
		t.Errorf("postgresql.base.conf = %q, want the user's %q", got, userConf)
	}
	if got := read("pg_hba.base.conf"); got != userHBA {
		t.Errorf("pg_hba.base.conf = %q, want the user's %q", got, userHBA)
	}
	if conf := read("postgresql.conf"); !strings.Contains(conf, "include 'postgresql.base.conf'") {
		t.Errorf("postgresql.conf does not include the user's file:\n%s", conf)
	}
	if hba := read("pg_hba.conf"); !strings.HasPrefix(hba, managedHeader) {
		t.Errorf("pg_hba.conf is not Regent's:\n%s", hba)
	}
}
