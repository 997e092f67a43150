package cluster

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"gopkg.in/yaml.v3"
)

// DynamicConfig is the cluster-wide configuration kept in the config key.
// Every member reads it from the DCS each loop; the first member to
// bootstrap seeds it from its bootstrap.dcs section. Durations are in
// seconds, as in Patroni.
type DynamicConfig struct {
	// TTL of the leader lease, seconds.
	TTL int `json:"ttl" yaml:"ttl"`
	// LoopWait is the pause between HA loop runs, seconds.
	LoopWait int `json:"loop_wait" yaml:"loop_wait"`
	// RetryTimeout bounds one DCS or PostgreSQL operation, seconds.
	RetryTimeout int `json:"retry_timeout" yaml:"retry_timeout"`
	// MaximumLagOnFailover is the largest lag, in bytes behind the last
	// known leader optime, at which a replica may still be promoted.
	MaximumLagOnFailover int64 `json:"maximum_lag_on_failover" yaml:"maximum_lag_on_failover"`
	// PrimaryStartTimeout is how long a crashed primary may take to start
	// again in place before its key is released, seconds.
	PrimaryStartTimeout int `json:"primary_start_timeout" yaml:"primary_start_timeout"`
	// FenceTimeout (D_fence) bounds the time from the decision to fence until
	// PostgreSQL can acknowledge no further commit, seconds.
	FenceTimeout float64 `json:"fence_timeout" yaml:"fence_timeout"`
	// SafetyMargin (m) covers scheduling delay of the agent, seconds.
	SafetyMargin float64 `json:"safety_margin" yaml:"safety_margin"`
	// ClockDrift (ε) bounds the rate difference between this host's clock
	// and the etcd leader's, as a fraction (0.01 = 1 %).
	ClockDrift float64 `json:"clock_drift" yaml:"clock_drift"`
	// PeerTimeout bounds each REST probe of a peer during a leader race,
	// seconds.
	PeerTimeout float64 `json:"peer_timeout" yaml:"peer_timeout"`
	// SynchronousMode is "off", "on" (Patroni's synchronous_mode: true) or
	// "quorum". With "on", the leader keeps synchronous_node_count
	// streaming replicas in synchronous_standby_names (FIRST n) and only
	// those may be promoted automatically. With "quorum", it lists every
	// eligible streaming replica as ANY synchronous_node_count (...), and a
	// listed replica may be promoted automatically only when it sees enough
	// of the listed members to be sure it holds every acknowledged commit.
	SynchronousMode SyncMode `json:"synchronous_mode" yaml:"synchronous_mode"`
	// SynchronousModeStrict keeps commits waiting when no synchronous
	// standby is available instead of falling back to asynchronous (both
	// modes).
	SynchronousModeStrict bool `json:"synchronous_mode_strict" yaml:"synchronous_mode_strict"`
	// SynchronousNodeCount is how many synchronous standbys to keep (on),
	// or how many standbys must confirm each commit (quorum: ANY n).
	SynchronousNodeCount int `json:"synchronous_node_count" yaml:"synchronous_node_count"`
	// MaximumLagOnSyncnode is Patroni's maximum_lag_on_syncnode: when
	// positive, a streaming replica whose flushed WAL lags more than this
	// many bytes behind the most advanced position (the leader's WAL, or
	// the furthest replica's when it is ahead of the leader's sample) is
	// an unhealthy synchronous candidate and is replaced by a healthy
	// asynchronous one. A lagging standby is never dropped without a
	// replacement. Zero or negative (the default, -1) disables the check,
	// as in Patroni.
	MaximumLagOnSyncnode int64 `json:"maximum_lag_on_syncnode" yaml:"maximum_lag_on_syncnode"`
	// FailsafeMode keeps the primary running through a DCS outage for as
	// long as every member listed in the failsafe key acknowledges it over
	// the REST API; without it the primary is fenced at the renew deadline.
	FailsafeMode bool `json:"failsafe_mode,omitempty" yaml:"failsafe_mode"`
	// Pause is maintenance mode: no automatic actions.
	Pause bool `json:"pause,omitempty" yaml:"pause"`
	// Slots are permanent replication slots (Patroni's slots), by name:
	// kept on the leader and, for physical slots, on replicas too.
	Slots map[string]*PermanentSlot `json:"slots,omitempty" yaml:"slots"`
	// IgnoreSlots lists slots Regent never drops (internal/slots).
	IgnoreSlots []IgnoreSlot `json:"ignore_slots,omitempty" yaml:"ignore_slots"`
	// MemberSlotsTTL is how long a member's slot outlives its member key.
	MemberSlotsTTL Seconds `json:"member_slots_ttl" yaml:"member_slots_ttl"`
	// PostgreSQL holds cluster-wide PostgreSQL settings.
	PostgreSQL PostgreSQLConfig `json:"postgresql" yaml:"postgresql"`
	// Preserved holds, verbatim, the keys of the config key Regent does not
	// implement (Patroni's slots, standby_cluster, ...) and the values of
	// known keys it could not decode; they are written back on every
	// rewrite (configjson.go).
	Preserved map[string]json.RawMessage `json:"-" yaml:"-"`
}

