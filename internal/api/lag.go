package api

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/regent-ha/regent/internal/cluster"
)

// byteUnits are PostgreSQL's memory units (1024-based), matched
// case-insensitively.
var byteUnits = [...]struct {
	name string
	mult int64
}{
	{"", 1}, {"b", 1}, {"kb", 1 << 10}, {"mb", 1 << 20}, {"gb", 1 << 30}, {"tb", 1 << 40},
}

// parseBytes parses a lag limit: a byte count ("1048576") or a number with
// a PostgreSQL memory unit ("16kB", "64MB", "1GB", "1.5MB"). Units are
// 1024-based.
func parseBytes(s string) (int64, error) {
	t := strings.TrimSpace(s)
	i := 0
	for i < len(t) && (t[i] >= '0' && t[i] <= '9' || t[i] == '.') {
		i++
	}
	num, unit := t[:i], strings.TrimSpace(t[i:])
	if num == "" {
		return 0, fmt.Errorf("invalid size %q: want bytes or a number with kB, MB, GB or TB", s)
	}
	mult := int64(0)
	for _, u := range byteUnits {
		if strings.EqualFold(unit, u.name) {
			mult = u.mult
			break
		}
	}
	if mult == 0 {
		return 0, fmt.Errorf("invalid size %q: unknown unit %q (use B, kB, MB, GB or TB)", s, unit)
	}
	if !strings.Contains(num, ".") {
		n, err := strconv.ParseInt(num, 10, 64)
		if err != nil || n > math.MaxInt64/mult {
			return 0, fmt.Errorf("invalid size %q: out of range", s)
		}
		return n * mult, nil
	}
	f, err := strconv.ParseFloat(num, 64)
	if err != nil {
		return 0, fmt.Errorf("invalid size %q: %v", s, err)
	}
	v := math.Round(f * float64(mult))
	if v >= math.MaxInt64 {
		return 0, fmt.Errorf("invalid size %q: out of range", s)
	}
	return int64(v), nil
}

// leaderOptime is the best known WAL position of the leader: the status
// key's optime, the leader member's xlog_location, or what this replica has
// received, whichever is largest. 0 means unknown.
func leaderOptime(s *Snapshot) int64 {
	opt := s.ReceiveLSN
	if c := s.Cluster; c != nil {
		opt = max(opt, c.Status.Optime)
		if m := c.LeaderMember(); m != nil && m.XLogLocation != nil {
			opt = max(opt, *m.XLogLocation)
		}
	}
	return opt
}

// replayLag is how far replay trails the leader; 0 when the leader's
// position is unknown.
func replayLag(s *Snapshot) int64 {
	opt := leaderOptime(s)
	if opt == 0 {
		return 0
	}
	return opt - s.ReplayLSN
}

// tagValue renders the member's tag key as Patroni compares it in tag_<key>
// filters (cluster.Tags.TagFilterValue). ok is false for an unset tag.
func tagValue(t cluster.Tags, key string) (v string, ok bool) {
	return t.TagFilterValue(key)
}
