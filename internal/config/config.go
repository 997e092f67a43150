// Package config loads, defaults and validates a Regent member's configuration file.
package config

import (
	"strings"

	"github.com/regent-ha/regent/internal/cluster"
)

// Config is one member's configuration file. Load and Parse return it with
// defaults applied, relative paths made absolute, secrets resolved and
// validated; Default returns the defaults alone.
type Config struct {
	// Scope is the cluster name, shared by all members. Required.
	Scope string `yaml:"scope"`
	// Namespace is the DCS path under which clusters live; default "/service".
	Namespace string `yaml:"namespace"`
	// Name is this member's name, unique in the cluster; [A-Za-z0-9_.-]+. Required.
	Name string `yaml:"name"`
	// Etcd configures the connection to the DCS.
	Etcd EtcdConfig `yaml:"etcd"`
	// RestAPI configures Regent's HTTP API.
	RestAPI RestAPIConfig `yaml:"restapi"`
	// PostgreSQL configures the local PostgreSQL instance.
	PostgreSQL PostgreSQLConfig `yaml:"postgresql"`
	// Bootstrap holds what the first member writes to the DCS.
	Bootstrap BootstrapConfig `yaml:"bootstrap"`
	// Tags are this member's flags, published in its member key.
	Tags cluster.Tags `yaml:"tags"`
	// Log configures Regent's own log output.
	Log LogConfig `yaml:"log"`
	// Watchdog configures the kernel watchdog (/dev/watchdog).
	Watchdog WatchdogConfig `yaml:"watchdog"`
}

// EtcdConfig is the etcd section: where the DCS is and how to authenticate.
type EtcdConfig struct {
	// Endpoints are etcd client URLs, http(s)://host:port. Required.
	Endpoints []string `yaml:"endpoints"`
	// CACert is a PEM CA bundle used to verify etcd's certificate; optional.
	CACert string `yaml:"cacert"`
	// Cert is a PEM client certificate for etcd; optional, needs Key.
	Cert string `yaml:"cert"`
	// Key is the PEM private key of Cert; optional, needs Cert.
	Key string `yaml:"key"`
	// Username for etcd authentication; optional, needs Password.
	Username string `yaml:"username"`
	// Password for etcd authentication.
	Password Secret `yaml:"password"`
	// DialTimeout bounds establishing a connection to etcd; default 2s.
	DialTimeout Duration `yaml:"dial_timeout"`
}

// RestAPIConfig is the restapi section.
type RestAPIConfig struct {
	// Listen is the host:port the API binds; default "127.0.0.1:8008".
	Listen string `yaml:"listen"`
	// ConnectAddress is the host:port other members and clients use to reach
	// the API; default Listen.
	ConnectAddress string `yaml:"connect_address"`
	// Authentication, when set, protects the mutating endpoints (POST, PUT,
	// PATCH, DELETE) with HTTP basic authentication. Health checks and
	// other GETs stay open.
	Authentication *BasicAuth `yaml:"authentication"`
	// CertFile is a PEM server certificate (chain); setting it serves the
	// API over HTTPS and publishes an https:// api_url. Needs KeyFile.
	CertFile string `yaml:"certfile"`
	// KeyFile is the PEM private key of CertFile.
	KeyFile string `yaml:"keyfile"`
	// CAFile is a PEM CA bundle that client certificates are verified
	// against; needed by VerifyClient optional or required.
	CAFile string `yaml:"cafile"`
	// VerifyClient is none, optional (mutating requests need a client
	// certificate) or required (every connection needs one); default none.
	VerifyClient string `yaml:"verify_client"`
	// Allowlist, when not empty, lists the client addresses (IPs or CIDRs)
	// allowed to use the mutating endpoints.
	Allowlist []string `yaml:"allowlist"`
}

// BasicAuth is a user name and password for HTTP basic authentication.
type BasicAuth struct {
	// Username is the user name. Required.
	Username string `yaml:"username"`
	// Password is the password, in any Secret form. Required.
	Password Secret `yaml:"password"`
}

