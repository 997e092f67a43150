package api

import (
	"crypto/tls"
	"sync/atomic"
)

// live holds the access rules and TLS configuration that a reload of the
// member file replaces while the server runs (SetAccess, SetTLS).
type live struct {
	access atomic.Pointer[Access]
	tls    atomic.Pointer[tls.Config]
}

// SetAccess replaces the access rules of the mutating endpoints; requests
// that arrive afterwards are checked against a.
func (s *Server) SetAccess(a Access) { s.live.access.Store(&a) }

// SetTLS replaces the certificate, client CAs and client-certificate
// policy of a server that serves HTTPS: handshakes after the call use c.
// Whether the server speaks TLS at all is fixed when it starts; SetTLS on a
// plain-HTTP server has no effect.
func (s *Server) SetTLS(c *tls.Config) { s.live.tls.Store(c) }

// access is the current access rules: the last SetAccess, else Access.
func (s *Server) access() *Access {
	if a := s.live.access.Load(); a != nil {
		return a
	}
	return &s.Access
}

// serverTLS wraps s.TLS so that every handshake uses the configuration of
// the last SetTLS (s.TLS until then). HTTP/1.1 is offered, as Patroni's
// API speaks it.
func (s *Server) serverTLS() *tls.Config {
	if s.TLS == nil {
		return nil
	}
	s.live.tls.CompareAndSwap(nil, s.TLS)
	return &tls.Config{
		MinVersion: s.TLS.MinVersion,
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			c := s.live.tls.Load().Clone()
			c.NextProtos = []string{"http/1.1"}
			return c, nil
		},
	}
}
