package sim

import (
	"fmt"
	"iter"
	"runtime/debug"
)

// killed is the panic value that unwinds a process whose coroutine was
// stopped (the process was killed); it never escapes the coroutine.
type killed struct{}

// proc is one simulated thread of control (the agent's loop, a background
// task, the shutdown path) written as ordinary sequential code. It runs as a
// coroutine: it executes until it must wait — for a reply, a timer, a
// PostgreSQL state — and then yields to the simulator, which resumes it
// once the condition holds. Only one proc runs at a time, so a run is
// deterministic.
type proc struct {
	name  string
	next  func() (struct{}, bool)
	stop  func()
	yield func(struct{}) bool
	// cond is what the proc waits for; nil means runnable.
	cond func() bool
	done bool
	// panicked holds the value and stack of a panic inside the proc.
	panicked string
}

func newProc(name string, body func(p *proc)) *proc {
	p := &proc{name: name}
	seq := func(yield func(struct{}) bool) {
		p.yield = yield
		defer func() {
			if r := recover(); r != nil {
				if _, ok := r.(killed); ok {
					return
				}
				p.panicked = fmt.Sprintf("%v\n%s", r, debug.Stack())
			}
		}()
		body(p)
	}
	p.next, p.stop = iter.Pull(seq)
	return p
}

// waitFor blocks the proc until cond holds. It returns at once, without
// yielding, when cond already holds.
func (p *proc) waitFor(cond func() bool) {
	if cond() {
		return
	}
	p.cond = cond
	if !p.yield(struct{}{}) {
		panic(killed{})
	}
}

// ready reports whether the simulator may resume the proc now.
func (p *proc) ready() bool {
	return !p.done && (p.cond == nil || p.cond())
}

// resume runs the proc until it waits again or ends.
func (p *proc) resume() {
	p.cond = nil
	if _, ok := p.next(); !ok {
		p.done = true
	}
}

// kill ends the proc wherever it waits.
func (p *proc) kill() {
	if p.done {
		return
	}
	p.done = true
	p.stop()
}
