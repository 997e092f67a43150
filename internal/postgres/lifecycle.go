package postgres

import (
	"context"
	"errors"
	"fmt"
	"github.com/regent-ha/regent/internal/procfs"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

// child is a postmaster this Instance started.
type child struct {
	pid      int
	done     chan struct{} // closed once Wait returned
	err      error         // Wait's result, valid after done
	stopping atomic.Bool   // Stop signalled it: its exit is expected
}

func (c *child) exited() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// StartOptions select how PostgreSQL starts.
type StartOptions struct {
	// Standby starts the server as a standby (standby.signal present).
	Standby bool
	// PrimaryConnInfo is the libpq connection string of the primary to
	// follow; empty for none. A password in it is moved to a passfile.
	PrimaryConnInfo string
	// SlotName is the replication slot to use on the primary; empty for
	// none.
	SlotName string
}

// StopMode is PostgreSQL's shutdown mode.
type StopMode int

// Shutdown modes.
const (
	// StopFast (SIGINT) disconnects clients, checkpoints and exits.
	StopFast StopMode = iota
	// StopImmediate (SIGQUIT) exits without a checkpoint; crash recovery
	// runs at the next start.
	StopImmediate
	// StopSmart (SIGTERM) waits for clients to disconnect.
	StopSmart
)

// String names the mode as pg_ctl does.
func (m StopMode) String() string {
	switch m {
	case StopFast:
		return "fast"
	case StopImmediate:
		return "immediate"
	case StopSmart:
		return "smart"
	}
	return fmt.Sprintf("StopMode(%d)", int(m))
}

func (m StopMode) signal() (syscall.Signal, error) {
	switch m {
	case StopFast:
		return syscall.SIGINT, nil
	case StopImmediate:
		return syscall.SIGQUIT, nil
	case StopSmart:
		return syscall.SIGTERM, nil
	}
	return 0, fmt.Errorf("unknown stop mode %d", int(m))
}

// InitDB creates a new cluster in the (missing or empty) data directory
// and writes Regent's configuration.
func (i *Instance) InitDB(ctx context.Context) error {
	st, err := i.DataDirState()
	if err != nil {
		return err
	}
	if st != DataDirEmpty {
		return fmt.Errorf("initdb: data directory %s is already initialized", i.dataDir)
	}
	if i.opts.Superuser.Password == "" {
		return errors.New("initdb: the superuser password is empty; scram-sha-256 authentication needs one")
	}
	if _, err := i.mkdirOwned(i.dataDir, 0o700); err != nil {
		return fmt.Errorf("initdb: %w", err)
	}
	if err := i.ensureRunDir(); err != nil {
		return fmt.Errorf("initdb: %w", err)
	}
	pwfile := filepath.Join(i.runDir, "initdb.pwfile")
	if _, err := i.writeFileAtomic(pwfile, []byte(i.opts.Superuser.Password+"\n")); err != nil {
		return fmt.Errorf("initdb: %w", err)
	}
	defer os.Remove(pwfile)

	args := []string{"-D", i.dataDir, "--data-checksums", "-U", i.opts.Superuser.Username,
		"--pwfile=" + pwfile, "--auth=scram-sha-256", "--encoding=UTF8"}
	i.log.Info("running initdb", "superuser", i.opts.Superuser.Username)
	start := time.Now()
	out, err := i.runTool(ctx, nil, "initdb", append(args, "--locale=C.UTF-8")...)
	if err != nil && ctx.Err() == nil && strings.Contains(strings.ToLower(out), "locale") {
		i.log.Warn("initdb with locale C.UTF-8 failed; retrying with --no-locale", "output", lastLines(out, 5))
		if rerr := removeContents(i.dataDir); rerr != nil {
			return fmt.Errorf("initdb: clean up after failed attempt: %w", rerr)
		}
		out, err = i.runTool(ctx, nil, "initdb", append(args, "--no-locale")...)
	}
	if err != nil {
		_ = removeContents(i.dataDir)
		return fmt.Errorf("initdb: %w\n%s", err, lastLines(out, 20))
	}
	i.log.Info("initdb done", "duration", time.Since(start))
	if _, err := i.writeConfig(); err != nil {
		return fmt.Errorf("initdb: write configuration: %w", err)
	}
	return nil
}

// Exited returns a channel that receives a value (buffered, never
// blocking the sender) whenever a postmaster this Instance started exits,
// whether it crashed or was stopped.
func (i *Instance) Exited() <-chan struct{} { return i.exited }

// Running reports whether a postmaster for the data directory is alive:
// either the one this Instance started or one found through
// postmaster.pid (left running by a previous agent), which is checked to
// be a live postgres process working in this data directory.
func (i *Instance) Running() (pid int, ok bool) {
	i.mu.Lock()
	c := i.child
	i.mu.Unlock()
	if c != nil && !c.exited() {
		return c.pid, true
	}
	pid, err := readPidFile(i.dataDir)
	if err != nil {
		return 0, false
	}
	if isPostmasterFor(pid, i.dataDir) {
		return pid, true
	}
	return 0, false
}

// Start rewrites the configuration, creates or removes standby.signal and
// starts the postmaster as a child process in its own process group, with
// its output appended to RunDir()/postgresql.log. It returns once the
// server accepts connections, or with an error (a *ToolError including the
// end of the server log, classified by ClassifyStart) if the postmaster
// exits first. If ctx ends first an error is
// returned and the postmaster is left starting; call Stop to get rid of it.
func (i *Instance) Start(ctx context.Context, so StartOptions) error {
	if pid, ok := i.Running(); ok {
		return fmt.Errorf("start: PostgreSQL is already running with pid %d", pid)
	}
	st, err := i.DataDirState()
	if err != nil {
		return fmt.Errorf("start: %w", err)
	}
	if st != DataDirInitialized {
		return fmt.Errorf("start: data directory %s is not initialized", i.dataDir)
	}
	if err := i.killOrphans(ctx); err != nil {
		return fmt.Errorf("start: %w", err)
	}
	if err := i.removeStaleLockFile(); err != nil {
		return err
	}
	i.mu.Lock()
	i.primConn, i.primSlot = so.PrimaryConnInfo, so.SlotName
	i.mu.Unlock()
	if _, err := i.writeConfig(); err != nil {
		return fmt.Errorf("start: %w", err)
	}
	if err := i.setStandbySignal(so.Standby); err != nil {
		return fmt.Errorf("start: %w", err)
	}
	logPath := i.LogFile()
	logf, err := os.OpenFile(logPath, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("start: open server log: %w", err)
	}
	if err := i.chown(logPath); err != nil {
		logf.Close()
		return fmt.Errorf("start: %w", err)
	}
	logStart, _ := logf.Seek(0, io.SeekEnd)

	cmd := exec.Command(i.bin("postgres"), "-D", i.dataDir)
	cmd.Dir = "/"
	cmd.Env = i.env()
	cmd.Stdout = logf
	cmd.Stderr = logf
	cmd.SysProcAttr = i.sysProcAttr()
	err = cmd.Start()
	logf.Close()
	if err != nil {
		return fmt.Errorf("start: run postgres: %w", err)
	}
	c := &child{pid: cmd.Process.Pid, done: make(chan struct{})}
	i.mu.Lock()
	i.child = c
	i.mu.Unlock()
	i.pool.reset()
	log := i.log.With("pid", c.pid)
	log.Info("started postmaster", "standby", so.Standby,
		"primary_conninfo", RedactConnString(so.PrimaryConnInfo), "slot", so.SlotName, "log", logPath)
	go func() {
		c.err = cmd.Wait()
		close(c.done)
		if c.stopping.Load() {
			log.Info("postmaster exited", "status", exitStatus(c.err))
		} else {
			log.Warn("postmaster exited unexpectedly", "status", exitStatus(c.err))
		}
		select {
		case i.exited <- struct{}{}:
		default:
		}
	}()

	if err := i.waitReady(ctx, c); err != nil {
		tail := readLogTail(logPath, logStart, 20)
		if c.exited() {
			err = fmt.Errorf("start: postmaster exited (%s) before accepting connections: %w\nlast lines of %s:\n%s",
				exitStatus(c.err), err, logPath, tail)
		} else {
			err = fmt.Errorf("start: %w\nlast lines of %s:\n%s", err, logPath, tail)
		}
		return &ToolError{Failure: ClassifyStart(err.Error()), Err: err}
	}
	log.Info("PostgreSQL accepts connections")
	return nil
}

// killOrphans kills processes left working in the data directory by a
// postmaster that is gone (backends of a crashed postmaster, reparented to
// init): while they live they keep the old shared memory attached and a
// new postmaster refuses to start. PostgreSQL puts every child in its own
// session, so they are found by their working directory, not by process
// group. Called only when no postmaster for the data directory runs.
func (i *Instance) killOrphans(ctx context.Context) error {
	orphans := postgresProcsIn(i.dataDir)
	if len(orphans) == 0 {
		return nil
	}
	i.log.Warn("killing leftover processes of a dead postmaster", "pids", orphans)
	for _, p := range orphans {
		_ = syscall.Kill(p, syscall.SIGKILL)
	}
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	bound := time.NewTimer(5 * time.Second)
	defer bound.Stop()
	for _, p := range orphans {
		for processAlive(p) {
			select {
			case <-ctx.Done():
				return fmt.Errorf("waiting for leftover process %d to exit: %w", p, ctx.Err())
			case <-bound.C:
				return fmt.Errorf("leftover process %d survives SIGKILL", p)
			case <-tick.C:
			}
		}
	}
	return nil
}

// waitReady polls a connection every 100 ms until the server accepts one,
// the postmaster exits or ctx ends.
func (i *Instance) waitReady(ctx context.Context, c *child) error {
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	var lastErr error
	for {
		actx, cancel := context.WithTimeout(ctx, time.Second)
		conn, err := i.connect(actx)
		cancel()
		if err == nil {
			i.pool.put(conn, i.pool.generation())
			return nil
		}
		lastErr = err
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && strings.HasPrefix(pgErr.Code, "28") {
			// The server is up but refuses Regent's credentials: waiting
			// will not help.
			return fmt.Errorf("server is up but Regent cannot log in as %q: %w", i.opts.Superuser.Username, err)
		}
		select {
		case <-c.done:
			return errors.New("postmaster exited")
		case <-ctx.Done():
			return fmt.Errorf("waiting for PostgreSQL to accept connections: %w (last error: %v)", ctx.Err(), lastErr)
		case <-tick.C:
		}
	}
}

// exitStatus describes a Wait result.
func exitStatus(err error) string {
	if err == nil {
		return "exit status 0"
	}
	return err.Error()
}

// readLogTail returns the last n lines written to path after offset.
func readLogTail(path string, offset int64, n int) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	if st, err := f.Stat(); err == nil && st.Size()-offset > 256<<10 {
		offset = st.Size() - 256<<10
	}
	if _, err := f.Seek(offset, io.SeekStart); err != nil {
		return ""
	}
	b, _ := io.ReadAll(f)
	return lastLines(string(b), n)
}