// PostgreSQLConfig is the postgresql section of the dynamic configuration.
type PostgreSQLConfig struct {
	UsePgRewind bool `json:"use_pg_rewind" yaml:"use_pg_rewind"`
	// RemoveDataDirectoryOnRewindFailure allows re-cloning a member whose
	// pg_rewind failed. Off by default: Regent never deletes a data
	// directory unless told to.
	RemoveDataDirectoryOnRewindFailure bool `json:"remove_data_directory_on_rewind_failure,omitempty" yaml:"remove_data_directory_on_rewind_failure"`
	// RemoveDataDirectoryOnDivergedTimelines allows re-cloning a member
	// whose timeline diverged when pg_rewind is not used.
	RemoveDataDirectoryOnDivergedTimelines bool `json:"remove_data_directory_on_diverged_timelines,omitempty" yaml:"remove_data_directory_on_diverged_timelines"`
	// UseSlots gives every member a physical replication slot.
	UseSlots bool `json:"use_slots" yaml:"use_slots"`
	// Parameters are PostgreSQL settings in the form postgresql.conf takes.
	// The config key may hold them as JSON strings, numbers or booleans
	// (Patroni writes numbers); see ParameterString.
	Parameters map[string]string `json:"parameters,omitempty" yaml:"parameters"`
	// ParameterForms is the JSON form of the parameters the config key held
	// as numbers or booleans, written back while the value is unchanged.
	ParameterForms map[string]json.RawMessage `json:"-" yaml:"-"`
	// Preserved holds the keys of the section Regent does not implement
	// (pg_hba, use_slots, recovery_conf, ...), verbatim.
	Preserved map[string]json.RawMessage `json:"-" yaml:"-"`
}

// DefaultDynamicConfig returns Regent's defaults. They are derived from the
// fencing inequality R + D_fence + m <= TTL*(1-ε) (docs/timing.md):
// with TTL 5 s, D_fence 1 s, m 0.5 s and ε 1 %, the renew deadline R is
// 3.45 s, which still covers one loop (1 s), one timed-out renewal (1 s) and
// an etcd leader election (1 s by etcd's default).
func DefaultDynamicConfig() DynamicConfig {
	return DynamicConfig{
		TTL:                  5,
		LoopWait:             1,
		RetryTimeout:         1,
		MaximumLagOnFailover: 1 << 20,
		PrimaryStartTimeout:  30,
		FenceTimeout:         1,
		SafetyMargin:         0.5,
		ClockDrift:           0.01,
		PeerTimeout:          1,
		SynchronousMode:      SyncOff,
		SynchronousNodeCount: 1,
		MaximumLagOnSyncnode: -1,
		MemberSlotsTTL:       1800,
		PostgreSQL: PostgreSQLConfig{
			UsePgRewind: true,
			UseSlots:    true,
		},
	}
}

func seconds(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }

// TTLDuration is the lease TTL.
func (c DynamicConfig) TTLDuration() time.Duration { return time.Duration(c.TTL) * time.Second }

// LoopWaitDuration is the HA loop interval.
func (c DynamicConfig) LoopWaitDuration() time.Duration {
	return time.Duration(c.LoopWait) * time.Second
}

// RetryTimeoutDuration bounds one DCS or PostgreSQL call.
func (c DynamicConfig) RetryTimeoutDuration() time.Duration {
	return time.Duration(c.RetryTimeout) * time.Second
}

// PrimaryStartTimeoutDuration bounds an in-place restart of a crashed primary.
func (c DynamicConfig) PrimaryStartTimeoutDuration() time.Duration {
	return time.Duration(c.PrimaryStartTimeout) * time.Second
}

// FenceTimeoutDuration is D_fence.
func (c DynamicConfig) FenceTimeoutDuration() time.Duration { return seconds(c.FenceTimeout) }

// PeerTimeoutDuration bounds one peer probe.
func (c DynamicConfig) PeerTimeoutDuration() time.Duration { return seconds(c.PeerTimeout) }

// RenewDeadline is R: how long after sending the last confirmed lease
// renewal the leader may keep accepting writes before it must start fencing,
// so that fencing completes before etcd can expire the lease:
//
//	R = TTL*(1-ε) - D_fence - m
func (c DynamicConfig) RenewDeadline() time.Duration {
	ttl := float64(c.TTL) * (1 - c.ClockDrift)
	return seconds(ttl - c.FenceTimeout - c.SafetyMargin)
}

