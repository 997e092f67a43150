// Package api serves a Regent member's Patroni-compatible REST API: status, cluster view and health checks.
package api

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/regent-ha/regent/internal/cluster"
)

// Snapshot is what the agent publishes after each observation; the API only reads it.
//
// A published Snapshot is shared with concurrent readers: the agent must not
// modify it, or anything it points to (Replication, Cluster, Tags,
// ReplayedTimestamp), after publishing it.
type Snapshot struct {
	Scope, Name, Version string
	// Taken is when the agent took the snapshot. A zero Taken means no
	// observation yet: every health check answers 503.
	Taken time.Time
	// LastLoop is when the last HA loop completed (for /liveness).
	LastLoop time.Time
	// Role is cluster.RolePrimary, RoleReplica or RoleUninitialized.
	Role string
	// State is one of cluster.State* ("running", "stopped", ...).
	State string
	// HoldsLeaderKey is true when this member holds the leader key with a
	// lease it has confirmed within the renew deadline.
	HoldsLeaderKey bool
	// LeaseDeadline, when set, is the instant HoldsLeaderKey stops being
	// true unless the agent publishes a newer snapshot: the send time of the
	// last confirmed renewal plus the renew deadline R. When zero, the API
	// honours HoldsLeaderKey only while the snapshot is younger than TTL.
	LeaseDeadline time.Time
	// Writable is true when PostgreSQL is running, not in recovery, and
	// answered the last query.
	Writable            bool
	PostmasterStartTime time.Time
	ServerVersion       int
	Timeline            int
	// XLogLocation is the primary's current WAL LSN.
	XLogLocation          int64
	ReceiveLSN, ReplayLSN int64
	ReplayedTimestamp     *time.Time
	ReplicationState      string
	Replication           []Replica
	SystemIdentifier      string
	Tags                  cluster.Tags
	DCSLastSeen           time.Time
	DCSReachable          bool
	Pause                 bool
	// Cluster is the last DCS view (may be nil).
	Cluster              *cluster.Cluster
	LoopWait, TTL        time.Duration
	MaximumLagOnFailover int64
	// Reason is the last decision's reason (Regent extension).
	Reason string
	// Action is the last decision's action (Regent extension).
	Action string

	// The fields below feed GET /metrics (internal/metrics); the REST
	// endpoints above do not use them. Zero values mean "unknown / not
	// applicable" and export as 0 or are left out, as each field says.

	// LastRenewalConfirmed is the send time of the last lease renewal etcd
	// confirmed (the agent's lease.ConfirmedSentAt); zero while this member
	// holds no lease. Exported as regent_lease_last_confirmed_timestamp_seconds.
	LastRenewalConfirmed time.Time
	// FencingActive is true from the decision (or the lease guard) to fence
	// until PostgreSQL is confirmed stopped. Exported as regent_fencing_active.
	FencingActive bool
	// WatchdogState is one of the Watchdog* constants; "" reads as
	// WatchdogOff. Exported as regent_watchdog_state{state}.
	WatchdogState string
	// PendingRestart is true while a changed PostgreSQL setting waits for a
	// restart (the member key's pending_restart). Exported as
	// patroni_pending_restart.
	PendingRestart bool
	// XLogPaused is pg_is_wal_replay_paused() on a replica. Exported as
	// patroni_xlog_paused.
	XLogPaused bool
	// SyncStandby and QuorumStandby are true when this member runs as a
	// replica and the sync key of the DCS view read in this loop lists it as
	// a synchronous standby (synchronous_mode on) or a quorum standby
	// (quorum); see SyncStandbyOf. They drive /sync, /quorum, /async,
	// /read-only-sync and /read-only-quorum, appear in /patroni as
	// sync_standby / quorum_standby, and are exported as
	// patroni_sync_standby and patroni_quorum_standby.
	SyncStandby, QuorumStandby bool
	// SyncStandbysExpected is, on the primary, how many synchronous standbys
	// the configuration requires (0 when synchronous replication is off).
	// The observed number is counted from Replication (streaming rows with
	// sync_state "sync" or "quorum"). Exported, on the primary only, as
	// regent_sync_standbys_expected and regent_sync_standbys_observed.
	SyncStandbysExpected int
	// WALDiskFreeBytes and WALDiskTotalBytes are the space available to an
	// unprivileged user and the size of the file system holding pg_wal
	// (statfs). Exported when WALDiskTotalBytes > 0 as
	// regent_wal_disk_free_bytes and regent_wal_disk_total_bytes.
	WALDiskFreeBytes, WALDiskTotalBytes int64
}

