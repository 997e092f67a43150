// Package callback runs the user's scripts on PostgreSQL lifecycle events,
// with Patroni's calling convention and concurrency rules.
//
// The event callbacks (on_start, on_stop, on_restart, on_role_change and
// on_reload) run in the background as `<command> <action> <role> <scope>`:
// Notify never blocks its caller (the HA loop). As in Patroni, at most one
// of on_start, on_stop, on_restart and on_role_change runs at a time: a
// newer event kills the process group of the one still running and runs
// after it has exited; on_reload has its own lane with the same rule. Every
// run is bounded by a timeout (its process group is killed then), and its
// exit status and output are logged.
//
// The hooks (pre_promote, before_stop) run synchronously through Run, with
// no arguments, bounded by the caller's timeout.
package callback

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Event is a callback's action name, as passed to the script.
type Event string

// The events of Patroni's postgresql.callbacks section.
const (
	OnStart      Event = "on_start"
	OnStop       Event = "on_stop"
	OnRestart    Event = "on_restart"
	OnReload     Event = "on_reload"
	OnRoleChange Event = "on_role_change"
)

// maxOutput is how much of a script's output is kept for the log.
const maxOutput = 4096

// waitDelay bounds the wait for a script's output after it exited (a child
// it left behind may hold the pipe) or was killed.
const waitDelay = 2 * time.Second

// Options configure a Runner.
type Options struct {
	// Commands maps events to command lines, split on white space with
	// shell-like quotes (Patroni's shlex.split). Missing events run nothing.
	Commands map[Event]string
	// Scope is the cluster name, the script's third argument.
	Scope string
	// Timeout bounds one event callback; 0 means a minute.
	Timeout time.Duration
	// Logger receives one record per run.
	Logger *slog.Logger
}

// Runner runs the event callbacks of one member. Its zero value is not
// usable; create it with New and stop it with Close.
type Runner struct {
	mu     sync.Mutex // guards opts.Commands and opts.Timeout (Update)
	opts   Options
	log    *slog.Logger
	main   *lane // on_start, on_stop, on_restart, on_role_change
	reload *lane // on_reload
}

