// Package cluster defines the cluster state Regent keeps in the DCS — members,
// the leader key, the dynamic configuration, status and history — as plain
// data shared by the HA core, the etcd adapter, the REST API and the CLI.
// It performs no I/O. JSON shapes follow Patroni's, so existing tooling that
// reads the keys keeps working.
package cluster

import (
	"sort"
	"strconv"
	"strings"
	"time"
)

// Roles a member reports in its member key and REST API.
const (
	RolePrimary       = "primary"
	RoleReplica       = "replica"
	RoleUninitialized = "uninitialized"
)

// PostgreSQL states a member reports, as in Patroni's member value.
const (
	StateRunning         = "running"
	StateStarting        = "starting"
	StateStopped         = "stopped"
	StateStopping        = "stopping"
	StateCrashed         = "crashed"
	StateInitializing    = "initializing new cluster"
	StateCreatingReplica = "creating replica"
	StateRewinding       = "rewinding"
	StateRewindFailed    = "rewind failed"
	// StateNeedsReinit: a rejoin step failed in a way retrying cannot fix
	// (Member.NeedsReinit says why); an operator must run `regent reinit`.
	StateNeedsReinit = "needs reinit"
	StateStartFailed = "start failed"
	StateRefused     = "refused"
)

// Replication states of a replica.
const (
	ReplicationStreaming = "streaming"
	ReplicationArchive   = "in archive recovery"
)

// Member is the value of members/<name>, written by each agent on its own
// lease every HA loop.
type Member struct {
	Name                   string `json:"-"`
	ConnURL                string `json:"conn_url"`
	APIURL                 string `json:"api_url"`
	State                  string `json:"state"`
	Role                   string `json:"role"`
	Version                string `json:"version"`
	XLogLocation           *int64 `json:"xlog_location,omitempty"`
	ReceiveLSN             *int64 `json:"receive_lsn,omitempty"`
	ReplayLSN              *int64 `json:"replay_lsn,omitempty"`
	ReplicationState       string `json:"replication_state,omitempty"`
	Timeline               int    `json:"timeline,omitempty"`
	Tags                   *Tags  `json:"tags,omitempty"`
	CheckpointAfterPromote *bool  `json:"checkpoint_after_promote,omitempty"`
	Pause                  bool   `json:"pause,omitempty"`
	PendingRestart         bool   `json:"pending_restart,omitempty"`
	// NeedsReinit is set (to the reason) while the member waits for an
	// operator to re-clone it with `regent reinit`.
	NeedsReinit string `json:"needs_reinit,omitempty"`
	// PendingRestartReason names the settings waiting for a restart.
	PendingRestartReason map[string]ParamChange `json:"pending_restart_reason,omitempty"`
	// Revision is the etcd mod_revision of the key; not serialised.
	Revision int64 `json:"-"`
}

// EffectiveTags returns the member's tags, or the zero value.
func (m *Member) EffectiveTags() Tags {
	if m == nil || m.Tags == nil {
		return Tags{}
	}
	return *m.Tags
}

// ParamChange is a PostgreSQL setting whose new value waits for a restart.
type ParamChange struct {
	Old string `json:"old_value"`
	New string `json:"new_value"`
}

// Leader is the leader key: the holder's name on the holder's lease.
type Leader struct {
	Name           string
	ModRevision    int64
	CreateRevision int64
	Lease          int64
}

// Initialize is the initialize key: the PostgreSQL system identifier of the
// cluster, or "" while the bootstrap winner is still running initdb.
type Initialize struct {
	SystemID string
	Revision int64
}

// Status is the status key the leader writes: its WAL position and slots.
type Status struct {
	Optime      int64            `json:"optime"`
	Slots       map[string]int64 `json:"slots,omitempty"`
	RetainSlots []string         `json:"retain_slots,omitempty"`
}

// HistoryEntry is one line of the history key:
// [timeline, switch_lsn, reason, timestamp, new_leader].
type HistoryEntry struct {
	Timeline  int
	SwitchLSN int64
	Reason    string
	Time      time.Time
	NewLeader string
}

// Failover is the failover key: a requested switchover or failover.
type Failover struct {
	Leader      string `json:"leader,omitempty"`
	Member      string `json:"member,omitempty"`
	ScheduledAt string `json:"scheduled_at,omitempty"`
	Revision    int64  `json:"-"`
}

