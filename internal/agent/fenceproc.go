package agent

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"time"

	"github.com/regent-ha/regent/internal/cluster"
	"github.com/regent-ha/regent/internal/fence"
)

// fenceProc is the agent's handle on its fence process (package fence): a
// separate process that kills the postmaster if the agent stops renewing
// the deadline — because it hangs, is SIGSTOPped or dies.
type fenceProc struct {
	cmd     *exec.Cmd
	stdin   io.WriteCloser
	exited  chan struct{}
	last    string // last command sent
	dataDir string
}

// startFence starts `regent fence` for dataDir. A failure is logged by
// the caller; the agent then relies on the in-process lease guard alone.
func startFence(dataDir string) (*fenceProc, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(self, "fence", "--data-dir", dataDir)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting fence process: %w", err)
	}
	f := &fenceProc{cmd: cmd, stdin: stdin, exited: make(chan struct{}), dataDir: dataDir}
	go func() { _ = cmd.Wait(); close(f.exited) }()
	return f, nil
}

// alive reports whether the fence process still runs.
func (f *fenceProc) alive() bool {
	select {
	case <-f.exited:
		return false
	default:
		return true
	}
}

// update arms the fence at the lease deadline plus half the fence timeout
// (when the in-process guard's escalation would also have happened), or
// disarms it.
func (f *fenceProc) update(holds bool, confirmedSentAt time.Time, dyn cluster.DynamicConfig) error {
	cmd := "disarm"
	if holds && !confirmedSentAt.IsZero() {
		at := confirmedSentAt.Add(dyn.RenewDeadline() + dyn.FenceTimeoutDuration()/2)
		cmd = fmt.Sprintf("arm %d", fence.Now()+int64(time.Until(at)))
		// Keyed by the deadline, not the renewal: a ttl change moves the
		// deadline of the same renewal.
		if f.last == "arm:"+at.String() {
			return nil
		}
		f.last = "arm:" + at.String()
	} else {
		if f.last == cmd {
			return nil
		}
		f.last = cmd
	}
	_, err := io.WriteString(f.stdin, cmd+"\n")
	return err
}

// stop tells the fence to exit and waits briefly.
func (f *fenceProc) stop() {
	_, _ = io.WriteString(f.stdin, "exit\n")
	_ = f.stdin.Close()
	select {
	case <-f.exited:
	case <-time.After(2 * time.Second):
		_ = f.cmd.Process.Kill()
	}
}
