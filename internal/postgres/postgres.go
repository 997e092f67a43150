// Package postgres runs, inspects and reconfigures the local PostgreSQL instance of a Regent member.
//
// An Instance controls exactly one data directory. It starts the postmaster
// directly (not through pg_ctl) as a child process, so a crash is noticed at
// once through Exited, and it can adopt a postmaster left running by a
// previous agent through the data directory's postmaster.pid. When Regent
// runs as root, every PostgreSQL binary is run as an unprivileged OS user
// (Options.RunAsUser, "postgres" by default).
//
// Lifecycle methods (InitDB, BaseBackup, Rewind, Start, SetPrimary) are meant
// to be called by one goroutine at a time; Stop, Running, Exited and the
// query methods may be called concurrently with them.
package postgres

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"sync"

	"github.com/regent-ha/regent/internal/cluster"
)

// Credentials are a PostgreSQL role name and its password.
type Credentials struct {
	Username string
	Password string
}

// Options configure an Instance.
type Options struct {
	// BinDir holds the PostgreSQL server binaries; "" = the directory
	// FindBinDir finds (logged, with where it came from).
	BinDir string
	// DataDir is the data directory. Regent also uses the sibling directory
	// DataDir+".run" for sockets, the server log and password files.
	DataDir string
	// Listen is the host:port PostgreSQL listens on (listen_addresses=host,
	// port=port). Regent connects to it over TCP.
	Listen string
	// RunAsUser is the OS user PostgreSQL runs as when Regent runs as root;
	// default "postgres". Ignored when not root.
	RunAsUser string
	// Superuser is the bootstrap superuser Regent connects as.
	Superuser Credentials
	// Replication is the role replicas stream with.
	Replication Credentials
	// Parameters are extra GUCs, already merged by the caller. They override
	// Regent's defaults, except the few Regent must control itself (see
	// protectedParameters).
	Parameters map[string]string
	// PgHBA are the lines of pg_hba.conf. When empty a default allowing
	// scram-sha-256 authentication from the loopback addresses and the local
	// socket is written.
	PgHBA []string
	// Logger receives structured logs; default slog.Default().
	Logger *slog.Logger
	// ApplicationName is the member name: used as application_name in
	// primary_conninfo and as the base of its slot name.
	ApplicationName string
}

// Instance controls one local PostgreSQL data directory.
type Instance struct {
	opts     Options
	log      *slog.Logger
	run      runUser
	dataDir  string // absolute, cleaned
	runDir   string // dataDir + ".run"
	listenH  string // host part of Listen
	listenP  int    // port part of Listen
	connectH string // host Regent connects to
	exited   chan struct{}
	pool     *connPool

	mu       sync.Mutex
	child    *child
	primConn string // primary_conninfo as given by the caller
	primSlot string // primary_slot_name
	// syncNames are the synchronous standbys ("*" = any; nil = none).
	syncNames []string
	// syncQuorum is k of ANY k (syncNames); 0 for FIRST n.
	syncQuorum int
}

// New validates the options and returns an Instance. It does not touch the
// data directory.
func New(o Options) (*Instance, error) {
	binDir, binReason, err := ResolveBinDir(o.BinDir)
	if err != nil {
		return nil, err
	}
	o.BinDir = binDir
	if o.DataDir == "" {
		return nil, errors.New("postgres: data_dir is empty")
	}
	dd, err := filepath.Abs(o.DataDir)
	if err != nil {
		return nil, fmt.Errorf("postgres: data_dir %q: %w", o.DataDir, err)
	}
	dd = filepath.Clean(dd)
	if dd == "/" {
		return nil, errors.New("postgres: data_dir must not be /")
	}
	host, port, err := ParseHostPort(o.Listen)
	if err != nil {
		return nil, fmt.Errorf("postgres: listen: %w", err)
	}
	if host == "" {
		return nil, fmt.Errorf("postgres: listen %q has no host", o.Listen)
	}
	if o.Superuser.Username == "" {
		o.Superuser.Username = "postgres"
	}
	if o.RunAsUser == "" {
		o.RunAsUser = "postgres"
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	for name := range o.Parameters {
		if !gucName.MatchString(name) {
			return nil, fmt.Errorf("postgres: invalid parameter name %q", name)
		}
	}
	ru, err := resolveRunUser(o.RunAsUser)
	if err != nil {
		return nil, err
	}
	i := &Instance{
		opts:     o,
		log:      o.Logger.With("component", "postgres", "data_dir", dd),
		run:      ru,
		dataDir:  dd,
		runDir:   dd + ".run",
		listenH:  host,
		listenP:  port,
		connectH: connectHost(host),
		exited:   make(chan struct{}, 1),
	}
	i.log.Info("using PostgreSQL server binaries", "bin_dir", binDir, "reason", binReason)
	for name := range o.Parameters {
		if protectedParameters[strings.ToLower(name)] {
			i.log.Warn("ignoring parameter that Regent controls itself", "parameter", name)
		}
	}
	i.syncNames, i.syncQuorum = managedSyncNames(dd)
	i.pool = newConnPool(2, i.connect)
	return i, nil
}

// connectHost is the address Regent dials to reach a server listening on
// host: wildcard addresses are replaced by the matching loopback address.
func connectHost(host string) string {
	switch host {
	case "*", "0.0.0.0":
		return "127.0.0.1"
	case "::":
		return "::1"
	}
	if strings.Contains(host, ",") { // a list: use the first address
		return connectHost(strings.TrimSpace(strings.Split(host, ",")[0]))
	}
	return host
}

// DataDir returns the absolute data directory path.
func (i *Instance) DataDir() string { return i.dataDir }

// RunDir returns the directory holding the sockets, the server log and
// password files: DataDir + ".run".
func (i *Instance) RunDir() string { return i.runDir }

// LogFile returns the path of the server log PostgreSQL's stderr is
// appended to.
func (i *Instance) LogFile() string { return filepath.Join(i.runDir, "postgresql.log") }

// Close closes pooled connections. The Instance stays usable: later
// queries open new connections. Close does not stop PostgreSQL.
func (i *Instance) Close() { i.pool.reset() }

// SlotName converts a member name into a valid replication slot name
// (cluster.SlotName).
func SlotName(member string) string { return cluster.SlotName(member) }

// ParseHostPort splits "host:port" (IPv6 hosts in brackets) and validates
// the port.
func ParseHostPort(s string) (host string, port int, err error) {
	h, p, err := net.SplitHostPort(strings.TrimSpace(s))
	if err != nil {
		return "", 0, fmt.Errorf("invalid host:port %q: %w", s, err)
	}
	n, err := parsePort(p)
	if err != nil {
		return "", 0, fmt.Errorf("invalid host:port %q: %w", s, err)
	}
	return h, n, nil
}

func parsePort(p string) (int, error) {
	n := 0
	if p == "" || len(p) > 5 {
		return 0, fmt.Errorf("invalid port %q", p)
	}
	for _, c := range p {
		if c < '0' || c > '9' {
			return 0, fmt.Errorf("invalid port %q", p)
		}
		n = n*10 + int(c-'0')
	}
	if n < 1 || n > 65535 {
		return 0, fmt.Errorf("port %d out of range", n)
	}
	return n, nil
}