// Watchdog states of Snapshot.WatchdogState.
const (
	// WatchdogOff: no watchdog is used (mode off, or not needed now).
	WatchdogOff = "off"
	// WatchdogActive: the watchdog device is open and being kept alive.
	WatchdogActive = "active"
	// WatchdogFailed: a watchdog is required but could not be opened or
	// kept alive.
	WatchdogFailed = "failed"
)

// LeaseHeldAt reports whether HoldsLeaderKey can still be believed at now:
// until LeaseDeadline when set, else while the snapshot is younger than
// TTL. It is the condition /leader and /primary use.
func (s *Snapshot) LeaseHeldAt(now time.Time) bool { return leaseHeld(s, now) }

// ReplicaReplayLag is how many bytes replay on this member trails the best
// known leader WAL position (status key optime, leader member's
// xlog_location, or what this member received), and whether that position
// is known. It is the lag the /replica?lag= check uses.
func (s *Snapshot) ReplicaReplayLag() (int64, bool) {
	if leaderOptime(s) == 0 {
		return 0, false
	}
	return replayLag(s), true
}

// Replica is one row of pg_stat_replication as shown in /patroni.
type Replica struct {
	Usename         string `json:"usename"`
	ApplicationName string `json:"application_name"`
	ClientAddr      string `json:"client_addr"`
	State           string `json:"state"`
	SyncState       string `json:"sync_state"`
	SyncPriority    int    `json:"sync_priority"`

	// SentLSN and ReplayLSN are pg_stat_replication's sent_lsn and
	// replay_lsn (0 when NULL); ReplayLagSeconds is replay_lag in seconds
	// (0 when NULL). They feed /metrics only and are not part of the
	// /patroni body.
	SentLSN          int64   `json:"-"`
	ReplayLSN        int64   `json:"-"`
	ReplayLagSeconds float64 `json:"-"`
}

// SnapshotSource supplies the latest snapshot; Snapshot must be cheap and non-blocking.
type SnapshotSource interface{ Snapshot() Snapshot }

// ClusterReader reads a fresh DCS view for /cluster, /history and /config.
type ClusterReader interface {
	Load(ctx context.Context) (*cluster.Cluster, error)
}

// Publisher is an atomic snapshot holder the agent publishes into and the
// Server reads from. The zero value is ready to use and holds an empty
// snapshot. Serving from a Publisher lets the Server encode each snapshot's
// /patroni body once, however many health checks arrive.
type Publisher struct {
	cur atomic.Pointer[published]
}

// Publish replaces the current snapshot. s must not be modified afterwards.
func (p *Publisher) Publish(s Snapshot) { p.cur.Store(&published{snap: s}) }

// LimitLeaseDeadline moves the published lease deadline to at when it is
// later, at once rather than with the next full snapshot: the agent calls
// it before it moves its keys to a lease with a shorter TTL, so that
// /primary and the lease metrics never promise more than etcd will keep.
func (p *Publisher) LimitLeaseDeadline(at time.Time) {
	for {
		old := p.cur.Load()
		if old == nil || old.snap.LeaseDeadline.IsZero() || !old.snap.LeaseDeadline.After(at) {
			return
		}
		s := old.snap
		s.LeaseDeadline = at
		if p.cur.CompareAndSwap(old, &published{snap: s}) {
			return
		}
	}
}

// Snapshot returns the current snapshot (zero before the first Publish).
func (p *Publisher) Snapshot() Snapshot { return p.load().snap }

func (p *Publisher) load() *published {
	if c := p.cur.Load(); c != nil {
		return c
	}
	return &emptyPublished
}

// published is one snapshot plus its lazily encoded /patroni body.
type published struct {
	snap Snapshot
	once sync.Once
	body []byte
}

var emptyPublished published

// statusBody returns the /patroni JSON for the snapshot, encoded once.
func (p *published) statusBody() []byte {
	p.once.Do(p.encode)
	return p.body
}

func (p *published) encode() { p.body = encodeStatus(&p.snap) }
