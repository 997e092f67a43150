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
}

// Replica is one row of pg_stat_replication as shown in /patroni.
type Replica struct {
	Usename         string `json:"usename"`
	ApplicationName string `json:"application_name"`
	ClientAddr      string `json:"client_addr"`
	State           string `json:"state"`
	SyncState       string `json:"sync_state"`
	SyncPriority    int    `json:"sync_priority"`
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
