package fence

import (
	"io"
	"log/slog"
	"strconv"
	"sync/atomic"
	"testing"
	"time"
)

func quiet() *slog.Logger { return slog.New(slog.DiscardHandler) }

func arm(w io.Writer, in time.Duration) {
	_, _ = io.WriteString(w, "arm "+strconv.FormatInt(Now()+int64(in), 10)+"\n")
}

func TestFiresAtTheDeadline(t *testing.T) {
	r, w := io.Pipe()
	fired := make(chan time.Time, 1)
	done := make(chan error, 1)
	go func() { done <- Run(r, func() bool { fired <- time.Now(); return true }, quiet()) }()
	start := time.Now()
	arm(w, 100*time.Millisecond)
	select {
	case at := <-fired:
		if at.Sub(start) < 100*time.Millisecond {
			t.Fatalf("fired after %v, before the deadline", at.Sub(start))
		}
	case <-time.After(5 * time.Second):
		t.Fatal("fence did not fire")
	}
	_, _ = io.WriteString(w, "exit\n")
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestRenewalsKeepItQuiet(t *testing.T) {
	r, w := io.Pipe()
	var fired atomic.Int32
	done := make(chan error, 1)
	go func() { done <- Run(r, func() bool { fired.Add(1); return true }, quiet()) }()
	for range 20 {
		arm(w, 100*time.Millisecond)
		time.Sleep(20 * time.Millisecond) // the renewal cadence under test
	}
	_, _ = io.WriteString(w, "disarm\n")
	time.Sleep(200 * time.Millisecond) // a disarmed fence must stay quiet past the last deadline
	_, _ = io.WriteString(w, "exit\n")
	<-done
	if fired.Load() != 0 {
		t.Fatalf("fired %d times despite renewals", fired.Load())
	}
}

func TestAgentDeathKeepsTheArmedDeadline(t *testing.T) {
	r, w := io.Pipe()
	fired := make(chan struct{}, 1)
	done := make(chan error, 1)
	go func() { done <- Run(r, func() bool { fired <- struct{}{}; return true }, quiet()) }()
	arm(w, 150*time.Millisecond)
	w.Close() // the agent died
	select {
	case <-fired:
	case <-time.After(5 * time.Second):
		t.Fatal("fence did not fire after the agent died while armed")
	}
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("fence did not exit after firing for a dead agent")
	}
}

func TestAgentDeathWhileDisarmedExits(t *testing.T) {
	r, w := io.Pipe()
	done := make(chan error, 1)
	go func() { done <- Run(r, func() bool { t.Error("fired while disarmed"); return true }, quiet()) }()
	w.Close()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("fence did not exit")
	}
}
