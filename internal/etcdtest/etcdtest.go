// Package etcdtest runs an embedded single-node etcd server for tests and
// for Regent's demo command.
package etcdtest

import (
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"go.etcd.io/etcd/server/v3/embed"

	"github.com/regent-ha/regent/internal/etcdserver"
	"github.com/regent-ha/regent/internal/testport"
)

// startAttempts is how many times Start picks new ports after a bind
// conflict (another process took a port between probing and binding).
const startAttempts = 5

// Server is an embedded etcd started by Start.
type Server struct {
	clientURL, peerURL, dir string

	mu      sync.Mutex
	etcd    *embed.Etcd
	stopped bool
}

// Start runs an embedded etcd on free 127.0.0.1 ports with its data in a
// temporary directory of t, waits until it is ready and stops it when the
// test ends. It fails the test if the server does not start.
func Start(t testing.TB) *Server {
	t.Helper()
	base := t.TempDir()
	var lastErr error
	for attempt := range startAttempts {
		clientURL, peerURL, err := freeURLs()
		if err != nil {
			t.Fatalf("etcdtest: pick ports: %v", err)
		}
		s := &Server{clientURL: clientURL, peerURL: peerURL, dir: filepath.Join(base, fmt.Sprintf("etcd-%d", attempt))}
		if err := s.start(); err != nil {
			lastErr = err
			if isAddrInUse(err) {
				continue
			}
			break
		}
		t.Cleanup(s.Stop)
		return s
	}
	t.Fatalf("etcdtest: start embedded etcd: %v", lastErr)
	return nil
}

// start runs the server on s's ports and data directory.
func (s *Server) start() error {
	cfg, err := etcdserver.Config(s.dir, s.clientURL, s.peerURL)
	if err != nil {
		return err
	}
	// Test data is thrown away: skip fsync to keep tests fast.
	cfg.UnsafeNoFsync = true
	e, err := etcdserver.StartAndWait(cfg)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.etcd, s.stopped = e, false
	return nil
}

// Endpoints returns the client URLs of the server.
func (s *Server) Endpoints() []string {
	return []string{s.clientURL}
}

// Etcd returns the running embedded server, or nil after Stop.
func (s *Server) Etcd() *embed.Etcd {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped {
		return nil
	}
	return s.etcd
}

// Stop shuts the server down. It is safe to call more than once.
func (s *Server) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped || s.etcd == nil {
		return
	}
	s.stopped = true
	s.etcd.Close()
}

// Restart stops the server if it runs and starts it again on the same
// ports with the same data, e.g. to test reconnection after an outage.
// Stopping waits up to etcd's request timeout (7 s) for open watch streams
// to drain.
func (s *Server) Restart() error {
	s.Stop()
	if err := s.start(); err != nil {
		return fmt.Errorf("etcdtest: restart: %w", err)
	}
	return nil
}

// ago.
func freeURLs() (clientURL, peerURL string, err error) {
	c, err := testport.Get()
	if err != nil {
		return "", "", err
	}
	p, err := testport.Get()
	if err != nil {
		return "", "", err
	}
	return fmt.Sprintf("http://127.0.0.1:%d", c), fmt.Sprintf("http://127.0.0.1:%d", p), nil
}

// isAddrInUse reports whether err is a bind conflict.
func isAddrInUse(err error) bool {
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "listen" {
		return true
	}
	return strings.Contains(err.Error(), "address already in use")
}
