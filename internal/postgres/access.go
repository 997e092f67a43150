package postgres

import (
	"fmt"
	"slices"
	"strings"
)

// SetAccess replaces the pg_hba.conf lines and the credentials Regent
// uses, as a reload of the member file does. Nothing is written or
// reloaded here: Reload writes pg_hba.conf and makes the server reread it;
// new connections use the new credentials at once (open ones stay as they
// are). A line with a newline is refused and nothing changes.
func (i *Instance) SetAccess(hba []string, superuser, replication Credentials) error {
	for _, l := range hba {
		if strings.ContainsAny(l, "\n\r") {
			return fmt.Errorf("pg_hba line %q contains a newline", l)
		}
	}
	if superuser.Username == "" {
		superuser.Username = "postgres"
	}
	i.mu.Lock()
	defer i.mu.Unlock()
	i.opts.PgHBA = slices.Clone(hba)
	i.opts.Superuser = superuser
	i.opts.Replication = replication
	return nil
}

// Access returns the pg_hba lines and credentials in use.
func (i *Instance) Access() (hba []string, superuser, replication Credentials) {
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.opts.PgHBA, i.opts.Superuser, i.opts.Replication
}
