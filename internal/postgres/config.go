package postgres

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// managedHeader starts every configuration file Regent owns.
const managedHeader = "# Managed by Regent; edits are overwritten."

const (
	confFile     = "postgresql.conf"
	baseConfFile = "postgresql.base.conf"
	hbaFile      = "pg_hba.conf"
	baseHBAFile  = "pg_hba.base.conf"
	standbySig   = "standby.signal"
	primaryPass  = "primary.pgpass"
)

// gucName matches valid configuration parameter names (including custom
// "extension.name" ones).
var gucName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_$]*(\.[A-Za-z_][A-Za-z0-9_$]*)*$`)

// protectedParameters are set by Regent from Options and its own state;
// values for them in Options.Parameters are ignored, since a different
// value would break Regent's connection to the server or replication.
var protectedParameters = map[string]bool{
	"listen_addresses":        true,
	"port":                    true,
	"unix_socket_directories": true,
	"data_directory":          true,
	"config_file":             true,
	"hba_file":                true,
	"ident_file":              true,
	"primary_conninfo":        true,
	"primary_slot_name":       true,
}

// defaultHBA is written when Options.PgHBA is empty.
var defaultHBA = []string{
	"local all all scram-sha-256",
	"host all all 127.0.0.1/32 scram-sha-256",
	"host all all ::1/128 scram-sha-256",
	"host replication all 127.0.0.1/32 scram-sha-256",
	"host replication all ::1/128 scram-sha-256",
}

// quoteGUC quotes a value for postgresql.conf: single quotes, with quotes
// doubled and backslashes and control characters escaped.
func quoteGUC(v string) string {
	var b strings.Builder
	b.WriteByte('\'')
	for _, r := range v {
		switch r {
		case '\'':
			b.WriteString("''")
		case '\\':
			b.WriteString(`\\`)
		case '\n':
			b.WriteString(`\n`)
		case '\r':
			b.WriteString(`\r`)
		case '\t':
			b.WriteString(`\t`)
		case '\b':
			b.WriteString(`\b`)
		case '\f':
			b.WriteString(`\f`)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('\'')
	return b.String()
}

// renderedConfig is the content of the files Regent owns in the data
// directory.
type renderedConfig struct {
	conf     []byte
	hba      []byte
	passfile []byte // nil: no password for the primary connection
}

// primaryPassfile is where the password of primary_conninfo is kept.
func (i *Instance) primaryPassfile() string { return filepath.Join(i.runDir, primaryPass) }

// renderConfig builds postgresql.conf and pg_hba.conf for the current
// primary settings.
func (i *Instance) renderConfig() (renderedConfig, error) {
	i.mu.Lock()
	primConn, primSlot, params, syncNames, syncQuorum := i.primConn, i.primSlot, i.opts.Parameters, i.syncNames, i.syncQuorum
	i.mu.Unlock()

	var b bytes.Buffer
	set := func(k, v string) { fmt.Fprintf(&b, "%s = %s\n", k, quoteGUC(v)) }
	b.WriteString(managedHeader + "\n")
	b.WriteString("# The configuration initdb wrote; Regent's settings below override it.\n")
	b.WriteString("include " + quoteGUC(baseConfFile) + "\n\n")
	set("listen_addresses", i.listenH)
	set("port", strconv.Itoa(i.listenP))
	set("unix_socket_directories", i.runDir)
	set("wal_level", "replica")
	set("hot_standby", "on")
	set("max_wal_senders", "10")
	set("max_replication_slots", "10")
	set("wal_log_hints", "on")
	set("wal_keep_size", "128MB")
	// A standby whose upstream is not there yet (a new leader still
	// promoting, a slot about to be created) retries every second rather
	// than every 5 s, so it streams again well before the agent would
	// judge it not streaming (ttl) and stop it to rejoin. The parameters
	// below may override it.
	set("wal_retrieve_retry_interval", "1s")
	set("password_encryption", "scram-sha-256")
	set("synchronous_standby_names", syncStandbyNames(syncNames, syncQuorum))

	if len(params) > 0 {
		b.WriteString("\n# Parameters from the Regent configuration.\n")
		names := make([]string, 0, len(params))
		for k := range params {
			if !protectedParameters[strings.ToLower(k)] {
				names = append(names, k)
			}
		}
		sort.Strings(names)
		for _, k := range names {
			set(k, params[k])
		}
	}

	var out renderedConfig
	if primConn != "" {
		conn, pw, err := i.primaryConnString(primConn)
		if err != nil {
			return out, err
		}
		b.WriteString("\n# Following a primary.\n")
		set("primary_conninfo", conn)
		if primSlot != "" {
			set("primary_slot_name", primSlot)
		}
		set("recovery_target_timeline", "latest")
		if pw != "" {
			out.passfile = []byte(pgpassLine(pw))
		}
	}
	out.conf = b.Bytes()

	hba, _, _ := i.Access()
	if len(hba) == 0 {
		hba = defaultHBA
	}
	var h bytes.Buffer
	h.WriteString(managedHeader + "\n")
	for _, l := range hba {
		if strings.ContainsAny(l, "\n\r") {
			return out, fmt.Errorf("pg_hba line %q contains a newline", l)
		}
		h.WriteString(l + "\n")
	}
	out.hba = h.Bytes()
	return out, nil
}

// primaryConnString prepares primary_conninfo: the password is moved into
// the primary passfile (referenced with passfile=), and application_name
// is added when missing. It returns the connection string and the
// password.
func (i *Instance) primaryConnString(s string) (string, string, error) {
	conn, pw, err := rewriteConnString(s, func(kv []connParam) []connParam {
		hasApp, hasPW := false, false
		res := kv[:0]
		for _, p := range kv {
			switch p.key {
			case "application_name":
				hasApp = true
			case "password":
				hasPW = true
				continue
			case "passfile":
				continue
			}
			res = append(res, p)
		}
		if !hasApp && i.opts.ApplicationName != "" {
			res = append(res, connParam{"application_name", i.opts.ApplicationName})
		}
		if hasPW {
			res = append(res, connParam{"passfile", i.primaryPassfile()})
		}
		return res
	})
	if err != nil {
		return "", "", fmt.Errorf("primary_conninfo: %w", err)
	}
	return conn, pw, nil
}

// ensureBaseConf makes sure postgresql.base.conf exists: the configuration
// initdb (or the source of a copy) wrote is moved there, unless
// postgresql.conf is already Regent's.
func (i *Instance) ensureBaseConf() error {
	base := filepath.Join(i.dataDir, baseConfFile)
	if _, err := os.Stat(base); err == nil {
		return nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("stat %s: %w", base, err)
	}
	conf := filepath.Join(i.dataDir, confFile)
	data, err := os.ReadFile(conf)
	switch {
	case err == nil && !bytes.HasPrefix(data, []byte(managedHeader)):
		if err := os.Rename(conf, base); err != nil {
			return fmt.Errorf("keep original configuration: %w", err)
		}
		i.log.Info("moved original configuration aside", "file", base)
		return nil
	case err != nil && !errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("read %s: %w", conf, err)
	}
	_, err = i.writeFileAtomic(base, []byte("# Base configuration (none was found).\n"))
	return err
}

// keepUserHBA moves a pg_hba.conf that Regent did not write (a standalone
// cluster being adopted, initdb's) to pg_hba.base.conf before Regent's
// replaces it, once: the user's rules are kept and can be put back, but
// are no longer in effect (the rules come from postgresql.pg_hba, or
// Regent's defaults). PostgreSQL 15 cannot include another hba file.
func (i *Instance) keepUserHBA() error {
	hba := filepath.Join(i.dataDir, hbaFile)
	data, err := os.ReadFile(hba)
	if errors.Is(err, fs.ErrNotExist) || (err == nil && bytes.HasPrefix(data, []byte(managedHeader))) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read %s: %w", hba, err)
	}
	base := filepath.Join(i.dataDir, baseHBAFile)
	if _, err := os.Stat(base); err == nil {
		return nil // kept earlier; this one is not the user's original
	} else if !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("stat %s: %w", base, err)
	}
	if err := os.Rename(hba, base); err != nil {
		return fmt.Errorf("keep original pg_hba.conf: %w", err)
	}
	i.log.Info("moved the original pg_hba.conf aside: its rules are no longer in effect; Regent writes pg_hba.conf from postgresql.pg_hba (or its defaults)",
		"file", base)
	return nil
}

// writeConfig writes postgresql.conf, pg_hba.conf and the primary passfile
// for the current settings. It reports whether postgresql.conf or the
// passfile changed (pg_hba.conf changes are also reported).
func (i *Instance) writeConfig() (bool, error) {
	rc, err := i.renderConfig()
	if err != nil {
		return false, err
	}
	if err := i.ensureRunDir(); err != nil {
		return false, err
	}
	if err := i.ensureBaseConf(); err != nil {
		return false, err
	}
	if err := i.keepUserHBA(); err != nil {
		return false, err
	}
	changed := false
	pf := i.primaryPassfile()
	if rc.passfile != nil {
		c, err := i.writeFileAtomic(pf, rc.passfile)
		if err != nil {
			return false, err
		}
		changed = changed || c
	} else if err := os.Remove(pf); err == nil {
		changed = true
	} else if !errors.Is(err, fs.ErrNotExist) {
		return false, fmt.Errorf("remove %s: %w", pf, err)
	}
	c, err := i.writeFileAtomic(filepath.Join(i.dataDir, hbaFile), rc.hba)
	if err != nil {
		return false, err
	}
	changed = changed || c
	c, err = i.writeFileAtomic(filepath.Join(i.dataDir, confFile), rc.conf)
	if err != nil {
		return false, err
	}
	changed = changed || c
	if changed {
		i.log.Info("wrote configuration", "file", filepath.Join(i.dataDir, confFile))
	}
	return changed, nil
}

// setStandbySignal creates or removes standby.signal.
func (i *Instance) setStandbySignal(standby bool) error {
	p := filepath.Join(i.dataDir, standbySig)
	if standby {
		_, err := i.writeFileAtomic(p, nil)
		return err
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove %s: %w", p, err)
	}
	return nil
}
