package api

import (
	"encoding/json"
	"time"

	"github.com/regent-ha/regent/internal/cluster"
)

// pgTimeLayout is how Patroni prints PostgreSQL timestamps (Python's str of
// an aware datetime).
const pgTimeLayout = "2006-01-02 15:04:05.000000-07:00"

// statusJSON is the /patroni body, field for field as Patroni writes it,
// plus Regent's "regent" object.
type statusJSON struct {
	State                    string        `json:"state"`
	PostmasterStartTime      string        `json:"postmaster_start_time,omitempty"`
	Role                     string        `json:"role"`
	ServerVersion            int           `json:"server_version,omitempty"`
	XLog                     any           `json:"xlog,omitempty"`
	SyncStandby              bool          `json:"sync_standby,omitempty"`
	QuorumStandby            bool          `json:"quorum_standby,omitempty"`
	Timeline                 int           `json:"timeline,omitempty"`
	ReplicationState         string        `json:"replication_state,omitempty"`
	Replication              []Replica     `json:"replication,omitempty"`
	Pause                    bool          `json:"pause,omitempty"`
	ClusterUnlocked          bool          `json:"cluster_unlocked,omitempty"`
	DCSLastSeen              int64         `json:"dcs_last_seen"`
	Tags                     *cluster.Tags `json:"tags,omitempty"`
	DatabaseSystemIdentifier string        `json:"database_system_identifier,omitempty"`
	Patroni                  patroniJSON   `json:"patroni"`
	Regent                   regentJSON    `json:"regent"`
}

type primaryXLog struct {
	Location int64 `json:"location"`
}

type replicaXLog struct {
	ReceivedLocation  int64   `json:"received_location"`
	ReplayedLocation  int64   `json:"replayed_location"`
	ReplayedTimestamp *string `json:"replayed_timestamp"`
	Paused            bool    `json:"paused"`
}

type patroniJSON struct {
	Version string `json:"version"`
	Scope   string `json:"scope"`
	Name    string `json:"name"`
}

type regentJSON struct {
	Action         string `json:"action"`
	Reason         string `json:"reason"`
	HoldsLeaderKey bool   `json:"holds_leader_key"`
	// ConfigProblem is why the config key of the last DCS view cannot be
	// used (cluster.Cluster.ConfigProblem); the member runs with its
	// current configuration meanwhile.
	ConfigProblem string `json:"config_problem,omitempty"`
}

// encodeStatus renders the /patroni body of s. As in Patroni, the
// PostgreSQL details (xlog, timeline, ...) appear only while it runs.
func encodeStatus(s *Snapshot) []byte {
	out := statusJSON{
		State:                    orDefault(s.State, "unknown"),
		Role:                     orDefault(s.Role, cluster.RoleUninitialized),
		Pause:                    s.Pause,
		ClusterUnlocked:          s.Cluster.LeaderName() == "",
		Patroni:                  patroniJSON{Version: s.Version, Scope: s.Scope, Name: s.Name},
		Regent:                   regentJSON{Action: s.Action, Reason: s.Reason, HoldsLeaderKey: s.HoldsLeaderKey},
		DatabaseSystemIdentifier: s.SystemIdentifier,
	}
	if !s.DCSLastSeen.IsZero() {
		out.DCSLastSeen = s.DCSLastSeen.Unix()
	}
	if s.Cluster != nil {
		out.Regent.ConfigProblem = s.Cluster.ConfigProblem
	}
	if tagsSet(s.Tags) {
		t := s.Tags
		out.Tags = &t
	}
	if s.State == cluster.StateRunning {
		out.PostmasterStartTime = formatPGTime(s.PostmasterStartTime)
		out.ServerVersion = s.ServerVersion
		out.Timeline = s.Timeline
		out.ReplicationState = s.ReplicationState
		out.Replication = s.Replication
		if s.Role == cluster.RolePrimary {
			out.XLog = primaryXLog{Location: s.XLogLocation}
		} else {
			x := replicaXLog{ReceivedLocation: s.ReceiveLSN, ReplayedLocation: s.ReplayLSN}
			if x.ReceivedLocation == 0 {
				x.ReceivedLocation = s.ReplayLSN
			}
			if s.ReplayedTimestamp != nil && !s.ReplayedTimestamp.IsZero() {
				ts := s.ReplayedTimestamp.Format(pgTimeLayout)
				x.ReplayedTimestamp = &ts
			}
			out.XLog = x
			// As Patroni: only a replica can be a sync or quorum standby.
			out.SyncStandby = s.Role == cluster.RoleReplica && s.SyncStandby
			out.QuorumStandby = s.Role == cluster.RoleReplica && s.QuorumStandby
		}
	}
	b, err := json.Marshal(out)
	if err != nil {
		// Cannot happen for these types; keep the endpoint answering.
		return []byte(`{"state":"unknown","role":"uninitialized"}`)
	}
	return b
}

func formatPGTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.Format(pgTimeLayout)
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// tagsSet reports whether any tag is set.
func tagsSet(t cluster.Tags) bool { return !t.IsZero() }
