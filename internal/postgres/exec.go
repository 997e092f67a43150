package postgres

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// runUser is the OS identity PostgreSQL binaries run as.
type runUser struct {
	name string
	uid  int
	gid  int
	home string
	// cred is set only when Regent runs as root; nil means "run as
	// ourselves".
	cred *syscall.Credential
}

// resolveRunUser returns the identity to run PostgreSQL as: the named user
// when the process is root, the current user otherwise.
func resolveRunUser(name string) (runUser, error) {
	if os.Geteuid() != 0 {
		ru := runUser{uid: os.Geteuid(), gid: os.Getegid(), home: os.Getenv("HOME")}
		if u, err := user.Current(); err == nil {
			ru.name = u.Username
			if ru.home == "" {
				ru.home = u.HomeDir
			}
		}
		return ru, nil
	}
	u, err := user.Lookup(name)
	if err != nil {
		return runUser{}, fmt.Errorf("postgres: running as root, PostgreSQL must run as an unprivileged user, but user %q was not found (create it or set postgresql.run_as_user): %w", name, err)
	}
	uid, err := strconv.Atoi(u.Uid)
	if err != nil {
		return runUser{}, fmt.Errorf("postgres: user %q: uid %q: %w", name, u.Uid, err)
	}
	gid, err := strconv.Atoi(u.Gid)
	if err != nil {
		return runUser{}, fmt.Errorf("postgres: user %q: gid %q: %w", name, u.Gid, err)
	}
	if uid == 0 {
		return runUser{}, fmt.Errorf("postgres: run_as_user %q is root; PostgreSQL refuses to run as root", name)
	}
	var groups []uint32
	if ids, err := u.GroupIds(); err == nil {
		for _, g := range ids {
			if n, err := strconv.ParseUint(g, 10, 32); err == nil {
				groups = append(groups, uint32(n))
			}
		}
	}
	home := u.HomeDir
	if home == "" {
		home = "/"
	}
	return runUser{
		name: name, uid: uid, gid: gid, home: home,
		cred: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), Groups: groups},
	}, nil
}

// env is the environment of PostgreSQL child processes: ours without any
// PG*, LC_* or LANG variables (they would redirect the tools), plus HOME,
// USER and the C locale so that tool output is parseable. extra entries
// (KEY=VALUE) are appended.
func (i *Instance) env(extra ...string) []string {
	var out []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "PG") || strings.HasPrefix(k, "LC_") || k == "LANG" || k == "LANGUAGE" ||
			k == "HOME" || k == "USER" || k == "LOGNAME" {
			continue
		}
		out = append(out, kv)
	}
	out = append(out, "HOME="+i.run.home, "LANG=C", "LC_ALL=C")
	if i.run.name != "" {
		out = append(out, "USER="+i.run.name, "LOGNAME="+i.run.name)
	}
	return append(out, extra...)
}

// bin returns the path of a PostgreSQL binary.
func (i *Instance) bin(name string) string { return filepath.Join(i.opts.BinDir, name) }

// sysProcAttr puts the child in its own process group and, when root,
// switches to the run user.
func (i *Instance) sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Credential: i.run.cred}
}

// maxToolOutput bounds the output kept from a tool.
const maxToolOutput = 64 << 10

