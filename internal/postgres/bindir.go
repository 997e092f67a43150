package postgres

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// InstallCommand installs the distribution's default PostgreSQL server on
// Debian: the postgresql metapackage depends on postgresql-<major> for the
// release's default major version, so Regent names no version itself.
const InstallCommand = "apt-get install -y postgresql"

// debianBinGlob is where Debian's postgresql-<major> packages put the
// server programs, one directory per major version.
const debianBinGlob = "/usr/lib/postgresql/*/bin"

// requiredBinaries are the programs Regent runs from the binary directory.
var requiredBinaries = []string{"postgres", "initdb", "pg_ctl", "pg_basebackup", "pg_rewind", "pg_controldata"}

// CheckBinaries reports, with the command that fixes it, when a program
// Regent needs is missing from binDir.
func CheckBinaries(binDir string) error {
	if b := missingBinary(binDir); b != "" {
		return fmt.Errorf("PostgreSQL server binaries not found in %s (missing %s): install them with `%s` (Debian) or set postgresql.bin_dir to the directory that holds them", binDir, b, InstallCommand)
	}
	return nil
}

// missingBinary returns the first required program that is not an
// executable file in dir, or "" when none is missing.
func missingBinary(dir string) string {
	for _, b := range requiredBinaries {
		st, err := os.Stat(filepath.Join(dir, b))
		if err != nil || st.IsDir() || st.Mode()&0o111 == 0 {
			return b
		}
	}
	return ""
}

// ResolveBinDir returns the binary directory to use: explicit when it is
// not empty (it must hold every required program; it is never replaced by
// another one), else the one FindBinDir finds. The reason says which.
func ResolveBinDir(explicit string) (dir, reason string, err error) {
	if explicit != "" {
		if err := CheckBinaries(explicit); err != nil {
			return "", "", err
		}
		return explicit, "postgresql.bin_dir is set", nil
	}
	return FindBinDir()
}

// FindBinDir finds the installed PostgreSQL server binaries: the newest
// major version under /usr/lib/postgresql/<major>/bin (Debian's layout;
// <major> a version number such as 15 or 9.6)
// that holds every program Regent needs, else the directory that
// `pg_config --bindir` names when pg_config is on PATH and that directory
// holds them. The reason says where the directory came from. The error
// says where it looked and what to install.
func FindBinDir() (dir, reason string, err error) {
	return binDirSearch{glob: debianBinGlob, pgConfig: "pg_config"}.find()
}

// binDirSearch is FindBinDir with its two sources as fields, so that tests
// can point it at a fake tree.
type binDirSearch struct {
	glob     string // directories of one major version each, ".../*/bin"
	pgConfig string // pg_config program; "" = do not ask
}

func (s binDirSearch) find() (string, string, error) {
	var notes []string
	matches, _ := filepath.Glob(s.glob)
	// Only version directories ("9.6", "15"), newest first, compared as
	// numbers.
	type versionDir struct {
		dir     string
		version []int
	}
	var dirs []versionDir
	for _, d := range matches {
		if v, ok := parseVersion(filepath.Base(filepath.Dir(d))); ok {
			dirs = append(dirs, versionDir{d, v})
		}
	}
	slices.SortStableFunc(dirs, func(a, b versionDir) int { return slices.Compare(b.version, a.version) })
	for _, vd := range dirs {
		d := vd.dir
		if b := missingBinary(d); b != "" {
			notes = append(notes, fmt.Sprintf("%s lacks %s", d, b))
			continue
		}
		return d, "newest PostgreSQL server under " + filepath.Dir(filepath.Dir(s.glob)), nil
	}
	if s.pgConfig != "" {
		if d, err := pgConfigBinDir(s.pgConfig); err != nil {
			notes = append(notes, err.Error())
		} else if b := missingBinary(d); b != "" {
			notes = append(notes, fmt.Sprintf("%s (pg_config --bindir) lacks %s", d, b))
		} else {
			return d, "pg_config --bindir", nil
		}
	}
	msg := fmt.Sprintf("PostgreSQL server binaries not found (looked in %s and pg_config --bindir", s.glob)
	if len(notes) > 0 {
		msg += ": " + strings.Join(notes, "; ")
	}
	return "", "", fmt.Errorf("%s): install them with `%s` (Debian) or set postgresql.bin_dir to the directory that holds them", msg, InstallCommand)
}

// pgConfigBinDir runs `pg_config --bindir`.
func pgConfigBinDir(prog string) (string, error) {
	path, err := exec.LookPath(prog)
	if err != nil {
		return "", errors.New("no pg_config on PATH")
	}
	out, err := exec.Command(path, "--bindir").Output()
	if err != nil {
		return "", fmt.Errorf("%s --bindir: %v", path, err)
	}
	d := strings.TrimSpace(string(out))
	if d == "" || !filepath.IsAbs(d) {
		return "", fmt.Errorf("%s --bindir printed %q", path, d)
	}
	return d, nil
}

// parseVersion parses a dotted version name such as "9.6" or "15".
func parseVersion(s string) ([]int, bool) {
	var v []int
	for _, f := range strings.Split(s, ".") {
		n, err := strconv.Atoi(f)
		if err != nil || n < 0 {
			return nil, false
		}
		v = append(v, n)
	}
	return v, true
}
