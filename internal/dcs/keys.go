package dcs

import (
	"path"
	"strings"
)

// Key names relative to the cluster prefix, as in Patroni.
const (
	// KeyInitialize holds the PostgreSQL system identifier ("" while the
	// bootstrap winner runs initdb).
	KeyInitialize = "initialize"
	// KeyConfig holds the dynamic configuration as JSON.
	KeyConfig = "config"
	// KeyLeader holds the leader's name on the leader's lease.
	KeyLeader = "leader"
	// KeyMembers is the directory of member keys, one per member, each on
	// its member's lease.
	KeyMembers = "members/"
	// KeyStatus holds the leader's optime and slots as JSON.
	KeyStatus = "status"
	// KeyHistory holds the timeline history as a JSON list of lines.
	KeyHistory = "history"
	// KeyFailover holds a requested switchover or failover as JSON.
	KeyFailover = "failover"
	// KeySync holds the synchronous standbys the leader has published.
	KeySync = "sync"
	// KeyFailsafe maps member names to REST API URLs (failsafe_mode).
	KeyFailsafe = "failsafe"
	// KeyEvents holds the latest recorded decisions (Regent only).
	KeyEvents = "events"
	// keyLegacyOptime is the optime key of Patroni < 2.1.
	keyLegacyOptime = "optime/leader"
)

// Key returns the full etcd key of name under prefix, e.g.
// Key("/service/demo/", "leader") = "/service/demo/leader".
func Key(prefix, name string) string {
	if !strings.HasSuffix(prefix, "/") {
		prefix += "/"
	}
	return prefix + name
}

// MemberKey returns the full key of a member.
func MemberKey(prefix, member string) string { return Key(prefix, KeyMembers+member) }

// Prefix composes Patroni's key prefix /<namespace>/<scope>/ with duplicate
// slashes collapsed; an empty namespace means "/service".
func Prefix(namespace, scope string) string {
	if namespace == "" {
		namespace = "/service"
	}
	return path.Clean("/"+namespace+"/"+scope) + "/"
}

// scopeOf returns the last path element of a prefix: the cluster name.
func scopeOf(prefix string) string {
	return path.Base(strings.TrimRight(prefix, "/"))
}
