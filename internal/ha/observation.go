// Package ha is Regent's high-availability decision core: a deterministic
// function from an observed state — the DCS view, the local PostgreSQL
// state, the lease, the configuration and the monotonic clock — to the
// actions the agent must take next and the reason for them.
//
// The core performs no I/O, starts no goroutines and never reads the clock:
// time arrives in Observation.Now. This makes every decision reproducible in
// table tests and in the simulator. The agent (package agent) gathers the
// observation, calls Decide, and executes the returned actions in order,
// stopping at the first that fails.
package ha

import (
	"time"

	"github.com/regent-ha/regent/internal/cluster"
)

// DataDirState says whether the local data directory holds a cluster.
type DataDirState int

// Data directory states.
const (
	DataDirUnknown DataDirState = iota
	DataDirEmpty
	DataDirInitialized
)

// Observation is everything the core may consider in one HA loop.
type Observation struct {
	// Now is a monotonic clock reading taken at the start of the loop.
	Now time.Time
	// Wall is the wall-clock time, used only to compare with operator
	// schedules (scheduled switchovers); never for lease arithmetic.
	Wall time.Time
	// Self is this member's identity.
	Self Self
	// Cluster is the DCS view read during this loop, or nil when the read
	// failed (DCSError says why).
	Cluster  *cluster.Cluster
	DCSError string
	// Config is the effective dynamic configuration: the DCS copy when
	// there is one, else the local bootstrap.dcs section.
	Config cluster.DynamicConfig
	// Lease describes this member's etcd lease.
	Lease Lease
	// PG is the local PostgreSQL state.
	PG Postgres
	// Task is a long-running operation (initdb, clone, rewind, start,
	// checkpoint) the agent runs in the background; empty when idle.
	Task string
	// Failsafe is what this member knows of failsafe_mode acknowledgements.
	Failsafe Failsafe
	// Peers holds the result of probing the other members' REST APIs. It
	// is filled in only when the previous Decide asked for it.
	Peers       []Peer
	PeersProbed bool
}

// Self is this member's identity and static tags.
type Self struct {
	Name string
	Tags cluster.Tags
	// WatchdogMissing is set when watchdog.mode is required but the
	// device cannot be used: such a member must not lead.
	WatchdogMissing bool
	// PrePromoteBackoff, when set, says why this member must not take the
	// leader key now: its pre_promote script aborted a promotion less
	// than ttl ago (Patroni's back-off).
	PrePromoteBackoff string
}

// Lease is what the agent knows about its own lease and the leader key.
type Lease struct {
	// ConfirmedSentAt is the monotonic time at which the agent *sent* the
	// last lease renewal whose success it confirmed. etcd cannot expire
	// the lease before ConfirmedSentAt + TTL of its own clock.
	ConfirmedSentAt time.Time
	// TTL is the TTL etcd granted for the lease, as confirmed by that
	// renewal. Every deadline is derived from the smaller of it and the
	// configured ttl (cluster.DynamicConfig.ForLease): after a ttl change
	// the lease keeps its old TTL until it is re-granted. Zero means no
	// lease, hence no claim.
	TTL time.Duration
	// KeyOnMyLease is true when the last successful DCS read (or an
	// ownership transaction) showed the leader key holding this member's
	// name attached to this member's current lease.
	KeyOnMyLease bool
}

