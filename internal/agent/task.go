package agent

import (
	"context"
	"time"
)

// task is a long-running operation (initdb, clone, rewind, start,
// checkpoint) that runs beside the HA loop so the loop keeps renewing the
// lease and enforcing the deadline. At most one runs at a time.
type task struct {
	name    string
	state   string // member state reported while it runs
	started time.Time
	done    chan error
	// onDone runs on the loop goroutine when the task has finished.
	onDone func(error)
}

// startTask runs fn in the background.
func (a *Agent) startTask(ctx context.Context, name, state string, fn func(context.Context) error, onDone func(error)) {
	t := &task{name: name, state: state, started: time.Now(), done: make(chan error, 1), onDone: onDone}
	a.task = t
	a.log.Info("task started", "task", name)
	go func() { t.done <- fn(ctx) }()
}

// taskDoneChan returns a channel that is ready when the running task ends.
func (a *Agent) taskDoneChan() <-chan error {
	if a.task == nil {
		return nil
	}
	return a.task.done
}

// collectTask finishes a completed task on the loop goroutine.
func (a *Agent) collectTask() {
	t := a.task
	if t == nil {
		return
	}
	select {
	case err := <-t.done:
		a.finishTask(t, err)
	default:
	}
}

func (a *Agent) finishTask(t *task, err error) {
	a.task = nil
	if err != nil {
		a.log.Error("task failed", "task", t.name, "err", err, "took", time.Since(t.started).Round(time.Millisecond))
	} else {
		a.log.Info("task finished", "task", t.name, "took", time.Since(t.started).Round(time.Millisecond))
	}
	if t.onDone != nil {
		t.onDone(err)
	}
}

// waitTask waits for a running task to end (at shutdown).
func (a *Agent) waitTask(ctx context.Context) {
	if t := a.task; t != nil {
		select {
		case err := <-t.done:
			a.finishTask(t, err)
		case <-ctx.Done():
		}
	}
}
