package e2e

import (
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/regent-ha/regent/internal/cluster"
	"github.com/regent-ha/regent/internal/localcluster"
)

// TestSystemdNotify runs a member as systemd would with Type=notify and
// WatchdogSec=2: its notifications arrive on a fake notify socket —
// READY=1 once the REST API answers, WATCHDOG=1 while the loop runs,
// RELOADING=1 and READY=1 around a SIGHUP reload, STOPPING=1 at SIGTERM.
func TestSystemdNotify(t *testing.T) {
	path := filepath.Join(testDir(t), "notify.sock")
	sock, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer sock.Close()
	msgs := make(chan string, 1000)
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := sock.Read(buf)
			if err != nil {
				close(msgs)
				return
			}
			msgs <- string(buf[:n])
		}
	}()
	// The agent inherits these; it must keep them from PostgreSQL, which
	// (built with systemd support) would send its own READY=1.
	t.Setenv("NOTIFY_SOCKET", path)
	t.Setenv("WATCHDOG_USEC", "2000000")
	c, _ := startCluster(t, 1)

	next := func(what string, want func(string) bool) string {
		t.Helper()
		deadline := time.After(3 * time.Minute)
		for {
			select {
			case m, ok := <-msgs:
				if !ok {
					t.Fatalf("notify socket closed while waiting for %s", what)
				}
				if want(m) {
					return m
				}
				if strings.Contains(m, "READY=1") || strings.Contains(m, "RELOADING=1") || strings.Contains(m, "STOPPING=1") {
					t.Fatalf("got %q while waiting for %s", m, what)
				}
			case <-deadline:
				t.Fatalf("no %s from the agent", what)
			}
		}
	}
	is := func(s string) func(string) bool { return func(m string) bool { return m == s } }

	next("READY=1", is("READY=1"))
	resp, err := http.Get(c.APIURL("m1") + "/liveness")
	if err != nil {
		t.Fatalf("REST API not answering right after READY=1: %v", err)
	}
	resp.Body.Close()
	next("WATCHDOG=1", is("WATCHDOG=1"))
	next("a second WATCHDOG=1", is("WATCHDOG=1"))

	waitFor(t, c, 3*time.Minute, "a running leader", func(v *cluster.Cluster) bool { return localcluster.Healthy(v, 1) })
	if err := syscall.Kill(c.AgentPID("m1"), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	m := next("RELOADING=1", func(m string) bool { return strings.HasPrefix(m, "RELOADING=1\n") })
	if !strings.Contains(m, "\nMONOTONIC_USEC=") {
		t.Errorf("RELOADING=1 without MONOTONIC_USEC: %q", m)
	}
	next("READY=1 after the reload", is("READY=1"))

	if err := c.Stop("m1", 60*time.Second); err != nil {
		t.Fatal(err)
	}
	next("STOPPING=1", is("STOPPING=1"))
	// Every message came from the agent: PostgreSQL never saw the socket.
	for {
		select {
		case m := <-msgs:
			if m != "WATCHDOG=1" {
				t.Errorf("unexpected notification after STOPPING=1: %q", m)
			}
			continue
		default:
		}
		break
	}
}
