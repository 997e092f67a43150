package sdnotify

import (
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// listen opens a fake notify socket and points $NOTIFY_SOCKET at it.
func listen(t *testing.T) *net.UnixConn {
	t.Helper()
	path := filepath.Join(t.TempDir(), "notify.sock")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	t.Setenv("NOTIFY_SOCKET", path)
	return conn
}

func receive(t *testing.T, conn *net.UnixConn) string {
	t.Helper()
	buf := make([]byte, 4096)
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	n, err := conn.Read(buf)
	if err != nil {
		t.Fatal(err)
	}
	return string(buf[:n])
}

func TestNotify(t *testing.T) {
	conn := listen(t)
	t.Setenv("WATCHDOG_USEC", "3000000")
	t.Setenv("WATCHDOG_PID", strconv.Itoa(os.Getpid()))
	n := FromEnv()
	if n == nil {
		t.Fatal("no notifier although NOTIFY_SOCKET is set")
	}
	for _, k := range []string{"NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"} {
		if _, set := os.LookupEnv(k); set {
			t.Errorf("%s is still set: child processes would inherit it", k)
		}
	}
	if got := n.WatchdogInterval(); got != 1500*time.Millisecond {
		t.Errorf("watchdog interval %s, want 1.5s", got)
	}
	steps := []struct {
		send func() error
		want string
	}{
		{n.Ready, "READY=1"},
		{n.Reloading, "RELOADING=1\nMONOTONIC_USEC="},
		{n.Watchdog, "WATCHDOG=1"},
		{n.Stopping, "STOPPING=1"},
	}
	for _, s := range steps {
		if err := s.send(); err != nil {
			t.Fatal(err)
		}
		if got := receive(t, conn); !strings.HasPrefix(got, s.want) {
			t.Errorf("received %q, want %q", got, s.want)
		}
	}
}

func TestWatchdogOfAnotherProcess(t *testing.T) {
	listen(t)
	t.Setenv("WATCHDOG_USEC", "3000000")
	t.Setenv("WATCHDOG_PID", "1")
	if got := FromEnv().WatchdogInterval(); got != 0 {
		t.Errorf("watchdog interval %s for another process's watchdog, want 0", got)
	}
}

func TestNoSocket(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", "")
	n := FromEnv()
	if n != nil {
		t.Fatal("a notifier without NOTIFY_SOCKET")
	}
	if err := n.Ready(); err != nil || n.WatchdogInterval() != 0 {
		t.Errorf("nil notifier: %v, %s", err, n.WatchdogInterval())
	}
}
