package cluster

import (
	"encoding/json"
	"math"
	"slices"
	"strconv"
	"strings"
)

// Tags are the per-member flags from the member's configuration file, as
// Patroni defines them, plus any custom tags. They are published in the
// member key and the REST API as one JSON object: the known tags under
// their names (only when set), the custom ones verbatim beside them.
type Tags struct {
	NoFailover       bool   `json:"nofailover,omitempty" yaml:"nofailover"`
	FailoverPriority *int   `json:"failover_priority,omitempty" yaml:"failover_priority"`
	NoLoadBalance    bool   `json:"noloadbalance,omitempty" yaml:"noloadbalance"`
	CloneFrom        bool   `json:"clonefrom,omitempty" yaml:"clonefrom"`
	ReplicateFrom    string `json:"replicatefrom,omitempty" yaml:"replicatefrom"`
	NoSync           bool   `json:"nosync,omitempty" yaml:"nosync"`
	// SyncPriority orders the candidates for synchronous standby: higher
	// first; 0 or less means never synchronous (as nosync). Default 1.
	SyncPriority *int `json:"sync_priority,omitempty" yaml:"sync_priority"`
	// NoStream is Patroni's nostream: the replica is not to use streaming
	// replication, only archive recovery.
	NoStream bool `json:"nostream,omitempty" yaml:"nostream"`
	// Custom holds every other tag by name, with its value as configured:
	// a string, bool, int, int64, float64 or nil. Regent does not
	// interpret them; they are published and matched by the REST API's
	// tag_<key>=<value> filters. Treat the map as read-only: Tags values
	// are copied freely.
	Custom map[string]any `json:"-" yaml:",inline"`
}

// Priority is the effective failover priority: 0 means never promote; the
// default is 1. nofailover wins over any priority.
func (t Tags) Priority() int { return priority(t.NoFailover, t.FailoverPriority) }

// SyncPriorityValue is the effective synchronous-standby priority: 0 or
// less means never synchronous; the default is 1. nosync wins over any
// priority, as in Patroni.
func (t Tags) SyncPriorityValue() int { return priority(t.NoSync, t.SyncPriority) }

// priority is 0 when off is set, else p, else the default 1.
func priority(off bool, p *int) int {
	switch {
	case off:
		return 0
	case p == nil:
		return 1
	}
	return *p
}

// IsZero reports whether no tag is set.
func (t Tags) IsZero() bool {
	return !t.NoFailover && t.FailoverPriority == nil && !t.NoLoadBalance && !t.CloneFrom &&
		t.ReplicateFrom == "" && !t.NoSync && t.SyncPriority == nil && !t.NoStream && len(t.Custom) == 0
}

// knownTags are the tag names Tags has fields for.
var knownTags = map[string]bool{
	"nofailover": true, "failover_priority": true, "noloadbalance": true, "clonefrom": true,
	"replicatefrom": true, "nosync": true, "sync_priority": true, "nostream": true,
}