// lastLines returns the last n lines of s.
func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// Stop shuts PostgreSQL down in the given mode and returns once no
// postmaster for the data directory is alive. If the postmaster is still
// alive after escalateAfter (default: 1 s for StopImmediate, 60 s
// otherwise) or when ctx ends, the postmaster, its process group, its
// children and any other postgres process working in the data directory
// are killed with SIGKILL. Stop works for an adopted postmaster too.
func (i *Instance) Stop(ctx context.Context, mode StopMode, escalateAfter time.Duration) error {
	sig, err := mode.signal()
	if err != nil {
		return err
	}
	pid, ok := i.Running()
	if !ok {
		return nil
	}
	i.pool.reset()
	if escalateAfter <= 0 {
		escalateAfter = 60 * time.Second
		if mode == StopImmediate {
			escalateAfter = time.Second
		}
	}
	var done <-chan struct{}
	i.mu.Lock()
	if i.child != nil && i.child.pid == pid {
		done = i.child.done
		i.child.stopping.Store(true)
	}
	i.mu.Unlock()
	log := i.log.With("pid", pid, "mode", mode.String())
	log.Info("stopping PostgreSQL")
	if err := syscall.Kill(pid, sig); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("stop: signal postmaster %d: %w", pid, err)
	}
	esc := time.NewTimer(escalateAfter)
	defer esc.Stop()
	if waitGone(pid, done, esc.C, ctx.Done()) {
		log.Info("PostgreSQL stopped")
		return nil
	}
	log.Warn("PostgreSQL did not stop in time; killing it", "after", escalateAfter, "ctx_err", ctx.Err())
	// PostgreSQL children run in their own sessions: find them by parent
	// (and by working directory) before the postmaster dies and they are
	// reparented.
	kids := childrenOf(pid)
	for _, p := range postgresProcsIn(i.dataDir) {
		if p != pid && !slices.Contains(kids, p) {
			kids = append(kids, p)
		}
	}
	if st, err := procfs.ReadStat(pid); err == nil && st.PGRP == pid {
		_ = syscall.Kill(-pid, syscall.SIGKILL)
	}
	_ = syscall.Kill(pid, syscall.SIGKILL)
	for _, k := range kids {
		_ = syscall.Kill(k, syscall.SIGKILL)
	}
	deadline := time.Now().Add(10 * time.Second)
	if !waitGone(pid, done, time.After(time.Until(deadline)), nil) {
		return fmt.Errorf("stop: postmaster %d survived SIGKILL", pid)
	}
	// Wait (within the same bound) for the killed backends too, so that a
	// restart does not find the old shared memory still attached.
	for _, k := range kids {
		waitGone(k, nil, time.After(time.Until(deadline)), nil)
	}
	log.Warn("PostgreSQL killed")
	return nil
}

// waitGone waits until pid is gone: done is closed (the postmaster is our
// child and was reaped) or, for other processes, polling every 20 ms finds
// it dead. It returns false if timeout or cancel fires first.
func waitGone(pid int, done <-chan struct{}, timeout <-chan time.Time, cancel <-chan struct{}) bool {
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		if done == nil && !processAlive(pid) {
			return true
		}
		select {
		case <-done:
			return true
		case <-timeout:
			return false
		case <-cancel:
			return false
		case <-tick.C:
		}
	}
}