// ForLease returns the configuration whose deadlines apply to a lease etcd
// granted with leaseTTL: the TTL is the smaller of the configured ttl and
// the lease's own, so that no deadline derived from it (the renew deadline,
// the fence process, the watchdog timeout) outlasts the lease. A changed
// ttl therefore tightens deadlines at once and loosens them only once etcd
// has granted a lease with the new TTL. Without a lease (leaseTTL <= 0) the
// TTL is 0 and no deadline is ever met.
func (c DynamicConfig) ForLease(leaseTTL time.Duration) DynamicConfig {
	secs := int(leaseTTL / time.Second) // etcd grants whole seconds
	if leaseTTL <= 0 {
		secs = 0
	}
	c.TTL = min(c.TTL, secs)
	return c
}

// MaxTiming is the upper bound, in seconds, of every timing of the dynamic
// configuration (one hour): far above any sensible value, far below
// anything that overflows time.Duration or etcd's lease TTL.
const MaxTiming = 3600

// MaxSyncNodeCount bounds synchronous_node_count.
const MaxSyncNodeCount = 1000

// Validate checks types, ranges and the timing invariants. The error lists
// every problem found.
func (c DynamicConfig) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	// Every timing has an upper bound so that the durations derived from it
	// (and their sums below) cannot overflow time.Duration; the float
	// checks are written as !(lo <= x && x <= hi) so that NaN is refused.
	intIn := func(key string, v, lo, hi int) {
		if v < lo || v > hi {
			bad("%s must be in [%d, %d] seconds, got %d", key, lo, hi, v)
		}
	}
	floatIn := func(key string, v, lo, hi float64) {
		if !(lo <= v && v <= hi) {
			bad("%s must be in [%g, %g] seconds, got %g", key, lo, hi, v)
		}
	}
	intIn("ttl", c.TTL, 2, MaxTiming)
	intIn("loop_wait", c.LoopWait, 1, MaxTiming)
	intIn("retry_timeout", c.RetryTimeout, 1, MaxTiming)
	if c.MaximumLagOnFailover < 0 {
		bad("maximum_lag_on_failover must not be negative, got %d", c.MaximumLagOnFailover)
	}
	intIn("primary_start_timeout", c.PrimaryStartTimeout, 0, MaxTiming)
	floatIn("fence_timeout", c.FenceTimeout, 0.01, MaxTiming)
	floatIn("safety_margin", c.SafetyMargin, 0, MaxTiming)
	if !(c.ClockDrift >= 0 && c.ClockDrift < 0.5) {
		bad("clock_drift must be in [0, 0.5), got %g", c.ClockDrift)
	}
	floatIn("peer_timeout", c.PeerTimeout, 0.01, MaxTiming)
	switch c.SynchronousMode {
	case SyncOff, SyncOn, SyncQuorum:
	default:
		bad("synchronous_mode must be off, on or quorum, got %q", c.SynchronousMode)
	}
	if c.SynchronousNodeCount < 1 || c.SynchronousNodeCount > MaxSyncNodeCount {
		bad("synchronous_node_count must be in [1, %d], got %d", MaxSyncNodeCount, c.SynchronousNodeCount)
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	if c.LoopWait+2*c.RetryTimeout > c.TTL {
		bad("loop_wait + 2*retry_timeout must not exceed ttl: %d + 2*%d > %d; raise ttl or lower loop_wait/retry_timeout",
			c.LoopWait, c.RetryTimeout, c.TTL)
	}
	r := c.RenewDeadline()
	if min := c.LoopWaitDuration() + c.RetryTimeoutDuration(); r < min {
		bad("fencing inequality violated: renew deadline R = ttl*(1-clock_drift) - fence_timeout - safety_margin = %v "+
			"must be at least loop_wait + retry_timeout = %v so that one failed renewal does not fence a healthy leader; "+
			"raise ttl or lower fence_timeout/safety_margin", r, min)
	}
	return errors.Join(errs...)
}

// SyncMode is the synchronous replication mode.
type SyncMode string

// Synchronous replication modes.
const (
	SyncOff    SyncMode = "off"
	SyncOn     SyncMode = "on"
	SyncQuorum SyncMode = "quorum"
)

// UnmarshalJSON accepts Patroni's booleans (true = on) as well as names.
func (m *SyncMode) UnmarshalJSON(b []byte) error {
	switch string(b) {
	case "true":
		*m = SyncOn
		return nil
	case "false", "null":
		*m = SyncOff
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("synchronous_mode must be off, on, quorum or a boolean: %w", err)
	}
	*m = SyncMode(s)
	return nil
}

// UnmarshalYAML accepts booleans as well as names.
func (m *SyncMode) UnmarshalYAML(value *yaml.Node) error {
	switch value.Value {
	case "true", "True", "yes", "on":
		*m = SyncOn
	case "false", "False", "no", "off", "":
		*m = SyncOff
	default:
		*m = SyncMode(value.Value)
	}
	return nil
}

// Enabled reports whether synchronous replication is on.
func (m SyncMode) Enabled() bool { return m == SyncOn || m == SyncQuorum }
