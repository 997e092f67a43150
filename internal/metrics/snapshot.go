package metrics

import (
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/regent-ha/regent/internal/api"
	"github.com/regent-ha/regent/internal/cluster"
)

// baseLabels are on every series: the cluster (scope) and the member (name),
// as in Patroni.
var baseLabels = []string{"scope", "name"}

// gauge is one snapshot-derived metric with only the base labels. value
// returns false when the metric does not apply to the snapshot (it is
// then left out rather than exported as a misleading 0).
type gauge struct {
	desc  *prometheus.Desc
	typ   prometheus.ValueType
	value func(s *api.Snapshot, now time.Time) (float64, bool)
}

func newGauge(name, help string, typ prometheus.ValueType, value func(s *api.Snapshot, now time.Time) (float64, bool)) gauge {
	return gauge{desc: prometheus.NewDesc(name, help, baseLabels, nil), typ: typ, value: value}
}

// always wraps a value that applies to every snapshot.
func always(f func(s *api.Snapshot) float64) func(*api.Snapshot, time.Time) (float64, bool) {
	return func(s *api.Snapshot, _ time.Time) (float64, bool) { return f(s), true }
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

func unix(t time.Time) float64 {
	if t.IsZero() {
		return 0
	}
	return float64(t.UnixNano()) / 1e9
}

func running(s *api.Snapshot) bool { return s.State == cluster.StateRunning }

func runningAs(s *api.Snapshot, role string) bool { return running(s) && s.Role == role }

// serverVersion is PostgreSQL's version number while it runs, else 0.
func serverVersion(s *api.Snapshot) int {
	if !running(s) {
		return 0
	}
	return s.ServerVersion
}

// patroniVersion renders a version as Patroni does: each dotted component
// zero-padded to two digits ("4.1.4" -> 040104), read as a number. A
// suffix such as "-dev" is ignored; an unparsable version is 0.
func patroniVersion(v string) float64 {
	v, _, _ = strings.Cut(v, "-")
	v, _, _ = strings.Cut(v, "+")
	var b strings.Builder
	for _, part := range strings.Split(v, ".") {
		n, err := strconv.Atoi(part)
		if err != nil || n < 0 {
			return 0
		}
		if n < 10 {
			b.WriteByte('0')
		}
		b.WriteString(strconv.Itoa(n))
	}
	f, err := strconv.ParseFloat(b.String(), 64)
	if err != nil {
		return 0
	}
	return f
}

// patroniStates maps PostgreSQL states to patroni_postgres_state values
// (Patroni's PostgresqlState indexes, fixed since 4.1.0). Regent-only
// states (rewinding, rewind failed, needs reinit, refused) and unknown ones are -1, as
// Patroni reports a state outside its enum.
var patroniStates = map[string]float64{
	cluster.StateInitializing:         0,
	"initdb failed":                   1,
	"running custom bootstrap script": 2,
	"custom bootstrap failed":         3,
	cluster.StateCreatingReplica:      4,
	cluster.StateRunning:              5,
	cluster.StateStarting:             6,
	"starting after custom bootstrap": 7,
	cluster.StateStartFailed:          8,
	"restarting":                      9,
	"restart failed":                  10,
	cluster.StateStopping:             11,
	cluster.StateStopped:              12,
	"stop failed":                     13,
	cluster.StateCrashed:              14,
}

const postgresStateHelp = "Numeric representation of Postgres state. Values: 0=initdb, 1=initdb_failed, " +
	"2=custom_bootstrap, 3=custom_bootstrap_failed, 4=creating_replica, 5=running, 6=starting, " +
	"7=bootstrap_starting, 8=start_failed, 9=restarting, 10=restart_failed, 11=stopping, 12=stopped, " +
	"13=stop_failed, 14=crashed; -1 for any other state (Regent's rewinding, rewind failed, needs reinit, refused)."

// patroniGauges are Patroni's /metrics (patroni/api.py do_GET_metrics),
// same names, types, HELP texts and meaning.
func patroniGauges() []gauge {
	G, C := prometheus.GaugeValue, prometheus.CounterValue
	return []gauge{
		newGauge("patroni_version", "Patroni semver without periods.", G,
			always(func(s *api.Snapshot) float64 { return patroniVersion(s.Version) })),
		newGauge("patroni_postgres_running", "Value is 1 if Postgres is running, 0 otherwise.", G,
			always(func(s *api.Snapshot) float64 { return b2f(running(s)) })),
		newGauge("patroni_postmaster_start_time", "Epoch seconds since Postgres started.", G,
			always(func(s *api.Snapshot) float64 {
				if !running(s) {
					return 0
				}
				return unix(s.PostmasterStartTime)
			})),
		newGauge("patroni_primary", "Value is 1 if this node is the leader, 0 otherwise.", G,
			always(func(s *api.Snapshot) float64 { return b2f(s.Role == cluster.RolePrimary) })),
		newGauge("patroni_xlog_location", "Current location of the Postgres transaction log, 0 if this node is not the leader.", C,
			always(func(s *api.Snapshot) float64 {
				if !runningAs(s, cluster.RolePrimary) {
					return 0
				}
				return float64(s.XLogLocation)
			})),
		newGauge("patroni_standby_leader", "Value is 1 if this node is the standby_leader, 0 otherwise.", G,
			always(func(*api.Snapshot) float64 { return 0 })), // no standby clusters
		newGauge("patroni_replica", "Value is 1 if this node is a replica, 0 otherwise.", G,
			always(func(s *api.Snapshot) float64 { return b2f(s.Role == cluster.RoleReplica) })),
		newGauge("patroni_sync_standby", "Value is 1 if this node is a sync standby, 0 otherwise.", G,
			always(func(s *api.Snapshot) float64 { return b2f(s.SyncStandby) })),
		newGauge("patroni_quorum_standby", "Value is 1 if this node is a quorum standby, 0 otherwise.", G,
			always(func(s *api.Snapshot) float64 { return b2f(s.QuorumStandby) })),
		newGauge("patroni_xlog_received_location", "Current location of the received Postgres transaction log, 0 if this node is not a replica.", C,
			always(func(s *api.Snapshot) float64 {
				if !runningAs(s, cluster.RoleReplica) {
					return 0
				}
				if s.ReceiveLSN == 0 {
					return float64(s.ReplayLSN) // as /patroni: archive recovery receives nothing
				}
				return float64(s.ReceiveLSN)
			})),
		newGauge("patroni_xlog_replayed_location", "Current location of the replayed Postgres transaction log, 0 if this node is not a replica.", C,
			always(func(s *api.Snapshot) float64 {
				if !runningAs(s, cluster.RoleReplica) {
					return 0
				}
				return float64(s.ReplayLSN)
			})),
		newGauge("patroni_xlog_replayed_timestamp", "Current timestamp of the replayed Postgres transaction log, 0 if null.", G,
			always(func(s *api.Snapshot) float64 {
				if !runningAs(s, cluster.RoleReplica) || s.ReplayedTimestamp == nil {
					return 0
				}
				return unix(*s.ReplayedTimestamp)
			})),
		newGauge("patroni_xlog_paused", "Value is 1 if the Postgres xlog is paused, 0 otherwise.", G,
			always(func(s *api.Snapshot) float64 { return b2f(runningAs(s, cluster.RoleReplica) && s.XLogPaused) })),
		// Patroni exports the next two only for PostgreSQL 9.6 and later,
		// which also means only while PostgreSQL runs.
		newGauge("patroni_postgres_streaming", "Value is 1 if Postgres is streaming, 0 otherwise.", G,
			func(s *api.Snapshot, _ time.Time) (float64, bool) {
				return b2f(s.ReplicationState == cluster.ReplicationStreaming), serverVersion(s) >= 90600
			}),
		newGauge("patroni_postgres_in_archive_recovery", "Value is 1 if Postgres is replicating from archive, 0 otherwise.", G,
			func(s *api.Snapshot, _ time.Time) (float64, bool) {
				return b2f(s.ReplicationState == cluster.ReplicationArchive), serverVersion(s) >= 90600
			}),
		newGauge("patroni_postgres_server_version", "Version of Postgres (if running), 0 otherwise.", G,
			always(func(s *api.Snapshot) float64 { return float64(serverVersion(s)) })),
		newGauge("patroni_cluster_unlocked", "Value is 1 if the cluster is unlocked, 0 if locked.", G,
			always(func(s *api.Snapshot) float64 { return b2f(s.Cluster.LeaderName() == "") })),
		newGauge("patroni_failsafe_mode_is_active", "Value is 1 if failsafe mode is active, 0 if inactive.", G,
			always(func(*api.Snapshot) float64 { return 0 })), // Regent has no failsafe mode
		newGauge("patroni_failsafe_mode_enabled", "Value is 1 if failsafe mode is enabled in the configuration, 0 otherwise.", G,
			always(func(*api.Snapshot) float64 { return 0 })),
		newGauge("patroni_failsafe_member", "Value is 1 if this node is a member of the failsafe topology, 0 otherwise.", G,
			always(func(*api.Snapshot) float64 { return 0 })),
		newGauge("patroni_postgres_timeline", "Postgres timeline of this node (if running), 0 otherwise.", C,
			always(func(s *api.Snapshot) float64 {
				if !running(s) {
					return 0
				}
				return float64(s.Timeline)
			})),
		newGauge("patroni_dcs_last_seen", "Epoch timestamp when DCS was last contacted successfully by Patroni.", G,
			always(func(s *api.Snapshot) float64 {
				if s.DCSLastSeen.IsZero() {
					return 0
				}
				return float64(s.DCSLastSeen.Unix())
			})),
		newGauge("patroni_pending_restart", "Value is 1 if the node needs a restart, 0 otherwise.", G,
			always(func(s *api.Snapshot) float64 { return b2f(s.PendingRestart) })),
		newGauge("patroni_is_paused", "Value is 1 if auto failover is disabled, 0 otherwise.", G,
			always(func(s *api.Snapshot) float64 { return b2f(s.Pause) })),
		newGauge("patroni_postgres_state", postgresStateHelp, G,
			always(func(s *api.Snapshot) float64 {
				if v, ok := patroniStates[s.State]; ok {
					return v
				}
				return -1
			})),
		newGauge("patroni_failover_priority", "Failover priority of this node (tags.failover_priority, default 1), 0 if nofailover is set.", G,
			always(func(s *api.Snapshot) float64 { return float64(s.Tags.Priority()) })),
	}
}

// regentGauges are Regent's own state gauges.
func regentGauges() []gauge {
	G := prometheus.GaugeValue
	return []gauge{
		newGauge("regent_snapshot_timestamp_seconds",
			"Unix time the agent published the snapshot all state metrics come from; 0 before the first one.", G,
			always(func(s *api.Snapshot) float64 { return unix(s.Taken) })),
		newGauge("regent_snapshot_age_seconds",
			"Seconds since the agent published the snapshot all state metrics come from (+Inf before the first one). "+
				"The HA loop publishes one every loop_wait; a large value means the state metrics are stale.", G,
			func(s *api.Snapshot, now time.Time) (float64, bool) {
				if s.Taken.IsZero() {
					return math.Inf(1), true
				}
				return now.Sub(s.Taken).Seconds(), true
			}),
		newGauge("regent_ha_last_loop_timestamp_seconds", "Unix time the last HA loop completed; 0 before the first one.", G,
			always(func(s *api.Snapshot) float64 { return unix(s.LastLoop) })),
		newGauge("regent_leader_key_held",
			"Value is 1 if this member holds the leader key on a lease confirmed within the renew deadline (evaluated at scrape time), 0 otherwise.", G,
			func(s *api.Snapshot, now time.Time) (float64, bool) { return b2f(s.LeaseHeldAt(now)), true }),
		newGauge("regent_lease_remaining_seconds",
			"Seconds until the renew deadline R: unless a lease renewal is confirmed before then, this member fences itself. "+
				"0 once passed; absent while the leader key is not on this member's lease.", G,
			func(s *api.Snapshot, now time.Time) (float64, bool) {
				if s.LeaseDeadline.IsZero() {
					return 0, false
				}
				return max(0, s.LeaseDeadline.Sub(now).Seconds()), true
			}),
		newGauge("regent_lease_last_confirmed_timestamp_seconds",
			"Unix time the last lease renewal etcd confirmed was sent; absent while this member holds no lease.", G,
			func(s *api.Snapshot, _ time.Time) (float64, bool) {
				return unix(s.LastRenewalConfirmed), !s.LastRenewalConfirmed.IsZero()
			}),
		newGauge("regent_config_ttl_seconds", "Leader lease TTL in force (dynamic configuration ttl).", G,
			always(func(s *api.Snapshot) float64 { return s.TTL.Seconds() })),
		newGauge("regent_config_loop_wait_seconds", "Interval between HA loops in force (dynamic configuration loop_wait).", G,
			always(func(s *api.Snapshot) float64 { return s.LoopWait.Seconds() })),
		newGauge("regent_config_maximum_lag_on_failover_bytes",
			"Largest replay lag at which a replica may still be promoted (dynamic configuration maximum_lag_on_failover).", G,
			always(func(s *api.Snapshot) float64 { return float64(s.MaximumLagOnFailover) })),
		newGauge("regent_dcs_reachable", "Value is 1 if the last HA loop read the cluster state from etcd, 0 otherwise.", G,
			always(func(s *api.Snapshot) float64 { return b2f(s.DCSReachable) })),
		newGauge("regent_fencing_active", "Value is 1 while this member is fencing its PostgreSQL (immediate stop after a possible lease loss), 0 otherwise.", G,
			always(func(s *api.Snapshot) float64 { return b2f(s.FencingActive) })),
		newGauge("regent_postgres_writable", "Value is 1 if PostgreSQL runs out of recovery and answered the last query, 0 otherwise.", G,
			always(func(s *api.Snapshot) float64 { return b2f(s.Writable) })),
		newGauge("regent_replica_replay_lag_bytes",
			"On a running replica: bytes replay trails the leader's last known WAL position (status key optime). Absent on a primary or when unknown.", G,
			func(s *api.Snapshot, _ time.Time) (float64, bool) {
				if !runningAs(s, cluster.RoleReplica) {
					return 0, false
				}
				lag, ok := s.ReplicaReplayLag()
				return float64(max(0, lag)), ok
			}),
		newGauge("regent_sync_standbys_expected",
			"On the primary: synchronous standbys the configuration requires (0 when synchronous replication is off).", G,
			func(s *api.Snapshot, _ time.Time) (float64, bool) {
				return float64(s.SyncStandbysExpected), runningAs(s, cluster.RolePrimary)
			}),
		newGauge("regent_sync_standbys_observed",
			"On the primary: standbys streaming with sync_state sync or quorum in pg_stat_replication.", G,
			func(s *api.Snapshot, _ time.Time) (float64, bool) {
				return float64(observedSync(s.Replication)), runningAs(s, cluster.RolePrimary)
			}),
		newGauge("regent_wal_disk_free_bytes", "Bytes available on the file system holding pg_wal.", G,
			func(s *api.Snapshot, _ time.Time) (float64, bool) {
				return float64(s.WALDiskFreeBytes), s.WALDiskTotalBytes > 0
			}),
		newGauge("regent_wal_disk_total_bytes", "Size in bytes of the file system holding pg_wal.", G,
			func(s *api.Snapshot, _ time.Time) (float64, bool) {
				return float64(s.WALDiskTotalBytes), s.WALDiskTotalBytes > 0
			}),
		newGauge("regent_dcs_config_invalid",
			"Value is 1 if the config key of this member's last view of the DCS cannot be used (GET /patroni regent.config_problem says why; the member keeps its current configuration), 0 otherwise; absent before the first view.", G,
			func(s *api.Snapshot, _ time.Time) (float64, bool) {
				if s.Cluster == nil {
					return 0, false
				}
				return b2f(s.Cluster.ConfigProblem != ""), true
			}),
		newGauge("regent_cluster_members", "Member keys in this member's last view of the DCS; absent before the first view.", G,
			func(s *api.Snapshot, _ time.Time) (float64, bool) {
				if s.Cluster == nil {
					return 0, false
				}
				return float64(len(s.Cluster.Members)), true
			}),
	}
}

// observedSync counts the streaming synchronous or quorum standbys.
func observedSync(rows []api.Replica) int {
	n := 0
	for _, r := range rows {
		if r.State == "streaming" && (r.SyncState == "sync" || r.SyncState == "quorum") {
			n++
		}
	}
	return n
}

// watchdogStates are the label values of regent_watchdog_state.
var watchdogStates = []string{api.WatchdogOff, api.WatchdogActive, api.WatchdogFailed, LabelOther}

// snapshotDescs holds the descriptors of the snapshot-derived metrics.
type snapshotDescs struct {
	gauges        []gauge
	watchdog      *prometheus.Desc
	standbyInfo   *prometheus.Desc
	standbyReplay *prometheus.Desc
	standbySend   *prometheus.Desc
	standbyLagSec *prometheus.Desc
}

func newSnapshotDescs() snapshotDescs {
	standby := append(append([]string(nil), baseLabels...), "standby")
	return snapshotDescs{
		gauges: append(patroniGauges(), regentGauges()...),
		watchdog: prometheus.NewDesc("regent_watchdog_state",
			"Watchdog state: 1 for the current state (off, active, failed, other), 0 for the others.",
			append(append([]string(nil), baseLabels...), "state"), nil),
		standbyInfo: prometheus.NewDesc("regent_replication_standby_info",
			"On the primary: one series per connected standby (pg_stat_replication row; standby is its application_name) with its state and sync_state; value 1.",
			append(append([]string(nil), standby...), "state", "sync_state"), nil),
		standbyReplay: prometheus.NewDesc("regent_replication_standby_replay_lag_bytes",
			"On the primary: bytes the standby's replay_lsn trails the primary's current WAL position.", standby, nil),
		standbySend: prometheus.NewDesc("regent_replication_standby_send_lag_bytes",
			"On the primary: bytes the standby's sent_lsn trails the primary's current WAL position.", standby, nil),
		standbyLagSec: prometheus.NewDesc("regent_replication_standby_replay_lag_seconds",
			"On the primary: pg_stat_replication.replay_lag of the standby in seconds (0 when NULL, i.e. caught up and idle).", standby, nil),
	}
}

func (d *snapshotDescs) describe(ch chan<- *prometheus.Desc) {
	for _, g := range d.gauges {
		ch <- g.desc
	}
	ch <- d.watchdog
	ch <- d.standbyInfo
	ch <- d.standbyReplay
	ch <- d.standbySend
	ch <- d.standbyLagSec
}

func (d *snapshotDescs) collect(ch chan<- prometheus.Metric, s *api.Snapshot, now time.Time) {
	for _, g := range d.gauges {
		if v, ok := g.value(s, now); ok {
			ch <- prometheus.MustNewConstMetric(g.desc, g.typ, v, s.Scope, s.Name)
		}
	}
	state := s.WatchdogState
	if state == "" {
		state = api.WatchdogOff
	}
	known := false
	for _, w := range watchdogStates[:len(watchdogStates)-1] {
		known = known || w == state
	}
	if !known {
		state = LabelOther
	}
	for _, w := range watchdogStates {
		ch <- prometheus.MustNewConstMetric(d.watchdog, prometheus.GaugeValue, b2f(w == state), s.Scope, s.Name, w)
	}
	if !runningAs(s, cluster.RolePrimary) {
		return
	}
	seen := make(map[string]bool, len(s.Replication))
	for _, r := range s.Replication {
		// One series per application_name: a second walsender with the same
		// name (a base backup, a misconfigured standby) would collide.
		if seen[r.ApplicationName] {
			continue
		}
		seen[r.ApplicationName] = true
		lv := []string{s.Scope, s.Name, r.ApplicationName}
		ch <- prometheus.MustNewConstMetric(d.standbyInfo, prometheus.GaugeValue, 1, append(lv, r.State, r.SyncState)...)
		if r.ReplayLSN > 0 && s.XLogLocation > 0 {
			ch <- prometheus.MustNewConstMetric(d.standbyReplay, prometheus.GaugeValue, float64(max(0, s.XLogLocation-r.ReplayLSN)), lv...)
		}
		if r.SentLSN > 0 && s.XLogLocation > 0 {
			ch <- prometheus.MustNewConstMetric(d.standbySend, prometheus.GaugeValue, float64(max(0, s.XLogLocation-r.SentLSN)), lv...)
		}
		ch <- prometheus.MustNewConstMetric(d.standbyLagSec, prometheus.GaugeValue, r.ReplayLagSeconds, lv...)
	}
}
