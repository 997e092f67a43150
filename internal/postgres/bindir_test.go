package postgres

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fakeBinDir creates dir holding the given programs as executable files.
func fakeBinDir(t *testing.T, dir string, programs ...string) string {
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

// fakePgConfig writes a pg_config that prints bindir and returns its path.
func fakePgConfig(t *testing.T, bindir string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "pg_config")
	script := "#!/bin/sh\n[ \"$1\" = --bindir ] || exit 2\necho '" + bindir + "'\n"
	if err := os.WriteFile(p, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestFindBinDirNewestComplete(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	fakeBinDir(t, filepath.Join(root, "9.6", "bin"), requiredBinaries...)
	fakeBinDir(t, filepath.Join(root, "13", "bin"), requiredBinaries...)
	want := fakeBinDir(t, filepath.Join(root, "15", "bin"), requiredBinaries...)
	// A newer major version with only the client programs (no server
	// package) is not a server directory.
	fakeBinDir(t, filepath.Join(root, "16", "bin"), "pg_basebackup", "pg_rewind")
	// Not a version directory: ignored, as by scripts/lib.sh.
	fakeBinDir(t, filepath.Join(root, "devel", "bin"), requiredBinaries...)
	got, reason, err := binDirSearch{glob: filepath.Join(root, "*", "bin")}.find()
	if err != nil {
		t.Fatal(err)
	}
	if got != want {
		t.Errorf("found %s, want %s", got, want)
	}
	if !strings.Contains(reason, "newest") {
		t.Errorf("reason %q does not say it is the newest", reason)
	}
}

func TestFindBinDirPgConfig(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	want := fakeBinDir(t, filepath.Join(root, "local", "pgsql", "bin"), requiredBinaries...)
	got, reason, err := binDirSearch{glob: filepath.Join(root, "none", "*", "bin"), pgConfig: fakePgConfig(t, want)}.find()
	if err != nil {
		t.Fatal(err)
	}
	if got != want || reason != "pg_config --bindir" {
		t.Errorf("found %s (%s), want %s (pg_config --bindir)", got, reason, want)
	}
}

func TestFindBinDirNothingSaysWhatToInstall(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	client := fakeBinDir(t, filepath.Join(root, "lib", "15", "bin"), "pg_basebackup")
	pgc := fakeBinDir(t, filepath.Join(root, "other", "bin"), "postgres")
	_, _, err := binDirSearch{glob: filepath.Join(root, "lib", "*", "bin"), pgConfig: fakePgConfig(t, pgc)}.find()
	if err == nil {
		t.Fatal("found a binary directory in a tree without a server")
	}
	for _, want := range []string{"apt-get install -y postgresql`", "postgresql.bin_dir", client + " lacks postgres", pgc + " (pg_config --bindir) lacks initdb"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
}

func TestResolveBinDirExplicitWins(t *testing.T) {
	t.Parallel()
	dir := fakeBinDir(t, t.TempDir(), requiredBinaries...)
	got, reason, err := ResolveBinDir(dir)
	if err != nil || got != dir || !strings.Contains(reason, "postgresql.bin_dir") {
		t.Errorf("ResolveBinDir(%s) = %q, %q, %v", dir, got, reason, err)
	}
	// An explicit directory that lacks a program is an error, never
	// silently replaced by an installed one.
	bad := fakeBinDir(t, t.TempDir(), "postgres")
	if got, _, err := ResolveBinDir(bad); err == nil {
		t.Errorf("ResolveBinDir(%s) = %s, want an error", bad, got)
	}
}

func TestParseVersion(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name string
		ok   bool
	}{{"9.6", true}, {"15", true}, {"devel", false}, {"15beta1", false}, {"", false}, {"1..2", false}} {
		if _, ok := parseVersion(c.name); ok != c.ok {
			t.Errorf("parseVersion(%q) ok = %v, want %v", c.name, ok, c.ok)
		}
	}
}
