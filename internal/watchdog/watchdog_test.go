package watchdog

import (
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestTimeoutFitsTheLease(t *testing.T) {
	// Regent's defaults: ttl 5 s, retry_timeout 1 s, ε 1 %, m 0.5 s.
	if got := Timeout(5*time.Second, time.Second, 0.01, 0.5); got != 3*time.Second {
		t.Fatalf("Timeout = %v, want 3s", got)
	}
	// Patroni-like ttl 30: 30·0.99 − 0.5 − 10 = 19.2 → 19 s.
	if got := Timeout(30*time.Second, 10*time.Second, 0.01, 0.5); got != 19*time.Second {
		t.Fatalf("Timeout = %v, want 19s", got)
	}
	if got := Timeout(2*time.Second, 2*time.Second, 0.01, 0.5); got != time.Second {
		t.Fatalf("Timeout = %v, want the 1s floor", got)
	}
}

func TestOpenMissingDeviceExplains(t *testing.T) {
	_, err := Open(filepath.Join(t.TempDir(), "watchdog"), 3*time.Second)
	if err == nil || !strings.Contains(err.Error(), "softdog") || !strings.Contains(err.Error(), "watchdog.mode") {
		t.Fatalf("err = %v", err)
	}
}

func TestOpenRejectsANonWatchdog(t *testing.T) {
	// A regular file opens but refuses the timeout ioctl.
	path := filepath.Join(t.TempDir(), "not-a-watchdog")
	if err := writeFile(path); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(path, 3*time.Second); err == nil {
		t.Fatal("a regular file was accepted as a watchdog")
	}
}
