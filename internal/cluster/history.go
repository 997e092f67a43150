package cluster

import (
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"
)

// MarshalJSON encodes the entry as Patroni's history line
// [timeline, switch_lsn, reason, timestamp, new_leader].
func (h HistoryEntry) MarshalJSON() ([]byte, error) {
	ts := ""
	if !h.Time.IsZero() {
		ts = h.Time.Format("2006-01-02T15:04:05.000000-07:00")
	}
	return json.Marshal([]any{h.Timeline, h.SwitchLSN, h.Reason, ts, h.NewLeader})
}

// UnmarshalJSON accepts lines of three to five elements.
func (h *HistoryEntry) UnmarshalJSON(b []byte) error {
	var raw []json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	if len(raw) < 3 {
		return fmt.Errorf("history line has %d elements, want at least 3", len(raw))
	}
	if err := json.Unmarshal(raw[0], &h.Timeline); err != nil {
		return fmt.Errorf("history timeline: %w", err)
	}
	if err := json.Unmarshal(raw[1], &h.SwitchLSN); err != nil {
		return fmt.Errorf("history lsn: %w", err)
	}
	_ = json.Unmarshal(raw[2], &h.Reason)
	if len(raw) > 3 {
		var ts string
		if json.Unmarshal(raw[3], &ts) == nil && ts != "" {
			for _, layout := range []string{"2006-01-02T15:04:05.999999-07:00", time.RFC3339Nano} {
				if t, err := time.Parse(layout, ts); err == nil {
					h.Time = t
					break
				}
			}
		}
	}
	if len(raw) > 4 {
		_ = json.Unmarshal(raw[4], &h.NewLeader)
	}
	return nil
}

// ParseLSN parses PostgreSQL's X/Y notation.
func ParseLSN(s string) (int64, error) {
	hi, lo, ok := strings.Cut(strings.TrimSpace(s), "/")
	if !ok {
		return 0, fmt.Errorf("invalid LSN %q", s)
	}
	h, err := strconv.ParseUint(hi, 16, 32)
	if err != nil {
		return 0, fmt.Errorf("invalid LSN %q: %w", s, err)
	}
	l, err := strconv.ParseUint(lo, 16, 32)
	if err != nil {
		return 0, fmt.Errorf("invalid LSN %q: %w", s, err)
	}
	return int64(h<<32 | l), nil
}

// syncJSON is the sync key's JSON form, as Patroni writes it:
// {"leader":"n1","sync_standby":"n2,n3","quorum":0}.
type syncJSON struct {
	Leader      string  `json:"leader"`
	SyncStandby *string `json:"sync_standby"`
	Quorum      int     `json:"quorum,omitempty"`
}

// MarshalJSON encodes the sync key with sorted, comma-joined members.
func (s SyncState) MarshalJSON() ([]byte, error) {
	v := syncJSON{Leader: s.Leader, Quorum: s.Quorum}
	if len(s.Members) > 0 {
		members := append([]string(nil), s.Members...)
		sort.Strings(members)
		joined := strings.Join(members, ",")
		v.SyncStandby = &joined
	}
	return json.Marshal(v)
}

// UnmarshalJSON decodes the sync key.
func (s *SyncState) UnmarshalJSON(b []byte) error {
	var v syncJSON
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	s.Leader = v.Leader
	s.Quorum = v.Quorum
	s.Members = nil
	if v.SyncStandby != nil {
		for _, m := range strings.Split(*v.SyncStandby, ",") {
			if m = strings.TrimSpace(m); m != "" {
				s.Members = append(s.Members, m)
			}
		}
	}
	return nil
}
