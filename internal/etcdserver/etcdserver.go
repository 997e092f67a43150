// Package etcdserver runs a single-node embedded etcd
// (go.etcd.io/etcd/server/v3/embed): the DCS of `regent demo` and of the
// tests. Production members point at an external etcd cluster instead.
package etcdserver

import (
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"time"

	"go.etcd.io/etcd/server/v3/embed"
)

// readyTimeout bounds how long a started server may take to become ready.
const readyTimeout = 30 * time.Second

// StartEmbedded runs a single-node etcd with its data in dir, serving
// clients on clientURL and peers on peerURL (both "http://host:port"), and
// returns once it is ready. With a logFile, etcd logs there at info level
// instead of to stderr. The caller closes it with Close.
func StartEmbedded(dir, clientURL, peerURL, logFile string) (*embed.Etcd, error) {
	cfg, err := Config(dir, clientURL, peerURL)
	if err != nil {
		return nil, fmt.Errorf("etcdserver: %w", err)
	}
	if logFile != "" {
		// etcd opens its log sink before it creates any directory.
		if err := os.MkdirAll(filepath.Dir(logFile), 0o700); err != nil {
			return nil, fmt.Errorf("etcdserver: log directory: %w", err)
		}
		cfg.LogLevel = "info"
		cfg.LogOutputs = []string{logFile}
	}
	e, err := StartAndWait(cfg)
	if err != nil {
		return nil, fmt.Errorf("etcdserver: start embedded etcd: %w", err)
	}
	return e, nil
}

// Config builds the embedded server settings shared by Start and
// StartEmbedded.
func Config(dir, clientURL, peerURL string) (*embed.Config, error) {
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

// StartAndWait starts the server and waits until it serves clients.
func StartAndWait(cfg *embed.Config) (*embed.Etcd, error) {
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
