package config

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"os"
	"strings"
)

// Values of restapi.verify_client.
const (
	VerifyClientNone     = "none"
	VerifyClientOptional = "optional"
	VerifyClientRequired = "required"
)

// Format prints the user name and a redacted password for every verb: fmt
// does not call Secret's methods when it prints a *BasicAuth field with a
// verb that does not suit a pointer (%s, %q, ...).
func (a BasicAuth) Format(f fmt.State, verb rune) {
	if verb == 'v' && f.Flag('#') {
		_, _ = fmt.Fprintf(f, "config.BasicAuth{Username:%q, Password:%s}", a.Username, a.Password.GoString())
		return
	}
	_, _ = fmt.Fprintf(f, "{%s %s}", a.Username, a.Password.String())
}

// Scheme is "https" when the API serves TLS (certfile is set), else "http".
func (r RestAPIConfig) Scheme() string {
	if r.CertFile != "" {
		return "https"
	}
	return "http"
}

// ServerTLS builds the API's server TLS configuration, or returns nil when
// no certfile is set. With cafile, client certificates are verified against
// it; verify_client decides whether a client must present one.
func (r RestAPIConfig) ServerTLS() (*tls.Config, error) {
	if r.CertFile == "" {
		return nil, nil
	}
	pair, err := tls.LoadX509KeyPair(r.CertFile, r.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("restapi.certfile/restapi.keyfile: %w", err)
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{pair}}
	if r.CAFile != "" {
		pem, err := os.ReadFile(r.CAFile)
		if err != nil {
			return nil, fmt.Errorf("restapi.cafile: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("restapi.cafile %s: no PEM certificate found", r.CAFile)
		}
		cfg.ClientCAs = pool
		cfg.ClientAuth = tls.VerifyClientCertIfGiven
	}
	switch r.VerifyClient {
	case VerifyClientRequired:
		cfg.ClientAuth = tls.RequireAndVerifyClientCert
	case VerifyClientOptional:
		cfg.ClientAuth = tls.VerifyClientCertIfGiven
	}
	return cfg, nil
}

// AllowlistNets parses restapi.allowlist: CIDRs as given, single addresses
// as /32 (IPv4) or /128 (IPv6) networks. Nil when the list is empty.
func (r RestAPIConfig) AllowlistNets() ([]*net.IPNet, error) {
	var out []*net.IPNet
	for i, entry := range r.Allowlist {
		n, err := parseAllowEntry(entry)
		if err != nil {
			return nil, fmt.Errorf("restapi.allowlist[%d] %q %v", i, entry, err)
		}
		out = append(out, n)
	}
	return out, nil
}

func parseAllowEntry(entry string) (*net.IPNet, error) {
	entry = strings.TrimSpace(entry)
	if strings.Contains(entry, "/") {
		_, n, err := net.ParseCIDR(entry)
		if err != nil {
			return nil, fmt.Errorf("is not a CIDR; write it like \"10.0.0.0/8\"")
		}
		return n, nil
	}
	ip := net.ParseIP(entry)
	if ip == nil {
		return nil, fmt.Errorf("is not an IP address or CIDR; write it like \"10.0.0.5\" or \"10.0.0.0/8\" (host names are not supported)")
	}
	if v4 := ip.To4(); v4 != nil {
		return &net.IPNet{IP: v4, Mask: net.CIDRMask(32, 32)}, nil
	}
	return &net.IPNet{IP: ip, Mask: net.CIDRMask(128, 128)}, nil
}

func (r *RestAPIConfig) validate() []error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if a := r.Authentication; a != nil {
		if a.Username == "" {
			bad("restapi.authentication.username is required: set the user name clients must send, or remove restapi.authentication")
		}
		if !a.Password.IsSet() {
			bad("restapi.authentication.password is required: give it inline, as {file: /path} or as {env: NAME}")
		}
	}
	for _, f := range []struct{ key, path string }{
		{"restapi.certfile", r.CertFile}, {"restapi.keyfile", r.KeyFile}, {"restapi.cafile", r.CAFile},
	} {
		if f.path == "" {
			continue
		}
		if st, err := os.Stat(f.path); err != nil {
			bad("%s %q cannot be read: %v; correct the path or remove the key", f.key, f.path, unwrapPathError(err))
		} else if st.IsDir() {
			bad("%s %q is a directory; give the path of a PEM file", f.key, f.path)
		}
	}
	if (r.CertFile == "") != (r.KeyFile == "") {
		bad("restapi.certfile and restapi.keyfile must be given together: set both to serve HTTPS, or neither")
	}
	if r.CAFile != "" && r.CertFile == "" {
		bad("restapi.cafile needs HTTPS: set restapi.certfile and restapi.keyfile, or remove restapi.cafile")
	}
	switch r.VerifyClient {
	case VerifyClientNone:
	case VerifyClientOptional, VerifyClientRequired:
		if r.CAFile == "" {
			bad("restapi.verify_client %q needs restapi.cafile: set the CA bundle client certificates are checked against", r.VerifyClient)
		}
	default:
		bad("restapi.verify_client %q is not a mode; use none, optional or required", r.VerifyClient)
	}
	if _, err := r.AllowlistNets(); err != nil {
		errs = append(errs, err)
	}
	return errs
}
