package api

import (
	"crypto/sha256"
	"crypto/subtle"
	"net"
	"net/http"
	"strings"
)

// Access restricts the mutating endpoints (every method but GET, HEAD and
// OPTIONS). The zero value allows everyone. Checks run in Patroni's order:
// allowlist, client certificate, then basic authentication.
type Access struct {
	// Username and Password, when Username is set, require HTTP basic
	// authentication.
	Username, Password string
	// Allowlist, when not empty, lists the client networks allowed.
	Allowlist []*net.IPNet
	// RequireClientCert requires a verified TLS client certificate (set it
	// for restapi.verify_client optional or required; with required the TLS
	// handshake already demands one on every connection, GETs included).
	RequireClientCert bool
}

// basicRealm is the WWW-Authenticate challenge of a 401.
const basicRealm = `Basic realm="regent"`

// readOnly reports whether a method never changes anything and is
// therefore never access-checked.
func readOnly(method string) bool {
	return method == http.MethodGet || method == http.MethodHead || method == http.MethodOptions
}

// authorize applies the access rules (Access, or the last SetAccess) to a mutating request; it answers the request
// and returns false when access is denied.
func (s *Server) authorize(w http.ResponseWriter, r *http.Request) bool {
	a := s.access()
	if len(a.Allowlist) > 0 {
		ip := remoteIP(r)
		if !allowed(a.Allowlist, ip) {
			addr := strings.TrimSpace(r.RemoteAddr)
			if ip != nil {
				addr = ip.String()
			}
			s.deny(w, r, http.StatusForbidden, "client address "+addr+" is not in restapi.allowlist")
			return false
		}
	}
	if a.RequireClientCert && (r.TLS == nil || len(r.TLS.PeerCertificates) == 0) {
		s.deny(w, r, http.StatusForbidden, "client certificate required")
		return false
	}
	if a.Username != "" {
		user, pass, ok := r.BasicAuth()
		if !ok {
			w.Header().Set("WWW-Authenticate", basicRealm)
			s.deny(w, r, http.StatusUnauthorized, "authentication required")
			return false
		}
		// Both comparisons always run, over fixed-length digests, so the
		// time taken tells nothing about either value.
		userOK := equalSecret(user, a.Username)
		passOK := equalSecret(pass, a.Password)
		if userOK&passOK != 1 {
			w.Header().Set("WWW-Authenticate", basicRealm)
			s.deny(w, r, http.StatusUnauthorized, "wrong username or password")
			return false
		}
	}
	return true
}

func (s *Server) deny(w http.ResponseWriter, r *http.Request, code int, msg string) {
	s.log.Warn("REST API: access denied", "method", r.Method, "path", r.URL.Path, "remote", r.RemoteAddr, "reason", msg)
	writeError(w, r, code, msg)
}

// equalSecret compares in constant time: 1 when a equals b.
func equalSecret(a, b string) int {
	ha, hb := sha256.Sum256([]byte(a)), sha256.Sum256([]byte(b))
	return subtle.ConstantTimeCompare(ha[:], hb[:])
}

// remoteIP is the client's address, or nil when it cannot be parsed.
func remoteIP(r *http.Request) net.IP {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	host, _, _ = strings.Cut(host, "%") // IPv6 zone
	return net.ParseIP(host)
}

func allowed(nets []*net.IPNet, ip net.IP) bool {
	if ip == nil {
		return false
	}
	for _, n := range nets {
		if n.Contains(ip) {
			return true
		}
	}
	return false
}