// tailBuffer keeps the last maxToolOutput bytes written to it.
type tailBuffer struct{ b []byte }

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.b = append(t.b, p...)
	if len(t.b) > maxToolOutput {
		t.b = append([]byte(nil), t.b[len(t.b)-maxToolOutput:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string { return string(bytes.TrimSpace(t.b)) }

// runTool runs a PostgreSQL tool as the run user, bounded by ctx (the
// tool's whole process group is killed when ctx ends), and returns its
// combined output.
func (i *Instance) runTool(ctx context.Context, extraEnv []string, name string, args ...string) (string, error) {
	return i.runToolTee(ctx, extraEnv, nil, name, args...)
}

// runToolTee is runTool that also copies the output to tee as it comes.
func (i *Instance) runToolTee(ctx context.Context, extraEnv []string, tee io.Writer, name string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, i.bin(name), args...)
	cmd.Dir = "/"
	cmd.Env = i.env(extraEnv...)
	cmd.SysProcAttr = i.sysProcAttr()
	var out tailBuffer
	var w io.Writer = &out
	if tee != nil {
		w = io.MultiWriter(&out, tee)
	}
	cmd.Stdout = w
	cmd.Stderr = w
	cmd.Cancel = func() error {
		if cmd.Process == nil {
			return nil
		}
		return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
	cmd.WaitDelay = 5 * time.Second
	start := time.Now()
	i.log.Debug("running tool", "tool", name, "args", strings.Join(args, " "))
	err := cmd.Run()
	i.log.Debug("tool finished", "tool", name, "duration", time.Since(start), "error", err)
	if err != nil {
		if ctx.Err() != nil {
			return out.String(), fmt.Errorf("%s: %w (%v)", name, ctx.Err(), err)
		}
		return out.String(), fmt.Errorf("%s: %w", name, err)
	}
	return out.String(), nil
}

// chown gives path to the run user; a no-op when not root.
func (i *Instance) chown(path string) error {
	if i.run.cred == nil {
		return nil
	}
	if err := os.Lchown(path, i.run.uid, i.run.gid); err != nil {
		return fmt.Errorf("chown %s to %s: %w", path, i.run.name, err)
	}
	return nil
}

// mkdirOwned creates dir with perm, creating missing parents (0755), and
// chowns every directory it created to the run user. Existing directories
// are left alone. It reports whether dir itself was created.
func (i *Instance) mkdirOwned(dir string, perm fs.FileMode) (bool, error) {
	dir = filepath.Clean(dir)
	st, err := os.Stat(dir)
	if err == nil {
		if !st.IsDir() {
			return false, fmt.Errorf("%s exists and is not a directory", dir)
		}
		return false, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return false, fmt.Errorf("stat %s: %w", dir, err)
	}
	if parent := filepath.Dir(dir); parent != dir {
		if _, err := i.mkdirOwned(parent, 0o755); err != nil {
			return false, err
		}
	}
	if err := os.Mkdir(dir, perm); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return false, nil
		}
		return false, fmt.Errorf("create %s: %w", dir, err)
	}
	if err := os.Chmod(dir, perm); err != nil { // umask
		return true, fmt.Errorf("chmod %s: %w", dir, err)
	}
	if err := i.chown(dir); err != nil {
		return true, err
	}
	i.log.Debug("created directory", "dir", dir)
	return true, nil
}

// ensureRunDir creates DataDir.run (0700, run user), or fixes its owner and
// mode when it exists: it is Regent's own directory.
func (i *Instance) ensureRunDir() error {
	if _, err := i.mkdirOwned(i.runDir, 0o700); err != nil {
		return fmt.Errorf("run directory: %w", err)
	}
	if err := os.Chmod(i.runDir, 0o700); err != nil {
		return fmt.Errorf("run directory: %w", err)
	}
	return i.chown(i.runDir)
}

// writeFileAtomic writes data to path through a temporary file in the same
// directory and a rename, with mode 0600 and owned by the run user. It
// reports whether the content changed (false when path already held data).
func (i *Instance) writeFileAtomic(path string, data []byte) (bool, error) {
	if old, err := os.ReadFile(path); err == nil && bytes.Equal(old, data) {
		return false, nil
	}
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return false, fmt.Errorf("write %s: %w", path, err)
	}
	tmp := f.Name()
	defer os.Remove(tmp) // no-op after a successful rename
	if _, err := f.Write(data); err != nil {
		f.Close()
		return false, fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return false, fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return false, fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return false, fmt.Errorf("write %s: %w", path, err)
	}
	if err := i.chown(tmp); err != nil {
		return false, err
	}
	if err := os.Rename(tmp, path); err != nil {
		return false, fmt.Errorf("write %s: %w", path, err)
	}
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return true, nil
}

// withPassfile writes a private pgpass file for password (in the run
// directory, 0600, run user) and calls fn with the environment entry
// pointing libpq at it; the file is removed afterwards. With an empty
// password fn gets no extra environment.
func (i *Instance) withPassfile(password string, fn func(env []string) error) error {
	if password == "" {
		return fn(nil)
	}
	if err := i.ensureRunDir(); err != nil {
		return err
	}
	f, err := os.CreateTemp(i.runDir, "pgpass-*")
	if err != nil {
		return fmt.Errorf("create passfile: %w", err)
	}
	path := f.Name()
	defer os.Remove(path)
	_, werr := f.WriteString(pgpassLine(password))
	cerr := f.Close()
	if err := errors.Join(werr, cerr); err != nil {
		return fmt.Errorf("write passfile: %w", err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		return fmt.Errorf("chmod passfile: %w", err)
	}
	if err := i.chown(path); err != nil {
		return err
	}
	return fn([]string{"PGPASSFILE=" + path})
}

// pgpassLine is a pgpass entry matching any host, port, database and user.
// Each passfile Regent writes serves a single connection, so the
// wildcards cannot pick the wrong password.
func pgpassLine(password string) string {
	r := strings.NewReplacer(`\`, `\\`, `:`, `\:`)
	return "*:*:*:*:" + r.Replace(password) + "\n"
}