// SyncState is the sync key: the members the leader has made synchronous.
// A member is listed only after PostgreSQL waits for it
// (synchronous_standby_names), and is removed from the key before it is
// removed from synchronous_standby_names.
//
// With Quorum 0 (synchronous_mode on) every listed member holds every
// acknowledged commit. With Quorum q > 0 (synchronous_mode quorum, Patroni's
// "quorum" field) a listed member can only be sure to hold every
// acknowledged commit together with q other listed members that are not
// ahead of it: at least len(Members) - q listed members hold each
// acknowledged commit, so any q+1 of them include one that does
// (R + W > N with R = q+1, W = len(Members) - q).
type SyncState struct {
	Leader   string
	Members  []string
	Quorum   int
	Revision int64
}

// ReadQuorum is how many listed members, a candidate included, must be
// compared to find one that holds every acknowledged commit: Quorum+1.
func (s *SyncState) ReadQuorum() int {
	if s == nil {
		return 0
	}
	return s.Quorum + 1
}

// Has reports whether name is a listed synchronous standby.
func (s *SyncState) Has(name string) bool {
	if s == nil {
		return false
	}
	for _, m := range s.Members {
		if m == name {
			return true
		}
	}
	return false
}

// Cluster is one consistent view of the DCS, read at Revision.
type Cluster struct {
	Scope          string
	Initialize     *Initialize
	Config         *DynamicConfig
	ConfigRevision int64
	Leader         *Leader
	Members        map[string]*Member
	Status         Status
	History        []HistoryEntry
	// Events are the latest automatic decisions worth keeping (Regent's
	// own key; Patroni tools ignore it): why a member refused to promote.
	Events   []Event
	Failover *Failover
	Sync     *SyncState
	// Failsafe maps member names to their REST API URLs: the members a
	// leader must hear from to stay up during a DCS outage (failsafe_mode).
	Failsafe map[string]string
	Revision int64

	// ConfigProblem says why the config key must not be used (it is not a
	// JSON object, a key cannot be decoded or the result is invalid); empty
	// when it can. Config then holds what could be decoded, or nil; members
	// keep their last good configuration.
	ConfigProblem string
}

// Member returns the named member or nil.
func (c *Cluster) Member(name string) *Member {
	if c == nil || c.Members == nil {
		return nil
	}
	return c.Members[name]
}

// LeaderName returns the name in the leader key, or "" when there is none.
func (c *Cluster) LeaderName() string {
	if c == nil || c.Leader == nil {
		return ""
	}
	return c.Leader.Name
}

// LeaderMember returns the member holding the leader key, or nil.
func (c *Cluster) LeaderMember() *Member {
	return c.Member(c.LeaderName())
}

// SortedMembers returns the members ordered by name.
func (c *Cluster) SortedMembers() []*Member {
	if c == nil {
		return nil
	}
	out := make([]*Member, 0, len(c.Members))
	for _, m := range c.Members {
		out = append(out, m)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// LastTimeline is the highest timeline recorded in the history, or 0.
func (c *Cluster) LastTimeline() int {
	tl := 0
	for _, h := range c.History {
		if h.Timeline > tl {
			tl = h.Timeline
		}
	}
	return tl
}

// FormatLSN renders an LSN as PostgreSQL does (X/Y).
func FormatLSN(lsn int64) string {
	return strings.ToUpper(strconv.FormatUint(uint64(lsn)>>32, 16) + "/" + strconv.FormatUint(uint64(lsn)&0xffffffff, 16))
}

// Event is one recorded decision of an agent.
type Event struct {
	Time     string `json:"time"`
	Member   string `json:"member"`
	Kind     string `json:"kind"`
	Reason   string `json:"reason"`
	Timeline int    `json:"timeline,omitempty"`
	LSN      int64  `json:"lsn,omitempty"`
}

// EventPromotionRefused: a replica did not promote although there was no
// leader, and says why.
const EventPromotionRefused = "promotion_refused"

// EventConfigInvalid: the config key cannot be used (Cluster.ConfigProblem);
// the members keep their current configuration.
const EventConfigInvalid = "config_invalid"
