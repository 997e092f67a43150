package agent

import (
	"testing"
	"time"
)

func TestSuspendDetector(t *testing.T) {
	var d suspendDetector
	t0 := time.Unix(1000, 0)
	if gap := d.check(t0, 10*time.Second); gap != 0 {
		t.Fatalf("first reading reported a gap of %v", gap)
	}
	// One loop later: both clocks advanced by a second.
	if gap := d.check(t0.Add(time.Second), 11*time.Second); gap != 0 {
		t.Fatalf("steady clocks reported a gap of %v", gap)
	}
	// The host slept for 30 s: boot time jumps, monotonic does not.
	if gap := d.check(t0.Add(2*time.Second), 42*time.Second); gap != 30*time.Second {
		t.Fatalf("suspend of 30s reported as %v", gap)
	}
}

func TestBootTimeIsReadable(t *testing.T) {
	a, ok := bootTime()
	if !ok {
		t.Skip("CLOCK_BOOTTIME not available")
	}
	b, _ := bootTime()
	if b < a {
		t.Fatalf("boot time went backwards: %v then %v", a, b)
	}
}
