package postgres

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// syncStandbyNames renders synchronous_standby_names for exactly names:
// "" (asynchronous), "*" (any standby) or FIRST n ("a","b") with n the
// number of names, so that PostgreSQL never falls back to a standby that is
// not listed.
func syncStandbyNames(names []string) string {
	switch {
	case len(names) == 0:
		return ""
	case len(names) == 1 && names[0] == "*":
		return "*"
	}
	quoted := make([]string, len(names))
	for i, n := range names {
		quoted[i] = `"` + strings.ReplaceAll(n, `"`, `""`) + `"`
	}
	return "FIRST " + strconv.Itoa(len(names)) + " (" + strings.Join(quoted, ",") + ")"
}

// ParseSyncStandbyNames returns the standby names of a
// synchronous_standby_names value ("*" stays "*"), ignoring the FIRST/ANY
// method and count.
func ParseSyncStandbyNames(s string) []string {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil
	}
	if open := strings.Index(s, "("); open >= 0 && strings.HasSuffix(s, ")") {
		s = s[open+1 : len(s)-1]
	}
	var out []string
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if len(part) >= 2 && part[0] == '"' && part[len(part)-1] == '"' {
			part = strings.ReplaceAll(part[1:len(part)-1], `""`, `"`)
		}
		if part != "" {
			out = append(out, part)
		}
	}
	return out
}

// SetSyncStandbys makes PostgreSQL wait for exactly names on every commit
// (see syncStandbyNames) and reloads it when the setting changed.
func (i *Instance) SetSyncStandbys(ctx context.Context, names []string) error {
	i.mu.Lock()
	same := slices.Equal(i.syncNames, names)
	i.syncNames = slices.Clone(names)
	i.mu.Unlock()
	if _, running := i.Running(); same || !running {
		return nil // unchanged, or written at the next start
	}
	return i.Reload(ctx)
}

// managedSyncNames reads synchronous_standby_names back from the
// postgresql.conf Regent wrote, so a restarted agent keeps what a running
// primary enforces instead of rewriting it empty (which would let commits
// be acknowledged asynchronously while the sync key still names standbys).
func managedSyncNames(dataDir string) []string {
	b, err := os.ReadFile(filepath.Join(dataDir, confFile))
	if err != nil || !strings.HasPrefix(string(b), managedHeader) {
		return nil
	}
	for _, line := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(line, "=")
		if !ok || strings.TrimSpace(k) != "synchronous_standby_names" {
			continue
		}
		v = strings.TrimSpace(v)
		if len(v) >= 2 && v[0] == '\'' && v[len(v)-1] == '\'' {
			v = strings.ReplaceAll(v[1:len(v)-1], "''", "'")
		}
		return ParseSyncStandbyNames(v)
	}
	return nil
}
