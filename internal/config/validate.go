package config

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
)

// namePattern is the character set of member names.
var namePattern = regexp.MustCompile(`^[A-Za-z0-9_.-]+$`)

// Validate checks required fields, formats and the bootstrap timing
// invariants, and reports every problem found, one per line, each saying
// what to change. TLS files must exist.
func (c *Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	switch c.Watchdog.Mode {
	case "off", "automatic", "required":
	default:
		bad("watchdog.mode must be off, automatic or required, got %q", c.Watchdog.Mode)
	}

	switch {
	case c.Scope == "":
		bad("scope is required: set it to the cluster name, the same on every member")
	case strings.ContainsAny(c.Scope, "/ \t\n"):
		bad("scope %q must not contain slashes or whitespace: it is one element of the DCS path; choose a simple cluster name", c.Scope)
	}
	switch {
	case c.Name == "":
		bad("name is required: set it to this member's name, unique in the cluster (for example the host name)")
	case !namePattern.MatchString(c.Name):
		bad("name %q may only contain letters, digits, '_', '.' and '-'; choose another member name", c.Name)
	}

	errs = append(errs, c.Etcd.validate()...)
	errs = append(errs, checkAddress("restapi.listen", c.RestAPI.Listen, false)...)
	errs = append(errs, checkAddress("restapi.connect_address", c.RestAPI.ConnectAddress, true)...)
	errs = append(errs, c.RestAPI.validate()...)
	errs = append(errs, c.PostgreSQL.validate()...)
	if portsClash(c.RestAPI.Listen, c.PostgreSQL.Listen) {
		bad("restapi.listen %q and postgresql.listen %q use the same port on the same address; give them different ports",
			c.RestAPI.Listen, c.PostgreSQL.Listen)
	}

	if err := c.Bootstrap.DCS.Validate(); err != nil {
		errs = append(errs, prefixEach("bootstrap.dcs: ", err))
	}

	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		bad("log.level %q is not a level; use debug, info, warn or error", c.Log.Level)
	}
	switch c.Log.Format {
	case "text", "json":
	default:
		bad("log.format %q is not a format; use text or json", c.Log.Format)
	}
	return errors.Join(errs...)
}

func (e *EtcdConfig) validate() []error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if len(e.Endpoints) == 0 {
		bad("etcd.endpoints is required: list the etcd client URLs, for example [\"http://127.0.0.1:2379\"]")
	}
	for i, ep := range e.Endpoints {
		if err := checkEndpoint(ep); err != nil {
			bad("etcd.endpoints[%d] %q %v; use the form http://host:port or https://host:port", i, ep, err)
		}
	}
	for _, f := range []struct{ key, path string }{{"etcd.cacert", e.CACert}, {"etcd.cert", e.Cert}, {"etcd.key", e.Key}} {
		if f.path == "" {
			continue
		}
		if st, err := os.Stat(f.path); err != nil {
			bad("etcd: %s file %q cannot be read: %v; correct the path or remove the key", f.key, f.path, unwrapPathError(err))
		} else if st.IsDir() {
			bad("etcd: %s %q is a directory; give the path of a PEM file", f.key, f.path)
		}
	}
	if (e.Cert == "") != (e.Key == "") {
		bad("etcd.cert and etcd.key must be given together: set both for client certificate authentication, or neither")
	}
	if e.Username != "" && !e.Password.IsSet() {
		bad("etcd.password is required when etcd.username is set: give it inline, as {file: /path} or as {env: NAME}")
	}
	if e.Username == "" && e.Password.IsSet() {
		bad("etcd.username is required when etcd.password is set: set the etcd user name, or remove the password")
	}
	if e.DialTimeout <= 0 {
		bad("etcd.dial_timeout must be positive, got %v; use a value like \"2s\"", e.DialTimeout)
	}
	return errs
}

