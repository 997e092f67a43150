package config

import (
	"time"

	"github.com/regent-ha/regent/internal/cluster"
)

// Default returns a configuration holding every default value. It is not
// valid on its own: scope, name, etcd.endpoints, postgresql.data_dir and the
// passwords have no defaults.
func Default() Config {
	c := baseDefaults()
	c.applyDerivedDefaults()
	return c
}

// baseDefaults are the defaults that do not depend on other fields. Load
// decodes the file over them.
func baseDefaults() Config {
	return Config{
		Namespace: "/service",
		Etcd: EtcdConfig{
			DialTimeout: Duration(2 * time.Second),
		},
		RestAPI: RestAPIConfig{
			Listen:       "127.0.0.1:8008",
			VerifyClient: VerifyClientNone,
		},
		PostgreSQL: PostgreSQLConfig{
			Listen:    "127.0.0.1:5432",
			RunAsUser: "postgres",
			Authentication: Authentication{
				Superuser:   Credentials{Username: "postgres"},
				Replication: Credentials{Username: "replicator"},
			},
		},
		Bootstrap: BootstrapConfig{
			DCS: cluster.DefaultDynamicConfig(),
		},
		Log: LogConfig{
			Level:  "info",
			Format: "text",
		},
		Watchdog: WatchdogConfig{Mode: "automatic", Device: "/dev/watchdog"},
	}
}

// applyDerivedDefaults fills the defaults that follow from other fields, once
// the file has been decoded: connect addresses default to the listen
// addresses, and an empty pg_hba gets the default lines.
func (c *Config) applyDerivedDefaults() {
	if c.RestAPI.ConnectAddress == "" {
		c.RestAPI.ConnectAddress = c.RestAPI.Listen
	}
	if c.PostgreSQL.ConnectAddress == "" {
		c.PostgreSQL.ConnectAddress = c.PostgreSQL.Listen
	}
	if len(c.PostgreSQL.PgHBA) == 0 {
		c.PostgreSQL.PgHBA = []string{
			"local all all scram-sha-256",
			"host all all 127.0.0.1/32 scram-sha-256",
			"host all all ::1/128 scram-sha-256",
			"host replication all 127.0.0.1/32 scram-sha-256",
			"host replication all ::1/128 scram-sha-256",
			"host all all 0.0.0.0/0 scram-sha-256",
			"host replication all 0.0.0.0/0 scram-sha-256",
		}
	}
}
