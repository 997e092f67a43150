package dcs

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"strconv"
	"strings"

	"go.etcd.io/etcd/api/v3/mvccpb"

	"github.com/regent-ha/regent/internal/cluster"
)

// decodeCluster builds the cluster view from one range read over prefix.
// A config key that cannot be used is not an error of the view: the view
// carries what could be decoded and ConfigProblem says why it must not be
// used (members keep their last good configuration, so elections and
// failover go on); other corrupt keys are logged and treated as absent, as
// Patroni does.
func decodeCluster(prefix string, revision int64, kvs []*mvccpb.KeyValue, log *slog.Logger) (*cluster.Cluster, error) {
	c := &cluster.Cluster{
		Scope:    scopeOf(prefix),
		Members:  map[string]*cluster.Member{},
		Revision: revision,
	}
	var legacyOptime []byte
	var err error
	haveStatus := false
	for _, kv := range kvs {
		rel, ok := strings.CutPrefix(string(kv.Key), prefix)
		if !ok {
			continue
		}
		switch {
		case rel == KeyInitialize:
			c.Initialize = &cluster.Initialize{SystemID: string(kv.Value), Revision: kv.ModRevision}
		case rel == KeyConfig:
			c.ConfigRevision = kv.ModRevision
			c.Config, err = decodeConfig(kv.Value)
			if err != nil {
				c.ConfigProblem = fmt.Sprintf("key %s: %v", kv.Key, err)
			}
		case rel == KeyLeader:
			c.Leader = &cluster.Leader{
				Name:           string(kv.Value),
				ModRevision:    kv.ModRevision,
				CreateRevision: kv.CreateRevision,
				Lease:          kv.Lease,
			}
		case strings.HasPrefix(rel, KeyMembers):
			name := strings.TrimPrefix(rel, KeyMembers)
			m, err := decodeMember(name, kv)
			if err != nil {
				log.Warn("ignoring undecodable member key", "key", string(kv.Key), "err", err)
				continue
			}
			c.Members[name] = m
		case rel == KeyStatus:
			st, err := decodeStatus(kv.Value)
			if err != nil {
				log.Warn("ignoring undecodable status key", "key", string(kv.Key), "err", err)
				continue
			}
			c.Status = st
			haveStatus = true
		case rel == keyLegacyOptime:
			legacyOptime = kv.Value
		case rel == KeyHistory:
			var h []cluster.HistoryEntry
			if err := json.Unmarshal(kv.Value, &h); err != nil {
				log.Warn("ignoring undecodable history key", "key", string(kv.Key), "err", err)
				continue
			}
			c.History = h
		case rel == KeyEvents:
			var ev []cluster.Event
			if err := json.Unmarshal(kv.Value, &ev); err != nil {
				log.Warn("ignoring undecodable events key", "key", string(kv.Key), "err", err)
				continue
			}
			c.Events = ev
		case rel == KeyFailsafe:
			var fs map[string]string
			if err := json.Unmarshal(kv.Value, &fs); err != nil {
				log.Warn("ignoring undecodable failsafe key", "key", string(kv.Key), "err", err)
				continue
			}
			c.Failsafe = fs
		case rel == KeySync:
			var st cluster.SyncState
			if err := json.Unmarshal(kv.Value, &st); err != nil {
				log.Warn("ignoring undecodable sync key", "key", string(kv.Key), "err", err)
				continue
			}
			st.Revision = kv.ModRevision
			c.Sync = &st
		case rel == KeyFailover:
			f, err := decodeFailover(kv.Value)
			if err != nil {
				log.Warn("ignoring undecodable failover key", "key", string(kv.Key), "err", err)
				continue
			}
			if f != nil {
				f.Revision = kv.ModRevision
			}
			c.Failover = f
		}
	}
	if !haveStatus && legacyOptime != nil {
		if n, err := strconv.ParseInt(strings.TrimSpace(string(legacyOptime)), 10, 64); err == nil {
			c.Status.Optime = n
		}
	}
	return c, nil
}

// decodeConfig decodes the config key over Regent's defaults, so keys the
// value lacks keep their default. It fails when the value is not a JSON
// object, or when a key cannot be decoded or the result is invalid; in the
// last two cases it still returns what it decoded, so that the REST API can
// show and patch it.
func decodeConfig(v []byte) (*cluster.DynamicConfig, error) {
	cfg, problems, err := cluster.DecodeDynamicConfig(v)
	if err != nil {
		return nil, fmt.Errorf("invalid dynamic configuration: %w", err)
	}
	if len(problems) == 0 {
		if err := cfg.Validate(); err != nil {
			problems = strings.Split(err.Error(), "\n")
		}
	}
	if len(problems) > 0 {
		return &cfg, fmt.Errorf("invalid dynamic configuration: %s", strings.Join(problems, "; "))
	}
	return &cfg, nil
}

// decodeMember decodes a member key.
func decodeMember(name string, kv *mvccpb.KeyValue) (*cluster.Member, error) {
	if name == "" || strings.Contains(name, "/") {
		return nil, fmt.Errorf("invalid member name %q", name)
	}
	m := &cluster.Member{}
	if err := json.Unmarshal(kv.Value, m); err != nil {
		return nil, err
	}
	m.Name = name
	m.Revision = kv.ModRevision
	return m, nil
}

// decodeStatus decodes the status key; a bare number is a legacy optime.
func decodeStatus(v []byte) (cluster.Status, error) {
	var st cluster.Status
	v = bytes.TrimSpace(v)
	if n, err := strconv.ParseInt(string(v), 10, 64); err == nil {
		st.Optime = n
		return st, nil
	}
	if err := json.Unmarshal(v, &st); err != nil {
		return cluster.Status{}, err
	}
	return st, nil
}

// decodeFailover decodes the failover key. An empty value or one naming
// nobody means no request (nil). Patroni's legacy "leader:candidate" form
// is accepted.
func decodeFailover(v []byte) (*cluster.Failover, error) {
	v = bytes.TrimSpace(v)
	if len(v) == 0 {
		return nil, nil
	}
	f := &cluster.Failover{}
	if v[0] == '{' {
		if err := json.Unmarshal(v, f); err != nil {
			return nil, err
		}
	} else {
		leader, member, ok := strings.Cut(string(v), ":")
		if !ok {
			return nil, fmt.Errorf("invalid failover value %q", v)
		}
		f.Leader, f.Member = strings.TrimSpace(leader), strings.TrimSpace(member)
	}
	if f.Leader == "" && f.Member == "" && f.ScheduledAt == "" {
		return nil, nil
	}
	return f, nil
}