func (p *PostgreSQLConfig) validate() []error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	errs = append(errs, checkAddress("postgresql.listen", p.Listen, false)...)
	errs = append(errs, checkAddress("postgresql.connect_address", p.ConnectAddress, true)...)
	switch {
	case p.DataDir == "":
		bad("postgresql.data_dir is required: set it to the PostgreSQL data directory, for example /var/lib/postgresql/15/main")
	case !filepath.IsAbs(p.DataDir):
		bad("postgresql.data_dir %q must be an absolute path", p.DataDir)
	}
	if p.RunAsUser == "" {
		bad("postgresql.run_as_user must not be empty: set it to the OS user owning the data directory")
	}
	for _, r := range []struct {
		key string
		c   Credentials
	}{{"superuser", p.Authentication.Superuser}, {"replication", p.Authentication.Replication}} {
		if r.c.Username == "" {
			bad("postgresql.authentication.%s.username must not be empty: set the role name", r.key)
		}
		if !r.c.Password.IsSet() {
			bad("postgresql.authentication.%s.password is required: give it inline (password: \"...\"), "+
				"from a file (password: {file: /path}) or from an environment variable (password: {env: NAME})", r.key)
		}
	}
	for name := range p.Parameters {
		if strings.TrimSpace(name) != name || strings.ContainsAny(name, " =#\n") {
			bad("postgresql.parameters: %q is not a parameter name; remove the spaces or punctuation", name)
		}
	}
	for i, line := range p.PgHBA {
		fields := strings.Fields(line)
		if len(fields) == 0 {
			bad("postgresql.pg_hba[%d] is empty; remove it", i)
			continue
		}
		switch fields[0] {
		case "local", "host", "hostssl", "hostnossl", "hostgssenc", "hostnogssenc",
			"include", "include_if_exists", "include_dir":
		default:
			bad("postgresql.pg_hba[%d] %q does not start with a connection type; start it with local, host, hostssl or hostnossl", i, line)
		}
	}
	return errs
}

// checkEndpoint checks an etcd URL is http(s)://host:port.
func checkEndpoint(ep string) error {
	if !strings.HasPrefix(ep, "http://") && !strings.HasPrefix(ep, "https://") {
		return errors.New("must start with http:// or https://")
	}
	u, err := url.Parse(ep)
	if err != nil {
		return errors.New("is not a URL")
	}
	if u.User != nil || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
		return errors.New("must not contain credentials, a path or a query")
	}
	host, port, err := net.SplitHostPort(u.Host)
	if err != nil || host == "" {
		return errors.New("must name a host and a port")
	}
	if _, err := parsePort(port); err != nil {
		return err
	}
	return nil
}

// checkAddress checks a host:port. A connect address is dialled by others,
// so it needs a specific host; a listen address may leave the host empty to
// listen on all interfaces.
func checkAddress(key, addr string, connect bool) []error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return []error{fmt.Errorf("%s %q is not host:port; write it like \"10.0.0.1:8008\" (IPv6 as \"[::1]:8008\")", key, addr)}
	}
	var errs []error
	if _, err := parsePort(port); err != nil {
		errs = append(errs, fmt.Errorf("%s %q: port %v", key, addr, err))
	}
	if connect && (host == "" || isUnspecified(host)) {
		errs = append(errs, fmt.Errorf("%s %q cannot be reached by other members; set %s to this host's address or name", key, addr, key))
	}
	return errs
}

func parsePort(port string) (int, error) {
	n, err := strconv.Atoi(port)
	if err != nil || n < 1 || n > 65535 {
		return 0, fmt.Errorf("%q is not a port number; use a number from 1 to 65535", port)
	}
	return n, nil
}

func isUnspecified(host string) bool {
	ip := net.ParseIP(host)
	return ip != nil && ip.IsUnspecified()
}

// portsClash reports whether two listen addresses would bind the same
// port: equal ports on equal hosts, or where either listens on all
// interfaces.
func portsClash(a, b string) bool {
	ha, pa, errA := net.SplitHostPort(a)
	hb, pb, errB := net.SplitHostPort(b)
	if errA != nil || errB != nil || pa != pb {
		return false
	}
	return ha == hb || ha == "" || hb == "" || isUnspecified(ha) || isUnspecified(hb)
}
