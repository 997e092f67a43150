// Package etcdtest runs an embedded single-node etcd server for tests and
// for Regent's demo command.
package etcdtest

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.etcd.io/etcd/server/v3/embed"
)

// readyTimeout bounds how long a started server may take to become ready.
const readyTimeout = 30 * time.Second

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
	cfg, err := config(s.dir, s.clientURL, s.peerURL)
	if err != nil {
		return err
	}
	// Test data is thrown away: skip fsync to keep tests fast.
	cfg.UnsafeNoFsync = true
	e, err := startAndWait(cfg)
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

// StartEmbedded runs a single-node etcd with its data in dir, serving
// clients on clientURL and peers on peerURL (both "http://host:port"), and
// returns once it is ready. The caller closes it with Close.
func StartEmbedded(dir, clientURL, peerURL string) (*embed.Etcd, error) {
	cfg, err := config(dir, clientURL, peerURL)
	if err != nil {
		return nil, fmt.Errorf("etcdtest: %w", err)
	}
	e, err := startAndWait(cfg)
	if err != nil {
		return nil, fmt.Errorf("etcdtest: start embedded etcd: %w", err)
	}
	return e, nil
}

// config builds the embedded server settings shared by Start and
// StartEmbedded.
func config(dir, clientURL, peerURL string) (*embed.Config, error) {
	cu, err := url.Parse(clientURL)
	if err != nil {
		return nil, fmt.Errorf("client URL %q: %w", clientURL, err)
	}
	pu, err := url.Parse(peerURL)
	if err != nil {
		return nil, fmt.Errorf("peer URL %q: %w", peerURL, err)
	}
	cfg := embed.NewConfig()
	cfg.Name = "regent-etcd"
	cfg.Dir = dir
	cfg.LogLevel = "error"
	cfg.TickMs = 100
	cfg.ElectionMs = 1000
	cfg.ListenClientUrls = []url.URL{*cu}
	cfg.AdvertiseClientUrls = []url.URL{*cu}
	cfg.ListenPeerUrls = []url.URL{*pu}
	cfg.AdvertisePeerUrls = []url.URL{*pu}
	cfg.InitialCluster = cfg.InitialClusterFromName(cfg.Name)
	return cfg, nil
}

// startAndWait starts the server and waits until it serves clients.
func startAndWait(cfg *embed.Config) (*embed.Etcd, error) {
	e, err := embed.StartEtcd(cfg)
	if err != nil {
		return nil, err
	}
	select {
	case <-e.Server.ReadyNotify():
		return e, nil
	case err := <-e.Err():
		e.Close()
		return nil, err
	case <-time.After(readyTimeout):
		e.Server.Stop()
		e.Close()
		return nil, fmt.Errorf("not ready after %v", readyTimeout)
	}
}

// freeURLs returns a client and a peer URL on ports that were free a moment
// ago.
func freeURLs() (clientURL, peerURL string, err error) {
	// Hold both listeners until both ports are known so they differ.
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			_ = l.Close()
		}
	}()
	for range 2 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return "", "", err
		}
		ls = append(ls, l)
	}
	return "http://" + ls[0].Addr().String(), "http://" + ls[1].Addr().String(), nil
}

// isAddrInUse reports whether err is a bind conflict.
func isAddrInUse(err error) bool {
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "listen" {
		return true
	}
	return strings.Contains(err.Error(), "address already in use")
}
