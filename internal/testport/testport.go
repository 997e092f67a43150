// Package testport hands out TCP ports on 127.0.0.1 for the servers that
// tests, benchmarks and the fault-injection suite start as separate
// processes (PostgreSQL, Regent's REST API, etcd).
//
// Asking the kernel for port 0 and closing the listener is not enough when
// many test binaries run at once: the port comes from the ephemeral range,
// so until the server binds it, any outgoing connection on the machine may
// take it as its source port, and another test may be handed it again. The
// ports here come from below the ephemeral range (read from
// /proc/sys/net/ipv4/ip_local_port_range), which the kernel never hands out
// by itself, and each one is reserved across processes by an advisory lock
// on a file in the system's temporary directory, held until the process
// exits (the kernel drops it even after kill -9). A port is handed out only
// when its lock was taken and a listener could bind it.
package testport

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
)

var (
	mu   sync.Mutex
	held = map[int]*os.File{} // ports reserved by this process
)

// Get returns a port on 127.0.0.1 that no other caller of Get, in this or
// another process, has been given while its holder runs, and that was free
// when checked.
func Get() (int, error) {
	lo, hi := candidateRange()
	dir := filepath.Join(os.TempDir(), "regent-test-ports")
	if err := os.MkdirAll(dir, 0o777); err != nil {
		return 0, fmt.Errorf("testport: %w", err)
	}
	mu.Lock()
	defer mu.Unlock()
	span := hi - lo
	start := rand.IntN(span)
	for i := range span {
		port := lo + (start+i)%span
		if held[port] != nil {
			continue
		}
		f, ok := lock(filepath.Join(dir, strconv.Itoa(port)))
		if !ok {
			continue
		}
		l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		if err != nil {
			f.Close() // in use by something that does not take part
			continue
		}
		l.Close()
		held[port] = f
		return port, nil
	}
	return 0, fmt.Errorf("testport: no free port in %d-%d", lo, hi-1)
}

// MustGet is Get for callers that cannot go on without a port.
func MustGet() int {
	p, err := Get()
	if err != nil {
		panic(err)
	}
	return p
}

// lock takes an exclusive, non-blocking advisory lock on path.
func lock(path string) (*os.File, bool) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o666)
	if err != nil {
		return nil, false
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return nil, false
	}
	return f, true
}

// candidateRange is [lo, hi): the ports below the kernel's ephemeral range,
// from 10000, or above it when that leaves too few.
func candidateRange() (lo, hi int) {
	eLo, eHi := ephemeralRange()
	if eLo-10000 >= 4000 {
		return 10000, eLo
	}
	if 65536-(eHi+1) >= 4000 {
		return eHi + 1, 65536
	}
	return 10000, 65536 // the whole space is ephemeral: locks still keep tests apart
}

// ephemeralRange reads ip_local_port_range; Linux's default if unreadable.
func ephemeralRange() (lo, hi int) {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			l, err1 := strconv.Atoi(f[0])
			h, err2 := strconv.Atoi(f[1])
			if errors.Join(err1, err2) == nil && l > 0 && h >= l {
				return l, h
			}
		}
	}
	return 32768, 60999
}
