package procfs

import (
	"os"
	"os/exec"
	"slices"
	"syscall"
	"testing"
	"time"
)

func TestReadStatOfSelf(t *testing.T) {
	st, err := ReadStat(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if st.PPID != os.Getppid() || st.PGRP != syscall.Getpgrp() {
		t.Fatalf("stat = %+v, want ppid %d pgrp %d", st, os.Getppid(), syscall.Getpgrp())
	}
	if !Alive(os.Getpid()) {
		t.Fatal("this process is not alive")
	}
}

func TestZombieIsNotAlive(t *testing.T) {
	cmd := exec.Command("sleep", "60")
	if err := cmd.Start(); err != nil {
		t.Skip("no sleep binary:", err)
	}
	pid := cmd.Process.Pid
	_ = cmd.Process.Kill()
	// Not yet reaped: a zombie until Wait. Wait for that state, bounded.
	deadline := time.Now().Add(5 * time.Second)
	for {
		if st, err := ReadStat(pid); err == nil && st.State == 'Z' {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("killed child never became a zombie")
		}
		time.Sleep(time.Millisecond) // polling interval of the condition
	}
	if Alive(pid) {
		t.Fatal("a killed, unreaped child counts as alive")
	}
	_ = cmd.Wait()
	if Alive(pid) {
		t.Fatal("a reaped child counts as alive")
	}
}

func TestChildrenFindsAStartedChild(t *testing.T) {
	cmd := exec.Command("sleep", "30")
	if err := cmd.Start(); err != nil {
		t.Skip("no sleep binary:", err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	if !slices.Contains(Children(os.Getpid()), cmd.Process.Pid) {
		t.Fatalf("Children(%d) = %v, want it to contain %d", os.Getpid(), Children(os.Getpid()), cmd.Process.Pid)
	}
}