// PostgreSQLConfig is the postgresql section: the local instance.
type PostgreSQLConfig struct {
	// Listen is the host:port PostgreSQL binds; default "127.0.0.1:5432".
	Listen string `yaml:"listen"`
	// ConnectAddress is the host:port other members use to reach this
	// instance (replication, pg_rewind); default Listen.
	ConnectAddress string `yaml:"connect_address"`
	// DataDir is the PostgreSQL data directory. Required; absolute after
	// Load (relative paths are resolved against the file's directory).
	DataDir string `yaml:"data_dir"`
	// BinDir holds postgres, initdb, pg_ctl, pg_rewind, pg_basebackup;
	// default "" = the installed server's (the newest
	// /usr/lib/postgresql/<major>/bin, else pg_config --bindir), found
	// when the agent starts.
	BinDir string `yaml:"bin_dir"`
	// RunAsUser is the OS user that runs PostgreSQL when Regent runs as
	// root; default "postgres".
	RunAsUser string `yaml:"run_as_user"`
	// Authentication holds the superuser and replication credentials.
	Authentication Authentication `yaml:"authentication"`
	// Parameters are local postgresql.conf settings. YAML numbers and
	// booleans are kept as written, as strings.
	Parameters map[string]string `yaml:"parameters"`
	// PgHBA are the pg_hba.conf lines; a sensible scram-sha-256 set when empty.
	PgHBA []string `yaml:"pg_hba"`
	// Callbacks are scripts run on lifecycle events (package callback).
	Callbacks CallbacksConfig `yaml:"callbacks"`
	// CallbackTimeout bounds one callback run; default 1m.
	CallbackTimeout Duration `yaml:"callback_timeout"`
	// PrePromote is run before PostgreSQL is promoted, once this member
	// holds the leader key; a non-zero exit (or running out of the time
	// the lease leaves) aborts the promotion and releases the key.
	PrePromote string `yaml:"pre_promote"`
	// BeforeStop is run before the agent stops PostgreSQL (not before a
	// fence), bounded by retry_timeout; its result is only logged.
	BeforeStop string `yaml:"before_stop"`
}

// CallbacksConfig is Patroni's postgresql.callbacks section: each script is
// run as `<command> <action> <role> <scope>` in the background.
type CallbacksConfig struct {
	OnStart      string `yaml:"on_start"`
	OnStop       string `yaml:"on_stop"`
	OnRestart    string `yaml:"on_restart"`
	OnReload     string `yaml:"on_reload"`
	OnRoleChange string `yaml:"on_role_change"`
}

// Authentication holds the database roles Regent uses.
type Authentication struct {
	// Superuser is the role Regent connects as; default username "postgres".
	Superuser Credentials `yaml:"superuser"`
	// Replication is the role replicas stream with; default username "replicator".
	Replication Credentials `yaml:"replication"`
}

// Credentials are a database role's name and password.
type Credentials struct {
	// Username is the role name.
	Username string `yaml:"username"`
	// Password is the role's password. Required.
	Password Secret `yaml:"password"`
}

// BootstrapConfig is what the first member seeds the DCS with.
type BootstrapConfig struct {
	// DCS is the initial dynamic configuration. Defaults come from
	// cluster.DefaultDynamicConfig; keys in the file override single fields.
	DCS cluster.DynamicConfig `yaml:"dcs"`
}

// LogConfig configures Regent's own logging.
type LogConfig struct {
	// Level is debug, info, warn or error; default info.
	Level string `yaml:"level"`
	// Format is text or json; default text.
	Format string `yaml:"format"`
}

// Prefix is the DCS key prefix of the cluster, "/<namespace>/<scope>/",
// with duplicate slashes collapsed: namespace "/service" and scope "demo"
// give "/service/demo/".
func (c *Config) Prefix() string {
	p := "/" + c.Namespace + "/" + c.Scope + "/"
	for strings.Contains(p, "//") {
		p = strings.ReplaceAll(p, "//", "/")
	}
	return p
}

// APIURL is the URL other members use for this member's REST API, as
// published in the member key's api_url.
func (c *Config) APIURL() string {
	return c.RestAPI.Scheme() + "://" + c.RestAPI.ConnectAddress + "/patroni"
}

// ConnURL is the URL other members use to reach this member's PostgreSQL,
// as published in the member key's conn_url.
func (c *Config) ConnURL() string {
	return "postgres://" + c.PostgreSQL.ConnectAddress + "/postgres"
}

// WatchdogConfig configures the kernel watchdog that resets a leader whose
// agent stalls. Without a device, the agent's fence process is the backstop.
type WatchdogConfig struct {
	// Mode is off, automatic (use the device when it can be opened) or
	// required (never lead without it). Default automatic.
	Mode string `yaml:"mode"`
	// Device is the watchdog device, default /dev/watchdog.
	Device string `yaml:"device"`
}