// KnownTagNames lists the tag names Tags has fields for, sorted.
func KnownTagNames() []string {
	names := make([]string, 0, len(knownTags))
	for n := range knownTags {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// IsKnownTag reports whether name is a tag Tags has a field for.
func IsKnownTag(name string) bool { return knownTags[name] }

// tagsFields is Tags without its methods, for the default JSON encoding.
type tagsFields Tags

// MarshalJSON writes the known tags that are set and the custom ones in
// one object. A custom tag named like a known one is left out.
func (t Tags) MarshalJSON() ([]byte, error) {
	known, err := json.Marshal(tagsFields(t))
	if err != nil || len(t.Custom) == 0 {
		return known, err
	}
	all := map[string]json.RawMessage{}
	if err := json.Unmarshal(known, &all); err != nil {
		return nil, err
	}
	for k, v := range t.Custom {
		if knownTags[k] {
			continue
		}
		b, err := json.Marshal(v)
		if err != nil {
			return nil, err
		}
		all[k] = b
	}
	return json.Marshal(all)
}

// UnmarshalJSON reads a tags object written by Regent or Patroni. It is
// lenient, because one member's odd tag must not make the cluster view
// unreadable: a known tag of another type is converted where Patroni
// would (booleans by truthiness, integers from numeric strings) and
// otherwise ignored; every other tag goes to Custom verbatim.
func (t *Tags) UnmarshalJSON(b []byte) error {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	*t = Tags{}
	for k, v := range raw {
		var val any
		d := json.NewDecoder(strings.NewReader(string(v)))
		d.UseNumber()
		if err := d.Decode(&val); err != nil {
			return err
		}
		switch k {
		case "nofailover":
			t.NoFailover = truthy(val)
		case "noloadbalance":
			t.NoLoadBalance = truthy(val)
		case "clonefrom":
			t.CloneFrom = truthy(val)
		case "nosync":
			t.NoSync = truthy(val)
		case "nostream":
			t.NoStream = truthy(val)
		case "failover_priority":
			t.FailoverPriority = intTag(val)
		case "sync_priority":
			t.SyncPriority = intTag(val)
		case "replicatefrom":
			if s, ok := val.(string); ok {
				t.ReplicateFrom = s
			}
		default:
			if n, ok := val.(json.Number); ok {
				if i, err := n.Int64(); err == nil {
					val = i
				} else if f, err := n.Float64(); err == nil {
					val = f
				} else {
					val = n.String()
				}
			}
			if t.Custom == nil {
				t.Custom = map[string]any{}
			}
			t.Custom[k] = val
		}
	}
	return nil
}

// truthy is Python's bool() of a JSON value, with "false"-like strings
// false.
func truthy(v any) bool {
	switch x := v.(type) {
	case bool:
		return x
	case string:
		if b, err := strconv.ParseBool(x); err == nil {
			return b
		}
		return x != ""
	case json.Number:
		f, err := x.Float64()
		return err == nil && f != 0
	}
	return v != nil
}

// intTag reads an integer tag from a number or a numeric string; nil when
// it is neither.
func intTag(v any) *int {
	var s string
	switch x := v.(type) {
	case json.Number:
		s = x.String()
	case string:
		s = strings.TrimSpace(x)
	default:
		return nil
	}
	i, err := strconv.Atoi(s)
	if err != nil {
		return nil
	}
	return &i
}

// TagFilterValue renders tag key as Patroni compares it in the REST API's
// tag_<key>=<value> filters: strings as they are, other values as Python's
// lower-cased str(). Unset boolean tags read "false" and unset priorities
// their default "1". ok is false when the member has no such tag.
func (t Tags) TagFilterValue(key string) (v string, ok bool) {
	switch key {
	case "nofailover":
		return strconv.FormatBool(t.NoFailover), true
	case "noloadbalance":
		return strconv.FormatBool(t.NoLoadBalance), true
	case "clonefrom":
		return strconv.FormatBool(t.CloneFrom), true
	case "nosync":
		return strconv.FormatBool(t.NoSync), true
	case "nostream":
		return strconv.FormatBool(t.NoStream), true
	case "failover_priority":
		return strconv.Itoa(intOr(t.FailoverPriority, 1)), true
	case "sync_priority":
		return strconv.Itoa(intOr(t.SyncPriority, 1)), true
	case "replicatefrom":
		return t.ReplicateFrom, t.ReplicateFrom != ""
	}
	val, ok := t.Custom[key]
	if !ok || val == nil {
		return "", false
	}
	return pythonStr(val), true
}

func intOr(p *int, def int) int {
	if p == nil {
		return def
	}
	return *p
}

// pythonStr is str(v).lower() for a non-string v, as Patroni compares.
func pythonStr(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case bool:
		return strconv.FormatBool(x)
	case int:
		return strconv.Itoa(x)
	case int64:
		return strconv.FormatInt(x, 10)
	case float64:
		// Python's repr: positional between 1e-4 and 1e16, with ".0" on
		// whole numbers; exponent form outside.
		if a := math.Abs(x); a == 0 || a >= 1e-4 && a < 1e16 {
			s := strconv.FormatFloat(x, 'f', -1, 64)
			if !strings.Contains(s, ".") {
				s += ".0"
			}
			return s
		}
		return strings.ToLower(strconv.FormatFloat(x, 'e', -1, 64))
	}
	b, _ := json.Marshal(v)
	return strings.ToLower(string(b))
}
