package api

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"
)

// DefaultLoadTimeout bounds the fresh DCS read behind /cluster, /history and /config.
const DefaultLoadTimeout = 2 * time.Second

// shutdownTimeout bounds the graceful shutdown of ListenAndServe.
const shutdownTimeout = 2 * time.Second

// Server is a member's REST API. Its read endpoints answer from the
// agent's published snapshot and never wait on PostgreSQL; only /cluster,
// /history and /config read the DCS, bounded by LoadTimeout. The mutating
// endpoints (switchover, failover, restart, reload, reinitialize, config
// changes) go through Store and Operator, behind Access. Set the exported
// fields before serving.
type Server struct {
	// LoadTimeout bounds each fresh DCS read and write (DefaultLoadTimeout
	// when zero).
	LoadTimeout time.Duration
	// TLS, when set, makes ListenAndServe serve HTTPS with it
	// (config.RestAPIConfig.ServerTLS).
	TLS *tls.Config
	// Access restricts the mutating endpoints; the zero value allows all.
	Access Access
	// Store is the DCS access of the switchover, failover and config
	// endpoints; nil makes them answer 503.
	Store ControlStore
	// Operator carries out restart, reload and reinitialize; nil makes
	// them answer 503.
	Operator Operator
	// SwitchoverTimeout bounds the wait for a switchover or failover to
	// complete (DefaultSwitchoverTimeout when zero).
	SwitchoverTimeout time.Duration
	// Metrics serves GET and HEAD /metrics (Prometheus text format,
	// internal/metrics) without authentication, like the health checks;
	// nil makes /metrics answer 503.
	Metrics http.Handler
	// Failsafe acknowledges a leader during a DCS outage (POST /failsafe).
	Failsafe FailsafeAcker
	// Positions, when set, reads the local PostgreSQL at the moment a
	// switchover is checked on the leader (see freshStatus).
	Positions PositionReader

	// pollInterval overrides defaultPollInterval in tests.
	pollInterval time.Duration

	src SnapshotSource
	pub *Publisher // src when it is a *Publisher: enables the cached body
	dcs ClusterReader
	log *slog.Logger
	now func() time.Time

	live live
}

// New returns a Server reading snapshots from src and fresh cluster views
// from dcs. A nil dcs makes /cluster, /history and /config answer from the
// snapshot's last DCS view; a nil logger discards logs.
func New(src SnapshotSource, dcs ClusterReader, logger *slog.Logger) *Server {
	if src == nil {
		src = new(Publisher)
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	pub, _ := src.(*Publisher)
	return &Server{src: src, pub: pub, dcs: dcs, log: logger, now: time.Now}
}

// Handler returns the HTTP handler serving the API.
func (s *Server) Handler() http.Handler { return s }

// ListenAndServe serves the API on addr (over TLS when s.TLS is set) until
// ctx ends, then shuts down gracefully within 2 s. It returns nil after a
// shutdown caused by ctx and an error when addr cannot be listened on or
// serving fails.
func (s *Server) ListenAndServe(ctx context.Context, addr string) error {
	ln, err := Listen(addr)
	if err != nil {
		return err
	}
	return s.serve(ctx, ln)
}

// Listen opens the API's listening socket on addr, for Serve.
func Listen(addr string) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("REST API cannot listen on %q: %w (check restapi.listen: it must be a free host:port on this machine)", addr, err)
	}
	return ln, nil
}

// Serve is ListenAndServe on a socket opened by Listen, so that the
// caller knows when the API accepts connections.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error { return s.serve(ctx, ln) }

func (s *Server) serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{
		Handler:           s,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      s.loadTimeout() + 10*time.Second,
		IdleTimeout:       60 * time.Second,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
		TLSConfig:         s.serverTLS(),
	}
	scheme := "http"
	if s.TLS != nil {
		scheme = "https"
	}
	s.log.Info("REST API listening", "addr", ln.Addr().String(), "scheme", scheme)
	errc := make(chan error, 1)
	go func() {
		if s.TLS != nil {
			errc <- srv.ServeTLS(ln, "", "")
			return
		}
		errc <- srv.Serve(ln)
	}()
	select {
	case err := <-errc:
		return fmt.Errorf("REST API on %s stopped: %w", ln.Addr(), err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		s.log.Warn("REST API did not shut down gracefully; closing connections", "err", err)
		_ = srv.Close()
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("REST API on %s stopped: %w", ln.Addr(), err)
	}
	return nil
}

func (s *Server) loadTimeout() time.Duration {
	if s.LoadTimeout > 0 {
		return s.LoadTimeout
	}
	return DefaultLoadTimeout
}

// current returns the snapshot to answer from.
func (s *Server) current() *published {
	if s.pub != nil {
		return s.pub.load()
	}
	return &published{snap: s.src.Snapshot()}
}
