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
// "" (asynchronous), "*" (any standby), ANY anyK ("a","b") when anyK > 0
// (quorum commit: any anyK of the names), or else FIRST n ("a","b") with n
// the number of names, so that PostgreSQL never falls back to a standby
// that is not listed.
func syncStandbyNames(names []string, anyK int) string {
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
	if anyK > 0 {
		return "ANY " + strconv.Itoa(anyK) + " (" + strings.Join(quoted, ",") + ")"
	}
	return "FIRST " + strconv.Itoa(len(names)) + " (" + strings.Join(quoted, ",") + ")"
}

// ParseSyncStandbyQuorum returns k when a synchronous_standby_names value
// is ANY k (...) (quorum commit), and 0 for FIRST n (...), a plain list,
// "*" or "".
func ParseSyncStandbyQuorum(s string) int {
	method, rest, ok := strings.Cut(strings.TrimSpace(s), " ")
	if !ok || !strings.EqualFold(method, "ANY") {
		return 0
	}
	num, _, _ := strings.Cut(strings.TrimSpace(rest), "(")
	k, err := strconv.Atoi(strings.TrimSpace(num))
	if err != nil || k < 0 {
		return 0
	}
	return k
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

// SetSyncStandbys makes PostgreSQL wait for exactly names on every commit,
// all of them or, with anyK > 0, any anyK of them (see syncStandbyNames),
// and reloads it when the setting changed.
func (i *Instance) SetSyncStandbys(ctx context.Context, names []string, anyK int) error {
	i.mu.Lock()
	same := slices.Equal(i.syncNames, names) && i.syncQuorum == anyK
	i.syncNames, i.syncQuorum = slices.Clone(names), anyK
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
// anyK is the k of ANY k (...), 0 otherwise.
func managedSyncNames(dataDir string) (names []string, anyK int) {
	b, err := os.ReadFile(filepath.Join(dataDir, confFile))
	if err != nil || !strings.HasPrefix(string(b), managedHeader) {
		return nil, 0
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
		return ParseSyncStandbyNames(v), ParseSyncStandbyQuorum(v)
	}
	return nil, 0
}
