package operate

import (
	"slices"
	"strings"

	"github.com/regent-ha/regent/internal/cluster"
)

// restartParams are the PostgreSQL parameters of context "postmaster" in
// every supported version: a change takes effect only after a restart.
// Parameters whose context changed between versions (autovacuum_max_workers
// in 18) and reloadable ones (max_wal_size, work_mem, ...) are not listed.
var restartParams = []string{
	"archive_mode",
	"cluster_name",
	"hot_standby",
	"huge_pages",
	"listen_addresses",
	"max_connections",
	"max_files_per_process",
	"max_locks_per_transaction",
	"max_logical_replication_workers",
	"max_pred_locks_per_transaction",
	"max_prepared_transactions",
	"max_replication_slots",
	"max_wal_senders",
	"max_worker_processes",
	"port",
	"shared_buffers",
	"shared_memory_type",
	"shared_preload_libraries",
	"superuser_reserved_connections",
	"track_commit_timestamp",
	"unix_socket_directories",
	"wal_buffers",
	"wal_level",
	"wal_log_hints",
}

// PendingRestartParams returns, sorted, the postgresql.parameters that
// differ between old and new (set, changed or removed) and take effect only
// after a restart. Names compare case-insensitively, as PostgreSQL's do.
func PendingRestartParams(old, new cluster.DynamicConfig) []string {
	lower := func(m map[string]string) map[string]string {
		out := make(map[string]string, len(m))
		for k, v := range m {
			out[strings.ToLower(k)] = v
		}
		return out
	}
	o, n := lower(old.PostgreSQL.Parameters), lower(new.PostgreSQL.Parameters)
	var out []string
	for _, name := range restartParams {
		ov, inOld := o[name]
		nv, inNew := n[name]
		if inOld != inNew || ov != nv {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out
}