// Postgres is the observed state of the local PostgreSQL instance.
type Postgres struct {
	DataDir DataDirState
	// SystemID is the system identifier from pg_control, "" if unknown.
	SystemID string
	// ControlTimeline is the timeline of the latest checkpoint in
	// pg_control; it is what a stopped data directory is on.
	ControlTimeline int
	// ControlStandby is true when pg_control of the stopped data directory
	// says it was a standby ("in archive recovery", "shut down in
	// recovery"): it was never promoted, or its promotion did not finish.
	ControlStandby bool
	// RecoverySignalled is true when the stopped data directory holds
	// standby.signal or recovery.signal (or a recovery.conf of PostgreSQL
	// 11 and older): started as it is, it would run as a standby or
	// recover from an archive.
	RecoverySignalled bool
	// Running is true while a postmaster for the data directory is alive.
	Running bool
	// Answered is true when PostgreSQL answered this loop's query; the
	// fields below are only meaningful then.
	Answered   bool
	InRecovery bool
	Timeline   int
	WriteLSN   int64
	ReceiveLSN int64
	ReplayLSN  int64
	Streaming  bool
	// Following is the member name primary_conninfo points at ("" none).
	Following string
	// LastKnownPrimary is true when the last answer this agent got from
	// PostgreSQL said it was not in recovery, or the data directory was
	// last shut down as a primary. A running instance in an unknown state
	// with this flag set must be assumed writable.
	LastKnownPrimary bool
	// DownSince is when the agent first saw PostgreSQL not running while
	// it was expected to run (zero when running or never started).
	DownSince time.Time
	// StartFailed is set when the last start attempt failed.
	StartFailed bool
	// Rejoin is the last failed attempt to make this data directory a
	// replica again (nil: none since the last success).
	Rejoin *RejoinFailure
	// UnansweredSince is when a running PostgreSQL first stayed silent
	// (the status query or a new connection timed out); zero while it
	// answers, even with an error such as "starting up".
	UnansweredSince time.Time
	// NotStreamingSince is when a running replica was first seen without
	// a streaming WAL receiver (zero while streaming).
	NotStreamingSince time.Time
	// CheckpointPending is true after a promotion until the post-promote
	// CHECKPOINT completed.
	CheckpointPending bool
	// SyncStandbyNames are the members named in the primary's
	// synchronous_standby_names ("*" = any standby, nil = none).
	SyncStandbyNames []string
	// SyncQuorum is k when synchronous_standby_names is ANY k (...): a
	// commit waits for any k of the named standbys. 0 for FIRST n (...), a
	// plain list, "*" or none.
	SyncQuorum int
	// SyncReported are the standbys pg_stat_replication reports with
	// sync_state "sync" or "quorum": PostgreSQL waits for them (all of
	// them, or any SyncQuorum of them) on every commit.
	SyncReported []string
	// SyncSetLSN is the primary's WAL position observed once its current
	// synchronous_standby_names had surely taken effect (0 while a change
	// is pending). Every commit acknowledged without the new standbys lies
	// at or before it.
	SyncSetLSN int64
	// StandbyFlush maps each standby (application_name) to the WAL
	// position it has durably received, from pg_stat_replication.
	StandbyFlush map[string]int64
}

// LSN returns the WAL position that counts for comparisons: the write
// position of a primary, the larger of received and replayed on a replica.
func (p Postgres) LSN() int64 {
	if !p.InRecovery {
		return p.WriteLSN
	}
	return max(p.ReceiveLSN, p.ReplayLSN)
}

// Peer is another member's answer to a REST probe during a leader race.
type Peer struct {
	Name      string
	Reachable bool
	// Role and State as reported by the peer's /patroni.
	Role     string
	State    string
	LSN      int64
	Timeline int
	Priority int
}

// Failsafe records the failsafe_mode acknowledgements (POST /failsafe)
// that let a leader survive a DCS outage.
type Failsafe struct {
	// ConfirmedAt is the send time of the last round in which every member
	// listed in the failsafe key acknowledged this member as leader.
	ConfirmedAt time.Time
	// HeardAt is when a leader last asked this member to acknowledge it,
	// and Leader who that was.
	HeardAt time.Time
	Leader  string
}

// RejoinFailure is a failed step of rejoining the cluster as a replica: a
// pg_rewind, a pg_basebackup (clone or re-clone) or the start of the data
// directory they produced. The agent classifies the failure (package
// postgres) and keeps the retry schedule; the core only reads it.
type RejoinFailure struct {
	// Step is what failed, for messages: "pg_rewind", "pg_basebackup" or
	// "start".
	Step string
	// Source is the member the step ran against.
	Source string
	// NeedsOperator is set when trying again cannot help: the failure
	// repeats on every attempt, or it left the data directory unusable.
	// The member then waits for `regent reinit` (or re-clones itself when
	// remove_data_directory_on_rewind_failure allows it). Otherwise the
	// failure is transient: the source was unreachable, restarting or went
	// away, and the data directory is as it was before the attempt.
	NeedsOperator bool
	// Reason is the classified cause.
	Reason string
	// Attempts counts the consecutive failed attempts.
	Attempts int
	// RetryAt is the earliest monotonic time of the next attempt after a
	// transient failure (the agent's backoff).
	RetryAt time.Time
}