// New returns a Runner; it starts no process until Notify.
func New(opts Options) *Runner {
	if opts.Timeout <= 0 {
		opts.Timeout = time.Minute
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	r := &Runner{opts: opts, log: log}
	r.main = newLane(r)
	r.reload = newLane(r)
	return r
}

// Configured reports whether a command is set for ev.
func (r *Runner) Configured(ev Event) bool {
	if r == nil {
		return false
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return strings.TrimSpace(r.opts.Commands[ev]) != ""
}

// Update replaces the commands and the timeout for the events notified
// from now on (a reload of the member file); a callback already running
// finishes under the old ones.
func (r *Runner) Update(commands map[Event]string, timeout time.Duration) {
	if timeout <= 0 {
		timeout = time.Minute
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.opts.Commands, r.opts.Timeout = commands, timeout
}

// Notify runs the callback for ev with role in the background, if one is
// configured: `<command> <ev> <role> <scope>`. A callback of the same lane
// still running is killed first. It returns at once.
func (r *Runner) Notify(ev Event, role string) {
	r.mu.Lock()
	command, timeout := r.opts.Commands[ev], r.opts.Timeout
	r.mu.Unlock()
	if strings.TrimSpace(command) == "" {
		return
	}
	argv, err := Split(command)
	if err != nil {
		r.log.Error("callback not run: cannot parse its command", "callback", string(ev), "err", err)
		return
	}
	argv = append(argv, string(ev), role, r.opts.Scope)
	l := r.main
	if ev == OnReload {
		l = r.reload
	}
	l.submit(job{event: ev, role: role, argv: argv, timeout: timeout})
}

// Close kills the running callbacks, drops the pending ones and waits
// until their processes have exited.
func (r *Runner) Close() {
	r.main.close()
	r.reload.close()
}

// Result is how a synchronous script ended.
type Result struct {
	// ExitCode is the exit status; -1 when the script did not run to its
	// end (not started, killed by a signal or the timeout).
	ExitCode int
	// Output is the end of its combined stdout and stderr.
	Output string
	// Err says why it did not exit with status 0, nil when it did.
	Err error
}

// Run runs command (no extra arguments) and waits for it, killing its
// process group when ctx ends. It is for the hooks pre_promote and
// before_stop.
func Run(ctx context.Context, command string) Result {
	argv, err := Split(command)
	if err != nil {
		return Result{ExitCode: -1, Err: err}
	}
	if len(argv) == 0 {
		return Result{ExitCode: -1, Err: errors.New("empty command")}
	}
	return run(ctx, argv)
}

// run starts argv in a process group of its own and waits for it.
func run(ctx context.Context, argv []string) Result {
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return killGroup(cmd) }
	cmd.WaitDelay = waitDelay
	out := &tailBuffer{max: maxOutput}
	cmd.Stdout, cmd.Stderr = out, out
	err := cmd.Run()
	// Patroni kills what a callback left behind in its group.
	if cmd.Process != nil {
		_ = killGroup(cmd)
	}
	res := Result{ExitCode: -1, Output: out.String()}
	if cmd.ProcessState != nil {
		res.ExitCode = cmd.ProcessState.ExitCode()
	}
	switch {
	case ctx.Err() != nil:
		res.Err = fmt.Errorf("killed: %w", context.Cause(ctx))
	case err != nil:
		res.Err = err
	}
	return res
}

func killGroup(cmd *exec.Cmd) error {
	return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
}

// job is one event callback to run.
type job struct {
	event   Event
	role    string
	argv    []string
	timeout time.Duration
}

// lane runs one job at a time: submit cancels the running one and queues
// the new one, which starts once the old one has exited. Only the newest
// pending job is kept.
type lane struct {
	r       *Runner
	mu      sync.Mutex
	pending *job
	cancel  context.CancelCauseFunc // of the running job, nil when idle
	closed  bool
	wake    chan struct{}
	done    chan struct{}
}

var errSuperseded = errors.New("a newer event superseded it")

func newLane(r *Runner) *lane {
	l := &lane{r: r, wake: make(chan struct{}, 1), done: make(chan struct{})}
	go l.loop()
	return l
}

func (l *lane) submit(j job) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return
	}
	if l.pending != nil {
		l.r.log.Info("callback dropped: a newer event came before it started", "callback", string(l.pending.event),
			"role", l.pending.role)
	}
	l.pending = &j
	if l.cancel != nil {
		l.cancel(errSuperseded)
	}
	select {
	case l.wake <- struct{}{}:
	default:
	}
}

func (l *lane) close() {
	l.mu.Lock()
	if !l.closed {
		l.closed = true
		l.pending = nil
		if l.cancel != nil {
			l.cancel(errors.New("the agent is stopping"))
		}
		close(l.wake)
	}
	l.mu.Unlock()
	<-l.done
}

func (l *lane) loop() {
	defer close(l.done)
	for range l.wake {
		for {
			l.mu.Lock()
			j := l.pending
			l.pending = nil
			if j == nil || l.closed {
				l.mu.Unlock()
				break
			}
			ctx, cancel := context.WithCancelCause(context.Background())
			ctx, stop := context.WithTimeoutCause(ctx, j.timeout,
				fmt.Errorf("timed out after %s", j.timeout))
			l.cancel = cancel
			l.mu.Unlock()

			start := time.Now()
			res := run(ctx, j.argv)
			stop()
			cancel(nil)
			l.mu.Lock()
			l.cancel = nil
			l.mu.Unlock()
			l.r.logResult(*j, res, time.Since(start))
		}
	}
}

func (r *Runner) logResult(j job, res Result, took time.Duration) {
	attrs := []any{"callback", string(j.event), "role", j.role, "command", strings.Join(j.argv, " "),
		"exit_code", res.ExitCode, "duration", took.Round(time.Millisecond)}
	if res.Output != "" {
		attrs = append(attrs, "output", res.Output)
	}
	if res.Err != nil {
		r.log.Warn("callback failed", append(attrs, "err", res.Err)...)
		return
	}
	r.log.Info("callback finished", attrs...)
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	buf bytes.Buffer
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf.Write(p)
	if over := t.buf.Len() - t.max; over > 0 {
		t.buf.Next(over)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return strings.TrimSpace(t.buf.String())
}
