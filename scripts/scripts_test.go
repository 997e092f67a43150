// Package scripts holds the shell scripts of README's first screen
// (./scripts/demo, ./scripts/test); its tests check their shared functions.
package scripts

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

var required = []string{"postgres", "initdb", "pg_ctl", "pg_basebackup", "pg_rewind", "pg_controldata"}

func fakeDir(t *testing.T, dir string, programs ...string) string {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, p := range programs {
		if err := os.WriteFile(filepath.Join(dir, p), []byte("#!/bin/sh\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// serverDir runs lib.sh's pg_server_dir with pg_lib and a PATH whose first
// directory is bin (a fake pg_config, or none).
func serverDir(t *testing.T, pgLib, bin string) (string, error) {
	t.Helper()
	cmd := exec.Command("bash", "-c", `set -euo pipefail; . ./lib.sh; pg_lib=$1; pg_server_dir`, "bash", pgLib)
	cmd.Env = append(os.Environ(), "PATH="+bin+":/usr/bin:/bin")
	out, err := cmd.Output()
	return strings.TrimSpace(string(out)), err
}

// TestServerDir: the scripts decide whether a server is installed by the
// rule regent's own discovery uses (internal/postgres FindBinDir): the
// newest version directory holding every program, else pg_config's.
func TestServerDir(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	// A pg_config that fails hides the machine's own /usr/bin/pg_config.
	noPgConfig := fakeDir(t, filepath.Join(root, "nobin"))
	if err := os.WriteFile(filepath.Join(noPgConfig, "pg_config"), []byte("#!/bin/sh\nexit 1\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	fakeDir(t, filepath.Join(root, "lib", "9.6", "bin"), required...)
	want := fakeDir(t, filepath.Join(root, "lib", "15", "bin"), required...)
	fakeDir(t, filepath.Join(root, "lib", "16", "bin"), "pg_basebackup")
	fakeDir(t, filepath.Join(root, "lib", "devel", "bin"), required...)
	if got, err := serverDir(t, filepath.Join(root, "lib"), noPgConfig); err != nil || got != want {
		t.Errorf("pg_server_dir = %q, %v; want %s", got, err, want)
	}

	// No complete version directory: pg_config --bindir, when complete.
	other := fakeDir(t, filepath.Join(root, "other", "bin"), required...)
	pgc := fakeDir(t, filepath.Join(root, "pgc"))
	if err := os.WriteFile(filepath.Join(pgc, "pg_config"), []byte("#!/bin/sh\necho "+other+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	empty := fakeDir(t, filepath.Join(root, "empty"))
	if got, err := serverDir(t, empty, pgc); err != nil || got != other {
		t.Errorf("pg_server_dir with pg_config = %q, %v; want %s", got, err, other)
	}
	// Nothing: it fails, so the scripts install the server.
	if got, err := serverDir(t, empty, noPgConfig); err == nil {
		t.Errorf("pg_server_dir found %q in an empty tree", got)
	}
}

// TestCIRunsTestScript: CI runs exactly the README's test command.
func TestCIRunsTestScript(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile("../.ci/run")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `exec "$(dirname "$0")/../scripts/test"`) {
		t.Errorf(".ci/run does not run scripts/test:\n%s", b)
	}
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(readme), "./scripts/test\n") || !strings.Contains(string(readme), "./scripts/demo\n") {
		t.Error("README does not show ./scripts/demo and ./scripts/test")
	}
}
