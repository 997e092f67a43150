package ha

import (
	"strconv"
	"strings"
)

// Kind is an action the agent can execute.
type Kind int

// Action kinds. The agent executes a decision's actions in order and stops
// at the first failure.
const (
	// Wait does nothing; the reason explains what the member waits for.
	Wait Kind = iota
	// Refuse stops the agent with an error: continuing could destroy data.
	Refuse
	// Fence stops PostgreSQL immediately (SIGQUIT, escalating to SIGKILL)
	// because this member may no longer hold the leader lease.
	Fence
	// Demote stops a primary immediately because another member holds, or
	// may take, the leader key. The next loop rejoins it as a replica.
	Demote
	// StopForRejoin stops a replica (fast) that cannot follow the leader on
	// its current timeline, so the next loop can rewind it.
	StopForRejoin
	// Bootstrap races for the initialize key and, on winning, takes the
	// leader key, runs initdb and starts the new cluster.
	Bootstrap
	// Clone copies the data directory from Target with pg_basebackup.
	Clone
	// Rewind runs pg_rewind against Target, then starts as its replica.
	Rewind
	// Reclone moves the diverged data directory aside and clones again.
	Reclone
	// StartPrimary starts PostgreSQL as a primary (crash restart in place).
	StartPrimary
	// StartReplica starts PostgreSQL as a standby following Target ("" =
	// read-only standby without an upstream).
	StartReplica
	// Follow points a running replica at Target.
	Follow
	// ProbePeers asks the other members' REST APIs for their state; the
	// agent then calls Decide again with Observation.Peers filled in.
	ProbePeers
	// AcquireLeader creates the leader key (create_revision == 0 txn).
	AcquireLeader
	// ReleaseLeader deletes the leader key if it still holds our name.
	ReleaseLeader
	// Promote promotes the local replica, appends to the history and
	// starts the post-promote checkpoint.
	Promote
	// LeaderHousekeeping writes the status key and keeps the replication
	// slots of the other members.
	LeaderHousekeeping
	// HandOver is the leader's half of a switchover to Target: stop
	// PostgreSQL fast, wait until Target has received the shutdown
	// checkpoint, then release the leader key.
	HandOver
	// ClearFailover deletes the failover key: the request is done, or
	// cannot be carried out (the reason says why).
	ClearFailover
	// SetSyncStandbys sets synchronous_standby_names to exactly Names
	// (FIRST len(Names), or ANY Quorum (Names) when Quorum > 0; ["*"] = any
	// standby; empty = asynchronous).
	SetSyncStandbys
	// StopUnresponsive stops immediately (escalating to SIGKILL) a
	// primary's PostgreSQL that has not answered for primary_start_timeout;
	// the next loops restart it in place like a crashed one, or release
	// the key.
	StopUnresponsive
	// PublishSync writes the sync key with Names as the synchronous
	// standbys of this leader and Quorum as its quorum field (nil Names and
	// synchronous mode off: delete).
	PublishSync
	// ClaimInitialize adopts an existing data directory as the cluster's
	// first member: it creates the initialize key holding the local
	// system identifier (Postgres.SystemID) if the key does not exist —
	// the same create-if-absent race a bootstrap runs — and fails if it
	// exists, so that the rest of the decision (taking the leader key,
	// starting as primary) is not carried out. It also writes the dynamic
	// configuration if there is none, and has the agent create the
	// replication role at its next leader housekeeping.
	ClaimInitialize
)

var kindNames = [...]string{
	Wait: "wait", Refuse: "refuse", Fence: "fence", Demote: "demote",
	StopForRejoin: "stop_for_rejoin", Bootstrap: "bootstrap", Clone: "clone",
	Rewind: "rewind", Reclone: "reclone", StartPrimary: "start_primary",
	StartReplica: "start_replica", Follow: "follow", ProbePeers: "probe_peers",
	AcquireLeader: "acquire_leader", ReleaseLeader: "release_leader",
	Promote: "promote", LeaderHousekeeping: "leader_housekeeping",
	HandOver: "hand_over", ClearFailover: "clear_failover", StopUnresponsive: "stop_unresponsive",
	SetSyncStandbys: "set_sync_standbys", PublishSync: "publish_sync",
	ClaimInitialize: "claim_initialize",
}

func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "unknown"
}

// Action is one step for the agent.
type Action struct {
	Kind Kind
	// Target is the member to follow, clone or rewind from.
	Target string
	// Names are the synchronous standbys of SetSyncStandbys and
	// PublishSync.
	Names []string
	// Quorum is, for SetSyncStandbys, the k of ANY k (...) (0: FIRST n)
	// and, for PublishSync, the sync key's quorum field (0 in
	// synchronous_mode on).
	Quorum int
}

func (a Action) String() string {
	if a.Kind == SetSyncStandbys || a.Kind == PublishSync {
		s := a.Kind.String() + "[" + strings.Join(a.Names, ",") + "]"
		if a.Quorum > 0 {
			s += "/" + strconv.Itoa(a.Quorum)
		}
		return s
	}
	if a.Target == "" {
		return a.Kind.String()
	}
	return a.Kind.String() + "(" + a.Target + ")"
}

// Decision is the core's answer: what to do and why.
type Decision struct {
	Actions []Action
	Reason  string
	// PromotionRefused marks a replica that does not promote although the
	// cluster has no leader, for a reason of its own (ineligible, or it
	// cannot show it holds every acknowledged commit). The agent records
	// such refusals in the DCS (events key).
	PromotionRefused bool
}

// Is reports whether the decision's first action is of kind k.
func (d Decision) Is(k Kind) bool { return len(d.Actions) > 0 && d.Actions[0].Kind == k }

// Summary renders the actions as "a,b(x)".
func (d Decision) Summary() string {
	parts := make([]string, len(d.Actions))
	for i, a := range d.Actions {
		parts[i] = a.String()
	}
	return strings.Join(parts, ",")
}

func decide(reason string, actions ...Action) Decision {
	if len(actions) == 0 {
		actions = []Action{{Kind: Wait}}
	}
	return Decision{Actions: actions, Reason: reason}
}

func act(k Kind) Action                  { return Action{Kind: k} }
func actOn(k Kind, target string) Action { return Action{Kind: k, Target: target} }
